"""The state commitment: leaves are eth_abi's bytes, decode is strict, proofs verify the root."""

from __future__ import annotations

import json
from pathlib import Path
from string import hexdigits

import eth_abi
import pytest
import sha3
from hypothesis import given, settings
from hypothesis import strategies as st
from tools.make_leaf_golden import vectors

from strikechain.engine.accounts import Exposure, Market, SubLedger, UnderlyingState
from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.commitment import (
    SYSTEM_TAG,
    Leaf,
    LedgerTree,
    SystemLeaf,
    account_address,
    decode_leaf,
    decode_system_leaf,
    encode_leaf,
    ledger_leaf,
    state_root,
    system_leaf,
    verify_ledger,
)
from strikechain.engine.events import Fill
from strikechain.engine.merkle import DEPTH, leaf_hash
from strikechain.engine.txs import PostOnly
from tests.engine.venue import BTC_PERP, TICKS_AT_100K, USDC, Venue, of_type

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "leaf_vectors.json"
LEAF_TYPE = "(address,bytes32,int256,uint256,(bytes32,int256,int256)[])"
SYSTEM_TYPE = "(bytes32,int256,int256,int256,int256)"
INT256_MIN, INT256_MAX = -(2**255), 2**255 - 1

Position = tuple[str, int, int]
Fields = tuple[str, str, int, int, tuple[Position, ...]]


def keccak(data: bytes) -> bytes:
    return sha3.keccak_256(data).digest()


def padded(name: str) -> bytes:
    return name.encode().ljust(32, b"\x00")


def reference_address(account: str) -> bytes:
    """The 20 bytes an account commits, by the definition."""
    if account[:2] == "0x" and len(account) == 42 and set(account[2:]) <= set(hexdigits):
        return bytes.fromhex(account[2:])
    return keccak(account.encode())[-20:]


def reference_encode(fields: Fields) -> bytes:
    account, underlying, collateral, exit_value, positions = fields
    value = (
        reference_address(account),
        padded(underlying),
        collateral,
        exit_value,
        [(padded(name), size, basis) for name, size, basis in positions],
    )
    return eth_abi.encode([LEAF_TYPE], [value])


def malformed(data: object) -> str:
    """The message of the MALFORMED_LEAF rejection decoding ``data`` raises."""
    with pytest.raises(Rejection) as caught:
        decode_leaf(data)  # type: ignore[arg-type]
    assert caught.value.code == RejectCode.MALFORMED_LEAF
    return caught.value.message


def decode_or_code(data: bytes) -> Leaf | RejectCode:
    try:
        return decode_leaf(data)
    except Rejection as rejection:
        return rejection.code


def word(value: int) -> bytes:
    return value.to_bytes(32, "big", signed=value < 0)


# -- strategies --------------------------------------------------------------------------------

names = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=32
).filter(lambda name: len(name.encode()) <= 32)
hex_addresses = st.binary(min_size=20, max_size=20).flatmap(
    lambda raw: st.sampled_from(["0x" + raw.hex(), "0x" + raw.hex().upper()])
)
accounts = st.one_of(hex_addresses, st.text(min_size=1, max_size=40), st.just("alice"))
int256s = st.one_of(
    st.integers(-(10**18), 10**18), st.integers(INT256_MIN, INT256_MAX), st.just(INT256_MIN)
)
uint256s = st.one_of(st.integers(0, 10**18), st.integers(0, 2**256 - 1))
sizes = int256s.filter(bool)
positions = st.lists(
    st.tuples(names, sizes, int256s), max_size=5, unique_by=lambda p: p[0].encode()
).map(lambda held: tuple(sorted(held, key=lambda p: p[0].encode())))
leaves: st.SearchStrategy[Fields] = st.tuples(accounts, names, int256s, uint256s, positions)


# -- encoding ----------------------------------------------------------------------------------


@given(leaves)
def test_leaf_is_eth_abi_encoding(fields: Fields) -> None:
    data = encode_leaf(*fields)
    assert data == reference_encode(fields)
    assert len(data) == 224 + 96 * len(fields[4])


@given(leaves)
def test_decode_inverts_encode(fields: Fields) -> None:
    account, underlying, collateral, exit_value, held = fields
    leaf = decode_leaf(encode_leaf(*fields))
    assert leaf == Leaf(
        account="0x" + reference_address(account).hex(),
        underlying=underlying,
        collateral=collateral,
        exit_value=exit_value,
        positions=held,
    )
    assert leaf.account == account_address(account)
    assert decode_leaf(leaf.encode()) == leaf
    assert leaf.encode() == encode_leaf(*fields)


