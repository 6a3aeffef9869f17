"""Accuracy, special values, identities and exact bits of strikechain.pricing.detmath.

Errors are measured in ulps of the exact value (mpmath at 120 bits); the bounds below are
the measured maxima of the sweep in detmath's docstring plus a small margin, so a regression of a
fraction of an ulp fails. The golden vectors (tests/golden/detmath.json, written by
tools/make_detmath_golden.py) pin every bit, here and with NumPy's SIMD targets disabled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from strikechain.pricing import detmath

FloatArray = NDArray[np.float64]
Function = Callable[[FloatArray], FloatArray]
Reference = Callable[[mp.mpf], mp.mpf]

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "detmath.json"
mp.mp.prec = 120
SQRT_2 = mp.sqrt(2)
SQRT_2PI = mp.sqrt(2 * mp.pi)


# ----------------------------------------------------------------------------------------
# References and the ulp measure


def mills_mp(z: mp.mpf) -> mp.mpf:
    if z > 1e8:  # mpmath's erfc gives up; the asymptotic series is exact to 2^-200 here
        w = 1 / (z * z)
        return (1 - w + 3 * w * w - 15 * w**3) / z
    return mp.sqrt(mp.pi / 2) * mp.erfc(z / SQRT_2) * mp.exp(z * z / 2)


def pdf_mp(z: mp.mpf) -> mp.mpf:
    return mp.exp(-z * z / 2) / SQRT_2PI


def cdf_mp(z: mp.mpf) -> mp.mpf:
    return mp.erfc(-z / SQRT_2) / 2


def ndtri_mp(p: mp.mpf) -> mp.mpf:
    """Newton on log Phi (concave, so it converges from anywhere) to 2^-110."""
    q = min(p, 1 - p)
    x = -mp.sqrt(-2 * mp.log(q)) if q < 0.3 else SQRT_2PI * (q - mp.mpf(1) / 2)
    log_q = mp.log(q)
    for _ in range(100):
        cdf = cdf_mp(x)
        step = (mp.log(cdf) - log_q) * cdf / pdf_mp(x)
        x -= step
        if abs(step) < mp.mpf(2) ** -110 * (1 + abs(x)):
            break
    return x if p <= 0.5 else -x


def cbrt_mp(x: mp.mpf) -> mp.mpf:
    return mp.sign(x) * mp.cbrt(abs(x))


def ulp_of(value: mp.mpf) -> mp.mpf:
    """Spacing of doubles at |value| (2^-1074 in the subnormal range)."""
    if value == 0:
        return mp.ldexp(1, -1074)
    _, exponent = mp.frexp(value)
    return mp.ldexp(1, max(int(exponent) - 53, -1074))


def ulp_errors(reference: Reference, x: FloatArray, y: FloatArray) -> FloatArray:
    errors = np.empty(x.shape[0])
    overflow = mp.ldexp(1, 1024) * (1 - mp.ldexp(1, -54))
    for index, (xi, yi) in enumerate(zip(x.tolist(), y.tolist(), strict=True)):
        exact = reference(mp.mpf(xi))
        if abs(exact) >= overflow:
            errors[index] = 0.0 if yi == float(mp.sign(exact)) * np.inf else np.inf
        else:
            errors[index] = float(abs(mp.mpf(yi) - exact) / ulp_of(exact))
    return errors


def max_ulps(function: Function, reference: Reference, x: FloatArray) -> tuple[float, float]:
    errors = ulp_errors(reference, x, function(x))
    worst = int(np.argmax(errors))
    return float(errors[worst]), float(x[worst])


# ----------------------------------------------------------------------------------------
# Accuracy against mpmath

RNG_SEED = 7
POINTS = 1000


def logu(rng: np.random.Generator, low: float, high: float) -> FloatArray:
    return np.exp(rng.uniform(np.log(low), np.log(high), POINTS))


def signs(rng: np.random.Generator) -> FloatArray:
    return rng.choice(np.array([-1.0, 1.0]), POINTS)


def samples(name: str) -> FloatArray:
    """Random points over the domain, its tails, tiny and huge arguments and subnormals."""
    rng = np.random.default_rng([RNG_SEED, len(name)])
    sets = {
        "exp": [rng.uniform(-708.0, 709.78, POINTS), rng.uniform(-1, 1, POINTS)],
        "exp_subnormal": [rng.uniform(-745.1, -708.4, POINTS)],
        "expm1": [
            rng.uniform(-40.0, 709.0, POINTS),
            rng.uniform(-1.0, 1.0, POINTS),
            rng.uniform(-0.07, 0.07, POINTS),
            logu(rng, 1e-300, 1e-3) * signs(rng),
        ],
        "log": [
            logu(rng, 1e-307, 1e308),
            rng.uniform(0.99, 1.01, POINTS),
            1.0 + logu(rng, 1e-15, 1e-3) * signs(rng),
            logu(rng, 5e-324, 2e-308),
        ],
        "log1p": [
            logu(rng, 1e-300, 1e300),
            rng.uniform(-1.0, 1.0, POINTS),
            logu(rng, 1e-300, 1e-2) * signs(rng),
            rng.uniform(-1.0, -0.99, POINTS),
        ],
        "cbrt": [logu(rng, 5e-324, 1e308) * signs(rng), rng.uniform(-10.0, 10.0, POINTS)],
        "mills": [
            rng.uniform(0.0, 40.0, POINTS),
            rng.uniform(0.0, 2.0, POINTS),
            logu(rng, 1e-10, 1e300),
            rng.uniform(31.0, 33.0, POINTS),
        ],
        "mills_negative": [rng.uniform(-37.0, 0.0, POINTS), rng.uniform(-2.0, 0.0, POINTS)],
        "normal_pdf": [rng.uniform(-37.5, 37.5, POINTS), rng.uniform(-3.0, 3.0, POINTS)],
        "ndtr": [
            rng.uniform(-37.5, 8.3, POINTS),
            rng.uniform(-3.0, 3.0, POINTS),
            rng.uniform(-37.5, -20.0, POINTS),
        ],
        "ndtri": [
            rng.uniform(0.0, 1.0, POINTS // 3),
            logu(rng, 1e-300, 0.5)[: POINTS // 3],
            1.0 - logu(rng, 1.2e-16, 0.5)[: POINTS // 3],
            logu(rng, 5e-324, 2e-308)[:20],
        ],
    }
    return np.concatenate(sets[name])


ACCURACY = [
    # name of sample set, function, reference, bound in ulps
    ("exp", detmath.exp, mp.exp, 0.52),
    ("exp_subnormal", detmath.exp, mp.exp, 1.0),
    ("expm1", detmath.expm1, mp.expm1, 0.62),
    ("log", detmath.log, mp.log, 0.53),
    ("log1p", detmath.log1p, mp.log1p, 0.53),
    ("cbrt", detmath.cbrt, cbrt_mp, 0.51),
    ("mills", detmath.mills, mills_mp, 1.5),
    ("mills_negative", detmath.mills, mills_mp, 2.2),
    ("normal_pdf", detmath.normal_pdf, pdf_mp, 0.55),
    ("ndtr", detmath.ndtr, cdf_mp, 3.0),
    ("ndtri", detmath.ndtri, ndtri_mp, 2.6),
]


@pytest.mark.parametrize(("name", "function", "reference", "bound"), ACCURACY)
def test_accuracy_against_mpmath(
    name: str, function: Function, reference: Reference, bound: float
) -> None:
    worst, where = max_ulps(function, reference, samples(name))
    assert worst <= bound, f"{name}: {worst:.3f} ulp at {where!r}"


# ----------------------------------------------------------------------------------------
# Special values

INF = np.inf
NAN = np.nan
TINY = 5e-324

SPECIAL_CASES = [
    (
        detmath.exp,
        [0.0, -0.0, INF, -INF, NAN, 709.79, -745.14, TINY],
        [1, 1, INF, 0, NAN, INF, 0, 1],
    ),
    (
        detmath.expm1,
        [0.0, -0.0, INF, -INF, NAN, TINY, -TINY, -50.0, 710.0],
        [0.0, -0.0, INF, -1, NAN, TINY, -TINY, -1, INF],
    ),
    (
        detmath.log,
        [0.0, -0.0, INF, -INF, NAN, -1.0, 1.0, TINY],
        [-INF, -INF, INF, NAN, NAN, NAN, 0.0, -744.4400719213812],
    ),
    (
        detmath.log1p,
        [0.0, -0.0, INF, -INF, NAN, -1.0, -2.0, TINY, -TINY],
        [0.0, -0.0, INF, NAN, NAN, -INF, NAN, TINY, -TINY],
    ),
    (
        detmath.cbrt,
        [0.0, -0.0, INF, -INF, NAN, 8.0, -27.0, 0.125],
        [0.0, -0.0, INF, -INF, NAN, 2.0, -3.0, 0.5],
    ),
    (detmath.mills, [INF, NAN, 1e308, -INF, -40.0], [0.0, NAN, 1e-308, INF, INF]),
    (detmath.normal_pdf, [INF, -INF, NAN, 40.0, 0.0], [0.0, 0.0, NAN, 0.0, 0.3989422804014327]),
    (detmath.ndtr, [INF, -INF, NAN, 0.0, -0.0, -40.0, 40.0], [1.0, 0.0, NAN, 0.5, 0.5, 0.0, 1.0]),
    (
        detmath.ndtri,
        [0.0, -0.0, 1.0, 0.5, -TINY, 1.5, NAN, INF],
        [-INF, -INF, INF, 0.0, NAN, NAN, NAN, NAN],
    ),
]


@pytest.mark.parametrize(("function", "inputs", "expected"), SPECIAL_CASES)
def test_special_values(function: Function, inputs: list[float], expected: list[float]) -> None:
    got = function(np.array(inputs))
    want = np.array(expected, dtype=np.float64)
    assert [v.hex() for v in got.tolist()] == [v.hex() for v in want.tolist()]
    assert np.array_equal(np.signbit(got), np.signbit(want))


def test_mills_closed_forms() -> None:
    assert detmath.mills(np.array(0.0)) == float(mp.sqrt(mp.pi / 2))
    large = np.array([1e100, 1e300])  # M(z) = (1 - 1/z^2 ...)/z rounds to 1/z
    assert np.array_equal(detmath.mills(large), 1.0 / large)


ALL_FUNCTIONS = [
    detmath.exp,
    detmath.expm1,
    detmath.log,
    detmath.log1p,
    detmath.cbrt,
    detmath.mills,
    detmath.normal_pdf,
    detmath.ndtr,
    detmath.ndtri,
]


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_shapes_and_input_untouched(function: Function) -> None:
    rng = np.random.default_rng(3)
    matrix = rng.uniform(0.01, 0.99, (3, 40000))  # spans several chunks
    view = matrix[:, ::3]  # not contiguous
    before = view.copy()
    out = function(view)
    assert out.shape == view.shape
    assert out.dtype == np.float64
    assert np.array_equal(view, before)
    assert not np.shares_memory(out, matrix)
    assert np.array_equal(out, function(np.ascontiguousarray(view)))
    assert np.array_equal(out.ravel()[:7], function(before.ravel()[:7]))  # chunking is invisible
    scalar = function(np.array(0.25))
    assert isinstance(scalar, np.ndarray)
    assert scalar.shape == ()
    assert function(np.empty((0, 2))).shape == (0, 2)


# ----------------------------------------------------------------------------------------
# Monotonicity, identities and properties


def consecutive_doubles(centre: float, count: int = 200) -> FloatArray:
    steps = np.arange(-count, count, dtype=np.float64)
    return centre + steps * abs(np.spacing(centre))


MONOTONE = [
    (detmath.exp, [0.0, 1.0, np.log(2.0) / 128, -708.4, 40.0], 1),
    (detmath.expm1, [0.0625, -0.0625, 40.0], 1),
    (detmath.log, [1.0, 0.5 + 2.0**-10, 1.0 - 2.0**-10, 2.0], 1),
    (detmath.log1p, [2.0**-10, -(2.0**-10), 1.0], 1),
    (detmath.cbrt, [1.0, 2.0, 4.0, 0.75], 1),
    (detmath.mills, [32.0, 1.0 / 128, 0.5 + 1.0 / 256, 31.0 + 127.0 / 128], -1),
    (detmath.ndtr, [-1.0, 1.0, -30.0, 0.0, 0.0625, -0.0625], 1),
    (detmath.ndtri, [0.075, 0.925, 0.5, 0.25], 1),
]


@pytest.mark.parametrize(("function", "centres", "direction"), MONOTONE)
def test_monotone_across_cell_boundaries(
    function: Function, centres: list[float], direction: int
) -> None:
    rng = np.random.default_rng(5)
    for centre in centres:
        x = consecutive_doubles(centre)
        steps = np.diff(function(x)) * direction
        assert np.all(steps >= 0), f"not monotone near {centre!r}"
    lows, highs = {detmath.mills: (0.0, 50.0), detmath.ndtri: (0.0, 1.0)}.get(
        function, (0.01, 30.0)
    )
    x = np.sort(rng.uniform(lows, highs, 5000))
    assert np.all(np.diff(function(x)) * direction >= 0)


def ulp_distance(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.abs(a - b) / np.spacing(np.abs(b))


def test_identities() -> None:
    rng = np.random.default_rng(11)
    x = np.exp(rng.uniform(-700.0, 700.0, 5000))
    assert np.max(ulp_distance(detmath.exp(detmath.log(x)), x)) <= 1.0 + 700 * 0.5
    small = rng.uniform(-0.5, 0.5, 5000)
    assert np.max(ulp_distance(detmath.expm1(detmath.log1p(small)), small)) <= 2.0
    c = rng.uniform(-1e5, 1e5, 5000)
    assert np.max(ulp_distance(detmath.cbrt(c * c * c), c)) <= 1.0
    p = rng.uniform(1e-12, 1 - 1e-12, 5000)
    assert np.max(np.abs(detmath.ndtr(detmath.ndtri(p)) - p) / p) <= 4e-16 * 40
    z = rng.uniform(-8.0, 8.0, 5000)
    total = detmath.ndtr(z) + detmath.ndtr(-z)
    assert np.max(np.abs(total - 1.0)) <= 2.0**-52
    z = z[:300]
    reflected = detmath.mills(-z) + detmath.mills(z)
    exact = np.array([float(SQRT_2PI * mp.exp(mp.mpf(v) ** 2 / 2)) for v in z.tolist()])
    assert np.max(ulp_distance(reflected, exact)) <= 3.0


@given(st.floats(min_value=0.0, max_value=1e300, allow_subnormal=True))
def test_mills_property(z: float) -> None:
    worst, _ = max_ulps(detmath.mills, mills_mp, np.array([z]))
    assert worst <= 1.5


@given(st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True))
def test_cbrt_is_odd_and_inverts_cubes(x: float) -> None:
    pair = detmath.cbrt(np.array([x, -x]))
    assert pair[0] == -pair[1]
    assert np.signbit(pair[0]) == np.signbit(x)
    n = float(int(x) % 100000)
    assert detmath.cbrt(np.array(n * n * n)) == n


@given(st.floats(min_value=5e-324, max_value=1.0, exclude_max=True))
def test_ndtri_property(p: float) -> None:
    worst, _ = max_ulps(detmath.ndtri, ndtri_mp, np.array([p]))
    assert worst <= 3.0


# ----------------------------------------------------------------------------------------
# Exact bits: golden vectors, here and without the CPU's SIMD targets

GOLDEN_CHECK = """
import json, sys
import numpy as np
from strikechain.pricing import detmath
table = json.load(open(sys.argv[1]))["functions"]
bad = []
for name, rows in table.items():
    x = np.array([float.fromhex(i) for i, _ in rows])
    got = [v.hex() for v in getattr(detmath, name)(x).tolist()]
    bad += [(name, i, o, g) for (i, o), g in zip(rows, got) if o != g]
