"""Lab scenarios: a TOML file, read into one typed :class:`Scenario`, refused with the field named.

A scenario has nine sections (every field is documented on its struct below, and in
``scenarios/README.md``):

- ``[run]``: seed, virtual start time, duration, warm-up before agents start;
- ``[market]``: the reference price processes (``[[market.underlyings]]``, each with its
  ``process``; :mod:`strikechain.sim.processes`), their correlations, the grid step, the
  instruments (a perpetual and option chains per underlying), and the external hedging venue;
- ``[network]``: :class:`~strikechain.sim.network.NetworkParams` (latency per link, jitter,
  loss, regions, gossip);
- ``[consensus]``: ``kind = "tendermint"`` (a validator set and CometBFT's timeouts) or
  ``"sequencer"`` (a block interval), and the mempool (capacity, fee priority, base fee,
  congestion windows, demand spikes);
- ``[venue]``: the venue design (``rollup-clob``, ``rollup-fba``, ``l1-clob``, ``l1-auction``,
  ``cpmm``: :mod:`strikechain.sim.designs`), or by hand the engine's ordering policy, the
  matching mode, margin on or off; and per underlying the engine's own parameter tables (fees,
  margin, funding, marks, limits, portfolio);
- ``[risk]``: per underlying dynamic margin, the liquidation path and auctions (the engine's
  :class:`~strikechain.engine.dynamic.DynamicParams`, :class:`~strikechain.engine.liquidation.
  LiquidationParams`, :class:`~strikechain.engine.auction_triggers.AuctionParams`), the insurance
  fund's and the backstop pool's seed money;
- ``[oracle]``: quorum and freshness rules per underlying (the reporters themselves are agents);
- ``[settlement]``: whether the venue settles its batches on the embedded chain, and the batch
  size, challenge window and chain block time (:mod:`strikechain.sim.settlement`);
- ``[[agents]]``: groups of agents, each ``kind``, ``count``, a name prefix, collateral, the
  latency of its reference feed, and the kind's own ``params``.

Errors. :func:`load_scenario` refuses, with a :class:`ScenarioError` whose message names the
field's path (``$.consensus.validators``...): an unknown field at any depth (a typo never
silently becomes a default), a wrong type, or a value a parameter struct's own checks refuse.
Durations are integer nanoseconds where a field ends in ``_ns`` (TOML allows ``1_000_000``), and
plain seconds in the scenario's own ``_s`` fields.
"""

from __future__ import annotations

import datetime
import enum
import tomllib
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from strikechain.engine.auction_triggers import AuctionParams
from strikechain.engine.dynamic import DynamicParams
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.liquidation import DEFAULT_LIQUIDATION_PARAMS, LiquidationParams
from strikechain.engine.params import (
    FeeParams,
    FundingParams,
    MarginParams,
    MarkParams,
    PositionLimits,
)
from strikechain.engine.portfolio import DEFAULT_PORTFOLIO_PARAMS, PortfolioParams
from strikechain.sim.consensus import MempoolParams, TendermintParams, ValidatorSpec, Window
from strikechain.sim.hedge_venue import HedgeVenueParams
from strikechain.sim.network import NetworkParams
from strikechain.sim.processes import (
    CorrelationGroup,
    RegimeParams,
    ReplayParams,
    UnderlyingProcess,
)
from strikechain.sim.settlement import SettlementSection

NANOS_PER_SECOND: Final = 1_000_000_000
MAX_DURATION_S: Final = 30 * 24 * 3600
MAX_AGENTS: Final = 100_000


class ScenarioCode(enum.StrEnum):
    UNREADABLE = "SCENARIO_UNREADABLE"
    NOT_TOML = "SCENARIO_NOT_TOML"
    UNKNOWN_FIELD = "SCENARIO_UNKNOWN_FIELD"
    INVALID = "SCENARIO_INVALID"


