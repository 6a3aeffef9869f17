"""The batcher: a runtime sink that folds committed blocks into settlement batches.

Why batches: a state root on chain costs a transaction and storage; one per block would make
settlement the venue's bottleneck and its main cost. A batch covers a run of blocks and
commits once, with everything a verifier needs to rebuild the state and everything a user
needs to withdraw (:mod:`~strikechain.settlement.records`, :mod:`~strikechain.settlement.data`).

A batch closes when it holds :attr:`BatchPolicy.max_blocks` blocks, when its blocks span
:attr:`BatchPolicy.max_interval_ns` of block time, when its withdrawals would overflow the
withdrawal tree, or when the driver calls :meth:`Batcher.close` (a timer, a shutdown). At the
close the engine is exactly at the batch's last block (sinks run right after each block is
applied and logged), so the batcher reads the header's cumulative fields from it: the state
root, deposits and forced withdrawals consumed, withdrawals total, and the exit total (the sum
of every committed sub-ledger's exit value).

Invariants: batches are numbered 1, 2, ... in order; batch ``n``'s ``prev_root`` is batch
``n - 1``'s ``state_root`` (the genesis root for batch 1) and its first block follows ``n - 1``'s
last; a closed batch's record has ``number`` set (what the contract will assign) and
``committed_at`` 0 (the contract's clock fills it).

A closed batch's posted data (compressed) is encoded when first read, not at the close: a node
closes batches on its event loop, where compressing a minute of blocks (tens of MB at thousands
of orders a second) would stall every acknowledgement for a second; it reads the data on its
chain thread instead, where zlib runs without the interpreter lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final, Protocol

import msgspec

from strikechain.engine import codec
from strikechain.engine.commitment import exit_value
from strikechain.engine.events import BlockResult, Fill, WithdrawalRequested
from strikechain.engine.invariant import invariant
from strikechain.engine.txs import Block
from strikechain.settlement import data as batch_data
from strikechain.settlement.records import (
    MAX_WITHDRAWALS_PER_BATCH,
    BatchRecord,
    Withdrawal,
    WithdrawalTree,
)

if TYPE_CHECKING:
    from strikechain.engine.accounts import Account

SECOND_NS: Final = 1_000_000_000


class CommittedBlock(Protocol):
    """What the batcher reads of a runtime ``Committed``."""

    @property
    def block(self) -> Block: ...

    @property
    def result(self) -> BlockResult: ...


class Settled(Protocol):
    """What the batcher reads of the engine at a batch's close."""

    height: int
    next_deposit_id: int
    next_forced_id: int
    deposits_total: int
    withdrawals_total: int
    accounts: dict[str, Account]

    def state_root(self) -> bytes: ...


class BatchPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_blocks: int = 100
    max_interval_ns: int = 10 * SECOND_NS
    """Block time a batch may span; with ``max_blocks``, what bounds settlement latency."""

    def __post_init__(self) -> None:
        invariant(self.max_blocks > 0, "a batch holds at least one block")
        invariant(self.max_interval_ns >= 0, "a batch's span is not negative")


class ClosedBatch:
    """A batch ready to post and commit: ``record`` (with ``number`` set and ``data_hash``
    still 0: the posting method decides it), its withdrawals, counts, and :attr:`data`."""

    __slots__ = ("_content", "_data", "_lock", "fills", "record", "transactions", "withdrawals")

    def __init__(
        self,
        *,
        record: BatchRecord,
        content: batch_data.BatchData,
        withdrawals: list[Withdrawal],
        transactions: int,
        fills: int,
    ) -> None:
        self.record = record
        self.withdrawals = withdrawals
        self.transactions = transactions
        self.fills = fills
        self._content: batch_data.BatchData | None = content
        self._data: bytes | None = None
        self._lock = threading.Lock()

    @property
    def data(self) -> bytes:
        """:func:`strikechain.settlement.data.encode` of the batch's blocks, encoded on first
        read (in whichever thread reads it first; once)."""
        with self._lock:
            if self._data is None:
                assert self._content is not None
                self._data = batch_data.encode(self._content)
                self._content = None
            return self._data

    def tree(self) -> WithdrawalTree:
        return WithdrawalTree(self.withdrawals)


