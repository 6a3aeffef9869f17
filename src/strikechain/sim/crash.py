"""A scripted crash: leveraged longs, a volatile prelude, a 30% fall in two minutes, a thin book.

The scenario the risk design is judged by: how much of the loss lands on someone other than
the traders who took it (bad debt), with one venue setting changed. It is deterministic (no
random draw: the path and every order are functions of :class:`CrashParams`), runs on the engine
directly (blocks a second apart, one signed oracle reporter), and reports what the liquidation
path did (:class:`CrashReport`).

Timeline (one block a second):

1. **Calm** (``calm_blocks``): the market maker ``mm`` offers; ``traders`` leveraged accounts
   each buy ``lots`` at about ``leverage`` x their collateral; the index holds at 100,000 USDC.
2. **Prelude** (``wobble_blocks``): the index zigzags ``+-wobble_ppm`` around a drift of
   ``wobble_drift_ppm``: realized volatility rises, which dynamic margin reads.
3. **Crash** (``crash_blocks``): the index falls ``crash_ppm`` (geometric steps), and the maker's
   bids thin out from ``depth_lots`` to ``crash_depth_lots`` a level: liquidity leaves when it is
   needed most.
4. **After** (``after_blocks``): the index holds at the bottom while the queue drains.

The maker quotes two bid levels below the index every block (good-till-time, three blocks), so
the liquidation lane, which runs before new orders, sells into the quotes of the blocks before.
The insurance fund starts with ``insurance_usdc``; the backstop pool with ``backstop_usdc``
(none by default: the book, the fund and ADL are all there is).

**Bad debt** is the sum of the deficits of bankrupt sub-ledgers: what the insurance fund paid
plus what it could not (socialized by ADL, or left on a flat sub-ledger), from the
:class:`~strikechain.engine.events.InsurancePaid` events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from strikechain.engine.dynamic import DynamicParams
from strikechain.engine.engine import Engine
from strikechain.engine.events import Event, MarginMultiplier
from strikechain.engine.instruments import make_perpetual
from strikechain.engine.liquidation import DEFAULT_LIQUIDATION_PARAMS, LiquidationParams
from strikechain.engine.oracle import OracleParams, OracleReport
from strikechain.engine.params import UnderlyingParams, VenueConfig
from strikechain.engine.signing import keccak256
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
from strikechain.engine.units import NANOS_PER_SECOND, QUOTE_SCALE
from strikechain.sim.signer import ReportSigner
from strikechain.sim.summary import LiquidationTally

OPERATOR = "operator"
MAKER = "mm"
START_NS = 1_798_761_600 * NANOS_PER_SECOND
"""2027-01-01 00:00 UTC: an hour boundary, so funding lands on whole hours."""
INDEX_USDC = 100_000
PPM = 1_000_000
_TICKS_PER_USDC = 2  # the perp's tick is 0.5 USDC
_LOT_BTC_DENOMINATOR = 1_000  # a lot is 0.001 BTC


@dataclass(frozen=True)
class CrashParams:
    """The crash's sizes; every amount in USDC, moves in ppm of the index."""

    traders: int = 40
    leverage: int = 12
    lots: int = 100
    """Each trader's position (0.1 BTC: 10,000 USDC at the start)."""
    calm_blocks: int = 20
    wobble_blocks: int = 60
    wobble_ppm: int = 10_000
    wobble_drift_ppm: int = -30_000
    crash_blocks: int = 120
    crash_ppm: int = -300_000
    after_blocks: int = 60
    depth_lots: int = 25
    """The maker's bid size per level (two levels) before the crash."""
    crash_depth_lots: int = 5
    insurance_usdc: int = 1_000
    backstop_usdc: int = 0
    dynamic: bool = False
    """Dynamic margin (the defaults of :class:`DynamicParams`) on the underlying."""
    liquidation: LiquidationParams = DEFAULT_LIQUIDATION_PARAMS


@dataclass
class CrashReport:
    """What the liquidation path did (money in USDC minor units), the highest dynamic margin
    multiplier, and the blocks run."""

    liquidations: LiquidationTally = field(default_factory=LiquidationTally)
    peak_multiplier_ppm: int = PPM
    blocks: int = 0

    def record(self, events: list[Event]) -> None:
        for event in events:
            if type(event) is MarginMultiplier:
                self.peak_multiplier_ppm = max(self.peak_multiplier_ppm, event.multiplier_ppm)
            else:
                self.liquidations.record(event)


