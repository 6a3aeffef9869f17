// The dashboard's entry: one WebSocket to the node, the views, the tabs, the connection banner.

import { AccountView } from "./account.js";
import { NodeView, OracleView, RiskView, SettlementView } from "./console.js";
import { $ } from "./dom.js";
import * as fmt from "./format.js";
import { MarketView } from "./market.js";
import { OptionsView } from "./options.js";
import { Connection } from "./rpc.js";

const VIEWS = ["market", "options", "account", "risk", "oracle", "settlement", "node"];
const INSTRUMENTS_RETRY_MS = [1_000, 2_000, 4_000, 8_000];

class App {
  constructor() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.connection = new Connection(`${scheme}://${location.host}/ws/api/v2`);
    this.instruments = new Map();
    this.currencies = [];
    this.market = new MarketView(this);
    this.account = new AccountView(this);
    this.options = new OptionsView(this);
    this.risk = new RiskView(this);
    this.oracle = new OracleView(this);
    this.settlement = new SettlementView(this);
    this.node = new NodeView(this);
    this.view = null;
    this.wasOpen = false;
    this.connection.subscribe("venue.status", (status) => this.onStatus(status));
    this.connection.onState(() => this.onConnection());
    this.setUpTabs();
    setInterval(() => this.renderBanner(), 500);
    this.connection.connect();
  }

  async onConnection() {
    const connection = this.connection;
    this.renderBanner();
    const pill = $("#connection");
    pill.dataset.state = connection.state;
    pill.textContent = { open: "live", connecting: "connecting", reconnecting: "reconnecting", down: "offline", idle: "idle" }[connection.state];
    if (connection.state === "open" && !this.wasOpen) {
      this.wasOpen = true;
      await this.loadInstruments();
      this.market.resynced();
      await this.account.resynced();
      this.node.load();
      this.market.renderOrders();
    } else if (connection.state !== "open") {
      this.wasOpen = false;
    }
  }

  renderBanner() {
    const banner = $("#banner");
    const connection = this.connection;
    const seconds = Math.max(0, Math.ceil((connection.retryAt - Date.now()) / 1000));
    let text = "";
    if (connection.state === "reconnecting") {
      text = connection.socket ? "Connection lost. Reconnecting…" : `Connection lost. Reconnecting in ${seconds}s…`;
    } else if (connection.state === "down") {
      text = connection.everOpened
        ? `The node is not answering (attempt ${connection.attempt}). Retrying in ${seconds}s; data shown may be stale.`
        : `Cannot reach the node at ${location.host} (attempt ${connection.attempt}). Retrying in ${seconds}s.`;
    }
    const shown = Boolean(text);
    banner.hidden = !shown;
    banner.dataset.state = connection.state;
    document.body.classList.toggle("stale", shown);
    if (shown && $("#banner-text").textContent !== text) $("#banner-text").textContent = text;
  }

  // The instruments and currencies; a failure (a slow or rate-limiting node) is retried while
  // the connection lasts, since every view starts from them.
  async loadInstruments(attempt = 0) {
    const socket = this.connection.socket;
    try {
      const instruments = await this.connection.call("public/get_instruments", { currency: "any" });
      this.instruments = new Map(instruments.map((i) => [i.instrument_name, i]));
      const currencies = await this.connection.call("public/get_currencies", {});
      const underlyings = currencies.map((c) => c.currency).filter((c) => c !== "USDC");
      const listed = new Set(instruments.map((i) => i.base_currency));
      this.currencies = underlyings.filter((c) => listed.has(c));
      this.market.setInstruments(instruments);
      if (JSON.stringify(this.currencies) !== JSON.stringify(this.oracle.currencies)) {
        this.oracle.currencies = this.currencies;
        this.oracle.setCurrencies(this.currencies);
      }
      this.options.setCurrencies(this.currencies);
      if (this.view === "options") this.options.onShow();
    } catch (error) {
      this.report(error);
      const delay = INSTRUMENTS_RETRY_MS[Math.min(attempt, INSTRUMENTS_RETRY_MS.length - 1)];
      setTimeout(() => {
        if (socket !== null && socket === this.connection.socket && this.connection.isOpen) this.loadInstruments(attempt + 1);
      }, delay);
    }
  }

  onStatus(status) {
    $("#height").textContent = status.height.toLocaleString("en-US");
    $("#block-time").textContent = fmt.time(status.timestamp);
    $("#interval").textContent = status.block ? fmt.ms(status.block.interval_ms) : fmt.DASH;
    $("#insurance").textContent = fmt.compact(status.insurance_fund);
    const breakers = status.underlyings.filter((u) => u.breaker_open).map((u) => u.currency);
    const alarm = $("#alarm");
    alarm.hidden = !breakers.length && !status.halted && !status.liquidation_backlog;
    alarm.textContent = status.halted ? `Node halted: ${status.halted}`
      : breakers.length ? `Circuit breaker open: ${breakers.join(", ")}`
        : status.liquidation_backlog ? `${status.liquidation_backlog} sub-ledger(s) in liquidation` : "";
    this.node.onStatus(status);
    this.account.onBlock();
  }

  report(error) {
    const toast = $("#toast");
    toast.textContent = error.code !== undefined ? `${error.message} (${error.code})` : String(error.message || error);
    toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { toast.hidden = true; }, 6_000);
  }

  setUpTabs() {
    const tabs = [...document.querySelectorAll("[role=tab]")];
    for (const tab of tabs) {
      tab.addEventListener("click", () => this.show(tab.dataset.view, true));
      tab.addEventListener("keydown", (event) => {
        const index = tabs.indexOf(tab);
        const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
        if (!(event.key in moves)) return;
        event.preventDefault();
        const next = tabs[(moves[event.key] + tabs.length) % tabs.length];
        next.focus();
        this.show(next.dataset.view, true);
      });
    }
    window.addEventListener("hashchange", () => this.show(location.hash.slice(1), false));
    $("#banner-retry").addEventListener("click", () => this.connection.retryNow());
    this.show(location.hash.slice(1), false);
  }

  show(view, push) {
    if (!VIEWS.includes(view)) view = "market";
    if (view === this.view) return;
    if (this.view === "options") this.options.onHide();
    this.view = view;
    for (const name of VIEWS) {
      const tab = $(`#tab-${name}`);
      const selected = name === view;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      $(`#view-${name}`).hidden = !selected;
    }
    if (push && location.hash !== `#${view}`) history.replaceState(null, "", `#${view}`);
    if (view === "options") this.options.onShow();
    if (view === "market") this.market.schedule();
    if (view === "node") this.node.schedule();
    if (view === "account") this.account.refresh(true);
  }
}

window.strikechainDashboard = new App();
