"""Raw SVI: parameters, arbitrage checks, fitting, policies and quote validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.special import ndtr

from strikechain.pricing.svi import (
    MAX_QUOTES_PER_SLICE,
    SliceQuotes,
    SurfaceError,
    SurfaceErrorCode,
    SviParams,
    check_butterfly,
    check_calendar,
    density_check_grid,
    fit_svi_slice,
    fit_svi_slices,
)

Floats = NDArray[np.float64]
FORWARD = 2500.0
GRID = np.linspace(-1.2, 1.2, 25)

# Gatheral and Jacquier's example of a slice with negative density (after Axel Vogt).
VOGT = SviParams(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)
# A steep right wing on a low floor: negative density near k = 0.6.
STEEP = SviParams(a=0.01, b=1.0, rho=0.9, m=-0.1, sigma=0.3)
# Two slices that cross: the later one is lower in the left wing.
EARLY = SviParams(a=0.02, b=0.2, rho=-0.6, m=0.0, sigma=0.2)
LATE_CROSSING = SviParams(a=0.04, b=0.1, rho=0.0, m=0.0, sigma=0.3)

RECOVERABLE = {
    "symmetric": (SviParams(0.04, 0.1, 0.0, 0.0, 0.2), 0.5),
    "mild skew": (SviParams(0.04, 0.1, -0.3, 0.05, 0.2), 0.5),
    "steep put skew": (SviParams(0.02, 0.4, -0.9, 0.1, 0.15), 0.25),
    "call skew (crypto)": (SviParams(0.3, 0.9, 0.6, 0.0, 0.6), 1.0),
    "negative a": (VOGT, 1.0),
    "near wing bound, left": (SviParams(1.5, 1.0, -0.95, 0.0, 0.5), 1.0),
    "near wing bound, rho -0.99": (SviParams(2.0, 0.99, -0.99, 0.0, 0.8), 2.0),
    "one week": (SviParams(0.0008, 0.01, -0.4, 0.0, 0.05), 7 / 365),
}


def quotes_of(
    params: SviParams,
    expiry: float,
    k: Floats = GRID,
    *,
    weights: Floats | None = None,
    vol_shift: Floats | None = None,
) -> SliceQuotes:
    vols = params.implied_vol(k, expiry)
    if vol_shift is not None:
        vols = vols + vol_shift
    return SliceQuotes.from_vols(expiry, FORWARD, FORWARD * np.exp(k), vols, weights)


def assert_close_params(actual: SviParams, expected: SviParams, tolerance: float) -> None:
    for name in ("a", "b", "rho", "m", "sigma"):
        assert getattr(actual, name) == pytest.approx(getattr(expected, name), abs=tolerance), name


class TestParams:
    @pytest.mark.parametrize(
        "values",
        [
            (0.04, -0.1, 0.0, 0.0, 0.2),  # b < 0
            (0.04, 0.1, 1.0, 0.0, 0.2),  # rho = 1
            (0.04, 0.1, -1.5, 0.0, 0.2),  # rho < -1
            (0.04, 0.1, 0.0, 0.0, 0.0),  # sigma = 0
            (-0.1, 0.1, 0.0, 0.0, 0.2),  # negative minimum variance
            (0.04, 1.5, 0.5, 0.0, 0.2),  # b (1 + |rho|) = 2.25 > 2
            (float("nan"), 0.1, 0.0, 0.0, 0.2),
            (0.04, 0.1, 0.0, float("inf"), 0.2),
        ],
    )
    def test_invalid_parameters_rejected(self, values: tuple[float, ...]) -> None:
        with pytest.raises(SurfaceError) as raised:
            SviParams(*values)
        assert raised.value.code == SurfaceErrorCode.SVI_BAD_PARAMS
        assert raised.value.code == "SVI_BAD_PARAMS"

    def test_wing_coordinates_round_trip(self) -> None:
        params = SviParams(0.3, 0.9, 0.6, 0.1, 0.6)
        rebuilt = SviParams.from_wings(
            params.m, params.sigma, params.left_slope, params.right_slope, params.min_total_variance
        )
        assert_close_params(rebuilt, params, 1e-14)

    def test_derivatives_match_finite_differences(self) -> None:
        params = SviParams(0.04, 0.3, -0.5, 0.05, 0.25)
        k = np.linspace(-2.0, 2.0, 41)
        h = 1e-5
        w = params.total_variance
        slope = (w(k + h) - w(k - h)) / (2 * h)
        curvature = (w(k + h) - 2 * w(k) + w(k - h)) / h**2
        np.testing.assert_allclose(params.total_variance_slope(k), slope, atol=1e-9)
        np.testing.assert_allclose(params.total_variance_curvature(k), curvature, atol=1e-5)

    def test_density_is_the_call_price_convexity(self) -> None:
        """d2C/dK2 = g(k) / (K sqrt(2 pi w)) exp(-d2^2 / 2) for undiscounted calls on F = 1."""
        params = SviParams(0.04, 0.3, -0.5, 0.05, 0.25)

        def call(strike: Floats) -> Floats:
            k = np.log(strike)
            root = np.sqrt(params.total_variance(k))
            d1 = -k / root + 0.5 * root
            result: Floats = ndtr(d1) - strike * ndtr(d1 - root)
            return result

        k = np.array([-0.8, -0.2, 0.0, 0.3, 1.0])
        strike = np.exp(k)
        h = 1e-4 * strike
        convexity = (call(strike + h) - 2 * call(strike) + call(strike - h)) / h**2
        w = params.total_variance(k)
        d2 = -k / np.sqrt(w) - 0.5 * np.sqrt(w)
        density = params.density(k) / (strike * np.sqrt(2 * np.pi * w)) * np.exp(-0.5 * d2 * d2)
        np.testing.assert_allclose(convexity, density, rtol=1e-6)

    def test_flat_smile_has_unit_density(self) -> None:
        flat = SviParams(0.09, 0.0, 0.0, 0.0, 0.1)
        np.testing.assert_array_equal(flat.density(np.linspace(-3, 3, 7)), 1.0)
        np.testing.assert_allclose(flat.implied_vol(0.0, 0.25), 0.6)

    def test_grid_reaches_the_wings_and_is_sorted(self) -> None:
        grid = density_check_grid(VOGT)
        assert np.all(np.diff(grid) > 0)
        assert grid[0] < -50
        assert grid[-1] > 50
        assert np.max(np.diff(grid[np.abs(grid) < 6])) <= 0.01 + 1e-12


class TestChecks:
    def test_known_arbitrageable_slices_fail(self) -> None:
        for params, region in ((VOGT, (0.6, 1.3)), (STEEP, (0.2, 1.2))):
            result = check_butterfly(params)
            assert not result.passed
            assert result.min_density < 0
            assert region[0] < result.at_log_moneyness < region[1]

    def test_arbitrage_free_slices_pass(self) -> None:
        for params, _ in RECOVERABLE.values():
            if params is not VOGT:
                assert check_butterfly(params).passed, params

    def test_crossing_slices_fail_calendar(self) -> None:
        result = check_calendar(EARLY, LATE_CROSSING)
        assert not result.passed
        assert not result.wings_passed
        assert -1.0 < result.nearest_violation < 0.0

    def test_parallel_lift_passes_calendar(self) -> None:
        lifted = SviParams(EARLY.a + 0.01, EARLY.b, EARLY.rho, EARLY.m, EARLY.sigma)
        assert check_calendar(EARLY, lifted).passed
        assert check_calendar(EARLY, EARLY).passed
        assert not check_calendar(lifted, EARLY).passed

    def test_crossing_beyond_the_grid_is_caught_by_the_wings(self) -> None:
        """Slopes 0.2 then 0.19 with a much higher level: the slices cross near |k| = 96."""
        earlier = SviParams(0.04, 0.2, 0.0, 0.0, 0.1)
        later = SviParams(1.0, 0.19, 0.0, 0.0, 0.1)
        result = check_calendar(earlier, later)
        assert result.min_gap > 0
        assert not result.passed
        assert not result.wings_passed
        assert result.at_log_moneyness == -np.inf


class TestRecovery:
    @pytest.mark.parametrize("name", list(RECOVERABLE))
    def test_exact_quotes_recover_parameters(self, name: str) -> None:
        params, expiry = RECOVERABLE[name]
        report = fit_svi_slice(quotes_of(params, expiry), policy="report")
        assert_close_params(report.params, params, 1e-7)
        assert report.rmse_vol_points < 1e-8
        assert report.quote_count == GRID.size
        assert report.butterfly_passed == check_butterfly(params).passed

    @pytest.mark.parametrize("name", ["mild skew", "steep put skew", "call skew (crypto)"])
    def test_noisy_quotes_recover_the_smile(self, name: str) -> None:
        params, expiry = RECOVERABLE[name]
        k = np.linspace(-1.2, 1.2, 61)
        noise = np.random.default_rng(20240611).normal(0.0, 0.001, k.size)  # 0.1 vol point
        report = fit_svi_slice(quotes_of(params, expiry, k, vol_shift=noise), policy="report")
        fitted = report.params.implied_vol(k, expiry)
        assert np.max(np.abs(fitted - params.implied_vol(k, expiry))) < 0.0008
        assert 0.07 < report.rmse_vol_points < 0.11
        assert abs(report.params.rho - params.rho) < 0.05
        assert abs(report.params.m - params.m) < 0.05

    def test_fit_is_deterministic(self) -> None:
        noise = np.random.default_rng(7).normal(0.0, 0.002, GRID.size)
        quotes = quotes_of(RECOVERABLE["mild skew"][0], 0.5, vol_shift=noise)
        assert fit_svi_slice(quotes, policy="report") == fit_svi_slice(quotes, policy="report")

    def test_duplicate_strikes_with_equal_weights_average(self) -> None:
        """Quotes at params +- 1 vol point at every strike: the least squares optimum is params."""
        params, expiry = RECOVERABLE["mild skew"]
        k = np.concatenate([GRID, GRID])
        shift = np.concatenate([np.full(GRID.size, 0.01), np.full(GRID.size, -0.01)])
        report = fit_svi_slice(quotes_of(params, expiry, k, vol_shift=shift), policy="report")
        assert_close_params(report.params, params, 1e-7)
        assert report.rmse_vol_points == pytest.approx(1.0)

    def test_weights_decide_between_conflicting_quotes(self) -> None:
        """One quote 5 vol points off: a heavy weight pulls the fit to it, a light one does not."""
        params, expiry = RECOVERABLE["mild skew"]
        outlier = np.zeros(GRID.size)
        outlier[16] = 0.05
        errors = {}
        for weight in (1e-4, 100.0):
            weights = np.ones(GRID.size)
            weights[16] = weight
            quotes = quotes_of(params, expiry, weights=weights, vol_shift=outlier)
            fitted = fit_svi_slice(quotes, policy="report").params.implied_vol(GRID, expiry)
            errors[weight] = np.abs(fitted - quotes.vols)
        assert errors[1e-4][16] > 0.045
        assert errors[100.0][16] < 0.01
        others = np.arange(GRID.size) != 16
        assert np.max(errors[1e-4][others]) < 0.001 < np.max(errors[100.0][others])

    def test_weights_are_relative(self) -> None:
        noise = np.random.default_rng(3).normal(0.0, 0.002, GRID.size)
        weights = np.linspace(1.0, 3.0, GRID.size)
        params, expiry = RECOVERABLE["mild skew"]
        base = fit_svi_slice(
            quotes_of(params, expiry, weights=weights, vol_shift=noise), policy="report"
        )
        scaled = fit_svi_slice(
            quotes_of(params, expiry, weights=7 * weights, vol_shift=noise), policy="report"
        )
        assert_close_params(scaled.params, base.params, 1e-8)


@st.composite
def svi_params(draw: st.DrawFn) -> SviParams:
    """Valid slices in wing coordinates, with the minimum inside the quoted range."""
    return SviParams.from_wings(
        m=draw(st.floats(-0.3, 0.3)),
        sigma=draw(st.floats(0.05, 0.8)),
        left_slope=draw(st.floats(0.01, 1.9)),
        right_slope=draw(st.floats(0.01, 1.9)),
        min_variance=draw(st.floats(0.005, 0.3)),
    )


@settings(max_examples=25)
@given(params=svi_params(), expiry=st.floats(0.02, 2.0))
def test_any_valid_slice_is_recovered_from_its_own_quotes(params: SviParams, expiry: float) -> None:
    k = np.linspace(-1.5, 1.5, 31)
    report = fit_svi_slice(quotes_of(params, expiry, k), policy="report")
    assert report.max_abs_error_vol_points < 1e-6
    dense = np.linspace(-1.5, 1.5, 301)
    np.testing.assert_allclose(
        report.params.total_variance(dense), params.total_variance(dense), rtol=1e-7
    )


class TestButterflyPolicies:
    @pytest.mark.parametrize("params", [VOGT, STEEP], ids=["vogt", "steep"])
    def test_reject_raises_with_place(self, params: SviParams) -> None:
        with pytest.raises(SurfaceError) as raised:
            fit_svi_slice(quotes_of(params, 1.0))
        error = raised.value
        assert error.code == SurfaceErrorCode.SVI_BUTTERFLY_ARBITRAGE
        assert error.expiry == 1.0
        assert error.log_moneyness == pytest.approx(check_butterfly(params).at_log_moneyness)

    def test_report_keeps_the_fit_and_flags_it(self) -> None:
        report = fit_svi_slice(quotes_of(VOGT, 1.0), policy="report")
        assert not report.butterfly_passed
        assert report.calendar_passed
        assert not report.repaired
        assert_close_params(report.params, VOGT, 1e-7)

    @pytest.mark.parametrize("params", [VOGT, STEEP], ids=["vogt", "steep"])
    def test_repair_removes_the_arbitrage_at_a_reported_cost(self, params: SviParams) -> None:
        report = fit_svi_slice(quotes_of(params, 1.0), policy="repair")
        assert check_butterfly(report.params).passed
        assert report.butterfly_passed
        assert report.calendar_passed
        assert report.repaired
        assert report.repairs == ("butterfly",)
        assert report.unrepaired_rmse_vol_points < 1e-8
        assert 0.0 < report.repair_cost_vol_points < 5.0
        dense = report.params.density(np.linspace(-10, 10, 20001))
        assert np.min(dense) >= 0.0

    def test_repair_leaves_clean_slices_alone(self) -> None:
        params, expiry = RECOVERABLE["steep put skew"]
        report = fit_svi_slice(quotes_of(params, expiry), policy="repair")
        assert not report.repaired
        assert report.repairs == ()
        assert report.repair_cost_vol_points == 0.0


class TestCalendarPolicies:
    def quotes(self) -> list[SliceQuotes]:
        return [quotes_of(EARLY, 0.5), quotes_of(LATE_CROSSING, 1.0)]

    def test_reject_names_the_later_expiry(self) -> None:
        with pytest.raises(SurfaceError) as raised:
            fit_svi_slices(self.quotes())
        error = raised.value
        assert error.code == SurfaceErrorCode.SVI_CALENDAR_ARBITRAGE
        assert error.expiry == 1.0
        assert error.log_moneyness is not None
        assert -1.0 < error.log_moneyness < 0.0

    def test_report_flags_the_crossing(self) -> None:
        first, second = fit_svi_slices(self.quotes(), policy="report")
        assert first.calendar_passed
        assert not second.calendar_passed
        assert second.butterfly_passed

    def test_repair_lifts_the_later_slice(self) -> None:
        first, second = fit_svi_slices(self.quotes(), policy="repair")
        assert not first.repaired
        assert_close_params(first.params, EARLY, 1e-7)
        assert second.repaired
        assert second.repairs == ("calendar",)
        assert check_calendar(first.params, second.params).passed
        assert check_butterfly(second.params).passed
        k = np.linspace(-60, 60, 100_001)
        assert np.all(second.params.total_variance(k) >= first.params.total_variance(k))
        assert second.repair_cost_vol_points > 0.0

    def test_repair_of_both_kinds_at_once(self) -> None:
        """A later slice with negative density that also dips below the earlier one."""
        earlier = SviParams(0.04, 0.05, 0.0, 0.3, 0.3)
        reports = fit_svi_slices([quotes_of(earlier, 0.5), quotes_of(VOGT, 1.0)], policy="repair")
        assert set(reports[1].repairs) == {"butterfly", "calendar"}
        assert check_butterfly(reports[1].params).passed
        assert check_calendar(reports[0].params, reports[1].params).passed


class TestBadQuotes:
    @staticmethod
    def build(**changes: object) -> SliceQuotes:
        fields: dict[str, object] = {
            "expiry": 0.5,
            "forward": 100.0,
            "strikes": [80.0, 90.0, 100.0, 110.0, 120.0],
            "vols": [0.6, 0.55, 0.5, 0.52, 0.56],
            "weights": [1.0, 1.0, 1.0, 1.0, 1.0],
        }
        fields.update(changes)
        return SliceQuotes(**fields)  # type: ignore[arg-type]

    def test_valid_quotes_are_read_only_float_arrays(self) -> None:
        quotes = self.build()
        assert quotes.strikes.dtype == np.float64
        with pytest.raises(ValueError, match="read-only"):
            quotes.vols[0] = 1.0

    @pytest.mark.parametrize(
        "changes",
        [
            {"strikes": [], "vols": [], "weights": []},
            {"strikes": [80.0, 90.0, 100.0, 110.0]},
            {"strikes": [80.0, -90.0, 100.0, 110.0, 120.0]},
            {"strikes": [0.0, 90.0, 100.0, 110.0, 120.0]},
            {"strikes": [80.0, float("inf"), 100.0, 110.0, 120.0]},
            {"vols": [0.6, 0.0, 0.5, 0.52, 0.56]},
            {"vols": [0.6, -0.5, 0.5, 0.52, 0.56]},
            {"vols": [0.6, float("nan"), 0.5, 0.52, 0.56]},
            {"weights": [1.0, 0.0, 1.0, 1.0, 1.0]},
            {"weights": [1.0, -1.0, 1.0, 1.0, 1.0]},
            {"weights": [1.0, float("nan"), 1.0, 1.0, 1.0]},
            {"strikes": [100.0, 100.0, 100.0, 110.0, 120.0]},
            {"strikes": [[80.0, 90.0, 100.0, 110.0, 120.0]]},
            {"vols": ["a", "b", "c", "d", "e"]},
            {"forward": 0.0},
            {"forward": float("nan")},
            {"expiry": 0.0},
            {"expiry": -1.0},
            {"expiry": "soon"},
        ],
    )
    def test_rejected_with_a_typed_error(self, changes: dict[str, object]) -> None:
        with pytest.raises(SurfaceError) as raised:
            self.build(**changes)
        assert raised.value.code == SurfaceErrorCode.SVI_BAD_QUOTES

    def test_too_many_quotes(self) -> None:
        n = MAX_QUOTES_PER_SLICE + 1
        strikes = np.linspace(50.0, 150.0, n)
        with pytest.raises(SurfaceError) as raised:
            SliceQuotes.from_vols(0.5, 100.0, strikes, np.full(n, 0.5))
        assert raised.value.code == SurfaceErrorCode.SVI_BAD_QUOTES

    def test_expiries_must_increase(self) -> None:
        quotes = quotes_of(EARLY, 0.5)
        for sequence in ([quotes, quotes], [quotes_of(EARLY, 1.0), quotes], []):
            with pytest.raises(SurfaceError) as raised:
                fit_svi_slices(sequence)
            assert raised.value.code == SurfaceErrorCode.SVI_BAD_QUOTES


def black76(
    forward: float, strike: Floats, expiry: float, vol: Floats, *, rate: float, call: bool
) -> Floats:
    root = vol * np.sqrt(expiry)
    d1 = np.log(forward / strike) / root + 0.5 * root
    sign = 1.0 if call else -1.0
    value = sign * (forward * ndtr(sign * d1) - strike * ndtr(sign * (d1 - root)))
    result: Floats = np.exp(-rate * expiry) * value
    return result


class TestPriceQuotes:
    def test_prices_convert_to_vols_and_fit(self) -> None:
        params, expiry = RECOVERABLE["mild skew"]
        strikes = FORWARD * np.exp(GRID)
        vols = params.implied_vol(GRID, expiry)
        is_call = GRID >= 0.0
        prices = np.where(
            is_call,
            black76(FORWARD, strikes, expiry, vols, rate=0.05, call=True),
            black76(FORWARD, strikes, expiry, vols, rate=0.05, call=False),
        )
        quotes = SliceQuotes.from_prices(expiry, FORWARD, strikes, prices, call=is_call, rate=0.05)
        np.testing.assert_allclose(quotes.vols, vols, rtol=1e-9)
        assert_close_params(fit_svi_slice(quotes).params, params, 1e-6)
        by_discount = SliceQuotes.from_prices(
            expiry,
            FORWARD,
            strikes,
            prices,
            call=is_call,
            discount_factor=float(np.exp(-0.05 * expiry)),
        )
        np.testing.assert_allclose(by_discount.vols, quotes.vols, rtol=1e-12)

    def test_unexplainable_price_is_rejected(self) -> None:
        strikes = np.array([80.0, 90.0, 100.0, 110.0, 120.0])
        prices = np.array([21.0, 12.0, 5.0, 1.5, 0.5])
        prices[1] = 5.0  # a 90 call below its intrinsic value of 10
        with pytest.raises(SurfaceError) as raised:
            SliceQuotes.from_prices(0.5, 100.0, strikes, prices)
        assert raised.value.code == SurfaceErrorCode.SVI_BAD_QUOTES
        assert "price[1]" in raised.value.message

    def test_rate_and_discount_factor_are_exclusive(self) -> None:
        strikes = np.array([80.0, 90.0, 100.0, 110.0, 120.0])
        prices = np.array([21.0, 12.0, 5.0, 1.5, 0.5])
        for extra in ({"rate": 0.01, "discount_factor": 0.99}, {"discount_factor": 0.0}):
            with pytest.raises(SurfaceError) as raised:
                SliceQuotes.from_prices(0.5, 100.0, strikes, prices, **extra)
            assert raised.value.code == SurfaceErrorCode.SVI_BAD_QUOTES

    def test_with_the_library_solver(self) -> None:
        """The same path through the library's own ``black76_implied_vol``, puts and calls."""
        params, expiry = RECOVERABLE["steep put skew"]
        strikes = FORWARD * np.exp(GRID)
        vols = params.implied_vol(GRID, expiry)
        is_call = GRID >= 0.0
        prices = np.where(
            is_call,
            black76(FORWARD, strikes, expiry, vols, rate=0.03, call=True),
            black76(FORWARD, strikes, expiry, vols, rate=0.03, call=False),
        )
        quotes = SliceQuotes.from_prices(expiry, FORWARD, strikes, prices, call=is_call, rate=0.03)
        np.testing.assert_allclose(quotes.vols, vols, rtol=1e-9)
        assert_close_params(fit_svi_slice(quotes).params, params, 1e-6)
        is_call[0] = True  # a deep in-the-money call quoted at half its intrinsic value
        prices[0] = 0.5 * (FORWARD - strikes[0]) * np.exp(-0.03 * expiry)
        with pytest.raises(SurfaceError) as raised:
            SliceQuotes.from_prices(expiry, FORWARD, strikes, prices, call=is_call, rate=0.03)
        assert raised.value.code == SurfaceErrorCode.SVI_BAD_QUOTES
        assert "price[0]" in raised.value.message
