"""The normalized Black function against 60-digit references, region by region."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strikechain.pricing import normalized as nz
from strikechain.pricing.backend import FAST, Backend
from tests.pricing.reference import normalized_black, relative_error

EPS = float(np.finfo(np.float64).eps)
ACCURACY = 8.0
"""Relative error allowed, in epsilons times the condition number ``1 + h^2 + t^2`` of b."""


def _condition(y: float, s: float) -> float:
    h, t = y / s, s / 2
    return 1.0 + h * h + t * t


def _worst(y: np.ndarray, s: np.ndarray, backend: Backend = FAST) -> tuple[float, float, float]:
    values = nz.otm_value(y, s, backend)
    worst = (0.0, 0.0, 0.0)
    for value, yi, si in zip(values, y, s, strict=True):
        reference = normalized_black(yi, si)
        if reference < 1e-300:  # below the range the library promises (subnormals)
            continue
        ratio = relative_error(value, reference) / (EPS * _condition(yi, si))
        worst = max(worst, (ratio, float(yi), float(si)))
    return worst


def _points(rng: np.random.Generator, n: int, h_max: float, s_lo: float, s_hi: float):
    s = 10 ** rng.uniform(np.log10(s_lo), np.log10(s_hi), n)
    h = -rng.uniform(0.0, h_max, n)
    return h * s, s


@pytest.mark.parametrize(
    ("label", "h_max", "s_lo", "s_hi"),
    [
        ("near the money, any vol", 2.0, 1e-8, 20.0),
        ("tiny total vol (small-t series)", 12.0, 1e-9, 0.4),
        ("wings (asymptotic series)", 38.0, 1e-4, 3.0),
        ("moderate (Mills-ratio difference)", 10.0, 0.5, 6.0),
    ],
)
def test_relative_error_within_condition(
    label: str, h_max: float, s_lo: float, s_hi: float
) -> None:
    rng = np.random.default_rng(len(label))
    y, s = _points(rng, 400, h_max, s_lo, s_hi)
    ratio, yi, si = _worst(y, s)
    assert ratio <= ACCURACY, f"{label}: {ratio:.2f} eps*cond at y={yi!r}, s={si!r}"


def test_region_boundaries_are_accurate() -> None:
    """Both sides of every switch between formulas."""
    p_values, t_values = [], []
    for limit, _ in nz.SMALL_T_BANDS:
        for t in (limit * (1 - 1e-12), limit, limit * (1 + 1e-12)):
            for p in (0.0, 0.3, 1.0, 1.5, 4.0, 15.0):
                p_values.append(p)
                t_values.append(t)
    for p in (1.0, 2.0, 5.0, 20.0, 100.0):  # both sides of the reach of the series
        for reach in (nz.SERIES_REACH * (1 - 1e-12), nz.SERIES_REACH):
            p_values.append(p)
            t_values.append(reach / p)
    for t in (1e-6, 0.01, 0.3, 2.0):
        for a in (nz.ASYMPTOTIC_THRESHOLD * (1 - 1e-12), nz.ASYMPTOTIC_THRESHOLD, 10.5):
            p_values.append(a + t)
            t_values.append(t)
    p, t = np.array(p_values), np.array(t_values)
    s = 2.0 * t
    ratio, yi, si = _worst(-p * s, s)
    assert ratio <= ACCURACY, f"{ratio:.2f} eps*cond at y={yi!r}, s={si!r}"


def test_every_region_is_exercised() -> None:
    p = np.array([20.0, 1.0, 1.0, 3.0])
    t = np.array([0.005, 0.01, 0.2, 2.0])
    regions = nz._region_kernels(p, t)
    assert len(regions) == 2 + len(nz.SMALL_T_BANDS)
    for region, _ in regions:
        assert region is not None
        assert region.sum() == 1


def test_at_the_money_closed_form() -> None:
    s = np.geomspace(1e-10, 30.0, 60)
    values = nz.otm_value(np.zeros_like(s), s, FAST)
    for value, si in zip(values, s, strict=True):
        assert relative_error(value, normalized_black(0.0, si)) <= 4 * EPS


def test_textbook_formula_fails_where_we_do_not() -> None:
    """The point of the module: a tiny-vol, out-of-the-money price loses every digit naively."""
    y, s = -8e-12, 1e-12  # eight standard deviations out, a vanishing total volatility
    from scipy.special import ndtr

    naive = np.exp(y / 2) * ndtr(y / s + s / 2) - np.exp(-y / 2) * ndtr(y / s - s / 2)
    reference = normalized_black(y, s)
    assert relative_error(float(naive), reference) > 1e-3
    assert relative_error(nz.otm_value(np.array([y]), np.array([s]), FAST)[0], reference) < 1e-13


@given(
    st.floats(min_value=0.0, max_value=30.0),
    st.floats(min_value=1e-6, max_value=10.0),
)
def test_density_is_the_derivative(h: float, s: float) -> None:
    """``db/ds = phi0``: compare with a central difference of the accurate value."""
    y = -h * s
    ds = s * 1e-6 / (1.0 + h * h)  # the curvature b''/b' grows like h^2/s
    v = nz.otm_value(np.array([y, y]), np.array([s - ds, s + ds]), FAST)
    _, density = nz.otm_value_and_density(np.array([y]), np.array([s]), FAST)
    slope = (v[1] - v[0]) / (2 * ds)
    assert slope == pytest.approx(density[0], rel=1e-5, abs=1e-300)


def test_value_is_monotone_in_s() -> None:
    s = np.geomspace(1e-3, 10.0, 2000)
    for y in (0.0, -0.1, -1.0, -5.0):
        values = nz.otm_value(np.full_like(s, y), s, FAST)
        assert np.all(np.diff(values) >= 0.0)


@pytest.mark.parametrize(
    ("forward", "strike"),
    [(100.0, 100.5), (1.0, np.nextafter(1.0, 2.0)), (3.0, 7.0), (1e-200, 1e200), (1e6, 0.999e6)],
)
def test_log_moneyness_is_accurate(forward: float, strike: float) -> None:
    import mpmath as mp

    x = nz.log_moneyness(np.array([forward]), np.array([strike]), FAST)[0]
    reference = mp.log(mp.mpf(forward) / mp.mpf(strike))
    assert relative_error(x, reference) <= 2 * EPS
