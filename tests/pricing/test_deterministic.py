"""The deterministic mode: golden bits, independence from batching, agreement with fast mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from strikechain import pricing as px
from strikechain.pricing import deterministic as det

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "pricing_deterministic.json"
EPS = float(np.finfo(np.float64).eps)

MODE_AGREEMENT = 16.0
"""Documented bound: |deterministic - fast| <= MODE_AGREEMENT * eps * condition * |value|."""


def _load() -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    document = json.loads(GOLDEN.read_text())
    inputs = {
        k: np.array(v, dtype=bool) if k == "call" else np.array([float.fromhex(x) for x in v])
        for k, v in document["inputs"].items()
    }
    return inputs, document["outputs"]


def _compute(o: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sys.path.insert(0, str(GOLDEN.parent.parent.parent / "tools"))
    try:
        from make_pricing_golden import compute
    finally:
        sys.path.pop(0)
    return compute(o)


def test_golden_vectors_bit_for_bit() -> None:
    inputs, expected = _load()
    actual = _compute(inputs)
    assert set(actual) == set(expected)
    for name, values in actual.items():
        got = [float(v).hex() for v in values]
        mismatches = [i for i, (a, b) in enumerate(zip(got, expected[name], strict=True)) if a != b]
        assert not mismatches, f"{name}: {len(mismatches)} differ, first at {mismatches[0]}"


def test_golden_vectors_with_fewer_cpu_features() -> None:
    """The same bits when NumPy is told not to use its higher SIMD targets."""
    from numpy._core import _multiarray_umath as umath

    wide = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    if not wide:
        pytest.skip("this CPU has no SIMD target above the baseline to disable")
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(wide)}
    code = (
        "from tests.pricing.test_deterministic import test_golden_vectors_bit_for_bit as check;"
        "check()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=GOLDEN.parent.parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_results_do_not_depend_on_the_batch() -> None:
    inputs, _ = _load()
    args = [inputs[k] for k in ("spot", "strike", "expiry", "vol", "rate", "carry")]
    batch = det.bsm_greeks(*args, call=inputs["call"])
    for i in range(0, inputs["spot"].size, 17):
        single = det.bsm_greeks(*(float(a[i]) for a in args), call=bool(inputs["call"][i]))
        for name, value in single.as_dict().items():
            assert float(getattr(batch, name)[i]).hex() == float(value).hex(), (name, i)


def test_agreement_with_fast_mode() -> None:
    """The two modes differ in the last bits of exp/log/Mills only: a few ulps times the
    condition of what is computed (prices, vega: small; deep-wing theta/vanna: larger)."""
    inputs, _ = _load()
    args = [inputs[k] for k in ("spot", "strike", "expiry", "vol", "rate", "carry")]
    fast = px.bsm_greeks(*args, call=inputs["call"])
    slow = det.bsm_greeks(*args, call=inputs["call"])
    from tests.pricing.reference import price_condition

    for i in range(inputs["spot"].size):
        condition = price_condition(*(float(a[i]) for a in args), bool(inputs["call"][i]))
        a, b = fast.price[i], slow.price[i]
        assert abs(a - b) <= MODE_AGREEMENT * EPS * condition * abs(a), i
    iv_fast = px.bsm_implied_vol(fast.price, *args[:3], args[4], args[5], call=inputs["call"])
    iv_det = det.bsm_implied_vol(slow.price, *args[:3], args[4], args[5], call=inputs["call"])
    same = iv_fast.ok & iv_det.ok
    np.testing.assert_array_equal(iv_fast.status, iv_det.status)
    vol = inputs["vol"][same]
    bound = 8 * EPS * (vol + fast.price[same] / fast.vega[same])
    assert np.all(np.abs(iv_det.vol[same] - vol) <= bound)
