// The operator's console: liquidations (queue, insurance fund, auto-deleveraging), the oracle
// (sources against the index, the breaker), settlement batches, and block timing over time.
// Each panel renders the data of one ``venue.*`` channel.

import { Chart, clockLabel, timeTicks } from "./charts.js";
import { $, badge, definitionList, el, empty, replace, table } from "./dom.js";
import * as fmt from "./format.js";

const BLOCKS_SHOWN = 600;

export class RiskView {
  constructor(app) {
    this.app = app;
    this.root = $("#view-risk");
    this.fund = new Chart($("#insurance-chart"), { label: "Insurance fund over time", height: 140 });
    app.connection.subscribe("venue.liquidations", (data) => this.render(data));
  }

  render(data) {
    this.data = data;
    replace($("#risk-facts"), definitionList([
      ["Insurance fund", `${fmt.usd(data.insurance_fund)} USDC`],
      ["Liquidation queue", String(data.queue_length)],
      ["Keeper auctions open", String(data.keeper_auctions)],
      ["ADL events (recent)", String(data.adl_events.length)],
    ]));
    replace($("#liquidation-queue"), data.queue.length ? table([
      { label: "Account", cell: (r) => el("code", { title: r.account }, fmt.shortHash(r.account)) },
      { label: "Sub-ledger", cell: (r) => r.currency },
      { label: "Equity", numeric: true, cell: (r) => fmt.usd(r.equity) },
      { label: "Maintenance", numeric: true, cell: (r) => fmt.usd(r.maintenance_margin) },
      { label: "Shortfall", numeric: true, cell: (r) => el("span", { class: "down" }, fmt.usd(r.maintenance_excess)) },
      { label: "Positions", numeric: true, cell: (r) => String(r.positions) },
    ], data.queue, { caption: "Liquidation queue" }) : empty("The liquidation queue is empty: every sub-ledger is above its maintenance margin."));
    this.fund.render({
      empty: "No insurance fund history yet",
      x: { format: clockLabel, ticks: timeTicks },
      y: { format: (v) => fmt.compact(v) },
      series: [{ cls: "s-mark", kind: "step", points: data.insurance_history }],
    });
    replace($("#adl-events"), data.adl_events.length ? eventsTable(data.adl_events, "Auto-deleveraging events") :
      empty("No auto-deleveraging: the insurance fund has covered every bankrupt sub-ledger."));
    replace($("#liquidation-events"), data.events.length ? eventsTable(data.events, "Liquidation events") :
      empty("No liquidation events since the node started."));
  }
}

function eventsTable(events, caption) {
  return table([
    { label: "Block", numeric: true, cell: (e) => String(e.height) },
    { label: "Time", cell: (e) => fmt.time(e.timestamp) },
    { label: "Event", cell: (e) => e.type.replaceAll("_", " ") },
    { label: "Account", cell: (e) => e.account ? el("code", { title: e.account }, fmt.shortHash(e.account)) : fmt.DASH },
    { label: "Details", cell: (e) => describe(e) },
  ], events, { caption });
}

function describe(event) {
  const parts = [];
  for (const [key, value] of Object.entries(event)) {
    if (["type", "height", "timestamp", "account"].includes(key)) continue;
    parts.push(`${key.replaceAll("_", " ")} ${typeof value === "string" && value.startsWith("0x") ? fmt.shortHash(value) : value}`);
  }
  return parts.join(" · ");
}

export class OracleView {
  constructor(app) {
    this.app = app;
    this.root = $("#view-oracle");
    this.charts = new Map();
    this.stops = [];
  }

  setCurrencies(currencies) {
    for (const stop of this.stops) stop();
    const holder = $("#oracle-cards");
    if (!currencies.length) {
      replace(holder, empty("No underlying is configured."));
      return;
    }
    replace(holder, currencies.map((c) => el("article", { class: "card oracle-card", id: `oracle-${c}`, "aria-label": `${c} oracle` },
      el("header", { class: "card-head" }, el("h3", {}, `${c} index`), el("span", { class: "breaker" })),
      el("div", { class: "facts-holder" }, empty("Waiting for the oracle…")),
      el("div", { class: "chart-holder" }),
      el("div", { class: "sources" }))));
    this.charts.clear();
    for (const c of currencies) {
      this.charts.set(c, new Chart($(`#oracle-${c} .chart-holder`), { label: `${c} index and confidence band`, height: 160 }));
    }
    this.stops = currencies.map((c) => this.app.connection.subscribe(`venue.oracle.${c}`, (data) => this.render(data)));
  }

