"""The network model's parameters: latency distributions, jitter, loss and placement.

Frozen msgspec Structs (a scenario's ``[network]`` table converts with ``msgspec.convert(table,
NetworkParams)``; latency kinds are tagged by ``kind``). Each validates itself when made and
raises :class:`NetworkParamsError` naming the field. What they mean is
:mod:`strikechain.sim.network`'s docstring; they live apart from the model so the model can be
compiled (mypyc compiles no msgspec Struct).
"""

from __future__ import annotations

import enum
import math
from typing import Final, Literal

import msgspec

from strikechain.engine.units import NANOS_PER_SECOND

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
