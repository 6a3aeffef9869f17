"""Python's side of the settlement contract's encodings, for the contract tests.

Everything here is rebuilt from the specification (records of 16 words, keccak-256, the
withdrawal tree of depth 16, the state tree of :mod:`strikechain.engine.commitment`), not read
back from the contract, so a test that the contract accepts these values checks that both
sides agree byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import sha3

import strikechain
from strikechain.engine.commitment import LedgerTree, encode_leaf, state_root, system_leaf
from strikechain.engine.merkle import MerkleTree, leaf_hash

CONTRACTS = Path(strikechain.__file__).resolve().parent / "settlement" / "contracts"
SETTLEMENT_PATH = CONTRACTS / "Settlement.vy"
TOKEN_PATH = CONTRACTS / "TestUSDC.vy"

WITHDRAWAL_DEPTH = 16
STATE_DEPTH = 32
ZERO32 = bytes(32)
ZERO_ADDRESS = "0x" + "00" * 20


def keccak(data: bytes) -> bytes:
    return sha3.keccak_256(data).digest()


def word(value: int | bytes | str) -> bytes:
    """The 32-byte ABI word of a uint256, a bytes32 or a ``0x`` address."""
    if isinstance(value, int):
        return value.to_bytes(32, "big")
    if isinstance(value, str):
        raw = bytes.fromhex(value.removeprefix("0x"))
        if len(raw) != 20:
            raise ValueError(f"{value!r} is not an address")
        return raw.rjust(32, b"\x00")
    if len(value) != 32:
        raise ValueError(f"{value!r} is not 32 bytes")
    return value


def name32(name: str) -> bytes:
    """A name as ``bytes32``: UTF-8, right-padded with zero bytes (an underlying, a tag)."""
    return name.encode().ljust(32, b"\x00")


def address_of(value: Any) -> str:
    """A ``0x`` + 40 lowercase hex string from whatever titanoboa returns for an address."""
    return str(value).lower()


class Batch(NamedTuple):
    """A batch record, field for field the contract's ``struct Batch`` (titanoboa takes it as
    a tuple)."""

    number: int = 0
    prev_root: bytes = ZERO32
    state_root: bytes = ZERO32
    first_block: int = 0
    last_block: int = 0
    first_timestamp_ns: int = 0
    last_timestamp_ns: int = 0
    deposit_index: int = 0
    deposited_total: int = 0
    forced_index: int = 0
    withdrawal_root: bytes = ZERO32
    withdrawn_total: int = 0
    exit_total: int = 0
    data_hash: bytes = ZERO32
    committed_at: int = 0
    reserved: int = 0

    def encode(self) -> bytes:
        return b"".join(word(value) for value in self)

    def record_hash(self) -> bytes:
        return keccak(self.encode())


ZERO_BATCH = Batch()


def genesis_record(root: bytes, height: int, timestamp_ns: int) -> Batch:
    return Batch(state_root=root, last_block=height, last_timestamp_ns=timestamp_ns)


def deposit_hash(
    index: int, depositor: str, beneficiary: str, underlying: bytes, amount: int
) -> bytes:
    return keccak(word(index) + word(depositor) + word(beneficiary) + underlying + word(amount))


def forced_hash(
    index: int, account: str, underlying: bytes, amount: int, requested_at: int
) -> bytes:
    return keccak(word(index) + word(account) + underlying + word(amount) + word(requested_at))


def accumulate(accumulator: bytes, chunk: bytes) -> bytes:
    """The calldata accumulator after one more ``post_data(chunk)``."""
    return keccak(accumulator + keccak(chunk))


def blob_data_hash(versioned_hashes: Sequence[bytes]) -> bytes:
    return keccak(b"".join(versioned_hashes))


# --- the withdrawal tree ------------------------------------------------------------------------


class Withdrawal(NamedTuple):
    withdrawal_id: int
    account: str
    underlying: bytes
    amount: int

    def leaf_data(self) -> bytes:
        return word(self.withdrawal_id) + word(self.account) + self.underlying + word(self.amount)


class WithdrawalTree:
    """A batch's withdrawals at leaves ``0 .. n - 1`` of a depth-16 tree."""

    def __init__(self, withdrawals: Sequence[Withdrawal] = ()) -> None:
        self.withdrawals = tuple(withdrawals)
        hashes = [leaf_hash(w.leaf_data()) for w in self.withdrawals]
        self._tree = MerkleTree.from_leaves(hashes, depth=WITHDRAWAL_DEPTH)

    @property
    def root(self) -> bytes:
        return self._tree.root()

    @property
    def total(self) -> int:
        return sum(w.amount for w in self.withdrawals)

    def proof(self, index: int) -> list[bytes]:
        return self._tree.proof(index)

    def claim_args(self, batch: Batch, index: int) -> tuple[Any, ...]:
        """The arguments of ``withdraw`` for the withdrawal at ``index``."""
        w = self.withdrawals[index]
        return (batch, w.withdrawal_id, w.account, w.underlying, w.amount, index, self.proof(index))


