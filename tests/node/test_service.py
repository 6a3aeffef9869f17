"""The live node: acknowledgement after the log, recovery on restart, settlement on a chain,
and its failures (a full inbox, a failed log write, a chain that stops answering)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from strikechain.engine import snapshot
from strikechain.engine.events import Fill, OrderAccepted
from strikechain.engine.oracle import OracleReport, sign_report
from strikechain.engine.signing import address_of, keccak256
from strikechain.engine.txs import Cancel, PlaceOrder, PostOnly
from strikechain.node.config import ConfigError, NodeConfig, parse_config
from strikechain.node.service import CHAIN_THREAD_NICE, Node, NodeHalted
from strikechain.runtime.errors import RuntimeRejection
from strikechain.runtime.replay import replay
from strikechain.runtime.sqlite_log import SqliteLog
from strikechain.settlement.chain import Chain
from strikechain.settlement.embedded import BoaChain

KEY = keccak256(b"node-test-reporter")
REPORTER = address_of(KEY)
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
PERP = "BTC_USDC-PERPETUAL"
USDC = 1_000_000


def config(tmp_path: Path, **node: Any) -> NodeConfig:
    base = parse_config(
        f"""
[node]
data_dir = "{tmp_path / "data"}"
block_interval_ms = 5.0
snapshot_every = 20
root_every = 5

[settlement]
batch_blocks = 10
batch_interval_s = 1000.0
challenge_window_s = 60

[[underlyings]]
name = "BTC"
reporters = ["{REPORTER}"]
quorum = 1

