"""Write tests/golden/merkle_vectors.json: roots and proofs of the state tree for small sizes.

The vectors pin the tree's hashing (keccak-256, the 0x00 / 0x01 domain prefixes, the zero
empty leaf, depth 32) for the settlement contract's tests to share. Leaf ``i``'s encoded bytes
are ``i`` as a 32-byte big-endian integer (Solidity's ``abi.encode(uint256(i))``); its leaf
hash is ``keccak(0x00 || data)``. They change only when the tree changes on purpose; then rerun

    .venv/bin/python tools/make_merkle_golden.py

and review the diff. tests/engine/test_merkle.py recomputes every value and compares.
"""

from __future__ import annotations

import json
from pathlib import Path

from strikechain.engine.merkle import DEPTH, EMPTY, EMPTY_ROOT, MerkleTree, leaf_hash

PATH = Path(__file__).resolve().parent.parent / "tests" / "golden" / "merkle_vectors.json"
SIZES = (0, 1, 2, 3, 5, 8, 17)


def leaf_data(i: int) -> bytes:
    """Leaf ``i``'s encoded bytes: ``abi.encode(uint256(i))``."""
    return i.to_bytes(32, "big")


def _proof_indexes(size: int) -> list[int]:
    return sorted({0, size // 2, size - 1}) if size else []


def vectors() -> dict[str, object]:
    """The document: conventions, empty subtrees and, per size, the root and some proofs."""
    trees = []
    for size in SIZES:
        leaves = [leaf_hash(leaf_data(i)) for i in range(size)]
        tree = MerkleTree.from_leaves(leaves)
        proofs = [
            {
                "index": i,
                "leaf_data": "0x" + leaf_data(i).hex(),
                "leaf_hash": "0x" + leaves[i].hex(),
                "proof": ["0x" + h.hex() for h in tree.proof(i)],
            }
            for i in _proof_indexes(size)
        ]
        trees.append({"leaves": size, "root": "0x" + tree.root().hex(), "proofs": proofs})
    return {
        "description": (
            "keccak-256 binary tree of fixed depth; leaf_hash = keccak(0x00 || data), "
            "node = keccak(0x01 || left || right), empty leaf = 32 zero bytes, proofs are "
            "sibling hashes bottom-up (bit h of the index: 1 = path node is the right child). "
            "Leaf i's data is abi.encode(uint256(i))."
        ),
        "depth": DEPTH,
        "empty_root": "0x" + EMPTY_ROOT.hex(),
        "empty_subtrees": ["0x" + h.hex() for h in EMPTY],
        "trees": trees,
    }


def main() -> None:
    PATH.write_text(json.dumps(vectors(), indent=1) + "\n")
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
