"""What a batch commits to on chain: the batch record and the per-batch withdrawal tree.

The settlement contract stores one hash per batch (``keccak(abi.encode(record))``), not the
record's fields: a batch then costs one new storage slot (about 22k gas) instead of sixteen,
which is what keeps a commit under 100k gas. Whoever calls the contract later (the operator's
next commit, a withdrawal claim, a veto, a freeze) passes the record back and the contract
checks it against the stored hash. These encodings are therefore byte-exact contracts with
``contracts/Settlement.vy``, pinned by tests that run both.

Batch record: sixteen 32-byte words (a static ABI tuple, so ``abi.encode`` is their
concatenation), in :data:`RECORD_FIELDS` order. ``number`` and ``committed_at`` are filled by
the contract when it accepts the header; the operator submits them as 0. Batch 0 is the
genesis record, written by the constructor and final from the start.

Withdrawal tree: leaf ``i`` of a batch is its ``i``-th withdrawal in engine order, the data
``abi.encode(uint256 withdrawal_id, address account, bytes32 underlying, uint256 amount)``
(128 bytes), hashed and combined as the state tree is (:mod:`strikechain.engine.merkle`:
``keccak(0x00 || data)``, ``keccak(0x01 || left || right)``) at the fixed depth
:data:`WITHDRAWAL_DEPTH`, so a proof is always 16 hashes.

Limits: at most ``2**16`` withdrawals per batch (the batcher closes a batch before that);
amounts and counters are uint256 (an engine value never exceeds them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from strikechain.engine.commitment import account_address
from strikechain.engine.events import WithdrawalRequested
from strikechain.engine.merkle import MerkleTree, empty_subtrees, leaf_hash, node_hash
from strikechain.engine.signing import WORD_BYTES, keccak256

WITHDRAWAL_DEPTH: Final = 16
MAX_WITHDRAWALS_PER_BATCH: Final = 1 << WITHDRAWAL_DEPTH
EMPTY_WITHDRAWAL_ROOT: Final = empty_subtrees(WITHDRAWAL_DEPTH)[WITHDRAWAL_DEPTH]
ZERO_WORD: Final = bytes(WORD_BYTES)


class BatchRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A batch as the contract hashes it (see the module docstring). Roots are 32 bytes;
    every other field is a non-negative integer; times are engine nanoseconds except
    ``committed_at`` (chain seconds)."""

    number: int = 0
    prev_root: bytes = ZERO_WORD
    state_root: bytes = ZERO_WORD
    first_block: int = 0
    last_block: int = 0
    first_timestamp_ns: int = 0
    last_timestamp_ns: int = 0
    deposit_index: int = 0
    """Deposits consumed by the engine, cumulative (the engine's ``next_deposit_id - 1``)."""
    deposited_total: int = 0
    """Their amounts, cumulative (the engine's ``deposits_total``)."""
    forced_index: int = 0
    """Forced-withdrawal requests served, cumulative (``next_forced_id - 1``)."""
    withdrawal_root: bytes = EMPTY_WITHDRAWAL_ROOT
    withdrawn_total: int = 0
    """All withdrawals through this batch, cumulative (the engine's ``withdrawals_total``)."""
    exit_total: int = 0
    """The sum of every sub-ledger leaf's exit value at ``state_root``."""
    data_hash: bytes = ZERO_WORD
    committed_at: int = 0
    reserved: int = 0

    def words(self) -> bytes:
        """``abi.encode`` of the record: its sixteen words."""
        return b"".join(_word(getattr(self, name)) for name in RECORD_FIELDS)

    def hash(self) -> bytes:
        """What the contract stores for the batch: ``keccak(abi.encode(record))``."""
        return keccak256(self.words())

    def as_tuple(self) -> tuple[int | bytes, ...]:
        """The struct as a contract call takes it (titanoboa and web3 accept tuples)."""
        return tuple(getattr(self, name) for name in RECORD_FIELDS)

    @classmethod
    def from_tuple(cls, values: Sequence[int | bytes]) -> BatchRecord:
        return cls(**dict(zip(RECORD_FIELDS, values, strict=True)))  # type: ignore[arg-type]

    def header(self) -> BatchRecord:
        """The record as the operator submits it: ``number`` and ``committed_at`` zeroed."""
        return msgspec.structs.replace(self, number=0, committed_at=0)


