"""Node surfaces (the oracle's) and fitted SVI surfaces: interpolation, determinism, checks."""

from __future__ import annotations

import ast
import inspect
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from strikechain.pricing import surface as surface_module
from strikechain.pricing.surface import (
    MAX_NODE_POINTS,
    NodeSurface,
    SviSurface,
    fit_svi_surface,
)
from strikechain.pricing.svi import SliceQuotes, SurfaceError, SurfaceErrorCode, SviParams

Floats = NDArray[np.float64]

EXPIRIES = np.array([0.1, 0.25, 0.5, 1.0])
GRID = np.array([-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0])
# Nodes non-decreasing in T at every k, as exact binary fractions.
NODES = np.array(
    [
        [0.0150, 0.0100, 0.0060, 0.0050, 0.0055, 0.0080, 0.0120],
        [0.0350, 0.0240, 0.0150, 0.0125, 0.0135, 0.0190, 0.0300],
        [0.0650, 0.0460, 0.0300, 0.0250, 0.0270, 0.0370, 0.0560],
        [0.1250, 0.0900, 0.0600, 0.0500, 0.0540, 0.0730, 0.1100],
    ]
)


def scaled_svi_surface() -> SviSurface:
    """w_T(k) = T * w_1(k): calendar-free by construction, each slice butterfly-free."""
    base = SviParams(0.04, 0.3, -0.5, 0.05, 0.25)
    slices = tuple(
        SviParams(base.a * T, base.b * T, base.rho, base.m, base.sigma) for T in EXPIRIES
    )
    return SviSurface(tuple(EXPIRIES.tolist()), slices)


@pytest.fixture
def nodes() -> NodeSurface:
    return NodeSurface(EXPIRIES, GRID, NODES)


class TestNodeValidation:
    @pytest.mark.parametrize(
        ("expiries", "grid", "variance"),
        [
            (EXPIRIES[::-1], GRID, NODES),
            (np.array([0.1, 0.1, 0.5, 1.0]), GRID, NODES),
            (np.array([0.0, 0.25, 0.5, 1.0]), GRID, NODES),
            (EXPIRIES, GRID[::-1], NODES),
            (EXPIRIES, GRID, NODES[:, :-1]),
            (EXPIRIES, GRID, np.where(NODES[1, 3] == NODES, 0.0, NODES)),
            (EXPIRIES, GRID, np.where(NODES[1, 3] == NODES, np.nan, NODES)),
            (EXPIRIES, np.where(GRID == 0.0, np.inf, GRID), NODES),
            (EXPIRIES, np.linspace(-1, 1, MAX_NODE_POINTS + 1), np.ones((4, MAX_NODE_POINTS + 1))),
            (EXPIRIES, np.array([]), np.ones((4, 0))),
        ],
    )
    def test_bad_nodes_rejected(self, expiries: Floats, grid: Floats, variance: Floats) -> None:
        with pytest.raises(SurfaceError) as raised:
            NodeSurface(expiries, grid, variance)
        assert raised.value.code == SurfaceErrorCode.SURFACE_BAD_NODES

    def test_arrays_are_read_only_copies(self) -> None:
        variance = NODES.copy()
        surface = NodeSurface(EXPIRIES, GRID, variance)
        variance[0, 0] = 1.0
        assert surface.total_variance[0, 0] == NODES[0, 0]
        with pytest.raises(ValueError, match="read-only"):
            surface.total_variance[0, 0] = 1.0

    @pytest.mark.parametrize(
        ("expiry", "k"), [(-0.1, 0.0), (np.nan, 0.0), (0.5, np.nan), (np.inf, 0.0), (0.5, np.inf)]
    )
    def test_bad_queries_rejected(self, nodes: NodeSurface, expiry: float, k: float) -> None:
        with pytest.raises(SurfaceError) as raised:
            nodes.interpolate_total_variance(expiry, k)
        assert raised.value.code == SurfaceErrorCode.SURFACE_BAD_QUERY

    def test_from_vols_round_trips(self, nodes: NodeSurface) -> None:
        again = NodeSurface.from_vols(EXPIRIES, GRID, nodes.node_vols())
        np.testing.assert_allclose(again.total_variance, NODES, rtol=4e-16)


