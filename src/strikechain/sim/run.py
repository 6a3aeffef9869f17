"""Run a scenario: build its world, start its agents, run, record, measure.

:func:`build_run` turns a :class:`~strikechain.sim.scenario.Scenario` into a :class:`Run`: the
instruments it lists, its agents (by kind, :data:`~strikechain.sim.agents.registry.KINDS`), the
venue's configuration (its oracle registers the scenario's reporter agents), the lab world
(:func:`~strikechain.sim.lab.build_lab`) and a :class:`~strikechain.sim.recorder.Recorder`
between every agent and its gateway. :meth:`Run.execute` then:

1. at the start time, puts the operator's setup in the venue's inbox (it is the venue's own
   process, not an agent behind the network): every listing, every agent's collateral, the
   insurance fund's and the backstop pool's seed money; reporters start at once (the venue
   needs an index before anyone trades);
2. after the warm-up, starts every other agent, in the scenario's order;
3. runs the world for the duration, in steps that report progress;
4. returns a :class:`RunResult`: the recorder's tables and the metrics computed from them.

Nothing here sequences, matches or margins: the runtime and the engine do.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from strikechain.engine.engine import Engine
from strikechain.engine.instruments import (
    Instrument,
    MatchingMode,
    OptionType,
    make_option,
    make_perpetual,
)
from strikechain.engine.oracle import OracleParams
from strikechain.engine.ordering import OrderingPolicy
from strikechain.engine.params import UnderlyingParams, VenueConfig
from strikechain.engine.txs import Deposit, ListInstrument, Transaction
from strikechain.engine.units import QUOTE_SCALE
from strikechain.sim.agents import KINDS  # the package registers every kind
from strikechain.sim.agents.base import Agent, AgentContext, ReferenceFeed
from strikechain.sim.consensus import SequencerParams
from strikechain.sim.designs import apply_design, cpmm_params, is_engine_design
from strikechain.sim.lab import Lab, LabParams, build_lab
from strikechain.sim.processes import PricesSpec
from strikechain.sim.scenario import (
    AgentGroup,
    Scenario,
    ScenarioCode,
    ScenarioError,
    start_ns,
    unknown_field,
)
from strikechain.sim.settlement import LabSettlement

NANOS_PER_SECOND = 1_000_000_000
OPERATOR = "operator"
_ORDERING = {
    "lanes": OrderingPolicy.LANES,
    "arrival": OrderingPolicy.ARRIVAL,
    "fee_priority": OrderingPolicy.FEE_PRIORITY,
}
EXPIRY_HOUR_UTC = 8
UNINFORMED = ("noise", "leveraged")
"""The takers whose slippage the metrics report: the flow that trades for its own reasons (an
arbitrageur's "slippage" is the profit it takes from stale quotes: the makers' markouts)."""
SETUP_PRIORITY_FEE = 10**12
"""The operator's setup clears any base fee (the rule's ceiling) and goes first."""


@dataclass(frozen=True)
class Member:
    """One agent of the run: its name, its group and the agent itself."""

    name: str
    group: AgentGroup
    agent: Agent
    params: Any
    """The group's ``params`` as its kind's parameter struct."""


def instruments(scenario: Scenario) -> list[Instrument]:
    """The scenario's instruments, perpetuals first, then option chains by expiry, strike, type."""
    spots = {u.name: u.spot_usdc for u in scenario.market.underlyings}
    matching = MatchingMode.BATCH if scenario.venue.matching == "batch" else MatchingMode.CONTINUOUS
    start = start_ns(scenario.run.start)
    listed: list[Instrument] = []
    for section in scenario.market.instruments:
        if section.underlying not in spots:
            raise ScenarioError(
                ScenarioCode.INVALID,
                f"market.instruments: underlying {section.underlying!r} has no price process",
            )
        if section.perpetual is not None:
            perp = section.perpetual
            listed.append(
                make_perpetual(section.underlying, perp.tick, perp.lot, matching=matching)
            )
        chain = section.options
        if chain is None:
            continue
        spot = spots[section.underlying] or 0.0
        for days in chain.expiries_days:
            expiry = _expiry_ns(start, days)
            for percent in chain.strikes_pct:
                strike = Decimal(round(spot * percent / 100 / chain.strike_step_usdc))
                listed.extend(
                    make_option(
                        section.underlying,
                        expiry,
                        strike * chain.strike_step_usdc,
                        option_type,
                        chain.tick,
                        chain.lot,
                        matching=matching,
                    )
                    for option_type in (OptionType.CALL, OptionType.PUT)
                )
    return listed