RECORD_FIELDS: Final = tuple(BatchRecord.__struct_fields__)


def genesis_record(state_root: bytes, height: int, timestamp_ns: int) -> BatchRecord:
    """Batch 0: the state the contract is deployed with (the engine's state after genesis).
    Every other field is zero, the withdrawal root included (no tree: nothing to claim)."""
    return BatchRecord(
        state_root=state_root,
        last_block=height,
        last_timestamp_ns=timestamp_ns,
        withdrawal_root=ZERO_WORD,
    )


def _word(value: int | bytes) -> bytes:
    if type(value) is bytes:
        if len(value) != WORD_BYTES:
            raise ValueError(f"a record hash field must be {WORD_BYTES} bytes, got {len(value)}")
        return value
    if type(value) is not int or not 0 <= value < 1 << 256:
        raise ValueError(f"a record integer must be a uint256, not {value!r}")
    return value.to_bytes(WORD_BYTES, "big")


# --- withdrawals --------------------------------------------------------------------------------


class Withdrawal(msgspec.Struct, frozen=True, kw_only=True):
    """One withdrawal as the contract pays it: ``account`` is the committed address."""

    withdrawal_id: int
    account: str
    """``0x`` + 40 lowercase hex digits."""
    underlying: str
    amount: int

    @classmethod
    def from_event(cls, event: WithdrawalRequested) -> Withdrawal:
        return cls(
            withdrawal_id=event.withdrawal_id,
            account=account_address(event.account),
            underlying=event.underlying,
            amount=event.amount,
        )

    def underlying_word(self) -> bytes:
        return self.underlying.encode("utf-8").ljust(WORD_BYTES, b"\x00")

    def leaf(self) -> bytes:
        """``abi.encode(uint256 id, address account, bytes32 underlying, uint256 amount)``."""
        return b"".join(
            (
                _word(self.withdrawal_id),
                bytes(12) + bytes.fromhex(self.account[2:]),
                self.underlying_word(),
                _word(self.amount),
            )
        )


class WithdrawalTree:
    """A batch's withdrawals and their tree (depth :data:`WITHDRAWAL_DEPTH`)."""

    __slots__ = ("_tree", "withdrawals")

    def __init__(self, withdrawals: Sequence[Withdrawal]) -> None:
        if len(withdrawals) > MAX_WITHDRAWALS_PER_BATCH:
            raise ValueError(f"{len(withdrawals)} withdrawals do not fit one batch's tree")
        self.withdrawals = list(withdrawals)
        self._tree = MerkleTree.from_leaves(
            [leaf_hash(w.leaf()) for w in self.withdrawals], WITHDRAWAL_DEPTH
        )

    def root(self) -> bytes:
        return self._tree.root()

    def proof(self, index: int) -> list[bytes]:
        """The 16 sibling hashes of withdrawal ``index``'s path, bottom-up."""
        return self._tree.proof(index)

    def total(self) -> int:
        return sum(w.amount for w in self.withdrawals)


def verify_withdrawal(
    root: bytes, withdrawal: Withdrawal, index: int, proof: Sequence[bytes]
) -> bool:
    """The contract's check, in Python: ``withdrawal`` is leaf ``index`` under ``root``."""
    if len(proof) != WITHDRAWAL_DEPTH or not 0 <= index < MAX_WITHDRAWALS_PER_BATCH:
        return False
    node = leaf_hash(withdrawal.leaf())
    for sibling in proof:
        node = node_hash(sibling, node) if index & 1 else node_hash(node, sibling)
        index >>= 1
    return node == root