  render(data) {
    const card = $(`#oracle-${data.currency}`);
    if (!card) return;
    const breaker = data.breaker_open
      ? badge(`breaker open: ${data.breaker_reason || "no price"}`, "bad")
      : badge("breaker closed", "ok");
    replace($(".breaker", card), breaker);
    card.classList.toggle("alarm", Boolean(data.breaker_open));
    replace($(".facts-holder", card), definitionList([
      ["Index", `${fmt.usd(data.index_price)} USDC`],
      ["Confidence", `± ${fmt.usd(data.confidence)}`],
      ["Quorum", `${data.quorum} of ${data.reporters}`],
      ["Staleness limit", fmt.duration(data.staleness_ms)],
      ["Open since", data.breaker_open && data.breaker_opened ? fmt.time(data.breaker_opened) : fmt.DASH],
      ["Liquidations", data.liquidations_paused ? badge("paused", "warn") : badge("running", "ok")],
    ]));
    const history = data.history || [];
    this.charts.get(data.currency).render({
      empty: "No index yet",
      x: { format: clockLabel, ticks: timeTicks },
      y: { format: (v) => fmt.usd(v, 0) },
      band: { lower: history.map(([t, i, c]) => [t, i - c]), upper: history.map(([t, i, c]) => [t, i + c]) },
      series: [
        { label: "index", cls: "s-index", kind: "step", points: history.map(([t, i]) => [t, i]) },
        { label: "sources", cls: "s-trades", kind: "dots", points: data.sources.filter((s) => s.price !== null).map((s) => [s.timestamp, s.price]) },
      ],
    });
    replace($(".sources", card), data.sources.length ? table([
      { label: "Reporter", cell: (s) => el("code", { title: s.reporter }, fmt.shortHash(s.reporter)) },
      { label: "Price", numeric: true, cell: (s) => fmt.usd(s.price) },
      { label: "vs index", numeric: true, cell: (s) => s.deviation_bps === null || s.deviation_bps === undefined ? fmt.DASH : `${s.deviation_bps.toFixed(1)} bps` },
      { label: "Confidence", numeric: true, cell: (s) => fmt.usd(s.confidence) },
      { label: "Age", numeric: true, cell: (s) => s.age_ms === undefined ? fmt.DASH : fmt.duration(s.age_ms) },
      { label: "Vol expiries", numeric: true, cell: (s) => String(s.vol_expiries ?? 0) },
      { label: "State", cell: (s) => s.price === null ? badge("no report", "bad") : s.fresh ? badge("fresh", "ok") : badge("stale", "warn") },
    ], data.sources, { caption: `${data.currency} oracle sources` }) : empty("No reporter is registered."));
  }
}

export class SettlementView {
  constructor(app) {
    this.app = app;
    this.root = $("#view-settlement");
    app.connection.subscribe("venue.settlement", (data) => this.render(data));
  }

  render(data) {
    if (!data.enabled) {
      replace($("#settlement-facts"), empty("Settlement is disabled on this node: no batches are committed to a chain."));
      replace($("#batches"));
      return;
    }
    replace($("#settlement-facts"), definitionList([
      ["Batches committed", String(data.batches_committed)],
      ["Queued for the chain", String(data.batches_queued), data.batches_queued > 1 ? "tone-warn" : null],
      ["Blocks in the open batch", String(data.open_blocks)],
      ["Challenge window", fmt.duration(data.challenge_window_s * 1000)],
      ["Last final batch", data.last_final === null ? "none yet" : `#${data.last_final}`],
      ["Chain errors", String(data.chain_errors), data.chain_errors ? "tone-bad" : null],
    ]));
    const now = Date.now();
    replace($("#batches"), data.batches.length ? table([
      { label: "Batch", numeric: true, cell: (b) => `#${b.number}` },
      { label: "Blocks", numeric: true, cell: (b) => `${b.first_block}–${b.last_block}` },
      { label: "State root", cell: (b) => el("code", { title: b.state_root }, fmt.shortHash(b.state_root)) },
      { label: "Withdrawals root", cell: (b) => el("code", { title: b.withdrawal_root }, fmt.shortHash(b.withdrawal_root)) },
      { label: "Gas", numeric: true, cell: (b) => b.gas.toLocaleString("en-US") },
      { label: "Posted", numeric: true, cell: (b) => `${(b.posted_bytes / 1024).toFixed(1)} KiB ${b.method}` },
      { label: "Committed", cell: (b) => fmt.dateTime(b.committed_at) },
      { label: "Finality", cell: (b) => b.final ? badge("final", "ok") : badge(`challengeable ${fmt.duration(b.final_at - now)}`, "warn") },
    ], data.batches, { caption: "Settlement batches" }) : empty(`No batch committed yet: the open batch holds ${data.open_blocks} blocks.`));
  }
}

