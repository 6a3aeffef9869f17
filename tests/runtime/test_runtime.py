from __future__ import annotations

import msgspec
import pytest

from strikechain.engine import codec
from strikechain.engine.limits import Limits
from strikechain.runtime import (
    ArrivalOrder,
    BlockPolicy,
    BlockRefused,
    Committed,
    External,
    MemoryLog,
    Runtime,
    RuntimeCode,
    RuntimeConfig,
    RuntimeRejection,
    RuntimeStopped,
)
from strikechain.runtime.log import BlockRecord, SnapshotRecord

from .helpers import FakeEngine, cancel, genesis, make_runtime


class RecordingLog(MemoryLog):
    def __init__(self, journal: list[str]) -> None:
        super().__init__()
        self.journal = journal

    def append(self, record: BlockRecord) -> None:
        self.journal.append(f"log {record.height}")
        super().append(record)

    def append_snapshot(self, snapshot: SnapshotRecord) -> None:
        self.journal.append(f"snapshot {snapshot.height}")
        super().append_snapshot(snapshot)


class RecordingSink:
    def __init__(self, journal: list[str], log: MemoryLog) -> None:
        self.journal = journal
        self.log = log
        self.committed: list[Committed] = []

    def on_block(self, committed: Committed) -> None:
        height = committed.result.height
        assert self.log.last_height() == height, "the log has the block before a sink sees it"
        self.journal.append(f"sink {height}")
        self.committed.append(committed)


def fake_runtime(
    config: RuntimeConfig | None = None, limits: Limits | None = None
) -> tuple[Runtime, FakeEngine, list[str], RecordingSink]:
    journal: list[str] = []
    log = RecordingLog(journal)
    log.write_genesis(genesis())
    engine = FakeEngine(limits)
    sink = RecordingSink(journal, log)
    runtime = Runtime(
        engine,
        log,
        BlockPolicy(ArrivalOrder(), External()),
        config,
        sinks=[sink],
        snapshotter=lambda engine: engine.height.to_bytes(4, "big"),
    )
    return runtime, engine, journal, sink


def test_log_before_sinks_and_roots_and_snapshots() -> None:
    config = RuntimeConfig(root_every=2, snapshot_every=3)
    runtime, engine, journal, sink = fake_runtime(config)
    for height in range(1, 7):
        runtime.submit(cancel(order_id=height), height * 10)
        result = runtime.cut(height * 10)
        assert result is not None
        assert result.state_root == (engine.state_root() if height % 2 == 0 else b"")
    assert journal == [
        "log 1", "sink 1", "log 2", "sink 2", "log 3", "snapshot 3", "sink 3",
        "log 4", "sink 4", "log 5", "sink 5", "log 6", "snapshot 6", "sink 6",
    ]  # fmt: skip
    records = list(runtime.log.records())
    assert [r.state_root != b"" for r in records] == [False, True, False, True, False, True]
    assert records[3].state_root == (1004).to_bytes(32, "big")
    assert codec.decode_block(records[0].block) == engine.blocks[0]
    assert runtime.log.latest_snapshot() == SnapshotRecord(6, (6).to_bytes(4, "big"))
    assert [c.sequences for c in sink.committed] == [[1], [2], [3], [4], [5], [6]]


def test_block_time_never_goes_backwards() -> None:
    runtime, engine, _, _ = fake_runtime()
    runtime.cut(1_000)
    runtime.cut(900)
    assert [b.timestamp_ns for b in engine.blocks] == [1_000, 1_000]
    assert [b.height for b in engine.blocks] == [1, 2]


def test_capacity_is_the_smaller_of_engine_and_config() -> None:
    runtime, engine, _, _ = fake_runtime(
        RuntimeConfig(max_transactions_per_block=5), Limits(max_transactions_per_block=3)
    )
    for i in range(7):
        runtime.submit(cancel(order_id=i + 1), 0)
    runtime.cut(1)
    assert len(engine.blocks[0].transactions) == 3
    assert len(runtime.inbox) == 4


def test_empty_blocks_optional() -> None:
    runtime, engine, _, _ = fake_runtime(RuntimeConfig(allow_empty=False))
    assert runtime.cut(5) is None
    assert engine.blocks == []
    runtime.submit(cancel(), 6)
    assert runtime.cut(7) is not None


def test_refused_block_raises_logs_nothing_and_stops() -> None:
    runtime, engine, journal, _ = fake_runtime()
    runtime.submit(cancel(), 0)
    engine.refuse = True
    with pytest.raises(BlockRefused) as refused:
        runtime.cut(1)
    assert refused.value.code == "BLOCK_TOO_LARGE"
    assert journal == []
    assert runtime.log.last_height() == 0
    with pytest.raises(RuntimeStopped):
        runtime.submit(cancel(), 2)


def test_failing_sink_stops_the_runtime() -> None:
    runtime, _, _, _ = fake_runtime()

    class Broken:
        def on_block(self, committed: Committed) -> None:
            raise ValueError("bug")

    runtime.add_sink(Broken())
    with pytest.raises(ValueError, match="bug"):
        runtime.cut(1)
    assert runtime.log.last_height() == 1
    with pytest.raises(RuntimeStopped):
        runtime.cut(2)


def test_inbox_full_through_runtime() -> None:
    runtime = make_runtime(config=RuntimeConfig(inbox_capacity=2))
    runtime.submit(cancel(), 0)
    runtime.submit(cancel(), 0)
    with pytest.raises(RuntimeRejection) as refused:
        runtime.submit(cancel(), 0)
    assert refused.value.code == RuntimeCode.INBOX_FULL
    runtime.cut(1)
    runtime.submit(cancel(), 2)


def test_runtime_refuses_an_engine_the_log_does_not_match() -> None:
    log = MemoryLog()
    log.write_genesis(genesis())
    log.append(BlockRecord(height=1, block=b"", digest=bytes(32)))
    with pytest.raises(AssertionError, match="height"):
        Runtime(FakeEngine(), log, BlockPolicy(ArrivalOrder(), External()))


def test_real_engine_digest_and_on_demand_root() -> None:
    runtime = make_runtime(config=RuntimeConfig(root_every=1))
    runtime.submit(cancel(), 0)
    result = runtime.cut(10)
    assert result is not None
    assert len(result.digest) == 32
    assert result.state_root == runtime.state_root()
    record = next(runtime.log.records())
    assert (record.digest, record.state_root) == (result.digest, result.state_root)
    assert msgspec.structs.asdict(record)["cut_reason"] == "external"
