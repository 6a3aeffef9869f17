"""Replay: rebuild the engine from a block log and check every recorded digest and root.

:func:`replay` builds the engine from the log's genesis record (or restores the latest
snapshot, whose digest and root must equal those recorded at its height), re-applies every
later block from its canonical bytes, and compares each block's digest with the recorded one,
and the state root at every height where one was recorded (computing ``engine.state_root()``
there). It stops at the first difference and reports it
(height, what differed, both values); a block the engine now refuses whole, or bytes that do
not decode, are differences too. Success reports counts and timing.

:func:`rebuild` is the crash-recovery path: the engine at the log's last height (from the
latest snapshot and the blocks after it, checked the same way), to continue a node after a
restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from strikechain.engine import codec
from strikechain.engine.codes import Rejection
from strikechain.engine.engine import Engine
from strikechain.engine.oracle import ReportVerifier
from strikechain.runtime.genesis import Genesis
from strikechain.runtime.log import (
    BlockLog,
    BlockRecord,
    LogError,
    SnapshotRecord,
    require_genesis,
)


class Mismatch(msgspec.Struct, frozen=True, kw_only=True):
    """The first place replay and the log disagree."""

    height: int
    field: str
    """``digest``, ``state_root``, ``block`` (the bytes do not decode) or ``refused``."""
    recorded: bytes = b""
    replayed: bytes = b""
    message: str = ""


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    start_height: int
    """0 from genesis, else the snapshot's height."""
    end_height: int
    """The last height applied (the mismatch's height when one was found)."""
    blocks: int
    transactions: int
    digests_checked: int
    roots_checked: int
    seconds: float
    mismatch: Mismatch | None = None


def restore_snapshot(
    genesis: Genesis, snapshot: SnapshotRecord, verifier: ReportVerifier | None = None
) -> Engine:
    """The engine a snapshot record holds, under the genesis configuration."""
    from strikechain.engine import snapshot as snapshots

    engine: Engine = snapshots.restore(
        snapshots.decode_snapshot(snapshot.data),
        limits=genesis.limits,
        policy=genesis.ordering,
        venue=genesis.venue,
        margin=genesis.margin_policy,
        verifier=verifier,
    )
    return engine


def _start(
    log: BlockLog, from_snapshot: bool, verifier: ReportVerifier | None
) -> tuple[Engine, int]:
    genesis = require_genesis(log)
    snapshot = log.latest_snapshot() if from_snapshot else None
    if snapshot is None:
        return genesis.build_engine(verifier), 0
    return restore_snapshot(genesis, snapshot, verifier), snapshot.height


class _Counts:
    __slots__ = ("blocks", "digests_checked", "roots_checked", "transactions")

    def __init__(self) -> None:
        self.blocks = self.transactions = self.digests_checked = self.roots_checked = 0


def replay(
    log: BlockLog,
    *,
    from_snapshot: bool = False,
    verifier: ReportVerifier | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> ReplayReport:
    """Re-apply the log and compare every recorded digest and root (see the module doc)."""
    return _run(log, from_snapshot, verifier, timer)[1]


def rebuild(log: BlockLog, *, verifier: ReportVerifier | None = None) -> Engine:
    """The engine at the log's last height, from the latest snapshot (if any) and the blocks
    after it, checked as :func:`replay` checks them; :class:`LogError` if any differs."""
    engine, report = _run(log, True, verifier, time.perf_counter)
    if report.mismatch is not None:
        found = report.mismatch
        raise LogError(
            f"block {found.height} of the log does not replay: {found.field} "
            f"{found.message}".rstrip()
        )
    return engine


def _run(
    log: BlockLog,
    from_snapshot: bool,
    verifier: ReportVerifier | None,
    timer: Callable[[], float],
) -> tuple[Engine, ReplayReport]:
    started = timer()
    engine, start = _start(log, from_snapshot, verifier)
    counts = _Counts()
    height = start
    mismatch = _check_snapshot(engine, log, start, counts) if start else None
    for record in log.records(start + 1) if mismatch is None else ():
        height = record.height
        mismatch = _replay_one(engine, record, counts)
        if mismatch is not None:
            break
    report = ReplayReport(
        ok=mismatch is None,
        start_height=start,
        end_height=height,
        blocks=counts.blocks,
        transactions=counts.transactions,
        digests_checked=counts.digests_checked,
        roots_checked=counts.roots_checked,
        seconds=timer() - started,
        mismatch=mismatch,
    )
    return engine, report


def _check_snapshot(engine: Engine, log: BlockLog, height: int, counts: _Counts) -> Mismatch | None:
    """A restored snapshot must hold the digest (and the root, if one was recorded) that the
    log recorded at its height: the snapshot is checked, not trusted."""
    record = next(log.records(height), None)
    if record is None or record.height != height:
        return Mismatch(height=height, field="block", message="no block record at the snapshot")
    return _compare(engine, record, engine.digest, counts)


def _replay_one(engine: Engine, record: BlockRecord, counts: _Counts) -> Mismatch | None:
    height = record.height
    try:
        block = codec.decode_block(record.block)
    except Rejection as error:
        return Mismatch(height=height, field="block", message=str(error))
    if block.height != height:
        return Mismatch(height=height, field="block", message=f"holds block {block.height}")
    result = engine.apply(block)
    if result.rejected:
        return Mismatch(
            height=height, field="refused", message=f"{result.rejected}: {result.reason}"
        )
    counts.blocks += 1
    counts.transactions += len(block.transactions)
    return _compare(engine, record, result.digest, counts)


def _compare(
    engine: Engine, record: BlockRecord, digest: bytes, counts: _Counts
) -> Mismatch | None:
    """The engine's digest against the record's, then its root where one was recorded."""
    height = record.height
    if digest != record.digest:
        return Mismatch(height=height, field="digest", recorded=record.digest, replayed=digest)
    counts.digests_checked += 1
    if record.state_root:
        root = engine.state_root()
        if root != record.state_root:
            return Mismatch(
                height=height, field="state_root", recorded=record.state_root, replayed=root
            )
        counts.roots_checked += 1
    return None