class ScenarioError(ValueError):
    """A scenario that cannot run, and which field is why."""

    def __init__(self, code: ScenarioCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _invalid(field: str, requirement: str, value: object) -> ValueError:
    return ValueError(f"{field} {requirement}, got {value!r}")


# -- sections ------------------------------------------------------------------------------------


class RunSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[run]``: what is run, from when, for how long."""

    seed: int = 1
    """The master seed: every component's stream derives from it and its name."""
    start: str = "2027-01-01T00:00:00Z"
    """Virtual start time, ISO 8601 UTC (block times follow it: funding runs on the hour)."""
    duration_s: float = 600.0
    """Virtual seconds simulated after the warm-up."""
    warmup_s: float = 5.0
    """Virtual seconds before agents start: listings, deposits and the first oracle index."""

    def __post_init__(self) -> None:
        if type(self.seed) is not int or self.seed < 0:
            raise _invalid("run.seed", "must be an integer >= 0", self.seed)
        start_ns(self.start)  # refuses a bad time with its own message
        for name in ("duration_s", "warmup_s"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_DURATION_S:
                raise _invalid(f"run.{name}", f"must be between 0 and {MAX_DURATION_S}", value)


def start_ns(text: str) -> int:
    """An ISO 8601 UTC time as integer nanoseconds since the epoch."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(
            "run.start", "must be an ISO 8601 time like 2027-01-01T00:00:00Z", text
        ) from None
    if moment.tzinfo is None or moment.utcoffset() != datetime.timedelta(0):
        raise _invalid("run.start", "must be in UTC (end it with Z)", text)
    return int(moment.timestamp()) * NANOS_PER_SECOND + moment.microsecond * 1_000


class PerpetualSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A linear USDC perpetual on the underlying (``BTC_USDC-PERPETUAL``)."""

    tick: str = "0.5"
    """The price grid, USDC (a decimal string)."""
    lot: str = "0.001"
    """The size grid, units of the underlying."""


class OptionChainSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """European options on the underlying: calls and puts at ``strikes_pct`` of the spot (rounded
    to ``strike_step_usdc``) for each expiry, ``expiries_days`` days after the start's date at
    08:00 UTC (Deribit's expiry time; names carry the date)."""

    expiries_days: tuple[int, ...] = (1,)
    strikes_pct: tuple[float, ...] = (90.0, 95.0, 100.0, 105.0, 110.0)
    strike_step_usdc: int = 1_000
    tick: str = "5"
    lot: str = "0.01"


class InstrumentsSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The instruments listed on one underlying."""

    underlying: str
    perpetual: PerpetualSection | None = None
    options: OptionChainSection | None = None


class MarketSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[market]``: reference prices, instruments and the external hedging venue."""

    underlyings: tuple[UnderlyingProcess, ...]
    correlations: tuple[CorrelationGroup, ...] = ()
    step_ns: int = 100_000_000
    """The price grid of the reference paths (100 ms)."""
    instruments: tuple[InstrumentsSection, ...] = ()
    hedge: HedgeVenueParams | None = None


class ConsensusSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[consensus]``: who makes blocks, and what a block may carry."""

    kind: Literal["tendermint", "sequencer"] = "sequencer"
    validators: tuple[ValidatorSpec, ...] = ()
    """Tendermint: the validator set (default: four honest validators, v0..v3)."""
    timeout_commit_ns: int = 1_000_000_000
    timeout_propose_ns: int = 3_000_000_000
    outages: tuple[Window, ...] = ()
    block_interval_ns: int = 1_000_000_000
    """Sequencer: its block interval."""
    mempool: MempoolParams = msgspec.field(default_factory=MempoolParams)


class UnderlyingVenueSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The engine's tables for one underlying (its own defaults where a table is absent)."""

    margin: MarginParams = msgspec.field(default_factory=MarginParams)
    fees: FeeParams = msgspec.field(default_factory=FeeParams)
    funding: FundingParams = msgspec.field(default_factory=FundingParams)
    mark: MarkParams = msgspec.field(default_factory=MarkParams)
    limits: PositionLimits = msgspec.field(default_factory=PositionLimits)
    portfolio: PortfolioParams = DEFAULT_PORTFOLIO_PARAMS


Design = Literal["rollup-clob", "rollup-fba", "l1-clob", "l1-auction", "cpmm"]
DESIGNS: Final[tuple[Design, ...]] = ("rollup-clob", "rollup-fba", "l1-clob", "l1-auction", "cpmm")


class CpmmSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[venue.cpmm]``: the pool of the ``cpmm`` design (:mod:`strikechain.sim.cpmm`), on the
    first underlying; its price path's vol and drift (a ``gbm`` process), the block interval,
    the duration, the warm-up and the seed come from the rest of the scenario."""

    pool_value_usdc: float = 2_000_000.0
    """Half in the underlying at the spot price, half in USDC."""
    fee_bps: float = 30.0
    gas_usdc: float = 0.0
    """What one arbitrage transaction costs the arbitrageur (it trades only above it)."""
    paths: int = 200
    """Independent price paths the run averages over (the AMM model is vectorized over them)."""

    def __post_init__(self) -> None:
        if not (isinstance(self.pool_value_usdc, int | float) and self.pool_value_usdc > 0):
            raise _invalid("CpmmSection.pool_value_usdc", "must be > 0", self.pool_value_usdc)


class VenueSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[venue]``: the engine's rules."""

    design: Design | None = None
    """A venue design (:mod:`strikechain.sim.designs`): it sets the rules that define it
    (matching, ordering, the fee market, the liquidation policy) over the fields below; None:
    the fields as written."""
    cpmm: CpmmSection = msgspec.field(default_factory=CpmmSection)
    """The pool, when ``design = "cpmm"``."""
    ordering: Literal["lanes", "arrival", "fee_priority"] = "lanes"
    matching: Literal["continuous", "batch"] = "continuous"
    margin: Literal["standard", "none"] = "standard"
    underlyings: dict[str, UnderlyingVenueSection] = msgspec.field(default_factory=dict)
    """Per underlying (by name); an underlying of the market without an entry gets defaults."""


class UnderlyingRiskSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    dynamic: DynamicParams | None = None
    liquidation: LiquidationParams | None = DEFAULT_LIQUIDATION_PARAMS
    auctions: AuctionParams | None = None


class RiskSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[risk]``: dynamic margin, the liquidation path and auctions per underlying, and the
    venue's safety money."""

    underlyings: dict[str, UnderlyingRiskSection] = msgspec.field(default_factory=dict)
    insurance_fund_usdc: int = 0
    """Seeded at the start by a deposit to the insurance fund."""
    backstop_usdc: dict[str, int] = msgspec.field(default_factory=dict)
    """The backstop pool's collateral per underlying."""


class UnderlyingOracleSection(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """The oracle's rules for one underlying; its reporters are the ``reporter`` agents whose
    ``underlying`` it is."""

    quorum: int = 3
    staleness_ns: int = 10_000_000_000
    outlier_ppm: int = 20_000
    max_confidence_ppm: int = 5_000
    max_pause_ns: int = 300_000_000_000


class OracleSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    underlyings: dict[str, UnderlyingOracleSection] = msgspec.field(default_factory=dict)


class AgentGroup(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[[agents]]``: ``count`` agents of one ``kind``, named ``<name>-<n>``."""

    kind: str
    """A registered kind (:data:`~strikechain.sim.agents.registry.KINDS`): ``market_maker``,
    ``arbitrageur``, ``noise``, ``leveraged``, ``reporter``, ``sniper``, ``keeper``, ``whale`` or
    ``manipulator``."""
    count: int = 1
    name: str = ""
    """Name prefix (default: the kind)."""
    deposit_usdc: dict[str, int] = msgspec.field(default_factory=dict)
    """Collateral per underlying, deposited at the start."""
    latency_ns: int = 0
    """How old the reference price an agent sees is (its feed from the outside world)."""
    max_fee: int = 0
    """The most priority fee an agent pays per transaction (0: whatever the base fee asks)."""
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    """The kind's own parameters (see :data:`strikechain.sim.agents.KINDS`)."""

    def __post_init__(self) -> None:
        if type(self.count) is not int or not 0 < self.count <= MAX_AGENTS:
            raise _invalid("agents.count", f"must be in [1, {MAX_AGENTS}]", self.count)
        if type(self.latency_ns) is not int or self.latency_ns < 0:
            raise _invalid("agents.latency_ns", "must be an integer >= 0", self.latency_ns)
        for underlying, amount in self.deposit_usdc.items():
            if type(amount) is not int or amount < 0:
                raise _invalid(f"agents.deposit_usdc.{underlying}", "must be >= 0", amount)

    @property
    def prefix(self) -> str:
        return self.name or self.kind


class Scenario(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A whole lab scenario (see the module)."""

    run: RunSection = msgspec.field(default_factory=RunSection)
    market: MarketSection
    network: NetworkParams = msgspec.field(default_factory=NetworkParams)
    consensus: ConsensusSection = msgspec.field(default_factory=ConsensusSection)
    venue: VenueSection = msgspec.field(default_factory=VenueSection)
    risk: RiskSection = msgspec.field(default_factory=RiskSection)
    oracle: OracleSection = msgspec.field(default_factory=OracleSection)
    settlement: SettlementSection = msgspec.field(default_factory=SettlementSection)
    agents: tuple[AgentGroup, ...] = ()

    def tendermint(self) -> TendermintParams:
        """The consensus section as Tendermint's parameters."""
        section = self.consensus
        validators = section.validators or tuple(
            ValidatorSpec(name=f"v{number}") for number in range(4)
        )
        return TendermintParams(
            validators=validators,
            timeout_commit_ns=section.timeout_commit_ns,
            timeout_propose_ns=section.timeout_propose_ns,
            outages=section.outages,
        )


# -- loading -------------------------------------------------------------------------------------


def load_scenario(path: str | Path, *, seed: int | None = None) -> Scenario:
    """Read and check a scenario file; ``seed`` overrides ``run.seed``. A replayed price
    path's relative ``path`` is taken from the scenario file's folder."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ScenarioError(ScenarioCode.UNREADABLE, f"{path}: {error.strerror}") from None
    scenario = parse_scenario(text, seed=seed, source=str(path))
    return _replays_from(scenario, Path(path).resolve().parent)


def _replays_from(scenario: Scenario, folder: Path) -> Scenario:
    """``scenario`` with every relative replay path resolved against ``folder``."""

    def resolved(process: Any) -> Any:
        if isinstance(process, ReplayParams) and not Path(process.path).is_absolute():
            return msgspec.structs.replace(process, path=str(folder / process.path))
        if isinstance(process, RegimeParams):
            segments = tuple(
                msgspec.structs.replace(segment, process=resolved(segment.process))
                for segment in process.segments
            )
            return msgspec.structs.replace(process, segments=segments)
        return process

    underlyings = tuple(
        msgspec.structs.replace(u, process=resolved(u.process)) for u in scenario.market.underlyings
    )
    market = msgspec.structs.replace(scenario.market, underlyings=underlyings)
    return msgspec.structs.replace(scenario, market=market)


def parse_scenario(text: str, *, seed: int | None = None, source: str = "<scenario>") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(ScenarioCode.NOT_TOML, f"{source}: {error}") from None
    if seed is not None:
        data.setdefault("run", {})["seed"] = seed
    unknown = unknown_field(data, _SCENARIO_TYPE, "$")
    if unknown is not None:
        raise ScenarioError(ScenarioCode.UNKNOWN_FIELD, f"{source}: unknown field `{unknown}`")
    try:
        return msgspec.convert(data, Scenario)
    except InvariantViolation as violation:  # the engine's tables check themselves this way
        where = _refusing(data, _SCENARIO_TYPE, "$") or "$"
        raise ScenarioError(ScenarioCode.INVALID, f"{source}: {violation} - at `{where}`") from None
    except msgspec.ValidationError as error:
        message = str(error)
        code = (
            ScenarioCode.UNKNOWN_FIELD
            if "unknown field" in message.lower()
            else ScenarioCode.INVALID
        )
        raise ScenarioError(code, f"{source}: {message}") from None


def unknown_field(value: object, kind: msgspec.inspect.Type, path: str) -> str | None:
    """The path of the first key in ``value`` that ``kind`` has no field for, at any depth (the
    engine's parameter tables ignore unknown keys when decoded; a scenario must not)."""
    if isinstance(kind, msgspec.inspect.StructType):
        return _unknown_in_struct(value, kind, path)
    if isinstance(kind, msgspec.inspect.UnionType):
        for option in kind.types:
            if isinstance(option, msgspec.inspect.StructType) and isinstance(value, dict):
                if option.tag_field is None or value.get(option.tag_field) == option.tag:
                    return _unknown_in_struct(value, option, path)
            elif not isinstance(option, msgspec.inspect.NoneType):
                found = unknown_field(value, option, path)
                if found is not None:
                    return found
        return None
    if isinstance(kind, msgspec.inspect.VarTupleType | msgspec.inspect.ListType) and isinstance(
        value, list
    ):
        for number, item in enumerate(value):
            found = unknown_field(item, kind.item_type, f"{path}[{number}]")
            if found is not None:
                return found
    if isinstance(kind, msgspec.inspect.DictType) and isinstance(value, dict):
        for key, item in value.items():
            found = unknown_field(item, kind.value_type, f"{path}.{key}")
            if found is not None:
                return found
    return None


def _unknown_in_struct(value: object, kind: msgspec.inspect.StructType, path: str) -> str | None:
    if not isinstance(value, dict):
        return None  # the conversion names the wrong type
    fields = {field.encode_name: field for field in kind.fields}
    for key, item in value.items():
        if key == kind.tag_field:
            continue
        field = fields.get(key)
        if field is None:
            return f"{path}.{key}"
        found = unknown_field(item, field.type, f"{path}.{key}")
        if found is not None:
            return found
    return None


def _refusing(value: object, kind: msgspec.inspect.Type, path: str) -> str | None:
    """The path of the innermost table whose own checks refuse ``value`` (for the engine's
    parameter tables, which raise an invariant rather than a ValueError)."""
    children: list[tuple[object, msgspec.inspect.Type, str]] = []
    if isinstance(kind, msgspec.inspect.StructType) and isinstance(value, dict):
        fields = {field.encode_name: field for field in kind.fields}
        children = [
            (item, fields[key].type, f"{path}.{key}")
            for key, item in value.items()
            if key in fields
        ]
    elif isinstance(kind, msgspec.inspect.UnionType):
        children = [(value, option, path) for option in kind.types]
    elif isinstance(kind, msgspec.inspect.DictType) and isinstance(value, dict):
        children = [(item, kind.value_type, f"{path}.{key}") for key, item in value.items()]
    elif isinstance(kind, msgspec.inspect.VarTupleType) and isinstance(value, list):
        children = [(item, kind.item_type, f"{path}[{n}]") for n, item in enumerate(value)]
    for item, child, where in children:
        found = _refusing(item, child, where)
        if found is not None:
            return found
    if isinstance(kind, msgspec.inspect.StructType) and isinstance(value, dict):
        try:
            msgspec.convert(value, kind.cls)
        except InvariantViolation:
            return path
        except msgspec.ValidationError:
            return None
    return None


_SCENARIO_TYPE: Final = msgspec.inspect.type_info(Scenario)
