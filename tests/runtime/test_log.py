from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import msgspec
import pytest

from strikechain.engine.codec import CodecError
from strikechain.engine.codes import RejectCode
from strikechain.runtime import BlockRecord, LogError, MemoryLog, SnapshotRecord, SqliteLog, Sync
from strikechain.runtime.genesis import decode_genesis, encode_genesis
from strikechain.runtime.log import BlockLog

from .helpers import genesis


def record(height: int) -> BlockRecord:
    return BlockRecord(
        height=height,
        block=b"block-%d" % height,
        digest=height.to_bytes(32, "big"),
        state_root=(height + 7).to_bytes(32, "big") if height % 2 else b"",
        timestamp_ns=height * 1_000,
        transactions=height,
        events=2 * height,
        base_fee=8 + height,
        cut_reason="interval",
    )


@pytest.fixture(params=["memory", "sqlite-full", "sqlite-normal"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> BlockLog:
    if request.param == "memory":
        return MemoryLog()
    sync = Sync.FULL if request.param == "sqlite-full" else Sync.NORMAL
    return SqliteLog(tmp_path / "log.sqlite", sync=sync)


def test_round_trip(log: BlockLog) -> None:
    assert log.get_genesis() is None
    with pytest.raises(AssertionError, match="genesis"):
        log.append(record(1))
    log.write_genesis(genesis())
    assert log.get_genesis() == genesis()
    for height in range(1, 11):
        log.append(record(height))
    assert log.last_height() == 10
    assert list(log.records()) == [record(h) for h in range(1, 11)]
    assert [r.height for r in log.records(8)] == [8, 9, 10]
    assert list(log.records(11)) == []
    assert log.latest_snapshot() is None
    log.append_snapshot(SnapshotRecord(4, b"four"))
    log.append_snapshot(SnapshotRecord(9, b"nine"))
    assert log.latest_snapshot() == SnapshotRecord(9, b"nine")
    log.close()


def test_a_deferred_root_lands_on_its_own_block_even_an_earlier_one(log: BlockLog) -> None:
    """A root encoded while later blocks went on (the live node's) is set on its own record,
    the others untouched; a height not appended, or a root not 32 bytes, is refused."""
    log.write_genesis(genesis())
    for height in range(1, 6):
        log.append(msgspec.structs.replace(record(height), state_root=b""))
    log.set_state_root(2, b"\x02" * 32)
    log.set_state_root(5, b"\x05" * 32)
    assert [r.state_root for r in log.records()] == [b"", b"\x02" * 32, b"", b"", b"\x05" * 32]
    for height in (0, 6):
        with pytest.raises(LogError, match="last block is 5"):
            log.set_state_root(height, bytes(32))
    with pytest.raises(LogError, match="32 bytes"):
        log.set_state_root(3, b"\x03")
    assert [r.state_root for r in log.records()][2] == b""
    log.close()


def test_gaps_and_future_snapshots_refused(log: BlockLog) -> None:
    log.write_genesis(genesis())
    log.append(record(1))
    with pytest.raises(AssertionError, match="does not follow"):
        log.append(record(3))
    with pytest.raises(AssertionError, match="snapshot"):
        log.append_snapshot(SnapshotRecord(2, b""))
    with pytest.raises(AssertionError, match="already"):
        log.write_genesis(genesis())
    assert log.last_height() == 1
    log.close()


def test_sqlite_reopen_continues(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    with SqliteLog(path, sync=Sync.NORMAL) as first:
        first.write_genesis(genesis())
        for height in range(1, 1_201):  # more than a page of iteration
            first.append(record(height))
        first.append_snapshot(SnapshotRecord(1_000, b"snap"))
    with SqliteLog(path) as again:
        assert again.get_genesis() == genesis()
        assert again.last_height() == 1_200
        again.append(record(1_201))
        assert [r.height for r in again.records()] == list(range(1, 1_202))
        assert again.latest_snapshot() == SnapshotRecord(1_000, b"snap")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def big(height: int) -> BlockRecord:
    """A record of a loaded block's size (~60 KB: 15 pages of the write-ahead log)."""
    return msgspec.structs.replace(record(height), block=bytes([height % 256]) * 60_000)


def test_sqlite_checkpoints_on_its_own_thread_keep_the_wal_short(tmp_path: Path) -> None:
    """``checkpoint_interval_s``: no commit runs SQLite's automatic checkpoint (the WAL only
    grows between the thread's checkpoints), the thread's checkpoints copy it into the file
    while appends go on, after which the WAL starts over, and everything reads back."""
    path = tmp_path / "log.sqlite"
    wal = tmp_path / "log.sqlite-wal"
    with SqliteLog(path, checkpoint_interval_s=3_600.0) as log:  # (the thread waits)
        log.write_genesis(genesis())
        for height in range(1, 121):  # ~1,800 pages: past SQLite's automatic 1,000
            log.append(big(height))
        assert wal.stat().st_size > 7_000_000  # nothing was checkpointed by a commit
        pages, copied = log.checkpoint()
        assert pages == copied > 1_800
        log.append(big(121))  # the WAL starts over after a complete checkpoint
        pages, copied = log.checkpoint()
        assert pages == copied < 30
    with SqliteLog(path, checkpoint_interval_s=0.01) as log:
        for height in range(122, 301):
            log.append(big(height))
            if height == 200:
                deadline = time.monotonic() + 20
                while log.checkpoints < 3 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert log.checkpoints >= 3
        assert [r.height for r in log.records()] == list(range(1, 301))
    with SqliteLog(path) as again:
        assert again.last_height() == 300
        assert next(again.records(300)) == big(300)
    with pytest.raises(ValueError, match="checkpoint_interval_s"):
        SqliteLog(tmp_path / "other.sqlite", checkpoint_interval_s=0.0)


def test_sqlite_refuses_foreign_schema(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    SqliteLog(path).close()  # creates the file with this schema
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = 99 WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(LogError, match="schema version 99"):
        SqliteLog(path)


def test_genesis_codec_is_canonical() -> None:
    data = encode_genesis(genesis())
    assert decode_genesis(data) == genesis()
    assert data[:4] == b"SC\x01\x06"
    with pytest.raises(CodecError, match="genesis") as refused:
        decode_genesis(data + b"\x00")
    assert refused.value.code == RejectCode.MALFORMED_ENCODING
    with pytest.raises(CodecError) as refused:
        decode_genesis(data[4:])
    assert refused.value.code == RejectCode.MALFORMED_ENCODING
