"""strikechain's own methods and channels: the venue as its operator console and the dashboard
see it, where Deribit has no method (the liquidation queue, the insurance fund, auto-deleveraging,
the oracle's sources and breaker, settlement batches, block timing, the options chain).

:class:`VenueMonitor` is a runtime sink, attached once per node (:func:`attach`) after the
API's :class:`~strikechain.node.api.history.TradeHistory` and before the
:class:`~strikechain.node.api.sessions.Hub`. It records, in bounded rings, what the engine does
not keep: per-block timing (block interval, transactions, mean acknowledgement latency, log
write), liquidation and auto-deleveraging events, the insurance fund, each underlying's index
and each instrument's mark over time. Everything else is read from the engine and the node as of
the last block. Amounts are USDC (numbers, as the Deribit shapes give them), times milliseconds.

Public methods (parameters in brackets; unknown ones refused with -32602):

- ``public/get_venue_status``: height, block time, configured block interval, inbox, halted,
  insurance fund, liquidation backlog, per underlying its index, confidence, breaker and stress
  mode, settlement in brief, and the last block's timing (``block``).
- ``public/get_block_stats [count=120]``: the last ``count`` blocks' timing, oldest first:
  ``{height, timestamp, interval_ms, transactions, acks, ack_latency_ms, log_write_ms}``
  (``ack_latency_ms``: the mean over the block's acknowledgements, null without any).
- ``public/get_liquidations [count=50]``: the liquidation queue (at most
  :data:`QUEUE_ROWS_MAX` rows, ``queue_length`` counts all), keeper auctions open, the insurance
  fund and its history, the latest liquidation events and auto-deleveraging events.
- ``public/get_oracle currency``: the underlying's index and confidence, the breaker (open,
  reason, since), whether liquidations are paused, quorum and staleness, each registered
  reporter's latest report against the index, and the index's history.
- ``public/get_settlement [count=20]``: whether settlement runs, the challenge window, batches
  committed and queued, blocks in the open batch, and the last ``count`` committed batches with
  their roots, block range, gas, bytes posted, commit time and finality (``final_at``: commit
  time plus the challenge window; ``final`` judged at the node's clock).
- ``public/get_options_chain currency``: the underlying's options by expiry and strike (bid, ask,
  their sizes and IVs, mark, mark IV, Greeks, open interest) and per expiry the smile: the mark
  IV the engine prices at :data:`SMILE_POINTS` strikes across its surface nodes.
- ``public/get_price_history instrument_name [count=300]``: the instrument's latest trades and
  its mark and index over time, for a price chart.
- ``private/get_account_risk [currency]`` (scope read): the account's sub-ledgers with their
  cash, equity, P&L, initial and maintenance margin, free collateral, distance to liquidation
  (``maintenance_excess`` and its share of equity; with one perpetual position and nothing else,
  the ``estimated_liquidation_price`` too) and positions.

Channels (``public/subscribe``; each sends the corresponding method's result with its default
parameters on subscribing, then after blocks that change it):

- ``venue.status``: ``public/get_venue_status``, every block.
- ``venue.liquidations``, ``venue.settlement``: when they change.
- ``venue.oracle.{currency}``: when it changes.
- ``venue.options.{currency}``: when it changes, at most once per :data:`OPTIONS_INTERVAL_NS` of
  block time (a chain is the costliest thing to build: every option's IVs and Greeks).

Limits: every ring is bounded (``*_MAX`` below), ``count`` parameters are 1 to the ring's bound.
Cost per block without subscribers: one metrics read (about 0.1 ms) and a pass over the block's
events and the listed markets' marks.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any, Final

import msgspec

from strikechain.engine.accounts import Market, SubLedger
from strikechain.engine.calendar import civil_from_ns
from strikechain.engine.events import (
    BackstopTaken,
    CircuitBreakerClosed,
    CircuitBreakerOpened,
    Deleveraged,
    Event,
    InsurancePaid,
    LiquidationAuctionEnded,
    LiquidationAuctionStarted,
    LiquidationFee,
    LiquidationOrder,
    LiquidationQueued,
    LiquidationQueueLeft,
    MarginCall,
    StressMode,
)
from strikechain.engine.instruments import Instrument
from strikechain.engine.oracle import option_vols
from strikechain.engine.units import QUOTE_SCALE
from strikechain.node.api import shapes
from strikechain.node.api.errors import invalid_params
from strikechain.node.api.history import TradeHistory
from strikechain.node.api.public import (
    Params,
    check_currency,
    require_history,
    require_instrument,
)
from strikechain.node.api.registry import Context, attached, method
from strikechain.node.keys import Scope
from strikechain.runtime.runtime import Committed

BLOCK_SAMPLES_MAX: Final = 1_200
"""Two minutes of 100 ms blocks."""
EVENTS_MAX: Final = 500
"""Liquidation events kept; auto-deleveraging events have a ring of their own, as large."""
SERIES_MAX: Final = 600
"""Samples per index, mark and insurance-fund series (one per change, so one per block at most)."""
QUEUE_ROWS_MAX: Final = 100
BATCHES_MAX: Final = 100
TRADES_MAX: Final = 1_000
SMILE_POINTS: Final = 25
OPTIONS_MAX: Final = 1_000
"""Options of one underlying a chain shows at most (nearest expiries first)."""
OPTIONS_INTERVAL_NS: Final = 1_000_000_000
NANOS_PER_MS: Final = 1_000_000
NANOS_PER_SECOND: Final = 1_000_000_000
ACK_SUM: Final = "strikechain_ack_latency_seconds_sum"
ACK_COUNT: Final = "strikechain_ack_latency_seconds_count"
ENCODER: Final = msgspec.json.Encoder(decimal_format="number")

_LIQUIDATION_EVENTS: Final = frozenset(
    {
        LiquidationQueued,
        LiquidationQueueLeft,
        LiquidationOrder,
        LiquidationFee,
        InsurancePaid,
        BackstopTaken,
        LiquidationAuctionStarted,
        LiquidationAuctionEnded,
        StressMode,
        MarginCall,
        CircuitBreakerOpened,
        CircuitBreakerClosed,
    }
)
"""The event types the liquidations view keeps, matched by exact type (events are final
structs): a block's thousands of order events pass through here, and ``isinstance`` against
a tuple cost ~1 ms a 1,300-order block, inside its cut."""
_EVENT_NAMES: Final = {
    LiquidationQueued: "liquidation_queued",
    LiquidationQueueLeft: "liquidation_left",
    LiquidationOrder: "liquidation_order",
    LiquidationFee: "liquidation_fee",
    InsurancePaid: "insurance_paid",
    BackstopTaken: "backstop",
    LiquidationAuctionStarted: "keeper_auction_started",
    LiquidationAuctionEnded: "keeper_auction_ended",
    StressMode: "stress_mode",
    MarginCall: "margin_call",
    CircuitBreakerOpened: "breaker_opened",
    CircuitBreakerClosed: "breaker_closed",
    Deleveraged: "deleveraged",
}
_MONEY_FIELDS: Final = frozenset(
    {"equity", "maintenance", "amount", "uncovered", "notional", "socialized"}
)


class BlockSample(msgspec.Struct, frozen=True, array_like=True, gc=False):
    height: int
    timestamp_ns: int
    interval_ns: int
    transactions: int
    acks: int
    ack_latency_s: float
    """Mean over the block's acknowledgements (0 without any)."""
    log_write_s: float