[[instruments]]
underlying = "BTC"
"""
    )
    return msgspec.structs.replace(base, node=msgspec.structs.replace(base.node, **node))


class Clock:
    """Wall-clock nanoseconds, but never behind the last value (tests may add offsets)."""

    def __init__(self) -> None:
        self.now = 1_900_000_000 * 10**9

    def __call__(self) -> int:
        self.now += 1_000_000
        return self.now


def unsettled(cfg: NodeConfig) -> NodeConfig:
    """``cfg`` with settlement off (no chain: the node alone)."""
    return msgspec.structs.replace(
        cfg, settlement=msgspec.structs.replace(cfg.settlement, enabled=False)
    )


def report(clock: Clock) -> OracleReport:
    return sign_report(
        OracleReport(
            account=REPORTER,
            underlying="BTC",
            timestamp_ns=clock.now,
            price=100_000 * USDC,
            confidence=USDC,
        ),
        KEY,
    )


def report_now(node: Node) -> OracleReport:
    return sign_report(
        OracleReport(
            account=REPORTER,
            underlying="BTC",
            timestamp_ns=node.clock(),
            price=100_000 * USDC,
            confidence=USDC,
        ),
        KEY,
    )


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def started(cfg: NodeConfig, clock: Clock, chain: Callable[[], Chain]) -> Node:
    node = Node(cfg, clock=clock, chain_factory=chain)
    await node.start()
    return node


async def wait_for(predicate: Callable[[], bool], seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def test_orders_are_acknowledged_after_the_log_and_survive_a_restart(tmp_path: Path) -> None:
    cfg, clock = config(tmp_path), Clock()
    journal = tmp_path / "data" / "chain.journal"

    def chain() -> Chain:
        return BoaChain(timestamp=clock.now // 10**9, journal=journal)

    async def first() -> tuple[list[Any], bytes, int]:
        node = await started(cfg, clock, chain)
        settlement = node.settlement
        assert settlement is not None
        for account in (ALICE, BOB):
            await asyncio.to_thread(settlement.mint, account, 10_000 * USDC)
            await asyncio.to_thread(settlement.deposit, account, "BTC", 10_000 * USDC)
        await wait_for(lambda: node.engine.next_deposit_id == 3)
        credited = [node.engine.get_ledger(a, "BTC") for a in (ALICE, BOB)]
        assert all(ledger is not None and ledger.cash == 10_000 * USDC for ledger in credited)
        await node.submit(report(clock))
        sell = PlaceOrder(
            account=BOB,
            instrument=PERP,
            side=-1,
            size_lots=3,
            price_ticks=200_000,
            post_only=PostOnly.REJECT,
        )
        buy = PlaceOrder(account=ALICE, instrument=PERP, side=1, size_lots=3, price_ticks=200_000)
        acks = [await node.submit(sell), await node.submit(buy)]
        assert any(isinstance(e, OrderAccepted) for e in acks[0].events)
        assert any(isinstance(e, Fill) for e in acks[1].events)
        assert node.log is not None
        assert node.log.last_height() >= acks[1].height  # in the log when acknowledged
        await wait_for(lambda: node.engine.height >= 30)
        await wait_for(lambda: node.status()["batches_committed"] >= 2)
        root, height = node.engine.state_root(), node.engine.height
        await node.stop()
        return acks, root, height

    acks, root, height = run(first())
    with SqliteLog(tmp_path / "data" / "blocks.sqlite") as log:
        report_ = replay(log)
        assert report_.ok
        assert report_.end_height == height
        # The roots (every 5 blocks) are recorded after their blocks' answers, each one.
        rooted = [r.height for r in log.records() if r.state_root]
        assert rooted == list(range(5, height + 1, 5))
        assert report_.roots_checked == len(rooted)
        for ack in acks:
            (record,) = list(log.records(ack.height))[:1]
            assert record.height == ack.height

    async def second() -> None:
        node = await started(cfg, clock, chain)
        assert node.engine.height == height
        assert node.engine.state_root() == root
        assert node.operator is not None
        committed = len(node.operator.records) - 1
        assert committed >= 2
        await wait_for(lambda: node.engine.height >= height + 15)
        await wait_for(lambda: node.status()["batches_committed"] > committed)
        assert node.engine.next_deposit_id == 3  # nothing credited twice
        await node.stop()

    run(second())


def test_a_full_inbox_refuses_and_changes_nothing(tmp_path: Path) -> None:
    cfg = config(tmp_path, inbox_capacity=2, block_interval_ms=60_000.0)
    clock = Clock()

    async def main() -> None:
        node = await started(unsettled(cfg), clock, BoaChain)
        # The first submission finds the genesis block due: it is cut (with the listing and
        # that submission) at the end of the pass; then two fit in the inbox until the next
        # block, a minute away, and the third is refused.
        node.submit_nowait(report(clock))
        await passes(2)
        node.submit_nowait(report(clock))
        node.submit_nowait(report(clock))
        height, waiting = node.engine.height, dict(node._waiting)
        with pytest.raises(RuntimeRejection) as refused:
            node.submit_nowait(report(clock))
        assert refused.value.code == "INBOX_FULL"
        assert len(node.runtime.inbox) == 2  # type: ignore[union-attr]
        assert (node.engine.height, node._waiting) == (height, waiting)
        await node.stop()

    run(main())


async def passes(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def test_a_due_block_takes_what_arrives_within_the_grace_then_submissions_cut_it(
    tmp_path: Path,
) -> None:
    """Past the grace, a submission has the block cut after the loop's pass and one more poll
    of the sockets: with what those took (it arrived before the cut), not in the middle."""
    cfg = config(tmp_path, block_interval_ms=60_000.0, cut_grace_ms=50.0)
    clock = Clock()

    async def main() -> None:
        node = await started(unsettled(cfg), clock, BoaChain)
        node.submit_nowait(report(clock))  # finds the genesis block overdue
        await passes(2)  # the pass ends, the sockets are polled once more: the block is cut
        height = node.engine.height
        assert height == 1
        due = node.runtime.next_due_ns()  # type: ignore[union-attr]
        assert due is not None
        clock.now = due + 30_000_000  # due, within the grace: taken into the block
        node.submit_nowait(report(clock))
        assert node.engine.height == height
        clock.now = due + 50_000_000  # past the grace: cut after this pass and one more
        node.submit_nowait(report(clock))
        node.submit_nowait(report(clock))
        assert node.engine.height == height
        await asyncio.sleep(0)
        node.submit_nowait(report(clock))  # read in the next pass: still in the block
        assert node.engine.height == height
        await asyncio.sleep(0)
        assert node.engine.height == height + 1
        assert len(node.runtime.inbox) == 0  # type: ignore[union-attr]
        assert node._last_transactions == 4  # the one within the grace and three after it
        await node.stop()

    run(main())


def test_a_root_taken_before_a_block_is_recorded_after_it_and_one_not_started_moves_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deferred root's steps across cuts (what the block timer drives between blocks): its
    first step takes the state, the rest goes on while blocks are cut (orders filled and
    placed meanwhile) and the root lands on its own height; one not started when the next
    block is cut moves to that block, once, and is taken at once before the second cut. An
    older root still being recorded when a newer one must move on is finished first."""
    monkeypatch.setattr(snapshot, "HASHED_BYTES_PER_STEP", 64)  # many steps
    monkeypatch.setattr(snapshot, "ORDERS_PER_STEP", 1)
    cfg = config(tmp_path, block_interval_ms=60_000.0)  # the timer never cuts: the test does
    clock = Clock()

    async def main() -> None:
        node = await started(unsettled(cfg), clock, BoaChain)
        runtime, log = node.runtime, node.log
        assert runtime is not None
        assert log is not None

        def cut() -> None:
            node.submit_nowait(report(clock))
            node.cut_block()

        def rooted() -> list[int]:
            assert log is not None
            return [record.height for record in log.records() if record.state_root]

        while not runtime.pending:
            cut()
        assert node.engine.height == 5
        node._deferred_steps = runtime.record_pending_in_steps()
        assert node._deferred_step()  # taken
        assert not runtime.pending
        assert runtime.recording
        for _ in range(5):  # blocks 6 to 10 go on; 10's root falls due meanwhile
            cut()
            assert node._deferred_step()
        assert runtime.recording
        assert runtime.pending
        assert rooted() == []
        cut()  # 11: 5's finished first, 10's (not started) moved on to 11
        assert rooted() == [5]
        assert not runtime.recording
        assert runtime.pending
        assert node.engine.height == 11
        node._deferred_steps = runtime.record_pending_in_steps()
        assert node._deferred_step()  # taken: the cut leaves it to its steps
        cut()
        assert not runtime.pending
        assert runtime.recording
        assert rooted() == [5]
        node._drain_deferred()
        assert rooted() == [5, 11]
        while not runtime.pending:
            cut()
        assert node.engine.height == 15
        cut()  # 15's moved on to 16 (not started)
        cut()  # 16's, not started again: taken at once before 17
        assert not runtime.pending
        assert runtime.recording
        node._drain_deferred()
        assert rooted() == [5, 11, 16]
        assert b"\nstrikechain_deferred_postponed_total 2.0\n" in node.metrics.render()
        await node.stop()

    run(main())
    with SqliteLog(tmp_path / "data" / "blocks.sqlite") as log:
        checked = replay(log)
        assert checked.ok, checked.mismatch
        assert checked.roots_checked == 3


