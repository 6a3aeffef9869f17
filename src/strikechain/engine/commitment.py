"""The state commitment: what each leaf of the state tree holds, and the state root over it.

The settlement contract (Vyper) checks a Merkle proof of a leaf against a posted state root
and decodes the leaf with ``abi.decode``, so a leaf's bytes are exactly Solidity's ABI encoding
(as ``abi.encode`` and eth_abi produce it) and this module's encoder is checked byte for byte
against eth_abi in the tests. The encoder here is hand-made (``int.to_bytes`` and joins): a
state root covers every sub-ledger, and eth_abi is about fifty times slower (some 200 us
against 4 us for a leaf with two positions). eth_abi is a test dependency only.

Tree
- The tree is :mod:`strikechain.engine.merkle`'s (keccak-256, depth 32, leaf hash
  ``keccak(0x00 || data)``, node ``keccak(0x01 || left || right)``). Index 0 holds the system
  leaf; sub-ledgers occupy indices 1, 2, ... in the order the engine assigns them (the order
  they were first funded); an index never moves.
- ``state_root = keccak(0x02 || tree_root || rest_hash)``, where ``rest_hash`` is a keccak-256
  of everything else in the engine's state (books, markets, oracle, ...), computed elsewhere.
  The prefix 0x02 keeps the state root apart from leaves (0x00) and inner nodes (0x01).
- A proof is the 32 sibling hashes of :meth:`MerkleTree.proof`; a claim carries the leaf data,
  its index, the proof and ``rest_hash``, and :func:`verify_ledger` is the check the contract
  does.

Sub-ledger leaf: ``abi.encode(Leaf)`` with ``Leaf = (address account, bytes32 underlying,
int256 collateral, uint256 exit_value, (bytes32 instrument, int256 size_lots, int256
cost_basis)[] positions)``, i.e. eth_abi's ``(address,bytes32,int256,uint256,
(bytes32,int256,int256)[])``. The tuple has a dynamic member, so the encoding opens with an
offset word and its array's offset counts from the tuple's start (byte 32). With ``n``
positions it is ``224 + 96 n`` bytes (offsets in bytes, each field one 32-byte word):

====================  ===========================================================================
offset                field
====================  ===========================================================================
0                     ``0x20``: where the tuple starts
32                    ``account``: 12 zero bytes, then the 20-byte address
64                    ``underlying``: its UTF-8 name, right-padded with zero bytes
96                    ``collateral``: the sub-ledger's ``cash``, int256 (two's complement; the
                      cash model lets it go negative)
128                   ``exit_value``: uint256, what the escape hatch pays (below)
160                   ``0xa0``: the positions array's offset from byte 32
192                   ``n``: how many positions
224 + 96 i            position ``i``'s ``instrument``: UTF-8 name, right-padded with zero bytes
256 + 96 i            position ``i``'s ``size_lots``: int256, positive long, negative short
288 + 96 i            position ``i``'s ``cost_basis``: int256 quote minor units (``Exposure.basis``)
====================  ===========================================================================

- ``account``: an engine account of the form ``0x`` + 40 hex digits (either case) is that
  address. Any other name (the tests' "alice") is committed as the last 20 bytes of
  ``keccak256(utf-8 name)``: such an address has no known private key, so **those accounts
  cannot claim on chain**; they exist for tests and simulations. ``0xAB..`` and ``0xab..``
  commit the same address.
- ``positions``: only exposures with a non-zero position, in strictly increasing order of the
  name's bytes (the same order as the ``bytes32`` words compared as unsigned integers, since a
  name has no zero byte), so one state has one encoding.
- ``exit_value = max(0, cash + sum(size_lots x mark_per_lot))``: the equity at the marks the
  commitment was made at, floored at zero; ``mark_per_lot`` is the per-lot mark the engine
  values positions with (``Market.mark_per_lot``, 0 before the oracle's first price).

System leaf (index 0): ``abi.encode((bytes32 tag, int256 fee_pool, int256 insurance_fund,
int256 backstop, int256 dust))``, a static tuple, so no offset word: 160 bytes, the tag
``"strikechain.system"`` right-padded at 0, then the four amounts at 32, 64, 96 and 128. It
is never the length of a sub-ledger leaf (224 + 96 n).

Invariants
- :func:`decode_leaf` accepts exactly the encoder's outputs (canonical: offsets 0x20 and 0xa0,
  a length word that matches the data, zero padding, non-empty UTF-8 names without zero bytes,
  positions strictly increasing and non-zero, no trailing bytes); anything else is a
  ``Rejection(MALFORMED_LEAF)``. ``decode_leaf(encode_leaf(...))`` gives the fields back, the
  account as its canonical address.
- :func:`verify_ledger` never raises: malformed input is ``False``.

Limits
- Names are 1 to 32 UTF-8 bytes without a zero byte (listing enforces
  ``instruments.MAX_NAME_BYTES``); amounts fit their ABI types (int256, ``exit_value``
  uint256). Encoding a value outside these is a programming error (``ValueError``): the engine's
  state never holds one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

import msgspec

from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.merkle import DEPTH, MerkleTree, leaf_hash, node_hash
from strikechain.engine.signing import ADDRESS_BYTES, WORD_BYTES, keccak256

if TYPE_CHECKING:
    from strikechain.engine.accounts import SubLedger

SYSTEM_INDEX: Final = 0
"""The system leaf's index; sub-ledgers start at :data:`FIRST_LEDGER_INDEX`."""
FIRST_LEDGER_INDEX: Final = 1
STATE_PREFIX: Final = b"\x02"
SYSTEM_TAG: Final = b"strikechain.system".ljust(WORD_BYTES, b"\x00")
LEAF_HEAD_BYTES: Final = 7 * WORD_BYTES
"""A sub-ledger leaf without positions: offset, five fields, length."""
POSITION_BYTES: Final = 3 * WORD_BYTES
SYSTEM_LEAF_BYTES: Final = 5 * WORD_BYTES

