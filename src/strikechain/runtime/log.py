"""The block log: what was decided, written before anyone is told.

A log holds one genesis record (:class:`~strikechain.runtime.genesis.Genesis`), then one
:class:`BlockRecord` per block in height order 1, 2, 3, ... with no gaps, and now and then a
:class:`SnapshotRecord` (the engine's whole state after a block). Replaying the blocks from
genesis (or from the latest snapshot) reproduces every recorded digest and state root
(:mod:`strikechain.runtime.replay`); that is the venue's audit trail and its crash recovery.

The runtime appends a block's record before any sink sees the block's result, so nothing is
acknowledged that the log could lose (up to the adapter's sync policy).

Adapters: :class:`MemoryLog` (here; the lab, tests) and
:class:`~strikechain.runtime.sqlite_log.SqliteLog` (the node).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import msgspec

from strikechain.engine.invariant import invariant
from strikechain.runtime.genesis import Genesis

DIGEST_BYTES = 32


class BlockRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One block as the log keeps it."""

    height: int
    block: bytes
    """The block's canonical bytes (:func:`strikechain.engine.codec.encode_block`)."""
    digest: bytes
    """The block's chained digest (``BlockResult.digest``): 32 bytes once the engine makes it."""
    state_root: bytes = b""
    """The state root after the block where the runtime asked for one, else empty."""
    timestamp_ns: int = 0
    transactions: int = 0
    events: int = 0
    base_fee: int = 0
    """The selection's base fee when the block was cut (0: none)."""
    cut_reason: str = ""
    """:class:`~strikechain.runtime.cutting.CutReason`."""

    def __post_init__(self) -> None:
        invariant(self.height > 0, "block records start at height 1")
        invariant(len(self.digest) in (0, DIGEST_BYTES), "a digest is 32 bytes")
        invariant(len(self.state_root) in (0, DIGEST_BYTES), "a state root is 32 bytes")


class SnapshotRecord(msgspec.Struct, frozen=True):
    """The engine's whole state after block ``height`` (``engine.snapshot`` bytes)."""

    height: int
    data: bytes


class BlockLog(Protocol):
    """Where a runtime records its blocks. Appends are in height order without gaps."""

    def get_genesis(self) -> Genesis | None: ...

    def write_genesis(self, genesis: Genesis) -> None:
        """Write the genesis record of an empty log (once)."""
        ...

    def last_height(self) -> int:
        """The height of the last block record (0: none yet)."""
        ...

    def append(self, record: BlockRecord) -> None:
        """Append the next block's record, durably per the adapter's sync policy."""
        ...

    def append_snapshot(self, snapshot: SnapshotRecord) -> None: ...

    def set_state_root(self, height: int, root: bytes) -> None:
        """Record the state root of block ``height`` (appended already: the last one, or an
        earlier one) after its record (a runtime with ``defer_roots``), durably per the
        adapter's sync policy."""
        ...

    def records(self, from_height: int = 1) -> Iterator[BlockRecord]:
        """Block records from ``from_height`` on, in height order."""
        ...

    def latest_snapshot(self) -> SnapshotRecord | None: ...

    def close(self) -> None: ...


class LogError(Exception):
    """A log that cannot be read as a strikechain block log (no genesis, unknown schema)."""


def require_genesis(log: BlockLog) -> Genesis:
    genesis = log.get_genesis()
    if genesis is None:
        raise LogError("the block log has no genesis record")
    return genesis


def check_append(last_height: int, record: BlockRecord, has_genesis: bool) -> None:
    """The rules every adapter enforces before it appends a block record."""
    invariant(has_genesis, "a block log starts with its genesis record")
    invariant(
        record.height == last_height + 1,
        f"block record {record.height} does not follow {last_height}",
    )


def check_root(last_height: int, height: int, root: bytes) -> None:
    """A deferred root names a block appended (the last one, or an earlier one when its state
    was encoded while blocks went on) and is a digest."""
    if not 1 <= height <= last_height:
        raise LogError(f"a state root for block {height}, but the last block is {last_height}")
    if len(root) != DIGEST_BYTES:
        raise LogError(f"a state root is {DIGEST_BYTES} bytes, not {len(root)}")


def check_snapshot(last_height: int, snapshot: SnapshotRecord) -> None:
    invariant(
        0 < snapshot.height <= last_height,
        f"a snapshot at height {snapshot.height}, but the log ends at {last_height}",
    )


class MemoryLog:
    """A block log in memory: for the lab and tests; gone with the process."""

    def __init__(self) -> None:
        self._genesis: Genesis | None = None
        self._records: list[BlockRecord] = []
        self._snapshots: list[SnapshotRecord] = []

    def get_genesis(self) -> Genesis | None:
        return self._genesis

    def write_genesis(self, genesis: Genesis) -> None:
        invariant(self._genesis is None, "the log already has a genesis record")
        self._genesis = genesis

    def last_height(self) -> int:
        return len(self._records)

    def append(self, record: BlockRecord) -> None:
        check_append(len(self._records), record, self._genesis is not None)
        self._records.append(record)

    def set_state_root(self, height: int, root: bytes) -> None:
        check_root(len(self._records), height, root)
        index = height - 1
        self._records[index] = msgspec.structs.replace(self._records[index], state_root=root)

    def append_snapshot(self, snapshot: SnapshotRecord) -> None:
        check_snapshot(len(self._records), snapshot)
        self._snapshots.append(snapshot)

    def records(self, from_height: int = 1) -> Iterator[BlockRecord]:
        index = max(from_height, 1) - 1
        while index < len(self._records):
            yield self._records[index]
            index += 1

    def latest_snapshot(self) -> SnapshotRecord | None:
        return self._snapshots[-1] if self._snapshots else None

    def close(self) -> None:
        return None
