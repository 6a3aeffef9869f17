"""The block log in one SQLite file (stdlib ``sqlite3``), in WAL mode.

Schema (version 1)::

    meta(key TEXT PRIMARY KEY, value BLOB)        -- "schema" and "genesis"
    blocks(height INTEGER PRIMARY KEY, block BLOB, digest BLOB, state_root BLOB,
           timestamp_ns INTEGER, transactions INTEGER, events INTEGER,
           base_fee INTEGER, cut_reason TEXT)
    snapshots(height INTEGER PRIMARY KEY, data BLOB)

Each append is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``): a block's record is
in the file whole or not at all. Opening an existing file continues it (the runtime checks the
engine it is given is at the log's last height).

Sync policy (:class:`Sync`), the one durability choice:

- ``FULL`` (the node's default): SQLite fsyncs the write-ahead log at every commit, so a block
  the runtime has acknowledged survives a power loss or an OS crash. Costs one fsync per block.
- ``NORMAL``: the WAL is fsynced only at checkpoints. A commit still survives the process
  crashing (the OS has the pages), and the file is never corrupted, but the last blocks before a
  power loss may roll back; a node then recovers to an earlier height and its clients may have
  seen results the log no longer holds. For the lab, benchmarks and followers that can refetch.

WAL mode lets readers (a verifier, a replay) read while the writer appends.

Checkpoints (copying the WAL's pages into the database file, with an fsync of it) are SQLite's
automatic ones by default: the commit that takes the WAL past 1,000 pages runs one, ~10 ms
with the node's blocks (every ~60 blocks of 60 KB), and that block's acknowledgements wait for
it. With ``checkpoint_interval_s`` they run on a thread of their own instead, on a connection
of its own, every that many seconds (``PASSIVE``: never waiting on the writer, which goes on
committing meanwhile; SQLite releases the GIL while it copies and syncs). The writer starts
the WAL over after a complete checkpoint, so it holds about one interval of blocks.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from strikechain.engine.invariant import invariant
from strikechain.runtime.genesis import Genesis, decode_genesis, encode_genesis
from strikechain.runtime.log import (
    BlockRecord,
    LogError,
    SnapshotRecord,
    check_append,
    check_root,
    check_snapshot,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
PAGE_ROWS: Final = 1_000
"""Records read per query while iterating (no read stays open across the caller's appends)."""

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS blocks("
    "height INTEGER PRIMARY KEY, block BLOB NOT NULL, digest BLOB NOT NULL, "
    "state_root BLOB NOT NULL, timestamp_ns INTEGER NOT NULL, transactions INTEGER NOT NULL, "
    "events INTEGER NOT NULL, base_fee INTEGER NOT NULL, cut_reason TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS snapshots(height INTEGER PRIMARY KEY, data BLOB NOT NULL)",
)
_COLUMNS: Final = (
    "height, block, digest, state_root, timestamp_ns, transactions, events, base_fee, cut_reason"
)


class Sync(enum.StrEnum):
    """SQLite's ``synchronous`` setting in WAL mode (see the module docstring)."""

    FULL = "FULL"
    NORMAL = "NORMAL"


class SqliteLog:
    """A block log in the SQLite file at ``path`` (created if missing, continued if not)."""

    def __init__(
        self,
        path: str | Path,
        *,
        sync: Sync = Sync.FULL,
        checkpoint_interval_s: float | None = None,
    ) -> None:
        if checkpoint_interval_s is not None and not checkpoint_interval_s > 0:
            raise ValueError(f"checkpoint_interval_s must be > 0, got {checkpoint_interval_s}")
        self.path = Path(path)
        self.sync = Sync(sync)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise
        self._last_height = self._query_last_height()
        self._genesis = self._read_genesis()
        self.checkpoints = 0
        """Checkpoints the background thread ran (``checkpoint_interval_s``)."""
        self._stopping = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if checkpoint_interval_s is not None:
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = threading.Thread(
                target=self._checkpoint_every,
                args=(checkpoint_interval_s,),
                name=f"checkpoint {self.path.name}",
                daemon=True,
            )
            self._checkpointer.start()

    def checkpoint(self) -> tuple[int, int]:
        """Copy the WAL's committed pages into the database file now, on this connection
        (``PASSIVE``): (pages in the WAL, pages copied)."""
        return _checkpoint(self._db)

    def _checkpoint_every(self, interval_s: float) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute(f"PRAGMA synchronous={self.sync.value}")
            while not self._stopping.wait(interval_s):
                try:
                    _checkpoint(db)
                    self.checkpoints += 1
                except sqlite3.Error as error:  # the WAL grows until one succeeds
                    log.warning("block log checkpoint failed", extra={"error": repr(error)})
        finally:
            db.close()

    def _open(self) -> None:
        db = self._db
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LogError(f"{self.path}: could not switch the journal to WAL (got {mode})")
        db.execute(f"PRAGMA synchronous={self.sync.value}")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise LogError(f"{self.path}: schema version {row[0]}, this reads {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _query_last_height(self) -> int:
        row = self._db.execute("SELECT MAX(height), COUNT(*) FROM blocks").fetchone()
        last, count = (row[0] or 0), row[1]
        invariant(last == count, f"{self.path}: block records have gaps ({count} up to {last})")
        return int(last)

    def _read_genesis(self) -> Genesis | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'genesis'").fetchone()
        return None if row is None else decode_genesis(bytes(row[0]))

    def get_genesis(self) -> Genesis | None:
        return self._genesis

    def write_genesis(self, genesis: Genesis) -> None:
        invariant(self._genesis is None, "the log already has a genesis record")
        with self._transaction():
            self._db.execute("INSERT INTO meta VALUES ('genesis', ?)", (encode_genesis(genesis),))
        self._genesis = genesis

    def last_height(self) -> int:
        return self._last_height

    def append(self, record: BlockRecord) -> None:
        check_append(self._last_height, record, self._genesis is not None)
        with self._transaction():
            self._db.execute(
                f"INSERT INTO blocks({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.height,
                    record.block,
                    record.digest,
                    record.state_root,
                    record.timestamp_ns,
                    record.transactions,
                    record.events,
                    record.base_fee,
                    record.cut_reason,
                ),
            )
        self._last_height = record.height

    def set_state_root(self, height: int, root: bytes) -> None:
        check_root(self._last_height, height, root)
        with self._transaction():
            self._db.execute("UPDATE blocks SET state_root = ? WHERE height = ?", (root, height))

    def append_snapshot(self, snapshot: SnapshotRecord) -> None:
        check_snapshot(self._last_height, snapshot)
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?)", (snapshot.height, snapshot.data)
            )

    def records(self, from_height: int = 1) -> Iterator[BlockRecord]:
        height = max(from_height, 1)
        while True:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM blocks WHERE height >= ? ORDER BY height LIMIT ?",
                (height, PAGE_ROWS),
            ).fetchall()
            for row in rows:
                yield _record(row)
            if len(rows) < PAGE_ROWS:
                return
            height = rows[-1][0] + 1

    def latest_snapshot(self) -> SnapshotRecord | None:
        row = self._db.execute(
            "SELECT height, data FROM snapshots ORDER BY height DESC LIMIT 1"
        ).fetchone()
        return None if row is None else SnapshotRecord(int(row[0]), bytes(row[1]))

    def close(self) -> None:
        self._stopping.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None
        self._db.close()

    def __enter__(self) -> SqliteLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> WriteTransaction:
        return WriteTransaction(self._db)


class WriteTransaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` if the body raises: one atomic write
    (the node's other SQLite stores use it too)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _checkpoint(db: sqlite3.Connection) -> tuple[int, int]:
    busy, pages, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if busy:  # (another checkpoint was running: this one did nothing)
        return int(pages), 0
    return int(pages), int(copied)


def _record(row: Any) -> BlockRecord:
    height, block, digest, root, timestamp_ns, transactions, events, base_fee, reason = row
    return BlockRecord(
        height=int(height),
        block=bytes(block),
        digest=bytes(digest),
        state_root=bytes(root),
        timestamp_ns=int(timestamp_ns),
        transactions=int(transactions),
        events=int(events),
        base_fee=int(base_fee),
        cut_reason=str(reason),
    )
