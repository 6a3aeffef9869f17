"""``strikechain bench liquidation``: a scripted crash through the liquidation path.

The workload (seeded, every block built and every report signed before timing): one BTC
perpetual (tick 0.5 USDC, lot 0.001 BTC) on a venue with default fees, margin and liquidation
parameters, three signed reporters (quorum 2, verified at "ingress" before the timing, as a
node does; see ``strikechain bench engine``), an insurance fund seeded by deposit
(:data:`INSURANCE_FUND_USDC`) and a backstop pool funded by deposit (:data:`BACKSTOP_USDC`).
:data:`MAKERS` market makers sell :data:`LONGS` leveraged long sub-ledgers their positions at
100,000 USDC (15x to 19x of 2,000 to 10,000 USDC of collateral each, seeded), then quote bids
every block: :data:`BID_LEVELS` post-only levels 0.25% apart below the next block's index
(the book leads the index), good till two blocks later, so the lane (which runs after cancels
and expiries, before new orders) always sells into the previous block's quotes. Then the index
falls 8% in three blocks (97,000, 94,000, 92,000 USDC; every long is below maintenance by the
second and bankrupt at the bottom if still open), the makers' bids thin from
:data:`BID_LOTS` to :data:`BID_LOTS_CRASH` a level, and the index stays at the bottom; every
block carries fresh reports and the makers' new bids, until the liquidation queue is empty
(or :data:`BLOCKS_MAX` blocks). Blocks are 250 ms apart.

The same blocks run through fresh engines that differ only in the venue's liquidation
parameters, and every ``Engine.apply`` from the first crash block on is timed:

- the default lane (``subledgers_per_block_max`` 50): ``crash_block_p50_ms``,
  ``crash_block_p99_ms`` (target: a crash block with 1,000 sub-ledgers under water applies in
  under 100 ms on one core), ``crash_block_max_ms``; ``crash_blocks`` (until the queue is
  empty); ``subledgers_under_water`` (the longest queue, reached in the crash); what the path
  did: ``liquidation_orders``, ``backstop_takes``, ``deleveraged``, ``insurance_payments``
  (events), ``insurance_paid_usdc`` (what the fund paid) and ``adl_socialized_usdc`` (what
  auto-deleveraging cost the counterparties against the mark);
- ``liquidations_per_s``: ``subledger_steps``, the distinct (sub-ledger, block) pairs with a
  :class:`~strikechain.engine.events.LiquidationOrder`, a
  :class:`~strikechain.engine.events.BackstopTaken` or a
  :class:`~strikechain.engine.events.Deleveraged` (one sub-ledger taken through the path in
  one block, whatever it took), over the apply time of the blocks that started with a
  non-empty queue (the blocks in which the lane ran);
- the same keys with the bound raised to 1,000 sub-ledgers a block (ending
  ``_1000_per_block``): the lane works through 1,000 of the queue in each crash block, the
  case the target names;
- the reference, side by side: the same crash with the lane off (``UnderlyingParams``
  ``liquidation=None``: health checks and queueing only; the queue never drains), over as many
  blocks as the default lane took: ``reference_lane_off_block_p99_ms`` and ``_p50_ms``, and
  ``lane_cost_mean_ms``, the default lane's mean block time less the reference's;
- the keeper-auction baseline over the same blocks: ``keeper_auction_block_p99_ms`` and
  ``keeper_auctions_started`` (queued positions announced in 10-minute auctions; nobody
  bids, so none ends inside the window).

Each configuration runs :data:`REPEATS` times, interleaved, and reports its fastest pass (the
passes' events are checked to be the same). After every pass, outside the timing,
``Engine.check`` runs and money is checked to be conserved (cash, the fee pool, the insurance
fund and the dust account add up to the deposits).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from strikechain.engine.engine import Engine
from strikechain.engine.events import (
    BackstopTaken,
    Deleveraged,
    Event,
    InsurancePaid,
    LiquidationAuctionStarted,
    LiquidationOrder,
    Rejected,
)
from strikechain.engine.instruments import make_perpetual
from strikechain.engine.liquidation import (
    DEFAULT_LIQUIDATION_PARAMS,
    LiquidationParams,
    LiquidationPolicy,
)
from strikechain.engine.oracle import OracleParams, OracleReport, ReportVerifier, sign_report
from strikechain.engine.params import UnderlyingParams, VenueConfig
from strikechain.engine.signing import address_of, keccak256
from strikechain.engine.txs import (
    Block,
    Deposit,
    ListInstrument,
    PlaceOrder,
    PostOnly,
    Side,
    TimeInForce,
    Transaction,
)
from strikechain.engine.units import NANOS_PER_SECOND

SEED = 20261206
LONGS = 1_200
MAKERS = 4
BID_LEVELS = 10
BID_STEP_PPM = 2_500
BID_LOTS = 200
"""Each maker's size per bid level before the crash: 8,000 lots (8 BTC) of new bids a block."""
BID_LOTS_CRASH = 50
"""From the crash on liquidity leaves: 2,000 lots of new bids a block."""
LEVERAGE = (15.0, 19.0)
LONG_DEPOSIT_USDC = (2_000, 10_000)
MAKER_DEPOSIT_USDC = 50_000_000
INSURANCE_FUND_USDC = 500_000
BACKSTOP_USDC = 20_000_000
CALM_BLOCKS = 3
CRASH_PATH_USDC = (97_000, 94_000, 92_000)
BLOCKS_MAX = 400
"""Crash blocks at most (the crash and the blocks after it, at the bottom)."""
INDEX_USDC = 100_000
USDC = 1_000_000
TICKS_PER_USDC = 2
LOT_VALUE_USDC = 100
"""A lot (0.001 BTC) at 100,000 USDC."""
START_NS = 1_798_761_600 * NANOS_PER_SECOND + 60 * NANOS_PER_SECOND
"""2027-01-01 00:01 UTC: the run ends long before the next funding time."""
BLOCK_INTERVAL_NS = 250_000_000
REPEATS = 3
UNDERLYING = "BTC"
OPERATOR = "operator"
PERPETUAL = make_perpetual(UNDERLYING, "0.5", "0.001")
REPORTER_KEYS = tuple(keccak256(f"bench-liquidation-reporter-{i}".encode()) for i in range(3))
WIDE_LANE = LiquidationParams(subledgers_per_block_max=1_000)
KEEPER_BASELINE = LiquidationParams(policy=LiquidationPolicy.KEEPER_AUCTION)


