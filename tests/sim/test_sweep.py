"""Sweeps: issue 10's 3 block intervals x 2 designs x 3 seeds, on a tiny scenario, gives the same
tables (and report) in two local processes and on a local Dask cluster, and each row is the
scenario run alone; the summary's and the A/B table's intervals match a hand computation; dotted
keys reach tables by name and index; bad sweep files are refused naming the field; a failing
run names itself; ``strikechain sweep`` prints its table and writes its folder."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pandas as pd
import pytest
from click.testing import CliRunner

from strikechain.cli.main import cli
from strikechain.sim import sweep as sweep_module
from strikechain.sim.run import run_scenario
from strikechain.sim.scenario import load_scenario
from strikechain.sim.sweep import (
    EXAMPLE,
    SweepCode,
    SweepError,
    SweepResult,
    SweepRunError,
    SweepSpec,
    builtins_of,
    compare,
    load_sweep,
    mean_interval,
    parse_sweep,
    run_sweep,
    scenario_of,
    set_key,
    summarize,
)
from strikechain.sim.sweep_report import render_sweep_report

HERE = Path(__file__).parent
SMALL = HERE / "sweep_small.toml"
SCENARIO = HERE / "sweep_scenario.toml"
INTERVAL = "consensus.block_interval_ns"
METRICS = [
    "slippage_bps_mean",
    "effective_spread_bps",
    "mm_markout_1s_bps",
    "inclusion_latency_ms_p50",
    "block_interval_ms_p50",
]
T_975_2 = 4.30265  # Student's t, 97.5th percentile, 2 degrees of freedom (a printed table)
T_975_1 = 12.7062  # and 1 degree of freedom


@pytest.fixture(scope="module")
def spec() -> SweepSpec:
    return load_sweep(SMALL)


@pytest.fixture(scope="module")
def local(spec: SweepSpec) -> SweepResult:
    return run_sweep(spec, workers=2)


# -- the sweep of the issue ----------------------------------------------------------------------


def test_the_runs_are_designs_by_grid_points_by_seeds(local: SweepResult) -> None:
    runs = local.runs
    assert len(runs) == 18
    assert list(runs.columns[:3]) == ["design", INTERVAL, "seed"]
    assert runs["design"].tolist() == ["continuous"] * 9 + ["batch"] * 9
    assert (
        runs[INTERVAL].tolist()
        == [100_000_000] * 3
        + [200_000_000] * 3
        + [400_000_000] * 3
        + [100_000_000] * 3
        + [200_000_000] * 3
        + [400_000_000] * 3
    )
    assert runs["seed"].tolist() == [1, 2, 3] * 6
    # the parameter reached every run: the blocks came at the interval it set
    assert (runs["block_interval_ms_p50"] * 1_000_000 == runs[INTERVAL]).all()
    # the designs are different venues: batch auctions fill other orders than continuous matching
    fills = runs.pivot_table(index=[INTERVAL, "seed"], columns="design", values="slippage_fills")
    assert (fills["batch"] != fills["continuous"]).any()
    assert list(local.summary["metric"].unique()) == METRICS
    assert len(local.summary) == 2 * 3 * len(METRICS)
    assert len(local.comparisons) == 3 * len(METRICS)
    assert set(local.comparisons["design"]) == {"batch"}
    assert set(local.comparisons["baseline"]) == {"continuous"}


def test_a_run_of_the_sweep_is_the_scenario_run_alone(local: SweepResult) -> None:
    scenario = load_scenario(SCENARIO, seed=2)
    scenario = msgspec.structs.replace(
        scenario,
        consensus=msgspec.structs.replace(scenario.consensus, block_interval_ns=400_000_000),
        venue=msgspec.structs.replace(scenario.venue, matching="batch"),
    )
    alone = pd.DataFrame([run_scenario(scenario).metrics])
    runs = local.runs
    chosen = (runs["design"] == "batch") & (runs[INTERVAL] == 400_000_000) & (runs["seed"] == 2)
    row = runs.loc[chosen, list(alone.columns)].reset_index(drop=True)
    pd.testing.assert_frame_equal(row, alone, check_exact=True)


def test_local_processes_and_a_dask_cluster_give_identical_results(
    spec: SweepSpec, local: SweepResult
) -> None:
    from distributed import LocalCluster

    seen: list[tuple[int, int]] = []
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        remote = run_sweep(
            spec, address=cluster.scheduler_address, progress=lambda *a: seen.append(a)
        )
    assert seen == [(done, 18) for done in range(1, 19)]
    pd.testing.assert_frame_equal(local.runs, remote.runs, check_exact=True)
    pd.testing.assert_frame_equal(local.summary, remote.summary, check_exact=True)
    pd.testing.assert_frame_equal(local.comparisons, remote.comparisons, check_exact=True)
    assert render_sweep_report(local) == render_sweep_report(remote)


def test_no_scheduler_at_the_address_is_refused(
    spec: SweepSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_module, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(SweepError) as refused:
        run_sweep(spec, address="tcp://127.0.0.1:9")
    assert refused.value.code == SweepCode.CLUSTER


# -- statistics by hand --------------------------------------------------------------------------


def test_means_and_intervals_by_hand() -> None:
    interval = mean_interval([1.0, 2.0, 3.0])
    half = T_975_2 * 1.0 / math.sqrt(3)  # std 1
    assert (interval.n, interval.mean, interval.std) == (3, 2.0, 1.0)
    assert interval.low == pytest.approx(2.0 - half, rel=1e-5)
    assert interval.high == pytest.approx(2.0 + half, rel=1e-5)
    one_nan = mean_interval([math.nan, 100.0, 200.0])  # no observation: left out
    assert (one_nan.n, one_nan.mean) == (2, 150.0)
    assert one_nan.high - one_nan.mean == pytest.approx(T_975_1 * 50.0, rel=1e-5)
    assert math.isnan(mean_interval([4.0]).low)
    assert mean_interval([]).n == 0


def _tiny_runs() -> pd.DataFrame:
    """Designs a and b at one grid point (x = 1), three seeds; b's rows out of seed order."""
    return pd.DataFrame(
        {
            "design": ["a", "a", "a", "b", "b", "b"],
            "x": [1] * 6,
            "seed": [1, 2, 3, 3, 1, 2],
            # b - a by seed: 0.1, 0.0, -0.1
            "slippage_bps_mean": [1.0, 2.0, 3.0, 2.9, 1.1, 2.0],
            # b - a by seed: 1.1, 1.0, 0.9: higher is better
            "mm_markout_10s_bps": [1.0, 2.0, 3.0, 3.9, 2.1, 3.0],
            # b - a by seed: -1.0, -0.9, -1.1: lower is better
            "bad_debt_usdc": [5.0, 6.0, 7.0, 5.9, 4.0, 5.1],
            # b - a: 2 each seed, a metric without a direction
            "blocks_count": [10, 10, 10, 12, 12, 12],
            # b does not measure it (another venue design reports other metrics)
            "liquidation_delay_ms_p99": [math.nan, 100.0, 200.0, math.nan, math.nan, math.nan],
        }
    )


