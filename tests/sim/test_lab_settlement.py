"""The lab's venue settling on the embedded chain: batches chain and verify from the chain's
data alone, the money on chain matches the engine after every batch (checked inside), and the
settlement metrics are what the batches say."""

from __future__ import annotations

import math

import pytest

from strikechain.engine.commitment import account_address
from strikechain.settlement.verifier import verify_batches
from strikechain.sim.run import Run
from strikechain.sim.scenario import ScenarioError, parse_scenario
from tests.sim.test_designs import SCENARIO

SETTLED = (
    SCENARIO
    + """
[settlement]
enabled = true
batch_interval_s = 4.0
challenge_window_s = 300
l1_block_s = 12.0
"""
)


@pytest.fixture(scope="module")
def settled() -> tuple[Run, dict[str, float | int]]:
    run = Run(parse_scenario(SETTLED))
    result = run.execute()
    return run, result.metrics


def test_every_batch_is_committed_and_rebuilt_from_the_chain(settled: tuple[Run, dict]) -> None:  # type: ignore[type-arg]
    run, metrics = settled
    lab = run.settlement
    assert lab is not None
    records = lab.operator.records
    assert len(records) - 1 == metrics["settlement_batches"] >= 5
    assert records[-1].last_block == run.engine.height  # the run's end flushed the last batch
    assert records[-1].state_root == run.engine.state_root()
    posted = lab.settlement.posted()
    report = verify_batches(posted[0].record, posted[1:], lab.settlement.deposits())
    assert report.ok, report.divergence
    assert report.blocks == run.engine.height
    assert report.deposits_checked == run.engine.next_deposit_id - 1 == 8  # 7 agents + fund
    holder = account_address("mm-0")
    assert [d.beneficiary for d in lab.settlement.deposits()].count(holder) == 1


def test_settlement_metrics_follow_the_batches(settled: tuple[Run, dict]) -> None:  # type: ignore[type-arg]
    run, metrics = settled
    lab = run.settlement
    assert lab is not None
    frame = lab.frame()
    assert list(frame["batch"]) == list(range(1, len(frame) + 1))
    trades = int(frame["trades"].sum())
    assert trades > 0
    assert math.isclose(metrics["settlement_bytes_per_trade"], frame["posted_bytes"].sum() / trades)
    assert math.isclose(metrics["settlement_gas_per_trade"], frame["gas"].sum() / trades)
    # A block waits for its batch to close (<= 4 s of blocks), the next 12 s chain block, and
    # the 300 s window: final between 300 and 300 + 4 + 12 (+1 s of rounding) seconds later.
    assert 300 <= metrics["settlement_latency_s_p50"] <= metrics["settlement_latency_s_p99"]
    assert metrics["settlement_latency_s_p99"] <= 300 + 4 + 12 + 1
    assert metrics["settlement_state_bytes"] == 32 * (len(frame) + 2 * 8)
    assert (frame["committed_ns"] % (12 * 10**9) == 0).all()


def test_a_settlement_typo_is_refused_naming_the_field() -> None:
    with pytest.raises(ScenarioError, match=r"settlement"):
        parse_scenario(SETTLED.replace("l1_block_s", "l1_blocks_s"))
    with pytest.raises(ScenarioError, match=r"settlement"):
        parse_scenario(SETTLED.replace("l1_block_s = 12.0", "l1_block_s = 0.0"))
