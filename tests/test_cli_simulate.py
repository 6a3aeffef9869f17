"""``strikechain simulate``: a short calm run prints its summary and writes its run folder; a
seed override reaches the run and its scenario.toml; a bad scenario exits 2 naming the field.
And scenarios/README.md (what the command's help points to) documents every field, and its
examples load."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from strikechain.cli.main import cli
from strikechain.sim.agents import KINDS
from strikechain.sim.run import Run
from strikechain.sim.scenario import Scenario, load_scenario, parse_scenario

CALM = Path(__file__).parents[1] / "scenarios" / "calm.toml"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def short(tmp_path: Path) -> Path:
    """calm.toml simulating 15 s instead of 600."""
    text = CALM.read_text()
    assert "duration_s = 600.0" in text
    path = tmp_path / "calm-short.toml"
    path.write_text(text.replace("duration_s = 600.0", "duration_s = 15.0"))
    return path


def test_simulate_prints_the_summary_and_writes_the_run_folder(short: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, stdout, stderr = _run("simulate", str(short), "--out", str(out))
    assert code == 0, stderr
    assert "calm-short.toml: seed 1, 15 s simulated after a 5 s warm-up" in stdout
    for word in ("trading", "market makers", "liquidations", "blocks & latency", "oracle"):
        assert word in stdout
    for key in ("slippage_bps_mean", "mm_markout_1s_bps", "bad_debt_usdc", "index_error_bps_max"):
        assert key in stdout
    assert f"run folder: {out}" in stdout
    assert "15 / 15 s virtual" in stderr  # the progress bar's last state
    names = {path.name for path in out.iterdir()}
    assert {"metrics.json", "scenario.toml", "report.html", "fills.parquet"} <= names
    assert (out / "scenario.toml").read_bytes() == short.read_bytes()  # verbatim: it is the run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["blocks_count"] > 0


def test_a_seed_override_reaches_the_run_and_quiet_prints_only_the_folder(
    short: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    code, stdout, stderr = _run("simulate", str(short), "--seed", "5", "--quiet", "--out", str(out))
    assert code == 0, stderr
    assert stdout == f"run folder: {out}\n"
    assert stderr == ""
    assert load_scenario(out / "scenario.toml").run.seed == 5  # re-encoded: the file said 1


def test_an_unknown_field_exits_2_naming_its_path(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(CALM.read_text().replace("quorum = 3", "quorum = 3\nstalenes_ns = 5"))
    code, stdout, stderr = _run("simulate", str(path))
    assert code == 2
    assert stdout == ""
    assert stderr.startswith("error: SCENARIO_UNKNOWN_FIELD: ")
    assert "`$.oracle.underlyings.BTC.stalenes_ns`" in stderr


def test_a_scenario_that_cannot_run_exits_2(tmp_path: Path) -> None:
    code, _, stderr = _run("simulate", str(tmp_path / "missing.toml"))
    assert code == 2
    assert stderr.startswith("error: SCENARIO_UNREADABLE: ")
    path = tmp_path / "no-such-kind.toml"
    path.write_text(CALM.read_text().replace('kind = "noise"', 'kind = "nois"'))
    code, _, stderr = _run("simulate", str(path))
    assert code == 2
    assert stderr.startswith("error: SCENARIO_INVALID: $.agents[4].kind: 'nois'")


def test_a_run_folder_is_never_written_over(short: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "metrics.json").write_text("{}")
    code, _, stderr = _run("simulate", str(short), "--out", str(tmp_path / "taken"))
    assert code == 2
    assert stderr.startswith("error: OUT_NOT_EMPTY: ")


# -- the scenario documentation the command's help points to -----------------------------------

README = CALM.parent / "README.md"


def _struct_fields(kind: msgspec.inspect.Type, seen: set[type]) -> list[tuple[str, str]]:
    """(struct, field) for every field reachable from ``kind``."""
    found: list[tuple[str, str]] = []
    if isinstance(kind, msgspec.inspect.StructType) and kind.cls not in seen:
        seen.add(kind.cls)
        for field in kind.fields:
            found.append((kind.cls.__name__, field.encode_name))
            found.extend(_struct_fields(field.type, seen))
    for child in ("types", "item_type", "value_type"):
        inner = getattr(kind, child, None)
        for each in inner if isinstance(inner, tuple) else () if inner is None else (inner,):
            found.extend(_struct_fields(each, seen))
    return found


def test_every_scenario_field_and_agent_parameter_is_documented() -> None:
    text = README.read_text()
    seen: set[type] = set()
    fields = _struct_fields(msgspec.inspect.type_info(Scenario), seen)
    for name, kind in KINDS.items():
        assert f"### `{name}`" in text
        fields.extend(_struct_fields(msgspec.inspect.type_info(kind.params), seen))
    missing = [
        f"{struct}.{field}"
        for struct, field in fields
        if not re.search(rf"(?<![A-Za-z_]){field}(?![A-Za-z_])", text)
    ]
    assert not missing


def test_the_documented_scenarios_load_and_build() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        Run(parse_scenario(block))