def test_the_summary_by_hand() -> None:
    metrics = ["slippage_bps_mean", "mm_markout_10s_bps"]
    summary = summarize(_tiny_runs(), ["x"], metrics)
    assert summary[["design", "x", "metric"]].values.tolist() == [
        ["a", 1, "slippage_bps_mean"],
        ["a", 1, "mm_markout_10s_bps"],
        ["b", 1, "slippage_bps_mean"],
        ["b", 1, "mm_markout_10s_bps"],
    ]
    first = summary.iloc[0]
    assert (first["n"], first["mean"], first["std"]) == (3, 2.0, 1.0)
    assert first["ci_low"] == pytest.approx(2.0 - T_975_2 / math.sqrt(3), rel=1e-5)
    markout_b = summary.iloc[3]  # 3.9, 2.1, 3.0: mean 3, std 0.9
    assert markout_b["mean"] == pytest.approx(3.0)
    assert markout_b["std"] == pytest.approx(0.9)
    assert markout_b["ci_high"] == pytest.approx(3.0 + T_975_2 * 0.9 / math.sqrt(3), rel=1e-5)


def test_the_ab_comparison_by_hand_paired_by_seed() -> None:
    metrics = ["slippage_bps_mean", "mm_markout_10s_bps", "bad_debt_usdc", "blocks_count"]
    metrics.append("liquidation_delay_ms_p99")
    table = compare(_tiny_runs(), ["x"], metrics, "a").set_index("metric")
    half = T_975_2 * 0.1 / math.sqrt(3)  # the paired differences' std is 0.1 in each
    slippage = table.loc["slippage_bps_mean"]
    assert slippage["difference_mean"] == pytest.approx(0.0, abs=1e-12)
    assert (slippage["better"], slippage["verdict"]) == ("", "no clear difference")
    markout = table.loc["mm_markout_10s_bps"]
    assert (markout["n"], markout["difference_mean"]) == (3, pytest.approx(1.0))
    assert markout["ci_low"] == pytest.approx(1.0 - half, rel=1e-5)
    assert markout["ci_high"] == pytest.approx(1.0 + half, rel=1e-5)
    assert (markout["better"], markout["verdict"]) == ("b", "b better (higher)")
    debt = table.loc["bad_debt_usdc"]
    assert debt["difference_mean"] == pytest.approx(-1.0)
    assert debt["ci_high"] == pytest.approx(-1.0 + half, rel=1e-5)
    assert (debt["better"], debt["verdict"]) == ("b", "b better (lower)")
    blocks = table.loc["blocks_count"]
    assert (blocks["ci_low"], blocks["ci_high"]) == (2.0, 2.0)
    assert (blocks["better"], blocks["verdict"]) == ("", "b higher")
    delay = table.loc["liquidation_delay_ms_p99"]
    assert (delay["n"], delay["verdict"]) == (0, "not measured in both")


