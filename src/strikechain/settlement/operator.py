"""The operator's side of settlement: commit every batch, relay the chain's requests in.

Two directions, both deterministic and idempotent:

- **Out**: :meth:`Operator.on_batch` is the batcher's sink. It posts the batch's data and
  commits its header after the last live record, and keeps the batch (its withdrawals and
  their tree) so that users can be handed proofs (:meth:`Operator.withdrawal_claim`).
- **In**: :meth:`Operator.relay` turns the contract's deposits and forced-withdrawal requests
  into engine transactions, each exactly once and in index order, and only once the event is
  ``confirmations`` blocks deep (a deposit credited from a block that is then reorganized away
  would be money the contract never received). The engine refuses a repeated or skipped index
  anyway; the operator just never sends one.

After a veto the contract is back at its last final record: :meth:`Operator.resync` drops the
local records the chain no longer has, and the driver re-commits (the batches it kept, or
batches rebuilt from its block log).
"""

from __future__ import annotations

from typing import Final

from strikechain.engine.invariant import invariant
from strikechain.engine.txs import Deposit, ForcedWithdrawal, Transaction
from strikechain.settlement.batcher import ClosedBatch
from strikechain.settlement.client import Committed, Settlement, deposit_event, forced_request
from strikechain.settlement.records import BatchRecord, Withdrawal

RELAY_ACCOUNT: Final = "operator"
"""The engine account that relays chain events (the venue's ``Limits.operator``)."""


class Claim:
    """What a user needs to withdraw on chain: the final record and the proof."""

    __slots__ = ("index", "proof", "record", "withdrawal")

    def __init__(
        self, record: BatchRecord, withdrawal: Withdrawal, index: int, proof: list[bytes]
    ) -> None:
        self.record = record
        self.withdrawal = withdrawal
        self.index = index
        self.proof = proof


class Operator:
    """Commits batches and relays deposits and forced withdrawals (module docstring)."""

    def __init__(
        self,
        settlement: Settlement,
        *,
        blobs: bool = False,
        confirmations: int = 0,
        relay_account: str = RELAY_ACCOUNT,
    ) -> None:
        self.settlement = settlement
        self.blobs = blobs
        self.confirmations = confirmations
        self.relay_account = relay_account
        self.records: list[BatchRecord] = [settlement.deployment.genesis]
        """The live records, genesis first, as committed (``number`` and ``committed_at`` set)."""
        self.batches: dict[int, ClosedBatch] = {}
        self.commits: list[Committed] = []
        self.next_deposit = 1
        self.next_forced = 1
        self.scanned_block = settlement.deployment.block - 1
        """The last chain block :meth:`relay` read (confirmed)."""

    @property
    def tip(self) -> BatchRecord:
        return self.records[-1]

    def on_batch(self, closed: ClosedBatch) -> Committed:
        """Post and commit ``closed`` after the tip; it must be the next batch."""
        number = closed.record.number
        invariant(number == self.tip.number + 1, f"batch {number} after {self.tip.number}")
        committed = self.settlement.commit(self.tip, closed.record, closed.data, blobs=self.blobs)
        invariant(committed.record.number == number, "the contract numbered the batch otherwise")
        self.records.append(committed.record)
        self.batches[number] = closed
        self.commits.append(committed)
        return committed

    def relay(self) -> list[Transaction]:
        """New deposits and forced-withdrawal requests, confirmed, as engine transactions.

        Reads only the chain blocks confirmed since the last call (the node calls this twice
        a second: reading every event since the deployment each time grew with the chain's
        history, and with it the chain's work and the pickled logs on the node's core)."""
        settlement = self.settlement
        last = settlement.chain.block_number() - self.confirmations
        start = max(self.scanned_block + 1, settlement.deployment.block)
        if last < start:
            return []
        logs = settlement.logs(start, last)
        self.scanned_block = last
        deposits = [deposit_event(log) for log in logs if log.event == "Deposited"]
        forced = [forced_request(log) for log in logs if log.event == "ForcedWithdrawalRequested"]
        out: list[Transaction] = []
        for event in deposits:
            if event.index < self.next_deposit:
                continue
            invariant(event.index == self.next_deposit, f"deposit {event.index} skipped one")
            out.append(
                Deposit(
                    account=self.relay_account,
                    deposit_id=event.index,
                    beneficiary=event.beneficiary.lower(),
                    underlying=event.underlying,
                    amount=event.amount,
                )
            )
            self.next_deposit += 1
        for request, _ in forced:
            if request.index < self.next_forced:
                continue
            out.append(
                ForcedWithdrawal(
                    account=self.relay_account,
                    request_id=request.index,
                    owner=request.account.lower(),
                    underlying=request.underlying,
                    amount=request.amount,
                )
            )
            self.next_forced += 1
        return out

    def last_final(self) -> BatchRecord:
        """The newest record whose challenge window has passed at the chain's time."""
        now = self.settlement.chain.timestamp()
        window = self.settlement.deployment.params.challenge_window_s
        final = self.records[0]
        for record in self.records[1:]:
            if record.committed_at + window > now:
                break
            final = record
        return final

    def withdrawal_claim(self, withdrawal_id: int) -> Claim:
        """The record, leaf index and proof of withdrawal ``withdrawal_id`` (the user claims
        once the record is final)."""
        for record in self.records[1:]:
            batch = self.batches[record.number]
            for index, withdrawal in enumerate(batch.withdrawals):
                if withdrawal.withdrawal_id == withdrawal_id:
                    return Claim(record, withdrawal, index, batch.tree().proof(index))
        raise KeyError(f"withdrawal {withdrawal_id} is in no committed batch")

    def resync(self) -> list[BatchRecord]:
        """Align with the chain after a veto: drop the records it discarded; those dropped."""
        live = self.settlement.records()
        invariant(
            [r.hash() for r in live] == [r.hash() for r in self.records[: len(live)]],
            "the chain's live records are not a prefix of the operator's",
        )
        dropped = self.records[len(live) :]
        del self.records[len(live) :]
        return dropped