class VenueMonitor:
    """The runtime sink that remembers what the venue views need (module docstring)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.blocks: deque[BlockSample] = deque(maxlen=BLOCK_SAMPLES_MAX)
        self.liquidation_events: deque[dict[str, Any]] = deque(maxlen=EVENTS_MAX)
        self.adl_events: deque[dict[str, Any]] = deque(maxlen=EVENTS_MAX)
        self.insurance: deque[tuple[int, int]] = deque(maxlen=SERIES_MAX)
        self.indices: dict[str, deque[tuple[int, int, int, bool]]] = {}
        """Underlying -> (time ns, index, confidence, breaker open), on each change."""
        self.marks: dict[str, deque[tuple[int, int, int]]] = {}
        """Instrument -> (time ns, mark, index), on each change of the mark."""
        self._previous_ns: int | None = None
        self._acks = node.metrics.registry.restricted_registry([ACK_SUM, ACK_COUNT])
        self._ack_totals = self._read_acks()
        self._last: dict[str, bytes] = {}
        """Channel -> the data last published (without its time)."""
        self._options_ns: dict[str, int] = {}

    # -- the sink -------------------------------------------------------------------------------

    def on_block(self, committed: Committed) -> None:
        engine = self.node.engine
        block = committed.block
        now = block.timestamp_ns
        previous, self._previous_ns = self._previous_ns, now
        total_s, count = self._read_acks()
        acks = count - self._ack_totals[1]
        latency = (total_s - self._ack_totals[0]) / acks if acks > 0 else 0.0
        self._ack_totals = (total_s, count)
        log_write_s = getattr(self.node.log, "last_append_s", 0.0)
        self.blocks.append(
            BlockSample(
                block.height,
                now,
                0 if previous is None else max(0, now - previous),
                len(block.transactions),
                int(acks),
                max(latency, 0.0),
                float(log_write_s),
            )
        )
        self._record_events(engine, committed.result.events, block.height, now)
        if not self.insurance or self.insurance[-1][1] != engine.insurance_fund:
            self.insurance.append((now, engine.insurance_fund))
        for name, state in engine.underlyings.items():
            oracle = state.oracle
            if oracle is None or oracle.index is None:
                continue
            series = self.indices.setdefault(name, deque(maxlen=SERIES_MAX))
            sample = (now, oracle.index, oracle.confidence, oracle.breaker_open)
            if not series or series[-1][1:] != sample[1:]:
                series.append(sample)
        for name, market in engine.markets.items():
            if not market.mark_minor:
                continue
            marks = self.marks.get(name)
            if marks is None:
                marks = self.marks[name] = deque(maxlen=SERIES_MAX)
            if not marks or marks[-1][1] != market.mark_minor:
                marks.append((now, market.mark_minor, shapes.index_of(market) or 0))

    def _read_acks(self) -> tuple[float, float]:
        total = count = 0.0
        for metric in self._acks.collect():
            for sample in metric.samples:
                if sample.name == ACK_SUM:
                    total = sample.value
                elif sample.name == ACK_COUNT:
                    count = sample.value
        return total, count

    def _record_events(self, engine: Any, events: Iterable[Event], height: int, now: int) -> None:
        for event in events:
            kind = type(event)
            if kind is Deleveraged:
                self.adl_events.append(_event_shape(engine, event, height, now))
            elif kind in _LIQUIDATION_EVENTS:
                self.liquidation_events.append(_event_shape(engine, event, height, now))

    # -- channels -------------------------------------------------------------------------------

    def snapshot(self, topic: str, currency: str) -> Any:
        """A ``venue.*`` channel's data now (what the method of its topic answers)."""
        engine = self.node.engine
        if topic == "status":
            return venue_status(self)
        if topic == "liquidations":
            return liquidations(self, DEFAULT_EVENTS)
        if topic == "settlement":
            return settlement(self.node, DEFAULT_BATCHES)
        if topic == "oracle":
            return oracle_view(self, currency)
        self._options_ns[currency] = engine.timestamp_ns
        return options_chain(engine, currency)

    def publication(self, name: str, topic: str, currency: str) -> Any | None:
        """The channel's data after a block, or None when nothing changed (or, for a chain,
        when the last was built less than :data:`OPTIONS_INTERVAL_NS` ago)."""
        if topic == "options":
            last_ns = self._options_ns.get(currency)
            now = self.node.engine.timestamp_ns
            if last_ns is not None and now - last_ns < OPTIONS_INTERVAL_NS:
                return None
        data = self.snapshot(topic, currency)
        if topic == "status":
            return data
        seen = ENCODER.encode({k: v for k, v in data.items() if k != "timestamp"})
        if self._last.get(name) == seen:
            return None
        self._last[name] = seen
        return data


