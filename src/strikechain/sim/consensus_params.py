"""The consensus model's parameters and records: validator sets, Tendermint's timeouts, the
sequencer, the mempool's capacity, congestion and demand, and what a produced block records.

Frozen msgspec Structs that validate themselves and raise :class:`ConsensusParamsError` naming
the field; what they mean is :mod:`strikechain.sim.consensus`'s docstring. They live apart from
the model so the model can be compiled (mypyc compiles no msgspec Struct).
"""

from __future__ import annotations

import enum
import math
from typing import Final, Literal

import msgspec

from strikechain.engine.units import NANOS_PER_MILLISECOND, NANOS_PER_SECOND
from strikechain.runtime.cutting import External
from strikechain.runtime.runtime import BlockPolicy
from strikechain.runtime.selection import ArrivalOrder, BaseFeeRule, FeePriority, Selection
from strikechain.sim.network_params import (
    MAX_ONE_WAY_NS,
)

MAX_VALIDATORS: Final = 256


MAX_TOTAL_POWER: Final = 100_000
"""One weighted proposer cycle is this long at most."""


MAX_RETAINED_DECISIONS: Final = 1_024
"""Decided blocks kept for catch-up; a validator further behind than this stays behind."""


MAX_FUTURE_MESSAGES: Final = 64
"""Per validator and peer: messages one height ahead kept until it gets there."""


MAX_CAPACITY: Final = 1_000_000


MAX_DURATION_NS: Final = MAX_ONE_WAY_NS
"""No timeout or interval is longer than a minute."""


class ConsensusCode(enum.StrEnum):
    INVALID_PARAMETER = "INVALID_PARAMETER"


class ConsensusParamsError(ValueError):
    """Bad consensus or mempool parameters, naming the field (a ``ValueError``, so
    ``msgspec.convert`` reports it as a validation error of the scenario)."""

    def __init__(self, message: str) -> None:
        code = ConsensusCode.INVALID_PARAMETER
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _invalid(field: str, requirement: str, value: object) -> ConsensusParamsError:
    return ConsensusParamsError(f"{field} {requirement}, got {value!r}")