export class NodeView {
  constructor(app) {
    this.app = app;
    this.root = $("#view-node");
    this.blocks = [];
    this.interval = new Chart($("#interval-chart"), { label: "Block interval over time", height: 170 });
    this.latency = new Chart($("#latency-chart"), { label: "Acknowledgement latency over time", height: 170 });
    this.transactions = new Chart($("#tx-chart"), { label: "Transactions per block", height: 120 });
    this.pending = false;
  }

  async load() {
    try {
      const blocks = await this.app.connection.call("public/get_block_stats", { count: BLOCKS_SHOWN });
      const last = this.blocks.length ? this.blocks[this.blocks.length - 1].height : -1;
      const newer = this.blocks.filter((b) => b.height > (blocks.length ? blocks[blocks.length - 1].height : last));
      this.blocks = blocks.concat(newer).slice(-BLOCKS_SHOWN);
      this.schedule();
    } catch (error) {
      this.app.report(error);
    }
  }

  onStatus(status) {
    const block = status.block;
    if (!block) return;
    const last = this.blocks[this.blocks.length - 1];
    if (!last || block.height > last.height) {
      this.blocks.push(block);
      if (this.blocks.length > BLOCKS_SHOWN) this.blocks.shift();
    }
    this.status = status;
    this.schedule();
  }

  schedule() {
    if (this.pending || this.root.hidden) return;
    this.pending = true;
    setTimeout(() => { this.pending = false; this.render(); }, 250);
  }

  render() {
    const blocks = this.blocks;
    const status = this.status;
    const intervals = blocks.filter((b) => b.interval_ms > 0).map((b) => b.interval_ms);
    const latencies = blocks.filter((b) => b.ack_latency_ms !== null).map((b) => b.ack_latency_ms);
    replace($("#node-facts"), definitionList([
      ["Height", status ? status.height.toLocaleString("en-US") : fmt.DASH],
      ["Target interval", status ? fmt.ms(status.block_interval_ms) : fmt.DASH],
      ["Interval p50 / p99", intervals.length ? `${fmt.ms(quantile(intervals, 0.5))} / ${fmt.ms(quantile(intervals, 0.99))}` : fmt.DASH],
      ["Ack latency p50 / p99", latencies.length ? `${fmt.ms(quantile(latencies, 0.5))} / ${fmt.ms(quantile(latencies, 0.99))}` : fmt.DASH],
      ["Inbox", status ? String(status.inbox) : fmt.DASH],
      ["Acknowledged", status ? status.acks.toLocaleString("en-US") : fmt.DASH],
      ["Node", status && status.halted ? badge(`halted: ${status.halted}`, "bad") : badge("running", "ok")],
    ]));
    const x = { format: clockLabel, ticks: timeTicks };
    this.interval.render({
      empty: "Waiting for blocks…", x, y: { format: (v) => `${v.toFixed(0)} ms`, min: 0 },
      markers: [],
      series: [{ label: "interval", cls: "s-mark", points: blocks.filter((b) => b.interval_ms > 0).map((b) => [b.timestamp, b.interval_ms]) }],
    });
    this.latency.render({
      empty: "No acknowledgements yet", x, y: { format: (v) => `${v.toFixed(0)} ms`, min: 0 },
      series: [{ label: "mean ack latency per block", cls: "s-index", points: blocks.filter((b) => b.ack_latency_ms !== null).map((b) => [b.timestamp, b.ack_latency_ms]) }],
    });
    this.transactions.render({
      empty: "Waiting for blocks…", x, y: { format: (v) => v.toFixed(0), min: 0 },
      series: [{ label: "transactions", cls: "s-trades", kind: "bars", points: blocks.map((b) => [b.timestamp, b.transactions]) }],
    });
  }
}

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