class CrashScript:
    """The crash's venue config and blocks."""

    def __init__(self, params: CrashParams | None = None) -> None:
        self.params = params = params if params is not None else CrashParams()
        self.reporter = ReportSigner(keccak256(b"strikechain-sim/crash/reporter"))
        self.instrument = make_perpetual("BTC", "0.5", "0.001")
        self.venue = VenueConfig(
            underlyings={
                "BTC": UnderlyingParams(
                    oracle=OracleParams(reporters=(self.reporter.address,), quorum=1),
                    dynamic=DynamicParams() if params.dynamic else None,
                    liquidation=params.liquidation,
                )
            }
        )
        self.traders = tuple(f"lev-{number:03d}" for number in range(params.traders))
        self.path = index_path(params)

    def blocks(self) -> Iterator[Block]:
        params = self.params
        deposit_id = 0
        for height, index_minor in enumerate(self.path, start=1):
            now = START_NS + height * NANOS_PER_SECOND
            txs: list[Transaction] = [self._report(now, index_minor)]
            if height == 1:
                txs.append(ListInstrument(account=OPERATOR, instrument=self.instrument))
                for account, usdc in self._genesis_deposits():
                    deposit_id += 1
                    txs.append(
                        Deposit(
                            account=OPERATOR,
                            deposit_id=deposit_id,
                            beneficiary=account,
                            underlying="BTC",
                            amount=usdc * QUOTE_SCALE,
                        )
                    )
            elif height == 2:
                txs.append(self._order(MAKER, Side.SELL, INDEX_USDC, params.lots * params.traders))
            elif height == 3:
                txs.extend(
                    self._order(trader, Side.BUY, INDEX_USDC, params.lots, ioc=True)
                    for trader in self.traders
                )
            if height >= 3:
                txs.extend(self._bids(height, now, index_minor))
            yield Block(height=height, timestamp_ns=now, transactions=txs)

    def _genesis_deposits(self) -> list[tuple[str, int]]:
        params = self.params
        notional = INDEX_USDC * params.lots // _LOT_BTC_DENOMINATOR
        deposits = [(MAKER, 100_000_000)]
        deposits.extend((trader, -(-notional // params.leverage)) for trader in self.traders)
        if params.insurance_usdc:
            deposits.append((self.venue.insurance_fund, params.insurance_usdc))
        if params.backstop_usdc:
            deposits.append((self.venue.backstop, params.backstop_usdc))
        return deposits

    def _report(self, now: int, index_minor: int) -> OracleReport:
        report = OracleReport(
            account=self.reporter.address,
            underlying="BTC",
            timestamp_ns=now,
            price=index_minor,
            confidence=index_minor // 10_000,
        )
        return self.reporter.sign(report)

    def _order(
        self, account: str, side: Side, usdc: int, lots: int, *, ioc: bool = False
    ) -> PlaceOrder:
        return PlaceOrder(
            account=account,
            instrument=self.instrument.name,
            side=side,
            price_ticks=usdc * _TICKS_PER_USDC,
            size_lots=lots,
            time_in_force=TimeInForce.IOC if ioc else TimeInForce.GTC,
            post_only=PostOnly.NONE if ioc else PostOnly.REJECT,
        )

    def _bids(self, height: int, now: int, index_minor: int) -> list[Transaction]:
        """Two bid levels below the index, good for three blocks; thin once the crash starts."""
        params = self.params
        crashing = height > 3 + params.calm_blocks + params.wobble_blocks
        lots = params.crash_depth_lots if crashing else params.depth_lots
        ticks = index_minor * _TICKS_PER_USDC // QUOTE_SCALE
        return [
            PlaceOrder(
                account=MAKER,
                instrument=self.instrument.name,
                side=Side.BUY,
                price_ticks=ticks * (PPM - offset_ppm) // PPM,
                size_lots=lots,
                post_only=PostOnly.REJECT,
                time_in_force=TimeInForce.GTT,
                expire_at_ns=now + 3 * NANOS_PER_SECOND,
            )
            for offset_ppm in (3_000, 8_000)
        ]


def index_path(params: CrashParams) -> list[int]:
    """The index per block (minor units per BTC): calm, a zigzag around a drift, a linear fall,
    a flat bottom (integers: the same path on every machine)."""
    start = INDEX_USDC * QUOTE_SCALE
    path = [start] * (3 + params.calm_blocks)
    for step in range(1, params.wobble_blocks + 1):
        drift = start + start * params.wobble_drift_ppm * step // (params.wobble_blocks * PPM)
        sign = 1 if step % 2 else -1
        path.append(drift + sign * drift * params.wobble_ppm // PPM)
    level = start + start * params.wobble_drift_ppm // PPM
    bottom = level + level * params.crash_ppm // PPM
    for step in range(1, params.crash_blocks + 1):
        path.append(level + (bottom - level) * step // params.crash_blocks)
    path.extend([path[-1]] * params.after_blocks)
    return path


def run_crash(params: CrashParams | None = None, *, check: bool = True) -> CrashReport:
    """Run the crash through a fresh engine; ``check`` runs every invariant after each block."""
    script = CrashScript(params)
    engine = Engine(venue=script.venue)
    report = CrashReport()
    for block in script.blocks():
        result = engine.apply(block)
        if result.rejected:
            raise RuntimeError(f"block {block.height} refused: {result.reason}")
        report.record(result.events)
        report.blocks += 1
        if check:
            engine.check()
    return report
