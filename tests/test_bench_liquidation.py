"""The liquidation benchmark's scenario, small: the crash queues every long, the lane (default
bound and raised) empties the queue, money is conserved (checked inside the run), and the
metrics the README and the targets name are there. Timing is the benchmark's, not asserted."""

from __future__ import annotations

from strikechain.bench import liquidation
from strikechain.bench.runner import BENCHMARKS


def test_the_liquidation_benchmark_runs_small_and_reports_its_metrics() -> None:
    assert BENCHMARKS["liquidation"] == "strikechain.bench.liquidation"
    metrics = liquidation.run(longs=60, blocks_max=120, repeats=2)
    for key in (
        "liquidations_per_s",
        "crash_block_p99_ms",
        "crash_block_max_ms",
        "crash_block_p99_ms_1000_per_block",
        "reference_lane_off_block_p99_ms",
        "keeper_auction_block_p99_ms",
    ):
        assert metrics[key] > 0, key
    assert metrics["subledgers_under_water"] == 60
    assert metrics["liquidation_orders"] > 0
    assert metrics["insurance_payments"] == 60  # every long ends bankrupt, the fund pays
    assert metrics["crash_blocks_1000_per_block"] < metrics["crash_blocks"]
    assert all(type(value) is float for value in metrics.values())
