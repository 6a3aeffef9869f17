"""The live node: the runtime with live edges (wall clock, disk, chain), as an asyncio service.

Composition (:class:`Node`): a SQLite block log in the data directory (WAL; ``sync = "full"``
fsyncs every block), the engine rebuilt from it on start, the runtime's bounded inbox, a block
timer, and settlement: the batcher following the blocks (:meth:`Node.follow`), batches
committed to the chain by a separate task (the embedded chain runs in a child process and is
journaled in the data directory; a JSON-RPC chain is any endpoint), deposits and forced
withdrawals relayed from the contract's events once they are ``confirmations`` deep.

Acknowledgement. :meth:`Node.submit` returns once the block holding the transaction is in the
log: the runtime appends (and with ``sync = "full"`` fsyncs) a block's record before any sink
sees its result, and the node resolves a submission only from its sink. So an acknowledged
transaction survives a crash, and a transaction lost in a crash (still in the inbox, or in a
block not yet synced) was never acknowledged: its sender gets an error or nothing, and may
resend.

Recovery (:meth:`Node.start` on an existing data directory): the latest snapshot, then every
later block replayed with each recorded root checked (:func:`strikechain.runtime.replay.rebuild`);
settlement resumes from the last batch the chain still holds: the blocks after it are
re-batched from the log (:func:`strikechain.settlement.recovery.rebuild`) and committed.

Failures. A full inbox refuses the submission (``INBOX_FULL``) and changes nothing. A log write
that fails (a full disk) stops the runtime before any sink sees the block: the node halts
(:attr:`Node.halted` says why), acknowledges nothing more, and a restart recovers from the log.
A chain that does not answer delays settlement only: the batch stays queued, the error is
counted and logged, and the next attempt retries; trading goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import msgspec

from strikechain.engine.engine import Engine
from strikechain.engine.events import Event
from strikechain.engine.txs import ListInstrument, Transaction
from strikechain.node.config import NodeConfig
from strikechain.node.heap import HeapPolicy
from strikechain.node.listing import LISTING_INTERVAL_S, due_options
from strikechain.node.metrics import NodeMetrics
from strikechain.runtime.cutting import BySlot, CutReason
from strikechain.runtime.errors import RuntimeRejection, RuntimeStopped
from strikechain.runtime.replay import rebuild as rebuild_engine
from strikechain.runtime.runtime import BlockPolicy, Committed, Runtime, RuntimeConfig, Sink
from strikechain.runtime.selection import ArrivalOrder
from strikechain.runtime.sqlite_log import SqliteLog, Sync
from strikechain.settlement.batcher import Batcher, BatchPolicy, ClosedBatch
from strikechain.settlement.chain import Chain
from strikechain.settlement.client import Deployment, Settlement, SettlementParams, deploy
from strikechain.settlement.embedded import BoaChain, ChainProcess
from strikechain.settlement.operator import Operator
from strikechain.settlement.records import genesis_record
from strikechain.settlement.recovery import rebuild as rebatch

log = logging.getLogger("strikechain.node")
T = TypeVar("T")

OPERATOR_ACCOUNT: Final = "operator"
DEPLOYMENT_FILE: Final = "settlement.json"
RELAY_INTERVAL_S: Final = 0.5
NANOS_PER_SECOND: Final = 1_000_000_000
DRAIN_PASSES: Final = 3
"""Passes of the event loop a due block waits for before it is cut (within ``cut_grace_ms``):
what was read before the due time but not yet submitted gets in. A WebSocket order is
submitted in the read that brings it (one pass polls the sockets); an HTTP request takes a
few passes through ASGI. Waiting until the input goes quiet instead never ends under load
before the grace does: every block was cut the whole grace late."""


POSTPONED_MAX: Final = 1
"""Blocks a deferred root or snapshot not started yet may be moved on by
(:meth:`Node._postpone_or_finish`) before it is taken at once. Its first step takes the state
(a few milliseconds: the rest is read copy on write while blocks go on), so this only comes
into play when the next block falls due before the steps could start at all."""
DEFERRED_SECONDS_PER_PASS: Final = 0.004
"""How long a deferred root or snapshot runs its steps (~1.5-3 ms each) in one pass of the
loop before the sockets are served again. A step a pass spread a root over ~20 passes; while
the node reads the backlog of a block's answering time, passes are long and the steps still
ran when the next block fell due, then all at once before it (cut 10-14 ms late)."""

CHECKPOINT_INTERVAL_S: Final = 1.0
"""How often the block log's write-ahead log is copied into its file, on a thread of its own
(:class:`~strikechain.runtime.sqlite_log.SqliteLog`): SQLite's own checkpoints ran inside a
commit every ~60 blocks, that block's cut 10 ms longer."""
COLLECTION_SKIPS_MAX: Final = 50
"""Blocks a due collection may wait for room between two blocks before it runs anyway (a node
that never has half an interval to spare still collects, every 5 s later at most)."""
CHAIN_THREAD_NICE: Final = 10
"""How much lower the chain thread's scheduling priority is than the node's (Linux: a thread's
own nice value). Its work is background: a closed batch's posted data is compressed there
(zlib, without the interpreter lock: ~1.1 s of a core for a minute of blocks at 14k orders a
second), and at the same priority on the node's core it took half the core for ~2.5 s, every
acknowledgement of those seconds twice as slow (p99 0.4-0.8 s over a 30 s window that held a
batch close). At nice 10 it gets about a tenth of the core while the loop has work, the rest of
the core's idle time otherwise."""
RECORDING_PASSES_PER_BLOCK: Final = 1
"""Passes of deferred steps a block gives a root or snapshot once its state is taken (reading
its orders and levels, encoding, hashing). Under load the node has a fifth of each interval to
spare, and every millisecond of extra work in a block is a backlog of messages that takes
about five to clear: ~30 ms of it (33k orders resting) in one block left the next block cut
~20 ms late. A pass a block spreads it over several blocks; a root lands that much later."""


