"""The lab's network: one-way delays and losses between agents and validators, in virtual time.

Who talks to whom
- **Agents to validators** (transactions) and **validators to agents** (market data) use the
  ``agent_validator`` link parameters; **validators to validators** (consensus messages) use
  ``validator_validator``. A node is a validator if it is in the validator list the network is
  built with; every other name is an agent. Agents do not talk to each other here.
- Every agent sends its transactions to one **entry validator**: the one ``connections`` names,
  or else the validator with the smallest path latency from it (ties: the first in the list).

What a message's delay is: ``path + jitter``, or lost
- The **path latency** of a pair is drawn once, when the pair is first used, and kept: from
  the pair's own stream ``network/path/{a}|{b}`` (``a`` the validator, or the first of two
  validators in list order), so it is the same in both directions. Distributions:
  :class:`ConstantLatency`; :class:`UniformLatency` (integers, both ends included);
  :class:`LognormalLatency` (``median * exp(sigma Z)``, floored to a nanosecond). Or a
  **region matrix** (:class:`RegionLatency`): every node sits in a named region
  (``NetworkParams.regions``, else ``default_region``) and the path from ``a`` to ``b`` is the
  table's entry from ``a``'s region to ``b``'s (no draw; it may differ by direction).
- **Jitter** is drawn per message: ``"uniform"`` on ``[0, jitter_ns)``, ``"exponential"`` with
  mean ``jitter_ns`` (through the pricing library's deterministic ``log1p``), or ``"none"``.
  Jitter may reorder messages of one link; the market-data feed does not let it (below).
- **Loss** is drawn per message: lost with ``loss_probability``, or inside a
  :class:`LossWindow` with the window's probability (the larger one applies). What a loss
  means is the user's business: a lost transaction never reaches the mempool; the consensus
  model's gossip sends a lost consensus message again.
- **Market data** (what a venue publishes after a block) travels from a validator to an agent
  over a reliable stream: path + jitter, never lost, and in order: a message is delivered no
  earlier than the one sent before it on the same stream
  (:meth:`Network.market_data_delivery_ns`).

Every delay is clipped to :data:`MAX_ONE_WAY_NS` (a lognormal tail is unbounded).

Determinism and streams: each directed link ``source -> target`` draws from its own stream
``network/link/{source}->{target}`` (``Kernel.rng``), consumed in blocks of
:data:`DRAWS_PER_REFILL` messages (that many loss uniforms, then that many jitter uniforms), one
pair per message in the order the link sends. A link's draws therefore depend on the seed, the
two names and how many messages that link carried before, never on other links: adding an agent
changes no one else's delays. Node names must not contain ``|`` or ``->``.

Parameters are frozen msgspec Structs (TOML tables later: ``msgspec.convert(table,
NetworkParams)``; latency kinds are tagged by ``kind``). Each validates itself when made and
raises :class:`NetworkParamsError` naming the field.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import Final, Literal

import msgspec
import numpy as np

from strikechain.engine.invariant import invariant
from strikechain.engine.units import NANOS_PER_SECOND
from strikechain.pricing import detmath
from strikechain.sim.kernel import Kernel

MAX_ONE_WAY_NS: Final = 60 * NANOS_PER_SECOND
"""No path, jitter or delay is longer than a minute: a message later than that is a model bug."""
MAX_SIGMA: Final = 5.0
MAX_REGIONS: Final = 256
DRAWS_PER_REFILL: Final = 128


class NetworkCode(enum.StrEnum):
    """Stable codes of :class:`NetworkParamsError`."""

    INVALID_PARAMETER = "INVALID_PARAMETER"
    UNKNOWN_REGION = "UNKNOWN_REGION"
    UNKNOWN_VALIDATOR = "UNKNOWN_VALIDATOR"


class NetworkParamsError(ValueError):
    """Bad network parameters: expected input, with a code and a message naming the field. A
    ``ValueError``, so ``msgspec.convert`` reports it as a validation error of the scenario."""

    def __init__(self, code: NetworkCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _invalid(field: str, requirement: str, value: object) -> NetworkParamsError:
    return NetworkParamsError(
        NetworkCode.INVALID_PARAMETER, f"{field} {requirement}, got {value!r}"
    )


def check_duration(field: str, value: int, *, positive: bool = False) -> None:
    """``value`` is an integer number of nanoseconds in ``[0, MAX_ONE_WAY_NS]`` (``> 0`` when
    ``positive``); else :class:`NetworkParamsError` naming ``field``."""
    low = 1 if positive else 0
    if type(value) is not int or not low <= value <= MAX_ONE_WAY_NS:
        raise _invalid(field, f"must be an integer of ns in [{low}, {MAX_ONE_WAY_NS}]", value)


def check_probability(field: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise _invalid(field, "must be a probability in [0, 1]", value)


def check_window(field: str, start_ns: int, end_ns: int) -> None:
    """A half-open window ``[start_ns, end_ns)`` of virtual time, not empty."""
    if type(start_ns) is not int or type(end_ns) is not int or not 0 <= start_ns < end_ns:
        raise _invalid(field, "must be a window 0 <= start_ns < end_ns", (start_ns, end_ns))


# -- parameters ------------------------------------------------------------------------------


class ConstantLatency(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="constant"):
    one_way_ns: int

    def __post_init__(self) -> None:
        check_duration("ConstantLatency.one_way_ns", self.one_way_ns)


class UniformLatency(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="uniform"):
    """A path latency drawn uniformly from the integers ``low_ns..high_ns``."""

    low_ns: int
    high_ns: int

    def __post_init__(self) -> None:
        check_duration("UniformLatency.low_ns", self.low_ns)
        check_duration("UniformLatency.high_ns", self.high_ns)
        if self.high_ns < self.low_ns:
            raise _invalid(
                "UniformLatency.high_ns", f"must be >= low_ns {self.low_ns}", self.high_ns
            )


class LognormalLatency(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="lognormal"
):
    """A path latency ``median_ns * exp(sigma Z)``, ``Z`` standard normal."""

    median_ns: int
    sigma: float

    def __post_init__(self) -> None:
        check_duration("LognormalLatency.median_ns", self.median_ns, positive=True)
        sigma = self.sigma
        if not (isinstance(sigma, int | float) and math.isfinite(sigma)):
            raise _invalid("LognormalLatency.sigma", "must be a finite number", sigma)
        if not 0.0 <= sigma <= MAX_SIGMA:
            raise _invalid("LognormalLatency.sigma", f"must be in [0, {MAX_SIGMA}]", sigma)


class RegionLatency(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="regions"):
    """One-way latency from region to region: ``one_way_ns[from][to]``, every pair present."""

    one_way_ns: dict[str, dict[str, int]]

    def __post_init__(self) -> None:
        table = self.one_way_ns
        if not 0 < len(table) <= MAX_REGIONS:
            raise _invalid(
                "RegionLatency.one_way_ns", f"must name 1 to {MAX_REGIONS} regions", table
            )
        regions = set(table)
        for source in sorted(table):
            row = table[source]
            if set(row) != regions:
                missing = sorted(regions - set(row)) or sorted(set(row) - regions)
                raise _invalid(
                    f"RegionLatency.one_way_ns[{source!r}]",
                    "must give a latency to every region of the table and no other",
                    missing,
                )
            for target in sorted(row):
                check_duration(f"RegionLatency.one_way_ns[{source!r}][{target!r}]", row[target])


Latency = ConstantLatency | UniformLatency | LognormalLatency | RegionLatency


class LossWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Messages sent in ``[start_ns, end_ns)`` are lost with ``probability`` (a lossy spell or,
    at 1.0, a partition of the link class); the network heals at ``end_ns``."""

    start_ns: int
    end_ns: int
    probability: float

    def __post_init__(self) -> None:
        check_window("LossWindow", self.start_ns, self.end_ns)
        check_probability("LossWindow.probability", self.probability)