# -- dotted keys ---------------------------------------------------------------------------------


def test_dotted_keys_reach_tables_by_name_and_index() -> None:
    data = builtins_of(load_scenario(SCENARIO))
    set_key(data, "agents.mm.latency_ns", 7)
    set_key(data, "agents.noise.params.rate_per_s", 0.5)
    set_key(data, "agents.0.count", 3)  # the reporters: a group without a name is its kind
    set_key(data, "market.underlyings.BTC.process.vol", 0.3)
    set_key(data, "market.instruments.BTC.perpetual.tick", "1")
    set_key(data, "venue.underlyings.BTC.fees.perp_taker_ppm", 700)  # tables made on the way
    link = {"latency": {"kind": "constant", "one_way_ns": 9}}
    set_key(data, "network.validator_validator", link)  # a table replaces the table there
    scenario = scenario_of(data)
    mm, noise, reporters = scenario.agents[1], scenario.agents[2], scenario.agents[0]
    assert (mm.latency_ns, noise.params["rate_per_s"], reporters.count) == (7, 0.5, 3)
    assert scenario.market.underlyings[0].process.vol == 0.3  # type: ignore[union-attr]
    assert scenario.market.instruments[0].perpetual is not None
    assert scenario.market.instruments[0].perpetual.tick == "1"
    assert scenario.venue.underlyings["BTC"].fees.perp_taker_ppm == 700
    assert scenario.venue.underlyings["BTC"].fees.perp_maker_ppm == -100  # the default
    assert scenario.network.validator_validator.latency.one_way_ns == 9  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="no table named 'whale'"):
        set_key(data, "agents.whale.latency_ns", 1)