@given(leaves)
def test_decode_reads_what_eth_abi_writes(fields: Fields) -> None:
    ((address, underlying, collateral, exit_value, held),) = eth_abi.decode(
        [LEAF_TYPE], encode_leaf(*fields)
    )
    leaf = decode_leaf(reference_encode(fields))
    assert leaf.account == address
    assert padded(leaf.underlying) == underlying
    assert (leaf.collateral, leaf.exit_value) == (collateral, exit_value)
    assert [(padded(n), s, b) for n, s, b in leaf.positions] == list(held)


def test_the_layout_word_by_word() -> None:
    data = encode_leaf("alice", "BTC", -5, 7, [("BTC_USDC-PERPETUAL", -1, 2)])
    words = [data[i : i + 32] for i in range(0, len(data), 32)]
    assert words == [
        word(0x20),
        bytes(12) + keccak(b"alice")[-20:],
        padded("BTC"),
        word(-5),
        word(7),
        word(0xA0),
        word(1),
        padded("BTC_USDC-PERPETUAL"),
        word(-1),
        word(2),
    ]


@given(st.tuples(int256s, int256s, int256s, int256s))
def test_system_leaf_is_eth_abi_encoding(amounts: tuple[int, int, int, int]) -> None:
    data = system_leaf(*amounts)
    assert data == eth_abi.encode([SYSTEM_TYPE], [(SYSTEM_TAG, *amounts)])
    assert len(data) == 160
    fee_pool, insurance_fund, backstop, dust = amounts
    assert decode_system_leaf(data) == SystemLeaf(
        fee_pool=fee_pool, insurance_fund=insurance_fund, backstop=backstop, dust=dust
    )


def test_mixed_case_addresses_commit_the_same_address() -> None:
    raw = bytes(range(20))
    assert account_address("0x" + raw.hex().upper()) == "0x" + raw.hex()
    assert account_address("0x" + raw.hex()) == "0x" + raw.hex()
    assert (
        account_address("0X" + raw.hex()) == "0x" + keccak(("0X" + raw.hex()).encode())[-20:].hex()
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (("", "BTC", 0, 0, ()), "account"),
        (("alice", "", 0, 0, ()), "1 to 32 UTF-8 bytes"),
        (("alice", "A" * 33, 0, 0, ()), "1 to 32 UTF-8 bytes"),
        (("alice", "A\x00B", 0, 0, ()), "without a zero byte"),
        (("alice", "BTC", 2**255, 0, ()), "collateral"),
        (("alice", "BTC", 0, -1, ()), "exit value"),
        (("alice", "BTC", 0, 2**256, ()), "exit value"),
        (("alice", "BTC", 0, 0, (("B", 1, 0), ("A", 1, 0))), "out of order"),
        (("alice", "BTC", 0, 0, (("A", 1, 0), ("A", 2, 0))), "out of order"),
        (("alice", "BTC", 0, 0, (("A", 0, 0),)), "size 0"),
        (("alice", "BTC", 0, 0, (("A", 2**255, 0),)), "size"),
        (("alice", "BTC", 0, 0, (("A", 1, INT256_MIN - 1),)), "cost basis"),
        (("alice", "BTC", True, 0, ()), "collateral"),
    ],
)
def test_values_outside_the_abi_types_are_programming_errors(fields: Fields, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        encode_leaf(*fields)


# -- strict decoding ---------------------------------------------------------------------------

VALID = encode_leaf("alice", "BTC", -5, 7, [("A", 1, -1), ("B", -2, 3)])


def replace_word(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + 32 :]


@given(leaves, st.data())
def test_truncated_or_extended_leaves_are_malformed(fields: Fields, data: st.DataObject) -> None:
    encoded = encode_leaf(*fields)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    malformed(encoded[:cut])
    malformed(encoded + data.draw(st.binary(min_size=1, max_size=200)))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (replace_word(VALID, 0, word(0x40)), "tuple offset word"),
        (replace_word(VALID, 0, word(0)), "tuple offset word"),
        (replace_word(VALID, 160, word(0xC0)), "positions offset word"),
        (replace_word(VALID, 192, word(1)), "length word says 1 positions, the data holds 2"),
        (replace_word(VALID, 192, word(3)), "length word says 3"),
        (replace_word(VALID, 192, word(2**255)), "length word says"),
        (VALID[:-96], "length word says 2 positions, the data holds 1"),
        (VALID + bytes(96), "length word says 2 positions, the data holds 3"),
        (VALID + b"\x00", "417 bytes: a leaf is 224 + 96 x positions bytes"),
        (VALID[:223], "223 bytes"),
        (b"", "0 bytes"),
        (b"\x01" + VALID[1:], "tuple offset word"),
        (VALID[:32] + b"\x01" + VALID[33:], "non-zero padding"),
        (VALID[:43] + b"\x01" + VALID[44:], "non-zero padding"),
        (replace_word(VALID, 64, bytes(32)), "underlying name is empty"),
        (replace_word(VALID, 64, b"BTC\x00X" + bytes(27)), "not right-padded"),
        (replace_word(VALID, 64, b"\x00BTC" + bytes(28)), "not right-padded"),
        (replace_word(VALID, 64, b"\xff\xfe" + bytes(30)), "not UTF-8"),
        (replace_word(VALID, 224, bytes(32)), "instrument name is empty"),
        (replace_word(VALID, 224, padded("C")), "'B' is out of order"),
        (replace_word(VALID, 320, padded("A")), "'A' is out of order or repeated"),
        (replace_word(VALID, 256, word(0)), "'A' has size 0"),
        (system_leaf(0, 0, 0, 0), "160 bytes"),
        (bytearray(VALID), "bytes, not bytearray"),
        ("0x" + VALID.hex(), "bytes, not str"),
    ],
)
def test_malformed_leaves_are_rejected(data: bytes, reason: str) -> None:
    assert reason in malformed(data)