def _check_name(field: str, name: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= 64 or "|" in name or "->" in name:
        raise _invalid(field, "must be 1 to 64 characters without '|' or '->'", name)


def _check_duration(field: str, value: int, *, positive: bool = False) -> None:
    low = 1 if positive else 0
    if type(value) is not int or not low <= value <= MAX_DURATION_NS:
        raise _invalid(field, f"must be an integer of ns in [{low}, {MAX_DURATION_NS}]", value)


def _check_window(field: str, start_ns: int, end_ns: int) -> None:
    if type(start_ns) is not int or type(end_ns) is not int or not 0 <= start_ns < end_ns:
        raise _invalid(field, "must be a window 0 <= start_ns < end_ns", (start_ns, end_ns))


def _check_windows(field: str, windows: tuple[Window, ...]) -> None:
    for window in windows:
        _check_window(field, window.start_ns, window.end_ns)


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """``[start_ns, end_ns)`` of virtual time."""

    start_ns: int
    end_ns: int

    def __post_init__(self) -> None:
        _check_window("Window", self.start_ns, self.end_ns)


Behaviour = Literal["honest", "late", "silent", "equivocating"]


class ValidatorSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One validator: its voting power, how it behaves, when it is offline."""

    name: str
    power: int = 1
    behaviour: Behaviour = "honest"
    propose_delay_ns: int = 0
    """How late a ``late`` proposer proposes after its round starts."""
    offline: tuple[Window, ...] = ()

    def __post_init__(self) -> None:
        _check_name("ValidatorSpec.name", self.name)
        if type(self.power) is not int or not 0 < self.power <= MAX_TOTAL_POWER:
            raise _invalid("ValidatorSpec.power", f"must be in [1, {MAX_TOTAL_POWER}]", self.power)
        if self.behaviour not in ("honest", "late", "silent", "equivocating"):
            raise _invalid(
                "ValidatorSpec.behaviour",
                "must be honest, late, silent or equivocating",
                self.behaviour,
            )
        _check_duration("ValidatorSpec.propose_delay_ns", self.propose_delay_ns)
        if (self.behaviour == "late") != (self.propose_delay_ns > 0):
            raise _invalid(
                "ValidatorSpec.propose_delay_ns",
                "must be > 0 for a late proposer and 0 otherwise",
                self.propose_delay_ns,
            )
        _check_windows("ValidatorSpec.offline", self.offline)


def validator_set(count: int) -> tuple[ValidatorSpec, ...]:
    """``count`` honest validators of power 1 named ``v0``, ``v1``, ..."""
    return tuple(ValidatorSpec(name=f"v{i}") for i in range(count))


class TendermintParams(msgspec.Struct, frozen=True, kw_only=True):
    """A validator set and its protocol's timing (defaults: CometBFT's)."""

    validators: tuple[ValidatorSpec, ...]
    proposer_rotation: Literal["round_robin", "weighted"] = "round_robin"
    timeout_propose_ns: int = 3 * NANOS_PER_SECOND
    timeout_propose_delta_ns: int = 500 * NANOS_PER_MILLISECOND
    timeout_prevote_ns: int = NANOS_PER_SECOND
    timeout_prevote_delta_ns: int = 500 * NANOS_PER_MILLISECOND
    timeout_precommit_ns: int = NANOS_PER_SECOND
    timeout_precommit_delta_ns: int = 500 * NANOS_PER_MILLISECOND
    timeout_commit_ns: int = NANOS_PER_SECOND
    retransmit_ns: int = 100 * NANOS_PER_MILLISECOND
    """Gossip's resend period for a lost message (CometBFT's peer gossip sleep)."""
    outages: tuple[Window, ...] = ()
    """Windows with every validator offline."""

    def __post_init__(self) -> None:
        validators = self.validators
        if not 0 < len(validators) <= MAX_VALIDATORS:
            raise _invalid(
                "TendermintParams.validators", f"must hold 1 to {MAX_VALIDATORS}", len(validators)
            )
        names = [v.name for v in validators]
        if len(set(names)) != len(names):
            raise _invalid("TendermintParams.validators", "must have distinct names", names)
        total = sum(v.power for v in validators)
        if total > MAX_TOTAL_POWER:
            raise _invalid(
                "TendermintParams.validators", f"total power must be <= {MAX_TOTAL_POWER}", total
            )
        if self.proposer_rotation not in ("round_robin", "weighted"):
            raise _invalid(
                "TendermintParams.proposer_rotation",
                "must be round_robin or weighted",
                self.proposer_rotation,
            )
        for field in (
            "timeout_propose_ns",
            "timeout_prevote_ns",
            "timeout_precommit_ns",
            "retransmit_ns",
        ):
            _check_duration(f"TendermintParams.{field}", getattr(self, field), positive=True)
        for field in (
            "timeout_propose_delta_ns",
            "timeout_prevote_delta_ns",
            "timeout_precommit_delta_ns",
            "timeout_commit_ns",
        ):
            _check_duration(f"TendermintParams.{field}", getattr(self, field))
        _check_windows("TendermintParams.outages", self.outages)


class SequencerParams(msgspec.Struct, frozen=True, kw_only=True):
    """The single sequencer: its name (its node in the network) and block interval."""

    name: str = "sequencer"
    block_interval_ns: int = NANOS_PER_SECOND
    outages: tuple[Window, ...] = ()
    """Windows with the sequencer down: no blocks, transactions to it lost."""

    def __post_init__(self) -> None:
        _check_name("SequencerParams.name", self.name)
        _check_duration("SequencerParams.block_interval_ns", self.block_interval_ns, positive=True)
        _check_windows("SequencerParams.outages", self.outages)


class CongestionWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Blocks proposed in ``[start_ns, end_ns)`` carry at most ``capacity`` transactions."""

    start_ns: int
    end_ns: int
    capacity: int

    def __post_init__(self) -> None:
        _check_window("CongestionWindow", self.start_ns, self.end_ns)
        if type(self.capacity) is not int or not 0 < self.capacity <= MAX_CAPACITY:
            raise _invalid(
                "CongestionWindow.capacity", f"must be in [1, {MAX_CAPACITY}]", self.capacity
            )