class LinkParams(msgspec.Struct, frozen=True, kw_only=True):
    """A class of links: path latency, per-message jitter and loss."""

    latency: Latency = ConstantLatency(one_way_ns=0)
    jitter: Literal["none", "uniform", "exponential"] = "none"
    jitter_ns: int = 0
    """The jitter's scale: the upper end (uniform) or the mean (exponential)."""
    loss_probability: float = 0.0
    loss_windows: tuple[LossWindow, ...] = ()

    def __post_init__(self) -> None:
        check_duration("LinkParams.jitter_ns", self.jitter_ns)
        if self.jitter not in ("none", "uniform", "exponential"):
            raise _invalid("LinkParams.jitter", "must be none, uniform or exponential", self.jitter)
        if self.jitter != "none" and self.jitter_ns == 0:
            raise _invalid("LinkParams.jitter_ns", f"must be > 0 for {self.jitter} jitter", 0)
        check_probability("LinkParams.loss_probability", self.loss_probability)

    def loss_at(self, now_ns: int) -> float:
        """The loss probability of a message sent at ``now_ns``."""
        probability = self.loss_probability
        for window in self.loss_windows:
            if window.start_ns <= now_ns < window.end_ns and window.probability > probability:
                probability = window.probability
        return probability


class NetworkParams(msgspec.Struct, frozen=True, kw_only=True):
    agent_validator: LinkParams = LinkParams()
    """Transactions from agents and market data back to them."""
    validator_validator: LinkParams = LinkParams()
    """Consensus messages."""
    regions: dict[str, str] = msgspec.field(default_factory=dict)
    """Node name -> region, for a :class:`RegionLatency` table."""
    default_region: str = ""
    """The region of a node ``regions`` does not place ("" : every node must be placed)."""
    connections: dict[str, str] = msgspec.field(default_factory=dict)
    """Agent -> the validator it sends its transactions to (default: the nearest)."""
    gossip_ns: int = 0
    """From the entry validator to the mempool the proposers select from (see the consensus
    module)."""

    def __post_init__(self) -> None:
        check_duration("NetworkParams.gossip_ns", self.gossip_ns)
        for name, link in (
            ("agent_validator", self.agent_validator),
            ("validator_validator", self.validator_validator),
        ):
            table = link.latency
            if not isinstance(table, RegionLatency):
                continue
            placed = sorted(set(self.regions.values()) | ({self.default_region} - {""}))
            for region in placed:
                if region not in table.one_way_ns:
                    raise NetworkParamsError(
                        NetworkCode.UNKNOWN_REGION,
                        f"NetworkParams.{name}: region {region!r} (from regions or "
                        f"default_region) is not in its table {sorted(table.one_way_ns)}",
                    )
        for node, region in sorted(self.regions.items()):
            if not region:
                raise _invalid(f"NetworkParams.regions[{node!r}]", "must name a region", region)


