"""``strikechain bench commitment``: the state commitment's hashing and tree (issue 5, part).

The workload (seeded, generated and encoded before timing): 1,000,000 sub-ledger leaves made by
the real encoder (:func:`strikechain.engine.commitment.encode_leaf`): random addresses, BTC or
ETH, signed collateral and 0 to 4 positions from a chain of 35 instruments, so 224 to 608
bytes, about 400 on average; their leaf hashes; and 10,000 leaf updates (fresh leaves at random
indexes) drawn from the same generator. Encoding is not timed.

- ``leaf_hash_1m_s``: ``merkle.leaf_hash`` over the 1M encoded leaves (hashing only).
- ``merkle_root_1m_leaves_s``: ``MerkleTree.from_leaves`` over the 1M leaf hashes, from
  scratch, to the root (depth 32, so 12 levels of single nodes above the 2**20-leaf subtree).
- ``merkle_update_10k_leaves_s``: 10,000 ``set`` calls at random indexes of that tree, then
  ``root()``, which rehashes only the touched paths.

Each is the best of a few repetitions. The reference is the keccak binding itself:
``keccak_1m_64b_s`` times one million bare 65-byte keccak calls, about what a 1M-leaf tree
costs at the least.

The block log and replay, on a seeded scripted session of :data:`LOG_BLOCKS` blocks of about
100 transactions (its blocks generated before timing):

- ``live_blocks_per_s`` (the reference): the live path of a node, every transaction arriving
  as its canonical bytes and decoded at ingress, submitted to the runtime's inbox, each block
  cut, applied, its root attached every 50 blocks, and appended to a SQLite log (WAL,
  ``synchronous=NORMAL``: no fsync, so the engine's and the codec's costs are what is
  compared); ``live_in_process_blocks_per_s`` the same with the transactions handed over as
  objects (the lab's agents: no ingress decoding at all);
- ``replay_blocks_per_s``: :func:`strikechain.runtime.replay` of that log from genesis: every
  block decoded (and checked canonical), applied, its digest and roots compared. Target: at
  least ``live_blocks_per_s`` (``replay_vs_live`` >= 1); ``replay_vs_live_in_process`` is
  against the in-process path, which skips the decoding that replay cannot;
- ``log_append_blocks_per_s``: appending those blocks' records (encoded beforehand) to a fresh
  SQLite log with the node's durable setting (``synchronous=FULL``: one fsync per block), and
  ``log_append_blocks_per_s_sync_normal`` without the fsync.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sha3

from strikechain.engine import codec
from strikechain.engine.commitment import encode_leaf
from strikechain.engine.merkle import MerkleTree, leaf_hash
from strikechain.engine.txs import Block
from strikechain.runtime import (
    ArrivalOrder,
    BlockPolicy,
    BlockRecord,
    External,
    Genesis,
    Runtime,
    RuntimeConfig,
    SqliteLog,
    Sync,
    replay,
)
from strikechain.sim.scripted import ScriptedSession, SessionParams

LEAVES = 1_000_000
POSITIONS_MAX = 4
UPDATES = 10_000
REPEATS = 3
SEED = 20261125
LOG_BLOCKS = 500
ROOT_EVERY = 50


def _best(repeats: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs of ``work``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def _instruments(underlying: str) -> list[str]:
    """A perpetual and a chain of calls and puts, in name order (as leaves list positions)."""
    strikes = range(60_000, 140_001, 5_000) if underlying == "BTC" else range(2_000, 6_001, 250)
    options = [f"{underlying}_USDC-27DEC26-{k}-{kind}" for k in strikes for kind in "CP"]
    return sorted([f"{underlying}_USDC-PERPETUAL", *options], key=str.encode)


def _leaves(rng: np.random.Generator, count: int) -> list[bytes]:
    """``count`` encoded sub-ledger leaves (see the module docstring), drawn in bulk."""
    chains = [_instruments("BTC"), _instruments("ETH")]
    addresses = rng.bytes(20 * count)
    collateral = rng.integers(-(10**9), 10**12, size=count).tolist()
    underlyings = rng.integers(0, 2, size=count).tolist()
    held = rng.integers(0, POSITIONS_MAX + 1, size=count).tolist()
    picks = rng.integers(0, min(map(len, chains)), size=(count, POSITIONS_MAX)).tolist()
    sizes = rng.integers(1, 10**6, size=(count, POSITIONS_MAX))
    sizes *= rng.choice((-1, 1), size=(count, POSITIONS_MAX))
    size_rows = sizes.tolist()
    leaves = []
    for i in range(count):
        chain = chains[underlyings[i]]
        chosen = sorted(set(picks[i][: held[i]]))  # a repeated pick holds one position fewer
        row = size_rows[i]
        positions = [
            (chain[pick], row[j], row[j] * 1_000 * (pick + 1)) for j, pick in enumerate(chosen)
        ]
        cash = collateral[i]
        account = "0x" + addresses[20 * i : 20 * i + 20].hex()
        underlying = "ETH" if underlyings[i] else "BTC"
        leaves.append(encode_leaf(account, underlying, cash, max(0, cash), positions))
    return leaves


def run() -> dict[str, float]:
    rng = np.random.default_rng(SEED)
    encoded = _leaves(rng, LEAVES)
    hashes = [leaf_hash(data) for data in encoded]
    indexes = rng.integers(0, LEAVES, size=UPDATES).tolist()
    new_hashes = [leaf_hash(data) for data in _leaves(rng, UPDATES)]
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
        **_log_and_replay(),
    }


def _live(
    session: ScriptedSession, blocks: list[Block], path: Path, *, from_bytes: bool = True
) -> float:
    """Seconds to run ``blocks`` through the runtime into a SQLite log at ``path``: each
    transaction arrives as its canonical bytes and is decoded at ingress, as a node receives
    it (``from_bytes``), or is handed over as an object, as the lab's agents do."""
    wire = (
        [[codec.encode_transaction(tx) for tx in block.transactions] for block in blocks]
        if from_bytes
        else None
    )
    decode = codec.decode_transaction
    with SqliteLog(path, sync=Sync.NORMAL) as log:
        genesis = Genesis(venue=session.venue)
        log.write_genesis(genesis)
        runtime = Runtime(
            genesis.build_engine(),
            log,
            BlockPolicy(ArrivalOrder(), External()),
            RuntimeConfig(root_every=ROOT_EVERY),
        )
        submit = runtime.submit
        start = time.perf_counter()
        for index, block in enumerate(blocks):
            now = block.timestamp_ns
            arriving = (
                block.transactions if wire is None else [decode(data) for data in wire[index]]
            )
            for tx in arriving:
                submit(tx, now)
            runtime.cut(now)
        return time.perf_counter() - start


