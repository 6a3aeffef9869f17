"""The state commitment's tree: a keccak-256 binary Merkle tree of fixed depth, with proofs.

Why fixed depth: a proof is always :data:`DEPTH` sibling hashes and a leaf's position is its
index, so the settlement contract checks a proof with one loop of known length and no
per-tree parameters, and adding leaves never moves another leaf or changes the proof format.

Hashing (all keccak-256, Ethereum's, not NIST SHA3-256)
- A leaf commits to its encoded bytes as ``leaf_hash(data) = keccak(0x00 || data)``.
- An inner node is ``keccak(0x01 || left || right)`` over its two 32-byte children.
- The one-byte prefixes separate the domains: no leaf's bytes can be passed off as an inner
  node (a 64-byte leaf cannot stand in for a subtree), nor an inner node for a leaf.
- An unset leaf slot holds :data:`EMPTY_LEAF`, 32 zero bytes (not the hash of anything: keccak
  does not output it in practice). The empty subtree of height ``h`` is ``EMPTY[0] =
  EMPTY_LEAF``, ``EMPTY[h + 1] = keccak(0x01 || EMPTY[h] || EMPTY[h])``, precomputed, so an
  empty tree's root is ``EMPTY[DEPTH]`` (:data:`EMPTY_ROOT`).

Layout
- Level 0 holds leaf hashes, level ``DEPTH`` the root; node ``i`` of level ``h`` has children
  ``2i`` and ``2i + 1`` of level ``h - 1``. A proof lists the siblings bottom-up: element
  ``h`` is the sibling at level ``h`` of the path from the leaf, so bit ``h`` of the index says
  whether the path node is the right (1) or left (0) child.

Invariants
- Levels are stored sparsely (per level, a dense list of the prefix :meth:`MerkleTree.from_leaves`
  filled and a dict of the nodes computed beyond it), so memory is proportional to the number
  of set leaves times the depth of their paths; a missing node is the empty subtree of its
  height.
- :meth:`MerkleTree.root` rehashes only the paths of leaves set since the last root, level by
  level, each level's dirty parents in index order; the result equals :meth:`from_leaves`
  over the same leaves (the tests check it).
- :func:`verify` is a pure function that never raises: malformed input is simply ``False``.

Limits
- ``DEPTH = 32``: up to 2**32 leaves. Indexes outside ``0 .. 2**depth - 1`` and hashes that are
  not exactly 32 bytes are programming errors (``ValueError``), not input to judge.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Final

import sha3

DEPTH: Final = 32
"""Levels below the root: 2**32 leaf slots, proofs of 32 hashes."""
DEPTH_MAX: Final = 256
HASH_BYTES: Final = 32
LEAF_PREFIX: Final = b"\x00"
NODE_PREFIX: Final = b"\x01"
EMPTY_LEAF: Final = bytes(HASH_BYTES)
"""The value of a leaf slot that was never set."""

_keccak = sha3.keccak_256


def leaf_hash(data: bytes) -> bytes:
    """``keccak(0x00 || data)``: the tree's commitment to one encoded leaf."""
    digest: bytes = _keccak(LEAF_PREFIX + data).digest()
    return digest


def node_hash(left: bytes, right: bytes) -> bytes:
    """``keccak(0x01 || left || right)``: an inner node over its two children."""
    digest: bytes = _keccak(NODE_PREFIX + left + right).digest()
    return digest


def _require_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise ValueError(f"{what} must be {HASH_BYTES} bytes, got {value!r:.80}")


def _require_depth(depth: int) -> None:
    if not 1 <= depth <= DEPTH_MAX:
        raise ValueError(f"tree depth {depth} is outside 1 .. {DEPTH_MAX}")


@functools.cache
def empty_subtrees(depth: int = DEPTH) -> tuple[bytes, ...]:
    """``EMPTY[0 .. depth]``: the hash of an empty subtree of each height (``EMPTY[0]`` a leaf)."""
    _require_depth(depth)
    hashes = [EMPTY_LEAF]
    for _ in range(depth):
        hashes.append(node_hash(hashes[-1], hashes[-1]))
    return tuple(hashes)


EMPTY: Final = empty_subtrees(DEPTH)
EMPTY_ROOT: Final = EMPTY[DEPTH]
"""The root of a tree with no leaf set."""


