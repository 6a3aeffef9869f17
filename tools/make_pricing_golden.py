"""Write tests/golden/pricing_deterministic.json: inputs and deterministic-mode outputs as hex.

The golden vectors pin the exact bits of the deterministic pricing mode. They change only when
the deterministic algorithms change on purpose; then rerun

    .venv/bin/python tools/make_pricing_golden.py

and review the diff. CI recomputes every output and compares bit for bit
(tests/pricing/test_deterministic.py), on whatever CPU it runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from strikechain.pricing import GREEK_NAMES, deterministic

PATH = Path(__file__).resolve().parent.parent / "tests" / "golden" / "pricing_deterministic.json"


def _hex(values: np.ndarray) -> list[str]:
    return [float(v).hex() for v in np.asarray(values, dtype=np.float64).ravel()]


def options() -> dict[str, np.ndarray]:
    """A seeded grid: every pricing region, calls and puts, in and out of the money, the wings."""
    rng = np.random.default_rng(20261125)
    n = 240
    expiry = np.exp(rng.uniform(np.log(1 / 8760), np.log(5.0), n))
    vol = np.exp(rng.uniform(np.log(0.01), np.log(3.0), n))
    moneyness = rng.uniform(-14.0, 14.0, n)
    spot = np.exp(rng.uniform(np.log(1e-2), np.log(1e5), n))
    rate = rng.uniform(-0.02, 0.1, n)
    carry = np.where(rng.uniform(size=n) < 0.3, rate, rate - rng.uniform(-0.05, 0.05, n))
    strike = spot * np.exp(carry * expiry - moneyness * vol * np.sqrt(expiry))
    call = rng.uniform(size=n) < 0.5
    return {
        "spot": spot,
        "strike": strike,
        "expiry": expiry,
        "vol": vol,
        "rate": rate,
        "carry": carry,
        "call": call,
    }


def compute(o: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    args = (o["spot"], o["strike"], o["expiry"], o["vol"], o["rate"], o["carry"])
    greeks = deterministic.bsm_greeks(*args, call=o["call"])
    out = {f"bsm_{name}": getattr(greeks, name) for name in GREEK_NAMES}
    out["bsm_price_only"] = deterministic.bsm(*args, call=o["call"])
    implied = deterministic.bsm_implied_vol(
        greeks.price, o["spot"], o["strike"], o["expiry"], o["rate"], o["carry"], call=o["call"]
    )
    out["bsm_implied_vol"] = implied.vol
    out["bsm_implied_vol_status"] = implied.status.astype(np.float64)
    return out


def main() -> None:
    o = options()
    document = {
        "about": "deterministic-mode golden vectors; regenerate: tools/make_pricing_golden.py",
        "inputs": {k: _hex(v) if k != "call" else v.tolist() for k, v in o.items()},
        "outputs": {k: _hex(v) for k, v in compute(o).items()},
    }
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