def _append(records: list[BlockRecord], genesis: Genesis, path: Path, sync: Sync) -> float:
    with SqliteLog(path, sync=sync) as log:
        log.write_genesis(genesis)
        start = time.perf_counter()
        for record in records:
            log.append(record)
        return time.perf_counter() - start


def _log_and_replay() -> dict[str, float]:
    session = ScriptedSession(SessionParams(seed=SEED, blocks=LOG_BLOCKS))
    blocks = list(session.blocks())
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        live_s = min(_live(session, blocks, folder / f"live-{i}.sqlite") for i in range(2))
        objects_s = min(
            _live(session, blocks, folder / f"objects-{i}.sqlite", from_bytes=False)
            for i in range(2)
        )
        with SqliteLog(folder / "live-0.sqlite") as log:
            records = list(log.records())
            genesis = log.get_genesis()
            reports = [replay(log) for _ in range(2)]
        if genesis is None or not all(report.ok for report in reports):
            raise RuntimeError("the benchmark's block log did not replay")
        replay_s = min(report.seconds for report in reports)
        full_s = _append(records, genesis, folder / "append-full.sqlite", Sync.FULL)
        normal_s = _append(records, genesis, folder / "append-normal.sqlite", Sync.NORMAL)
    count = len(blocks)
    return {
        "live_blocks_per_s": count / live_s,
        "live_in_process_blocks_per_s": count / objects_s,
        "replay_blocks_per_s": count / replay_s,
        "replay_vs_live": live_s / replay_s,
        "replay_vs_live_in_process": objects_s / replay_s,
        "log_append_blocks_per_s": count / full_s,
        "log_append_blocks_per_s_sync_normal": count / normal_s,
        "log_transactions_per_block": sum(len(b.transactions) for b in blocks) / count,
    }