def attach(node: Any) -> VenueMonitor:
    """The node's monitor, added as a runtime sink on first use (the hub calls this; every
    method finds the same one)."""
    return attached(node, VenueMonitor, lambda: VenueMonitor(node))


# --- shapes ------------------------------------------------------------------------------------


def _ms(ns: int) -> int:
    return ns // NANOS_PER_MS


def _instrument(engine: Any, name: str) -> Instrument | None:
    found: Instrument | None = engine.instruments.get(name)
    return found if found is not None else engine.expired_instruments.get(name)


def _event_shape(engine: Any, event: Event, height: int, now: int) -> dict[str, Any]:
    """An event as JSON: its type, block, time, and fields with money in USDC, lots as amounts,
    ticks and per-lot prices as prices (an event's ``tx`` is its transaction's position)."""
    shape: dict[str, Any] = {"type": _EVENT_NAMES[type(event)], "height": height}
    shape["timestamp"] = _ms(now)
    name = getattr(event, "instrument", "")
    instrument = _instrument(engine, name) if name else None
    for field in event.__struct_fields__:
        value = getattr(event, field)
        if field in _MONEY_FIELDS:
            shape[field] = shapes.usdc(value)
        elif field in ("lots", "filled_lots") and instrument is not None:
            shape[field.replace("lots", "amount")] = shapes.amount_of(value, instrument)
        elif field in ("limit_ticks", "price_ticks") and instrument is not None:
            shape[field.replace("_ticks", "_price")] = shapes.price_of(value, instrument)
        elif field == "price_per_lot" and instrument is not None:
            per_unit = Decimal(value) / QUOTE_SCALE / instrument.lot_size
            shape["price"] = shapes.number(per_unit.quantize(Decimal("0.000001")))
        elif field == "side":
            shape["direction"] = "buy" if value > 0 else "sell"
        elif field == "ends_ns":
            shape["ends"] = _ms(value)
        elif field not in ("tx",):
            shape[field] = value
    return shape


