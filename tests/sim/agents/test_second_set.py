"""The second set of agents (sniper, keeper, whale, manipulator) from a scenario file: each kind
is registered under its scenario name, its ``params`` table is checked against its struct, the
scenario runs with fee priority and keeper auctions, and the run is a function of its seed (two
runs, the same blocks and the same counters)."""

from __future__ import annotations

from typing import Any

import pytest

from strikechain.sim.agents import KINDS
from strikechain.sim.run import Run
from strikechain.sim.scenario import ScenarioError, parse_scenario

SCENARIO = """
[run]
seed = 7
duration_s = 40.0
warmup_s = 3.0

[[market.underlyings]]
name = "BTC"
spot_usdc = 100000.0
process = { kind = "regimes", segments = [
  { start_offset_ns = 0, process = { kind = "gbm", vol = 0.8 } },
  { start_offset_ns = 12_000_000_000, process = { kind = "gbm", vol = 0.8, drift = -60000.0 } },
] }

[[market.instruments]]
underlying = "BTC"
perpetual = {}

[consensus]
block_interval_ns = 200_000_000

[venue]
ordering = "fee_priority"

[risk.underlyings.BTC]
liquidation = { policy = "KEEPER_AUCTION", keeper_auction_ns = 2_000_000_000 }

[[agents]]
kind = "reporter"
count = 3
params = { underlying = "BTC", period_ns = 500_000_000 }

[[agents]]
kind = "market_maker"
deposit_usdc = { BTC = 5_000_000 }
latency_ns = 500_000_000
[agents.params]
instruments = ["BTC_USDC-PERPETUAL"]
cancel_mode = "amend"
levels = 3
perp_size_lots = 100
half_spread_bps = 2.0
requote_bps = 10.0

[[agents]]
kind = "sniper"
count = 2
deposit_usdc = { BTC = 1_000_000 }
max_fee = 5_000
params = { instruments = ["BTC_USDC-PERPETUAL"], edge_bps = 3.0, tip = 2_000 }

[[agents]]
kind = "leveraged"
count = 3
deposit_usdc = { BTC = 1_000 }
params = { instrument = "BTC_USDC-PERPETUAL", collateral_usdc = 1_000.0, leverage = 15.0 }

[[agents]]
kind = "keeper"
deposit_usdc = { BTC = 1_000_000 }
params = { instruments = ["BTC_USDC-PERPETUAL"], margin_bps = 30.0, unwind = true }

[[agents]]
kind = "whale"
deposit_usdc = { BTC = 1_000_000 }
[agents.params]
instrument = "BTC_USDC-PERPETUAL"
size_lots = 40
side = "sell"
after_ns = 5_000_000_000
every_ns = 10_000_000_000
orders = 2

[[agents]]
kind = "manipulator"
deposit_usdc = { BTC = 1_000_000 }
[agents.params]
instrument = "BTC_USDC-PERPETUAL"
direction = "down"
push_bps = 30.0
size_lots = 5
every_ns = 2_000_000_000
pushes = 5
"""


def _counters(agent: object) -> dict[str, Any]:
    """An agent's public numbers (and counts by code)."""
    found = ((name, getattr(agent, name)) for name in dir(agent) if not name.startswith("_"))
    return {k: v for k, v in sorted(found) if isinstance(v, int | float | dict)}


def run() -> tuple[list[bytes], dict[str, dict[str, Any]]]:
    simulation = Run(parse_scenario(SCENARIO))
    simulation.simulate(steps=1)
    simulation.engine.check()
    digests = [block.digest for block in simulation.lab.blocks]
    return digests, {member.name: _counters(member.agent) for member in simulation.members}


def test_each_kind_runs_from_a_scenario_and_a_run_is_a_function_of_its_seed() -> None:
    assert {"sniper", "keeper", "whale", "manipulator"} <= set(KINDS)
    first, again = run(), run()
    assert first == again
    digests, stats = first
    assert len(digests) > 200
    sniper, keeper = stats["sniper-0"], stats["keeper-0"]
    assert sniper["hits"] > 0  # the maker requotes only every 10 bp: its quotes go stale
    assert sniper["priority_fees_paid"] <= 5_000 * sniper["attempts"]  # max_fee
    assert all(stats[f"leveraged-{i}"]["liquidated_ns"] > 0 for i in range(3))
    assert keeper["auctions_seen"] == keeper["bids_sent"] == 3  # one per liquidated long
    assert keeper["wins"] == 3
    assert stats["whale-0"]["orders_sent"] == 2
    assert stats["manipulator-0"]["pushes_sent"] == 5


def test_a_bad_params_table_is_refused_with_its_path() -> None:
    bad = SCENARIO.replace("margin_bps = 30.0", "margin_bps = -30.0")
    with pytest.raises(ScenarioError, match=r"\$.agents\[4\].params: KeeperParams.margin_bps"):
        Run(parse_scenario(bad))
    typo = SCENARIO.replace("tip = 2_000", "tips = 2_000")
    with pytest.raises(ScenarioError, match=r"unknown field `\$.agents\[2\].params.tips`"):
        Run(parse_scenario(typo))