class DemandSpike(msgspec.Struct, frozen=True, kw_only=True):
    """Agents' arrival rates are multiplied by ``multiplier`` in ``[start_ns, end_ns)``."""

    start_ns: int
    end_ns: int
    multiplier: float

    def __post_init__(self) -> None:
        _check_window("DemandSpike", self.start_ns, self.end_ns)
        value = self.multiplier
        if not (isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= 1e6):
            raise _invalid("DemandSpike.multiplier", "must be in [0, 1e6]", value)


class MempoolParams(msgspec.Struct, frozen=True, kw_only=True):
    """Block capacity, fee-priority inclusion and its base fee, congestion and demand."""

    capacity: int = 0
    """Transactions per block (0: the runtime's bound); never above the runtime's bound."""
    fee_priority: bool = True
    """Select by priority fee (``FeePriority``); False: arrival order."""
    base_fee_floor: int = 8
    """The EIP-1559-style base fee's floor (>= 8), or 0 for no base fee."""
    base_fee_initial: int = 0
    """The first block's base fee; 0: the floor."""
    base_fee_ceiling: int = 10**12
    """The base fee's ceiling (a bound on the state)."""
    ttl_ns: int = 0
    """A transaction that waited this long in the mempool is dropped, unheard of (a txpool's
    lifetime; 0: it waits for ever). Dropped after a block commits, when no proposal holds it."""
    congestion: tuple[CongestionWindow, ...] = ()
    demand_spikes: tuple[DemandSpike, ...] = ()

    def __post_init__(self) -> None:
        if type(self.capacity) is not int or not 0 <= self.capacity <= MAX_CAPACITY:
            raise _invalid(
                "MempoolParams.capacity", f"must be in [0, {MAX_CAPACITY}]", self.capacity
            )
        floor = self.base_fee_floor
        if type(floor) is not int or not (floor == 0 or floor >= 8):
            raise _invalid("MempoolParams.base_fee_floor", "must be 0 (none) or >= 8", floor)
        initial = self.base_fee_initial
        if type(initial) is not int or not (initial == 0 or (floor and initial >= floor)):
            raise _invalid(
                "MempoolParams.base_fee_initial", "must be 0 or >= base_fee_floor (> 0)", initial
            )
        if not self.fee_priority and floor:
            raise _invalid(
                "MempoolParams.base_fee_floor", "must be 0 when fee_priority is off", floor
            )
        _check_duration("MempoolParams.ttl_ns", self.ttl_ns)

    def selection(self) -> Selection:
        if not self.fee_priority:
            return ArrivalOrder()
        if not self.base_fee_floor:
            return FeePriority()
        return FeePriority(
            BaseFeeRule(
                floor=self.base_fee_floor,
                initial=self.base_fee_initial,
                ceiling=self.base_fee_ceiling,
            )
        )

    def block_policy(self) -> BlockPolicy:
        """The runtime's policy for a run whose blocks this module produces."""
        return BlockPolicy(self.selection(), External())


class ProducedBlock(msgspec.Struct, frozen=True, gc=False):
    """One committed block as the lab saw it."""

    height: int
    proposer: str
    rounds: int
    """Rounds the height took (1: decided in round 0)."""
    propose_ns: int
    """When its proposer proposed it (its block time)."""
    commit_ns: int
    """When the first validator decided it: finality."""
    transactions: int
    capacity: int
    base_fee: int
    digest: bytes

    @property
    def utilization(self) -> float:
        return self.transactions / self.capacity


class Conflict(msgspec.Struct, frozen=True, gc=False):
    """A safety violation: ``validator`` decided another value than the height's first."""

    height: int
    validator: str
    value: int
    first_value: int


Trace = list[tuple[int, int, int, bytes]]
"""(height, commit time, transactions, digest) per block."""
