"""The bounded inbox: transactions waiting for a block, in arrival order.

Invariants
- At most ``capacity`` transactions wait; a submission beyond that is refused with
  ``INBOX_FULL`` and changes nothing (no sequence number is used up).
- Every accepted transaction gets the next sequence number (1, 2, ...) and keeps it until it is
  taken into a block or withdrawn; sequence numbers are never reused, so they break every tie
  (selection is stable by arrival) and name a transaction to its sender (:class:`Receipt`).
- Iteration is in arrival order (a dict keyed by sequence number: insertion ordered, O(1)
  removal of any entry).

The inbox does no I/O and reads no clock: the arrival time is passed in.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Iterator
from heapq import heapify, heappop, heappush
from typing import Final

from strikechain.engine.invariant import invariant
from strikechain.engine.txs import Transaction
from strikechain.runtime.errors import RuntimeCode, RuntimeRejection
from strikechain.runtime.pending import Pending, Receipt

__all__ = ["TRANSACTION_KINDS", "Inbox", "Pending", "Receipt"]

TRANSACTION_KINDS: Final = frozenset(typing.get_args(Transaction))
"""Every kind of the engine's transaction union (derived from it, so a new kind is admitted)."""


class Inbox:
    """Transactions waiting for a block, bounded by ``capacity`` transactions."""

    def __init__(self, capacity: int) -> None:
        invariant(capacity > 0, "the inbox holds at least one transaction")
        self.capacity = capacity
        self._pending: dict[int, Pending] = {}
        self._next_sequence = 1
        self._fees: list[tuple[int, int]] = []
        """A heap of ``(-priority_fee, sequence)`` over the waiting transactions (and, lazily,
        some that left: they are dropped when met), for :meth:`top_by_fee`."""

    def __len__(self) -> int:
        return len(self._pending)

    def __iter__(self) -> Iterator[Pending]:
        """Waiting transactions in arrival order."""
        return iter(self._pending.values())

    @property
    def free(self) -> int:
        return self.capacity - len(self._pending)

    def submit(self, tx: Transaction, now_ns: int) -> Receipt:
        """Accept ``tx`` (arrived at ``now_ns``) or raise :class:`RuntimeRejection`."""
        if type(tx) not in TRANSACTION_KINDS:
            raise RuntimeRejection(
                RuntimeCode.NOT_A_TRANSACTION, f"a {type(tx).__name__} is not a transaction"
            )
        if len(self._pending) >= self.capacity:
            raise RuntimeRejection(
                RuntimeCode.INBOX_FULL,
                f"the inbox holds {self.capacity} transactions, its capacity; "
                "retry after the next block",
            )
        sequence = self._next_sequence
        self._next_sequence = sequence + 1
        self._pending[sequence] = Pending(sequence, now_ns, tx)
        fees = self._fees
        heappush(fees, (-tx.priority_fee, sequence))
        if len(fees) > 2 * len(self._pending) + 1_024:  # mostly gone: rebuild
            self._fees = [(-e.tx.priority_fee, e.sequence) for e in self._pending.values()]
            heapify(self._fees)
        return Receipt(sequence, now_ns)

    def top_by_fee(self, minimum: int, count: int) -> list[Pending]:
        """Up to ``count`` waiting transactions with ``priority_fee >= minimum``, highest fee
        first, ties by arrival: what a fee-priority block takes, found in ``O(count log n)``
        however many wait below the fee (a congested mempool); when ``count`` leaves room for
        every waiting one (the common case), by one pass and a stable sort, leaving the heap
        as it is."""
        heap, pending = self._fees, self._pending
        if count >= len(pending):  # room for every one: filter, then a stable sort by fee
            eligible = [entry for entry in pending.values() if entry.tx.priority_fee >= minimum]
            eligible.sort(key=_negated_fee)
            return eligible
        found: list[Pending] = []
        kept: list[tuple[int, int]] = []
        while heap and len(found) < count and -heap[0][0] >= minimum:
            key = heappop(heap)
            entry = pending.get(key[1])
            if entry is None:
                continue  # taken into a block or withdrawn: gone for good
            found.append(entry)
            kept.append(key)
        for key in kept:
            heappush(heap, key)
        return found

    def get(self, sequence: int) -> Pending | None:
        return self._pending.get(sequence)

    def withdraw(self, sequence: int) -> Pending | None:
        """Remove a transaction that has not been taken into a block yet (None if none waits)."""
        return self._pending.pop(sequence, None)

    def take(self, chosen: Iterable[Pending]) -> None:
        """Remove transactions that went into a block; each must be waiting."""
        pending = self._pending
        for entry in chosen:
            removed = pending.pop(entry.sequence, None)
            if removed is not entry:
                invariant(False, f"transaction {entry.sequence} is not in the inbox")


def _negated_fee(entry: Pending) -> int:
    return -entry.tx.priority_fee
