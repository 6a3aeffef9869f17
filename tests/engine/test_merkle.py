"""The state tree: proofs verify, tampering fails, incremental equals scratch, golden vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sha3
from hypothesis import given, settings
from hypothesis import strategies as st

from strikechain.engine.merkle import (
    DEPTH,
    EMPTY,
    EMPTY_LEAF,
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    verify,
)

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "merkle_vectors.json"
SMALL_DEPTH = 6

hashes = st.binary(min_size=32, max_size=32)


def keccak(data: bytes) -> bytes:
    return sha3.keccak_256(data).digest()


def reference_root(leaves: dict[int, bytes], depth: int) -> bytes:
    """The root by the definition: every node of every level, no sparseness, no caching."""
    level = [leaves.get(i, EMPTY_LEAF) for i in range(1 << depth)]
    while len(level) > 1:
        level = [keccak(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def operations(depth: int) -> st.SearchStrategy[list[tuple[int, bytes]]]:
    """Sets of leaves, overwrites included (a small pool of indexes makes them likely)."""
    index = st.integers(0, (1 << depth) - 1)
    pool = st.lists(index, min_size=1, max_size=8, unique=True)
    return pool.flatmap(lambda ix: st.lists(st.tuples(st.sampled_from(ix), hashes), max_size=20))


def test_keccak_is_ethereums_not_nist_sha3() -> None:
    assert leaf_hash(b"") == keccak(b"\x00")
    assert keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def test_empty_tree_root_is_the_documented_empty_root() -> None:
    expected = EMPTY_LEAF
    for height in range(DEPTH + 1):
        assert EMPTY[height] == expected
        expected = keccak(b"\x01" + expected + expected)
    assert MerkleTree().root() == EMPTY_ROOT == EMPTY[DEPTH]
    assert MerkleTree.from_leaves([]).root() == EMPTY_ROOT
    assert MerkleTree(SMALL_DEPTH).root() == reference_root({}, SMALL_DEPTH)


@given(operations(SMALL_DEPTH), st.lists(st.integers(0, 3), max_size=4))
def test_incremental_root_equals_the_definition(
    ops: list[tuple[int, bytes]], root_after: list[int]
) -> None:
    tree = MerkleTree(SMALL_DEPTH)
    for step, (index, value) in enumerate(ops):
        tree.set(index, value)
        if step % 4 in root_after:
            tree.root()  # intermediate roots must not change the final one
    assert tree.root() == reference_root(dict(ops), SMALL_DEPTH)


@given(st.lists(hashes, max_size=40), operations(SMALL_DEPTH))
def test_from_leaves_then_updates_equals_from_scratch(
    leaves: list[bytes], ops: list[tuple[int, bytes]]
) -> None:
    dense = MerkleTree.from_leaves(leaves, SMALL_DEPTH)
    current = dict(enumerate(leaves))
    assert dense.root() == reference_root(current, SMALL_DEPTH)
    dense.set_many(ops)
    current.update(ops)
    assert dense.root() == reference_root(current, SMALL_DEPTH)
    sparse = MerkleTree(SMALL_DEPTH)
    sparse.set_many(current.items())
    assert sparse.root() == dense.root()


@given(st.lists(st.tuples(st.integers(0, (1 << DEPTH) - 1), hashes), min_size=1, max_size=12))
def test_full_depth_sparse_high_indexes(ops: list[tuple[int, bytes]]) -> None:
    incremental = MerkleTree()
    for index, value in ops:
        incremental.set(index, value)
        incremental.root()
    scratch = MerkleTree()
    scratch.set_many(sorted(dict(ops).items()))
    assert incremental.root() == scratch.root()
    root = scratch.root()
    for index, value in dict(ops).items():
        proof = scratch.proof(index)
        assert len(proof) == DEPTH
        assert verify(root, index, value, proof)


@given(st.lists(hashes, min_size=1, max_size=40), st.data())
def test_every_proof_verifies_and_tampering_fails(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.from_leaves(leaves)
    root = tree.root()
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = tree.proof(index)
    assert verify(root, index, leaves[index], proof)

    flip = data.draw(st.integers(0, 255))
    position = data.draw(st.integers(0, 31))

    def tampered(value: bytes) -> bytes:
        return value[:position] + bytes([value[position] ^ (flip or 1)]) + value[position + 1 :]

    assert not verify(root, index, tampered(leaves[index]), proof)
    assert not verify(tampered(root), index, leaves[index], proof)
    level = data.draw(st.integers(0, DEPTH - 1))
    bad_proof = [*proof[:level], tampered(proof[level]), *proof[level + 1 :]]
    assert not verify(root, index, leaves[index], bad_proof)
    other = data.draw(st.integers(0, (1 << DEPTH) - 1).filter(lambda i: i != index))
    # Moved to another index the proof fails, unless it is that index's own leaf and proof
    # (duplicate or empty leaves in mirrored positions).
    genuine = tree.get(other) == leaves[index] and tree.proof(other) == proof
    assert verify(root, other, leaves[index], proof) == genuine


def test_every_leaf_of_a_tree_verifies_after_updates() -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(37)]
    tree = MerkleTree.from_leaves(leaves)
    tree.set(3, leaf_hash(b"changed"))
    tree.set(1000, leaf_hash(b"far"))
    leaves[3] = leaf_hash(b"changed")
    root = tree.root()
    for index, value in [*enumerate(leaves), (1000, leaf_hash(b"far"))]:
        assert verify(root, index, value, tree.proof(index))
    assert verify(root, 500, EMPTY_LEAF, tree.proof(500))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: {**a, "proof": a["proof"][:-1]},
        lambda a: {**a, "proof": [*a["proof"], a["proof"][0]]},
        lambda a: {**a, "proof": None},
        lambda a: {**a, "proof": "x" * DEPTH},
        lambda a: {**a, "proof": [*a["proof"][:-1], 7]},
        lambda a: {**a, "proof": [*a["proof"][:-1], b"short"]},
        lambda a: {**a, "proof": [*a["proof"][:-1], bytearray(32)]},
        lambda a: {**a, "index": -1},
        lambda a: {**a, "index": 1 << DEPTH},
        lambda a: {**a, "index": "0"},
        lambda a: {**a, "index": 1.0},
        lambda a: {**a, "root": a["root"][:31]},
        lambda a: {**a, "root": a["root"].hex()},
        lambda a: {**a, "leaf_hash": None},
        lambda a: {**a, "depth": 0},
        lambda a: {**a, "depth": "32"},
    ],
)
def test_verify_returns_false_on_malformed_input(mutate: object) -> None:
    tree = MerkleTree.from_leaves([leaf_hash(b"a"), leaf_hash(b"b")])
    arguments = {"root": tree.root(), "index": 1, "leaf_hash": leaf_hash(b"b")}
    arguments["proof"] = tree.proof(1)
    assert verify(**arguments)  # type: ignore[arg-type]
    assert verify(**mutate(arguments)) is False  # type: ignore[operator]


def test_bad_input_is_a_value_error() -> None:
    tree = MerkleTree(SMALL_DEPTH)
    with pytest.raises(ValueError, match="outside"):
        tree.set(1 << SMALL_DEPTH, EMPTY_LEAF)
    with pytest.raises(ValueError, match="outside"):
        tree.proof(-1)
    with pytest.raises(ValueError, match="32 bytes"):
        tree.set(0, b"short")
    with pytest.raises(ValueError, match="bytes"):
        MerkleTree.from_leaves(["00" * 32])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree.from_leaves([b"x" * 33])
    with pytest.raises(ValueError, match="do not fit"):
        MerkleTree.from_leaves([EMPTY_LEAF] * 5, depth=2)
    with pytest.raises(ValueError, match="depth"):
        MerkleTree(0)


@settings(max_examples=20)
@given(st.integers(0, 70))
def test_odd_and_even_sizes_match_incremental(size: int) -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(size)]
    incremental = MerkleTree()
    incremental.set_many(enumerate(leaves))
    assert MerkleTree.from_leaves(leaves).root() == incremental.root()


def test_golden_vectors() -> None:
    document = json.loads(GOLDEN.read_text())
    assert document["depth"] == DEPTH
    assert document["empty_root"] == "0x" + EMPTY_ROOT.hex()
    assert document["empty_subtrees"] == ["0x" + h.hex() for h in EMPTY]
    for entry in document["trees"]:
        size = entry["leaves"]
        tree = MerkleTree()
        tree.set_many((i, leaf_hash(i.to_bytes(32, "big"))) for i in range(size))
        root = bytes.fromhex(entry["root"][2:])
        assert tree.root() == root, f"root of {size} leaves"
        for vector in entry["proofs"]:
            index = vector["index"]
            data = bytes.fromhex(vector["leaf_data"][2:])
            assert data == index.to_bytes(32, "big")
            assert bytes.fromhex(vector["leaf_hash"][2:]) == leaf_hash(data)
            proof = [bytes.fromhex(h[2:]) for h in vector["proof"]]
            assert tree.proof(index) == proof
            assert verify(root, index, leaf_hash(data), proof)
