"""The lab's discrete-event kernel: one heap of timed callbacks in integer virtual nanoseconds.

Everything in a lab run happens as an event of this loop: a message arriving over the network,
a consensus timeout, an agent waking up, a block being cut. :class:`Kernel` keeps them in one
binary heap ordered by ``(time, sequence)``: events at the same virtual time run in the order
they were scheduled (the sequence number, never object identity or hash order), so a run is a
pure function of its seed and its inputs, bit for bit. The heap holds one integer per event,
``time << SEQUENCE_BITS | sequence`` (the same order as the pair; comparing two integers costs a
third of comparing two tuples, and the heap's comparisons were a tenth of a lab run), and the
callbacks wait in a dict under that key, with their time (a key does not fit a machine word:
shifting the time back out of it cost more than keeping it).

It implements the runtime's :class:`~strikechain.runtime.gateway.Scheduler` (``now_ns``,
``call_at``, ``call_later``, handles that cancel), so the agents written against it run
unchanged against the node's wall-clock scheduler. Components draw randomness only from
:meth:`Kernel.rng`: a generator derived from ``(seed, component name)``
(:func:`~strikechain.sim.world.component_rng`), so adding a component never changes another's
stream.

Invariants and limits
- Time never goes backwards: scheduling before ``now`` is a bug (an invariant), not a clamp.
- At most ``max_pending`` events wait at once (default 10 million): a model that floods the
  queue is a bug, stopped with :class:`KernelOverflow` rather than exhausting memory.
- At most ``2**SEQUENCE_BITS`` (about 10^12) events are scheduled in one kernel's life.
- A cancelled timer stays in the heap until its time comes and is then skipped (lazy deletion:
  O(1) cancel, no heap surgery); ``pending`` counts it until then.

The hot path is :meth:`Kernel.schedule` (an integer push, no handle) and :meth:`Kernel.run` (pop,
set the clock, call); handles cost one small object, for what agents may cancel.

Batches (:meth:`Kernel.schedule_batch`): many events scheduled at once with one function (a
block's market data to hundreds of agents) take consecutive sequence numbers, as if scheduled
one by one in the order given, and wait sorted by key in a :class:`_Batch` that has one entry
in the heap, its next key. When that entry comes up, the loop runs the batch's events in key
order for as long as each is earlier than the heap's first key (and within ``until_ns`` and
``max_events``), then pushes the batch back under its next key. Every event runs at the same
virtual time and in the same place of the total ``(time, sequence)`` order as it would as a
separate heap entry (keys are unique), so a batch changes no run; it saves a push, a pop and a
dict entry per event (a block's deliveries were two thirds of a lab run's events). A batch keeps
its times and sequences apart and compares times (a time fits a machine word, a key does not),
making a key only when it goes back into the heap; a large batch is put in order by one stable
NumPy sort.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any, Final

import numpy as np

from strikechain.engine.invariant import invariant
from strikechain.sim.world import component_rng

MAX_PENDING: Final = 10_000_000
SEQUENCE_BITS: Final = 40
_SEQUENCE_LIMIT: Final = 1 << SEQUENCE_BITS
_SEQUENCE_MASK: Final = _SEQUENCE_LIMIT - 1
_NEVER: Final = 1 << 126
_NUMPY_SORT_MIN: Final = 64
_push: Final = heappush
"""``heappush`` as a static of the compiled module (an imported name is a globals lookup per
event scheduled)."""


class KernelOverflow(Exception):
    """More events are waiting than the kernel's bound: the model is flooding the queue."""


class Timer:
    """A handle on one scheduled callback; :meth:`cancel` makes it a no-op."""

    __slots__ = ("callback", "when_ns")

    def __init__(self, when_ns: int, callback: Callable[[], None]) -> None:
        self.when_ns = when_ns
        self.callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        self.callback = None

    @property
    def cancelled(self) -> bool:
        return self.callback is None


