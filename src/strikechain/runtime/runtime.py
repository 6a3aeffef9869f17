"""The runtime: inbox -> block cutting -> engine -> block log -> sinks.

The one driver both the lab and the node use. Its core does no I/O and reads no clock: every
call carries the injected time (``now_ns``), the log and the sinks are passed in, and the
choice of what is live and what is simulated is made by whoever composes it.

Per block (:meth:`Runtime.cut`):

1. the selection picks waiting transactions within the block's bounds;
2. the block is ``Block(height=engine.height + 1, timestamp_ns=max(now_ns,
   engine.timestamp_ns), transactions=...)``: block time never goes backwards even if the
   injected clock does;
3. the engine applies it; a block refused whole is a runtime bug (:class:`BlockRefused`);
4. every ``root_every`` blocks the state root is computed and attached to the result (with
   ``defer_roots``, the live node's setting, it is recorded after step 6 instead, by
   :meth:`Runtime.record_pending`, before the next block at the latest);
5. the block's record is appended to the log (and every ``snapshot_every`` blocks a snapshot,
   deferred as the root with ``defer_snapshots``): **before any sink sees the result**, so
   nothing is acknowledged that the log lacks;
6. the chosen transactions leave the inbox, the selection learns how full the block was (the
   base fee moves), and the sinks receive a :class:`Committed`.

A consensus model separates step 1 from the rest, as Tendermint does (the proposer picks the
transactions when it proposes; the block is applied when it commits, rounds later):
:meth:`Runtime.select` does step 1 alone and returns a :class:`Selected`, and
:meth:`Runtime.commit_selected` does steps 2 to 6 for it. ``cut`` is the two at once. A
selection stays valid until a block is committed: only a block takes transactions from the
inbox and only a block moves the base fee, so a value chosen in one round can still be
committed in a later round of the same height.

If anything raises between step 3 and step 5 the engine may be ahead of the log: the runtime
stops (:class:`RuntimeStopped` on every later call) and is rebuilt from the log
(:func:`strikechain.runtime.replay.rebuild`). A sink that raises stops it too: sinks are
in-process code, and an error there is a bug, not an outcome to log and carry on past.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Protocol

import msgspec

from strikechain.engine import codec
from strikechain.engine.events import BlockResult
from strikechain.engine.invariant import invariant
from strikechain.engine.limits import Limits
from strikechain.engine.txs import Block, Transaction
from strikechain.runtime.cutting import CutContext, CutReason, CutRule
from strikechain.runtime.errors import BlockRefused, RuntimeStopped
from strikechain.runtime.inbox import Inbox, Pending, Receipt
from strikechain.runtime.log import BlockLog, BlockRecord, SnapshotRecord
from strikechain.runtime.selection import BlockBounds, Selection


class StateMachine(Protocol):
    """What the runtime needs of an engine (:class:`strikechain.engine.engine.Engine`)."""

    height: int
    timestamp_ns: int
    limits: Limits

    def apply(self, block: Block) -> BlockResult: ...

    def state_root(self) -> bytes: ...


Snapshotter = Callable[[StateMachine], bytes]
"""Encodes an engine's whole state (default: :func:`engine_snapshot`)."""


def engine_snapshot(engine: StateMachine) -> bytes:
    """``encode_snapshot(capture(engine))`` from :mod:`strikechain.engine.snapshot`."""
    from strikechain.engine import snapshot

    return snapshot.encode_snapshot(snapshot.capture(engine))  # type: ignore[arg-type]


class BlockPolicy(msgspec.Struct, frozen=True):
    """How blocks are produced: which transactions (selection) and when (cutting)."""

    selection: Selection
    cutting: CutRule


