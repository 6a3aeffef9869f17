"""The lab's event loop: time order, ties by scheduling order, cancellable timers, bounded queue,
time passing when nothing happens, per-component random streams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strikechain.engine.invariant import InvariantViolation
from strikechain.runtime.gateway import Scheduler
from strikechain.sim.kernel import Kernel, KernelOverflow


def test_events_run_in_time_order_and_ties_in_scheduling_order() -> None:
    kernel = Kernel(1)
    ran: list[tuple[int, str]] = []
    for when, name in ((30, "c"), (10, "a"), (30, "d"), (20, "b"), (10, "a2")):
        kernel.schedule(when, lambda n: ran.append((kernel.now, n)), name)
    assert kernel.run() == 5
    assert ran == [(10, "a"), (10, "a2"), (20, "b"), (30, "c"), (30, "d")]


@given(st.lists(st.integers(0, 1_000), max_size=200))
def test_any_schedule_runs_sorted_by_time_then_sequence(times: list[int]) -> None:
    kernel = Kernel(1)
    ran: list[tuple[int, int]] = []
    for sequence, when in enumerate(times):
        kernel.schedule(when, ran.append, (when, sequence))
    kernel.run()
    assert ran == sorted((when, sequence) for sequence, when in enumerate(times))


def test_events_scheduled_while_running_at_the_same_time_run_after_the_earlier_ones() -> None:
    kernel = Kernel(1)
    ran: list[str] = []

    def first(_: object) -> None:
        ran.append("first")
        kernel.schedule(kernel.now, lambda _: ran.append("spawned"), None)

    kernel.schedule(5, first, None)
    kernel.schedule(5, lambda _: ran.append("second"), None)
    kernel.run()
    assert ran == ["first", "second", "spawned"]


def test_timers_cancel_and_implement_the_runtimes_scheduler() -> None:
    kernel = Kernel(1, start_ns=100)
    scheduler: Scheduler = kernel
    ran: list[int] = []
    kept = scheduler.call_later(50, lambda: ran.append(kernel.now))
    dropped = scheduler.call_at(120, lambda: ran.append(-1))
    dropped.cancel()
    assert dropped.cancelled
    assert not kept.cancelled
    kernel.run()
    assert ran == [150]
    assert scheduler.now_ns() == 150
    assert kept.cancelled  # fired: a second cancel is harmless


def test_run_until_stops_there_and_time_passes_when_nothing_happens() -> None:
    kernel = Kernel(1)
    ran: list[int] = []
    for when in (10, 20, 30):
        kernel.schedule(when, ran.append, when)
    assert kernel.run(until_ns=20) == 2
    assert (ran, kernel.now, kernel.pending) == ([10, 20], 20, 1)
    assert kernel.run(until_ns=25) == 0
    assert kernel.now == 25
    assert kernel.next_time_ns() == 30
    assert kernel.step()
    assert not kernel.step()
    assert kernel.events_run == 3


def test_run_stops_after_max_events() -> None:
    kernel = Kernel(1)
    for when in range(10):
        kernel.schedule(when, lambda _: None, None)
    assert kernel.run(max_events=4) == 4
    assert kernel.now == 3
    assert kernel.run(until_ns=100, max_events=100) == 6
    assert kernel.now == 100


def test_the_past_is_refused_and_the_queue_is_bounded() -> None:
    kernel = Kernel(1, start_ns=10, max_pending=3)
    with pytest.raises(InvariantViolation):
        kernel.schedule(9, lambda _: None, None)
    with pytest.raises(InvariantViolation):
        kernel.call_later(-1, lambda: None)
    for when in (10, 11, 12):
        kernel.schedule(when, lambda _: None, None)
    with pytest.raises(KernelOverflow):
        kernel.schedule(13, lambda _: None, None)
    with pytest.raises(InvariantViolation):
        Kernel(-1)


def test_streams_depend_on_the_seed_and_the_component_name_alone() -> None:
    def draws(seed: int, name: str, others: tuple[str, ...] = ()) -> list[float]:
        kernel = Kernel(seed)
        for other in others:
            kernel.rng(other).random(10)  # other components drawing first change nothing
        return kernel.rng(name).random(5).tolist()

    assert draws(1, "agent/a") == draws(1, "agent/a", ("agent/b", "network"))
    assert draws(1, "agent/a") != draws(2, "agent/a")
    assert draws(1, "agent/a") != draws(1, "agent/b")


@given(
    st.lists(st.integers(0, 200), max_size=40),
    # up to 100 events a batch: large batches are sorted by NumPy, small ones by Python
    st.lists(st.lists(st.integers(0, 200), max_size=100), max_size=4),
    st.lists(st.integers(0, 220), max_size=4),
    st.integers(1, 50),
)
def test_a_batch_runs_as_its_events_scheduled_one_by_one(
    singles: list[int], batches: list[list[int]], stops: list[int], chunk: int
) -> None:
    """Each batch takes its place in the (time, sequence) order as if each of its events were
    scheduled alone, in list order; the same holds across ``until_ns`` and ``max_events``
    stops, for events scheduled while a batch runs, and for ``pending``."""

    def play(batched: bool) -> list[tuple[int, str, int]]:
        kernel = Kernel(1)
        ran: list[tuple[int, str, int]] = []

        def spawn(name: tuple[str, int]) -> None:
            ran.append((kernel.now, *name))
            if name[1] % 3 == 0:  # scheduled while a batch runs: same time and later
                kernel.schedule(kernel.now + name[1] % 5, note, ("spawned", name[1]))

        def note(name: tuple[str, int]) -> None:
            ran.append((kernel.now, *name))

        for when in singles[: len(singles) // 2]:
            kernel.schedule(when, note, ("single", when))
        for number, times in enumerate(batches):
            names = [(f"batch{number}", i) for i in range(len(times))]
            if batched:
                kernel.schedule_batch(times, spawn, names)
            else:
                for when, name in zip(times, names, strict=True):
                    kernel.schedule(when, spawn, name)
        for when in singles[len(singles) // 2 :]:
            kernel.schedule(when, note, ("single", when))
        for stop in sorted(stops):
            if stop >= kernel.now:
                kernel.run(until_ns=stop)
                ran.append((kernel.now, "pending", kernel.pending))
        while kernel.run(max_events=chunk):
            ran.append((kernel.now, "pending", kernel.pending))
        return ran

    assert play(batched=True) == play(batched=False)


def test_a_batch_is_bounded_and_refuses_the_past() -> None:
    kernel = Kernel(1, start_ns=10, max_pending=4)
    with pytest.raises(InvariantViolation):
        kernel.schedule_batch([12, 9], lambda _: None, [None, None])
    kernel.schedule_batch([], lambda _: None, [])
    kernel.schedule_batch([11, 10, 12], lambda _: None, [None, None, None])
    assert kernel.pending == 3
    with pytest.raises(KernelOverflow):
        kernel.schedule_batch([13, 14], lambda _: None, [None, None])
    kernel.schedule(13, lambda _: None, None)
    with pytest.raises(KernelOverflow):
        kernel.schedule(14, lambda _: None, None)
    assert kernel.run() == 4
    assert kernel.pending == 0
