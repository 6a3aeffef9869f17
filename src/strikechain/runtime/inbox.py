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

from collections.abc import Iterable, Iterator
from typing import Final

import msgspec

from strikechain.engine.invariant import invariant
from strikechain.engine.oracle import OracleReport
from strikechain.engine.txs import (
    Amend,
    Cancel,
    CancelAll,
    DelistInstrument,
    Deposit,
    ListInstrument,
    PlaceOrder,
    Transaction,
    Transfer,
    Withdraw,
)
from strikechain.runtime.errors import RuntimeCode, RuntimeRejection

TRANSACTION_KINDS: Final = frozenset(
    {
        PlaceOrder,
        Amend,
        Cancel,
        CancelAll,
        ListInstrument,
        DelistInstrument,
        Deposit,
        Withdraw,
        Transfer,
        OracleReport,
    }
)


class Receipt(msgspec.Struct, frozen=True, gc=False):
    """What a sender gets back: its transaction's place in the inbox."""

    sequence: int
    arrival_ns: int


class Pending(msgspec.Struct, frozen=True, gc=False):
    """A transaction waiting in the inbox."""

    sequence: int
    arrival_ns: int
    tx: Transaction


class Inbox:
    """Transactions waiting for a block, bounded by ``capacity`` transactions."""

    def __init__(self, capacity: int) -> None:
        invariant(capacity > 0, "the inbox holds at least one transaction")
        self.capacity = capacity
        self._pending: dict[int, Pending] = {}
        self._next_sequence = 1

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
        return Receipt(sequence, now_ns)

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
            invariant(removed is entry, f"transaction {entry.sequence} is not in the inbox")
