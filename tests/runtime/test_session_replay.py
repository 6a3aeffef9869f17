"""A seeded scripted session through the runtime into a SQLite log; replay reproduces it."""

from __future__ import annotations

import sqlite3
from collections.abc import Generator
from pathlib import Path

import msgspec
import pytest

from strikechain.engine import snapshot
from strikechain.engine.engine import Engine
from strikechain.engine.events import BlockResult
from strikechain.runtime import (
    ArrivalOrder,
    BlockPolicy,
    External,
    Genesis,
    Runtime,
    RuntimeConfig,
    SqliteLog,
    Sync,
    rebuild,
    replay,
)
from strikechain.runtime.log import BlockRecord, LogError, MemoryLog, SnapshotRecord
from strikechain.sim.scripted import ScriptedSession, SessionParams

SMALL = SessionParams(seed=11, blocks=200, transactions_per_block=40, traders=24)


@pytest.fixture(scope="module")
def session() -> ScriptedSession:
    return ScriptedSession(SMALL)


def run(
    session: ScriptedSession, log: SqliteLog | MemoryLog, config: RuntimeConfig
) -> list[BlockResult]:
    """Feed every scripted block's transactions through the inbox and cut at its time."""
    genesis = Genesis(venue=session.venue)
    log.write_genesis(genesis)
    runtime = Runtime(genesis.build_engine(), log, BlockPolicy(ArrivalOrder(), External()), config)
    results = []
    for block in session.blocks():
        for tx in block.transactions:
            runtime.submit(tx, block.timestamp_ns)
        result = runtime.cut(block.timestamp_ns)
        assert result is not None
        results.append(result)
    return results


def test_session_through_sqlite_replays(session: ScriptedSession, tmp_path: Path) -> None:
    config = RuntimeConfig(root_every=10, snapshot_every=50)
    with SqliteLog(tmp_path / "session.sqlite", sync=Sync.NORMAL) as log:
        results = run(session, log, config)
    direct = Engine(venue=session.venue)
    expected = [direct.apply(block).digest for block in session.blocks()]
    assert [r.digest for r in results] == expected, "the runtime cut the scripted blocks"
    assert results[-1].state_root == direct.state_root()

    with SqliteLog(tmp_path / "session.sqlite") as log:
        report = replay(log, from_snapshot=False)
        assert report.ok, report.mismatch
        assert (report.start_height, report.end_height, report.blocks) == (0, 200, 200)
        assert report.digests_checked == 200
        assert report.roots_checked == 20
        assert report.transactions == sum(len(b.transactions) for b in session.blocks())

        from_snapshot = replay(log, from_snapshot=True)
        assert from_snapshot.ok, from_snapshot.mismatch
        assert (from_snapshot.start_height, from_snapshot.blocks) == (200, 0)
        engine = rebuild(log)
        assert engine.height == 200
        assert engine.state_root() == direct.state_root()


def test_replay_finds_the_first_difference(session: ScriptedSession) -> None:
    log = MemoryLog()
    run(session, log, RuntimeConfig(root_every=25, snapshot_every=60))
    assert replay(log).ok
    # Tamper with one digest and one root, as a faulty sequencer's log would show.
    records: list[BlockRecord] = log._records
    records[79] = msgspec.structs.replace(records[79], digest=bytes(32))
    records[49] = msgspec.structs.replace(records[49], state_root=b"\x01" * 32)
    report = replay(log)
    assert not report.ok
    assert report.mismatch is not None
    assert (report.mismatch.height, report.mismatch.field) == (50, "state_root")
    assert report.mismatch.recorded == b"\x01" * 32
    assert report.blocks == 50
    snapshot_report = replay(log, from_snapshot=True)  # latest snapshot: 180
    assert snapshot_report.ok
    assert (snapshot_report.start_height, snapshot_report.blocks) == (180, 20)


def test_a_snapshot_is_checked_not_trusted(session: ScriptedSession) -> None:
    """A snapshot whose state is not the one the log recorded at its height (here: the state of
    an earlier height, filed under a later one) is found before any block is replayed."""
    log = MemoryLog()
    run(session, log, RuntimeConfig(root_every=20, snapshot_every=60))
    snapshots = log._snapshots
    assert [s.height for s in snapshots] == [60, 120, 180]
    snapshots[-1] = SnapshotRecord(180, snapshots[-2].data)
    report = replay(log, from_snapshot=True)
    assert report.mismatch is not None
    assert (report.mismatch.height, report.mismatch.field, report.blocks) == (180, "digest", 0)
    assert not replay(log, from_snapshot=False).mismatch  # the blocks themselves are fine


def deferring_runtime(session: ScriptedSession, log: SqliteLog) -> Runtime:
    """A runtime on a fresh ``log`` as the live node runs one: roots every 10 blocks and
    snapshots every 50, both deferred."""
    genesis = Genesis(venue=session.venue)
    log.write_genesis(genesis)
    config = RuntimeConfig(root_every=10, snapshot_every=50, defer_roots=True, defer_snapshots=True)
    return Runtime(genesis.build_engine(), log, BlockPolicy(ArrivalOrder(), External()), config)