def exit_total(accounts: Iterable[Account]) -> int:
    """The sum of the exit values of every sub-ledger with a leaf in the state tree."""
    return sum(
        exit_value(ledger)
        for mine in accounts
        for ledger in mine.ledgers.values()
        if ledger.leaf_index
    )


class Batcher:
    """Receives every committed block (:meth:`on_block`) and closes batches into ``sink``."""

    def __init__(
        self,
        engine: Settled,
        previous: BatchRecord,
        sink: Callable[[ClosedBatch], object],
        policy: BatchPolicy | None = None,
        *,
        genesis: bytes = b"",
    ) -> None:
        """``previous``: the last batch committed (the genesis record at a venue's start);
        ``genesis``: the codec genesis frame, posted with batch 1."""
        invariant(
            engine.height == previous.last_block,
            f"the engine is at {engine.height}, the last batch ends at {previous.last_block}",
        )
        self.engine = engine
        self.previous = previous
        self.sink = sink
        self.policy = policy if policy is not None else BatchPolicy()
        self.genesis = genesis if previous.number == 0 else b""
        self._blocks: list[bytes] = []
        self._withdrawals: list[Withdrawal] = []
        self._first: Block | None = None
        self._last: Block | None = None
        self._transactions = 0
        self._fills = 0

    @property
    def open_blocks(self) -> int:
        return len(self._blocks)

    def on_block(self, committed: CommittedBlock) -> None:
        block, result = committed.block, committed.result
        withdrawals = []
        fills = 0
        for event in result.events:
            kind = type(event)
            if kind is Fill:
                fills += 1
            elif kind is WithdrawalRequested:
                withdrawals.append(Withdrawal.from_event(event))  # type: ignore[arg-type]
        if len(self._withdrawals) + len(withdrawals) > MAX_WITHDRAWALS_PER_BATCH:
            self.close()
        if self._first is None:
            self._first = block
        self._last = block
        self._blocks.append(getattr(committed, "encoded", b"") or codec.encode_block(block))
        self._withdrawals.extend(withdrawals)
        self._transactions += len(block.transactions)
        self._fills += fills
        policy = self.policy
        if (
            len(self._blocks) >= policy.max_blocks
            or block.timestamp_ns - self._first.timestamp_ns >= policy.max_interval_ns
        ):
            self.close()

    def close(self) -> ClosedBatch | None:
        """Close the open batch now and hand it to the sink; None if it holds no block."""
        first, last = self._first, self._last
        if first is None or last is None:
            return None
        engine, previous = self.engine, self.previous
        invariant(engine.height == last.height, "the batch closes at the engine's height")
        tree = WithdrawalTree(self._withdrawals)
        number = previous.number + 1
        record = BatchRecord(
            number=number,
            prev_root=previous.state_root,
            state_root=engine.state_root(),
            first_block=first.height,
            last_block=last.height,
            first_timestamp_ns=first.timestamp_ns,
            last_timestamp_ns=last.timestamp_ns,
            deposit_index=engine.next_deposit_id - 1,
            deposited_total=engine.deposits_total,
            forced_index=engine.next_forced_id - 1,
            withdrawal_root=tree.root(),
            withdrawn_total=engine.withdrawals_total,
            exit_total=exit_total(engine.accounts.values()),
        )
        invariant(first.height == previous.last_block + 1, "batches cover consecutive blocks")
        closed = ClosedBatch(
            record=record,
            content=batch_data.BatchData(number=number, genesis=self.genesis, blocks=self._blocks),
            withdrawals=tree.withdrawals,
            transactions=self._transactions,
            fills=self._fills,
        )
        self.previous = record
        self.genesis = b""
        self._blocks, self._withdrawals = [], []
        self._first = self._last = None
        self._transactions = self._fills = 0
        self.sink(closed)
        return closed