class Ack(msgspec.Struct, frozen=True, kw_only=True):
    """A transaction in the log: its block, its position there, and the events it caused
    (a ``Rejected`` event if the engine refused it)."""

    height: int
    index: int
    sequence: int
    timestamp_ns: int
    events: list[Event]


class AckFuture(asyncio.Future[Ack]):
    """A submission's acknowledgement (:meth:`Node.submit_nowait`): resolved by its block, or
    failed by a halt or a stop, and in each case announced to the node's acknowledgement
    listeners (:meth:`Node.on_acknowledged`) too. The node never cancels one."""


AckListener = Callable[[list[AckFuture]], None]
"""Called once per block (and per halt or stop) with the futures it resolved, in order."""


class NodeHalted(RuntimeError):
    """The node stopped acknowledging: ``reason`` says why (a failed log write...)."""

    code: Final = "NODE_HALTED"


class Node:
    """One venue, live (see the module docstring)."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        clock: Callable[[], int] = time.time_ns,
        chain_factory: Callable[[], Chain] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self._chain_factory = chain_factory
        self.runtime: Runtime | None = None
        self.log: SqliteLog | None = None
        self.chain: Chain | None = None
        self.settlement: Settlement | None = None
        self.operator: Operator | None = None
        self.batcher: Batcher | None = None
        self.halted: str | None = None
        self._waiting: dict[int, tuple[AckFuture, int]] = {}
        """Submissions not acknowledged yet: inbox sequence -> (future, submitted at ns)."""
        self._ack_listeners: list[AckListener] = []
        self._followers: list[Sink] = []
        """Sinks that receive a block after its acknowledgements are out (:meth:`follow`)."""
        self._before_cut: list[Callable[[], None]] = []
        self.metrics = NodeMetrics()
        self._last_block_ns: int | None = None
        self._batches: deque[ClosedBatch] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._chain_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="chain", initializer=_lower_priority
        )
        """Every chain call runs here, one at a time: a chain (and its process pipe) serves one
        caller, and the event loop never waits on it."""
        self.heap = HeapPolicy(config.node.gc_interval_s, config.node.gc_full_interval_s)
        self.acks = 0
        self._grace_ns = min(
            int(config.node.cut_grace_ms * 1_000_000), config.node.block_interval_ns
        )
        self.chain_errors = 0
        self._last_transactions = 0
        self._overdue_cut = False
        """A cut of an overdue block is scheduled (after one more poll of the sockets)."""
        self._postponed = 0
        """Blocks the deferred root or snapshot in progress was moved on by, in a row."""
        self._collection_skips = 0
        """Blocks a due collection waited for room, in a row (:meth:`_collect_between_blocks`)."""
        self._deferred_steps: Generator[None, None, None] | None = None
        """The deferred state root or snapshot being taken or encoded in steps
        (:meth:`_record_deferred_in_steps`)."""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        assert self.runtime is not None, "the node has not started"
        engine = self.runtime.engine
        assert isinstance(engine, Engine)
        return engine

    async def start(self) -> None:
        """Open (or create) the data directory, recover, and start the block timer and the
        settlement tasks."""
        config = self.config
        directory = config.data_dir
        directory.mkdir(parents=True, exist_ok=True)
        sync = Sync.FULL if config.node.sync == "full" else Sync.NORMAL
        self.log = block_log = _TimedLog(
            directory / "blocks.sqlite", sync=sync, checkpoint_interval_s=CHECKPOINT_INTERVAL_S
        )
        fresh = block_log.get_genesis() is None
        if fresh:
            block_log.write_genesis(config.genesis())
        engine = rebuild_engine(block_log)
        if config.settlement.enabled:
            engine = await self.on_chain(self._start_settlement, engine)
        node = config.node
        self.runtime = Runtime(
            engine,
            block_log,
            BlockPolicy(ArrivalOrder(), BySlot(node.block_interval_ns)),
            RuntimeConfig(
                inbox_capacity=node.inbox_capacity,
                max_transactions_per_block=node.max_transactions_per_block,
                root_every=node.root_every,
                defer_roots=True,
                defer_snapshots=True,
                snapshot_every=node.snapshot_every,
            ),
            sinks=[self],
        )
        if self.batcher is not None:
            self.follow(self.batcher)
        if fresh:
            for instrument in config.listings():
                self.runtime.submit(
                    ListInstrument(account=OPERATOR_ACCOUNT, instrument=instrument), self.clock()
                )
        self.heap.start()
        self._tasks.append(asyncio.create_task(self._blocks(), name="blocks"))
        if config.option_sections():
            self._tasks.append(asyncio.create_task(self._list_options(), name="options"))
        if self.settlement is not None:
            self._tasks.append(asyncio.create_task(self._settle(), name="settle"))
            self._tasks.append(asyncio.create_task(self._relay(), name="relay"))
        log.info(
            "node started",
            extra={"height": engine.height, "fresh": fresh, "data_dir": str(directory)},
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.runtime is not None and self.log is not None:
            self._finish_deferred()  # a root or snapshot still deferred is not lost on a stop
        self.heap.stop()
        if self.chain is not None:
            await self.on_chain(self.chain.close)
            self.chain = None
        self._chain_thread.shutdown(wait=True)
        if self.log is not None:
            self.log.close()
            self.log = None
        self._fail_waiting(NodeHalted("the node stopped before the block"))

    async def on_chain(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` on the chain thread (chain calls are serialized there)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._chain_thread, functools.partial(function, *args)
        )

    # -- submissions -------------------------------------------------------------------------

    def submit_nowait(self, tx: Transaction) -> AckFuture:
        """Queue ``tx``; the future resolves with its :class:`Ack` once its block is logged.
        Raises ``RuntimeRejection`` (``INBOX_FULL``...) or :class:`NodeHalted` at once."""
        if self.halted is not None:
            raise NodeHalted(self.halted)
        runtime = self.runtime
        assert runtime is not None, "the node has not started"
        now = self.clock()
        due = runtime.next_due_ns()
        if due is not None and now >= due + self._grace_ns and not self._overdue_cut:
            # A block is overdue (past the grace the timer drains its input in): cut it after
            # one more poll of the sockets, as the timer would. Not here and now: the messages
            # this pass reads after this one, and those that arrived while it ran, arrived
            # before the cut; cutting here would push them to the next block, a whole
            # interval more for them.
            self._overdue_cut = True
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._cut_overdue)
        receipt = runtime.submit(tx, now)
        future = AckFuture()
        self._waiting[receipt.sequence] = (future, now)
        return future

    def on_acknowledged(self, listener: AckListener) -> None:
        """Have ``listener`` called with each block's resolved submissions, in the block's
        order, in the loop's pass after the block is cut (all its sinks have run), before the
        callbacks the futures themselves schedule. A caller with many submissions waiting (a
        WebSocket connection) can answer them from here, a connection at a time, instead of
        through a done callback each: a block resolves hundreds, and each callback is a
        scheduled handle (~2 us apiece inside the cut, ~1 us more to run)."""
        self._ack_listeners.append(listener)

    def follow(self, sink: Sink) -> None:
        """Have ``sink`` receive each block after its acknowledgements are announced (in the
        loop's pass after the cut, right after :meth:`on_acknowledged`'s listeners, before
        anything else runs: the next message read, a request's task woken by its block, the
        next cut), not inside the cut as the runtime's own sinks do: for what neither an
        answer nor a notification of the block reads (the settlement batcher), off the path of
        the orders that waited longest for it. A follower that raises halts the node, as a
        runtime sink that raises stops the runtime."""
        self._followers.append(sink)

    def before_cut(self, hook: Callable[[], None]) -> None:
        """Have ``hook`` called at the start of every cut: a front end submits there what it
        has read but not submitted yet (those messages arrived before the cut)."""
        self._before_cut.append(hook)

    def _announce(self, futures: list[AckFuture]) -> None:
        for listener in self._ack_listeners:
            listener(futures)

    def _follow(self, committed: Committed) -> None:
        for sink in self._followers:
            try:
                sink.on_block(committed)
            except Exception as error:  # a bug: nothing more is cut on a state it missed
                log.exception("a block follower failed", extra={"height": committed.block.height})
                self._halt(f"block {committed.block.height} was not followed: {error!r}")
                return

    async def submit(self, tx: Transaction) -> Ack:
        return await self.submit_nowait(tx)

    def on_block(self, committed: Committed) -> None:
        """The runtime's sink: the block is in the log; acknowledge its transactions."""
        self._last_transactions = len(committed.block.transactions)
        events: dict[int, list[Event]] = {}
        for event in committed.result.events:
            events.setdefault(event.tx, []).append(event)
        block = committed.block
        now = self.clock()
        latencies: list[float] = []
        resolved: list[AckFuture] = []
        # Scheduled first: before the callbacks set_result schedules (a task woken by its
        # acknowledgement finds the followers up to date with the block).
        loop = asyncio.get_running_loop()
        if self._ack_listeners:
            loop.call_soon(self._announce, resolved)
        if self._followers:
            loop.call_soon(self._follow, committed)
        for index, sequence in enumerate(committed.sequences):
            entry = self._waiting.pop(sequence, None)
            if entry is not None and not entry[0].done():
                latencies.append(max(0, now - entry[1]) / NANOS_PER_SECOND)
                resolved.append(entry[0])
                entry[0].set_result(
                    Ack(
                        height=block.height,
                        index=index,
                        sequence=sequence,
                        timestamp_ns=block.timestamp_ns,
                        events=events.get(index, []),
                    )
                )
                self.acks += 1
        self.metrics.on_acks(latencies)

    async def _list_options(self) -> None:
        """Keep the configuration's option expiries listed as time goes by
        (:mod:`strikechain.node.listing`)."""
        while True:
            for instrument in due_options(self.config, self.engine, self.clock()):
                # A full inbox or a halted node refuses: the next pass tries again.
                with contextlib.suppress(RuntimeRejection, NodeHalted):
                    self.submit_nowait(
                        ListInstrument(account=OPERATOR_ACCOUNT, instrument=instrument)
                    )
            await asyncio.sleep(LISTING_INTERVAL_S)

    # -- the block timer ---------------------------------------------------------------------

    async def _blocks(self) -> None:
        runtime = self.runtime
        assert runtime is not None
        interval_s = self.config.node.block_interval_ns / NANOS_PER_SECOND
        while True:
            if self.halted is not None:  # nothing more is cut: wait for the operator
                await asyncio.sleep(interval_s)
                continue
            due = runtime.next_due_ns()
            now = self.clock()
            if due is not None and due > now:
                await asyncio.sleep(min((due - now) / NANOS_PER_SECOND, interval_s))
                continue
            # Due: first take what has already arrived (a message read but not yet submitted
            # would otherwise wait a whole interval more): a few passes of the loop, within
            # the grace; one at least, however late: a block found overdue after a long pause
            # of the loop (a state root, a collection) would otherwise leave out everything
            # that arrived during the pause, all before its due time.
            deadline = due + self._grace_ns if due is not None else now
            for _ in range(DRAIN_PASSES):
                await asyncio.sleep(0)
                if self.clock() >= deadline:
                    break
            due = runtime.next_due_ns()
            if due is not None and due > self.clock():
                continue  # a submission past the grace cut it meanwhile
            self.cut_block()
            await asyncio.sleep(0)
            # The block's answers are out: collect the young objects now, not in the middle of
            # the next block's cut (see strikechain.node.heap).
            self.heap.collect_young()
            if runtime.pending or self._deferred_steps is not None:
                # The block's answers are out (they ran in the pass above; two passes let the
                # gathered WebSocket writes go too): now its state root or snapshot (or the
                # encoding of one taken earlier), off their path, in steps with the sockets
                # served between them.
                await asyncio.sleep(0)
                await self._record_deferred_in_steps()
            if self.heap.due():
                await self._collect_between_blocks()

    async def _collect_between_blocks(self) -> None:
        """The scheduled collection (:mod:`strikechain.node.heap`): a third of an interval
        after the cut, once the block's answers are out, if the next block is still half an
        interval away (a collection walks what became long-lived since the last one: 10-40
        ms under load); else it waits for the next block, at most :data:`COLLECTION_SKIPS_MAX`
        times in a row. Slept a third of an interval from wherever the block's work ended, it
        ran into the next cut (40 ms late) whenever that work was long (a batch closing)."""
        runtime = self.runtime
        assert runtime is not None
        interval_ns = self.config.node.block_interval_ns
        wake_ns = self.engine.timestamp_ns + interval_ns // 3
        now = self.clock()
        if wake_ns > now:
            await asyncio.sleep((wake_ns - now) / NANOS_PER_SECOND)
        due = runtime.next_due_ns()
        room = due is None or due - self.clock() >= interval_ns // 2
        if not room and self._collection_skips < COLLECTION_SKIPS_MAX:
            self._collection_skips += 1
            return
        self._collection_skips = 0
        collection = self.heap.collect()
        self.metrics.on_collection(collection.pause_s, collection.frozen)

    def _cut_overdue(self) -> None:
        self._overdue_cut = False
        runtime = self.runtime
        assert runtime is not None
        due = runtime.next_due_ns()
        if due is not None and self.clock() >= due:
            self.cut_block()

    def cut_block(self) -> None:
        """Cut, apply, log and acknowledge a block now (the timer calls this)."""
        runtime = self.runtime
        assert runtime is not None
        for hook in self._before_cut:
            hook()
        self._postpone_or_finish()  # (the cut would take them again from scratch, at once)
        if self.halted is not None:
            return
        try:
            started = time.perf_counter()
            runtime.cut(self.clock(), CutReason.INTERVAL)
            seconds = time.perf_counter() - started
        except RuntimeStopped as error:
            self._halt(f"the runtime stopped: {error}")
        except Exception as error:  # the log refused a write (a full disk...): halt, recover later
            self._halt(f"block {runtime.engine.height + 1} was not logged: {error!r}")
            return
        engine = self.engine
        previous, self._last_block_ns = self._last_block_ns, engine.timestamp_ns
        interval = 0.0 if previous is None else (engine.timestamp_ns - previous) / NANOS_PER_SECOND
        sync = self._sync_seconds()
        self.metrics.on_block(max(interval, 0.0), self._last_transactions, min(sync, seconds))
        self.metrics.set_inbox(len(runtime.inbox))
        self.metrics.set_backlog(len(engine.liquidation_queue))

    async def _record_deferred_in_steps(self) -> None:
        """The deferred state root or snapshot (:meth:`Runtime.record_pending_in_steps`),
        :data:`DEFERRED_SECONDS_PER_PASS` of its steps per pass of the loop,
        :data:`RECORDING_PASSES_PER_BLOCK` passes a block: its first step takes the state,
        the rest goes on across blocks. Not started when the next block falls due, it is moved
        to that block, or taken at once (:meth:`_postpone_or_finish`)."""
        runtime = self.runtime
        assert runtime is not None
        recording_passes = 0
        while self.halted is None:
            if self._deferred_steps is None:
                if not runtime.pending:
                    return
                self._deferred_steps = runtime.record_pending_in_steps()
            due = runtime.next_due_ns()
            if due is not None and self.clock() >= due:
                self._postpone_or_finish()
                return
            if not runtime.pending:  # taken: a pass a block, the rest after the next
                if recording_passes == RECORDING_PASSES_PER_BLOCK:
                    return
                recording_passes += 1
            started = time.perf_counter()
            while time.perf_counter() - started < DEFERRED_SECONDS_PER_PASS:
                if not self._deferred_step():
                    break
            await asyncio.sleep(0)

    def _deferred_step(self) -> bool:
        """One step of the deferred work in progress; False once it is recorded (or the node
        halted)."""
        steps = self._deferred_steps
        if steps is None:
            return False
        if self.halted is not None:  # nothing more goes to the log
            self._deferred_steps = None
            return False
        try:
            next(steps)
            return True
        except StopIteration:
            self._deferred_steps = None
            if self.runtime is not None and not self.runtime.pending:
                self._postponed = 0
            return False
        except Exception as error:  # the log refused the write: halt, as for a block
            self._deferred_steps = None
            runtime = self.runtime
            height = runtime.engine.height if runtime is not None else "?"
            self._halt(f"the root or snapshot of block {height} was not logged: {error!r}")
            return False

    def _postpone_or_finish(self) -> None:
        """A block falls due while a deferred root or snapshot is not taken yet: move it to
        that block (the runtime records it after it instead) up to :data:`POSTPONED_MAX`
        times in a row, then take it now (the rest goes on in steps after the block). One
        taken already is left to its steps; if it is still being recorded when another falls
        due, it is finished first (one taking at a time)."""
        runtime = self.runtime
        if runtime is None or not runtime.pending:
            return
        if runtime.recording:  # an older one, not done after a whole root_every
            self._drain_deferred()
        steps, self._deferred_steps = self._deferred_steps, None
        if self._postponed < POSTPONED_MAX:
            if steps is not None:
                steps.close()  # (not started: nothing taken yet)
            runtime.postpone_pending()
            self._postponed += 1
            self.metrics.on_postponed()
            return
        self._deferred_steps = steps if steps is not None else runtime.record_pending_in_steps()
        while runtime.pending and self._deferred_step():
            pass

    def _drain_deferred(self) -> None:
        """Run the deferred steps in progress to their end, at once."""
        while self._deferred_step():
            pass

    def _finish_deferred(self) -> None:
        """Record the deferred state roots and snapshots now: the steps in progress, from
        where they are, then whatever still waits, whole."""
        runtime = self.runtime
        self._drain_deferred()
        if runtime is not None and runtime.pending and self.halted is None:
            self._deferred_steps = runtime.record_pending_in_steps()
            self._drain_deferred()

    def _sync_seconds(self) -> float:
        timed = self.log
        return timed.last_append_s if isinstance(timed, _TimedLog) else 0.0

    def _halt(self, reason: str) -> None:
        self.halted = reason
        log.error("node halted", extra={"reason": reason})
        self._fail_waiting(NodeHalted(reason))

    def _fail_waiting(self, error: NodeHalted) -> None:
        failed = [future for future, _ in self._waiting.values() if not future.done()]
        self._waiting.clear()
        for future in failed:
            future.set_exception(error)
        if failed and self._ack_listeners:
            asyncio.get_running_loop().call_soon(self._announce, failed)

    # -- settlement --------------------------------------------------------------------------

    def _start_settlement(self, engine: Engine) -> Engine:
        """Connect the chain, deploy or load the deployment, and resume batching from the last
        batch the chain holds (re-batching the log's later blocks). Runs in a worker thread."""
        config, block_log = self.config, self.log
        assert block_log is not None
        section = config.settlement
        self.chain = chain = self._connect()
        path = config.data_dir / DEPLOYMENT_FILE
        genesis = block_log.get_genesis()
        assert genesis is not None
        if path.exists():
            deployment = msgspec.json.decode(path.read_bytes(), type=Deployment)
        else:
            if engine.height != 0:
                raise NodeHalted("the log has blocks but no settlement deployment is recorded")
            start = genesis_record(engine.state_root(), engine.height, engine.timestamp_ns)
            self._catch_up_clock(chain)
            deployment = deploy(
                chain,
                operator=self._operator_address(),
                governor=self._operator_address(),
                genesis=start,
                params=SettlementParams(challenge_window_s=section.challenge_window_s),
            )
            path.write_bytes(msgspec.json.encode(deployment))
        self.settlement = settlement = Settlement(chain, deployment)
        self.operator = operator = Operator(settlement, confirmations=section.confirmations)
        live = settlement.records()
        operator.records = list(live)
        operator.next_deposit = engine.next_deposit_id
        operator.next_forced = engine.next_forced_id
        policy = BatchPolicy(
            max_blocks=section.batch_blocks,
            max_interval_ns=int(section.batch_interval_s * NANOS_PER_SECOND),
        )
        tip = live[-1]
        if tip.last_block != engine.height:
            # A reader of its own: this runs in a worker thread, the log's connection is the
            # event loop's (SQLite's WAL lets both read).
            with SqliteLog(config.data_dir / "blocks.sqlite") as reader:
                blocks = (_decode(record.block) for record in reader.records(1))
                engine, pending = rebatch(genesis, blocks, tip, policy)
            self._batches.extend(pending)
            tip = pending[-1].record if pending else tip
        self.batcher = Batcher(engine, tip, self._batches.append, policy)
        return engine

    def _connect(self) -> Chain:
        if self._chain_factory is not None:
            return self._chain_factory()
        section = self.config.settlement
        if section.chain == "embedded":
            journal = self.config.data_dir / "chain.journal"
            factory = functools.partial(
                BoaChain, timestamp=self.clock() // NANOS_PER_SECOND, journal=str(journal)
            )
            return ChainProcess(factory, timeout_s=section.chain_timeout_s)
        from strikechain.engine.signing import address_of
        from strikechain.settlement.rpc import RpcChain

        key = bytes.fromhex(section.operator_key.removeprefix("0x"))
        return RpcChain(section.chain, keys={address_of(key): key} if key else {})

    def _operator_address(self) -> str:
        key = self.config.settlement.operator_key
        if key:
            from strikechain.engine.signing import address_of

            return address_of(bytes.fromhex(key.removeprefix("0x"))).lower()
        return "0x" + "5c" * 20  # the embedded chain sends as anyone

    def _catch_up_clock(self, chain: Chain) -> None:
        """The embedded chain's clock follows the node's (a real chain keeps its own)."""
        if self.config.settlement.chain == "embedded":
            behind = -(-self.clock() // NANOS_PER_SECOND) - chain.timestamp()
            if behind > 0:
                chain.advance(behind)

    async def _settle(self) -> None:
        """Commit queued batches in order; a chain error leaves the batch queued."""
        while True:
            if not self._batches:
                await asyncio.sleep(0.05)
                continue
            batch = self._batches[0]
            try:
                await self.on_chain(self._commit, batch)
            except Exception as error:  # the chain did not answer or refused: retry later
                self.chain_errors += 1
                self.metrics.on_chain_error("commit")
                log.warning(
                    "batch not committed",
                    extra={"batch": batch.record.number, "error": repr(error)},
                )
                await asyncio.sleep(1.0)
                continue
            self._batches.popleft()

    def _commit(self, batch: ClosedBatch) -> None:
        operator, chain = self.operator, self.chain
        assert operator is not None
        assert chain is not None
        self._catch_up_clock(chain)
        committed = operator.on_batch(batch)
        self.metrics.on_batch(committed.gas)
        log.info(
            "batch committed",
            extra={
                "batch": committed.record.number,
                "gas": committed.gas,
                "bytes": committed.posted_bytes,
            },
        )

    async def _relay(self) -> None:
        """Relay confirmed deposits and forced withdrawals into the engine."""
        while True:
            await asyncio.sleep(RELAY_INTERVAL_S)
            operator = self.operator
            assert operator is not None
            try:
                txs = await self.on_chain(operator.relay)
            except Exception as error:
                self.chain_errors += 1
                self.metrics.on_chain_error("relay")
                log.warning("relay failed", extra={"error": repr(error)})
                continue
            for tx in txs:
                try:
                    self.submit_nowait(tx)
                except (RuntimeRejection, NodeHalted) as error:
                    log.warning("relay refused", extra={"error": repr(error)})

    # -- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        runtime = self.runtime
        engine = self.engine
        return {
            "height": engine.height,
            "timestamp_ns": engine.timestamp_ns,
            "inbox": len(runtime.inbox) if runtime is not None else 0,
            "acks": self.acks,
            "halted": self.halted,
            "batches_committed": (len(self.operator.records) - 1) if self.operator else 0,
            "batches_queued": len(self._batches),
            "chain_errors": self.chain_errors,
            "liquidation_backlog": len(engine.liquidation_queue),
        }

    def status_json(self) -> str:
        return json.dumps(self.status())


class _TimedLog(SqliteLog):
    """The node's block log: a SQLite log that remembers how long its last append took (the
    commit with its fsync: the ``log sync`` metric)."""

    last_append_s = 0.0

    def append(self, record: Any) -> None:
        started = time.perf_counter()
        super().append(record)
        self.last_append_s = time.perf_counter() - started


def _lower_priority() -> None:
    """Lower the calling thread's scheduling priority by :data:`CHAIN_THREAD_NICE` where a
    thread has its own (Linux); elsewhere, or if refused, it keeps the node's."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            thread = threading.get_native_id()
            os.setpriority(
                os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + CHAIN_THREAD_NICE
            )


def _decode(raw: bytes) -> Any:
    from strikechain.engine import codec

    return codec.decode_block(raw)