class TestNodeInterpolation:
    def test_exact_at_every_node(self, nodes: NodeSurface) -> None:
        values = nodes.interpolate_total_variance(EXPIRIES[:, None], GRID[None, :])
        np.testing.assert_array_equal(values, NODES)
        vols = nodes.interpolate_vol(EXPIRIES[:, None], GRID[None, :])
        np.testing.assert_array_equal(vols, nodes.node_vols())

    def test_linear_in_k_between_nodes(self, nodes: NodeSurface) -> None:
        t = np.linspace(0.0, 1.0, 11)
        for row, expiry in enumerate(EXPIRIES):
            for j in range(GRID.size - 1):
                k = GRID[j] + t * (GRID[j + 1] - GRID[j])
                expected = NODES[row, j] + t * (NODES[row, j + 1] - NODES[row, j])
                actual = nodes.interpolate_total_variance(expiry, k)
                np.testing.assert_allclose(actual, expected, rtol=1e-14)

    def test_linear_in_t_between_expiries(self, nodes: NodeSurface) -> None:
        s = np.linspace(0.0, 1.0, 11)
        for i in range(EXPIRIES.size - 1):
            T = EXPIRIES[i] + s * (EXPIRIES[i + 1] - EXPIRIES[i])
            for j, k in enumerate(GRID):
                expected = NODES[i, j] + s * (NODES[i + 1, j] - NODES[i, j])
                actual = nodes.interpolate_total_variance(T, k)
                np.testing.assert_allclose(actual, expected, rtol=1e-14)

    def test_before_the_first_expiry_vol_is_constant(self, nodes: NodeSurface) -> None:
        T = np.array([0.0, 0.01, 0.05, 0.1])
        w = nodes.interpolate_total_variance(T[:, None], GRID[None, :])
        np.testing.assert_allclose(w, T[:, None] / 0.1 * NODES[0], rtol=1e-15)
        assert np.all(w[0] == 0.0)
        vols = nodes.interpolate_vol(T[:, None], GRID[None, :])
        np.testing.assert_allclose(vols, np.broadcast_to(nodes.node_vols()[0], vols.shape))

    def test_after_the_last_expiry_vol_is_constant(self, nodes: NodeSurface) -> None:
        T = np.array([1.0, 1.5, 3.0])
        vols = nodes.interpolate_vol(T[:, None], GRID[None, :])
        np.testing.assert_allclose(vols, np.broadcast_to(nodes.node_vols()[-1], vols.shape))

    def test_flat_beyond_the_grid(self, nodes: NodeSurface) -> None:
        for T in (0.05, 0.3, 1.0, 2.0):
            left = nodes.interpolate_total_variance(T, np.array([-5.0, -1.5, GRID[0]]))
            right = nodes.interpolate_total_variance(T, np.array([GRID[-1], 1.5, 5.0]))
            assert np.all(left == left[-1])
            assert np.all(right == right[0])

    def test_query_shapes_broadcast(self, nodes: NodeSurface) -> None:
        assert nodes.interpolate_total_variance(0.3, 0.1).shape == ()
        assert nodes.interpolate_total_variance(np.ones((2, 3)), 0.1).shape == (2, 3)
        assert nodes.interpolate_vol(np.ones(4)[:, None], np.zeros(5)).shape == (4, 5)

    def test_single_node_is_flat_everywhere(self) -> None:
        one = NodeSurface(np.array([0.5]), np.array([0.0]), np.array([[0.02]]))
        values = one.interpolate_total_variance(np.array([0.25, 0.5, 1.0]), np.array([-3, 0, 3]))
        np.testing.assert_allclose(values, [0.01, 0.02, 0.04])


# Pinned results of the deterministic interpolation, as hex: they are exact consequences of
# IEEE-754 arithmetic and must be identical on every machine.
GOLDEN_QUERIES = [
    (0.0, 0.0),
    (0.05, -0.3),
    (0.1, 0.1),
    (0.3, -0.75),
    (0.3, 0.33),
    (0.77, 0.2),
    (0.99, -2.0),
    (1.0, 0.7),
    (2.5, 0.05),
]
GOLDEN_HEX = [
    "0x0.0p+0",
    "0x1.e098ead65b7a4p-9",  # 0.003666666666666667: before the first expiry, (T/T1) w1
    "0x1.5810624dd2f1ap-8",  # 0.0052499999999999995
    "0x1.1c432ca57a787p-5",  # 0.0347: bilinear inside a cell
    "0x1.36dbed8a6ae0dp-6",  # 0.01897333333333333
    "0x1.549f94855da27p-5",  # 0.04158
    "0x1.fb15b573eab36p-4",  # 0.1238: flat beyond the grid
    "0x1.67a0f9096bb98p-4",  # 0.08779999999999999
    "0x1.051eb851eb852p-3",  # 0.1275: after the last expiry, (T/Tn) wn
]