def test_the_timer_drains_input_already_arriving_before_it_cuts(tmp_path: Path) -> None:
    """A due block takes what a few more passes of the loop submit, then is cut: not at the
    grace's end even though submissions never stop."""
    cfg = config(tmp_path, block_interval_ms=400.0, cut_grace_ms=40.0)
    cfg = unsettled(cfg)

    async def main() -> None:
        node = Node(cfg)
        await node.start()
        try:
            await node.submit(report_now(node))  # a first block, so the timer runs from it
            due = node.runtime.next_due_ns()  # type: ignore[union-attr]
            assert due is not None
            await asyncio.sleep(max(0.0, (due - node.clock()) / 1e9 - 0.02))
            height = node.engine.height
            sent: list[int] = []
            futures = []
            while node.engine.height == height:  # one submission per loop pass: never quiet
                sent.append(node.clock())
                # (a cancel of nothing: the engine refuses it in the block, cheaply)
                futures.append(node.submit_nowait(Cancel(account=REPORTER, order_id=len(sent))))
                await asyncio.sleep(0)
            acks = await asyncio.gather(*futures[:-1])
            block = node.engine.timestamp_ns
            after_due = [t for t in sent[:-1] if t >= due]
            assert after_due, "nothing was submitted after the due time"
            assert all(ack.height == height + 1 for ack in acks)  # all in the drained block
            # A few passes (its wake-up, the drain), not the thousands of the whole grace,
            # bounded in time, not in passes: the timer sleeps on the loop's monotonic clock
            # towards a due time on the wall clock, and on a fast host (~4 us a pass) the two
            # clocks' drift over an interval is itself a few passes (10 counted once).
            assert due <= block < due + 20_000_000  # within half the grace
        finally:
            await node.stop()

    run(main())


