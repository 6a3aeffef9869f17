// The account view: sign in with an API key (client credentials over the WebSocket), then the
// account's sub-ledgers with positions, P&L, margin and distance to liquidation, and its open
// orders (cancel here or in the market view). The key is kept in memory only.

import { $, badge, definitionList, el, empty, replace, table } from "./dom.js";
import * as fmt from "./format.js";

const REFRESH_MS = 1_000; // account risk is re-read at most this often (on block notifications)

export class AccountView {
  constructor(app) {
    this.app = app;
    this.root = $("#view-account");
    this.orders = new Map(); // order_id -> order (open ones)
    this.risk = null;
    this.lastRefresh = 0;
    this.refreshing = false;
    this.unsubscribers = [];
    $("#login-form").addEventListener("submit", (event) => this.login(event));
    $("#logout").addEventListener("click", () => this.logout());
    this.render();
  }

  get signedIn() {
    return Boolean(this.app.connection.credentials && this.app.connection.account);
  }

  async login(event) {
    event.preventDefault();
    const form = event.target;
    const status = $("#login-status");
    const clientId = form.elements.client_id.value.trim();
    const clientSecret = form.elements.client_secret.value.trim();
    if (!clientId || !clientSecret) {
      status.className = "form-status error";
      status.textContent = "Enter both the API key and its secret.";
      return;
    }
    status.className = "form-status";
    status.textContent = "Signing in…";
    try {
      const result = await this.app.connection.authenticate({ clientId, clientSecret });
      form.elements.client_secret.value = "";
      status.className = "form-status ok";
      status.textContent = `Signed in (scopes: ${result.scope || "?"}).`;
      await this.started();
    } catch (error) {
      status.className = "form-status error";
      status.textContent = `Sign-in refused (${error.code}): ${error.message}`;
    }
  }

  async started() {
    const connection = this.app.connection;
    for (const stop of this.unsubscribers) stop();
    this.unsubscribers = [
      connection.subscribe("user.orders.any.any.raw", (order) => this.upsertOrder(order)),
      connection.subscribe("user.portfolio.usdc", () => this.refresh(true)),
    ];
    this.app.market.renderOrders();
    await this.reload();
  }

  // After a reconnect (the session re-authenticated): read everything again.
  async resynced() {
    if (this.signedIn) await this.reload();
    else if (this.app.connection.authError) {
      $("#login-status").className = "form-status error";
      $("#login-status").textContent = `Signed out: ${this.app.connection.authError.message}`;
      this.render();
    }
  }

  async reload() {
    try {
      const open = await this.app.connection.call("private/get_open_orders", {});
      this.orders = new Map(open.map((o) => [o.order_id, o]));
    } catch (error) {
      this.app.report(error);
    }
    await this.refresh(true);
  }

  async logout() {
    for (const stop of this.unsubscribers) stop();
    this.unsubscribers = [];
    this.orders.clear();
    this.risk = null;
    await this.app.connection.logout();
    $("#login-status").className = "form-status";
    $("#login-status").textContent = "Signed out.";
    this.render();
    this.app.market.renderOrders();
  }

  // A block notification arrived: re-read the account's risk, at most once a second.
  onBlock() {
    if (this.signedIn && !this.root.hidden && Date.now() - this.lastRefresh > REFRESH_MS) this.refresh(false);
  }

  async refresh(force) {
    if (!this.signedIn || this.refreshing) return;
    if (!force && Date.now() - this.lastRefresh < REFRESH_MS) return;
    this.refreshing = true;
    this.lastRefresh = Date.now();
    try {
      this.risk = await this.app.connection.call("private/get_account_risk", {});
      this.riskError = null;
    } catch (error) {
      this.riskError = error;
    } finally {
      this.refreshing = false;
    }
    this.render();
  }

  upsertOrder(order) {
    if (order.order_state === "open" || order.order_state === "untriggered") this.orders.set(order.order_id, order);
    else this.orders.delete(order.order_id);
    this.render();
    this.app.market.renderOrders();
    this.app.market.schedule();
  }

  openOrders() {
    return [...this.orders.values()].sort((a, b) => b.creation_timestamp - a.creation_timestamp);
  }

  // "bid:price" / "ask:price" of the account's open orders on ``instrument`` (the book marks them).
  ownPrices(instrument) {
    const prices = new Set();
    for (const order of this.orders.values()) {
      if (order.instrument_name === instrument) prices.add(`${order.direction === "buy" ? "bid" : "ask"}:${order.price}`);
    }
    return prices;
  }

  async cancel(orderId, button) {
    button.disabled = true;
    button.textContent = "Cancelling…";
    try {
      const order = await this.app.connection.call("private/cancel", { order_id: orderId });
      this.upsertOrder(order);
    } catch (error) {
      button.disabled = false;
      button.textContent = "Cancel";
      this.app.report(error);
    }
  }