def test_golden_values(nodes: NodeSurface) -> None:
    T = np.array([q[0] for q in GOLDEN_QUERIES])
    k = np.array([q[1] for q in GOLDEN_QUERIES])
    values = nodes.interpolate_total_variance(T, k)
    assert [float(v).hex() for v in values] == [float.fromhex(h).hex() for h in GOLDEN_HEX]


ALLOWED_NUMPY = {"where", "searchsorted", "int64"}
DETERMINISTIC_PATH = [
    surface_module._k_weights,
    surface_module._brackets,
    surface_module._blend,
    surface_module.NodeSurface.interpolate_total_variance,
]


@pytest.mark.parametrize("function", DETERMINISTIC_PATH, ids=lambda f: f.__qualname__)
def test_interpolation_uses_only_exact_operations(function: object) -> None:
    """The interpolation path may call NumPy only for selection and search (module doc)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))  # type: ignore[arg-type]
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "np"
    }
    assert used <= ALLOWED_NUMPY
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert calls <= ALLOWED_NUMPY | {"astype", "ravel", "reshape"}


@st.composite
def monotone_nodes(draw: st.DrawFn) -> NodeSurface:
    n_t = draw(st.integers(1, 5))
    n_k = draw(st.integers(1, 7))
    positive = st.floats(1e-4, 1.0)
    first = draw(hnp.arrays(np.float64, n_k, elements=positive))
    steps = draw(hnp.arrays(np.float64, (n_t - 1, n_k), elements=st.floats(0.0, 0.5)))
    variance = np.cumsum(np.vstack([first, steps]), axis=0)
    expiries = np.cumsum(draw(hnp.arrays(np.float64, n_t, elements=st.floats(0.01, 1.0))))
    grid = np.cumsum(draw(hnp.arrays(np.float64, n_k, elements=st.floats(0.01, 1.0)))) - 1.0
    return NodeSurface(expiries, grid, variance)


@settings(max_examples=200)
@given(
    surface=monotone_nodes(),
    k=st.floats(-3.0, 5.0),
    times=hnp.arrays(np.float64, 40, elements=st.floats(0.0, 6.0)),
)
def test_monotone_in_t_bit_for_bit(surface: NodeSurface, k: float, times: Floats) -> None:
    """Nodes non-decreasing in T give an interpolant non-decreasing in T, with no tolerance."""
    assert surface.check_calendar().passed
    T = np.sort(np.concatenate([times, surface.expiries]))
    values = surface.interpolate_total_variance(T, k)
    assert np.all(values[1:] >= values[:-1])


@settings(max_examples=200)
@given(surface=monotone_nodes(), data=st.data())
def test_exact_at_nodes_and_bounded_between(surface: NodeSurface, data: st.DataObject) -> None:
    T = surface.expiries[:, None]
    np.testing.assert_array_equal(
        surface.interpolate_total_variance(T, surface.log_moneyness[None, :]),
        surface.total_variance,
    )
    expiry = data.draw(st.floats(float(surface.expiries[0]), float(surface.expiries[-1])))
    k = data.draw(st.floats(-3.0, 5.0))
    value = float(surface.interpolate_total_variance(expiry, k))
    lowest, highest = surface.total_variance.min(), surface.total_variance.max()
    assert lowest * (1 - 1e-15) <= value <= highest * (1 + 1e-15)


class TestNodeChecks:
    def test_monotone_nodes_pass(self, nodes: NodeSurface) -> None:
        assert nodes.check_calendar() == surface_module.NodeCheck(True, ())
        assert nodes.check_butterfly().passed
        assert nodes.require_arbitrage_free() is nodes

    def test_calendar_violation_located(self) -> None:
        variance = NODES.copy()
        variance[2, 5] = variance[1, 5] - 0.001
        crossing = NodeSurface(EXPIRIES, GRID, variance)
        result = crossing.check_calendar()
        assert not result.passed
        (violation,) = result.violations
        assert violation.check == "calendar"
        assert (violation.expiry, violation.log_moneyness) == (0.5, 0.5)
        assert violation.amount == pytest.approx(0.001)
        with pytest.raises(SurfaceError) as raised:
            crossing.require_arbitrage_free()
        assert raised.value.code == SurfaceErrorCode.SURFACE_CALENDAR_ARBITRAGE
        assert raised.value.expiry == 0.5

    def test_spike_is_a_butterfly_violation(self) -> None:
        variance = NODES.copy()
        variance[3, 3] *= 3.0  # one at-the-money node far above its neighbours
        spiky = NodeSurface(EXPIRIES, GRID, variance)
        result = spiky.check_butterfly()
        assert not result.passed
        assert {(v.check, v.expiry, v.log_moneyness) for v in result.violations} == {
            ("butterfly", 1.0, 0.0)
        }
        with pytest.raises(SurfaceError) as raised:
            spiky.require_arbitrage_free()
        assert raised.value.code == SurfaceErrorCode.SURFACE_BUTTERFLY_ARBITRAGE

    def test_call_price_rising_with_strike_is_a_vertical_violation(self) -> None:
        grid = np.array([0.0, 0.05])
        steep = NodeSurface(np.array([1.0]), grid, np.array([[0.01, 1.0]]))
        checks = {v.check for v in steep.check_butterfly().violations}
        assert "vertical" in checks

    def test_sampled_arbitrageable_svi_slice_fails(self) -> None:
        vogt = SviParams(-0.0410, 0.1331, 0.3060, 0.3586, 0.4153)
        sampled = SviSurface((1.0,), (vogt,)).sample_nodes(np.linspace(-0.5, 2.0, 51))
        violations = sampled.check_butterfly().violations
        assert {v.check for v in violations} == {"butterfly", "vertical"}
        assert all(0.5 < v.log_moneyness < 1.3 for v in violations)


class TestSviSurface:
    def test_nodes_agree_with_the_surface_bit_for_bit(self) -> None:
        svi = scaled_svi_surface()
        grid = np.linspace(-1.5, 1.5, 31)
        nodes = svi.sample_nodes(grid)
        T, k = EXPIRIES[:, None], grid[None, :]
        np.testing.assert_array_equal(
            nodes.interpolate_total_variance(T, k), svi.total_variance(T, k)
        )
        np.testing.assert_array_equal(nodes.interpolate_vol(T, k), svi.implied_vol(T, k))
        assert nodes.check_calendar().passed
        assert nodes.check_butterfly().passed

    def test_nodes_approximate_the_surface_between_nodes(self) -> None:
        svi = scaled_svi_surface()
        nodes = svi.sample_nodes(np.linspace(-1.5, 1.5, 61))
        T = np.linspace(0.05, 1.2, 24)[:, None]
        k = np.linspace(-1.5, 1.5, 301)[None, :]
        error = nodes.interpolate_vol(T, k) - svi.implied_vol(T, k)
        assert np.max(np.abs(error)) < 0.002  # 0.2 vol points

    def test_interpolation_in_t_is_linear_in_total_variance(self) -> None:
        svi = scaled_svi_surface()
        k = np.linspace(-1.0, 1.0, 9)
        middle = svi.total_variance(0.75, k)
        ends = svi.slices[2].total_variance(k), svi.slices[3].total_variance(k)
        np.testing.assert_allclose(middle, 0.5 * (ends[0] + ends[1]), rtol=1e-14)
        np.testing.assert_allclose(svi.implied_vol(0.0, k), svi.slices[0].implied_vol(k, 0.1))

    def test_checks_cover_every_slice(self) -> None:
        svi = scaled_svi_surface()
        assert all(check.passed for check in svi.check_butterfly())
        assert len(svi.check_calendar()) == EXPIRIES.size - 1
        assert all(check.passed for check in svi.check_calendar())

    def test_bad_surface_rejected(self) -> None:
        svi = scaled_svi_surface()
        with pytest.raises(SurfaceError) as raised:
            SviSurface(svi.expiries[::-1], svi.slices)
        assert raised.value.code == SurfaceErrorCode.SURFACE_BAD_NODES
        with pytest.raises(SurfaceError):
            SviSurface(svi.expiries, svi.slices[:-1])


def test_fit_sample_and_publish_end_to_end() -> None:
    """Quotes of a known surface -> fit -> nodes: the oracle reporter's whole path."""
    truth = scaled_svi_surface()
    k = np.linspace(-1.2, 1.2, 25)
    quotes = [
        SliceQuotes.from_vols(T, 100.0, 100.0 * np.exp(k), params.implied_vol(k, T))
        for T, params in zip(truth.expiries, truth.slices, strict=True)
    ]
    fit = fit_svi_surface(quotes, policy="repair")
    assert [r.expiry for r in fit.reports] == list(truth.expiries)
    assert all(r.butterfly_passed and r.calendar_passed and not r.repaired for r in fit.reports)
    assert max(r.rmse_vol_points for r in fit.reports) < 1e-8
    nodes = fit.surface.sample_nodes(np.linspace(-1.0, 1.0, 21))
    expected = truth.sample_nodes(np.linspace(-1.0, 1.0, 21))
    np.testing.assert_allclose(nodes.node_vols(), expected.node_vols(), rtol=1e-9)
    assert nodes.require_arbitrage_free() is nodes