_TUPLE_OFFSET: Final = WORD_BYTES.to_bytes(WORD_BYTES, "big")
_POSITIONS_OFFSET: Final = (5 * WORD_BYTES).to_bytes(WORD_BYTES, "big")
_ADDRESS_PADDING: Final = bytes(WORD_BYTES - ADDRESS_BYTES)
_INT256_MIN: Final = -(1 << 255)
_INT256_MAX: Final = (1 << 255) - 1
_UINT256_MAX: Final = (1 << 256) - 1
_HEX_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")


class Leaf(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded sub-ledger leaf: ``account`` as ``0x`` + 40 lowercase hex, ``positions`` as
    ``(instrument, size_lots, cost_basis)`` in the leaf's order."""

    account: str
    underlying: str
    collateral: int
    exit_value: int
    positions: tuple[tuple[str, int, int], ...]

    def encode(self) -> bytes:
        return encode_leaf(
            self.account, self.underlying, self.collateral, self.exit_value, self.positions
        )


class SystemLeaf(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded system leaf: the venue's own balances, in quote minor units."""

    fee_pool: int
    insurance_fund: int
    backstop: int
    dust: int


# --- encoding -----------------------------------------------------------------------------------


def encode_leaf(
    account: str,
    underlying: str,
    collateral: int,
    exit_value: int,
    positions: Sequence[tuple[str, int, int]],
) -> bytes:
    """A sub-ledger leaf's bytes (the module docstring's layout) from its fields.

    ``positions`` are ``(instrument, size_lots, cost_basis)``, already in strictly increasing
    name order with non-zero sizes (:func:`ledger_leaf` selects and sorts them); anything else
    is a ``ValueError``.
    """
    parts = [
        _TUPLE_OFFSET,
        _account_word(account),
        _name_word(underlying),
        _int256(collateral, "collateral"),
        _uint256(exit_value, "exit value"),
        _POSITIONS_OFFSET,
        len(positions).to_bytes(WORD_BYTES, "big"),
    ]
    previous = b""
    for instrument, size_lots, cost_basis in positions:
        name = _name_word(instrument)
        if name <= previous:
            raise ValueError(f"position {instrument!r} is out of order or repeated")
        if size_lots == 0:
            raise ValueError(f"position {instrument!r} has size 0: only held positions commit")
        parts.append(name)
        parts.append(_int256(size_lots, "size"))
        parts.append(_int256(cost_basis, "cost basis"))
        previous = name
    return b"".join(parts)


def ledger_leaf(ledger: SubLedger) -> bytes:
    """The leaf of a sub-ledger at its markets' current marks.

    Positions are its exposures with a non-zero position, by name; the exit value is
    ``max(0, cash + sum(position x mark_per_lot))``, computed here from the marks (not from the
    cached ``ledger.value``, which may lag behind a mark change).
    """
    value = 0
    held: list[tuple[str, int, int]] = []
    for exposure in ledger.exposures.values():
        position = exposure.position
        if position:
            market = exposure.market
            value += position * market.mark_per_lot
            held.append((market.name, position, exposure.basis))
    if len(held) > 1:
        held.sort(key=_name_key)
    cash = ledger.cash
    return encode_leaf(ledger.account, ledger.underlying, cash, max(0, cash + value), held)


def exit_value(ledger: SubLedger) -> int:
    """The exit value :func:`ledger_leaf` commits for ``ledger``, without encoding the leaf."""
    value = ledger.cash
    for exposure in ledger.exposures.values():
        if exposure.position:
            value += exposure.position * exposure.market.mark_per_lot
    return max(0, value)


def system_leaf(fee_pool: int, insurance_fund: int, backstop: int, dust: int) -> bytes:
    """The system leaf's 160 bytes (index 0). The backstop pool does not exist yet: pass 0."""
    return b"".join(
        (
            SYSTEM_TAG,
            _int256(fee_pool, "fee pool"),
            _int256(insurance_fund, "insurance fund"),
            _int256(backstop, "backstop"),
            _int256(dust, "dust"),
        )
    )


def account_address(account: str) -> str:
    """The address a leaf commits for an engine account, as ``0x`` + 40 lowercase hex."""
    return "0x" + _account_word(account)[-ADDRESS_BYTES:].hex()


@functools.lru_cache(maxsize=1 << 16)
def _account_word(account: str) -> bytes:
    """The account's ABI ``address`` word (cached: a name costs a keccak)."""
    if type(account) is not str or not account:
        raise ValueError(f"account {account!r} must be a non-empty string")
    if _HEX_ADDRESS.fullmatch(account):
        return _ADDRESS_PADDING + bytes.fromhex(account[2:])
    return _ADDRESS_PADDING + keccak256(account.encode("utf-8"))[-ADDRESS_BYTES:]


@functools.lru_cache(maxsize=1 << 14)
def _name_word(name: str) -> bytes:
    """A name's ``bytes32``: UTF-8, right-padded with zero bytes."""
    if type(name) is not str:
        raise ValueError(f"name {name!r} must be a string")
    raw = name.encode("utf-8")
    if not 0 < len(raw) <= WORD_BYTES or b"\x00" in raw:
        raise ValueError(f"name {name!r} must be 1 to 32 UTF-8 bytes without a zero byte")
    return raw.ljust(WORD_BYTES, b"\x00")


def _name_key(position: tuple[str, int, int]) -> bytes:
    return position[0].encode("utf-8")


def _int256(value: int, what: str) -> bytes:
    if type(value) is not int or not _INT256_MIN <= value <= _INT256_MAX:
        raise ValueError(f"{what} {value!r} is not an int256")
    return value.to_bytes(WORD_BYTES, "big", signed=True)


def _uint256(value: int, what: str) -> bytes:
    if type(value) is not int or not 0 <= value <= _UINT256_MAX:
        raise ValueError(f"{what} {value!r} is not a uint256")
    return value.to_bytes(WORD_BYTES, "big")


# --- decoding -----------------------------------------------------------------------------------


def decode_leaf(data: bytes) -> Leaf:
    """The fields of a sub-ledger leaf; ``Rejection(MALFORMED_LEAF)`` unless ``data`` is
    exactly what :func:`encode_leaf` produces for some fields."""
    if type(data) is not bytes:
        raise _malformed(f"a leaf is bytes, not {type(data).__name__}")
    size = len(data)
    count, extra = divmod(size - LEAF_HEAD_BYTES, POSITION_BYTES)
    if size < LEAF_HEAD_BYTES or extra:
        raise _malformed(f"{size} bytes: a leaf is 224 + 96 x positions bytes")
    if data[0:32] != _TUPLE_OFFSET:
        raise _malformed(f"tuple offset word is 0x{data[0:32].hex()}, not 0x20")
    if data[32:44] != _ADDRESS_PADDING:
        raise _malformed("account word has non-zero padding above the 20-byte address")
    if data[160:192] != _POSITIONS_OFFSET:
        raise _malformed(f"positions offset word is 0x{data[160:192].hex()}, not 0xa0")
    length = int.from_bytes(data[192:224], "big")
    if length != count:
        raise _malformed(f"length word says {length} positions, the data holds {count}")
    positions = []
    previous = b""
    for start in range(LEAF_HEAD_BYTES, size, POSITION_BYTES):
        word = data[start : start + 32]
        name = _decode_name(word, "instrument")
        if word <= previous:
            raise _malformed(f"position {name!r} is out of order or repeated")
        size_lots = int.from_bytes(data[start + 32 : start + 64], "big", signed=True)
        if size_lots == 0:
            raise _malformed(f"position {name!r} has size 0")
        basis = int.from_bytes(data[start + 64 : start + 96], "big", signed=True)
        positions.append((name, size_lots, basis))
        previous = word
    return Leaf(
        account="0x" + data[44:64].hex(),
        underlying=_decode_name(data[64:96], "underlying"),
        collateral=int.from_bytes(data[96:128], "big", signed=True),
        exit_value=int.from_bytes(data[128:160], "big"),
        positions=tuple(positions),
    )


def decode_system_leaf(data: bytes) -> SystemLeaf:
    """The fields of a system leaf; ``Rejection(MALFORMED_LEAF)`` unless it is 160 bytes
    opening with the system tag."""
    if type(data) is not bytes or len(data) != SYSTEM_LEAF_BYTES:
        raise _malformed(f"a system leaf is {SYSTEM_LEAF_BYTES} bytes")
    if data[0:32] != SYSTEM_TAG:
        raise _malformed("the system leaf does not open with the tag 'strikechain.system'")
    fee_pool, insurance_fund, backstop, dust = (
        int.from_bytes(data[start : start + 32], "big", signed=True) for start in (32, 64, 96, 128)
    )
    return SystemLeaf(
        fee_pool=fee_pool, insurance_fund=insurance_fund, backstop=backstop, dust=dust
    )


def _decode_name(word: bytes, what: str) -> str:
    raw = word.rstrip(b"\x00")
    if not raw:
        raise _malformed(f"{what} name is empty")
    if b"\x00" in raw:
        raise _malformed(f"{what} name 0x{word.hex()} is not right-padded with zero bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed(f"{what} name 0x{word.hex()} is not UTF-8") from None


def _malformed(message: str) -> Rejection:
    return Rejection(RejectCode.MALFORMED_LEAF, message)


# --- tree and state root ------------------------------------------------------------------------


def state_root(tree_root: bytes, rest_hash: bytes) -> bytes:
    """``keccak(0x02 || tree_root || rest_hash)``; both must be 32 bytes (else ``ValueError``)."""
    for what, value in (("tree root", tree_root), ("rest hash", rest_hash)):
        if type(value) is not bytes or len(value) != WORD_BYTES:
            raise ValueError(f"{what} must be {WORD_BYTES} bytes, got {value!r:.80}")
    return keccak256(STATE_PREFIX + tree_root + rest_hash)


class LedgerTree:
    """The state tree over leaf *data*: the system leaf at 0, sub-ledgers from 1.

    :meth:`update` hashes the data and sets the leaves; the next root or proof rehashes only
    the touched paths.
    """

    __slots__ = ("_tree",)

    def __init__(self) -> None:
        self._tree = MerkleTree(DEPTH)

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> LedgerTree:
        """A tree whose leaves ``0 .. len(leaves) - 1`` hold ``leaves`` (built level by level)."""
        tree = cls()
        tree._tree = MerkleTree.from_leaves([leaf_hash(data) for data in leaves], DEPTH)
        return tree

    def __len__(self) -> int:
        return len(self._tree)

    def update(self, items: Iterable[tuple[int, bytes]]) -> None:
        """Set each ``(index, leaf data)`` in order (a later write to an index wins)."""
        self._tree.set_many((index, leaf_hash(data)) for index, data in items)

    def tree_root(self) -> bytes:
        return self._tree.root()

    def state_root(self, rest_hash: bytes) -> bytes:
        """``keccak(0x02 || tree_root || rest_hash)``."""
        return state_root(self._tree.root(), rest_hash)

    def proof(self, index: int) -> list[bytes]:
        """The 32 sibling hashes of leaf ``index``'s path, bottom-up, against the current root."""
        return self._tree.proof(index)


def verify_ledger(
    leaf_data: bytes, index: int, proof: Sequence[bytes], rest_hash: bytes, state_root: bytes
) -> bool:
    """Whether ``leaf_data`` is leaf ``index`` of the state committed by ``state_root``, given
    the proof and ``rest_hash``; never raises (malformed input is ``False``)."""
    if type(leaf_data) is not bytes or not _is_word(rest_hash) or not _is_word(state_root):
        return False
    if type(index) is not int or not 0 <= index < 1 << DEPTH:
        return False
    if not isinstance(proof, (list, tuple)) or len(proof) != DEPTH:
        return False
    node = leaf_hash(leaf_data)
    for sibling in proof:
        if not _is_word(sibling):
            return False
        node = node_hash(sibling, node) if index & 1 else node_hash(node, sibling)
        index >>= 1
    return keccak256(STATE_PREFIX + node + rest_hash) == state_root


def _is_word(value: object) -> bool:
    return type(value) is bytes and len(value) == WORD_BYTES