def _expiry_ns(start: int, days: int) -> int:
    day = datetime.datetime.fromtimestamp(start // NANOS_PER_SECOND, tz=datetime.UTC).date()
    moment = datetime.datetime.combine(
        day + datetime.timedelta(days=days), datetime.time(EXPIRY_HOUR_UTC), datetime.UTC
    )
    return int(moment.timestamp()) * NANOS_PER_SECOND


def make_agents(scenario: Scenario) -> list[Member]:
    """Every agent of the scenario, named ``<prefix>-<n>`` in group order."""
    members: list[Member] = []
    seen: set[str] = set()
    for number, group in enumerate(scenario.agents):
        kind = KINDS.get(group.kind)
        if kind is None:
            raise ScenarioError(
                ScenarioCode.INVALID,
                f"$.agents[{number}].kind: {group.kind!r} is not one of {sorted(KINDS)}",
            )
        where = f"$.agents[{number}].params"
        unknown = unknown_field(group.params, msgspec.inspect.type_info(kind.params), where)
        if unknown is not None:
            raise ScenarioError(ScenarioCode.UNKNOWN_FIELD, f"unknown field `{unknown}`")
        try:
            params = msgspec.convert(group.params, kind.params)
        except msgspec.ValidationError as error:
            raise ScenarioError(
                ScenarioCode.INVALID, f"$.agents[{number}].params: {error}"
            ) from None
        for index in range(group.count):
            name = f"{group.prefix}-{index}"
            if name in seen:
                raise ScenarioError(
                    ScenarioCode.INVALID, f"$.agents[{number}]: agent name {name} is used twice"
                )
            seen.add(name)
            agent = kind.make(name, params, scenario.run.seed)
            members.append(Member(name, group, agent, params))
    return members


def _check_instruments(members: list[Member], listed: set[str]) -> None:
    """Every instrument an agent's params name is listed (refused before the run, not when the
    agent starts)."""
    for member in members:
        params = member.params
        named = getattr(params, "instruments", ()) or ()
        single = getattr(params, "instrument", "")
        for name in (*named, *((single,) if single else ())):
            if name not in listed:
                raise ScenarioError(
                    ScenarioCode.INVALID,
                    f"agent {member.name} ({member.group.kind}) names {name!r}, which the "
                    f"scenario does not list; listed: {sorted(listed)}",
                )


def venue_config(scenario: Scenario, members: list[Member]) -> VenueConfig:
    """The engine's venue: per underlying its tables and an oracle of the scenario's reporters."""
    reporters: dict[str, list[str]] = {}
    for member in members:
        kind = KINDS[member.group.kind]
        if kind.underlying is not None and kind.address is not None:
            address = kind.address(scenario.run.seed, member.name)
            reporters.setdefault(kind.underlying(member.params), []).append(address)
    underlyings: dict[str, UnderlyingParams] = {}
    for process in scenario.market.underlyings:
        name = process.name
        venue = scenario.venue.underlyings.get(name)
        risk = scenario.risk.underlyings.get(name)
        oracle = scenario.oracle.underlyings.get(name)
        addresses = tuple(reporters.get(name, ()))
        if not addresses:
            raise ScenarioError(
                ScenarioCode.INVALID, f"$.agents: no reporter agent reports on {name}"
            )
        oracle_fields: dict[str, Any] = {} if oracle is None else msgspec.structs.asdict(oracle)
        oracle_fields["quorum"] = min(oracle_fields.get("quorum", 3), len(addresses))
        table: dict[str, Any] = {"oracle": OracleParams(reporters=addresses, **oracle_fields)}
        if venue is not None:
            table.update(msgspec.structs.asdict(venue))
        if risk is not None:
            table.update(msgspec.structs.asdict(risk))
        underlyings[name] = UnderlyingParams(**table)
    return VenueConfig(underlyings=underlyings)


def lab_params(scenario: Scenario, venue: VenueConfig) -> LabParams:
    consensus = scenario.consensus
    production: dict[str, Any]
    if consensus.kind == "tendermint":
        production = {"tendermint": scenario.tendermint()}
    else:
        production = {
            "sequencer": SequencerParams(
                block_interval_ns=consensus.block_interval_ns, outages=consensus.outages
            )
        }
    market = scenario.market
    return LabParams(
        seed=scenario.run.seed,
        start_ns=start_ns(scenario.run.start),
        venue=venue,
        margin=scenario.venue.margin,
        ordering=_ORDERING[scenario.venue.ordering],
        network=scenario.network,
        mempool=consensus.mempool,
        prices=PricesSpec(
            underlyings=market.underlyings, correlations=market.correlations, step_ns=market.step_ns
        ),
        hedge=market.hedge,
        **production,
    )


class Run:
    """A scenario's world, agents and recorder, ready to execute (see the module)."""

    def __init__(self, scenario: Scenario) -> None:
        from strikechain.sim.recorder import Recorder

        if not is_engine_design(scenario.venue.design):
            raise ScenarioError(
                ScenarioCode.INVALID,
                f"$.venue.design: {scenario.venue.design} is not an order-book venue; "
                "run it with strikechain.sim.run.run_scenario",
            )
        scenario = apply_design(scenario)
        self.scenario = scenario
        self.instruments = instruments(scenario)
        self.members = make_agents(scenario)
        _check_instruments(self.members, {i.name for i in self.instruments})
        self.venue = venue_config(scenario, self.members)
        self.lab: Lab = build_lab(lab_params(scenario, self.venue))
        self.recorder = Recorder(self.lab)
        self.start_ns = self.lab.kernel.now
        self.settlement: LabSettlement | None = None
        if scenario.settlement.enabled:
            runtime = self.lab.runtime
            genesis = runtime.log.get_genesis()
            assert genesis is not None  # build_lab wrote it
            self.settlement = LabSettlement(
                scenario.settlement, self.engine, genesis, self.start_ns
            )
            runtime.add_sink(self.settlement)

    @property
    def engine(self) -> Engine:
        engine = self.lab.runtime.engine
        assert isinstance(engine, Engine)
        return engine

    def setup_transactions(self) -> list[Transaction]:
        """Listings, then every deposit (agents', the insurance fund's, the backstop's)."""
        fee = SETUP_PRIORITY_FEE
        txs: list[Transaction] = [
            ListInstrument(account=OPERATOR, instrument=instrument, priority_fee=fee)
            for instrument in self.instruments
        ]
        deposits: list[tuple[str, str, int]] = [
            (member.name, underlying, usdc)
            for member in self.members
            for underlying, usdc in member.group.deposit_usdc.items()
            if usdc
        ]
        risk = self.scenario.risk
        first = self.scenario.market.underlyings[0].name
        if risk.insurance_fund_usdc:
            deposits.append((self.venue.insurance_fund, first, risk.insurance_fund_usdc))
        deposits.extend(
            (self.venue.backstop, underlying, usdc)
            for underlying, usdc in risk.backstop_usdc.items()
            if usdc
        )
        for number, (account, underlying, usdc) in enumerate(deposits, start=1):
            txs.append(
                Deposit(
                    account=OPERATOR,
                    deposit_id=number,
                    beneficiary=account,
                    underlying=underlying,
                    amount=usdc * QUOTE_SCALE,
                    priority_fee=fee,
                )
            )
        return txs

    def _context(self, member: Member) -> AgentContext:
        lab = self.lab
        prices = lab.prices
        assert prices is not None  # a scenario always has a market
        return AgentContext(
            name=member.name,
            gateway=self.lab.gateway(member.name),
            scheduler=lab.kernel,
            rng=lab.kernel.rng(f"agent/{member.name}"),
            reference=ReferenceFeed(prices, lab.kernel, member.group.latency_ns),
            instruments={i.name: i for i in self.instruments},
            base_fee=lab.mempool.base_fee_now,
            hedge=lab.hedge,
            demand=lab.mempool.demand_now,
            max_fee=member.group.max_fee,
        )

    def execute(
        self, progress: Callable[[float], None] | None = None, steps: int = 100
    ) -> RunResult:
        """Set up, start the agents, run the scenario's whole duration, and measure it."""
        return self.result(self.simulate(progress, steps))

    def simulate(self, progress: Callable[[float], None] | None = None, steps: int = 100) -> int:
        """Set up, start the agents and run the scenario's whole duration; returns the end of
        the warm-up (where the metrics start)."""
        with long_lived_heap():
            return self._simulate(progress, steps)

    def _simulate(self, progress: Callable[[float], None] | None, steps: int) -> int:
        lab, run = self.lab, self.scenario.run
        runtime = lab.runtime
        lab.network.place([member.name for member in self.members])
        setup = self.setup_transactions()
        if self.settlement is not None:
            self.settlement.deposit_on_chain([tx for tx in setup if isinstance(tx, Deposit)])
        for tx in setup:
            runtime.submit(tx, lab.kernel.now)
        reporters = [m for m in self.members if KINDS[m.group.kind].address is not None]
        for member in reporters:
            member.agent.start(self._context(member))
        warmup_end = self.start_ns + int(run.warmup_s * NANOS_PER_SECOND)
        lab.run(warmup_end)
        for member in self.members:
            if member not in reporters:
                member.agent.start(self._context(member))
        end = warmup_end + int(run.duration_s * NANOS_PER_SECOND)
        span = max(end - warmup_end, 1)
        for step in range(1, steps + 1):
            lab.run(warmup_end + span * step // steps)
            if progress is not None:
                progress(step / steps)
        if self.settlement is not None:
            self.settlement.flush()
        return warmup_end

    def result(self, since_ns: int) -> RunResult:
        """The recorder's tables and the metrics from ``since_ns`` (the warm-up's end) on."""
        from strikechain.sim.metrics import compute_metrics

        frames = self.recorder.frames()
        makers = [m.name for m in self.members if m.group.kind == "market_maker"]
        takers = [m.name for m in self.members if m.group.kind in UNINFORMED]
        metrics = compute_metrics(frames, makers=makers, takers=takers, since_ns=since_ns)
        if self.settlement is not None:
            metrics.update(self.settlement.metrics())
            frames["batches"] = self.settlement.frame()
        return RunResult(self.scenario, metrics, frames, self.lab.kernel.events_run)


YOUNG_COLLECTION_THRESHOLD = 100_000
"""Allocations between two young-generation collections while a run goes (CPython's default:
700)."""


@contextlib.contextmanager
def long_lived_heap() -> Iterator[None]:
    """Collect cyclic garbage rarely while a run goes. A run allocates millions of small objects
    that live to its end (the recorder's rows, resting orders, events) and few cycles; at the
    default thresholds the collector spent a tenth of a run re-scanning them. What exists when
    the run starts is frozen out of collection (``gc.freeze``) and the young generation is
    collected every :data:`YOUNG_COLLECTION_THRESHOLD` allocations; both are restored after."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, thresholds[1], thresholds[2])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@dataclass(frozen=True)
class RunResult:
    """What a run measured: its metrics (flat, JSON-ready through
    :func:`~strikechain.sim.metrics.metrics_json`) and the recorder's tables as pandas
    DataFrames (:data:`~strikechain.sim.recorder.SCHEMA`)."""

    scenario: Scenario
    metrics: dict[str, float | int]
    frames: dict[str, Any]
    events: int
    """Kernel events run (every message, timer and delivery)."""


def run_scenario(scenario: Scenario, progress: Callable[[float], None] | None = None) -> RunResult:
    """Build and execute ``scenario`` (the Python API behind ``strikechain simulate``). A
    ``cpmm`` design runs the AMM model (:func:`strikechain.sim.cpmm.run_cpmm`): its metrics,
    no tables, no kernel events."""
    if not is_engine_design(scenario.venue.design):
        from strikechain.sim.cpmm import run_cpmm

        metrics: dict[str, float | int] = dict(run_cpmm(cpmm_params(scenario)).metrics())
        if progress is not None:
            progress(1.0)
        return RunResult(scenario, metrics, {}, 0)
    return Run(scenario).execute(progress)