def test_a_postponed_root_and_snapshot_are_recorded_at_the_next_block(
    session: ScriptedSession, tmp_path: Path
) -> None:
    """``postpone_pending`` (the live node, when the next block falls due before a deferred
    root or snapshot is done): they move to the next block, and replay checks them there."""
    with SqliteLog(tmp_path / "postponed.sqlite", sync=Sync.NORMAL) as log:
        runtime = deferring_runtime(session, log)
        for block in session.blocks():
            for tx in block.transactions:
                runtime.submit(tx, block.timestamp_ns)
            runtime.cut(block.timestamp_ns)
            if block.height in (50, 51, 120):  # 50's twice in a row: at 52 then
                assert runtime.postpone_pending()
                assert not runtime.pending
            else:
                runtime.record_pending()
        assert not runtime.postpone_pending()  # nothing waits
        roots = [r.height for r in log.records() if r.state_root]
        assert roots == [*range(10, 50, 10), 52, *range(60, 120, 10), 121, *range(130, 201, 10)]
    with sqlite3.connect(tmp_path / "postponed.sqlite") as db:
        snapshots = [height for (height,) in db.execute("SELECT height FROM snapshots")]
        assert snapshots == [52, 100, 150, 200]
    with SqliteLog(tmp_path / "postponed.sqlite") as log:
        report = replay(log, from_snapshot=False)
        assert report.ok, report.mismatch
        assert replay(log, from_snapshot=True).ok


def test_deferred_roots_and_snapshots_are_the_same_recorded_after_their_blocks(
    session: ScriptedSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``defer_roots`` and ``defer_snapshots`` (the live node's settings): a root or snapshot
    block is appended without them and delivered; they follow (``record_pending``, its steps,
    or the next cut when the steps have not started; or taken by their first step, then
    read copy on write, encoded and recorded while later blocks are cut), identical to what
    an undeferred runtime records, and replay checks every one of them."""
    monkeypatch.setattr(snapshot, "ORDERS_PER_STEP", 16)  # many steps
    monkeypatch.setattr(snapshot, "HASHED_BYTES_PER_STEP", 4_096)
    inline = MemoryLog()
    run(session, inline, RuntimeConfig(root_every=10, snapshot_every=50))
    expected = {r.height: r.state_root for r in inline.records() if r.state_root}
    assert len(expected) == 20
    expected_snapshots = [(s.height, s.data) for s in inline._snapshots]
    assert [height for height, _ in expected_snapshots] == [50, 100, 150, 200]

    snapshots: list[tuple[int, bytes]] = []

    class Recording(SqliteLog):
        def append_snapshot(self, record: SnapshotRecord) -> None:
            snapshots.append((record.height, record.data))
            super().append_snapshot(record)

    with Recording(tmp_path / "deferred.sqlite", sync=Sync.NORMAL) as log:
        runtime = deferring_runtime(session, log)
        abandoned = None
        recording: dict[int, Generator[None, None, None]] = {}
        for block in session.blocks():
            for tx in block.transactions:
                runtime.submit(tx, block.timestamp_ns)
            result = runtime.cut(block.timestamp_ns)
            assert result is not None
            if block.height in recording:  # the taken root (and snapshot) land on theirs
                assert list(recording.pop(block.height)) != []
                assert not runtime.recording
            if abandoned is not None:  # the cut recorded what its steps would have taken
                assert list(abandoned) == []
                assert next(log.records(block.height - 1)).state_root != b""
                abandoned = None
            assert result.state_root == b""  # never in the delivered result
            if block.height % 10 == 0:
                assert runtime.pending
                assert next(log.records(block.height)).state_root == b""  # not yet
                written = len(snapshots)
                if block.height in (70, 100):  # taken, then recorded while 3 blocks go on
                    recording[block.height + 3] = runtime.record_pending_in_steps()
                    next(recording[block.height + 3])  # the first step takes the state
                    assert not runtime.pending
                    assert runtime.recording
                elif block.height % 30 == 0:  # by the driver, in steps (150: with a snapshot)
                    assert sum(1 for _ in runtime.record_pending_in_steps()) > 10
                    assert not runtime.pending
                elif block.height % 20 == 0:  # by the driver, at once (200: a snapshot)
                    assert runtime.record_pending()
                else:  # steps not started: the next cut records it at once (50: a snapshot)
                    abandoned = runtime.record_pending_in_steps()
                    assert runtime.pending
                    assert len(snapshots) == written
        assert not runtime.record_pending()  # 200's went by the driver: none waits
        assert snapshots == expected_snapshots
        recorded = {r.height: r.state_root for r in log.records() if r.state_root}
        assert recorded == expected
        for height in (0, 201):
            with pytest.raises(LogError, match="last block is 200"):
                log.set_state_root(height, bytes(32))
        with pytest.raises(LogError, match="32 bytes"):
            log.set_state_root(200, b"\x01")

    with SqliteLog(tmp_path / "deferred.sqlite") as log:
        report = replay(log, from_snapshot=False)
        assert report.ok, report.mismatch
        assert report.roots_checked == 20
        assert replay(log, from_snapshot=True).ok