class MerkleTree:
    """A sparse keccak-256 tree of fixed depth; set leaf hashes, read the root and proofs.

    Each level is a dense list (nodes ``0 .. n - 1``, filled by :meth:`from_leaves`) and a
    dict of the nodes computed beyond it; a node in neither is the empty subtree.
    """

    __slots__ = ("_dense", "_depth", "_dirty", "_empty", "_sparse")

    def __init__(self, depth: int = DEPTH) -> None:
        _require_depth(depth)
        self._depth = depth
        self._empty = empty_subtrees(depth)
        self._dense: list[list[bytes]] = [[] for _ in range(depth + 1)]
        self._sparse: list[dict[int, bytes]] = [{} for _ in range(depth + 1)]
        self._dirty: set[int] = set()

    @property
    def depth(self) -> int:
        return self._depth

    def __len__(self) -> int:
        """Leaf slots ever set (a slot set to :data:`EMPTY_LEAF` counts)."""
        return len(self._dense[0]) + len(self._sparse[0])

    def set(self, index: int, leaf_hash: bytes) -> None:
        """Put ``leaf_hash`` at ``index``; the root is rehashed lazily, by :meth:`root`."""
        self._require_index(index)
        _require_hash(leaf_hash, "leaf hash")
        dense = self._dense[0]
        if index < len(dense):
            dense[index] = leaf_hash
        else:
            self._sparse[0][index] = leaf_hash
        self._dirty.add(index)

    def set_many(self, items: Iterable[tuple[int, bytes]]) -> None:
        """:meth:`set` each ``(index, leaf_hash)`` in order (a later write to an index wins)."""
        for index, hash_ in items:
            self.set(index, hash_)

    def get(self, index: int) -> bytes:
        """The leaf hash at ``index`` (:data:`EMPTY_LEAF` if never set)."""
        self._require_index(index)
        return self._node(0, index)

    def root(self) -> bytes:
        """The root, after rehashing the paths of the leaves set since the last call."""
        if self._dirty:
            self._rehash(sorted(self._dirty))
            self._dirty = set()
        return self._node(self._depth, 0)

    def proof(self, index: int) -> list[bytes]:
        """The :attr:`depth` sibling hashes of leaf ``index``'s path, bottom-up.

        Brings the tree up to date first (as :meth:`root` does), so the proof is against the
        current root.
        """
        self._require_index(index)
        self.root()
        siblings = []
        for height in range(self._depth):
            siblings.append(self._node(height, index ^ 1))
            index >>= 1
        return siblings

    @classmethod
    def from_leaves(cls, hashes: Sequence[bytes], depth: int = DEPTH) -> MerkleTree:
        """A tree whose leaves ``0 .. len(hashes) - 1`` are ``hashes``, built level by level.

        The dense path: each level is one pass over the concatenated level below, so a million
        leaves cost about a million keccak calls and no per-node bookkeeping.
        """
        tree = cls(depth)
        if len(hashes) > 1 << depth:
            raise ValueError(f"{len(hashes)} leaves do not fit a tree of depth {depth}")
        if set(map(type, hashes)) - {bytes}:
            raise ValueError("leaf hashes must be bytes")
        lengths = set(map(len, hashes)) - {HASH_BYTES}
        if lengths:
            raise ValueError(f"leaf hash must be {HASH_BYTES} bytes, got one of {min(lengths)}")
        keccak = _keccak
        prefix = NODE_PREFIX
        level = list(hashes)
        for height in range(depth + 1):
            tree._dense[height] = level
            if height == depth or not level:
                break
            joined = b"".join(level)
            if len(level) % 2:
                joined += tree._empty[height]
            level = [
                keccak(prefix + joined[i : i + 64]).digest() for i in range(0, len(joined), 64)
            ]
        return tree

    def _node(self, height: int, index: int) -> bytes:
        dense = self._dense[height]
        if index < len(dense):
            return dense[index]
        return self._sparse[height].get(index, self._empty[height])

    def _rehash(self, indexes: list[int]) -> None:
        """Recompute the ancestors of leaves ``indexes``, one level at a time, in index order."""
        keccak = _keccak
        prefix = NODE_PREFIX
        for height in range(self._depth):
            dense, sparse = self._dense[height], self._sparse[height]
            dense_above, sparse_above = self._dense[height + 1], self._sparse[height + 1]
            size, size_above = len(dense), len(dense_above)
            blank = self._empty[height]
            parents = sorted({i >> 1 for i in indexes})
            for parent in parents:
                left_index = 2 * parent
                right_index = left_index + 1
                left = dense[left_index] if left_index < size else sparse.get(left_index, blank)
                right = dense[right_index] if right_index < size else sparse.get(right_index, blank)
                node = keccak(prefix + left + right).digest()
                if parent < size_above:
                    dense_above[parent] = node
                else:
                    sparse_above[parent] = node
            indexes = parents

    def _require_index(self, index: int) -> None:
        if not 0 <= index < 1 << self._depth:
            raise ValueError(f"leaf index {index} is outside 0 .. 2**{self._depth} - 1")


def verify(
    root: object, index: object, leaf_hash: object, proof: object, depth: object = DEPTH
) -> bool:
    """Whether ``proof`` (``depth`` sibling hashes, from the leaf up) shows ``leaf_hash`` at
    ``index`` under ``root``; never raises. The parameters are typed ``object`` because they
    come from anyone: compiled, a narrower annotation would be checked at the call and raise."""
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= DEPTH_MAX:
        return False
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 1 << depth:
        return False
    if not (isinstance(root, bytes) and len(root) == HASH_BYTES):
        return False
    if not (isinstance(leaf_hash, bytes) and len(leaf_hash) == HASH_BYTES):
        return False
    if not isinstance(proof, (list, tuple)) or len(proof) != depth:
        return False
    node = leaf_hash
    position = index
    for sibling in proof:
        if not (isinstance(sibling, bytes) and len(sibling) == HASH_BYTES):
            return False
        node = node_hash(sibling, node) if position & 1 else node_hash(node, sibling)
        position >>= 1
    return node == root