class RuntimeConfig(msgspec.Struct, frozen=True, kw_only=True):
    inbox_capacity: int = 100_000
    """Transactions waiting at most; beyond it submissions are refused (``INBOX_FULL``)."""
    max_transactions_per_block: int = 10_000
    """The runtime's own block capacity; the effective one is the smaller of this and the
    engine's ``max_transactions_per_block``."""
    root_every: int = 0
    """Attach the state root every N blocks (0: never)."""
    defer_roots: bool = False
    """Record a due state root after the block's sinks ran instead of in its record: the
    block is appended without it, delivered (its acknowledgements leave), then the root goes
    to the log by :meth:`Runtime.record_pending` (the live node calls it between blocks),
    at the next cut at the latest. The root digests the whole state (the books' resting orders
    among it): tens of milliseconds a block that every transaction of it otherwise waited
    for. Sinks see no root on that block's result; a crash before the root is recorded leaves
    that block without one (recovery checks the roots it finds)."""
    snapshot_every: int = 0
    """Write a snapshot to the log every N blocks (0: never)."""
    defer_snapshots: bool = False
    """As ``defer_roots``, for snapshots: the block is appended and delivered, the snapshot
    written by :meth:`Runtime.record_pending` (or its steps, which share the encoding of the
    state's rest with a root due at the same height), at the next cut at the latest. A crash
    before leaves that block without one (recovery starts from an earlier snapshot)."""
    allow_empty: bool = True
    """Cut blocks with no transactions (block time still moves: expiries, funding)."""

    def __post_init__(self) -> None:
        invariant(self.inbox_capacity > 0, "the inbox holds at least one transaction")
        invariant(self.max_transactions_per_block > 0, "a block holds at least one transaction")
        invariant(self.root_every >= 0 and self.snapshot_every >= 0, "intervals are >= 0")


class Committed(msgspec.Struct, frozen=True, gc=False):
    """A block that is in the log, as sinks receive it. ``sequences[i]`` is the inbox sequence
    number (the sender's receipt) of ``block.transactions[i]``: events name transactions by
    that position (``event.tx``)."""

    block: Block
    result: BlockResult
    sequences: list[int]
    base_fee: int
    reason: str
    encoded: bytes = b""
    """``block`` in the canonical codec, as the log holds it."""


class Selected(msgspec.Struct, frozen=True, gc=False):
    """Transactions chosen for the block at ``height`` and not applied yet
    (:meth:`Runtime.select`), with the bounds and the base fee they were chosen under."""

    height: int
    pending: list[Pending]
    bounds: BlockBounds
    base_fee: int


class Sink(Protocol):
    """Receives every committed block, in height order, after the log has it."""

    def on_block(self, committed: Committed) -> None: ...