def test_the_bundled_example_loads() -> None:
    spec = load_sweep(EXAMPLE)
    assert len(spec.tasks()) == 18
    assert [design.name for design in spec.designs] == ["clob", "fba"]
    cell = spec.cells[-1]  # batch auctions at the longest interval
    assert cell.scenario.venue.design == "rollup-fba"
    assert cell.scenario.consensus.block_interval_ns == 2_000_000_000
    assert cell.scenario.run.duration_s == 60.0


# -- bad sweep files -----------------------------------------------------------------------------

DESIGN = '"venue.matching" = "batch"'


@pytest.mark.parametrize(
    ("change", "code", "field", "words"),
    [
        (("seeds = 3", "seedz = 3"), SweepCode.UNKNOWN_FIELD, "$.sweep.seedz", "unknown"),
        (("seeds = 3", "seeds = 0"), SweepCode.INVALID, "$.sweep.seeds", "[1, 1000]"),
        (("seeds = 3", 'seeds = "3"'), SweepCode.INVALID, "$.sweep.seeds", "got `str`"),
        (("seeds = 3", "seeds = [1, 1]"), SweepCode.INVALID, "$.sweep.seeds", "distinct"),
        (("[designs.batch]", "[designz.batch]"), SweepCode.UNKNOWN_FIELD, "$.designz", ""),
        (
            (DESIGN, '"venue.matchng" = "batch"'),
            SweepCode.OVERRIDE,
            "$.designs.batch['venue.matchng']",
            "SCENARIO_UNKNOWN_FIELD: unknown field `$.venue.matchng`",
        ),
        (
            (DESIGN, '"venue.matching" = "fba"'),
            SweepCode.OVERRIDE,
            "$.designs.batch['venue.matching']",
            "SCENARIO_INVALID",
        ),
        (
            (DESIGN, 'venue.matching = "batch"'),
            SweepCode.INVALID,
            "$.designs.batch['venue']",
            "quote it",
        ),
        (
            (DESIGN, '"agents.whale.latency_ns" = 5'),
            SweepCode.OVERRIDE,
            "$.designs.batch['agents.whale.latency_ns']",
            "no table named 'whale'",
        ),
        (
            (DESIGN, '"agents.mm.params.half_sprad_bps" = 2.0'),
            SweepCode.OVERRIDE,
            "$.designs.batch['agents.mm.params.half_sprad_bps']",
            "$.agents[1].params.half_sprad_bps",
        ),
        (
            (DESIGN, '"consensus.block_interval_ns" = 5'),
            SweepCode.INVALID,
            "$.designs.batch['consensus.block_interval_ns']",
            "a parameter varies it",
        ),
        ((DESIGN, '"run.seed" = 5'), SweepCode.INVALID, "$.designs.batch['run.seed']", "seeds"),
        (
            ("100_000_000, 200_000_000", '100_000_000, "fast"'),
            SweepCode.INVALID,
            "$.parameters['consensus.block_interval_ns'][1]",
            "of one kind",
        ),
        (
            ("100_000_000, 200_000_000", "100_000_000, 100_000_000"),
            SweepCode.INVALID,
            "$.parameters['consensus.block_interval_ns']",
            "repeat",
        ),
        (
            ('"consensus.block_interval_ns" = [', '"consensus.timeout_commit_ms" = ['),
            SweepCode.OVERRIDE,
            "$.parameters['consensus.timeout_commit_ms'][0]",
            "unknown field `$.consensus.timeout_commit_ms`",
        ),
        (
            ('scenario = "sweep_scenario.toml"', 'scenario = "nowhere.toml"'),
            SweepCode.SCENARIO,
            "$.sweep.scenario",
            "SCENARIO_UNREADABLE",
        ),
        (("seeds = 3", 'seeds = 3\nbaseline = "fba"'), SweepCode.INVALID, "$.sweep.baseline", ""),
        (
            ("seeds = 3", "seeds = 3\nduration_s = -1.0"),
            SweepCode.INVALID,
            "$.sweep.duration_s",
            "",
        ),
        (("[sweep]", "[sweep"), SweepCode.NOT_TOML, "$", ""),
    ],
)
def test_a_bad_sweep_file_is_refused_naming_the_field(
    change: tuple[str, str], code: SweepCode, field: str, words: str
) -> None:
    text = SMALL.read_text()
    assert change[0] in text
    with pytest.raises(SweepError) as refused:
        parse_sweep(text.replace(*change), folder=HERE, source="bad.toml")
    assert refused.value.code == code
    assert refused.value.field == field
    assert words in refused.value.message
    assert refused.value.message.startswith(f"bad.toml: {field}: ")


