"""The lab benchmark, small: the kernel, the bare heapq loop and SimPy (when installed) run the
same number of events; the consensus model commits its blocks; the metrics the README and the
targets name are there. Timing is the benchmark's, not asserted."""

from __future__ import annotations

import pytest

from strikechain.bench import lab
from strikechain.bench.runner import BENCHMARKS


def test_the_lab_benchmark_runs_small_and_reports_its_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert BENCHMARKS["lab"] == "strikechain.bench.lab"
    monkeypatch.setattr(lab, "EVENTS", 20_000)
    monkeypatch.setattr(lab, "CHAINS", 50)
    monkeypatch.setattr(lab, "REPEATS", 1)
    monkeypatch.setattr(lab, "CONSENSUS_BLOCKS", 20)
    monkeypatch.setattr(lab, "BENCH_DURATION_S", 10.0)
    monkeypatch.setattr(lab, "SWEEP_DURATION_S", 2.0)
    metrics = lab.run()
    for key in (
        "kernel_events_per_s",
        "reference_heapq_events_per_s",
        "kernel_vs_heapq",
        "consensus_blocks_per_s",
        "consensus_virtual_s_per_wall_s",
    ):
        assert metrics[key] > 0, key
    # four validators at 50 ms one way: each block costs the same message pattern
    assert 30 < metrics["consensus_events_per_block"] < 60
    assert metrics["agent_messages"] > 10_000  # a thousand agents for 13 simulated seconds
    assert 0.0 < metrics["agent_order_share"] < 1.0
    assert metrics["engine_tx_per_s"] > 0
    assert metrics["bench_1000_agents"] == 1_005  # with the five reporters
    assert metrics["demo_sim_seconds_per_wall_second"] > 0.0  # speed is the benchmark's
    assert metrics["sweep_runs"] == 18  # 3 block intervals x 2 designs x 3 seeds
    assert metrics["sweep_runs_per_minute"] > 0
    assert metrics["sweep_workers"] == 2