def test_the_unmodified_leaf_decodes() -> None:
    assert decode_leaf(VALID).positions == (("A", 1, -1), ("B", -2, 3))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (system_leaf(1, 2, 3, 4)[:-1], "160 bytes"),
        (system_leaf(1, 2, 3, 4) + b"\x00", "160 bytes"),
        (padded("strikechain.other") + system_leaf(1, 2, 3, 4)[32:], "tag"),
        (VALID, "160 bytes"),
    ],
)
def test_malformed_system_leaves_are_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(Rejection) as caught:
        decode_system_leaf(data)
    assert caught.value.code == RejectCode.MALFORMED_LEAF
    assert reason in caught.value.message


@given(leaves, st.data())
def test_any_single_byte_change_is_rejected_or_decodes_differently(
    fields: Fields, data: st.DataObject
) -> None:
    """The encoding is canonical: no other bytes decode to the same leaf."""
    encoded = encode_leaf(*fields)
    offset = data.draw(st.integers(0, len(encoded) - 1))
    flipped = bytes([encoded[offset] ^ data.draw(st.integers(1, 255))])
    changed = encoded[:offset] + flipped + encoded[offset + 1 :]
    outcome = decode_or_code(changed)
    if isinstance(outcome, Leaf):
        assert outcome != decode_leaf(encoded)
        assert outcome.encode() == changed
    else:
        assert outcome == RejectCode.MALFORMED_LEAF


# -- the tree, the state root and proofs -------------------------------------------------------

rest_hashes = st.binary(min_size=32, max_size=32)


def build(ledgers: list[Fields]) -> tuple[LedgerTree, list[bytes]]:
    data = [system_leaf(10, 20, 0, 3), *(encode_leaf(*fields) for fields in ledgers)]
    tree = LedgerTree()
    tree.update(enumerate(data))
    return tree, data


def test_state_root_is_prefixed_keccak_of_the_two_roots() -> None:
    tree, _ = build([])
    rest = keccak(b"rest")
    assert tree.state_root(rest) == keccak(b"\x02" + tree.tree_root() + rest)
    assert state_root(tree.tree_root(), rest) == tree.state_root(rest)
    with pytest.raises(ValueError, match="rest hash must be 32 bytes"):
        tree.state_root(rest[:31])


@settings(max_examples=30)
@given(st.lists(leaves, max_size=8), rest_hashes)
def test_every_leaf_proves_against_the_state_root(ledgers: list[Fields], rest: bytes) -> None:
    tree, data = build(ledgers)
    root = tree.state_root(rest)
    for index, leaf in enumerate(data):
        proof = tree.proof(index)
        assert len(proof) == DEPTH
        assert verify_ledger(leaf, index, proof, rest, root)


