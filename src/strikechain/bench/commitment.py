"""``strikechain bench commitment``: the state commitment's hashing and tree (issue 5, part).

The workload (seeded, generated before timing): 1,000,000 leaves of 100 bytes each (about the
size of an encoded sub-ledger with a few positions), their leaf hashes, and 10,000 random leaf
updates drawn from the same generator.

- ``leaf_hash_1m_s``: ``leaf_hash`` over the 1M encoded leaves.
- ``merkle_root_1m_leaves_s``: ``MerkleTree.from_leaves`` over the 1M leaf hashes, from
  scratch, to the root (depth 32, so 12 levels of single nodes above the 2**20-leaf subtree).
- ``merkle_update_10k_leaves_s``: 10,000 ``set`` calls at random indexes of that tree, then
  ``root()``, which rehashes only the touched paths.

Each is the best of a few repetitions. The reference is the keccak binding itself:
``keccak_1m_64b_s`` times one million bare 65-byte keccak calls, about what a 1M-leaf tree
costs at the least. ``replay_blocks_per_s`` and ``log_append_blocks_per_s`` come with the
runtime and the block log.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import sha3

from strikechain.engine.merkle import MerkleTree, leaf_hash

LEAVES = 1_000_000
LEAF_BYTES = 100
UPDATES = 10_000
REPEATS = 3
SEED = 20261125


def _best(repeats: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs of ``work``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def run() -> dict[str, float]:
    rng = np.random.default_rng(SEED)
    blob = rng.bytes(LEAVES * LEAF_BYTES)
    encoded = [blob[i : i + LEAF_BYTES] for i in range(0, len(blob), LEAF_BYTES)]
    hashes = [leaf_hash(data) for data in encoded]
    indexes = rng.integers(0, LEAVES, size=UPDATES).tolist()
    new_hashes = [leaf_hash(rng.bytes(LEAF_BYTES)) for _ in range(UPDATES)]
    updates = list(zip(indexes, new_hashes, strict=True))

    leaf_hash_s = _best(REPEATS, lambda: [leaf_hash(data) for data in encoded])
    root_s = _best(REPEATS, lambda: MerkleTree.from_leaves(hashes).root())

    update_s = float("inf")
    for _ in range(REPEATS):
        tree = MerkleTree.from_leaves(hashes)
        tree.root()
        start = time.perf_counter()
        tree.set_many(updates)
        tree.root()
        update_s = min(update_s, time.perf_counter() - start)

    pairs = b"\x01" + bytes(64)
    keccak = sha3.keccak_256
    keccak_s = _best(REPEATS, lambda: [keccak(pairs).digest() for _ in range(LEAVES)])
    return {
        "leaf_hash_1m_s": leaf_hash_s,
        "merkle_root_1m_leaves_s": root_s,
        "merkle_update_10k_leaves_s": update_s,
        "keccak_1m_64b_s": keccak_s,
    }