class _Batch:
    """Events of one :meth:`Kernel.schedule_batch` not yet run, from ``next``: their times
    ascending and their sequences (``first`` plus each one's place in the list given). Times
    and sequences are kept apart: a time fits a machine word, a key (``time << SEQUENCE_BITS |
    sequence``) does not, and the key is only made when the batch goes back into the heap."""

    __slots__ = ("arguments", "first", "function", "next", "places", "times")

    def __init__(
        self,
        times: list[int],
        places: list[int],
        first: int,
        function: Callable[[Any], None],
        arguments: list[Any],
    ) -> None:
        self.times = times
        self.places = places
        self.first = first
        self.function = function
        self.arguments = arguments
        self.next = 0

    def key(self, index: int) -> int:
        return self.times[index] << SEQUENCE_BITS | self.first + self.places[index]


def _fire(timer: Timer) -> None:
    """A timer's event (a module function: no bound method made per timer)."""
    callback = timer.callback
    if callback is not None:
        timer.callback = None
        callback()


def _stable_order(times_ns: list[int]) -> list[int]:
    """The positions of ``times_ns`` in ascending time, ties in list order (the order of the
    keys ``time << SEQUENCE_BITS | sequence`` of consecutive sequences): one NumPy sort for a
    large batch (a block's market data), Python's for a small one or for times beyond int64."""
    if len(times_ns) >= _NUMPY_SORT_MIN:
        try:
            array = np.fromiter(times_ns, dtype=np.int64, count=len(times_ns))
        except OverflowError:
            pass
        else:
            order: list[int] = array.argsort(kind="stable").tolist()
            return order
    return sorted(range(len(times_ns)), key=times_ns.__getitem__)


def _batch_marker(_: object) -> None:
    """The function of a batch's heap entry (its argument is the :class:`_Batch`); never
    called: the loop runs the batch itself."""
    raise AssertionError("a batch's entry is run by Kernel.run")


