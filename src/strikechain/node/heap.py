"""The node's cyclic-garbage policy: no full collection in the middle of a block's path.

CPython frees most objects by reference counting; its cyclic collector exists for the rest
(objects that refer to each other). Left to itself the collector runs a *full* collection
whenever enough objects have survived two young collections, and a full collection walks every
tracked object in the process: the engine's orders, the API's order history, every loaded
module's functions. Measured on the node under ``strikechain bench node`` (about 300k tracked
objects after half a minute of orders): seven full collections in 76 blocks, 50-100 ms each,
every one in the middle of a block's acknowledgements. That alone broke the acknowledgement
target (the block interval + 20 ms at the 99th percentile). A live venue's state is larger, so
the pauses would be longer still.

So the node schedules the collector instead (:class:`HeapPolicy`):

- at start, everything built so far (modules, the engine rebuilt from the log) is collected
  once and frozen (``gc.freeze``): never walked again by routine collections;
- young collections (generations 0 and 1: only recent objects, a few milliseconds) run after
  every block, once its acknowledgements are out (:meth:`HeapPolicy.collect_young`, the block
  timer calls it); CPython's own only past :data:`YOUNG_THRESHOLD` new objects, a safety net.
  Left to CPython (at 10,000) one ran inside nearly every block's cut under load, 3-6 ms added
  to every acknowledgement of the block;
- automatic full collections are off. Every ``interval_s`` the node runs one itself, between
  blocks (the block timer calls :meth:`HeapPolicy.collect` a third of an interval after a cut,
  once that block's acknowledgements are out), then freezes what survived: so a collection
  walks only what became long-lived since the previous one, and its pause stays proportional
  to the interval's growth, not to the whole state;
- every ``full_interval_s`` the frozen objects are unfrozen first, so a cycle among them (a
  closed connection's transport and protocol, say) is freed too; that pause walks the whole
  heap, once an hour by default.

Between the node's collections nothing cyclic that reached the old generation is freed; the
node's steady state makes almost no such cycles (measured: none among the objects of 25k order
acknowledgements; the 64 closed WebSockets' transports were the only ones). ``gc.freeze`` and
the thresholds are the process's: the first node to start saves them and the last to stop
restores them (tests run several nodes in one process).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from strikechain.engine.invariant import InvariantViolation

FULL_COLLECTIONS_OFF: Final = 1 << 30
"""Generation 2's threshold while a node runs: CPython never reaches it, so it never starts a
full collection on its own."""


YOUNG_THRESHOLD: Final = 100_000
"""Net new tracked objects after which CPython runs a young collection itself while a node
runs (its default: 700): a safety net, the node collects the young generation after every
block (:meth:`HeapPolicy.collect_young`). An order's path allocates hundreds of containers
that reference counting frees anyway; at 700 the young collector ran ~130 times a second under
load and walked them (4,500 young and 400 middle collections, 1.2 s, in one ``strikechain
bench node`` run); at 10,000 the node's CPU per order was 4% lower (88 against 92 us) but a
collection still fell inside nearly every block's cut."""
MIDDLE_EVERY: Final = 10
"""Every this many young collections, the middle generation is collected too (CPython's own
ratio)."""


@dataclass(frozen=True, slots=True)
class Collection:
    """One collection the node ran: its pause, whether it walked the frozen objects too, what
    it freed and how many objects are frozen after it."""

    pause_s: float
    whole_heap: bool
    freed: int
    frozen: int


class HeapPolicy:
    """Scheduled collections for one node (see the module docstring)."""

    _users: int = 0
    _saved: tuple[int, int, int] | None = None
    _frozen: int = 0
    """Objects frozen in the process, counted as they are frozen: ``gc.get_freeze_count()``
    walks the whole frozen list (~15 ms for 160k objects, cold in the cache), more than the
    collection it would report on."""

    def __init__(
        self,
        interval_s: float,
        full_interval_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval_s > 0 or not full_interval_s >= interval_s:
            raise InvariantViolation(
                "heap: the collection interval must be positive and at most the full one"
            )
        self.interval_s = interval_s
        self.full_interval_s = full_interval_s
        self._clock = clock
        self._last = 0.0
        self._last_full = 0.0
        self._running = False
        self._young = 0

    def start(self) -> None:
        """Collect and freeze what exists now; turn automatic full collections off."""
        if self._running:
            return
        cls = type(self)
        if cls._users == 0:
            cls._saved = gc.get_threshold()
        cls._users += 1
        self._running = True
        gc.collect()
        gc.freeze()
        cls._frozen = gc.get_freeze_count()  # (once a start: walks what is frozen)
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, FULL_COLLECTIONS_OFF)
        self._last = self._last_full = self._clock()

    def stop(self) -> None:
        """Give the process its collector back (when no other node runs)."""
        if not self._running:
            return
        self._running = False
        cls = type(self)
        cls._users -= 1
        if cls._users == 0 and cls._saved is not None:
            gc.set_threshold(*cls._saved)
            gc.unfreeze()
            cls._frozen = 0
            cls._saved = None

    def collect_young(self) -> float:
        """Collect the young generation (and every :data:`MIDDLE_EVERY` calls the middle one
        too); the pause in seconds."""
        if not self._running:
            return 0.0
        started = time.perf_counter()
        self._young += 1
        gc.collect(1 if self._young % MIDDLE_EVERY == 0 else 0)
        return time.perf_counter() - started

    def due(self) -> bool:
        return self._running and self._clock() - self._last >= self.interval_s

    def collect(self) -> Collection:
        """Run the scheduled collection now: the old generation, and every
        ``full_interval_s`` the frozen objects too; then freeze the survivors."""
        now = self._clock()
        whole = now - self._last_full >= self.full_interval_s
        cls = type(self)
        started = time.perf_counter()
        if whole:
            gc.unfreeze()
            cls._frozen = 0
            self._last_full = now
        freed = gc.collect()
        cls._frozen += _tracked()  # what the freeze takes: the collection's survivors
        gc.freeze()
        pause = time.perf_counter() - started
        self._last = now
        return Collection(pause, whole, freed, cls._frozen)


def _tracked() -> int:
    """The objects the collector tracks outside the frozen ones (after a full collection:
    the survivors, in the old generation), listed from its generations' own lists."""
    return len(gc.get_objects(0)) + len(gc.get_objects(1)) + len(gc.get_objects(2))