  // ``compact``: the market view's table, of one instrument.
  ordersTable(orders, compact = false) {
    return table([
      ...(compact ? [] : [{ label: "Instrument", cell: (o) => o.instrument_name }]),
      { label: "Side", cell: (o) => el("span", { class: o.direction === "buy" ? "up" : "down" }, o.direction) },
      { label: "Price", numeric: true, cell: (o) => String(o.price) },
      { label: "Amount", numeric: true, cell: (o) => String(o.amount) },
      ...(compact ? [] : [{ label: "Filled", numeric: true, cell: (o) => String(o.filled_amount) }]),
      { label: "", cell: (o) => el("button", {
        type: "button", class: "small danger cancel-order", "aria-label": `Cancel order ${o.order_id}`,
        onclick: (event) => this.cancel(o.order_id, event.currentTarget),
      }, "Cancel") },
    ], orders, { caption: "Open orders", key: (o) => o.order_id });
  }

  render() {
    const signedIn = this.signedIn;
    $("#login-form").hidden = signedIn;
    $("#signed-in").hidden = !signedIn;
    const connection = this.app.connection;
    if (signedIn) $("#account-name").textContent = connection.credentials.clientId;
    const ledgers = $("#ledgers");
    const orders = $("#account-orders");
    if (!signedIn) {
      replace(ledgers, empty("Read-only view. Enter an API key and its secret to see your sub-ledgers, positions and margin, and to trade."));
      replace(orders, empty("Sign in to see your open orders."));
      return;
    }
    const open = this.openOrders();
    replace(orders, open.length ? this.ordersTable(open) : empty("No open orders."));
    if (this.riskError) {
      replace(ledgers, empty(`Could not read the account (${this.riskError.code}): ${this.riskError.message}`, "error"));
      return;
    }
    if (!this.risk) {
      replace(ledgers, empty("Loading the account…"));
      return;
    }
    if (!this.risk.ledgers.length) {
      replace(ledgers, empty("This account has no sub-ledger yet: deposit collateral to start."));
      return;
    }
    replace(ledgers, this.risk.ledgers.map((ledger) => this.ledgerCard(ledger)));
  }

  ledgerCard(ledger) {
    const distance = ledger.distance_to_liquidation;
    const tone = ledger.in_liquidation ? "bad" : distance < 0.1 ? "warn" : "ok";
    const meter = el("meter", {
      min: 0, max: 1, low: 0.1, high: 0.3, optimum: 1, value: Math.max(0, Math.min(1, distance)),
      "aria-label": `Distance to liquidation ${(distance * 100).toFixed(1)}% of equity`,
    });
    return el("article", { class: "card ledger", "aria-label": `${ledger.currency} sub-ledger` },
      el("header", { class: "card-head" }, el("h3", {}, `${ledger.currency} sub-ledger`),
        ledger.in_liquidation ? badge("in liquidation", "bad") : badge(`${ledger.margin_model} margin`, "neutral")),
      definitionList([
        ["Equity", fmt.usd(ledger.equity)],
        ["Cash", fmt.usd(ledger.cash)],
        ["Unrealized P&L", el("span", { class: ledger.unrealized_pl >= 0 ? "up" : "down" }, fmt.signed(ledger.unrealized_pl))],
        ["Realized P&L", el("span", { class: ledger.realized_pl >= 0 ? "up" : "down" }, fmt.signed(ledger.realized_pl))],
        ["Initial margin", fmt.usd(ledger.initial_margin)],
        ["Maintenance margin", fmt.usd(ledger.maintenance_margin)],
        ["Open-order margin", fmt.usd(ledger.open_orders_margin)],
        ["Free collateral", fmt.usd(ledger.free_collateral)],
        ["Withdrawable", fmt.usd(ledger.withdrawable)],
        ["Fees / funding", `${fmt.signed(-ledger.fees)} / ${fmt.signed(ledger.funding)}`],
      ]),
      el("div", { class: `distance tone-${tone}` },
        el("span", {}, "Distance to liquidation: "),
        el("strong", {}, `${fmt.usd(ledger.maintenance_excess)} USDC (${(distance * 100).toFixed(1)}% of equity)`),
        ledger.estimated_liquidation_price ? el("span", {}, ` · est. liquidation price ${fmt.usd(ledger.estimated_liquidation_price)}`) : null,
        meter),
      ledger.positions.length ? table([
        { label: "Instrument", cell: (p) => p.instrument_name },
        { label: "Size", numeric: true, cell: (p) => el("span", { class: p.size >= 0 ? "up" : "down" }, String(p.size)) },
        { label: "Avg price", numeric: true, cell: (p) => fmt.usd(p.average_price) },
        { label: "Mark", numeric: true, cell: (p) => fmt.usd(p.mark_price) },
        { label: "Unrealized", numeric: true, cell: (p) => fmt.signed(p.floating_profit_loss) },
        { label: "Realized", numeric: true, cell: (p) => fmt.signed(p.realized_profit_loss) },
        { label: "IM", numeric: true, cell: (p) => fmt.usd(p.initial_margin) },
        { label: "MM", numeric: true, cell: (p) => fmt.usd(p.maintenance_margin) },
        { label: "Delta", numeric: true, cell: (p) => fmt.fixed(p.delta, 4) },
      ], ledger.positions, { caption: `${ledger.currency} positions` }) : empty("No open positions."));
  }
}
