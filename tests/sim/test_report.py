"""The run folder: every file written, tables and metrics read back equal, the scenario kept
(verbatim or re-encoded so that it loads back equal), the HTML report whole and offline, and
two writes of one result byte for byte the same."""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from strikechain.sim.metrics import metrics_json
from strikechain.sim.recorder import SCHEMA
from strikechain.sim.report import (
    FIGURE_IDS,
    MAX_POINTS,
    SECTIONS,
    downsample,
    group_metrics,
    histogram,
    scenario_toml,
    write_run,
)
from strikechain.sim.run import RunResult, run_scenario
from strikechain.sim.scenario import UnderlyingRiskSection, load_scenario, parse_scenario

SCENARIOS = Path(__file__).parents[2] / "scenarios"
CALM = SCENARIOS / "calm.toml"


@pytest.fixture(scope="module")
def result() -> RunResult:
    """calm.toml, 20 simulated seconds."""
    scenario = load_scenario(CALM)
    short = msgspec.structs.replace(scenario.run, duration_s=20.0)
    return run_scenario(msgspec.structs.replace(scenario, run=short))


@pytest.fixture(scope="module")
def folder(result: RunResult, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_run(result, tmp_path_factory.mktemp("run"))


def test_every_file_is_written(folder: dict[str, Path]) -> None:
    assert set(folder) == {"metrics", "scenario", "report", *SCHEMA}
    names = {path.name for path in folder["report"].parent.iterdir()}
    expected = {"metrics.json", "scenario.toml", "report.html"} | {f"{t}.parquet" for t in SCHEMA}
    assert names == expected
    assert all(path.stat().st_size > 0 for path in folder.values())


def test_tables_read_back_equal(result: RunResult, folder: dict[str, Path]) -> None:
    assert result.frames["fills"].shape[0] > 0  # the run traded: the check has rows to compare
    for table, frame in result.frames.items():
        pd.testing.assert_frame_equal(pd.read_parquet(folder[table]), frame)


def test_metrics_json_is_metrics_json(result: RunResult, folder: dict[str, Path]) -> None:
    text = folder["metrics"].read_text()
    assert text == metrics_json(result.metrics)
    assert set(json.loads(text)) == set(result.metrics)


def test_the_scenario_loads_back_as_the_run_s(result: RunResult, folder: dict[str, Path]) -> None:
    text = folder["scenario"].read_text()
    assert text.startswith("# The scenario of a lab run, re-encoded")
    assert "warning" not in text
    assert parse_scenario(text) == result.scenario


def test_a_source_file_is_copied_verbatim_when_it_is_what_ran(
    result: RunResult, tmp_path: Path
) -> None:
    as_loaded = dataclasses.replace(result, scenario=load_scenario(CALM))
    written = write_run(as_loaded, tmp_path / "same", source=CALM)
    assert written["scenario"].read_bytes() == CALM.read_bytes()
    assert "<title>strikechain run: calm (seed 1)</title>" in written["report"].read_text()
    # the run's 20 s are not the file's 600 s: the file would not reproduce it
    changed = write_run(result, tmp_path / "changed", source=CALM)
    text = changed["scenario"].read_text()
    assert "the run differs from calm.toml" in text.splitlines()[0]
    assert parse_scenario(text) == result.scenario


@pytest.mark.parametrize("name", ["calm.toml", "crash.toml", "bench-1000.toml"])
def test_bundled_scenarios_re_encode_to_themselves(name: str) -> None:
    scenario = load_scenario(SCENARIOS / name)
    assert parse_scenario(scenario_toml(scenario)) == scenario


def test_a_field_toml_cannot_hold_is_flagged() -> None:
    scenario = load_scenario(CALM)
    risk = msgspec.structs.replace(scenario.risk, underlyings={})
    assert "warning" not in scenario_toml(msgspec.structs.replace(scenario, risk=risk))
    off = {"BTC": UnderlyingRiskSection(liquidation=None)}  # None: the lane off, default: on
    risk = msgspec.structs.replace(scenario.risk, underlyings=off)
    text = scenario_toml(msgspec.structs.replace(scenario, risk=risk))
    assert "# warning: a field is None" in text


def test_the_report_has_every_section_and_works_offline(folder: dict[str, Path]) -> None:
    page = folder["report"].read_text()
    for section, title in SECTIONS:
        assert f'<section id="{section}">' in page
        assert f"<h2>{html.escape(title)}</h2>" in page
    for figure_id in FIGURE_IDS:
        assert page.count(f'<div id="{figure_id}" class="plotly-graph-div"') == 1
        assert f'Plotly.newPlot(                        "{figure_id}"' in page
    assert "<script src=" not in page
    assert get_plotlyjs() in page  # inline, once: the page works offline
    assert page.count("<script>") == 2 + len(FIGURE_IDS)  # config, plotly.js, one per figure
    for key in ("slippage_bps_mean", "mm_markout_10s_bps", "state_snapshot_bytes"):
        assert f"<td>{key}</td>" in page
    assert "Lab run: scenario" in page
    assert "seed</dt><dd>1</dd>" in page


def test_two_writes_are_byte_identical(result: RunResult, tmp_path: Path) -> None:
    first = write_run(result, tmp_path / "a")
    second = write_run(result, tmp_path / "b")
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name


def test_downsampling_keeps_extremes_and_gaps() -> None:
    x = np.arange(100_000, dtype=np.float64)
    y = np.sin(x / 500.0)
    y[50_000] = 7.0  # a spike
    y[70_000:70_200] = np.nan  # a gap longer than a bucket
    small_x, small_y = downsample(x, y)
    assert len(small_x) <= MAX_POINTS
    assert np.all(np.diff(small_x) > 0)
    assert np.nanmax(small_y) == 7.0
    assert np.nanmin(small_y) == pytest.approx(-1.0, abs=1e-4)
    assert np.isnan(small_y).any()
    assert len(downsample(x[:10], y[:10])[0]) == 10


def test_histograms_fold_tails_into_the_end_bins() -> None:
    values = np.concatenate([np.linspace(0.0, 1.0, 1_000), [1e6, -1e6, np.nan]])
    centres, counts = histogram(values, bins=10)
    assert counts.sum() == 1_002
    assert len(centres) == 10
    log_centres, log_counts = histogram(np.array([1.0, 10.0, 100.0, 0.0]), bins=4, log=True)
    assert log_counts.sum() == 3  # the zero has no place on a log scale
    ratios = np.diff(np.log(log_centres))
    assert ratios == pytest.approx(np.full(3, ratios[0]))  # bins of equal ratio
    assert histogram(np.array([np.nan]))[0].size == 0


def test_every_metric_has_a_group(result: RunResult) -> None:
    groups = group_metrics(result.metrics)
    assert "other" not in groups
    assert sorted(key for keys in groups.values() for key in keys) == sorted(result.metrics)
    assert list(groups) == [
        "trading",
        "market makers",
        "liquidations",
        "blocks & latency",
        "oracle",
        "state",
    ]