print(bad[:5])
sys.exit(1 if bad else 0)
"""


def test_golden_vectors_bit_for_bit() -> None:
    table = json.loads(GOLDEN.read_text())["functions"]
    assert set(table) == {f.__name__ for f in ALL_FUNCTIONS}
    assert sum(len(rows) for rows in table.values()) >= 300
    for name, rows in table.items():
        x = np.array([float.fromhex(i) for i, _ in rows])
        got = [v.hex() for v in getattr(detmath, name)(x).tolist()]
        assert got == [o for _, o in rows], name


def simd_targets_to_disable() -> list[str]:
    """The dispatch targets NumPy would use on this CPU (baseline ones cannot be disabled)."""
    from numpy._core import _multiarray_umath as umath

    features: dict[str, bool] = umath.__cpu_features__
    return [t for t in umath.__cpu_dispatch__ if features.get(t, False)]


def test_golden_vectors_without_simd_dispatch() -> None:
    targets = simd_targets_to_disable()
    if not targets:
        pytest.skip("this CPU supports none of NumPy's dispatch targets: nothing to disable")
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=" ".join(targets))
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from numpy._core._multiarray_umath import __cpu_features__ "
            "as f; import sys; print(' '.join(k for k in sys.argv[1:] if f.get(k)))",
            *targets,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "", f"NumPy kept {probe.stdout} enabled"
    result = subprocess.run(
        [sys.executable, "-c", GOLDEN_CHECK, str(GOLDEN)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.long
def test_coefficient_module_is_reproducible() -> None:
    """Rerunning the generator (about 25 s of mpmath) must give the committed module."""
    script = Path(__file__).resolve().parents[2] / "tools" / "fit_approximations.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