def _block_shape(sample: BlockSample) -> dict[str, Any]:
    return {
        "height": sample.height,
        "timestamp": _ms(sample.timestamp_ns),
        "interval_ms": round(sample.interval_ns / NANOS_PER_MS, 3),
        "transactions": sample.transactions,
        "acks": sample.acks,
        "ack_latency_ms": round(sample.ack_latency_s * 1_000, 3) if sample.acks else None,
        "log_write_ms": round(sample.log_write_s * 1_000, 3),
    }


def venue_status(monitor: VenueMonitor) -> dict[str, Any]:
    node = monitor.node
    engine = node.engine
    status = node.status()
    underlyings = []
    for name, state in engine.underlyings.items():
        oracle = state.oracle
        index = None if oracle is None else oracle.index
        underlyings.append(
            {
                "currency": name,
                "index_price": shapes.usdc(index) if index else None,
                "confidence": shapes.usdc(oracle.confidence) if oracle is not None else None,
                "breaker_open": True if oracle is None else oracle.breaker_open,
                "breaker_reason": "" if oracle is None else oracle.breaker_reason,
                "stressed": state.stressed,
                "margin_multiplier": state.margin_multiplier_ppm / 1_000_000,
            }
        )
    return {
        "height": engine.height,
        "timestamp": _ms(engine.timestamp_ns),
        "block_interval_ms": node.config.node.block_interval_ms,
        "inbox": status["inbox"],
        "acks": status["acks"],
        "halted": status["halted"],
        "insurance_fund": shapes.usdc(engine.insurance_fund),
        "liquidation_backlog": len(engine.liquidation_queue),
        "underlyings": underlyings,
        "settlement": {
            "enabled": node.settlement is not None,
            "batches_committed": status["batches_committed"],
            "batches_queued": status["batches_queued"],
            "chain_errors": status["chain_errors"],
        },
        "block": _block_shape(monitor.blocks[-1]) if monitor.blocks else None,
    }