class Runtime:
    """Drives one engine: submit, poll (cut when the policy says), cut (external trigger)."""

    def __init__(
        self,
        engine: StateMachine,
        log: BlockLog,
        policy: BlockPolicy,
        config: RuntimeConfig | None = None,
        *,
        sinks: Iterable[Sink] = (),
        snapshotter: Snapshotter = engine_snapshot,
    ) -> None:
        self.config = config = config if config is not None else RuntimeConfig()
        invariant(
            log.last_height() == engine.height,
            f"the engine is at height {engine.height}, the log at {log.last_height()}",
        )
        invariant(log.get_genesis() is not None, "the block log has no genesis record")
        self.engine = engine
        self.log = log
        self.policy = policy
        self.inbox = Inbox(config.inbox_capacity)
        self.sinks: list[Sink] = list(sinks)
        self.snapshotter = snapshotter
        limits = engine.limits
        self.bounds = BlockBounds(
            min(limits.max_transactions_per_block, config.max_transactions_per_block),
            limits.max_oracle_reports_per_block,
        )
        self.last_cut_ns = engine.timestamp_ns
        self._pending_root = 0
        """The height whose deferred root waits to be recorded (0: none)."""
        self._pending_snapshot = 0
        """The height whose deferred snapshot waits to be written (0: none)."""
        self._owed_root = False
        self._owed_snapshot = False
        """A deferred root or snapshot postponed to the next block (:meth:`postpone_pending`)."""
        self._recording = 0
        """Taken roots or snapshots being encoded (:meth:`record_pending_in_steps`)."""
        self._stopped = False

    def add_sink(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def submit(self, tx: Transaction, now_ns: int) -> Receipt:
        """Put ``tx`` in the inbox, or raise :class:`RuntimeRejection` (``INBOX_FULL``...)."""
        if self._stopped:  # (tested here: a call per transaction costs more than the test)
            self._check_running()
        return self.inbox.submit(tx, now_ns)

    def poll(self, now_ns: int) -> BlockResult | None:
        """Cut a block if the cutting rule says one is due at ``now_ns``."""
        self._check_running()
        selection, inbox = self.policy.selection, self.inbox
        context = CutContext(now_ns, self.last_cut_ns, lambda: selection.ready(inbox))
        reason = self.policy.cutting.due(context)
        return None if reason is None else self.cut(now_ns, reason)

    def next_due_ns(self) -> int | None:
        """When a block falls due by time alone (for a scheduler's ``call_at``)."""
        return self.policy.cutting.next_due_ns(self.last_cut_ns)

    def state_root(self) -> bytes:
        """The engine's state root now, on demand."""
        self._check_running()
        return self.engine.state_root()

    @property
    def pending(self) -> bool:
        """A deferred state root or snapshot waits to be recorded (``defer_roots``,
        ``defer_snapshots``)."""
        return bool(self._pending_root or self._pending_snapshot)

    def record_pending(self) -> bool:
        """Compute and record the last block's deferred root and snapshot, whichever wait (the
        state has not moved since: no block is applied before they are recorded)."""
        height = self._pending_root or self._pending_snapshot
        if not height:
            return False
        engine = self.engine
        invariant(engine.height == height, f"the root of {height} at {engine.height}")
        if self._pending_root:
            self.log.set_state_root(height, engine.state_root())
            self._pending_root = 0
        if self._pending_snapshot:
            self.log.append_snapshot(SnapshotRecord(height, self.snapshotter(engine)))
            self._pending_snapshot = 0
        return True

    def postpone_pending(self) -> bool:
        """Move the deferred root and snapshot, whichever wait, to the next block (the live
        node, when that block falls due before their steps are done: recording them at once
        would pause it tens of milliseconds right then, and under load every later block with
        it). The log then has them at that next block's height; replay checks the roots where
        they are. False if nothing waited."""
        if not (self._pending_root or self._pending_snapshot):
            return False
        self._owed_root = self._owed_root or bool(self._pending_root)
        self._owed_snapshot = self._owed_snapshot or bool(self._pending_snapshot)
        self._pending_root = self._pending_snapshot = 0
        return True

    def record_pending_in_steps(self) -> Generator[None, None, None]:
        """:meth:`record_pending` in steps, a ``yield`` apart, for a caller that runs other work
        between them (the live node's event loop). The first step takes the state at once
        (:func:`~strikechain.engine.snapshot.begin_taking`, the ledger tree's root, the
        balances for a snapshot: a few milliseconds) and :attr:`pending` turns false; the
        rest (:attr:`recording`) reads the resting orders and levels a chunk at a time, copy
        on write, then encodes and hashes them, and writes the root and the snapshot for
        their height: blocks may be cut meanwhile, and the root lands on its block in the
        log afterwards. Steps not started before the next cut do nothing (the cut recorded
        what waited, at once). One taking at a time: finish (or close) these before the next.
        """
        height = self._pending_root or self._pending_snapshot
        if not height:
            return
        from strikechain.engine import snapshot
        from strikechain.engine.engine import Engine  # (the runtime takes any StateMachine)

        engine = self.engine
        if not isinstance(engine, Engine) or (
            self._pending_snapshot and self.snapshotter is not engine_snapshot
        ):
            self.record_pending()
            return
        invariant(engine.height == height, f"the root of {height} at {engine.height}")
        tree_root = engine.ledger_root() if self._pending_root else None
        balances = snapshot.take_balances(engine) if self._pending_snapshot else None
        taking = snapshot.begin_taking(engine)  # (released by its steps, done or closed)
        self._pending_root = self._pending_snapshot = 0
        self._recording += 1
        try:
            taken = yield from snapshot.finish_taking_in_steps(engine, taking)
            rest = yield from snapshot.encode_rest_in_steps(taken)
            if tree_root is not None:
                rest_hash = yield from snapshot.keccak_in_steps(rest)
                self.log.set_state_root(height, engine.combine_root(tree_root, rest_hash))
                if balances is not None:
                    yield
            if balances is not None:
                data = snapshot.encode_snapshot_with_rest(balances, rest)
                self.log.append_snapshot(SnapshotRecord(height, data))
        finally:
            self._recording -= 1

    @property
    def recording(self) -> bool:
        """A root or snapshot taken by :meth:`record_pending_in_steps` is still being read and
        encoded (and will be recorded if its steps are driven on; closing them drops it)."""
        return self._recording > 0

    def cut(self, now_ns: int, reason: CutReason = CutReason.EXTERNAL) -> BlockResult | None:
        """Cut, apply, log and deliver the next block now; None if there is nothing to put
        in it and empty blocks are off."""
        selected = self.select()
        if not selected.pending and not self.config.allow_empty:
            return None
        return self._apply(selected, now_ns, reason)

    def select(self, capacity: int | None = None) -> Selected:
        """Choose the next block's transactions without applying them (what a proposer does).
        ``capacity`` lowers the block's transaction bound (a congestion window); it never
        raises it above the runtime's own."""
        self._check_running()
        bounds = self.bounds
        if capacity is not None:
            invariant(capacity > 0, f"a block carries at least one transaction, not {capacity}")
            if capacity < bounds.capacity:
                bounds = BlockBounds(capacity, bounds.max_oracle_reports)
        selection = self.policy.selection
        chosen = selection.select(self.inbox, bounds)
        return Selected(self.engine.height + 1, chosen, bounds, selection.base_fee)

    def commit_selected(
        self, selected: Selected, now_ns: int, reason: CutReason = CutReason.EXTERNAL
    ) -> BlockResult:
        """Apply, log and deliver a block chosen earlier by :meth:`select` (what a consensus
        model does when the block commits), stamped ``max(now_ns, engine time)``. It must be
        for the next height, chosen under the current base fee, and its transactions must all
        still wait in the inbox; anything else is a bug of the caller. Empty blocks are
        committed whatever ``allow_empty`` says: that option is a rule of :meth:`cut`."""
        self._check_running()
        height = self.engine.height + 1
        invariant(selected.height == height, f"a selection for {selected.height}, not {height}")
        base_fee = self.policy.selection.base_fee
        invariant(selected.base_fee == base_fee, "the base fee moved since the selection")
        inbox = self.inbox
        for entry in selected.pending:
            if inbox.get(entry.sequence) is not entry:  # (the message built only on failure)
                invariant(False, f"{entry.sequence} no longer waits")
        return self._apply(selected, now_ns, reason)

    def _apply(self, selected: Selected, now_ns: int, reason: CutReason) -> BlockResult:
        """Steps 2 to 6 of the module docstring for a selection."""
        chosen = selected.pending
        engine = self.engine
        block = Block(
            height=engine.height + 1,
            timestamp_ns=max(now_ns, engine.timestamp_ns),
            transactions=[entry.tx for entry in chosen],
        )
        base_fee = selected.base_fee
        self.record_pending()  # the state they digest is about to move
        self._stopped = True  # until the log has the block
        result = engine.apply(block)
        if result.rejected:
            raise BlockRefused(block.height, result.rejected, result.reason)
        result, encoded = self._commit(block, result, base_fee, reason)
        self._stopped = False
        self.inbox.take(chosen)
        self.policy.selection.after_block(len(chosen), selected.bounds)
        self.last_cut_ns = now_ns
        self._deliver(block, result, chosen, base_fee, reason, encoded)
        return result

    def _commit(
        self, block: Block, result: BlockResult, base_fee: int, reason: CutReason
    ) -> tuple[BlockResult, bytes]:
        """Attach the root when due and append the block (and a snapshot when due); the
        result and the block's canonical bytes (the sinks may reuse them)."""
        height, config = block.height, self.config
        if (config.root_every and height % config.root_every == 0) or self._owed_root:
            self._owed_root = False
            if config.defer_roots:
                self._pending_root = height
            else:
                result = msgspec.structs.replace(result, state_root=self.engine.state_root())
        encoded = codec.encode_block(block)
        self.log.append(
            BlockRecord(
                height=height,
                block=encoded,
                digest=result.digest,
                state_root=result.state_root,
                timestamp_ns=block.timestamp_ns,
                transactions=len(block.transactions),
                events=len(result.events),
                base_fee=base_fee,
                cut_reason=reason,
            )
        )
        if (config.snapshot_every and height % config.snapshot_every == 0) or self._owed_snapshot:
            self._owed_snapshot = False
            if config.defer_snapshots:
                self._pending_snapshot = height
            else:
                self.log.append_snapshot(SnapshotRecord(height, self.snapshotter(self.engine)))
        return result, encoded

    def _deliver(
        self,
        block: Block,
        result: BlockResult,
        chosen: list[Pending],
        base_fee: int,
        reason: CutReason,
        encoded: bytes,
    ) -> None:
        if not self.sinks:
            return
        sequences = [entry.sequence for entry in chosen]
        committed = Committed(block, result, sequences, base_fee, reason, encoded)
        self._stopped = True  # a sink that raises is a bug: stop
        for sink in self.sinks:
            sink.on_block(committed)
        self._stopped = False

    def _check_running(self) -> None:
        if self._stopped:
            raise RuntimeStopped("an earlier block failed before it was logged or delivered")
