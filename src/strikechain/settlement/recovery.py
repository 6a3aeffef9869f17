"""After a veto: roll the venue back to the last final root and rebuild what follows.

A veto says the operator committed a root nobody can reproduce from the posted data: the
operator's engine, not just its commitment, may be wrong. So recovery trusts neither: it
replays the block log from genesis into a fresh engine (the log is the venue's source of
truth), checks that the replayed state at the last live record's height is that record's root
(if not, the fault predates the last final batch, which the window has already accepted: a
halt for a person, not for code), and folds the blocks after it into batches again, ready to
re-commit. The node halts intake while this runs, then continues from the rebuilt engine.
"""

from __future__ import annotations

from collections.abc import Iterable

from strikechain.engine.engine import Engine
from strikechain.engine.events import BlockResult
from strikechain.engine.genesis import Genesis
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.txs import Block
from strikechain.settlement.batcher import Batcher, BatchPolicy, ClosedBatch
from strikechain.settlement.records import BatchRecord


class RecoveryHalt(InvariantViolation):
    """The replayed state does not reach the last live record: recovery cannot continue."""


class _Applied:
    __slots__ = ("block", "result")

    def __init__(self, block: Block, result: BlockResult) -> None:
        self.block = block
        self.result = result


def rebuild(
    genesis: Genesis,
    blocks: Iterable[Block],
    live: BatchRecord,
    policy: BatchPolicy | None = None,
) -> tuple[Engine, list[ClosedBatch]]:
    """Replay ``blocks`` (the log, from height 1) into a fresh engine; from ``live`` (the last
    record the chain still holds) on, fold them into batches. Returns the engine at the last
    block and the batches to re-commit (the last one closed at the log's end)."""
    engine = genesis.build_engine()
    closed: list[ClosedBatch] = []
    batcher: Batcher | None = None
    if live.last_block == engine.height:
        batcher = _start(engine, live, closed, policy)
    for block in blocks:
        result = engine.apply(block)
        if result.rejected:
            raise RecoveryHalt(f"the log's block {block.height} is refused: {result.reason}")
        if batcher is not None:
            batcher.on_block(_Applied(block, result))
        elif engine.height == live.last_block:
            batcher = _start(engine, live, closed, policy)
    if batcher is None:
        raise RecoveryHalt(f"the log ends before block {live.last_block}, the last live batch's")
    batcher.close()
    return engine, closed


def _start(
    engine: Engine, live: BatchRecord, closed: list[ClosedBatch], policy: BatchPolicy | None
) -> Batcher:
    root = engine.state_root()
    if root != live.state_root:
        raise RecoveryHalt(
            f"replayed to block {engine.height}, the state root is {root.hex()}, not the last "
            f"live batch's {live.state_root.hex()}: the fault predates it"
        )
    return Batcher(engine, live, closed.append, policy)