def block_stats(monitor: VenueMonitor, count: int) -> list[dict[str, Any]]:
    blocks = monitor.blocks
    start = max(0, len(blocks) - count)
    return [_block_shape(sample) for sample in islice(blocks, start, None)]


def _ledger_row(ledger: SubLedger) -> dict[str, Any]:
    return {
        "account": ledger.account,
        "currency": ledger.underlying,
        "equity": shapes.usdc(ledger.equity),
        "maintenance_margin": shapes.usdc(ledger.maintenance),
        "maintenance_excess": shapes.usdc(ledger.maintenance_excess),
        "positions": ledger.positions,
    }


def liquidations(monitor: VenueMonitor, count: int) -> dict[str, Any]:
    engine = monitor.node.engine
    queue = engine.liquidation_queue
    return {
        "timestamp": _ms(engine.timestamp_ns),
        "queue_length": len(queue),
        "queue": [_ledger_row(ledger) for ledger in queue[:QUEUE_ROWS_MAX]],
        "keeper_auctions": len(engine.keeper_auctions),
        "insurance_fund": shapes.usdc(engine.insurance_fund),
        "insurance_history": [[_ms(t), shapes.usdc(v)] for t, v in _tail(monitor.insurance, count)],
        "events": list(reversed(_tail(monitor.liquidation_events, count))),
        "adl_events": list(reversed(_tail(monitor.adl_events, count))),
    }


def _tail(ring: Sequence[Any], count: int) -> list[Any]:
    return list(islice(ring, max(0, len(ring) - count), None))


def oracle_view(monitor: VenueMonitor, currency: str) -> dict[str, Any]:
    engine = monitor.node.engine
    state = engine.underlyings[currency]
    oracle = state.oracle
    now = engine.timestamp_ns
    view: dict[str, Any] = {"currency": currency, "timestamp": _ms(now)}
    if oracle is None:
        return {**view, "index_price": None, "breaker_open": True, "sources": []}
    params = oracle.params
    index = oracle.index
    sources = []
    for reporter in params.reporters:
        report = oracle.get_report(reporter)
        if report is None:
            sources.append({"reporter": reporter, "price": None, "fresh": False})
            continue
        age_ns = now - report.timestamp_ns
        sources.append(
            {
                "reporter": reporter,
                "price": shapes.usdc(report.price),
                "confidence": shapes.usdc(report.confidence),
                "timestamp": _ms(report.timestamp_ns),
                "age_ms": _ms(age_ns),
                "fresh": age_ns <= params.staleness_ns,
                "deviation_bps": round((report.price - index) * 10_000 / index, 2)
                if index
                else None,
                "vol_expiries": len(report.vols),
            }
        )
    history = monitor.indices.get(currency, ())
    return {
        **view,
        "index_price": shapes.usdc(index) if index else None,
        "confidence": shapes.usdc(oracle.confidence),
        "breaker_open": oracle.breaker_open,
        "breaker_reason": oracle.breaker_reason,
        "breaker_opened": _ms(oracle.breaker_opened_ns) if oracle.breaker_open else None,
        "liquidations_paused": oracle.liquidations_paused(now),
        "quorum": params.quorum,
        "reporters": len(params.reporters),
        "staleness_ms": _ms(params.staleness_ns),
        "max_confidence_bps": params.max_confidence_ppm / 100,
        "sources": sources,
        "history": [
            [_ms(t), shapes.usdc(i), shapes.usdc(c), b] for t, i, c, b in _tail(history, 300)
        ],
    }