# -- the model -------------------------------------------------------------------------------


class _Link:
    """One directed link: its path latency and its stream of (loss, jitter) draws."""

    __slots__ = ("_index", "_jitter", "_loss", "_rng", "jitter", "jitter_ns", "params", "path_ns")

    def __init__(self, rng: np.random.Generator, params: LinkParams, path_ns: int) -> None:
        self._rng = rng
        self.params = params
        self.path_ns = path_ns
        self.jitter = params.jitter
        self.jitter_ns = params.jitter_ns
        self._loss: list[float] = []
        self._jitter: list[int] = []
        self._index = DRAWS_PER_REFILL

    def _refill(self) -> None:
        draws = self._rng.random(2 * DRAWS_PER_REFILL)
        self._loss = draws[:DRAWS_PER_REFILL].tolist()
        uniforms = draws[DRAWS_PER_REFILL:]
        if self.jitter == "uniform":
            jitter = np.floor(uniforms * self.jitter_ns)
        elif self.jitter == "exponential":
            jitter = np.floor(-detmath.log1p(-uniforms) * self.jitter_ns)
        else:
            jitter = np.zeros(DRAWS_PER_REFILL)
        self._jitter = np.minimum(jitter, MAX_ONE_WAY_NS).astype(np.int64).tolist()
        self._index = 0

    def draw(self, now_ns: int) -> tuple[bool, int]:
        """(lost, delay) of the next message, sent at ``now_ns``."""
        if self._index == DRAWS_PER_REFILL:
            self._refill()
        index = self._index
        self._index = index + 1
        lost = self._loss[index] < self.params.loss_at(now_ns)
        return lost, min(self.path_ns + self._jitter[index], MAX_ONE_WAY_NS)


