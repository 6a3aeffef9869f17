"""A scenario's run end to end: the same seed gives the same metrics.json, another seed another;
the engine's invariants hold after every block of it; bad scenarios are refused before anything
runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from strikechain.sim.metrics import metrics_json
from strikechain.sim.run import Run
from strikechain.sim.scenario import ScenarioError, load_scenario, parse_scenario
from strikechain.sim.settings import BUNDLED, with_duration

CALM = BUNDLED / "calm.toml"


class _Checker:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.blocks = 0

    def on_block(self, _: object) -> None:
        self.run.engine.check()
        self.blocks += 1


def metrics(seed: int) -> tuple[str, int]:
    run = Run(with_duration(load_scenario(CALM, seed=seed), 20.0))
    checker = _Checker(run)
    run.lab.runtime.add_sink(checker)
    return metrics_json(run.execute().metrics), checker.blocks


def test_same_seed_same_metrics_json_and_invariants_every_block() -> None:
    first, blocks = metrics(4)
    again, _ = metrics(4)
    other, _ = metrics(5)
    assert first == again
    assert first != other
    assert blocks == 100  # 25 s at 250 ms, every one checked


@pytest.mark.parametrize(
    ("change", "code", "names"),
    [
        (
            ("edge_bps = 6.0", "edg_bps = 6.0"),
            "SCENARIO_UNKNOWN_FIELD",
            "$.agents[3].params.edg_bps",
        ),
        (('kind = "noise"', 'kind = "dolphin"'), "SCENARIO_INVALID", "dolphin"),
        (
            ('instrument = "BTC_USDC-PERPETUAL", collateral', 'instrument = "X", collateral'),
            "SCENARIO_INVALID",
            "'X'",
        ),
    ],
)
def test_bad_agents_are_refused_before_the_run(
    change: tuple[str, str], code: str, names: str
) -> None:
    text = Path(CALM).read_text().replace(*change)
    with pytest.raises(ScenarioError) as refused:
        Run(parse_scenario(text))
    assert refused.value.code == code
    assert names in refused.value.message


def test_calm_does_what_its_header_says() -> None:
    """calm.toml: tight spreads, small positive maker markouts, no liquidation, an index within
    a few basis points of the reference (the header's numbers; two simulated minutes)."""
    metrics = Run(with_duration(load_scenario(CALM, seed=1), 120.0)).execute().metrics
    assert metrics["effective_spread_bps"] < 25.0  # measured 11.6
    assert 0.0 < metrics["mm_markout_10s_bps"] < 15.0  # measured +3.9
    assert metrics["liquidations_count"] == 0
    assert metrics["bad_debt_usdc"] == 0.0
    assert metrics["index_error_bps_max"] < 5.0  # measured 2.5