@settings(max_examples=30)
@given(st.lists(leaves, min_size=1, max_size=6), rest_hashes, st.data())
def test_tampering_fails(ledgers: list[Fields], rest: bytes, choices: st.DataObject) -> None:
    tree, data = build(ledgers)
    root = tree.state_root(rest)
    index = choices.draw(st.integers(0, len(data) - 1))
    leaf, proof = data[index], tree.proof(index)
    assert verify_ledger(leaf, index, proof, rest, root)

    def flip(value: bytes) -> bytes:
        at = choices.draw(st.integers(0, len(value) - 1))
        return value[:at] + bytes([value[at] ^ 1]) + value[at + 1 :]

    height = choices.draw(st.integers(0, DEPTH - 1))
    bad_proof = [*proof[:height], flip(proof[height]), *proof[height + 1 :]]
    other = choices.draw(st.integers(0, 2**DEPTH - 1).filter(lambda i: i != index))
    assert not verify_ledger(flip(leaf), index, proof, rest, root)
    assert not verify_ledger(leaf + b"\x00", index, proof, rest, root)
    assert not verify_ledger(leaf, index, bad_proof, rest, root)
    assert not verify_ledger(leaf, index, proof, flip(rest), root)
    assert not verify_ledger(leaf, index, proof, rest, flip(root))
    assert not verify_ledger(leaf, other, proof, rest, root)
    assert not verify_ledger(leaf, index, proof, rest, tree.tree_root())


@pytest.mark.parametrize(
    "change",
    [
        {"leaf_data": "not bytes"},
        {"leaf_data": None},
        {"index": -1},
        {"index": 2**DEPTH},
        {"index": True},
        {"index": 1.0},
        {"proof": None},
        {"proof": "x" * DEPTH},
        {"proof": [b"\x00" * 32] * (DEPTH - 1)},
        {"proof": [b"\x00" * 31] * DEPTH},
        {"proof": iter([b"\x00" * 32] * DEPTH)},
        {"rest_hash": b"\x00" * 31},
        {"rest_hash": None},
        {"state_root": "00" * 32},
        {"state_root": b"\x00" * 33},
    ],
)
def test_verify_never_raises_on_malformed_input(change: dict[str, object]) -> None:
    tree, data = build([("alice", "BTC", 1, 1, ())])
    rest = keccak(b"rest")
    arguments: dict[str, object] = {
        "leaf_data": data[1],
        "index": 1,
        "proof": tree.proof(1),
        "rest_hash": rest,
        "state_root": tree.state_root(rest),
    }
    assert verify_ledger(**arguments)  # type: ignore[arg-type]
    arguments.update(change)
    assert not verify_ledger(**arguments)  # type: ignore[arg-type]