class Network:
    """Delays between the agents and the validators of one run (see the module)."""

    def __init__(self, kernel: Kernel, params: NetworkParams, validators: Sequence[str]) -> None:
        if not validators or len(set(validators)) != len(validators):
            raise _invalid("validators", "must be distinct names, at least one", list(validators))
        self.kernel = kernel
        self.params = params
        self.validators: tuple[str, ...] = tuple(validators)
        self._rank = {name: i for i, name in enumerate(self.validators)}
        for agent, validator in sorted(params.connections.items()):
            if validator not in self._rank:
                raise NetworkParamsError(
                    NetworkCode.UNKNOWN_VALIDATOR,
                    f"NetworkParams.connections[{agent!r}] is {validator!r}, not one of "
                    f"the validators {list(self.validators)}",
                )
        for name in self.validators:
            for link in (params.agent_validator, params.validator_validator):
                if isinstance(link.latency, RegionLatency):
                    self._region(name, link.latency)
        self._paths: dict[tuple[str, str], int] = {}
        self._links: dict[tuple[str, str], _Link] = {}
        self._entries: dict[str, str] = {}
        self._streams: dict[tuple[str, str], MarketDataStream] = {}

    def is_validator(self, name: str) -> bool:
        return name in self._rank

    # -- paths -----------------------------------------------------------------------------

    def path_ns(self, source: str, target: str) -> int:
        """The path latency from ``source`` to ``target`` (drawn once, then kept)."""
        key = (source, target)
        path = self._paths.get(key)
        if path is None:
            path = self._draw_path(source, target)
            self._paths[key] = path
        return path

    def _link_params(self, source: str, target: str) -> LinkParams:
        source_validates, target_validates = source in self._rank, target in self._rank
        invariant(source != target, f"a link joins two nodes, not {source!r} to itself")
        invariant(source_validates or target_validates, f"no validator on {source}->{target}")
        if source_validates and target_validates:
            return self.params.validator_validator
        return self.params.agent_validator

    def _region(self, node: str, table: RegionLatency) -> str:
        """The region ``node`` sits in (the params checked it is in ``table``)."""
        region = self.params.regions.get(node, self.params.default_region)
        if not region:
            raise NetworkParamsError(
                NetworkCode.UNKNOWN_REGION,
                f"NetworkParams.regions places no region for {node!r} and there is no "
                "default_region",
            )
        return region

    def _draw_path(self, source: str, target: str) -> int:
        latency = self._link_params(source, target).latency
        if isinstance(latency, ConstantLatency):
            return latency.one_way_ns
        if isinstance(latency, RegionLatency):
            row = latency.one_way_ns[self._region(source, latency)]
            return row[self._region(target, latency)]
        first, second = self._pair(source, target)
        reverse = self._paths.get((target, source))
        if reverse is not None:
            return reverse
        rng = self.kernel.rng(f"network/path/{first}|{second}")
        if isinstance(latency, UniformLatency):
            return int(rng.integers(latency.low_ns, latency.high_ns, endpoint=True))
        z = float(rng.standard_normal())
        factor = float(detmath.exp(np.float64(latency.sigma * z))[()])
        return min(math.floor(latency.median_ns * factor), MAX_ONE_WAY_NS)

    def _pair(self, a: str, b: str) -> tuple[str, str]:
        """The pair in its canonical order: the validator first; two validators in list
        order."""
        rank = self._rank
        a_rank, b_rank = rank.get(a), rank.get(b)
        if a_rank is None:
            return b, a
        if b_rank is None or a_rank < b_rank:
            return a, b
        return b, a

    def entry_validator(self, agent: str) -> str:
        """The validator ``agent`` sends its transactions to."""
        entry = self._entries.get(agent)
        if entry is None:
            entry = self.params.connections.get(agent)
            if entry is None:
                entry = min(self.validators, key=lambda v: (self.path_ns(agent, v), self._rank[v]))
            self._entries[agent] = entry
        return entry

    # -- messages --------------------------------------------------------------------------

    def _link(self, source: str, target: str) -> _Link:
        key = (source, target)
        link = self._links.get(key)
        if link is None:
            params = self._link_params(source, target)
            rng = self.kernel.rng(f"network/link/{source}->{target}")
            link = _Link(rng, params, self.path_ns(source, target))
            self._links[key] = link
        return link

    def delay_ns(self, source: str, target: str) -> int | None:
        """The delay of a message sent now from ``source`` to ``target``; None if it is lost."""
        lost, delay = self._link(source, target).draw(self.kernel.now)
        return None if lost else delay

    def transaction_delay_ns(self, agent: str, validator: str | None = None) -> int | None:
        """The delay of a transaction sent now by ``agent`` to ``validator`` (default: its
        entry validator); None if it is lost."""
        return self.delay_ns(agent, validator or self.entry_validator(agent))

    def consensus_delay_ns(self, source: str, target: str) -> int | None:
        """The delay of a consensus message between two validators; None if it is lost."""
        return self.delay_ns(source, target)

    def market_data_delivery_ns(self, validator: str, agent: str) -> int:
        """When a message that ``validator`` sends now reaches ``agent`` over its market-data
        stream: path + jitter, never lost, never before the stream's previous message."""
        return self.market_data_stream(validator, agent).next_ns()

    def market_data_stream(self, validator: str, agent: str) -> MarketDataStream:
        """The stream from ``validator`` to ``agent`` (one per pair, kept): what the feed holds
        per agent, so a delivery costs no lookup."""
        key = (validator, agent)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = MarketDataStream(
                self.kernel, self._link(validator, agent)
            )
        return stream


class MarketDataStream:
    """One validator-to-agent market-data stream: each message takes the link's path latency
    and its next jitter draw (the link's loss draw is used up but ignored: market data is never
    lost), and never arrives before the one sent before it."""

    __slots__ = ("_kernel", "_link", "last_ns")

    def __init__(self, kernel: Kernel, link: _Link) -> None:
        self._kernel = kernel
        self._link = link
        self.last_ns = 0

    def next_ns(self) -> int:
        """When a message sent now arrives."""
        now = self._kernel.now
        _, delay = self._link.draw(now)  # the loss draw is used up, never applied
        delivery = max(now + delay, self.last_ns)
        self.last_ns = delivery
        return delivery
