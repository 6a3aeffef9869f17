"""Crash recovery under load: a node streaming orders is killed with SIGKILL at random moments,
several times; after each restart every acknowledged order is in the log, and the log replays
from genesis to the same digests and roots (the restart itself recovered from the latest
snapshot and checked every recorded root)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from strikechain.engine import codec
from strikechain.engine.txs import PlaceOrder
from strikechain.runtime.replay import replay
from strikechain.runtime.sqlite_log import SqliteLog

ROOT = Path(__file__).resolve().parents[2]
KILLS = 4


def logged_orders(path: Path) -> tuple[dict[str, int], int]:
    found: dict[str, int] = {}
    with SqliteLog(path) as log:
        for record in log.records(1):
            for tx in codec.decode_block(record.block).transactions:
                if isinstance(tx, PlaceOrder):
                    found[tx.client_order_id] = record.height
        last = log.last_height()
    return found, last


def test_sigkill_under_load_loses_no_acknowledged_order(tmp_path: Path) -> None:
    rng = random.Random(20261206)  # the seed reproduces the kill times
    data, acked = tmp_path / "data", tmp_path / "acked.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STRIKECHAIN_NATIVE": "0"}
    total_acked = 0
    for kill in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.node.crash_child", str(data), str(acked)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        before = acked.read_text().count("\n") if acked.exists() else 0
        while (acked.read_text().count("\n") if acked.exists() else 0) < before + 50:
            assert child.poll() is None, child.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the node acknowledged nothing"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()  # type: ignore[union-attr]
        lines = [line.split() for line in acked.read_text().splitlines() if line.strip()]
        found, last = logged_orders(data / "blocks.sqlite")
        missing = [client for client, _ in lines if client not in found]
        assert not missing, f"kill {kill}: acknowledged but not in the log: {missing[:5]}"
        assert all(int(height) == found[client] for client, height in lines)
        assert all(int(height) <= last for _, height in lines)
        total_acked = len(lines)
        with SqliteLog(data / "blocks.sqlite") as log:
            report = replay(log)
        assert report.ok, report.mismatch
        assert report.end_height == last
    assert total_acked >= KILLS * 50