def settlement(node: Any, count: int) -> dict[str, Any]:
    operator = node.operator
    status = node.status()
    view: dict[str, Any] = {
        "enabled": operator is not None,
        "batches_committed": status["batches_committed"],
        "batches_queued": status["batches_queued"],
        "chain_errors": status["chain_errors"],
        "open_blocks": node.batcher.open_blocks if node.batcher is not None else 0,
    }
    if operator is None:
        return {**view, "challenge_window_s": None, "batches": [], "last_final": None}
    window = operator.settlement.deployment.params.challenge_window_s
    now_s = node.clock() // NANOS_PER_SECOND
    commits = list(operator.commits[-count:])  # appended by the chain thread: copy first
    batches = []
    last_final = 0
    for committed in commits:
        record = committed.record
        final_at = record.committed_at + window
        if final_at <= now_s:
            last_final = max(last_final, record.number)
        batches.append(
            {
                "number": record.number,
                "first_block": record.first_block,
                "last_block": record.last_block,
                "state_root": "0x" + record.state_root.hex(),
                "prev_root": "0x" + record.prev_root.hex(),
                "withdrawal_root": "0x" + record.withdrawal_root.hex(),
                "data_hash": "0x" + record.data_hash.hex(),
                "gas": committed.gas,
                "posted_bytes": committed.posted_bytes,
                "method": committed.method,
                "committed_at": record.committed_at * 1_000,
                "final_at": final_at * 1_000,
                "final": final_at <= now_s,
            }
        )
    batches.reverse()
    return {
        **view,
        "challenge_window_s": window,
        "batches": batches,
        "last_final": last_final or None,
    }


def _quotes(book: Any, instrument: Instrument) -> dict[str, Any]:
    bid = None if book is None else book.best_bid()
    ask = None if book is None else book.best_ask()
    return {
        "bid": shapes.price_of(bid, instrument) if bid is not None else None,
        "bid_amount": shapes.amount_of(book.bids.size(bid), instrument) if bid is not None else 0,
        "ask": shapes.price_of(ask, instrument) if ask is not None else None,
        "ask_amount": shapes.amount_of(book.asks.size(ask), instrument) if ask is not None else 0,
    }


def _option_row(engine: Any, market: Market, instrument: Instrument) -> dict[str, Any]:
    book = engine.books.get(instrument.name)
    analytics = shapes.option_analytics(engine, market, book, instrument)
    return {
        "instrument_name": instrument.name,
        **_quotes(book, instrument),
        "mark_price": shapes.usdc(market.mark_minor) if market.mark_minor else None,
        "mark_iv": analytics["mark_iv"],
        "bid_iv": analytics["bid_iv"],
        "ask_iv": analytics["ask_iv"],
        "greeks": analytics["greeks"],
        "open_interest": shapes.amount_of(market.long_lots, instrument),
    }


def options_chain(engine: Any, currency: str) -> dict[str, Any]:
    state = engine.underlyings[currency]
    oracle = state.oracle
    index = None if oracle is None else oracle.index
    now = engine.timestamp_ns
    options = sorted(
        (m.expiry_ns, m.strike_minor, m.name) for m in state.markets.values() if m.is_option
    )[:OPTIONS_MAX]
    expiries: dict[int, dict[int, dict[str, Any]]] = {}
    for expiry_ns, strike, name in options:
        instrument = engine.instruments.get(name)
        if instrument is None:
            continue
        side = "call" if state.markets[name].is_call else "put"
        strikes = expiries.setdefault(expiry_ns, {})
        row = strikes.setdefault(strike, {"strike": shapes.usdc(strike), "call": None, "put": None})
        row[side] = _option_row(engine, state.markets[name], instrument)
    return {
        "currency": currency,
        "timestamp": _ms(now),
        "index_price": shapes.usdc(index) if index else None,
        "expiries": [
            {
                "expiration_timestamp": _ms(expiry_ns),
                "label": _expiry_label(expiry_ns),
                "days": round((expiry_ns - now) / (86_400 * NANOS_PER_SECOND), 3),
                "strikes": list(strikes.values()),
                "smile": _smile(oracle, index, now, expiry_ns),
            }
            for expiry_ns, strikes in expiries.items()
        ],
    }


MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _expiry_label(expiry_ns: int) -> str:
    """Deribit's expiry code (``27DEC26``)."""
    time = civil_from_ns(expiry_ns)
    return f"{time.day}{MONTHS[time.month - 1]}{time.year % 100:02d}"


def _smile(oracle: Any, index: int | None, now: int, expiry_ns: int) -> list[list[float]]:
    """``[strike, mark IV %]`` at :data:`SMILE_POINTS` strikes spanning the surface's nodes."""
    if oracle is None or not index or expiry_ns <= now:
        return []
    nodes = oracle.vol_nodes
    grid = oracle.params.log_moneyness_ppm
    if not nodes:
        return []
    low, high = grid[0] / 1_000_000, grid[-1] / 1_000_000
    strikes = [
        round(index * math.exp(low + (high - low) * i / (SMILE_POINTS - 1)))
        for i in range(SMILE_POINTS)
    ]
    vols = option_vols(index, nodes, grid, now, strikes, [expiry_ns] * len(strikes))
    return [
        [shapes.usdc(strike), round(vol * 100, 4)]
        for strike, vol in zip(strikes, vols, strict=True)
        if not math.isnan(vol)
    ]


def price_history(
    engine: Any, history: TradeHistory, monitor: VenueMonitor, name: str, count: int
) -> dict[str, Any]:
    instrument = require_instrument(engine, name)
    trades = history.public_trades.get(name, ())
    return {
        "instrument_name": name,
        "trades": [
            [
                _ms(trade.timestamp_ns),
                shapes.price_of(trade.price_ticks, instrument),
                shapes.amount_of(trade.size_lots, instrument),
                "buy" if trade.taker_side > 0 else "sell",
            ]
            for trade in _tail(trades, count)
        ],
        "marks": [
            [_ms(t), shapes.usdc(mark), shapes.usdc(index) if index else None]
            for t, mark, index in _tail(monitor.marks.get(name, ()), count)
        ],
    }


def _estimated_liquidation_price(ledger: SubLedger) -> float | None:
    """With one perpetual position and nothing else: the mark at which equity meets
    maintenance margin, holding the margin rate (an estimate: the rate grows with size)."""
    held = [e for e in ledger.exposures.values() if e.position]
    if len(held) != 1 or held[0].market.is_option or not held[0].position:
        return None
    exposure = held[0]
    market = exposure.market
    units = exposure.position * market.lot_numerator / market.lot_denominator
    mark = market.mark_minor
    if not mark or not units:
        return None
    rate = exposure.maintenance / abs(units * mark)
    price = (mark * units - ledger.equity) / (units - abs(units) * rate)
    return round(price / QUOTE_SCALE, 2) if price > 0 else None


def account_risk(engine: Any, account: str, underlying: str | None) -> dict[str, Any]:
    mine = engine.accounts.get(account)
    names = [] if mine is None else list(mine.ledgers)
    ledgers = []
    for name in names:
        if underlying is not None and name != underlying:
            continue
        ledger = engine.get_ledger(account, name)
        if ledger is None:
            continue
        equity = ledger.equity
        positions = [
            shapes.position_shape(engine, exposure, engine.instruments[exposure.market.name])
            for exposure in ledger.exposures.values()
            if exposure.position and exposure.market.name in engine.instruments
        ]
        ledgers.append(
            {
                "currency": name,
                "cash": shapes.usdc(ledger.cash),
                "equity": shapes.usdc(equity),
                "unrealized_pl": shapes.usdc(ledger.unrealized),
                "realized_pl": shapes.usdc(ledger.realized),
                "fees": shapes.usdc(ledger.fees),
                "funding": shapes.usdc(ledger.funding),
                "initial_margin": shapes.usdc(ledger.initial),
                "maintenance_margin": shapes.usdc(ledger.maintenance),
                "open_orders_margin": shapes.usdc(ledger.reserve),
                "free_collateral": shapes.usdc(ledger.free_collateral),
                "withdrawable": shapes.usdc(max(0, ledger.withdrawable)),
                "maintenance_excess": shapes.usdc(ledger.maintenance_excess),
                "distance_to_liquidation": round(ledger.maintenance_excess / equity, 6)
                if equity > 0
                else 0.0,
                "estimated_liquidation_price": _estimated_liquidation_price(ledger),
                "in_liquidation": ledger.in_liquidation,
                "margin_model": "portfolio" if ledger.portfolio else "standard",
                "positions": positions,
            }
        )
    return {"account": account, "timestamp": _ms(engine.timestamp_ns), "ledgers": ledgers}