def test_a_failed_log_write_halts_the_node_without_acknowledging(tmp_path: Path) -> None:
    cfg, clock = config(tmp_path), Clock()

    async def main() -> None:
        node = await started(unsettled(cfg), clock, BoaChain)
        await node.submit(report(clock))
        assert node.log is not None
        height = node.log.last_height()

        def full_disk(*args: object) -> None:
            raise OSError(28, "No space left on device")

        node.log.append = full_disk  # type: ignore[method-assign]
        pending = node.submit_nowait(report(clock))
        with pytest.raises(NodeHalted, match="No space left"):
            await pending
        assert node.halted is not None
        with pytest.raises(NodeHalted):
            node.submit_nowait(report(clock))
        await node.stop()
        with SqliteLog(tmp_path / "data" / "blocks.sqlite") as log:
            assert log.last_height() == height
            assert replay(log).ok

    run(main())


def test_followers_get_each_block_after_its_answers_and_one_that_fails_halts(
    tmp_path: Path,
) -> None:
    """A follower (the settlement batcher is one) receives each block in the loop's pass
    after the cut, after the acknowledgement listeners and before the tasks the block woke;
    one that raises halts the node, as a runtime sink that raises stops the runtime."""
    cfg = config(tmp_path, block_interval_ms=60_000.0)  # the timer never cuts: the test does
    clock = Clock()

    async def main() -> None:
        node = await started(unsettled(cfg), clock, BoaChain)
        seen: list[tuple[str, int]] = []

        class Follower:
            fail = False

            def on_block(self, committed: Any) -> None:
                if self.fail:
                    raise RuntimeError("a bug")
                seen.append(("followed", committed.block.height))

        follower = Follower()
        node.follow(follower)
        node.on_acknowledged(lambda futures: seen.append(("announced", len(futures))))

        async def woken() -> None:
            ack = await node.submit(report(clock))
            seen.append(("woken", ack.height))

        task = asyncio.create_task(woken())
        await asyncio.sleep(0)
        node.cut_block()
        height = node.engine.height
        assert ("followed", height) not in seen  # not inside the cut
        await task
        assert seen == [("announced", 1), ("followed", height), ("woken", height)]
        follower.fail = True
        pending = node.submit_nowait(report(clock))
        node.cut_block()
        assert (await pending).height == height + 1  # acknowledged: in the log
        await asyncio.sleep(0)
        assert node.halted is not None
        assert "not followed" in node.halted
        with pytest.raises(NodeHalted):
            node.submit_nowait(report(clock))
        await node.stop()

    run(main())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice: Linux")
def test_the_chain_thread_runs_at_a_lower_priority(tmp_path: Path) -> None:
    """Batch compression and chain calls run on the chain thread, below the event loop's
    priority (CHAIN_THREAD_NICE): on the node's one core they take its idle time, not half of
    it while a batch closes."""
    cfg, clock = config(tmp_path), Clock()

    async def main() -> None:
        node = await started(unsettled(cfg), clock, BoaChain)
        try:

            def nice() -> int:
                return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

            mine = nice()
            theirs = await node.on_chain(nice)
            assert theirs == min(mine + CHAIN_THREAD_NICE, 19)
            assert nice() == mine  # the loop's thread keeps its own
        finally:
            await node.stop()

    run(main())


def test_a_chain_that_stops_answering_delays_settlement_only(tmp_path: Path) -> None:
    cfg, clock = config(tmp_path), Clock()

    class Silent(BoaChain):
        stop = False

        def transact(self, *args: Any, **kwargs: Any) -> Any:
            if Silent.stop:
                raise TimeoutError("the chain does not answer")
            return super().transact(*args, **kwargs)

    async def main() -> None:
        node = await started(cfg, clock, lambda: Silent(timestamp=clock.now // 10**9))
        await wait_for(lambda: node.status()["batches_committed"] >= 1)
        Silent.stop = True
        ack = await node.submit(report(clock))
        await wait_for(lambda: node.engine.height >= ack.height + 25)
        assert node.chain_errors > 0
        assert node.status()["batches_queued"] >= 1
        Silent.stop = False
        await wait_for(lambda: node.status()["batches_queued"] == 0)
        assert node.operator is not None
        assert node.operator.records[-1].state_root != b""
        await node.stop()

    run(main())


def test_a_bad_config_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="block_interval_ms"):
        parse_config("[node]\nblock_interval_ms = 0.0\n")
    with pytest.raises(ConfigError, match="blok"):
        parse_config("[node]\nblok = 1\n")
    with pytest.raises(ConfigError, match="underlying"):
        parse_config('[[instruments]]\nunderlying = "ETH"\n')
