"""Direction checks of the lab, with numbers: market makers' markouts worsen as their latency
grows relative to the arbitrageurs'; in a crash, uninformed takers' slippage and the liquidation
delay grow with the block interval. Each is a short seeded run of a small scenario (one knob
moved, everything else equal), checked every block by the engine's own invariants."""

from __future__ import annotations

from functools import cache

from strikechain.sim.run import Run
from strikechain.sim.scenario import Scenario, parse_scenario

MS = 1_000_000

TREND = """
[run]
seed = 5
start = "2027-01-04T00:00:00Z"
duration_s = 240.0
warmup_s = 3.0

[[market.underlyings]]
name = "BTC"
spot_usdc = 100000.0
process = {{ kind = "gbm", vol = 1.2 }}

[[market.instruments]]
underlying = "BTC"
perpetual = {{ tick = "0.5", lot = "0.001" }}

[network.agent_validator]
latency = {{ kind = "constant", one_way_ns = 5_000_000 }}

[consensus]
kind = "sequencer"
block_interval_ns = 100_000_000
mempool = {{ base_fee_floor = 0 }}

[oracle.underlyings.BTC]
quorum = 2

[[agents]]
kind = "reporter"
count = 3
[agents.params]
underlying = "BTC"
publish_vols = false
period_ns = 500_000_000

[[agents]]
kind = "market_maker"
name = "mm"
count = 2
deposit_usdc = {{ BTC = 5_000_000 }}
latency_ns = {mm_latency_ns}
[agents.params]
instruments = ["BTC_USDC-PERPETUAL"]
half_spread_bps = 3.0
levels = 1
perp_size_lots = 20
requote_bps = 1.0
poll_ns = 50_000_000

[[agents]]
kind = "arbitrageur"
name = "arb"
count = 3
deposit_usdc = {{ BTC = 2_000_000 }}
latency_ns = 5_000_000
[agents.params]
instruments = ["BTC_USDC-PERPETUAL"]
edge_bps = 1.0
max_position_lots = 2_000

[[agents]]
kind = "noise"
count = 10
deposit_usdc = {{ BTC = 200_000 }}
latency_ns = 100_000_000
[agents.params]
instruments = ["BTC_USDC-PERPETUAL"]
rate_per_s = 0.5
"""

CRASH = """
[run]
seed = 9
start = "2027-01-04T00:00:00Z"
duration_s = 600.0
warmup_s = 5.0

[[market.underlyings]]
name = "BTC"
spot_usdc = 100000.0

[market.underlyings.process]
kind = "regimes"
segments = [
  {{ start_offset_ns = 0, process = {{ kind = "gbm", vol = 0.4 }} }},
  {{ start_offset_ns = 60_000_000_000, process = {{ kind = "gbm", vol = 0.8, drift = -20000.0 }} }},
]

[[market.instruments]]
underlying = "BTC"
perpetual = {{ tick = "0.5", lot = "0.001" }}

[network.agent_validator]
latency = {{ kind = "constant", one_way_ns = 20_000_000 }}

[consensus]
kind = "sequencer"
block_interval_ns = {block_ns}
mempool = {{ base_fee_floor = 0 }}

[risk]
insurance_fund_usdc = 50_000
backstop_usdc = {{ BTC = 2_000_000 }}

[oracle.underlyings.BTC]
quorum = 2

[[agents]]
kind = "reporter"
count = 3
[agents.params]
underlying = "BTC"
publish_vols = false
period_ns = 500_000_000

[[agents]]
kind = "market_maker"
name = "mm"
count = 2
deposit_usdc = {{ BTC = 5_000_000 }}
latency_ns = 50_000_000
[agents.params]
instruments = ["BTC_USDC-PERPETUAL"]
half_spread_bps = 4.0
levels = 3
perp_size_lots = 40
spread_risk_multiple = 2.0
cancel_mode = "amend"

[[agents]]
kind = "noise"
count = 30
deposit_usdc = {{ BTC = 200_000 }}
latency_ns = 100_000_000
[agents.params]
instruments = ["BTC_USDC-PERPETUAL"]
rate_per_s = 0.3
market_orders = true
buy_probability = 0.2

[[agents]]
kind = "leveraged"
name = "lev"
count = 20
deposit_usdc = {{ BTC = 10_000 }}
[agents.params]
instrument = "BTC_USDC-PERPETUAL"
collateral_usdc = 10000.0
leverage = 10.0
"""


@cache
def run_metrics(text: str) -> dict[str, float | int]:
    scenario: Scenario = parse_scenario(text)
    run = Run(scenario)
    run.lab.runtime.add_sink(_Checker(run))
    return run.execute().metrics


class _Checker:
    """Every invariant of the engine after every block."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def on_block(self, _: object) -> None:
        self.run.engine.check()


def test_makers_markouts_worsen_as_their_latency_grows_against_the_arbitrageurs() -> None:
    latencies = (10 * MS, 300 * MS, 1_500 * MS)
    markouts = [
        run_metrics(TREND.format(mm_latency_ns=latency))["mm_markout_1s_bps"]
        for latency in latencies
    ]
    # measured with seed 5: about +3.4, +3.1 and -1.7 bps
    assert markouts[0] > markouts[1] > markouts[2], markouts
    assert markouts[0] - markouts[2] > 3.0


def test_in_a_crash_slippage_and_liquidation_delay_grow_with_the_block_interval() -> None:
    intervals = (250 * MS, 1_000 * MS, 4_000 * MS)
    runs = [run_metrics(CRASH.format(block_ns=interval)) for interval in intervals]
    slippage = [metrics["slippage_bps_mean"] for metrics in runs]
    delay = [metrics["liquidation_delay_ms_p50"] for metrics in runs]
    assert all(metrics["liquidations_count"] > 0 for metrics in runs)
    # measured with seed 9: about 3.2, 4.1 and 4.8 bps (8 in 10 takers sell into the fall)
    assert slippage[0] < slippage[1] < slippage[2], slippage
    assert slippage[2] - slippage[0] > 1.0
    # queued at the end of one block, liquidated in the next: the delay is a block
    assert delay == [250.0, 1_000.0, 4_000.0]
