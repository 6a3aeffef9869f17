"""Selection: which waiting transactions go into the next block.

Selection decides *which* transactions a block carries; the engine's ordering policy (a
consensus rule, :mod:`strikechain.engine.ordering`) then decides the order they are applied in.

Every selection respects the block's bounds (:class:`BlockBounds`): at most ``capacity``
transactions (the smaller of the engine's ``max_transactions_per_block`` and the runtime's
own), and at most ``max_oracle_reports`` reports (reports beyond it wait for the next block,
they are not dropped), so the engine never refuses a block the runtime built.

- :class:`ArrivalOrder`: first come, first served.
- :class:`FeePriority`: highest ``priority_fee`` first, ties by arrival, with an optional
  EIP-1559-style base fee (:class:`BaseFeeRule`): only transactions whose ``priority_fee`` is at
  least the current base fee are eligible; the others wait in the (bounded) inbox until the base
  fee falls to them, or until the inbox fills and new senders are refused with ``INBOX_FULL``.

Base fee rule (integers; fees in the same unit as ``priority_fee``), after every block::

    target = max(1, capacity // 2)
    step   = base * |used - target| // (target * 8)        # at most base // 8
    up     = max(step, 1) when used > target               # a fee can always rise
    down   = step          when used < target
    base   = max(floor, base + up - down)

``used`` is the number of transactions the block carried (the resource here is block space,
counted in transactions, not gas). The step is at most 1/8 of the base fee; because the least
rise is 1, the floor must be at least 8 so that the 1/8 bound holds at every level. A base fee
is not burned or charged here: the engine charges no priority fees yet; the rule only decides
eligibility, which is what the lab measures (who waits under congestion).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Protocol

import msgspec

from strikechain.engine.invariant import invariant
from strikechain.engine.oracle import OracleReport
from strikechain.runtime.inbox import Inbox, Pending

ADJUSTMENT_DENOMINATOR: Final = 8
"""The base fee moves by at most 1/8 per block."""


class BlockBounds(msgspec.Struct, frozen=True, gc=False):
    """What one block may carry."""

    capacity: int
    max_oracle_reports: int

    def __post_init__(self) -> None:
        invariant(self.capacity > 0, "a block carries at least one transaction")
        invariant(self.max_oracle_reports >= 0, "the report bound is not negative")


class Selection(Protocol):
    """Chooses the next block's transactions from the inbox (without removing them)."""

    @property
    def name(self) -> str: ...

    @property
    def base_fee(self) -> int:
        """The fee a transaction needs to be eligible now (0: every transaction is)."""
        ...

    def ready(self, inbox: Inbox) -> int:
        """How many waiting transactions are eligible for the next block."""
        ...

    def select(self, inbox: Inbox, bounds: BlockBounds) -> list[Pending]:
        """The next block's transactions, in arrival order."""
        ...

    def after_block(self, used: int, bounds: BlockBounds) -> None:
        """Learn that a block carried ``used`` transactions (the base fee moves here)."""
        ...


def _bounded(candidates: Iterable[Pending], bounds: BlockBounds) -> list[Pending]:
    """The first ``capacity`` of ``candidates`` (in their order), skipping reports past the
    report bound (they wait for a later block)."""
    chosen: list[Pending] = []
    reports = 0
    capacity, max_reports = bounds.capacity, bounds.max_oracle_reports
    for entry in candidates:
        if type(entry.tx) is OracleReport:
            if reports >= max_reports:
                continue
            reports += 1
        chosen.append(entry)
        if len(chosen) == capacity:
            break
    return chosen


def _by_arrival(entry: Pending) -> int:
    return entry.sequence


class ArrivalOrder:
    """First in, first out, up to the block's bounds."""

    name: Final = "arrival"
    base_fee: Final = 0

    def ready(self, inbox: Inbox) -> int:
        return len(inbox)

    def select(self, inbox: Inbox, bounds: BlockBounds) -> list[Pending]:
        return _bounded(inbox, bounds)

    def after_block(self, used: int, bounds: BlockBounds) -> None:
        return None


class BaseFeeRule(msgspec.Struct, frozen=True, kw_only=True):
    """The EIP-1559-style base fee of :class:`FeePriority` (see the module docstring)."""

    floor: int = 8
    """The base fee never falls below this; at least 8 (so the least step is within 1/8)."""
    initial: int = 0
    """The base fee of the first block; 0 means the floor."""
    ceiling: int = 10**12
    """The base fee never rises above this (a bound on the state: demand that pays any fee
    would otherwise push it up by 1/8 a block without end)."""

    def __post_init__(self) -> None:
        invariant(self.floor >= ADJUSTMENT_DENOMINATOR, "the base fee floor is at least 8")
        invariant(self.initial == 0 or self.initial >= self.floor, "initial fee below the floor")
        invariant(self.floor <= self.ceiling <= 10**15, "floor <= ceiling <= 10**15")
        invariant(self.initial <= self.ceiling, "initial fee above the ceiling")


def next_base_fee(base: int, used: int, capacity: int, floor: int, ceiling: int = 10**12) -> int:
    """The base fee after a block that carried ``used`` of ``capacity`` transactions."""
    target = max(1, capacity // 2)
    step = base * abs(used - target) // (target * ADJUSTMENT_DENOMINATOR)
    if used > target:
        base += max(step, 1)
    elif used < target:
        base -= step
    return min(ceiling, max(floor, base))


class FeePriority:
    """Highest ``priority_fee`` first (ties by arrival), above a base fee when one is set."""

    name: Final = "fee_priority"

    def __init__(self, base_fee: BaseFeeRule | None = None) -> None:
        self.rule = base_fee
        self._base_fee = 0 if base_fee is None else (base_fee.initial or base_fee.floor)

    @property
    def base_fee(self) -> int:
        return self._base_fee

    def ready(self, inbox: Inbox) -> int:
        base = self._base_fee
        if base == 0:
            return len(inbox)
        return sum(1 for entry in inbox if entry.tx.priority_fee >= base)

    def select(self, inbox: Inbox, bounds: BlockBounds) -> list[Pending]:
        """The highest fees at or above the base fee, ties by arrival, within the bounds
        (asking the inbox for more when the report bound skips some)."""
        base = self._base_fee
        wanted = bounds.capacity
        while True:
            candidates = inbox.top_by_fee(base, wanted)
            chosen = _bounded(candidates, bounds)
            if len(chosen) == bounds.capacity or len(candidates) < wanted:
                break
            wanted *= 2
        chosen.sort(key=_by_arrival)
        return chosen

    def after_block(self, used: int, bounds: BlockBounds) -> None:
        rule = self.rule
        if rule is not None:
            self._base_fee = next_base_fee(
                self._base_fee, used, bounds.capacity, rule.floor, rule.ceiling
            )
