"""Cutting: when the runtime closes a block.

A rule looks at a :class:`CutContext` (the injected time, the time of the last cut, and how
many waiting transactions are eligible) and says whether a block is due and why. Rules combine
with ``|`` (:class:`AnyOf`: the first that is due wins). The external trigger needs no rule: a
consensus model (or a test) calls ``Runtime.cut(now_ns)`` itself; :class:`External` is the
rule that never fires on ``poll``, for a runtime driven that way alone.

- :class:`BySize`: when at least ``n`` eligible transactions wait (the selection's view:
  under a base fee, transactions below it do not count).
- :class:`ByInterval`: when ``interval_ns`` have passed on the injected clock since the last
  cut (empty blocks too: block time drives expiries, funding and staleness).
- :class:`BySlot`: at each boundary of a fixed grid of ``interval_ns`` slots on the injected
  clock (multiples of the interval since its epoch, as Ethereum's slots): a cut that comes
  late does not push the ones after it, so blocks average the interval however late each is
  cut. The live node's rule: under load every cut is a few milliseconds late, and from the last
  cut that lateness is added to every block's span, so to the wait of its first orders.

``next_due_ns`` tells a scheduler when to poll next (None: not by time).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable
from typing import Protocol

from strikechain.engine.invariant import invariant


class CutReason(enum.StrEnum):
    """Why a block was cut; recorded in the block log."""

    SIZE = "size"
    INTERVAL = "interval"
    EXTERNAL = "external"


class CutContext:
    """What a rule may look at; ``ready()`` is computed once, only if a rule asks."""

    __slots__ = ("_count", "_ready", "last_cut_ns", "now_ns")

    def __init__(self, now_ns: int, last_cut_ns: int, ready: Callable[[], int]) -> None:
        self.now_ns = now_ns
        self.last_cut_ns = last_cut_ns
        self._ready = ready
        self._count = -1

    def ready(self) -> int:
        if self._count < 0:
            self._count = self._ready()
        return self._count


class CutRule(Protocol):
    def due(self, context: CutContext) -> CutReason | None: ...

    def next_due_ns(self, last_cut_ns: int) -> int | None: ...


class _Combinable(abc.ABC):
    """A rule that combines with ``|``."""

    @abc.abstractmethod
    def due(self, context: CutContext) -> CutReason | None: ...

    @abc.abstractmethod
    def next_due_ns(self, last_cut_ns: int) -> int | None: ...

    def __or__(self, other: CutRule) -> AnyOf:
        return AnyOf(self, other)


class BySize(_Combinable):
    def __init__(self, n: int) -> None:
        invariant(n > 0, "a block by size needs at least one transaction")
        self.n = n

    def due(self, context: CutContext) -> CutReason | None:
        return CutReason.SIZE if context.ready() >= self.n else None

    def next_due_ns(self, last_cut_ns: int) -> int | None:
        return None


class ByInterval(_Combinable):
    def __init__(self, interval_ns: int) -> None:
        invariant(interval_ns > 0, "the block interval is positive")
        self.interval_ns = interval_ns

    def due(self, context: CutContext) -> CutReason | None:
        if context.now_ns - context.last_cut_ns >= self.interval_ns:
            return CutReason.INTERVAL
        return None

    def next_due_ns(self, last_cut_ns: int) -> int | None:
        return last_cut_ns + self.interval_ns


class BySlot(_Combinable):
    """Due at the first slot boundary (a multiple of ``interval_ns``) that is at least a
    quarter of a slot after the last cut: a block cut at the very end of its slot (after a
    pause) leaves the next boundary to the following block rather than cut a nearly empty
    one right after it. Blocks are thus between a quarter and one and a quarter slots apart,
    one slot on average."""

    def __init__(self, interval_ns: int) -> None:
        invariant(interval_ns > 0, "the slot length is positive")
        self.interval_ns = interval_ns
        self._min_gap_ns = max(1, interval_ns // 4)

    def due(self, context: CutContext) -> CutReason | None:
        if context.now_ns >= self.next_due_ns(context.last_cut_ns):
            return CutReason.INTERVAL
        return None

    def next_due_ns(self, last_cut_ns: int) -> int:
        interval = self.interval_ns
        return -(-(last_cut_ns + self._min_gap_ns) // interval) * interval


class External(_Combinable):
    """Never due on ``poll``: blocks are cut by ``Runtime.cut`` alone."""

    def due(self, context: CutContext) -> CutReason | None:
        return None

    def next_due_ns(self, last_cut_ns: int) -> int | None:
        return None


class AnyOf(_Combinable):
    """Due when any of ``rules`` is, with the reason of the first that is."""

    def __init__(self, *rules: CutRule) -> None:
        invariant(len(rules) > 0, "AnyOf needs a rule")
        flat: list[CutRule] = []
        for rule in rules:
            flat.extend(rule.rules if isinstance(rule, AnyOf) else (rule,))
        self.rules: tuple[CutRule, ...] = tuple(flat)

    def due(self, context: CutContext) -> CutReason | None:
        for rule in self.rules:
            reason = rule.due(context)
            if reason is not None:
                return reason
        return None

    def next_due_ns(self, last_cut_ns: int) -> int | None:
        times = [t for rule in self.rules if (t := rule.next_due_ns(last_cut_ns)) is not None]
        return min(times) if times else None
