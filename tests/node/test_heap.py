"""The node's garbage-collection schedule (:mod:`strikechain.node.heap`): no automatic full
collection while a node runs, scheduled ones that free cycles young and old, and the process's
collector given back when the last node stops."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import msgspec
import pytest

from strikechain.engine.invariant import InvariantViolation
from strikechain.node.heap import (
    FULL_COLLECTIONS_OFF,
    MIDDLE_EVERY,
    YOUNG_THRESHOLD,
    Collection,
    HeapPolicy,
)
from strikechain.node.service import COLLECTION_SKIPS_MAX, Node
from tests.node.test_service import config, report_now

NANOS = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Cycle:
    """Two of these referring to each other are freed only by the cyclic collector."""

    other: Cycle | None = None


def cycle() -> weakref.ref[Cycle]:
    first, second = Cycle(), Cycle()
    first.other, second.other = second, first
    return weakref.ref(first)


@pytest.fixture
def restored() -> object:
    thresholds = gc.get_threshold()
    yield None
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_start_freezes_and_turns_full_collections_off_and_stop_restores(restored: object) -> None:
    before = gc.get_threshold()
    policy = HeapPolicy(60.0, 3_600.0)
    policy.start()
    # Young collections less often than CPython's default, full ones never on their own.
    young = max(before[0], YOUNG_THRESHOLD)
    assert gc.get_threshold() == (young, before[1], FULL_COLLECTIONS_OFF)
    assert gc.get_freeze_count() > 0
    policy.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_young_collections_after_each_block_free_young_cycles_and_the_middle_every_tenth(
    restored: object,
) -> None:
    policy = HeapPolicy(60.0, 3_600.0)
    assert policy.collect_young() == 0.0  # not running: the process's collector is its own
    policy.start()
    try:
        gc.disable()  # only the policy collects in this test
        garbage = cycle()
        young, middle = (gc.get_stats()[g]["collections"] for g in (0, 1))
        for _ in range(MIDDLE_EVERY):
            assert policy.collect_young() >= 0.0
        assert garbage() is None
        assert gc.get_stats()[0]["collections"] - young == MIDDLE_EVERY - 1
        assert gc.get_stats()[1]["collections"] - middle == 1
    finally:
        gc.enable()
        policy.stop()


def test_a_scheduled_collection_frees_young_cycles_and_freezes_survivors(
    restored: object,
) -> None:
    clock = Clock()
    policy = HeapPolicy(10.0, 100.0, clock=clock)
    policy.start()
    try:
        gc.disable()  # only the policy collects in this test
        garbage = cycle()
        kept = [[index] for index in range(10)]  # tracked survivors: frozen after it
        frozen_before = gc.get_freeze_count()
        assert not policy.due()
        clock.now += 10.0
        assert policy.due()
        collection = policy.collect()
        assert garbage() is None
        assert not collection.whole_heap
        assert collection.freed >= 2
        assert collection.frozen == gc.get_freeze_count() >= frozen_before + len(kept)
        assert not policy.due()
    finally:
        gc.enable()
        policy.stop()


def test_only_the_whole_heap_collection_frees_cycles_among_frozen_objects(
    restored: object,
) -> None:
    clock = Clock()
    policy = HeapPolicy(10.0, 30.0, clock=clock)
    policy.start()
    try:
        gc.disable()
        holder = [Cycle()]
        holder[0].other = Cycle()
        holder[0].other.other = holder[0]
        old = weakref.ref(holder[0])
        clock.now += 10.0
        policy.collect()  # the pair survives (held) and is frozen
        holder.clear()  # now garbage, but frozen
        clock.now += 10.0
        assert not policy.collect().whole_heap
        assert old() is not None, "a routine collection walked the frozen objects"
        clock.now += 10.0
        collection = policy.collect()
        assert collection.whole_heap
        assert old() is None
    finally:
        gc.enable()
        policy.stop()


def test_nested_policies_restore_the_process_collector_once_both_stop(restored: object) -> None:
    before = gc.get_threshold()
    first, second = HeapPolicy(60.0, 60.0), HeapPolicy(60.0, 60.0)
    first.start()
    second.start()
    first.stop()
    assert gc.get_threshold()[2] == FULL_COLLECTIONS_OFF
    second.stop()
    second.stop()  # idempotent
    assert gc.get_threshold() == before


@pytest.mark.parametrize(("interval", "full"), [(0.0, 10.0), (-1.0, 10.0), (10.0, 5.0)])
def test_bad_intervals_are_refused(interval: float, full: float) -> None:
    with pytest.raises(InvariantViolation):
        HeapPolicy(interval, full)


def test_the_node_collects_between_blocks_and_reports_the_pause(
    tmp_path: Path, restored: object
) -> None:
    cfg = config(tmp_path)
    cfg = msgspec.structs.replace(
        cfg,
        node=msgspec.structs.replace(cfg.node, gc_interval_s=0.05, gc_full_interval_s=0.2),
        settlement=msgspec.structs.replace(cfg.settlement, enabled=False),
    )

    async def main() -> str:
        node = Node(cfg)
        await node.start()
        gc.disable()  # only the node's scheduled collections free cycles now
        try:
            assert gc.get_threshold()[2] == FULL_COLLECTIONS_OFF
            garbage = cycle()
            for _ in range(100):
                await asyncio.sleep(0.02)
                if garbage() is None and _collections(node.metrics.render().decode()) >= 1:
                    break
            assert garbage() is None, "no collection ran"
            return node.metrics.render().decode()
        finally:
            gc.enable()
            await node.stop()

    rendered = asyncio.run(main())
    assert gc.get_threshold()[2] != FULL_COLLECTIONS_OFF
    assert _collections(rendered) >= 1, "no scheduled collection reported"


def _collections(rendered: str) -> float:
    count = next(
        line
        for line in rendered.splitlines()
        if line.startswith("strikechain_gc_pause_seconds_count")
    )
    return float(count.split()[-1])


def test_a_due_collection_waits_for_room_between_blocks(tmp_path: Path, restored: object) -> None:
    """The node's collection runs a third of an interval after the cut only if the next block
    is half an interval away or more; else the next block's pass tries again, and after
    COLLECTION_SKIPS_MAX blocks without room it runs anyway."""
    cfg = config(tmp_path, block_interval_ms=60_000.0)  # the timer never cuts: the test does
    cfg = msgspec.structs.replace(
        cfg, settlement=msgspec.structs.replace(cfg.settlement, enabled=False)
    )
    now = [1_800_000_000 * NANOS]

    async def main() -> None:
        node = Node(cfg, clock=lambda: now[0])
        await node.start()
        collected: list[float] = []
        real = node.heap.collect

        def collect() -> Collection:
            collection = real()
            collected.append(collection.pause_s)
            return collection

        node.heap.collect = collect  # type: ignore[method-assign]
        try:
            node.submit_nowait(report_now(node))
            node.cut_block()
            interval = cfg.node.block_interval_ns
            due = node.runtime.next_due_ns()  # type: ignore[union-attr]
            assert due is not None
            now[0] = due - interval // 2 + 1  # past the third, less than half left
            await node._collect_between_blocks()
            assert collected == []
            assert node._collection_skips == 1
            now[0] = due - interval // 2  # half left: room
            await node._collect_between_blocks()
            assert len(collected) == 1
            assert node._collection_skips == 0
            now[0] = due - 1
            node._collection_skips = COLLECTION_SKIPS_MAX  # waited long enough: runs anyway
            await node._collect_between_blocks()
            assert len(collected) == 2
            assert node._collection_skips == 0
        finally:
            await node.stop()

    asyncio.run(main())