def venue(liquidation: LiquidationParams | None = DEFAULT_LIQUIDATION_PARAMS) -> VenueConfig:
    oracle = OracleParams(reporters=tuple(address_of(key) for key in REPORTER_KEYS), quorum=2)
    return VenueConfig(
        underlyings={UNDERLYING: UnderlyingParams(oracle=oracle, liquidation=liquidation)}
    )


@dataclass
class Scenario:
    """The blocks of the run: ``setup`` (untimed) then ``crash`` (timed)."""

    longs: int = LONGS
    blocks_max: int = BLOCKS_MAX
    seed: int = SEED
    setup: list[Block] = field(default_factory=list)
    crash: list[Block] = field(default_factory=list)
    net_deposits: int = 0

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        deposits = rng.integers(*LONG_DEPOSIT_USDC, size=self.longs, endpoint=True).tolist()
        leverage = rng.uniform(*LEVERAGE, size=self.longs).tolist()
        lots = [int(d * x) // LOT_VALUE_USDC for d, x in zip(deposits, leverage, strict=True)]
        path = [INDEX_USDC] * (3 + CALM_BLOCKS) + list(CRASH_PATH_USDC)
        path += [CRASH_PATH_USDC[-1]] * (self.blocks_max - len(CRASH_PATH_USDC) + 2)
        self._path = path
        longs = [f"long-{i:04d}" for i in range(self.longs)]
        self._deposit_id = 0
        genesis: list[Transaction] = [ListInstrument(account=OPERATOR, instrument=PERPETUAL)]
        genesis += [self._deposit(f"mm-{m}", MAKER_DEPOSIT_USDC) for m in range(MAKERS)]
        genesis += [self._deposit(a, d) for a, d in zip(longs, deposits, strict=True)]
        config = venue()
        genesis.append(self._deposit(config.insurance_fund, INSURANCE_FUND_USDC))
        genesis.append(self._deposit(config.backstop, BACKSTOP_USDC))
        self.setup.append(self._block(0, genesis, bids=False))
        self.setup.append(self._block(1, self._asks(sum(lots))))
        buys: list[Transaction] = [
            PlaceOrder(
                account=account,
                instrument=PERPETUAL.name,
                side=Side.BUY,
                size_lots=size,
                price_ticks=INDEX_USDC * TICKS_PER_USDC,
                time_in_force=TimeInForce.IOC,
            )
            for account, size in zip(longs, lots, strict=True)
        ]
        self.setup.append(self._block(2, buys))
        self.setup += [self._block(n, []) for n in range(3, 3 + CALM_BLOCKS)]
        first = 3 + CALM_BLOCKS
        self.crash = [self._block(n, []) for n in range(first, first + self.blocks_max)]

    def _deposit(self, account: str, usdc: int) -> Deposit:
        self._deposit_id += 1
        self.net_deposits += usdc * USDC
        return Deposit(
            account=OPERATOR,
            deposit_id=self._deposit_id,
            beneficiary=account,
            underlying=UNDERLYING,
            amount=usdc * USDC,
        )

    @staticmethod
    def _asks(lots: int) -> list[Transaction]:
        share = -(-lots // MAKERS)
        return [
            PlaceOrder(
                account=f"mm-{m}",
                instrument=PERPETUAL.name,
                side=Side.SELL,
                size_lots=share,
                price_ticks=INDEX_USDC * TICKS_PER_USDC,
                post_only=PostOnly.REJECT,
            )
            for m in range(MAKERS)
        ]

    def _block(self, n: int, transactions: list[Transaction], *, bids: bool = True) -> Block:
        """Block ``n`` (0-based): reports at the path's index, ``transactions``, then the
        makers' bids below the next block's index, good till block ``n + 2``."""
        now = START_NS + n * BLOCK_INTERVAL_NS
        reports: list[Transaction] = [
            sign_report(
                OracleReport(
                    account=address_of(key),
                    underlying=UNDERLYING,
                    timestamp_ns=now,
                    price=self._path[n] * USDC,
                    confidence=10 * USDC,
                ),
                key,
            )
            for key in REPORTER_KEYS
        ]
        quotes: list[Transaction] = []
        if bids:
            ahead = self._path[n + 1] * TICKS_PER_USDC
            lots = BID_LOTS if self._path[n + 1] == INDEX_USDC else BID_LOTS_CRASH
            quotes = [
                PlaceOrder(
                    account=f"mm-{m}",
                    instrument=PERPETUAL.name,
                    side=Side.BUY,
                    size_lots=lots,
                    price_ticks=ahead * (1_000_000 - (level + 1) * BID_STEP_PPM) // 1_000_000,
                    time_in_force=TimeInForce.GTT,
                    post_only=PostOnly.REJECT,
                    expire_at_ns=now + 2 * BLOCK_INTERVAL_NS,
                )
                for level in range(BID_LEVELS)
                for m in range(MAKERS)
            ]
        return Block(height=n + 1, timestamp_ns=now, transactions=reports + transactions + quotes)


@dataclass
class Pass:
    """One run of the scenario through a fresh engine."""

    durations: list[float] = field(default_factory=list)
    lane_seconds: float = 0.0
    steps: int = 0
    queue_max: int = 0
    counts: dict[type, int] = field(default_factory=dict)
    insured: int = 0
    """Minor units the insurance fund paid (:class:`InsurancePaid`)."""
    socialized: int = 0
    """Minor units auto-deleveraging cost the counterparties against the mark."""
    cleared: bool = False

    def millis(self, percentile: float) -> float:
        return float(np.percentile(np.array(self.durations) * 1e3, percentile))


_COUNTED = (LiquidationOrder, BackstopTaken, Deleveraged, InsurancePaid, LiquidationAuctionStarted)
_STEPS = (LiquidationOrder, BackstopTaken, Deleveraged)


def verified(scenario: Scenario) -> ReportVerifier:
    """A verifier that has seen every report (the node's ingress does this as they arrive)."""
    verifier = ReportVerifier()
    for block in scenario.setup + scenario.crash:
        for tx in block.transactions:
            if type(tx) is OracleReport:
                verifier.signer(tx)
    return verifier


def run_pass(
    scenario: Scenario,
    verifier: ReportVerifier,
    liquidation: LiquidationParams | None,
    blocks: int | None = None,
) -> Pass:
    """The setup, then crash blocks until the queue is empty (or ``blocks`` of them)."""
    engine = Engine(venue=venue(liquidation), verifier=verifier)
    for block in scenario.setup:
        _require_applied(engine, block, engine.apply(block).events)
    queued = len(engine.liquidation_queue)
    if queued:
        raise RuntimeError(f"seed {scenario.seed}: {queued} under water before the crash")
    result = Pass(counts=dict.fromkeys(_COUNTED, 0))
    limit = len(scenario.crash) if blocks is None else blocks
    for block in scenario.crash[:limit]:
        lane_runs = bool(engine.liquidation_queue)
        start = time.perf_counter()
        outcome = engine.apply(block)
        seconds = time.perf_counter() - start
        _require_applied(engine, block, outcome.events)
        result.durations.append(seconds)
        result.lane_seconds += seconds if lane_runs else 0.0
        result.steps += _count(outcome.events, result)
        result.queue_max = max(result.queue_max, len(engine.liquidation_queue))
        if blocks is None and result.queue_max and not engine.liquidation_queue:
            result.cleared = True
            break
    engine.check()
    held = engine.total_cash() + engine.fee_pool + engine.insurance_fund + engine.dust
    if held != scenario.net_deposits or engine.deposits_total != scenario.net_deposits:
        raise RuntimeError(
            f"seed {scenario.seed}: money not conserved: {held} held, "
            f"{scenario.net_deposits} deposited"
        )
    return result


def _require_applied(engine: Engine, block: Block, events: Iterable[Event]) -> None:
    if engine.height != block.height:
        raise RuntimeError(f"block {block.height} was refused")
    for event in events:
        if type(event) is Rejected:
            raise RuntimeError(f"block {block.height}: a transaction was refused: {event}")


def _count(events: list[Event], into: Pass) -> int:
    """Count the path's events; return the sub-ledgers the lane stepped in this block."""
    stepped: dict[str, None] = {}
    counts = into.counts
    for event in events:
        kind = type(event)
        if kind not in counts:
            continue
        counts[kind] += 1
        if type(event) is InsurancePaid:
            into.insured += event.amount
        elif type(event) is Deleveraged:
            into.socialized += event.socialized
        if kind in _STEPS:
            stepped[event.account] = None  # type: ignore[union-attr]
    return len(stepped)


def _lane_metrics(run: Pass, suffix: str = "") -> dict[str, float]:
    return {
        f"liquidations_per_s{suffix}": run.steps / run.lane_seconds,
        f"crash_block_p99_ms{suffix}": run.millis(99),
        f"crash_block_p50_ms{suffix}": run.millis(50),
        f"crash_block_max_ms{suffix}": run.millis(100),
        f"crash_blocks{suffix}": float(len(run.durations)),
        f"subledger_steps{suffix}": float(run.steps),
        f"subledgers_under_water{suffix}": float(run.queue_max),
        f"liquidation_orders{suffix}": float(run.counts[LiquidationOrder]),
        f"backstop_takes{suffix}": float(run.counts[BackstopTaken]),
        f"deleveraged{suffix}": float(run.counts[Deleveraged]),
        f"insurance_payments{suffix}": float(run.counts[InsurancePaid]),
        f"insurance_paid_usdc{suffix}": run.insured / USDC,
        f"adl_socialized_usdc{suffix}": run.socialized / USDC,
    }


def _best(passes: list[Pass]) -> Pass:
    """The fastest pass (every pass of a configuration does the same work: checked)."""
    first = passes[0]
    for other in passes[1:]:
        same = (other.counts, other.steps, other.queue_max, len(other.durations))
        if same != (first.counts, first.steps, first.queue_max, len(first.durations)):
            raise RuntimeError("two passes over the same blocks did different work")
    return min(passes, key=lambda p: sum(p.durations))


def run(
    longs: int = LONGS, blocks_max: int = BLOCKS_MAX, repeats: int = REPEATS
) -> dict[str, float]:
    """All metrics of the liquidation benchmark: the best of ``repeats`` interleaved passes of
    each configuration (this machine's speed wanders from one second to the next)."""
    scenario = Scenario(longs=longs, blocks_max=blocks_max)
    verifier = verified(scenario)
    passes: dict[str, list[Pass]] = {"lane": [], "wide": [], "off": [], "keeper": []}
    for _ in range(repeats):
        passes["lane"].append(run_pass(scenario, verifier, DEFAULT_LIQUIDATION_PARAMS))
        passes["wide"].append(run_pass(scenario, verifier, WIDE_LANE))
        blocks = len(passes["lane"][0].durations)
        passes["off"].append(run_pass(scenario, verifier, None, blocks))
        passes["keeper"].append(run_pass(scenario, verifier, KEEPER_BASELINE, blocks))
    lane, wide, off, keeper = (_best(passes[name]) for name in passes)
    for each in (lane, wide):
        if not each.cleared:
            raise RuntimeError(
                f"seed {SEED}: the queue was not empty after {len(each.durations)} blocks"
            )
    return {
        **_lane_metrics(lane),
        **_lane_metrics(wide, "_1000_per_block"),
        "reference_lane_off_block_p99_ms": off.millis(99),
        "reference_lane_off_block_p50_ms": off.millis(50),
        "lane_cost_mean_ms": (sum(lane.durations) - sum(off.durations)) / len(off.durations) * 1e3,
        "keeper_auction_block_p99_ms": keeper.millis(99),
        "keeper_auctions_started": float(keeper.counts[LiquidationAuctionStarted]),
        "longs": float(longs),
    }
