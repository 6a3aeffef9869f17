"""Run a scripted session through an engine and tally what it did.

:func:`run_session` applies every block of a :class:`~strikechain.sim.scripted.ScriptedSession`
to an :class:`~strikechain.engine.engine.Engine` (optionally calling ``Engine.check`` after
each block) and returns a :class:`SessionSummary`: transactions accepted and rejected by code,
fills, volume and fees per instrument, open interest at the end, funding and its dust, option
settlement, liquidation-queue entries, circuit-breaker openings, the money conservation check,
and one digest per block.

Amounts are integers in USDC minor units, sizes in lots, as the engine keeps them. Volume in
quote units is ``price_ticks x size_lots x value_per_tick_lot``, exact.

A block the engine refuses whole, or a broken invariant, stops the run with an
:class:`~strikechain.engine.invariant.InvariantViolation` naming the seed and the height: the
seed alone reproduces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strikechain.engine.engine import Engine
from strikechain.engine.events import (
    BackstopTaken,
    BlockResult,
    CircuitBreakerClosed,
    CircuitBreakerOpened,
    Deleveraged,
    Fill,
    FundingPaid,
    InstrumentSettled,
    InsurancePaid,
    LiquidationFee,
    LiquidationOrder,
    LiquidationQueued,
    LiquidationQueueLeft,
    MarketAuction,
    Rejected,
    StressMode,
)
from strikechain.engine.instruments import Instrument
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.txs import Block
from strikechain.runtime import (
    ArrivalOrder,
    BlockLog,
    BlockPolicy,
    BlockRefused,
    External,
    Genesis,
    MemoryLog,
    Runtime,
    RuntimeConfig,
)
from strikechain.sim.scripted import ScriptedSession, SessionParams, value_per_tick_lot


@dataclass(frozen=True)
class SettlementSummary:
    """An option's cash settlement at expiry."""

    price: int
    """The settlement price: the average index of the last 30 minutes (minor units)."""
    payout_per_lot: int
    lots: int
    paid: int
    """By the holders who owed (shorts of an in-the-money option)."""
    received: int
    dust: int


@dataclass(frozen=True)
class InstrumentSummary:
    name: str
    fills: int
    volume_lots: int
    volume_quote: int
    fees: int
    """Charged to takers and makers (a positive maker fee), minor units."""
    rebates: int
    """Paid to makers (the magnitude of negative maker fees)."""
    open_interest_lots: int
    """Long lots at the end (equal to the short lots); 0 once expired and settled."""
    fundings: int
    """Funding events (an interval with holders and a non-zero rate)."""
    funding_paid: int
    funding_dust: int
    settlement: SettlementSummary | None


@dataclass(frozen=True)
class Conservation:
    """Money at the end: everything held equals deposits minus withdrawals, exactly."""

    deposits: int
    withdrawals: int
    cash: int
    """Sum of all sub-ledgers' cash."""
    fee_pool: int
    insurance_fund: int
    dust: int

    @property
    def held(self) -> int:
        return self.cash + self.fee_pool + self.insurance_fund + self.dust

    @property
    def net_deposits(self) -> int:
        return self.deposits - self.withdrawals

    @property
    def exact(self) -> bool:
        return self.held == self.net_deposits