class Kernel:
    """A heap-based event loop in integer nanoseconds of virtual time (see the module)."""

    __slots__ = (
        "_batched",
        "_heap",
        "_sequence",
        "_waiting",
        "events_run",
        "max_pending",
        "now",
        "seed",
    )

    def __init__(self, seed: int, *, start_ns: int = 0, max_pending: int = MAX_PENDING) -> None:
        invariant(seed >= 0, "the seed is a non-negative integer")
        invariant(start_ns >= 0, "virtual time starts at or after zero")
        invariant(max_pending > 0, "the kernel holds at least one event")
        self.seed = seed
        self.now = start_ns
        """Virtual time, ns: the time of the event running (or last run)."""
        self.max_pending = max_pending
        self.events_run = 0
        self._heap: list[int] = []
        """``time << SEQUENCE_BITS | sequence`` of every waiting event."""
        self._waiting: dict[int, tuple[int, Callable[[Any], None], Any]] = {}
        """Heap key -> (time, function, argument)."""
        self._sequence = 0
        self._batched = 0
        """Events waiting in batches beyond each batch's one heap entry."""

    # -- the Scheduler interface -----------------------------------------------------------

    def now_ns(self) -> int:
        return self.now

    def call_at(self, when_ns: int, callback: Callable[[], None]) -> Timer:
        """Run ``callback()`` at virtual time ``when_ns`` (not before now); cancellable."""
        timer = Timer(when_ns, callback)
        self.schedule(when_ns, _fire, timer)
        return timer

    def call_later(self, delay_ns: int, callback: Callable[[], None]) -> Timer:
        if delay_ns < 0:  # the message built only when it is needed (a timer per arrival)
            invariant(False, f"a delay is not negative, not {delay_ns}")
        return self.call_at(self.now + delay_ns, callback)

    # -- the hot path ------------------------------------------------------------------------

    def schedule(self, when_ns: int, function: Callable[[Any], None], argument: Any) -> None:
        """Run ``function(argument)`` at ``when_ns``: the handle-free fast path."""
        if when_ns < self.now:
            invariant(False, f"an event at {when_ns} ns is before now, {self.now} ns")
        heap = self._heap
        if len(heap) + self._batched >= self.max_pending:
            raise KernelOverflow(f"{len(heap) + self._batched} events waiting, the most allowed")
        sequence = self._sequence
        if sequence == _SEQUENCE_LIMIT:
            raise KernelOverflow(f"{sequence} events scheduled, the most in one kernel's life")
        self._sequence = sequence + 1
        key = when_ns << SEQUENCE_BITS | sequence
        _push(heap, key)
        self._waiting[key] = (when_ns, function, argument)

    def schedule_batch(
        self, times_ns: list[int], function: Callable[[Any], None], arguments: list[Any]
    ) -> None:
        """Run ``function(arguments[i])`` at ``times_ns[i]`` for every ``i``: the same as
        :meth:`schedule` called for each in list order (see the module)."""
        count = len(times_ns)
        invariant(count == len(arguments), "one argument per time")
        if count == 0:
            return
        heap = self._heap
        if len(heap) + self._batched + count > self.max_pending:
            raise KernelOverflow(f"{len(heap) + self._batched} events waiting, {count} more")
        first = self._sequence
        if first + count > _SEQUENCE_LIMIT:
            raise KernelOverflow(f"{first} events scheduled, the most in one kernel's life")
        places = _stable_order(times_ns)
        times = [times_ns[i] for i in places]
        if times[0] < self.now:
            invariant(False, f"an event at {times[0]} ns is before now, {self.now} ns")
        self._sequence = first + count
        batch = _Batch(times, places, first, function, [arguments[i] for i in places])
        head = batch.key(0)
        heappush(heap, head)
        self._waiting[head] = (times[0], _batch_marker, batch)
        self._batched += count - 1

    def run(self, until_ns: int | None = None, max_events: int | None = None) -> int:
        """Run events in time order up to and including ``until_ns`` (all, if None), or until
        ``max_events`` ran; then the clock stands at ``until_ns`` if given (time passes even
        when nothing happens). Returns how many events ran."""
        heap, waiting = self._heap, self._waiting
        pop, marker = heappop, _batch_marker  # (module names: a globals lookup on each use)
        # the first key past until_ns: every event due by then has a smaller key
        limit = _NEVER if until_ns is None else (until_ns + 1) << SEQUENCE_BITS
        budget = -1 if max_events is None else max_events
        ran = 0
        while heap and heap[0] < limit and ran != budget:
            when_ns, function, argument = waiting.pop(pop(heap))
            if function is marker:
                ran += self._run_batch(argument, limit, budget - ran)
                continue
            self.now = when_ns
            function(argument)
            ran += 1
        self.events_run += ran
        if until_ns is not None and ran != budget and until_ns > self.now:
            self.now = until_ns
        return ran

    def _run_batch(self, batch: _Batch, limit: int, budget: int) -> int:
        """Run ``batch``'s events from its next one (due: its entry was first in the heap) while
        each comes before the heap's first key and ``limit``, at most ``budget`` of them (-1:
        no bound); then put the batch back under its next key. Returns how many ran.

        Times are compared as times: an event at time ``t`` is before ``limit`` iff ``t <
        limit >> SEQUENCE_BITS`` (a limit is a time's first key), and before the heap's first
        key iff its time is earlier, or the same with a smaller sequence."""
        times, places, arguments = batch.times, batch.places, batch.arguments
        function, first = batch.function, batch.first
        heap = self._heap
        end_ns = limit >> SEQUENCE_BITS
        head = -1  # the heap's first key when head_ns was found (keys are never negative)
        head_ns = 0
        index = batch.next
        end = len(times)
        ran = 0
        while True:
            argument = arguments[index]
            arguments[index] = None  # run: let it go
            self.now = times[index]
            index += 1
            function(argument)
            ran += 1
            if index == end:
                return ran
            self._batched -= 1
            following_ns = times[index]
            if following_ns >= end_ns or ran == budget:
                break
            if heap:
                if heap[0] != head:
                    head = heap[0]
                    head_ns = head >> SEQUENCE_BITS
                if head_ns < following_ns or (
                    head_ns == following_ns and head & _SEQUENCE_MASK < first + places[index]
                ):
                    break
        batch.next = index
        following = batch.key(index)
        heappush(heap, following)
        self._waiting[following] = (times[index], _batch_marker, batch)
        return ran

    def step(self) -> bool:
        """Run the next event, if any."""
        return self.run(max_events=1) == 1

    # -- queries -----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events waiting (cancelled timers included until their time)."""
        return len(self._heap) + self._batched

    def next_time_ns(self) -> int | None:
        """When the next event is due, or None."""
        return self._heap[0] >> SEQUENCE_BITS if self._heap else None

    def rng(self, name: str) -> np.random.Generator:
        """The random stream of component ``name`` in this run: ``(seed, name)`` alone decide
        it."""
        return component_rng(self.seed, name)
