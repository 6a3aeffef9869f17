"""Recording a lab run: what every metric needs, captured while the run goes, as tables after it.

A :class:`Recorder` attaches to a :class:`~strikechain.sim.lab.Lab` when it is made (before the
run) and only listens: it is a sink on the runtime (every committed block), the observer of
the lab's mempool (:class:`~strikechain.sim.consensus.SubmissionObserver`: every submission
through the lab's gateways, and each answer an agent asked for) and a timer that samples the
reference price path. It draws no randomness and sends nothing, so a run with a
recorder is the run without one, bit for bit (tested). :meth:`Recorder.frames` turns what it
holds into pandas DataFrames once the run is over.

Cheap on the hot path: a block costs one tuple for the block, one per underlying (oracle) and
one per listed instrument (mark and top of book), a dict lookup per transaction when recorded
submissions wait, and a tuple per fill or liquidation event (the event itself is kept, not
copied). Nothing is converted or joined until :meth:`~Recorder.frames`. What it keeps of
open orders (client ids) is dropped when an order completes, is cancelled or expires.

How rows are joined
- A submission is found in the block that includes it by the identity of the transaction
  object (the mempool hands the very object to the inbox and the block), so its receipt
  sequence and inclusion height are known even when the agent asked for no answer; an answer
  is recorded only when the agent asks for one (asking draws a delivery delay from the
  network's stream: recording must not change the run). If one object is submitted again
  while an earlier copy still waits, the copy whose receipt names the block's sequence wins,
  else the oldest.
- A fill's taker is the submission of its transaction (``event.tx``); its maker, the
  submission whose ``OrderAccepted`` gave the maker order its id. The engine's own orders
  (the liquidation lane's) have no submission.
- The reference price at a fill (block commit time) and at an index (block time) is read when
  the block commits; at a submission, when it is sent. The ``reference`` table samples the path
  on a grid (by default the path's own grid, where the path is linear in between, so linear
  interpolation of the table reproduces the path); it holds history up to the end of the run
  only (markouts past the end are unknown, never peeked at).

Tables (:data:`SCHEMA` names every column, its dtype and unit): ``blocks``, ``markets`` (per
block and instrument), ``index`` (per block and underlying), ``fills``, ``orders`` (one row per
submission through the lab's gateways), ``liquidations`` (one row per liquidation event),
``hedges`` (per agent at the external hedging venue), ``reference`` and ``run`` (one row).
Units: times in integer ns since the epoch (``_ns``), prices per unit of the underlying and
money in USDC floats (``_usdc``; the engine's integers divided by 10^6 only here), sizes in
lots (``_lots``, int) and units of the underlying (``_units``, float). Missing values: ``NaN``
in float columns, ``<NA>`` in the nullable ``Int64`` columns, ``""`` in text columns.

Limits: the recorder keeps every fill, liquidation event and submission of the run in memory,
and a row per block and instrument; the hedging venue is read as each agent's totals at the end
(its account aggregates; per-fill hedge timing would need a listener on the venue).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

import pandas as pd  # type: ignore[import-untyped]

from strikechain.engine.accounts import Market
from strikechain.engine.codes import Rejection
from strikechain.engine.engine import Engine
from strikechain.engine.events import (
    BackstopTaken,
    Deleveraged,
    Event,
    Fill,
    IndexUpdated,
    InstrumentListed,
    InsurancePaid,
    LiquidationAuctionEnded,
    LiquidationAuctionStarted,
    LiquidationFee,
    LiquidationOrder,
    LiquidationQueued,
    LiquidationQueueLeft,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    Rejected,
)
from strikechain.engine.instruments import parse_instrument_name
from strikechain.engine.invariant import invariant
from strikechain.engine.txs import Transaction
from strikechain.engine.units import NANOS_PER_SECOND, QUOTE_SCALE
from strikechain.runtime.errors import RuntimeRejection
from strikechain.runtime.inbox import Receipt
from strikechain.runtime.runtime import Committed
from strikechain.sim.hedge_venue import BPS
from strikechain.sim.lab import Lab
from strikechain.sim.path_cursor import PriceCursor

NAN: Final = math.nan
PULL_EVERY_NS: Final = NANOS_PER_SECOND
"""How often the reference path is sampled up to now (the path keeps only recent history)."""


class Column(NamedTuple):
    name: str
    dtype: str
    """``int64``, ``Int64`` (nullable), ``float64``, ``bool`` or ``str``."""
    doc: str


def _columns(*specs: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


_HEIGHT = ("height", "int64", "block height")
_TIME = ("timestamp_ns", "int64", "block time (the proposer's), ns")
_COMMIT = ("commit_ns", "int64", "when the block committed (finality), ns")

SCHEMA: Final[dict[str, tuple[Column, ...]]] = {
    "blocks": _columns(
        _HEIGHT,
        _TIME,
        ("propose_ns", "Int64", "when it was proposed, ns (the producer's record)"),
        _COMMIT,
        ("proposer", "str", "the proposing validator (or the sequencer)"),
        ("rounds", "Int64", "consensus rounds the height took (1: first round)"),
        ("transactions", "int64", "transactions in the block"),
        ("capacity", "Int64", "transactions the block could carry"),
        ("utilization", "float64", "transactions / capacity"),
        ("base_fee", "Int64", "the mempool's base fee the block was chosen under"),
        ("events", "int64", "engine events of the block"),
        ("insurance_fund_usdc", "float64", "the insurance fund after the block, USDC"),
        ("open_orders", "int64", "resting orders after the block"),
        ("subledgers", "int64", "sub-ledgers in the engine after the block"),
    ),
    "markets": _columns(
        _HEIGHT,
        _TIME,
        _COMMIT,
        ("instrument", "str", "instrument name"),
        ("underlying", "str", "its underlying"),
        ("mark_usdc", "float64", "mark per unit after the block, USDC (NaN: none yet)"),
        ("best_bid_usdc", "float64", "best bid per unit, USDC (NaN: empty side)"),
        ("best_ask_usdc", "float64", "best ask per unit, USDC (NaN: empty side)"),
    ),
    "index": _columns(
        _HEIGHT,
        _TIME,
        _COMMIT,
        ("underlying", "str", "underlying with an oracle"),
        ("index_usdc", "float64", "oracle index after the block, USDC (NaN: none yet)"),
        ("confidence_usdc", "float64", "the index's confidence band, USDC"),
        ("breaker_open", "bool", "the underlying's circuit breaker is open"),
        ("updated", "bool", "an IndexUpdated event in this block"),
        ("reference_usdc", "float64", "reference price at block time, USDC (NaN: no path)"),
    ),
    "fills": _columns(
        _HEIGHT,
        _TIME,
        _COMMIT,
        ("instrument", "str", "instrument name"),
        ("underlying", "str", "its underlying"),
        ("is_option", "bool", "an option (prices are premiums) rather than a perpetual"),
        ("price_ticks", "int64", "fill price, ticks"),
        ("price_usdc", "float64", "fill price per unit, USDC"),
        ("size_lots", "int64", "fill size, lots"),
        ("size_units", "float64", "fill size, units of the underlying"),
        ("notional_usdc", "float64", "price x size, USDC (exact integer / 10^6)"),
        ("taker_side", "int64", "+1 the taker bought, -1 sold (the maker is the other side)"),
        ("maker_account", "str", "maker account"),
        ("taker_account", "str", "taker account"),
        ("maker_order_id", "int64", "maker order id"),
        ("taker_order_id", "int64", "taker order id"),
        ("maker_client_order_id", "str", "maker's client order id ('' if none)"),
        ("taker_client_order_id", "str", "taker's client order id ('' if none)"),
        ("maker_submission", "Int64", "the maker order's row in orders (NA: not recorded)"),
        ("taker_submission", "Int64", "the taker order's row in orders (NA: not recorded)"),
        ("maker_agent", "str", "agent of the maker submission ('' if not recorded)"),
        ("taker_agent", "str", "agent of the taker submission ('' if not recorded)"),
        ("taker_sequence", "Int64", "receipt sequence of the taker's transaction (NA: engine's)"),
        ("taker_sent_ns", "Int64", "when the taker's submission was sent, ns"),
        ("taker_reference_usdc", "float64", "reference at the taker's send time, USDC"),
        ("reference_usdc", "float64", "reference at the block's commit time, USDC"),
        ("maker_fee_usdc", "float64", "fee the maker paid, USDC (negative: rebate)"),
        ("taker_fee_usdc", "float64", "fee the taker paid, USDC"),
        ("liquidation", "bool", "the taker order is the liquidation lane's"),
    ),
    "orders": _columns(
        ("submission", "int64", "row number, in send order"),
        ("agent", "str", "the sending agent"),
        ("kind", "str", "transaction type (PlaceOrder, Cancel, Amend, ...)"),
        ("client_order_id", "str", "client order id ('' if none)"),
        ("instrument", "str", "instrument name ('' if none)"),
        ("underlying", "str", "its underlying, or the transaction's own ('' if none)"),
        ("side", "int64", "+1 buy, -1 sell, 0 none"),
        ("price_ticks", "int64", "limit price, ticks (0: none)"),
        ("price_usdc", "float64", "limit price per unit, USDC (NaN: none or unknown grid)"),
        ("size_lots", "int64", "size, lots (0: none)"),
        ("size_units", "float64", "size, units of the underlying (NaN: unknown grid)"),
        ("time_in_force", "int64", "TimeInForce (0: none)"),
        ("post_only", "int64", "PostOnly (0: none)"),
        ("priority_fee", "int64", "declared priority fee"),
        ("sent_ns", "int64", "when the agent sent it, ns"),
        ("reference_usdc", "float64", "reference of its underlying at sent_ns, USDC"),
        ("answer_ns", "Int64", "when the answer reached the agent, ns (NA: none asked/lost)"),
        ("sequence", "Int64", "inbox receipt sequence (NA: never in the inbox, or unknown)"),
        ("runtime_rejection", "str", "the runtime's refusal code, e.g. INBOX_FULL ('' if none)"),
        ("included_height", "Int64", "height of the block that included it"),
        ("commit_ns", "Int64", "commit time of that block, ns"),
        ("order_id", "Int64", "the engine's order id (OrderAccepted)"),
        ("engine_rejection", "str", "the engine's Rejected code ('' if none)"),
    ),
    "liquidations": _columns(
        _HEIGHT,
        _TIME,
        _COMMIT,
        (
            "kind",
            "str",
            "queued, order, backstop, deleveraged, fee, insurance, left, auction_started or"
            " auction_ended",
        ),
        ("account", "str", "the liquidated account"),
        ("underlying", "str", "its sub-ledger's underlying"),
        ("instrument", "str", "instrument ('' for sub-ledger events)"),
        ("side", "int64", "closing side of the liquidated position (0: n/a)"),
        ("lots", "int64", "lots executed (order: filled; auction_started: announced)"),
        ("requested_lots", "int64", "order: lots the lane asked for"),
        ("price_usdc", "float64", "per unit: order limit, backstop/ADL/auction price"),
        ("notional_usdc", "float64", "notional closed by the step, USDC"),
        ("amount_usdc", "float64", "fee: fee; insurance: paid by the fund; ADL: socialized"),
        ("uncovered_usdc", "float64", "insurance: what the fund could not pay"),
        ("equity_usdc", "float64", "queued/left: equity then"),
        ("maintenance_usdc", "float64", "queued/left: maintenance margin then"),
        ("counterparty", "str", "backstop pool, ADL counterparty or auction winner"),
        ("order_id", "Int64", "order: the lane's order id (its fills carry it)"),
    ),
    "hedges": _columns(
        ("agent", "str", "agent with fills at the hedging venue"),
        ("fills", "int64", "its fills"),
        ("notional_usdc", "float64", "traded notional at fill prices, USDC"),
        ("buy_notional_usdc", "float64", "of which buys"),
        ("sell_notional_usdc", "float64", "of which sells"),
        ("fees_usdc", "float64", "fees paid"),
        ("half_spread_usdc", "float64", "half-spread paid against the reference"),
        ("cost_usdc", "float64", "fees + half spread"),
        ("cash_usdc", "float64", "its cash at the venue (signed)"),
    ),
    "reference": _columns(
        ("underlying", "str", "underlying"),
        ("time_ns", "int64", "sample time on the grid, ns"),
        ("price_usdc", "float64", "reference price, USDC per unit"),
    ),
    "run": _columns(
        ("start_ns", "int64", "when recording started (the recorder was made), ns"),
        ("end_ns", "int64", "virtual time when the tables were made, ns"),
        ("reference_step_ns", "int64", "the reference table's grid step, ns (0: no path)"),
        ("state_snapshot_bytes", "int64", "the engine's encoded snapshot at the end, bytes"),
        ("accounts", "int64", "accounts in the engine at the end"),
    ),
}

_LIQUIDATION_EVENTS: Final = frozenset(
    {
        LiquidationQueued,
        LiquidationOrder,
        LiquidationFee,
        InsurancePaid,
        LiquidationQueueLeft,
        BackstopTaken,
        Deleveraged,
        LiquidationAuctionStarted,
        LiquidationAuctionEnded,
    }
)
_ACCEPTED: Final = 1
_FILL: Final = 2
_CLOSED: Final = 3
_REJECTED: Final = 4
_INDEX: Final = 5
_LISTED: Final = 6
_LIQUIDATION: Final = 7
_ROUTES: Final = {
    OrderAccepted: _ACCEPTED,
    Fill: _FILL,
    OrderCancelled: _CLOSED,
    OrderExpired: _CLOSED,
    Rejected: _REJECTED,
    IndexUpdated: _INDEX,
    InstrumentListed: _LISTED,
    **dict.fromkeys(_LIQUIDATION_EVENTS, _LIQUIDATION),
}
"""What :meth:`Recorder.on_block` does with an event, by its type: one lookup per event (a
static in compiled code), where a chain of ``is`` tests looked each class up by name."""


def frame_of(table: str, columns: Mapping[str, Sequence[Any]]) -> Any:
    """A DataFrame of :data:`SCHEMA`'s ``table`` from its columns' values (every column, in
    schema order, with the schema's dtypes; ``None`` marks a missing nullable value)."""
    schema = SCHEMA[table]
    names = [column.name for column in schema]
    invariant(sorted(names) == sorted(columns), f"{table}: columns {sorted(columns)}")
    data = {
        column.name: pd.Series(list(columns[column.name]), dtype=column.dtype) for column in schema
    }
    return pd.DataFrame(data, columns=names)


class _Scale(NamedTuple):
    """What turns an instrument's ticks and lots into USDC and units (one rounding each)."""

    underlying: str
    is_option: bool
    tick_minor: int
    lot_numerator: int
    lot_denominator: int
    value_per_tick_lot: int

    def price_usdc(self, ticks: int) -> float:
        return ticks * self.tick_minor / QUOTE_SCALE

    def units(self, lots: int) -> float:
        return lots * self.lot_numerator / self.lot_denominator

    def notional_usdc(self, ticks: int, lots: int) -> float:
        return ticks * lots * self.value_per_tick_lot / QUOTE_SCALE


def _scale(market: Market) -> _Scale:
    return _Scale(
        market.underlying,
        market.is_option,
        market.tick_minor,
        market.lot_numerator,
        market.lot_denominator,
        market.value_per_tick_lot,
    )


def _price(scale: _Scale | None, ticks: int) -> float:
    return NAN if scale is None else scale.price_usdc(ticks)


def _usdc(minor: int) -> float:
    return minor / QUOTE_SCALE


def _optional(value: int) -> int | None:
    """0 (the recorder's 'unknown' for sequences, heights and times) as a missing value."""
    return value if value else None


class Recorder:
    """Records a lab run for the metrics (see the module). Make it right after the lab, before
    anything is sent; ``reference_step_ns`` is the reference table's grid (default: the price
    path's own step)."""

    def __init__(self, lab: Lab, *, reference_step_ns: int | None = None) -> None:
        engine = lab.runtime.engine
        invariant(isinstance(engine, Engine), "the recorder reads an Engine's state")
        assert isinstance(engine, Engine)  # for the type checker
        self.lab = lab
        self.engine = engine
        self.kernel = kernel = lab.kernel
        self.start_ns = kernel.now
        self._scales = {name: _scale(market) for name, market in engine.markets.items()}
        self._underlying_of: dict[str, str] = {}
        # per block: (height, time, commit, transactions, events, fund, open orders, ledgers)
        self._blocks: list[tuple[int, int, int, int, int, int, int, int]] = []
        # (height, instrument, mark, best bid, best ask): minor units, ticks (0: none)
        self._markets: list[tuple[int, str, int, int, int]] = []
        # (height, underlying, index (-1: none), confidence, breaker open, updated, reference)
        self._index: list[tuple[int, str, int, int, bool, bool, float]] = []
        # (height, fill, maker client id, taker client id, maker row, taker row, reference)
        self._fills: list[tuple[int, Fill, str, str, int, int, float]] = []
        self._liquidations: list[tuple[int, Event]] = []
        # submissions by row, a list per column (no tuple per row to allocate and to keep in
        # the collector's young generation): agent, tx, sent, reference, and what is learnt later
        self._sent_agent: list[str] = []
        self._sent_tx: list[Transaction] = []
        self._sent_ns: list[int] = []
        self._sent_reference: list[float] = []
        self._sequence: list[int] = []
        self._included: list[int] = []
        self._answer_ns: list[int] = []
        self._order_id: list[int] = []
        self._runtime_rejection: dict[int, str] = {}
        self._engine_rejection: dict[int, str] = {}
        self._awaiting: dict[int, int | list[int]] = {}
        """id(tx) -> the row (or rows, when one tx was sent more than once) of submissions not
        yet seen in a block (``_sent_tx`` keeps tx alive)."""
        self._open: dict[int, tuple[str, int]] = {}
        """order id -> (client order id, submission row or -1), while the order lives."""
        prices = lab.prices
        self._reference_names = () if prices is None else prices.underlyings
        self._reference_times: list[int] = []
        self._reference: dict[str, list[float]] = {name: [] for name in self._reference_names}
        self._cursors: dict[str, PriceCursor] = {}
        """Per underlying with a reference: what a submission's reference is read from."""
        if prices is not None:
            self._cursors = {name: PriceCursor(prices, name) for name in self._reference_names}
        self._instrument_field: dict[type, str] = {}
        """Per transaction type: ``"instrument"`` if it has that field, else ``""``."""
        self.reference_step_ns = 0
        self._next_reference_ns = 0
        if prices is not None:
            step = prices.step_ns if reference_step_ns is None else reference_step_ns
            invariant(step > 0, f"the reference grid's step is positive, not {step}")
            self.reference_step_ns = step
            behind = max(kernel.now - prices.start_ns, 0)
            self._next_reference_ns = prices.start_ns + -(-behind // step) * step
            self._tick()
        lab.runtime.add_sink(self)
        invariant(lab.mempool.observer is None, "one recorder per lab")
        lab.mempool.observer = self

    # -- the mempool side ------------------------------------------------------------------

    def sent(self, agent: str, tx: Transaction) -> int:
        """A submission leaves ``agent`` now: its row."""
        row = len(self._sent_tx)
        now = self.kernel.now
        reference = NAN
        kind = type(tx)
        field = self._instrument_field.get(kind)
        if field is None:
            names = getattr(kind, "__struct_fields__", ())
            field = self._instrument_field[kind] = "instrument" if "instrument" in names else ""
        instrument = getattr(tx, field) if field else None
        if type(instrument) is str and self._reference_names:
            underlying = self._underlying(instrument)
            cursor = self._cursors.get(underlying)
            if cursor is not None:
                reference = cursor.price(now)
        self._sent_agent.append(agent)
        self._sent_tx.append(tx)
        self._sent_ns.append(now)
        self._sent_reference.append(reference)
        self._sequence.append(0)
        self._included.append(0)
        self._answer_ns.append(0)
        self._order_id.append(0)
        awaiting = self._awaiting
        key = id(tx)
        earlier = awaiting.get(key)
        if earlier is None:
            awaiting[key] = row
        elif isinstance(earlier, list):
            earlier.append(row)
        else:
            awaiting[key] = [earlier, row]
        return row

    def submissions(self) -> list[tuple[str, Transaction, int, float]]:
        """Every submission so far by row: ``(agent, tx, sent_ns, reference_usdc)``."""
        return list(
            zip(self._sent_agent, self._sent_tx, self._sent_ns, self._sent_reference, strict=True)
        )

    def _underlying(self, instrument: str) -> str:
        underlying = self._underlying_of.get(instrument)
        if underlying is None:
            try:
                underlying = parse_instrument_name(instrument).underlying
            except Rejection:
                underlying = ""
            self._underlying_of[instrument] = underlying
        return underlying

    def answered(self, row: int, outcome: Receipt | RuntimeRejection) -> None:
        """The answer to submission ``row`` reached its sender now."""
        self._answer_ns[row] = self.kernel.now
        if isinstance(outcome, Receipt):
            if not self._sequence[row]:
                self._sequence[row] = outcome.sequence
            return
        self._runtime_rejection[row] = str(outcome.code)
        key = id(self._sent_tx[row])
        rows = self._awaiting.get(key)
        if isinstance(rows, list):
            if row in rows:  # it never entered the inbox
                rows.remove(row)
                if not rows:
                    del self._awaiting[key]
        elif rows == row:
            del self._awaiting[key]

    # -- the sink side ---------------------------------------------------------------------

    def on_block(self, committed: Committed) -> None:
        block, result = committed.block, committed.result
        height, timestamp = block.height, block.timestamp_ns
        engine, now = self.engine, self.kernel.now
        rows = self._match(block.transactions, committed.sequences, height)
        updated: list[str] = []
        references: dict[str, float] = {}
        routes = _ROUTES
        for event in result.events:
            route = routes.get(type(event), 0)
            if route == 0:
                continue
            if route == _ACCEPTED:
                self._accepted(event, rows)  # type: ignore[arg-type]
            elif route == _FILL:
                self._fill(height, event, rows, references)  # type: ignore[arg-type]
            elif route == _CLOSED:
                self._open.pop(event.order_id, None)  # type: ignore[union-attr]
            elif route == _REJECTED:
                row = rows.get(event.tx)
                if row is not None:
                    self._engine_rejection[row] = event.code  # type: ignore[union-attr]
            elif route == _INDEX:
                updated.append(event.underlying)  # type: ignore[union-attr]
            elif route == _LISTED:
                name = event.instrument.name  # type: ignore[union-attr]
                market = engine.markets.get(name)
                if market is not None:
                    self._scales[name] = _scale(market)
            else:
                self._liquidations.append((height, event))
        ledgers = sum(len(state.ledgers) for state in engine.underlyings.values())
        self._blocks.append(
            (
                height,
                timestamp,
                now,
                len(block.transactions),
                len(result.events),
                engine.insurance_fund,
                len(engine.orders),
                ledgers,
            )
        )
        self._state(height, timestamp, updated)

    def _match(
        self, transactions: list[Transaction], sequences: list[int], height: int
    ) -> dict[int, int]:
        """Position in the block -> submission row, for the wrapped submissions it includes."""
        awaiting = self._awaiting
        found: dict[int, int] = {}
        if not awaiting:
            return found
        for index, tx in enumerate(transactions):
            key = id(tx)
            rows = awaiting.get(key)
            if rows is None:
                continue
            sequence = sequences[index]
            if isinstance(rows, list):
                row = self._take(rows, sequence)
                if not rows:
                    del awaiting[key]
            else:
                row = rows
                del awaiting[key]
            self._sequence[row] = sequence
            self._included[row] = height
            found[index] = row
        return found

    def _take(self, rows: list[int], sequence: int) -> int:
        known = self._sequence
        for position, row in enumerate(rows):
            if known[row] == sequence:
                return rows.pop(position)
        for position, row in enumerate(rows):
            if not known[row]:
                return rows.pop(position)
        return rows.pop(0)

    def _accepted(self, event: OrderAccepted, rows: dict[int, int]) -> None:
        row = rows.get(event.tx, -1)
        if row >= 0:
            self._order_id[row] = event.order_id
        self._open[event.order_id] = (event.client_order_id, row)

    def _fill(
        self, height: int, event: Fill, rows: dict[int, int], references: dict[str, float]
    ) -> None:
        opened = self._open
        maker_client, maker_row = opened.get(event.maker_order_id, ("", -1))
        taker_client, taker_row = opened.get(event.taker_order_id, ("", -1))
        if taker_row < 0:
            taker_row = rows.get(event.tx, -1)
        if event.maker_remaining_lots == 0:
            opened.pop(event.maker_order_id, None)
        if event.taker_remaining_lots == 0:
            opened.pop(event.taker_order_id, None)
        reference = NAN
        scale = self._scales.get(event.instrument)
        if scale is not None and scale.underlying in self._reference:
            underlying = scale.underlying
            reference = references.get(underlying, NAN)
            if math.isnan(reference):
                assert self.lab.prices is not None
                reference = references[underlying] = self.lab.prices.price(
                    underlying, self.kernel.now
                )
        self._fills.append(
            (height, event, maker_client, taker_client, maker_row, taker_row, reference)
        )

    def _state(self, height: int, timestamp: int, updated: list[str]) -> None:
        """Each oracle's index and each book's mark and top after the block."""
        engine, prices = self.engine, self.lab.prices
        for name, state in engine.underlyings.items():
            oracle = state.oracle
            if oracle is None:
                continue
            reference = NAN
            if prices is not None and name in self._reference:
                reference = prices.price(name, timestamp)
            index = -1 if oracle.index is None else oracle.index
            self._index.append(
                (
                    height,
                    name,
                    index,
                    oracle.confidence,
                    oracle.breaker_open,
                    name in updated,
                    reference,
                )
            )
        markets, out = engine.markets, self._markets
        for name, book in engine.books.items():
            bid, ask = book.best_bid(), book.best_ask()
            out.append((height, name, markets[name].mark_minor, bid or 0, ask or 0))

    # -- the reference path ----------------------------------------------------------------

    def _tick(self) -> None:
        self._pull()
        self.kernel.call_later(PULL_EVERY_NS, self._tick)

    def _pull(self) -> None:
        """Sample the reference path on the grid up to now (while the path still holds it)."""
        prices = self.lab.prices
        if prices is None:
            return
        now, step = self.kernel.now, self.reference_step_ns
        at = self._next_reference_ns
        times, samples = self._reference_times, self._reference
        while at <= now:
            times.append(at)
            for name, values in samples.items():
                values.append(prices.price(name, at))
            at += step
        self._next_reference_ns = at

    # -- after the run ---------------------------------------------------------------------

    def frames(self) -> dict[str, Any]:
        """The run's tables as pandas DataFrames (see :data:`SCHEMA`); call after the run."""
        self._pull()
        commits = {row[0]: row[2] for row in self._blocks}
        orders = self._orders_frame(commits)
        liquidations = self._liquidations_frame(commits)
        lane_orders = {
            event.order_id for _, event in self._liquidations if type(event) is LiquidationOrder
        }
        return {
            "blocks": self._blocks_frame(),
            "markets": self._markets_frame(commits),
            "index": self._index_frame(commits),
            "fills": self._fills_frame(commits, lane_orders),
            "orders": orders,
            "liquidations": liquidations,
            "hedges": self._hedges_frame(),
            "reference": self._reference_frame(),
            "run": self._run_frame(),
        }

    def _blocks_frame(self) -> Any:
        produced = {block.height: block for block in self.lab.blocks}
        columns: dict[str, list[Any]] = {column.name: [] for column in SCHEMA["blocks"]}
        for height, timestamp, commit, transactions, events, fund, orders, ledgers in self._blocks:
            block = produced.get(height)
            columns["height"].append(height)
            columns["timestamp_ns"].append(timestamp)
            columns["propose_ns"].append(None if block is None else block.propose_ns)
            columns["commit_ns"].append(commit)
            columns["proposer"].append("" if block is None else block.proposer)
            columns["rounds"].append(None if block is None else block.rounds)
            columns["transactions"].append(transactions)
            columns["capacity"].append(None if block is None else block.capacity)
            columns["utilization"].append(NAN if block is None else block.utilization)
            columns["base_fee"].append(None if block is None else block.base_fee)
            columns["events"].append(events)
            columns["insurance_fund_usdc"].append(_usdc(fund))
            columns["open_orders"].append(orders)
            columns["subledgers"].append(ledgers)
        return frame_of("blocks", columns)

    def _markets_frame(self, commits: dict[int, int]) -> Any:
        columns: dict[str, list[Any]] = {column.name: [] for column in SCHEMA["markets"]}
        times = {row[0]: row[1] for row in self._blocks}
        for height, name, mark, bid, ask in self._markets:
            scale = self._scales.get(name)
            columns["height"].append(height)
            columns["timestamp_ns"].append(times[height])
            columns["commit_ns"].append(commits[height])
            columns["instrument"].append(name)
            columns["underlying"].append("" if scale is None else scale.underlying)
            columns["mark_usdc"].append(_usdc(mark) if mark else NAN)
            columns["best_bid_usdc"].append(_price(scale, bid) if bid else NAN)
            columns["best_ask_usdc"].append(_price(scale, ask) if ask else NAN)
        return frame_of("markets", columns)

    def _index_frame(self, commits: dict[int, int]) -> Any:
        columns: dict[str, list[Any]] = {column.name: [] for column in SCHEMA["index"]}
        times = {row[0]: row[1] for row in self._blocks}
        for height, name, index, confidence, breaker, updated, reference in self._index:
            columns["height"].append(height)
            columns["timestamp_ns"].append(times[height])
            columns["commit_ns"].append(commits[height])
            columns["underlying"].append(name)
            columns["index_usdc"].append(NAN if index < 0 else _usdc(index))
            columns["confidence_usdc"].append(_usdc(confidence))
            columns["breaker_open"].append(breaker)
            columns["updated"].append(updated)
            columns["reference_usdc"].append(reference)
        return frame_of("index", columns)

    def _fills_frame(self, commits: dict[int, int], lane_orders: set[int]) -> Any:
        columns: dict[str, list[Any]] = {column.name: [] for column in SCHEMA["fills"]}
        times = {row[0]: row[1] for row in self._blocks}
        agents, sent_ns, references = self._sent_agent, self._sent_ns, self._sent_reference
        sequences = self._sequence
        for height, event, maker_client, taker_client, maker_row, taker_row, ref in self._fills:
            scale = self._scales.get(event.instrument)
            taker = taker_row >= 0
            price, lots = event.price_ticks, event.size_lots
            columns["height"].append(height)
            columns["timestamp_ns"].append(times[height])
            columns["commit_ns"].append(commits[height])
            columns["instrument"].append(event.instrument)
            columns["underlying"].append("" if scale is None else scale.underlying)
            columns["is_option"].append(scale is not None and scale.is_option)
            columns["price_ticks"].append(price)
            columns["price_usdc"].append(_price(scale, price))
            columns["size_lots"].append(lots)
            columns["size_units"].append(NAN if scale is None else scale.units(lots))
            columns["notional_usdc"].append(
                NAN if scale is None else scale.notional_usdc(price, lots)
            )
            columns["taker_side"].append(event.taker_side)
            columns["maker_account"].append(event.maker_account)
            columns["taker_account"].append(event.taker_account)
            columns["maker_order_id"].append(event.maker_order_id)
            columns["taker_order_id"].append(event.taker_order_id)
            columns["maker_client_order_id"].append(maker_client)
            columns["taker_client_order_id"].append(taker_client)
            columns["maker_submission"].append(maker_row if maker_row >= 0 else None)
            columns["taker_submission"].append(taker_row if taker_row >= 0 else None)
            columns["maker_agent"].append(agents[maker_row] if maker_row >= 0 else "")
            columns["taker_agent"].append(agents[taker_row] if taker else "")
            columns["taker_sequence"].append(
                _optional(sequences[taker_row]) if taker_row >= 0 else None
            )
            columns["taker_sent_ns"].append(sent_ns[taker_row] if taker else None)
            columns["taker_reference_usdc"].append(references[taker_row] if taker else NAN)
            columns["reference_usdc"].append(ref)
            columns["maker_fee_usdc"].append(_usdc(event.maker_fee))
            columns["taker_fee_usdc"].append(_usdc(event.taker_fee))
            columns["liquidation"].append(event.taker_order_id in lane_orders)
        return frame_of("fills", columns)

    def _orders_frame(self, commits: dict[int, int]) -> Any:
        columns: dict[str, list[Any]] = {column.name: [] for column in SCHEMA["orders"]}
        for row, (agent, tx, sent, reference) in enumerate(self.submissions()):
            fields = _order_fields(tx)
            instrument = fields.instrument
            scale = self._scales.get(instrument) if instrument else None
            included = self._included[row]
            columns["submission"].append(row)
            columns["agent"].append(agent)
            columns["kind"].append(type(tx).__name__)
            columns["client_order_id"].append(fields.client_order_id)
            columns["instrument"].append(instrument)
            columns["underlying"].append(
                self._underlying(instrument) if instrument else fields.underlying
            )
            columns["side"].append(fields.side)
            columns["price_ticks"].append(fields.price_ticks)
            columns["price_usdc"].append(
                _price(scale, fields.price_ticks) if fields.price_ticks else NAN
            )
            columns["size_lots"].append(fields.size_lots)
            columns["size_units"].append(
                scale.units(fields.size_lots) if scale and fields.size_lots else NAN
            )
            columns["time_in_force"].append(fields.time_in_force)
            columns["post_only"].append(fields.post_only)
            columns["priority_fee"].append(fields.priority_fee)
            columns["sent_ns"].append(sent)
            columns["reference_usdc"].append(reference)
            columns["answer_ns"].append(_optional(self._answer_ns[row]))
            columns["sequence"].append(_optional(self._sequence[row]))
            columns["runtime_rejection"].append(self._runtime_rejection.get(row, ""))
            columns["included_height"].append(_optional(included))
            columns["commit_ns"].append(commits.get(included) if included else None)
            columns["order_id"].append(_optional(self._order_id[row]))
            columns["engine_rejection"].append(self._engine_rejection.get(row, ""))
        return frame_of("orders", columns)

    def _liquidations_frame(self, commits: dict[int, int]) -> Any:
        columns: dict[str, list[Any]] = {column.name: [] for column in SCHEMA["liquidations"]}
        times = {row[0]: row[1] for row in self._blocks}
        for height, event in self._liquidations:
            values = self._liquidation_row(event)
            values.update(height=height, timestamp_ns=times[height], commit_ns=commits[height])
            for name, column in columns.items():
                column.append(values.get(name, _LIQUIDATION_DEFAULTS[name]))
        return frame_of("liquidations", columns)

    def _liquidation_row(self, event: Event) -> dict[str, Any]:
        """One liquidation event's columns (the others take their defaults)."""
        instrument = getattr(event, "instrument", "")
        scale = self._scales.get(instrument) if instrument else None
        row: dict[str, Any] = {
            "kind": _LIQUIDATION_KINDS[type(event)],
            "account": getattr(event, "account", ""),
            "instrument": instrument,
            "underlying": getattr(event, "underlying", "" if scale is None else scale.underlying),
        }
        if isinstance(event, LiquidationQueued | LiquidationQueueLeft):
            row.update(equity_usdc=_usdc(event.equity), maintenance_usdc=_usdc(event.maintenance))
        elif isinstance(event, LiquidationOrder):
            row.update(
                side=event.side,
                lots=event.filled_lots,
                requested_lots=event.lots,
                price_usdc=_price(scale, event.limit_ticks),
                notional_usdc=_usdc(event.notional),
                order_id=event.order_id,
            )
        elif isinstance(event, BackstopTaken | Deleveraged):
            per_unit = NAN if scale is None else _usdc(event.price_per_lot) / scale.units(1)
            row.update(
                side=event.side,
                lots=event.lots,
                price_usdc=per_unit,
                notional_usdc=_usdc(event.lots * event.price_per_lot),
                counterparty=event.backstop
                if isinstance(event, BackstopTaken)
                else event.counterparty,
            )
            if isinstance(event, Deleveraged):
                row["amount_usdc"] = _usdc(event.socialized)
        elif isinstance(event, LiquidationFee):
            row["amount_usdc"] = _usdc(event.amount)
        elif isinstance(event, InsurancePaid):
            row.update(amount_usdc=_usdc(event.amount), uncovered_usdc=_usdc(event.uncovered))
        elif isinstance(event, LiquidationAuctionStarted):
            row.update(side=event.side, lots=event.lots)
        elif isinstance(event, LiquidationAuctionEnded):
            row.update(
                lots=event.lots,
                price_usdc=_price(scale, event.price_ticks),
                notional_usdc=NAN
                if scale is None
                else scale.notional_usdc(event.price_ticks, event.lots),
                counterparty=event.winner,
            )
        return row

    def _hedges_frame(self) -> Any:
        columns: dict[str, list[Any]] = {column.name: [] for column in SCHEMA["hedges"]}
        hedge = self.lab.hedge
        if hedge is not None:
            half = hedge.params.spread_bps / (2.0 * BPS)
            for agent, account in hedge.accounts.items():
                traded, fees = account.traded_notional_usdc, account.fees_paid_usdc
                # cash = -sum(side x notional) - fees, so buys and sells split exactly
                signed = -(account.cash_usdc + fees)
                buys, sells = (traded + signed) / 2.0, (traded - signed) / 2.0
                spread = buys * half / (1.0 + half) + sells * half / (1.0 - half)
                columns["agent"].append(agent)
                columns["fills"].append(account.fills)
                columns["notional_usdc"].append(traded)
                columns["buy_notional_usdc"].append(buys)
                columns["sell_notional_usdc"].append(sells)
                columns["fees_usdc"].append(fees)
                columns["half_spread_usdc"].append(spread)
                columns["cost_usdc"].append(fees + spread)
                columns["cash_usdc"].append(account.cash_usdc)
        return frame_of("hedges", columns)

    def _reference_frame(self) -> Any:
        times = self._reference_times
        columns: dict[str, list[Any]] = {"underlying": [], "time_ns": [], "price_usdc": []}
        for name, values in self._reference.items():
            columns["underlying"].extend([name] * len(values))
            columns["time_ns"].extend(times)
            columns["price_usdc"].extend(values)
        return frame_of("reference", columns)

    def _run_frame(self) -> Any:
        runtime = self.lab.runtime
        snapshot = runtime.snapshotter(runtime.engine)
        return frame_of(
            "run",
            {
                "start_ns": [self.start_ns],
                "end_ns": [self.kernel.now],
                "reference_step_ns": [self.reference_step_ns],
                "state_snapshot_bytes": [len(snapshot)],
                "accounts": [len(self.engine.accounts)],
            },
        )


_LIQUIDATION_KINDS: Final[dict[type, str]] = {
    LiquidationQueued: "queued",
    LiquidationOrder: "order",
    BackstopTaken: "backstop",
    Deleveraged: "deleveraged",
    LiquidationFee: "fee",
    InsurancePaid: "insurance",
    LiquidationQueueLeft: "left",
    LiquidationAuctionStarted: "auction_started",
    LiquidationAuctionEnded: "auction_ended",
}
_DEFAULTS_BY_DTYPE: Final[dict[str, Any]] = {
    "int64": 0,
    "Int64": None,
    "float64": NAN,
    "bool": False,
    "str": "",
}
_LIQUIDATION_DEFAULTS: Final = {
    column.name: _DEFAULTS_BY_DTYPE[column.dtype] for column in SCHEMA["liquidations"]
}


class _OrderFields(NamedTuple):
    client_order_id: str
    instrument: str
    underlying: str
    side: int
    price_ticks: int
    size_lots: int
    time_in_force: int
    post_only: int
    priority_fee: int


def _order_fields(tx: Transaction) -> _OrderFields:
    """The order-like fields a transaction has (defaults where it has none)."""

    def text(name: str) -> str:
        value = getattr(tx, name, "")
        return value if type(value) is str else ""

    def number(name: str) -> int:
        value = getattr(tx, name, 0)
        return int(value) if isinstance(value, int) else 0

    instrument = getattr(tx, "instrument", "")
    if type(instrument) is not str:  # a listing carries the instrument itself
        instrument = getattr(instrument, "name", "")
    return _OrderFields(
        text("client_order_id"),
        instrument,
        text("underlying"),
        number("side"),
        number("price_ticks"),
        number("size_lots"),
        number("time_in_force"),
        number("post_only"),
        number("priority_fee"),
    )
