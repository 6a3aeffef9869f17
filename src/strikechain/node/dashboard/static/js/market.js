// The market view: instrument picker, ticker strip, order book with depth, price chart,
// recent trades, and the order ticket with the account's open orders on the instrument.

import { Chart, clockLabel, timeTicks } from "./charts.js";
import { $, badge, el, empty, replace, table } from "./dom.js";
import * as fmt from "./format.js";

const BOOK_ROWS = 12;
const TRADES_MAX = 40;
const CHART_POINTS_MAX = 600;

export class MarketView {
  constructor(app) {
    this.app = app;
    this.root = $("#view-market");
    this.instrument = null;
    this.unsubscribers = [];
    this.bids = new Map();
    this.asks = new Map();
    this.changeId = null;
    this.changes = 0;
    this.trades = [];
    this.marks = [];
    this.ticker = null;
    this.dirty = false;
    this.chart = new Chart($("#price-chart"), { label: "Price chart: mark, index and trades", height: 220 });
    $("#instrument").addEventListener("change", (event) => this.select(event.target.value));
    $("#order-form").addEventListener("submit", (event) => this.submitOrder(event));
    $("#book").addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-price]");
      if (row) $("#order-price").value = row.dataset.price;
    });
  }

  // The instruments arrived (or changed): fill the picker, keep the selection.
  setInstruments(instruments) {
    const picker = $("#instrument");
    const perps = instruments.filter((i) => i.kind !== "option");
    const options = instruments.filter((i) => i.kind === "option");
    replace(picker,
      el("optgroup", { label: "Perpetuals" }, perps.map((i) => el("option", { value: i.instrument_name }, i.instrument_name))),
      options.length ? el("optgroup", { label: "Options" }, options.map((i) => el("option", { value: i.instrument_name }, i.instrument_name))) : null);
    const wanted = this.instrument && instruments.some((i) => i.instrument_name === this.instrument)
      ? this.instrument
      : (perps[0] || instruments[0] || {}).instrument_name;
    if (!wanted) {
      replace($("#book"), empty("No instrument is listed on this venue yet."));
      return;
    }
    picker.value = wanted;
    if (wanted !== this.instrument) this.select(wanted);
  }

  select(name) {
    for (const stop of this.unsubscribers) stop();
    this.unsubscribers = [];
    this.instrument = name;
    this.spec = this.app.instruments.get(name);
    this.bids.clear();
    this.asks.clear();
    this.changeId = null;
    this.trades = [];
    this.marks = [];
    this.ticker = null;
    $("#order-instrument").textContent = name;
    $("#order-price").step = this.spec ? this.spec.tick_size : "any";
    $("#order-amount").step = this.spec ? this.spec.min_trade_amount : "any";
    $("#order-amount").min = this.spec ? this.spec.min_trade_amount : 0;
    replace($("#book"), empty("Loading the book…"));
    const connection = this.app.connection;
    this.unsubscribers.push(
      connection.subscribe(`book.${name}.100ms`, (data) => this.onBook(data)),
      connection.subscribe(`trades.${name}.100ms`, (data) => this.onTrades(data)),
      connection.subscribe(`ticker.${name}.100ms`, (data) => this.onTicker(data)),
    );
    this.loadHistory(name);
    this.renderOrders();
    this.schedule();
  }

  // After a reconnect: the book snapshot comes again; history fills the gap.
  resynced() {
    if (this.instrument) this.loadHistory(this.instrument);
  }

  async loadHistory(name) {
    try {
      const history = await this.app.connection.call("public/get_price_history", { instrument_name: name, count: 300 });
      if (name !== this.instrument) return;
      const seen = new Set(this.trades.map((t) => t.trade_id));
      const older = history.trades.map(([timestamp, price, amount, direction], i) =>
        ({ timestamp, price, amount, direction, trade_id: `h${timestamp}-${i}` }));
      this.trades = [...this.trades.filter((t) => seen.has(t.trade_id)), ...older.reverse()]
        .sort((a, b) => b.timestamp - a.timestamp).slice(0, TRADES_MAX);
      this.chartTrades = older.map((t) => [t.timestamp, t.price]);
      this.marks = increasing(history.marks.concat(this.marks)).slice(-CHART_POINTS_MAX);
      this.schedule();
    } catch (error) {
      this.app.report(error);
    }
  }

  onBook(data) {
    if (data.type === "snapshot") {
      this.bids = new Map(data.bids.map(([, price, amount]) => [price, amount]));
      this.asks = new Map(data.asks.map(([, price, amount]) => [price, amount]));
    } else {
      if (this.changeId !== null && data.prev_change_id !== this.changeId) {
        this.resubscribeBook(); // a gap: start again from a snapshot
        return;
      }
      for (const [side, changes] of [[this.bids, data.bids], [this.asks, data.asks]]) {
        for (const [action, price, amount] of changes) {
          if (action === "delete") side.delete(price);
          else side.set(price, amount);
        }
      }
    }
    this.changeId = data.change_id;
    this.changes += 1;
    this.schedule();
  }

  resubscribeBook() {
    const name = this.instrument;
    this.select(name);
  }

  onTrades(trades) {
    for (const trade of trades) {
      this.trades.unshift(trade);
      (this.chartTrades ||= []).push([trade.timestamp, trade.price]);
    }
    this.trades = this.trades.slice(0, TRADES_MAX);
    if (this.chartTrades && this.chartTrades.length > CHART_POINTS_MAX) this.chartTrades = this.chartTrades.slice(-CHART_POINTS_MAX);
    this.schedule();
  }

  onTicker(ticker) {
    this.ticker = ticker;
    const last = this.marks[this.marks.length - 1];
    if (ticker.mark_price !== null && (!last || ticker.timestamp > last[0])) {
      this.marks.push([ticker.timestamp, ticker.mark_price, ticker.index_price]);
      if (this.marks.length > CHART_POINTS_MAX) this.marks = this.marks.slice(-CHART_POINTS_MAX);
    }
    this.schedule();
  }

  schedule() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => {
      this.dirty = false;
      if (!this.root.hidden) this.render();
    });
  }

  render() {
    this.renderTicker();
    this.renderBook();
    this.renderTrades();
    this.renderChart();
  }

  renderTicker() {
    const t = this.ticker;
    const tick = this.spec && this.spec.tick_size;
    const items = t ? [
      ["Last", fmt.price(t.last_price, tick)],
      ["Mark", fmt.price(t.mark_price, tick)],
      ["Index", fmt.usd(t.index_price)],
      ["24h", t.stats && t.stats.price_change !== null ? fmt.percent(t.stats.price_change) : fmt.DASH],
      ["24h volume", fmt.amount(t.stats ? t.stats.volume : null, 0.001)],
      ["Open interest", fmt.amount(t.open_interest, 0.001)],
      t.mark_iv !== undefined ? ["Mark IV", fmt.percent(t.mark_iv)] : ["Funding 8h", t.funding_8h !== undefined ? fmt.percent(t.funding_8h * 100, 4) : fmt.DASH],
      ["State", t.state === "open" ? badge("open", "ok") : badge(t.state, "bad")],
    ] : [["Ticker", "waiting for the first block…"]];
    replace($("#ticker"), items.map(([label, value]) => el("div", { class: "tick" }, el("span", { class: "tick-label" }, label), el("span", { class: "tick-value" }, value))));
  }

  renderBook() {
    const book = $("#book");
    book.dataset.changeId = this.changeId ?? "";
    book.dataset.changes = String(this.changes);
    if (this.changeId === null) return;
    const tick = this.spec && this.spec.tick_size;
    const step = this.spec && this.spec.min_trade_amount;
    const asks = [...this.asks].sort((a, b) => a[0] - b[0]).slice(0, BOOK_ROWS);
    const bids = [...this.bids].sort((a, b) => b[0] - a[0]).slice(0, BOOK_ROWS);
    if (!asks.length && !bids.length) {
      replace(book, empty("The book is empty: no resting orders on this instrument."));
      return;
    }
    const cumulative = (levels) => { let total = 0; return levels.map(([p, a]) => [p, a, (total += a)]); };
    const askRows = cumulative(asks);
    const bidRows = cumulative(bids);
    const deepest = Math.max(askRows.length ? askRows[askRows.length - 1][2] : 0, bidRows.length ? bidRows[bidRows.length - 1][2] : 0) || 1;
    const mine = this.app.account.ownPrices(this.instrument);
    const row = (side) => ([p, a, total]) => el("tr", {
      class: `level ${side}${mine.has(`${side}:${p}`) ? " mine" : ""}`,
      dataset: { price: String(p), amount: String(a), side },
      style: { "--depth": `${((total / deepest) * 100).toFixed(1)}%` },
    },
    el("td", { class: "num price" }, fmt.price(p, tick)),
    el("td", { class: "num" }, fmt.amount(a, step)),
    el("td", { class: "num dim" }, fmt.amount(total, step)));
    const bestBid = bids.length ? bids[0][0] : null;
    const bestAsk = asks.length ? asks[0][0] : null;
    const spread = bestBid !== null && bestAsk !== null ? bestAsk - bestBid : null;
    const mid = spread !== null ? (bestAsk + bestBid) / 2 : null;
    replace(book, el("div", { class: "table-wrap" }, el("table", { class: "book-table" },
      el("caption", { class: "visually-hidden" }, `Order book of ${this.instrument}`),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "num" }, "Price"), el("th", { scope: "col", class: "num" }, "Amount"), el("th", { scope: "col", class: "num" }, "Total"))),
      el("tbody", { class: "asks" }, [...askRows].reverse().map(row("ask"))),
      el("tbody", { class: "spread" }, el("tr", {}, el("td", { colspan: 3 },
        spread !== null ? `Spread ${fmt.price(spread, tick)} (${((spread / mid) * 10_000).toFixed(1)} bps)` : "One-sided book"))),
      el("tbody", { class: "bids" }, bidRows.map(row("bid"))))));
  }

  renderTrades() {
    const tick = this.spec && this.spec.tick_size;
    const step = this.spec && this.spec.min_trade_amount;
    if (!this.trades.length) {
      replace($("#trades"), empty("No trades yet on this instrument."));
      return;
    }
    replace($("#trades"), table([
      { label: "Time", cell: (t) => fmt.time(t.timestamp) },
      { label: "Price", numeric: true, cell: (t) => el("span", { class: t.direction === "buy" ? "up" : "down" }, fmt.price(t.price, tick)) },
      { label: "Amount", numeric: true, cell: (t) => fmt.amount(t.amount, step) },
      { label: "Side", cell: (t) => t.direction === "buy" ? "buy" : "sell" },
    ], this.trades, { caption: "Recent trades" }));
  }

  renderChart() {
    const marks = this.marks;
    const trades = this.chartTrades || [];
    const tick = this.spec && this.spec.tick_size;
    this.chart.render({
      empty: "Waiting for marks and trades…",
      x: { format: clockLabel, ticks: timeTicks },
      y: { format: (v) => fmt.price(v, tick) },
      series: [
        { label: "index", cls: "s-index", points: marks.map(([t, , index]) => [t, index]) },
        { label: "mark", cls: "s-mark", points: marks.map(([t, mark]) => [t, mark]) },
        { label: "trades", cls: "s-trades", kind: "dots", points: trades },
      ],
    });
  }

  // -- the order ticket ----------------------------------------------------------------------

  renderOrders() {
    const account = this.app.account;
    const form = $("#order-form");
    const signedIn = account.signedIn;
    form.classList.toggle("locked", !signedIn);
    for (const field of form.querySelectorAll("input, select, button")) field.disabled = !signedIn;
    $("#order-hint").hidden = signedIn;
    const holder = $("#open-orders");
    if (!signedIn) {
      replace(holder, empty("Read-only: enter an API key in Account to place and cancel orders."));
      return;
    }
    const orders = account.openOrders().filter((o) => o.instrument_name === this.instrument);
    if (!orders.length) {
      replace(holder, empty(`No open orders on ${this.instrument}.`));
      return;
    }
    replace(holder, account.ordersTable(orders, true));
  }

  async submitOrder(event) {
    event.preventDefault();
    const form = event.target;
    const status = $("#order-status");
    const side = form.elements.side.value;
    const params = {
      instrument_name: this.instrument,
      amount: form.elements.amount.value.trim(),
      price: form.elements.price.value.trim(),
      type: "limit",
      time_in_force: form.elements.tif.value,
      post_only: form.elements.post_only.checked,
      label: "dashboard",
    };
    if (!params.price || !params.amount) {
      status.className = "form-status error";
      status.textContent = "Enter a price and an amount.";
      return;
    }
    status.className = "form-status";
    status.textContent = `Sending ${side} ${params.amount} @ ${params.price}…`;
    const button = $("#order-submit");
    button.disabled = true;
    try {
      const result = await this.app.connection.call(side === "buy" ? "private/buy" : "private/sell", params);
      const order = result.order;
      this.app.account.upsertOrder(order);
      status.className = "form-status ok";
      status.textContent = `Order ${order.order_id} ${order.order_state}: ${order.direction} ${order.amount} @ ${order.price}` +
        (result.trades && result.trades.length ? `, ${result.trades.length} fill(s)` : "");
    } catch (error) {
      status.className = "form-status error";
      status.textContent = `Refused (${error.code}): ${error.message}`;
    } finally {
      button.disabled = !this.app.account.signedIn;
    }
  }
}

// Samples sorted by time, one per time (the later wins).
function increasing(samples) {
  const byTime = new Map(samples.map((s) => [s[0], s]));
  return [...byTime.values()].sort((a, b) => a[0] - b[0]);
}