@dataclass
class LiquidationTally:
    """What the liquidation path did, from its events; money in USDC minor units.

    **Bad debt** is the sum of the deficits of bankrupt sub-ledgers: what the insurance fund
    paid plus what it could not (socialized by ADL, or left on a flat sub-ledger). A deficit
    left waiting is reported again when the fund later pays part of it: only its last report's
    unpaid part counts."""

    queued: int = 0
    left: int = 0
    orders: int = 0
    """The lane's IOC orders."""
    lots_to_book: int = 0
    backstop_lots: int = 0
    fees: int = 0
    insurance_paid: int = 0
    unpaid: dict[tuple[str, str], int] = field(default_factory=dict)
    """Per sub-ledger, what its last insurance report left unpaid."""
    deleveraged_lots: int = 0
    socialized: int = 0
    """What ADL cost the counterparties against the mark."""
    stress_episodes: int = 0
    market_auctions: int = 0

    @property
    def unpaid_by_fund(self) -> int:
        """Deficits the fund did not pay: socialized by ADL, or still on flat sub-ledgers."""
        return sum(self.unpaid.values())

    @property
    def bad_debt(self) -> int:
        return self.insurance_paid + self.unpaid_by_fund

    def record(self, event: object) -> None:
        kind = type(event)
        if kind is LiquidationOrder:
            self.orders += 1
            self.lots_to_book += event.filled_lots  # type: ignore[attr-defined]
        elif kind is LiquidationQueued:
            self.queued += 1
        elif kind is LiquidationQueueLeft:
            self.left += 1
        elif kind is LiquidationFee:
            self.fees += event.amount  # type: ignore[attr-defined]
        elif kind is BackstopTaken:
            self.backstop_lots += event.lots  # type: ignore[attr-defined]
        elif kind is InsurancePaid:
            self.insurance_paid += event.amount  # type: ignore[attr-defined]
            key = (event.account, event.underlying)  # type: ignore[attr-defined]
            self.unpaid[key] = event.uncovered  # type: ignore[attr-defined]
        elif kind is Deleveraged:
            self.deleveraged_lots += event.lots  # type: ignore[attr-defined]
            self.socialized += event.socialized  # type: ignore[attr-defined]
        elif kind is StressMode:
            self.stress_episodes += event.active  # type: ignore[attr-defined]
        elif kind is MarketAuction:
            self.market_auctions += event.kind == "AUCTION_STARTED"  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SessionSummary:
    params: SessionParams
    blocks: int
    transactions: int
    first_block_ns: int
    last_block_ns: int
    rejected_by_code: dict[str, int]
    """Sorted by count, most frequent first."""
    events: dict[str, int]
    """Events by kind (``Fill``, ``OrderCancelled``, ...), sorted by name."""
    instruments: tuple[InstrumentSummary, ...]
    liquidations: LiquidationTally
    liquidation_queue_end: int
    breaker_opened: dict[str, int]
    """Openings per underlying."""
    breaker_closed: dict[str, int]
    breaker_reasons: dict[str, int]
    conservation: Conservation
    block_digests: tuple[bytes, ...]

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_code.values())

    @property
    def accepted(self) -> int:
        return self.transactions - self.rejected

    @property
    def fills(self) -> int:
        return sum(i.fills for i in self.instruments)

    @property
    def volume_quote(self) -> int:
        return sum(i.volume_quote for i in self.instruments)

    @property
    def fees(self) -> int:
        return sum(i.fees for i in self.instruments)

    @property
    def rebates(self) -> int:
        return sum(i.rebates for i in self.instruments)

    @property
    def funding_paid(self) -> int:
        return sum(i.funding_paid for i in self.instruments)

    @property
    def funding_dust(self) -> int:
        return sum(i.funding_dust for i in self.instruments)

    @property
    def settlements(self) -> dict[str, SettlementSummary]:
        return {i.name: i.settlement for i in self.instruments if i.settlement is not None}

    @property
    def digest(self) -> bytes:
        """One digest of the whole run: the last block's, which the engine chains over every
        block before it."""
        return self.block_digests[-1]

    def instrument(self, name: str) -> InstrumentSummary:
        return next(i for i in self.instruments if i.name == name)


class _InstrumentTally:
    __slots__ = (
        "fees",
        "fills",
        "funding_dust",
        "funding_paid",
        "fundings",
        "rebates",
        "settlement",
        "value_per_tick_lot",
        "volume_lots",
        "volume_quote",
    )

    def __init__(self, instrument: Instrument) -> None:
        self.value_per_tick_lot = value_per_tick_lot(instrument)
        self.fills = self.volume_lots = self.volume_quote = self.fees = self.rebates = 0
        self.fundings = self.funding_paid = self.funding_dust = 0
        self.settlement: SettlementSummary | None = None