def _one_run_sweep(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "one.toml"
    path.write_text(f'[sweep]\nscenario = "{SCENARIO}"\nseeds = 1\n{extra}')
    return path


def test_a_metric_no_run_reports_is_refused_after_the_runs(tmp_path: Path) -> None:
    spec = load_sweep(_one_run_sweep(tmp_path, 'metrics = ["slippage_bps_mean", "slipage"]'))
    with pytest.raises(SweepError) as refused:
        run_sweep(spec, workers=1)
    assert refused.value.field == "$.sweep.metrics[1]"
    assert "no run reported 'slipage'" in refused.value.message


def test_a_failing_run_names_its_design_grid_point_and_seed(tmp_path: Path) -> None:
    # the sequencer checks its interval when a run builds its world, not the scenario loader
    extra = '[parameters]\n"consensus.block_interval_ns" = [-1]\n'
    spec = load_sweep(_one_run_sweep(tmp_path, extra))
    with pytest.raises(SweepRunError) as failed:
        run_sweep(spec, workers=1)
    assert "block_interval_ns" in failed.value.error
    assert failed.value.__notes__ == [
        "sweep run 0: design scenario, consensus.block_interval_ns = -1, seed 1"
    ]


# -- the command ---------------------------------------------------------------------------------


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_command_prints_the_table_and_writes_the_folder(tmp_path: Path) -> None:
    text = SMALL.read_text().replace("seeds = 3", "seeds = 2")
    text = text.replace("100_000_000, 200_000_000, 400_000_000", "100_000_000, 400_000_000")
    text = text.replace('"sweep_scenario.toml"', f'"{SCENARIO}"')
    path = tmp_path / "short.toml"
    path.write_text(text)
    out = tmp_path / "sweep"
    code, stdout, stderr = _run("sweep", str(path), "--workers", "2", "--out", str(out))
    assert code == 0, stderr
    assert "short.toml: 8 runs of sweep_scenario.toml (2 designs x 2 grid points x 2 seeds)" in (
        stdout
    )
    for word in ("batch - continuous", "slippage_bps_mean", f"{INTERVAL} = 400_000_000"):
        assert word in stdout
    assert f"sweep folder: {out}" in stdout
    assert "8/8" in stderr  # the progress bar's last state
    names = {path.name for path in out.iterdir()}
    tables = {f"{t}.{e}" for t in ("runs", "summary", "comparisons") for e in ("parquet", "csv")}
    assert names == tables | {"sweep.toml", "scenario.toml", "report.html"}
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == len(pd.read_csv(out / "runs.csv")) == 8
    assert (out / "sweep.toml").read_text() == text
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert 'id="fig-slippage_bps_mean"' in page
    assert "batch better" in page or "no clear difference" in page


def test_the_command_refuses_a_bad_file_and_a_full_folder(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(SMALL.read_text().replace("seeds = 3", "seedz = 3"))
    code, stdout, stderr = _run("sweep", str(bad), "--out", str(tmp_path / "out"))
    assert (code, stdout) == (2, "")
    assert stderr.startswith(f"error: SWEEP_UNKNOWN_FIELD: {bad}: $.sweep.seedz: ")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "runs.csv").write_text("")
    code, _, stderr = _run("sweep", str(SMALL), "--out", str(tmp_path / "full"))
    assert code == 2
    assert stderr.startswith("error: OUT_NOT_EMPTY: ")
