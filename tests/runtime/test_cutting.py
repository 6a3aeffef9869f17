from __future__ import annotations

from strikechain.runtime import (
    AnyOf,
    BaseFeeRule,
    ByInterval,
    BySize,
    BySlot,
    CutReason,
    External,
    FeePriority,
    RuntimeConfig,
)
from strikechain.runtime.cutting import CutContext

from .helpers import cancel, make_runtime


def context(now_ns: int, last_ns: int, ready: int) -> CutContext:
    return CutContext(now_ns, last_ns, lambda: ready)


def test_by_size() -> None:
    rule = BySize(3)
    assert rule.due(context(0, 0, 2)) is None
    assert rule.due(context(0, 0, 3)) is CutReason.SIZE
    assert rule.next_due_ns(0) is None


def test_by_interval() -> None:
    rule = ByInterval(1_000)
    assert rule.due(context(999, 0, 0)) is None
    assert rule.due(context(1_000, 0, 0)) is CutReason.INTERVAL
    assert rule.next_due_ns(500) == 1_500


def test_by_slot_keeps_the_grid_however_late_a_cut() -> None:
    rule = BySlot(100)
    assert rule.next_due_ns(0) == 100
    assert rule.due(context(99, 0, 0)) is None
    assert rule.due(context(100, 0, 0)) is CutReason.INTERVAL
    # Cut 30 late: the next is still on the grid, not 100 after the late cut.
    assert rule.next_due_ns(130) == 200
    assert rule.due(context(199, 130, 0)) is None
    assert rule.due(context(200, 130, 0)) is CutReason.INTERVAL
    # Within the last quarter of a slot: the boundary right after is left to the next block.
    assert rule.next_due_ns(175) == 200
    assert rule.next_due_ns(176) == 300
    assert rule.next_due_ns(300) == 400  # cut on a boundary: the next one
    assert BySlot(1).next_due_ns(5) == 6  # a gap of at least 1 ns even for tiny slots
    assert (BySize(3) | BySlot(100)).next_due_ns(130) == 200


def test_by_slot_blocks_average_the_slot_under_late_cuts() -> None:
    """A driver that always cuts 37 ns late still averages one block per slot (from the last
    cut, the lateness would add to every interval)."""
    rule = BySlot(100)
    last, cuts = 0, []
    for _ in range(1_000):
        last = rule.next_due_ns(last) + 37
        cuts.append(last)
    assert (cuts[-1] - cuts[0]) / (len(cuts) - 1) == 100
    late = ByInterval(100)
    last = 0
    for _ in range(1_000):
        last = late.next_due_ns(last) + 37
    assert last == 1_000 * 137


def test_combined_first_due_wins_and_ready_is_lazy() -> None:
    calls = []

    def ready() -> int:
        calls.append(1)
        return 10

    rule = ByInterval(100) | BySize(5)
    assert isinstance(rule, AnyOf)
    assert rule.due(CutContext(100, 0, ready)) is CutReason.INTERVAL
    assert calls == [], "an interval rule never counts the inbox"
    assert rule.due(CutContext(50, 0, ready)) is CutReason.SIZE
    assert rule.next_due_ns(0) == 100
    assert (External() | BySize(1) | ByInterval(7)).next_due_ns(3) == 10
    assert External().due(context(10**18, 0, 10**6)) is None


def test_runtime_polls_by_size_and_interval() -> None:
    runtime = make_runtime(cutting=BySize(3) | ByInterval(1_000))
    runtime.submit(cancel(), 10)
    runtime.submit(cancel(), 20)
    assert runtime.poll(30) is None
    runtime.submit(cancel(), 40)
    result = runtime.poll(50)
    assert result is not None
    assert (result.height, len(result.events)) == (1, 3)
    assert runtime.poll(1_049) is None
    result = runtime.poll(1_050)
    assert result is not None, "an empty block by interval"
    assert (result.height, result.events) == (2, [])
    assert runtime.next_due_ns() == 2_050


def test_by_size_counts_only_eligible_transactions() -> None:
    runtime = make_runtime(
        selection=FeePriority(BaseFeeRule(floor=100)),
        cutting=BySize(2),
        config=RuntimeConfig(max_transactions_per_block=4),
    )
    runtime.submit(cancel(fee=5), 1)
    runtime.submit(cancel(fee=500), 2)
    assert runtime.poll(3) is None
    runtime.submit(cancel(fee=100), 4)
    result = runtime.poll(5)
    assert result is not None
    assert len(result.events) == 2
    assert len(runtime.inbox) == 1