# --- the state tree -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerLeaf:
    account: str
    underlying: str
    collateral: int
    exit_value: int
    positions: tuple[tuple[str, int, int], ...] = ()

    def encode(self) -> bytes:
        return encode_leaf(
            self.account, self.underlying, self.collateral, self.exit_value, self.positions
        )


@dataclass
class StateTree:
    """The system leaf at 0 and sub-ledger leaves from 1, with the state root over them."""

    ledgers: Sequence[LedgerLeaf]
    rest_hash: bytes = field(default_factory=lambda: keccak(b"strikechain.tests.rest"))
    system: bytes = field(default_factory=lambda: system_leaf(1_000, 2_000, 0, 7))

    def __post_init__(self) -> None:
        self.leaves = [self.system, *(ledger.encode() for ledger in self.ledgers)]
        self._tree = LedgerTree.from_leaves(self.leaves)

    @property
    def root(self) -> bytes:
        return self._tree.state_root(self.rest_hash)

    @property
    def exit_total(self) -> int:
        return sum(ledger.exit_value for ledger in self.ledgers)

    def exit_args(self, index: int) -> tuple[bytes, int, list[bytes], bytes]:
        """The arguments of ``exit`` for leaf ``index``."""
        return (self.leaves[index], index, self._tree.proof(index), self.rest_hash)


def golden_state_root(tree_root: bytes, rest_hash: bytes) -> bytes:
    return state_root(tree_root, rest_hash)


# --- the chain of records -----------------------------------------------------------------------


@dataclass
class Chain:
    """The records the contract holds hashes of, kept in Python as an operator would.

    ``records[n]`` is the live record of batch ``n``; :meth:`header` drafts the next header
    from the tip, :meth:`accept` appends what the contract stored.
    """

    records: list[Batch]
    block_span: int = 10
    time_span_ns: int = 10**9

    @property
    def tip(self) -> Batch:
        return self.records[-1]

    @property
    def count(self) -> int:
        return len(self.records) - 1

    def header(self, **changes: Any) -> Batch:
        """A valid next header (no deposits, withdrawals or data) with ``changes`` applied."""
        tip = self.tip
        first_ns = tip.last_timestamp_ns + 1
        draft = Batch(
            prev_root=tip.state_root,
            state_root=keccak(tip.state_root + b"next"),
            first_block=tip.last_block + 1,
            last_block=tip.last_block + self.block_span,
            first_timestamp_ns=first_ns,
            last_timestamp_ns=first_ns + self.time_span_ns,
            deposit_index=tip.deposit_index,
            deposited_total=tip.deposited_total,
            forced_index=tip.forced_index,
            withdrawal_root=WithdrawalTree().root,
            withdrawn_total=tip.withdrawn_total,
            exit_total=tip.exit_total,
        )
        return draft._replace(**changes)

    def accept(self, header: Batch, committed_at: int) -> Batch:
        record = header._replace(number=self.count + 1, committed_at=committed_at)
        self.records.append(record)
        return record

    def revert_to(self, number: int) -> None:
        del self.records[number + 1 :]


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
