"""The strikechain command: outputs, units and exit codes."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from strikechain import pricing as px
from strikechain.cli.main import cli

HULL = ["--spot", "42", "--strike", "40", "--expiry-years", "0.5", "--rate", "0.1"]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_price_json_has_exactly_the_documented_keys() -> None:
    code, out, _ = _run("price", *HULL, "--vol", "0.2", "--json")
    assert code == 0
    values = json.loads(out)
    assert list(values) == ["price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga"]
    assert values["price"] == pytest.approx(4.7594, abs=5e-5)
    expected = px.bsm_greeks(42.0, 40.0, 0.5, 0.2, 0.1).as_dict()
    assert values == pytest.approx(expected, rel=1e-15)


def test_price_mode_solves_the_vol() -> None:
    code, out, _ = _run("price", *HULL, "--price", "0.8086", "--put", "--json")
    assert code == 0
    values = json.loads(out)
    assert values["iv"] == pytest.approx(0.2, abs=1e-4)
    assert values["price"] == pytest.approx(0.8086, rel=1e-12)
    assert values["delta"] < 0


def test_carry_and_deterministic_mode() -> None:
    code, out, _ = _run(
        "price", *HULL, "--vol", "0.2", "--carry", "0.05", "--json", "--deterministic"
    )
    assert code == 0
    from strikechain.pricing import deterministic

    assert json.loads(out)["price"] == deterministic.bsm(42.0, 40.0, 0.5, 0.2, 0.1, 0.05)


def test_table_output_names_units() -> None:
    code, out, _ = _run("price", *HULL, "--vol", "0.2")
    assert code == 0
    for word in ("delta", "gamma", "vega", "per 1.00 of vol", "theta / day", "4.7594"):
        assert word in out


ZERO_EXPIRY = ["--spot", "42", "--strike", "40", "--expiry-years", "0", "--rate", "0.1"]


@pytest.mark.parametrize(
    ("args", "code_word"),
    [
        ([*HULL, "--vol", "-0.2"], "INVALID_VOLATILITY"),
        ([*ZERO_EXPIRY, "--vol", "0.2"], "INVALID_EXPIRY"),
        ([*HULL, "--price", "50"], "ABOVE_MAXIMUM"),
        ([*HULL, "--price", "1"], "BELOW_INTRINSIC"),
        ([*HULL, "--vol", "0.2", "--price", "3"], "USAGE"),
        (HULL, "USAGE"),
    ],
)
def test_bad_input_exits_nonzero_with_a_clear_message(args: list[str], code_word: str) -> None:
    code, out, err = _run("price", *args)
    assert code == 2
    assert code_word in err
    assert out == ""


def test_non_numeric_argument_is_a_usage_error() -> None:
    code, _, err = _run(
        "price", "--spot", "abc", "--strike", "40", "--expiry-years", "1", "--vol", "0.2"
    )
    assert code == 2
    assert "abc" in err


def test_unknown_benchmark() -> None:
    code, _, err = _run("bench", "nonsense")
    assert code == 2
    assert "UNKNOWN_BENCHMARK" in err


def test_the_demo_compares_two_block_production_settings_on_the_crash() -> None:
    code, out, _ = _run("demo", "--seed", "3", "--duration-s", "60")
    assert code == 0
    assert "scenarios/crash.toml" in out
    assert "rollup sequencer, 250 ms blocks" in out
    assert "4 validators 100 ms apart" in out
    assert re.search(r"block interval p50 \(ms\) +250\.00 +1,300\.00", out)
    assert re.search(r"scale: 110 agents, 1 instrument", out)
    assert "with the validator set, orders wait" in out


def test_demo_all_runs_the_venue_then_the_pricing_and_checks_pass() -> None:
    code, out, _ = _run("demo", "--part", "all", "--seed", "3", "--duration-s", "30")
    assert code == 0
    venue, pricing = out.index("a seeded venue session"), out.index("SVI fit per expiry")
    assert venue < pricing
    for title in ("Markets", "Funding", "Option settlement", "Rejections by code"):
        assert title in out
    assert "BTC_USDC-PERPETUAL" in out
    assert "ETH_USDC-PERPETUAL" in out
    assert "after each of the 300 blocks: passed" in out
    assert re.search(r"held - net deposits +0 minor units: exact", out)
    assert "Node surface" in out
    assert "FAILED" not in out
    assert "VIOLATED" not in out


def test_demo_parts_run_alone() -> None:
    code, out, _ = _run("demo", "--part", "pricing", "--seed", "5")
    assert code == 0
    assert "SVI fit per expiry" in out
    assert "venue session" not in out
    code, out, _ = _run("demo", "--part", "venue", "--blocks", "200", "--seed", "5")
    assert code == 0
    assert "after each of the 200 blocks: passed" in out
    assert "SVI fit" not in out
    code, _, err = _run("demo", "--blocks", "10")
    assert code == 2
    assert "--blocks" in err


def test_the_demo_log_replays_and_a_tampered_one_does_not(tmp_path: Path) -> None:
    log = tmp_path / "demo.sqlite"
    code, out, _ = _run("demo", "--part", "venue", "--blocks", "200", "--log", str(log))
    assert code == 0
    assert "Block log, state commitment and replay" in out
    assert "verifies, a tampered leaf does not" in out
    assert "from genesis: 200 blocks applied" in out
    code, _, err = _run("demo", "--part", "venue", "--log", str(log))
    assert code == 2
    assert "LOG_EXISTS" in err

    code, out, _ = _run("replay", str(log), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["ok"]
    assert (report["blocks"], report["digests_checked"], report["roots_checked"]) == (200, 200, 4)
    code, out, _ = _run("replay", str(log), "--from-snapshot", "--json")
    assert code == 0
    assert json.loads(out)["start_height"] == 120

    with sqlite3.connect(log) as db:  # one recorded digest changed
        db.execute("UPDATE blocks SET digest = zeroblob(32) WHERE height = 77")
    code, out, _ = _run("replay", str(log))
    assert code == 1
    assert "block 77 differs: digest" in out
    assert "0" * 64 in out


def test_replay_refuses_what_is_not_a_block_log(tmp_path: Path) -> None:
    code, _, err = _run("replay", str(tmp_path / "missing.sqlite"))
    assert code == 2
    assert "LOG_NOT_FOUND" in err
    junk = tmp_path / "junk"
    junk.write_text("not a database, not even close: " * 100)
    code, _, err = _run("replay", str(junk))
    assert code == 2
    assert "NOT_A_BLOCK_LOG" in err
    assert not (tmp_path / "missing.sqlite").exists()
