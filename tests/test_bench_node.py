"""``bench node`` runs end to end, small: every metric present and positive (no timing
assertions: speed is the benchmark's to report)."""

from __future__ import annotations

import pytest

from strikechain.bench import node as bench


def test_bench_node_reports_every_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "ACCOUNTS": 2, "CONNECTIONS": 2, "IN_FLIGHT": 4, "HTTP_CONCURRENCY": 4,
        "PHASE_S": 0.5, "WARMUP_S": 0.2, "VERIFICATIONS": 50, "ETH_ACCOUNT_VERIFICATIONS": 5,
        "BLOCK_INTERVAL_MS": 20.0,
    }.items():  # fmt: skip
        monkeypatch.setattr(bench, name, value)
    results = bench.run()
    for key in (
        "ws_orders_per_s", "ws_placements_per_s", "http_orders_per_s", "ack_latency_p50_ms",
        "ack_latency_p99_ms", "eip712_verifications_per_s",
        "eip712_eth_account_verifications_per_s", "latency_offered_per_s",
        "blocks_per_s_under_load",
    ):  # fmt: skip
        assert results[key] > 0, key
    assert results["node_halted"] == 0
    assert results["ws_errors"] == results["http_errors"] == results["latency_errors"] == 0
