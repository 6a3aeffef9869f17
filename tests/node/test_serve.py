"""``strikechain serve --dev --with-market-makers``: a funded development venue over HTTP with
the lab's market makers quoting both perpetuals and the BTC options, restartable."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from strikechain.engine import codec
from strikechain.engine.txs import PlaceOrder
from strikechain.runtime.sqlite_log import SqliteLog

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body


def serve(
    data: Path, keys: Path, port: int, seconds: float, *extra: str
) -> subprocess.Popen[bytes]:
    command = ["serve", "--dev", "--data-dir", str(data), "--port", str(port)]
    command += ["--dev-keys-out", str(keys), "--stop-after", str(seconds), *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "strikechain", *command],
        cwd=ROOT,
        env={**os.environ, "STRIKECHAIN_NATIVE": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_status(port: int, predicate: object, seconds: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while True:
        try:
            status: dict[str, object] = json.loads(get(f"http://127.0.0.1:{port}/status"))
            if predicate(status):  # type: ignore[operator]
                return status
        except OSError:
            pass
        assert time.monotonic() < deadline, "the node did not get there in time"
        time.sleep(0.2)


def test_dev_node_funds_ten_accounts_serves_metrics_and_restarts(tmp_path: Path) -> None:
    data, keys, port = tmp_path / "data", tmp_path / "keys.json", free_port()
    node = serve(data, keys, port, 8.0, "--with-market-makers")
    try:
        status = wait_status(port, lambda s: s["height"] > 5 and s["acks"] >= 20)
        assert status["halted"] is None
        metrics = get(f"http://127.0.0.1:{port}/metrics").decode()
        assert "strikechain_blocks_total" in metrics
        assert "strikechain_ack_latency_seconds_bucket" in metrics
    finally:
        _, err = node.communicate(timeout=60)
    assert node.returncode == 0, err.decode()[-2000:]
    accounts = json.loads(keys.read_text())
    assert len(accounts) == 10
    assert set(accounts[0]) == {"api_key", "api_secret", "address", "private_key"}
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    makers = {accounts[0]["address"], accounts[1]["address"]}
    with SqliteLog(data / "blocks.sqlite") as log:
        quotes = [
            tx
            for record in log.records(1)
            for tx in codec.decode_block(record.block).transactions
            if isinstance(tx, PlaceOrder) and tx.account in makers
        ]
    quoted = {tx.instrument for tx in quotes}
    assert {"BTC_USDC-PERPETUAL", "ETH_USDC-PERPETUAL"} <= quoted
    assert any(name.startswith("BTC_USDC-") and name.endswith(("-C", "-P")) for name in quoted)
    assert {tx.side for tx in quotes} == {1, -1}
    # Restarted: the same accounts, nothing funded twice, the chain and the log recovered.
    port = free_port()
    again = serve(data, keys, port, 4.0)
    try:
        status = wait_status(port, lambda s: s["height"] > 0)
    finally:
        again.communicate(timeout=60)
    assert again.returncode == 0
    assert json.loads(keys.read_text()) == accounts
