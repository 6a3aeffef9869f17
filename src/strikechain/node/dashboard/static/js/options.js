// The options chain: per underlying and expiry, calls and puts by strike with bid/ask, their
// IVs, mark, mark IV and Greeks; and the expiry's IV smile (the engine's mark IV curve from the
// oracle's surface, with the listed strikes' bid, ask and mark IVs).

import { Chart } from "./charts.js";
import { $, el, empty, replace } from "./dom.js";
import * as fmt from "./format.js";

export class OptionsView {
  constructor(app) {
    this.app = app;
    this.root = $("#view-options");
    this.currency = null;
    this.expiry = null;
    this.chain = null;
    this.stop = null;
    this.smile = new Chart($("#smile-chart"), { label: "Implied volatility smile", height: 240 });
    $("#options-currency").addEventListener("change", (event) => this.select(event.target.value));
    $("#options-expiry").addEventListener("change", (event) => {
      this.expiry = Number(event.target.value);
      this.render();
    });
  }

  setCurrencies(currencies) {
    const picker = $("#options-currency");
    replace(picker, currencies.map((c) => el("option", { value: c }, c)));
    if (!currencies.length) return;
    picker.value = currencies.includes(this.currency) ? this.currency : currencies[0];
  }

  // Subscribe while the view is shown (a chain is the costliest channel to build).
  onShow() {
    const currency = $("#options-currency").value;
    if (currency && currency !== this.currency) this.select(currency);
    else if (!this.stop && currency) this.select(currency);
  }

  onHide() {
    if (this.stop) this.stop();
    this.stop = null;
  }

  select(currency) {
    if (this.stop) this.stop();
    this.currency = currency;
    this.chain = null;
    replace($("#chain"), empty("Loading the options chain…"));
    this.stop = this.app.connection.subscribe(`venue.options.${currency}`, (chain) => {
      this.chain = chain;
      this.render();
    });
  }

  render() {
    const chain = this.chain;
    const holder = $("#chain");
    if (!chain) return;
    holder.dataset.timestamp = String(chain.timestamp);
    if (!chain.expiries.length) {
      replace($("#options-expiry"));
      replace(holder, empty(`No ${chain.currency} options are listed on this venue.`));
      this.smile.render({ series: [], x: { format: String }, y: { format: String }, empty: "No smile: no options listed" });
      return;
    }
    const expiries = chain.expiries;
    if (!expiries.some((e) => e.expiration_timestamp === this.expiry)) this.expiry = expiries[0].expiration_timestamp;
    const picker = $("#options-expiry");
    replace(picker, expiries.map((e) => el("option", { value: e.expiration_timestamp }, `${e.label} (${e.days.toFixed(1)} d)`)));
    picker.value = String(this.expiry);
    const expiry = expiries.find((e) => e.expiration_timestamp === this.expiry);
    $("#options-index").textContent = `Index ${fmt.usd(chain.index_price)}`;
    replace(holder, this.chainTable(expiry, chain.index_price));
    this.renderSmile(expiry, chain.index_price);
  }

  chainTable(expiry, index) {
    const side = (option, cls) => {
      if (!option) return Array.from({ length: 9 }, () => el("td", { class: `num dim ${cls}` }, fmt.DASH));
      const g = option.greeks || {};
      const cells = [
        [fmt.usd(option.bid), "bid"], [fmt.usd(option.ask), "ask"], [fmt.usd(option.mark_price), "mark"],
        [option.mark_iv === null ? fmt.DASH : fmt.fixed(option.mark_iv, 1), "iv"],
        [option.bid_iv === null || option.ask_iv === null ? fmt.DASH : `${fmt.fixed(option.bid_iv, 1)}/${fmt.fixed(option.ask_iv, 1)}`, "iv"],
        [fmt.fixed(g.delta, 3), "greek delta"], [fmt.fixed(g.gamma, 6), "greek"], [fmt.fixed(g.vega, 2), "greek"], [fmt.fixed(g.theta, 2), "greek"],
      ];
      const ordered = cls === "call" ? cells : [...cells].reverse();
      return ordered.map(([text, c]) => el("td", { class: `num ${cls} ${c}`, title: option.instrument_name }, text));
    };
    const heads = ["Bid", "Ask", "Mark", "IV", "Bid/Ask IV", "Δ", "Γ", "Vega", "Θ"];
    const titles = { "Δ": "Delta", "Γ": "Gamma", "Θ": "Theta per day", "Vega": "Vega per vol point" };
    const headCells = (names, cls) => names.map((h) => el("th", { scope: "col", class: `num ${cls}`, title: titles[h] || null }, h));
    const body = expiry.strikes.map((row) => el("tr", { class: row.strike <= index ? "itm-call" : "itm-put" },
      side(row.call, "call"),
      el("th", { scope: "row", class: "num strike" }, fmt.usd(row.strike, 0)),
      side(row.put, "put")));
    return el("div", { class: "table-wrap chain-wrap" }, el("table", { class: "chain-table" },
      el("caption", { class: "visually-hidden" }, `Options chain, expiry ${expiry.label}`),
      el("thead", {},
        el("tr", {}, el("th", { colspan: 9, scope: "colgroup", class: "call" }, "Calls"), el("th", {}, ""), el("th", { colspan: 9, scope: "colgroup", class: "put" }, "Puts")),
        el("tr", {}, headCells(heads, "call"), el("th", { scope: "col", class: "num strike" }, "Strike"), headCells([...heads].reverse(), "put"))),
      el("tbody", {}, body)));
  }

  renderSmile(expiry, index) {
    const options = expiry.strikes.flatMap((row) => [row.call, row.put].filter(Boolean).map((o) => [row.strike, o]));
    const pick = (key) => options.filter(([, o]) => o[key] !== null && o[key] !== undefined).map(([k, o]) => [k, o[key]]);
    this.smile.render({
      empty: "No implied vols yet: the oracle has not reported a surface for this expiry",
      x: { format: (v) => fmt.compact(v) },
      y: { format: (v) => `${v.toFixed(0)}%` },
      markers: index ? [{ x: index, label: "index" }] : [],
      series: [
        { label: "surface (mark IV)", cls: "s-mark", points: expiry.smile },
        { label: "bid IV", cls: "s-bid", kind: "dots", points: pick("bid_iv") },
        { label: "ask IV", cls: "s-ask", kind: "dots", points: pick("ask_iv") },
        { label: "mark IV", cls: "s-index", kind: "dots", radius: 3.5, points: pick("mark_iv") },
      ],
    });
  }
}
