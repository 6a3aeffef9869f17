"""Venue designs: each preset sets the rules that define it, runs end to end, and a bad design
is refused naming the field."""

from __future__ import annotations

import math

import msgspec
import pytest

from strikechain.engine.instruments import MatchingMode
from strikechain.engine.liquidation import LiquidationPolicy
from strikechain.engine.ordering import OrderingPolicy
from strikechain.sim.cpmm import lvr_rate_theory_per_year_frac
from strikechain.sim.designs import DESIGNS, apply_design, cpmm_params
from strikechain.sim.run import Run, run_scenario
from strikechain.sim.scenario import Scenario, ScenarioError, parse_scenario

SCENARIO = """
[run]
seed = 5
start = "2027-01-04T00:00:00Z"
duration_s = 20.0
warmup_s = 2.0

[[market.underlyings]]
name = "BTC"
spot_usdc = 100000.0
process = { kind = "gbm", vol = 0.8 }

[[market.instruments]]
underlying = "BTC"
perpetual = { tick = "0.5", lot = "0.001" }

[consensus]
kind = "sequencer"
block_interval_ns = 500_000_000
mempool = { base_fee_floor = 0 }

[risk]
insurance_fund_usdc = 100_000

[oracle.underlyings.BTC]
quorum = 3

[[agents]]
kind = "reporter"
count = 3
params = { underlying = "BTC", publish_vols = false }

[[agents]]
kind = "market_maker"
name = "mm"
count = 1
deposit_usdc = { BTC = 2_000_000 }
params = { instruments = ["BTC_USDC-PERPETUAL"], perp_size_lots = 10 }

[[agents]]
kind = "noise"
count = 6
deposit_usdc = { BTC = 100_000 }
params = { instruments = ["BTC_USDC-PERPETUAL"], rate_per_s = 1.0 }
"""


def scenario(design: str | None, extra: str = "") -> Scenario:
    venue = "" if design is None else f'\n[venue]\ndesign = "{design}"\n{extra}'
    return parse_scenario(SCENARIO + venue)


def test_each_engine_design_sets_its_rules() -> None:
    plain = scenario(None)
    assert apply_design(plain) == plain
    clob = apply_design(scenario("rollup-clob"))
    assert (clob.venue.matching, clob.venue.ordering) == ("continuous", "lanes")
    assert apply_design(scenario("rollup-fba")).venue.matching == "batch"
    for name in ("l1-clob", "l1-auction"):
        l1 = apply_design(scenario(name))
        assert (l1.venue.matching, l1.venue.ordering) == ("continuous", "fee_priority")
        assert l1.consensus.mempool.fee_priority
        assert l1.consensus.mempool.base_fee_floor == 8, "gas: a base fee where none was"
        assert l1.consensus.block_interval_ns == plain.consensus.block_interval_ns
    keeper = apply_design(scenario("l1-auction")).risk.underlyings["BTC"].liquidation
    assert keeper is not None
    assert keeper.policy is LiquidationPolicy.KEEPER_AUCTION
    clob_liquidation = apply_design(scenario("l1-clob")).risk.underlyings
    assert "BTC" not in clob_liquidation, "l1-clob keeps the scenario's liquidation path"


@pytest.mark.parametrize("design", [d for d in DESIGNS if d != "cpmm"])
def test_each_engine_design_runs_and_keeps_the_invariants(design: str) -> None:
    run = Run(scenario(design))
    result = run.execute()
    run.engine.check()
    book = run.engine.books["BTC_USDC-PERPETUAL"]
    expected = MatchingMode.BATCH if design == "rollup-fba" else MatchingMode.CONTINUOUS
    assert book.instrument.matching == expected
    fee_order = OrderingPolicy.FEE_PRIORITY if design.startswith("l1") else OrderingPolicy.LANES
    assert run.engine.policy == fee_order
    assert result.metrics["blocks_count"] > 30
    assert result.metrics["mm_fills"] > 0


def test_cpmm_runs_the_amm_model_from_the_scenario() -> None:
    cpmm = scenario("cpmm", "cpmm = { fee_bps = 0.0, paths = 100 }")
    params = cpmm_params(cpmm)
    assert params.vol == 0.8
    assert params.block_interval_ns == 500_000_000
    assert params.fee_bps == 0.0
    assert math.isclose(params.base_reserve * 100_000.0, params.quote_reserve_usdc)
    result = run_scenario(
        msgspec.structs.replace(cpmm, run=msgspec.structs.replace(cpmm.run, duration_s=3600.0))
    )
    metrics = result.metrics
    assert metrics["arbitrage_block_share"] == 1.0, "no fee: every block's move is arbitraged"
    theory = lvr_rate_theory_per_year_frac(0.8)
    assert metrics["lvr_rate_per_year_frac"] == pytest.approx(theory, rel=0.1)
    assert result.frames == {}
    with pytest.raises(ScenarioError, match="not an order-book venue"):
        Run(cpmm)


def test_bad_designs_are_refused_naming_the_field() -> None:
    with pytest.raises(ScenarioError, match=r"\$\.venue\.design"):
        scenario("amm")
    gbm_only = SCENARIO.replace(
        '{ kind = "gbm", vol = 0.8 }',
        '{ kind = "merton", vol = 0.8, jump_intensity_per_year = 1.0, jump_mean = 0.0, '
        "jump_std = 0.1 }",
    )
    with pytest.raises(ScenarioError, match="needs a gbm process"):
        cpmm_params(parse_scenario(gbm_only + '\n[venue]\ndesign = "cpmm"\n'))
    with pytest.raises(ScenarioError, match="pool_value_usdc"):
        scenario("cpmm", "cpmm = { pool_value_usdc = -1.0 }")
