"""The bundled stress scenarios do what their headers say (each header states its expected
outcome; these tests assert it)."""

from __future__ import annotations

import msgspec

from strikechain.engine.oracle import OracleReport
from strikechain.engine.units import QUOTE_SCALE
from strikechain.sim.run import Run
from strikechain.sim.scenario import Scenario, load_scenario
from strikechain.sim.settings import BUNDLED


def _attacker_reports(run: Run) -> list[tuple[int, float]]:
    """(sent, reported price in USDC) of every attacker report, in sending order."""
    return [
        (sent, tx.price / QUOTE_SCALE)
        for agent, tx, sent, _ in run.recorder.submissions()
        if agent.startswith("attacker") and isinstance(tx, OracleReport)
    ]


def _with_attackers(scenario: Scenario, count: int) -> Scenario:
    """The scenario with ``count`` attackers and ``5 - count`` honest reporters."""
    groups = [
        msgspec.structs.replace(group, count=count if group.name == "attacker" else 5 - count)
        if group.kind == "reporter"
        else group
        for group in scenario.agents
    ]
    return msgspec.structs.replace(scenario, agents=tuple(groups))


def test_oracle_attack_by_one_source_barely_moves_the_index() -> None:
    scenario = load_scenario(BUNDLED / "oracle-attack.toml")
    run = Run(scenario)
    metrics = run.execute().metrics
    reports = _attacker_reports(run)
    push = scenario.agents[1].params
    start = run.start_ns + push["push_after_ns"]
    pushed = [price for sent, price in reports if start <= sent < start + push["push_for_ns"]]
    assert len(pushed) > 100, "the attacker reported every second of its two minutes"
    assert max(pushed) < 90_000.0, "15% below a market near 100,000"
    assert metrics["index_error_bps_max"] < 20.0, "the index barely moved"
    assert metrics["liquidations_count"] == 0, "no 10x long was liquidated"
    assert metrics["bad_debt_usdc"] == 0.0


def test_the_same_attack_with_a_majority_of_sources_moves_the_index() -> None:
    """The control: three of five sources pushing is a majority the oracle follows, so the
    first test's calm is the outlier rejection's doing, not a weak attack."""
    scenario = _with_attackers(load_scenario(BUNDLED / "oracle-attack.toml"), 3)
    metrics = Run(scenario).execute().metrics
    assert metrics["index_error_bps_max"] > 1_000.0
    assert metrics["liquidations_count"] > 0


def test_flash_crash_outage_meets_the_whole_move_at_restart() -> None:
    scenario = load_scenario(BUNDLED / "flash-crash-outage.toml")
    run = Run(scenario)
    frames = run.execute().frames
    blocks, index, markets = frames["blocks"], frames["index"], frames["markets"]
    outage = scenario.consensus.outages[0]
    times = blocks["timestamp_ns"].to_numpy()
    gaps = times[1:] - times[:-1]
    longest = int(gaps.argmax())
    assert gaps[longest] >= outage.end_ns - outage.start_ns - scenario.consensus.block_interval_ns
    restart_height = int(blocks["height"].iloc[longest + 1])
    restart_ns = int(times[longest + 1])
    assert outage.end_ns <= restart_ns < outage.end_ns + scenario.consensus.block_interval_ns

    book = markets.merge(index[["height", "index_usdc", "reference_usdc"]], on="height")
    book["mid"] = (book["best_bid_usdc"] + book["best_ask_usdc"]) / 2
    first = book[book["height"] == restart_height].iloc[0]
    assert first["mark_usdc"] / first["reference_usdc"] - 1 > 0.05, "the mark is a minute stale"
    stale = book[book["timestamp_ns"].between(restart_ns, restart_ns + 900_000_000)]
    assert (stale["index_usdc"] == first["index_usdc"]).all(), "no fresh index for a second"
    assert (stale["mid"] / stale["index_usdc"] - 1).min() < -0.03, "the book moved first"
    moves = index["index_usdc"].pct_change().abs()
    after = index["height"] >= restart_height
    assert moves[after].max() > 0.05, "the index meets the crash in one block"

    liquidations = frames["liquidations"]
    queued = liquidations[liquidations["kind"] == "queued"]
    assert (queued["timestamp_ns"] < outage.start_ns).sum() == 0
    soon = queued["timestamp_ns"].between(restart_ns, restart_ns + 2_000_000_000)
    assert queued[soon]["account"].nunique() >= 5, "the liquidation backlog at restart"

    later = book[book["timestamp_ns"] >= restart_ns + 30_000_000_000].iloc[0]
    assert abs(later["mark_usdc"] / later["index_usdc"] - 1) < 0.005
    assert abs(later["mid"] / later["index_usdc"] - 1) < 0.005
    assert abs(later["index_usdc"] / later["reference_usdc"] - 1) < 0.005
