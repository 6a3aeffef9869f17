"""A seeded run of 100,000 transactions: the same events every time, whatever the hash seed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import msgspec

from strikechain.bench.engine import Workload
from strikechain.engine.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = 100  # of 1,000 transactions each


def run_digest(check_every_block: bool = False) -> str:
    """SHA-256 of every block's encoded events, in order, for the seeded workload."""
    workload = Workload(blocks=BLOCKS)
    engine = Engine(margin=None)
    digest = hashlib.sha256()
    encoder = msgspec.msgpack.Encoder()
    transactions = 0
    for block in workload.blocks:
        result = engine.apply(block)
        assert not result.rejected, result.reason
        transactions += len(block.transactions)
        digest.update(encoder.encode(result.events))
        if check_every_block:
            engine.check()
    assert transactions >= 100_000
    return digest.hexdigest()


def test_identical_events_across_runs_and_hash_seeds() -> None:
    first = run_digest(check_every_block=True)
    assert run_digest() == first
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        code = "from tests.engine.test_determinism import run_digest; print(run_digest())"
        result = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout.strip() == first, f"PYTHONHASHSEED={seed} changed the events"