# --- methods -----------------------------------------------------------------------------------

DEFAULT_EVENTS: Final = 50
DEFAULT_BATCHES: Final = 20


class NoParams(Params):
    pass


class CountParams(Params):
    count: int = 120


class LiquidationsParams(Params):
    count: int = DEFAULT_EVENTS


class SettlementParams(Params):
    count: int = DEFAULT_BATCHES


class CurrencyParams(Params):
    currency: str


class PriceHistoryParams(Params):
    instrument_name: str
    count: int = 300


class AccountRiskParams(Params):
    currency: str = "any"
    """An underlying (its sub-ledger), or ``USDC``/``any``: every sub-ledger."""


def _check_count(count: int, most: int) -> int:
    if not 1 <= count <= most:
        raise invalid_params("count", f"count is 1 to {most}, not {count}")
    return count


def require_underlying(engine: Any, currency: str) -> str:
    """An underlying's name (``currency`` in any case); invalid params otherwise."""
    name = currency.upper()
    if name not in engine.underlyings:
        known = ", ".join(engine.underlyings)
        raise invalid_params("currency", f"{currency[:32]!r} is not an underlying ({known})")
    return name


def monitor_of(context: Context) -> VenueMonitor:
    return attach(context.node)


@method("public/get_venue_status", NoParams)
async def get_venue_status(context: Context, params: NoParams) -> Any:
    return venue_status(monitor_of(context))


@method("public/get_block_stats", CountParams)
async def get_block_stats(context: Context, params: CountParams) -> Any:
    return block_stats(monitor_of(context), _check_count(params.count, BLOCK_SAMPLES_MAX))


@method("public/get_liquidations", LiquidationsParams)
async def get_liquidations(context: Context, params: LiquidationsParams) -> Any:
    return liquidations(monitor_of(context), _check_count(params.count, EVENTS_MAX))


@method("public/get_oracle", CurrencyParams)
async def get_oracle(context: Context, params: CurrencyParams) -> Any:
    monitor = monitor_of(context)
    return oracle_view(monitor, require_underlying(context.node.engine, params.currency))


@method("public/get_settlement", SettlementParams)
async def get_settlement(context: Context, params: SettlementParams) -> Any:
    return settlement(context.node, _check_count(params.count, BATCHES_MAX))


@method("public/get_options_chain", CurrencyParams)
async def get_options_chain(context: Context, params: CurrencyParams) -> Any:
    engine = context.node.engine
    return options_chain(engine, require_underlying(engine, params.currency))


@method("public/get_price_history", PriceHistoryParams)
async def get_price_history(context: Context, params: PriceHistoryParams) -> Any:
    count = _check_count(params.count, TRADES_MAX)
    engine = context.node.engine
    history = require_history(context.node)
    return price_history(engine, history, monitor_of(context), params.instrument_name, count)


@method("private/get_account_risk", AccountRiskParams, Scope.READ)
async def get_account_risk(context: Context, params: AccountRiskParams) -> Any:
    account = context.require_account()
    engine = context.node.engine
    return account_risk(engine, account, check_currency(engine, params.currency))