class Tally:
    """Counts what a stream of blocks did, one block result at a time."""

    def __init__(self, instruments: tuple[Instrument, ...]) -> None:
        self.instruments = {i.name: _InstrumentTally(i) for i in instruments}
        self.blocks = self.transactions = 0
        self.first_block_ns = self.last_block_ns = 0
        self.rejected: dict[str, int] = {}
        self.events: dict[str, int] = {}
        self.liquidations = LiquidationTally()
        self.opened: dict[str, int] = {}
        self.closed: dict[str, int] = {}
        self.reasons: dict[str, int] = {}
        self.digests: list[bytes] = []

    def add(self, block: Block, result: BlockResult) -> None:
        if not self.blocks:
            self.first_block_ns = block.timestamp_ns
        self.blocks += 1
        self.last_block_ns = block.timestamp_ns
        self.transactions += len(block.transactions)
        self.digests.append(result.digest)
        events = self.events
        for event in result.events:
            kind = type(event)
            name = kind.__name__
            events[name] = events.get(name, 0) + 1
            if kind is Fill:
                self._fill(event)  # type: ignore[arg-type]
            elif kind is Rejected:
                code = event.code  # type: ignore[union-attr]
                self.rejected[code] = self.rejected.get(code, 0) + 1
            else:
                self._other(event)

    def _fill(self, fill: Fill) -> None:
        tally = self.instruments[fill.instrument]
        tally.fills += 1
        tally.volume_lots += fill.size_lots
        tally.volume_quote += fill.price_ticks * fill.size_lots * tally.value_per_tick_lot
        for fee in (fill.maker_fee, fill.taker_fee):
            if fee >= 0:
                tally.fees += fee
            else:
                tally.rebates -= fee

    def _other(self, event: object) -> None:
        if isinstance(event, FundingPaid):
            tally = self.instruments[event.instrument]
            tally.fundings += 1
            tally.funding_paid += event.paid
            tally.funding_dust += event.dust
        elif isinstance(event, InstrumentSettled):
            self.instruments[event.instrument].settlement = SettlementSummary(
                price=event.price,
                payout_per_lot=event.payout_per_lot,
                lots=event.lots,
                paid=event.paid,
                received=event.received,
                dust=event.dust,
            )
        elif isinstance(event, CircuitBreakerOpened):
            self.opened[event.underlying] = self.opened.get(event.underlying, 0) + 1
            self.reasons[event.reason] = self.reasons.get(event.reason, 0) + 1
        elif isinstance(event, CircuitBreakerClosed):
            self.closed[event.underlying] = self.closed.get(event.underlying, 0) + 1
        else:
            self.liquidations.record(event)

    def summary(self, params: SessionParams, engine: Engine) -> SessionSummary:
        instruments = []
        for name, tally in self.instruments.items():
            market = engine.markets.get(name)
            instruments.append(
                InstrumentSummary(
                    name=name,
                    fills=tally.fills,
                    volume_lots=tally.volume_lots,
                    volume_quote=tally.volume_quote,
                    fees=tally.fees,
                    rebates=tally.rebates,
                    open_interest_lots=0 if market is None else market.long_lots,
                    fundings=tally.fundings,
                    funding_paid=tally.funding_paid,
                    funding_dust=tally.funding_dust,
                    settlement=tally.settlement,
                )
            )
        return SessionSummary(
            params=params,
            blocks=self.blocks,
            transactions=self.transactions,
            first_block_ns=self.first_block_ns,
            last_block_ns=self.last_block_ns,
            rejected_by_code=dict(sorted(self.rejected.items(), key=lambda kv: (-kv[1], kv[0]))),
            events=dict(sorted(self.events.items())),
            instruments=tuple(instruments),
            liquidations=self.liquidations,
            liquidation_queue_end=len(engine.liquidation_queue),
            breaker_opened=dict(sorted(self.opened.items())),
            breaker_closed=dict(sorted(self.closed.items())),
            breaker_reasons=dict(sorted(self.reasons.items())),
            conservation=Conservation(
                deposits=engine.deposits_total,
                withdrawals=engine.withdrawals_total,
                cash=engine.total_cash(),
                fee_pool=engine.fee_pool,
                insurance_fund=engine.insurance_fund,
                dust=engine.dust,
            ),
            block_digests=tuple(self.digests),
        )


def run_session(
    session: ScriptedSession | SessionParams | None = None,
    *,
    check_every_block: bool = False,
    log: BlockLog | None = None,
    root_every: int = 0,
    snapshot_every: int = 0,
) -> SessionSummary:
    """Run every block of ``session`` (default: :class:`SessionParams` defaults) through the
    runtime on a fresh engine with the session's venue, and summarize.

    The script decides what arrives when: each scripted block's transactions enter the
    runtime's inbox at the block's time, and the block is cut then (an external trigger, as a
    consensus model cuts), in arrival order, so the runtime's blocks are the scripted ones.
    ``log`` (default: in memory) receives the genesis record, every block, the state root every
    ``root_every`` blocks and a snapshot every ``snapshot_every``; a SQLite log can then be
    replayed (``strikechain replay``). ``check_every_block`` calls ``Engine.check`` after each
    block: every invariant of books, money, open interest, margin caches and the liquidation
    queue.
    """
    if not isinstance(session, ScriptedSession):
        session = ScriptedSession(session)
    seed = session.params.seed
    genesis = Genesis(venue=session.venue)
    log = log if log is not None else MemoryLog()
    log.write_genesis(genesis)
    engine = genesis.build_engine()
    runtime = Runtime(
        engine,
        log,
        BlockPolicy(ArrivalOrder(), External()),
        RuntimeConfig(root_every=root_every, snapshot_every=snapshot_every),
    )
    tally = Tally(session.instruments)
    for block in session.blocks():
        for tx in block.transactions:
            runtime.submit(tx, block.timestamp_ns)
        try:
            result = runtime.cut(block.timestamp_ns)
        except BlockRefused as refused:
            raise InvariantViolation(f"seed {seed}: {refused}") from refused
        if result is None:
            raise InvariantViolation("an external cut always makes a block")
        if check_every_block:
            try:
                engine.check()
            except InvariantViolation as violation:
                raise InvariantViolation(
                    f"seed {seed}: after block {block.height}: {violation}"
                ) from violation
        tally.add(block, result)
    return tally.summary(session.params, engine)
