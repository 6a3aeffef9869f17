"""``strikechain bench node-core``: the node's block path, with the log synced and the batcher on.

The workload is ``bench engine``'s stream with margin on (1,000 transactions a block: post-only
adds, cancels and IOC takers on ten perpetuals, every account funded on every market, signed
oracle reports every fourth block, verified at ingress before timing as the node does). Each
block goes through the node's runtime: the transactions into the inbox, the block cut and
applied, its record appended to a SQLite log in the data directory with ``sync = "full"`` (an
fsync per block, what the node acknowledges after), a state root every 100 blocks, and the
batcher (a batch per 100 blocks: blocks encoded, compressed, the state root and exit total at
the close; the chain commit itself runs in another process and is not on this path).

- ``blocks_per_s_at_1000_tx``: blocks per wall second over the run (target at least 50).
- ``log_sync_p99_ms`` / ``_p50_ms``: the durable append of one 1,000-transaction block (the
  SQLite commit with its fsync), measured inside the run.
- References, the same run with the sync relaxed and without a disk:
  ``blocks_per_s_sync_normal`` (the WAL fsynced at checkpoints only) and
  ``blocks_per_s_memory_log``; ``batcher_ms_per_block`` is the batcher's share.

The file system matters: the data directory is a temporary folder on the machine's disk
(``context`` names it); a tmpfs would hide the fsync.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from strikechain.bench.engine import Workload, margin_venue
from strikechain.engine.genesis import Genesis
from strikechain.engine.oracle import OracleReport, ReportVerifier
from strikechain.engine.txs import Block
from strikechain.runtime.cutting import CutReason, External
from strikechain.runtime.log import BlockLog, MemoryLog
from strikechain.runtime.runtime import BlockPolicy, Committed, Runtime, RuntimeConfig
from strikechain.runtime.selection import ArrivalOrder
from strikechain.runtime.sqlite_log import SqliteLog, Sync
from strikechain.settlement.batcher import Batcher, BatchPolicy, ClosedBatch
from strikechain.settlement.records import genesis_record

BLOCKS = 200
BATCH_BLOCKS = 100


class _TimedLog:
    """Wraps a block log; times each append."""

    def __init__(self, log: BlockLog) -> None:
        self.log = log
        self.appends: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)

    def append(self, record: Any) -> None:
        start = time.perf_counter()
        self.log.append(record)
        self.appends.append(time.perf_counter() - start)


class _TimedBatcher:
    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher
        self.seconds = 0.0

    def on_block(self, committed: Committed) -> None:
        start = time.perf_counter()
        self.batcher.on_block(committed)
        self.seconds += time.perf_counter() - start


def _run(workload: Workload, log: BlockLog) -> tuple[float, _TimedLog, _TimedBatcher]:
    verifier = ReportVerifier()
    for block in workload.margin_blocks:
        for tx in block.transactions:
            if type(tx) is OracleReport:
                verifier.signer(tx)
    genesis = Genesis(venue=margin_venue())
    log.write_genesis(genesis)
    engine = genesis.build_engine(verifier)
    timed = _TimedLog(log)
    closed: list[ClosedBatch] = []

    def encoded(batch: ClosedBatch) -> None:
        # A node compresses a batch's data on its chain thread; on this one core it is
        # timed with the blocks.
        closed.append(batch)
        assert batch.data

    start = genesis_record(engine.state_root(), 0, 0)
    batcher = _TimedBatcher(Batcher(engine, start, encoded, BatchPolicy(max_blocks=BATCH_BLOCKS)))
    runtime = Runtime(
        engine,
        timed,
        BlockPolicy(ArrivalOrder(), External()),
        RuntimeConfig(max_transactions_per_block=10_000, root_every=100),
        sinks=[batcher],
    )
    blocks: list[Block] = workload.margin_blocks
    begin = time.perf_counter()
    for block in blocks:
        for tx in block.transactions:
            runtime.submit(tx, block.timestamp_ns)
        runtime.cut(block.timestamp_ns, CutReason.EXTERNAL)
    seconds = time.perf_counter() - begin
    batcher.batcher.close()
    return seconds, timed, batcher


def run() -> dict[str, float]:
    workload = Workload(blocks=BLOCKS)
    blocks = len(workload.margin_blocks)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="strikechain-node-core-", dir=Path.cwd()) as folder:
        for name, sync in (("full", Sync.FULL), ("normal", Sync.NORMAL)):
            with SqliteLog(Path(folder) / f"{name}.sqlite", sync=sync) as log:
                seconds, timed, batcher = _run(workload, log)
            appends = np.array(timed.appends) * 1e3
            if name == "full":
                results["blocks_per_s_at_1000_tx"] = blocks / seconds
                results["log_sync_p99_ms"] = float(np.percentile(appends, 99))
                results["log_sync_p50_ms"] = float(np.percentile(appends, 50))
                results["batcher_ms_per_block"] = batcher.seconds * 1e3 / blocks
            else:
                results["blocks_per_s_sync_normal"] = blocks / seconds
                results["log_append_p99_ms_sync_normal"] = float(np.percentile(appends, 99))
    seconds, _, _ = _run(workload, MemoryLog())
    results["blocks_per_s_memory_log"] = blocks / seconds
    results["transactions_per_block"] = (
        sum(len(b.transactions) for b in workload.margin_blocks) / blocks
    )
    return results
