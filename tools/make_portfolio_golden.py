"""Write tests/golden/portfolio_margin.json: portfolio margin integers of a fixed portfolio set.

The golden file pins the exact integers of :mod:`strikechain.engine.portfolio` (the scenario
tables and every sub-ledger's requirement). The inputs are stored in the file too (integers, and
vols as float hex), so the check needs no generator. They change only when the model or its
defaults change on purpose; then rerun

    STRIKECHAIN_NATIVE=0 .venv/bin/python tools/make_portfolio_golden.py

and review the diff. ``tests/engine/test_portfolio.py`` recomputes everything and compares,
also in a child process with NumPy's SIMD targets above the baseline disabled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from strikechain.engine.oracle import NANOS_PER_YEAR
from strikechain.engine.portfolio import (
    DEFAULT_PORTFOLIO_PARAMS,
    PortfolioInstrument,
    ScenarioTable,
    build_scenario_table,
    margin_subledgers,
)
from strikechain.engine.units import NANOS_PER_DAY, NANOS_PER_HOUR
from strikechain.pricing import deterministic

PATH = Path(__file__).resolve().parent.parent / "tests" / "golden" / "portfolio_margin.json"
SEED = 20261126
NOW_NS = 1_780_000_000 * 10**9
INDEX_MINOR = 97_123_456_789
PORTFOLIOS = 64
POSITIONS_MAX = 12


def make_inputs() -> dict[str, Any]:
    """A chain on one underlying (two perpetuals, calls and puts over six expiries, one of them
    already expired) and seeded portfolios over it; every value an integer or a float hex."""
    rng = np.random.default_rng(SEED)
    expiries = [
        NOW_NS - NANOS_PER_HOUR,
        NOW_NS + 12 * NANOS_PER_HOUR,
        NOW_NS + 3 * NANOS_PER_DAY,
        NOW_NS + 30 * NANOS_PER_DAY,
        NOW_NS + 91 * NANOS_PER_DAY,
        NOW_NS + 365 * NANOS_PER_DAY,
    ]
    instruments: list[dict[str, Any]] = [
        {"is_option": False, "lot": [1, 100], "mark_per_lot": INDEX_MINOR // 100 + 12_345},
        {"is_option": False, "lot": [1, 1000], "mark_per_lot": INDEX_MINOR // 1000 - 678},
    ]
    vols = [float("nan"), float("nan")]
    for expiry in expiries:
        for moneyness in (0.6, 0.85, 1.0, 1.15, 1.6):
            strike = int(INDEX_MINOR * moneyness) // 1_000_000 * 1_000_000
            for call in (True, False):
                vol = float(rng.uniform(0.3, 1.2))
                years = max(expiry - NOW_NS, 1) / NANOS_PER_YEAR
                price = deterministic.black76(
                    float(INDEX_MINOR), float(strike), years, vol, call=call
                )
                mark = int(np.floor(price)) // 100
                if expiry <= NOW_NS:
                    intrinsic = INDEX_MINOR - strike if call else strike - INDEX_MINOR
                    mark = max(intrinsic, 0) // 100
                instruments.append(
                    {
                        "is_option": True,
                        "is_call": call,
                        "strike_minor": strike,
                        "expiry_ns": expiry,
                        "lot": [1, 100],
                        "mark_per_lot": mark,
                    }
                )
                vols.append(vol)
    portfolios = []
    for _ in range(PORTFOLIOS):
        held = int(rng.integers(1, POSITIONS_MAX + 1))
        picks = sorted(set(rng.integers(0, len(instruments), size=held).tolist()))
        lots = rng.integers(1, 1_000, size=len(picks)) * rng.choice((-1, 1), size=len(picks))
        portfolios.append([[i, int(q)] for i, q in zip(picks, lots.tolist(), strict=True)])
    return {
        "now_ns": NOW_NS,
        "index_minor": INDEX_MINOR,
        "confidence_minor": [INDEX_MINOR // 1000, INDEX_MINOR // 50],
        "instruments": instruments,
        "vols": [v.hex() for v in vols],
        "portfolios": portfolios,
    }


def tables(inputs: dict[str, Any]) -> list[ScenarioTable]:
    """One table per confidence value (good, then poor) at the default parameters."""
    specs = [
        PortfolioInstrument(
            is_option=item["is_option"],
            is_call=item.get("is_call", False),
            strike_minor=item.get("strike_minor", 0),
            expiry_ns=item.get("expiry_ns", 0),
            lot_numerator=item["lot"][0],
            lot_denominator=item["lot"][1],
            mark_per_lot=item["mark_per_lot"],
        )
        for item in inputs["instruments"]
    ]
    vols = np.array([float.fromhex(v) for v in inputs["vols"]])
    return [
        build_scenario_table(
            DEFAULT_PORTFOLIO_PARAMS,
            specs,
            vols,
            index_minor=inputs["index_minor"],
            confidence_minor=confidence,
            now_ns=inputs["now_ns"],
        )
        for confidence in inputs["confidence_minor"]
    ]


def positions_matrix(inputs: dict[str, Any]) -> sp.csr_array:
    rows, columns, lots = [], [], []
    for row, portfolio in enumerate(inputs["portfolios"]):
        for index, q in portfolio:
            rows.append(row)
            columns.append(index)
            lots.append(q)
    shape = (len(inputs["portfolios"]), len(inputs["instruments"]))
    return sp.csr_array((np.array(lots, dtype=np.int64), (rows, columns)), shape=shape)


def compute(inputs: dict[str, Any]) -> dict[str, Any]:
    """The scenario tables and every portfolio's requirement, as plain integers."""
    positions = positions_matrix(inputs)
    out: dict[str, Any] = {"long_pnl": [], "short_pnl": [], "margins": []}
    for table in tables(inputs):
        batch = margin_subledgers(table, positions)
        out["long_pnl"].append(table.long_pnl.tolist())
        out["short_pnl"].append(table.short_pnl.tolist())
        out["margins"].append(
            [
                [int(m), int(i), int(w), int(s)]
                for m, i, w, s in zip(
                    batch.maintenance,
                    batch.initial,
                    batch.worst_loss,
                    batch.worst_scenario,
                    strict=True,
                )
            ]
        )
    return out


def _dump(value: Any, depth: int = 0) -> str:
    """JSON with one innermost list (a table row, a position, a margin) per line."""
    pad = " " * (depth + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {_dump(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if isinstance(value, list) and any(isinstance(v, list | dict) for v in value):
        items = [pad + _dump(v, depth + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * depth + "]"
    return json.dumps(value, separators=(",", ":"))


def main() -> None:
    inputs = make_inputs()
    document = {"inputs": inputs, "outputs": compute(inputs)}
    PATH.write_text(_dump(document) + "\n")
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
