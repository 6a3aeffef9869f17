"""A small lab world for the agents' tests: a BTC venue behind a single sequencer, reference
prices (generated, or a replayed path written to a temporary file), oracle reporters registered
in the venue, listings and deposits made before any agent starts, and a context per agent. The
venue's rules that some agents depend on (the engine's ordering policy, the liquidation path)
are parameters; :mod:`tests.sim.agents.arena` makes the setup clear any base fee."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from strikechain.engine.engine import Engine
from strikechain.engine.events import Event
from strikechain.engine.instruments import Instrument, OptionType, make_option, make_perpetual
from strikechain.engine.liquidation import LiquidationParams
from strikechain.engine.oracle import OracleParams
from strikechain.engine.ordering import OrderingPolicy
from strikechain.engine.params import UnderlyingParams, VenueConfig
from strikechain.engine.txs import Deposit, ListInstrument
from strikechain.engine.units import QUOTE_SCALE
from strikechain.runtime.gateway import Notice, Ticker, Topic
from strikechain.sim.agents import (
    Agent,
    AgentContext,
    ReferenceFeed,
    Reporter,
    ReporterParams,
    reporter_address,
    reporter_key,
)
from strikechain.sim.consensus import MempoolParams, SequencerParams
from strikechain.sim.hedge_venue import HedgeVenueParams
from strikechain.sim.lab import Lab, LabParams, build_lab
from strikechain.sim.network import ConstantLatency, LinkParams, NetworkParams
from strikechain.sim.processes import (
    GbmParams,
    PricesSpec,
    ReplayParams,
    UnderlyingProcess,
)

MS = 1_000_000
SECOND = 1_000 * MS
USDC = QUOTE_SCALE
START_NS = 1_798_761_600 * SECOND
"""2027-01-01 00:00 UTC."""
SEED = 11
PERP = make_perpetual("BTC", "0.5", "0.001")
EXPIRY_NEAR = START_NS + 7 * 86_400 * SECOND + 8 * 3_600 * SECOND  # 8 Jan 2027 08:00 UTC
EXPIRY_FAR = START_NS + 28 * 86_400 * SECOND + 8 * 3_600 * SECOND  # 29 Jan 2027 08:00 UTC


def option(expiry_ns: int, strike: int, call: bool) -> Instrument:
    kind = OptionType.CALL if call else OptionType.PUT
    return make_option("BTC", expiry_ns, strike, kind, "5", "0.01")


def flat(spot: float = 100_000.0) -> PricesSpec:
    """A nearly still GBM (1% a year: a hundredth of a basis point a second)."""
    process = GbmParams(vol=0.01)
    return PricesSpec(underlyings=(UnderlyingProcess(name="BTC", process=process, spot_usdc=spot),))


def replayed(directory: Path, points: Sequence[tuple[float, float]], *, steps: bool) -> PricesSpec:
    """A path through ``(seconds after the start, price)`` points: linear between them, or
    held until the next (``steps``); held after the last."""
    path = directory / "btc.csv"
    rows = [f"{START_NS + round(seconds * SECOND)},{price}" for seconds, price in points]
    path.write_text("time_ns,price\n" + "\n".join(rows) + "\n")
    process = ReplayParams(
        path=str(path), interpolation="previous" if steps else "linear", beyond="hold"
    )
    return PricesSpec(underlyings=(UnderlyingProcess(name="BTC", process=process),))


class World:
    """The lab, its venue and the agents started in it: ``ordering`` and ``liquidation`` (None:
    the lane) are the venue's rules, the defaults the engine's."""

    setup_priority_fee = 0
    """What the listings and deposits before the first block pay."""

    def __init__(
        self,
        prices: PricesSpec,
        *,
        reporters: Sequence[str] = ("reporter-0", "reporter-1", "reporter-2"),
        quorum: int = 2,
        instruments: Sequence[Instrument] = (PERP,),
        deposits_usdc: dict[str, int] | None = None,
        hedge: HedgeVenueParams | None = None,
        block_interval_ns: int = 100 * MS,
        mempool: MempoolParams | None = None,
        ordering: OrderingPolicy = OrderingPolicy.LANES,
        liquidation: LiquidationParams | None = None,
    ) -> None:
        self.reporter_addresses = {name: reporter_address(SEED, name) for name in reporters}
        oracle = OracleParams(reporters=tuple(self.reporter_addresses.values()), quorum=quorum)
        underlying = (
            UnderlyingParams(oracle=oracle)
            if liquidation is None
            else UnderlyingParams(oracle=oracle, liquidation=liquidation)
        )
        self.venue = VenueConfig(underlyings={"BTC": underlying})
        link = LinkParams(latency=ConstantLatency(one_way_ns=2 * MS))
        self.lab: Lab = build_lab(
            LabParams(
                seed=SEED,
                start_ns=START_NS,
                venue=self.venue,
                margin="standard",
                ordering=ordering,
                network=NetworkParams(agent_validator=link),
                sequencer=SequencerParams(block_interval_ns=block_interval_ns),
                mempool=mempool or MempoolParams(base_fee_floor=0),
                prices=prices,
                hedge=hedge,
            )
        )
        self.instruments = {instrument.name: instrument for instrument in instruments}
        runtime, now, fee = self.lab.runtime, self.lab.kernel.now, self.setup_priority_fee
        for instrument in instruments:
            listing = ListInstrument(account="operator", instrument=instrument, priority_fee=fee)
            runtime.submit(listing, now)
        deposits = dict(deposits_usdc or {})
        deposits.setdefault(self.venue.insurance_fund, 100_000)
        deposits.setdefault(self.venue.backstop, 10_000_000)
        for number, (account, usdc) in enumerate(deposits.items(), start=1):
            deposit = Deposit(
                account="operator",
                deposit_id=number,
                beneficiary=account,
                underlying="BTC",
                amount=usdc * USDC,
                priority_fee=fee,
            )
            runtime.submit(deposit, now)
        self.lab.run(now + block_interval_ns)  # the first block: listings and deposits

    @property
    def engine(self) -> Engine:
        engine = self.lab.runtime.engine
        assert isinstance(engine, Engine)
        return engine

    @property
    def now(self) -> int:
        return self.lab.kernel.now

    def reference(self, t_ns: int | None = None) -> float:
        assert self.lab.prices is not None
        return self.lab.prices.price("BTC", self.now if t_ns is None else t_ns)

    def context(self, name: str, latency_ns: int = 0) -> AgentContext:
        lab = self.lab
        assert lab.prices is not None
        selection = lab.runtime.policy.selection
        return AgentContext(
            name=name,
            gateway=lab.gateway(name),
            scheduler=lab.kernel,
            rng=lab.kernel.rng(f"agent/{name}"),
            reference=ReferenceFeed(lab.prices, lab.kernel, latency_ns),
            instruments=self.instruments,
            base_fee=lambda: selection.base_fee,
            hedge=lab.hedge,
            demand=lambda: lab.mempool.demand_multiplier(lab.kernel.now),
        )

    def start(self, agent: Agent, latency_ns: int = 0) -> None:
        agent.start(self.context(agent.name, latency_ns))

    def run_for(self, seconds: float) -> None:
        self.lab.run(self.now + round(seconds * SECOND))

    def tickers(self, instrument: str) -> list[tuple[int, Ticker]]:
        """Every ticker of ``instrument`` from now on, with its arrival time (filled as the
        world runs)."""
        seen: list[tuple[int, Ticker]] = []

        def record(notice: Notice) -> None:
            assert isinstance(notice.event, Ticker)
            seen.append((self.now, notice.event))

        topic = Topic(instrument=instrument, channel="ticker")
        self.lab.gateway("watcher").subscribe(topic, record)
        return seen

    def events(self, account: str = "") -> list[tuple[int, Event]]:
        """Every event (of ``account``, or all) from now on, with its block time."""
        seen: list[tuple[int, Event]] = []

        def record(notice: Notice) -> None:
            assert not isinstance(notice.event, Ticker)
            seen.append((notice.timestamp_ns, notice.event))

        self.lab.gateway("watcher").subscribe(Topic(account=account), record)
        return seen


def honest(**changes: object) -> ReporterParams:
    fields: dict[str, object] = {"underlying": "BTC", "period_ns": 500 * MS, "jitter_ns": 100 * MS}
    fields.update(changes)
    return ReporterParams(**fields)  # type: ignore[arg-type]


def start_reporters(
    world: World, params: dict[str, ReporterParams] | None = None, latency_ns: int = 0
) -> dict[str, Reporter]:
    """Reporter agents for every registered reporter (``params`` by name; honest otherwise)."""
    reporters = {}
    for name in world.reporter_addresses:
        chosen = (params or {}).get(name, honest())
        reporter = Reporter(name, chosen, reporter_key(SEED, name))
        world.start(reporter, latency_ns)
        reporters[name] = reporter
    return reporters