@settings(max_examples=30)
@given(st.lists(st.tuples(st.integers(0, 40), leaves), max_size=30), st.integers(1, 3))
def test_incremental_update_equals_from_scratch(
    writes: list[tuple[int, Fields]], batches: int
) -> None:
    tree = LedgerTree()
    tree.update([(0, system_leaf(0, 0, 0, 0))])
    tree.tree_root()
    final: dict[int, bytes] = {0: system_leaf(0, 0, 0, 0)}
    step = max(1, len(writes) // batches)
    for start in range(0, len(writes), step):
        batch = [(index, encode_leaf(*fields)) for index, fields in writes[start : start + step]]
        tree.update(batch)
        final.update(batch)
        tree.tree_root()  # rehash between batches: later batches touch only their paths
    scratch = LedgerTree()
    scratch.update(sorted(final.items()))
    assert tree.tree_root() == scratch.tree_root()
    assert len(tree) >= len(final)
    if sorted(final) == list(range(len(final))):
        dense = LedgerTree.from_leaves([final[i] for i in range(len(final))])
        assert dense.tree_root() == scratch.tree_root()


def test_dense_build_equals_updates() -> None:
    data = [system_leaf(1, 2, 3, 4), *(encode_leaf(f"a{i}", "BTC", i, i, ()) for i in range(9))]
    tree = LedgerTree()
    tree.update(enumerate(data))
    dense = LedgerTree.from_leaves(data)
    assert dense.tree_root() == tree.tree_root()
    assert dense.proof(5) == tree.proof(5)
    assert tree.tree_root() != LedgerTree().tree_root()
    assert tree.proof(3)[0] == leaf_hash(data[2])


# -- from the engine's sub-ledgers -------------------------------------------------------------


def test_ledger_leaf_of_an_engine_sub_ledger() -> None:
    venue = Venue()
    venue.deposit("alice", 10_000 * USDC)
    venue.deposit("bob", 10_000 * USDC)
    venue.place("bob", -1, TICKS_AT_100K, 4, post_only=PostOnly.REJECT)
    assert len(of_type(venue.place("alice", 1, TICKS_AT_100K, 4), Fill)) == 1
    venue.prices["BTC"] = 95_000 * USDC
    venue.events()
    market = venue.engine.markets[BTC_PERP]
    assert market.mark_per_lot > 0
    for account, position in (("alice", 4), ("bob", -4)):
        ledger = venue.ledger(account)
        leaf = decode_leaf(ledger_leaf(ledger))
        assert leaf.account == "0x" + keccak(account.encode())[-20:].hex()
        assert leaf.underlying == "BTC"
        assert leaf.collateral == ledger.cash
        assert leaf.positions == ((BTC_PERP, position, ledger.exposures[BTC_PERP].basis),)
        assert leaf.exit_value == max(0, ledger.cash + ledger.value) > 0
        assert leaf.exit_value == ledger.cash + position * market.mark_per_lot


def hand_made_ledger(cash: int, held: dict[str, tuple[int, int, int]]) -> SubLedger:
    """A sub-ledger with ``held[name] = (position, basis, mark_per_lot)``, in that order."""
    state = UnderlyingState(name="BTC", params=None, oracle=None)
    ledger = SubLedger(account="0x" + "AB" * 20, underlying="BTC", state=state, cash=cash)
    for name, (position, basis, mark) in held.items():
        market = Market(
            name=name,
            underlying="BTC",
            state=state,
            is_option=False,
            is_call=False,
            expiry_ns=0,
            strike_minor=0,
            tick_minor=1,
            value_per_tick_lot=1,
            lot_numerator=1,
            lot_denominator=1,
            mark_per_lot=mark,
        )
        ledger.exposures[name] = Exposure(
            ledger=ledger, market=market, position=position, basis=basis
        )
    return ledger


def test_ledger_leaf_sorts_positions_and_drops_flat_ones() -> None:
    ledger = hand_made_ledger(
        1_000,
        {
            "BTC_USDC-PERPETUAL": (2, 300, 100),
            "BTC_USDC-1JAN27-5-C": (0, 0, 7),
            "BTC_A": (-1, -50, 40),
        },
    )
    leaf = decode_leaf(ledger_leaf(ledger))
    assert leaf.account == "0x" + "ab" * 20
    assert leaf.positions == (("BTC_A", -1, -50), ("BTC_USDC-PERPETUAL", 2, 300))
    assert leaf.exit_value == 1_000 + 2 * 100 - 40


def test_exit_value_is_floored_at_zero() -> None:
    ledger = hand_made_ledger(-500, {"BTC_USDC-PERPETUAL": (3, 900, 100)})
    leaf = decode_leaf(ledger_leaf(ledger))
    assert (leaf.collateral, leaf.exit_value) == (-500, 0)
    ledger = hand_made_ledger(-500, {"BTC_USDC-PERPETUAL": (6, 900, 100)})
    assert decode_leaf(ledger_leaf(ledger)).exit_value == 100


# -- golden vectors ----------------------------------------------------------------------------


def test_golden_file_is_what_the_code_produces() -> None:
    assert json.loads(GOLDEN.read_text()) == vectors()


def test_golden_vectors_re_derived_with_eth_abi() -> None:
    document = json.loads(GOLDEN.read_text())
    rest = bytes.fromhex(document["rest_hash"][2:])
    root = bytes.fromhex(document["state_root"][2:])
    tree_root = bytes.fromhex(document["tree_root"][2:])
    assert keccak(b"\x02" + tree_root + rest) == root
    for entry in document["leaves"]:
        data = bytes.fromhex(entry["leaf_data"][2:])
        fields = entry["fields"]
        if entry["kind"] == "system":
            assert entry["index"] == 0
            amounts = [fields[k] for k in ("fee_pool", "insurance_fund", "backstop", "dust")]
            assert data == eth_abi.encode([SYSTEM_TYPE], [(SYSTEM_TAG, *amounts)])
        else:
            held = tuple((n, s, b) for n, s, b in fields["positions"])
            ledger: Fields = (
                fields["account"],
                fields["underlying"],
                fields["collateral"],
                fields["exit_value"],
                held,
            )
            assert data == reference_encode(ledger)
            assert fields["address"] == "0x" + reference_address(fields["account"]).hex()
        assert bytes.fromhex(entry["leaf_hash"][2:]) == keccak(b"\x00" + data)
        proof = [bytes.fromhex(h[2:]) for h in entry["proof"]]
        assert verify_ledger(data, entry["index"], proof, rest, root)
