"""Raw SVI volatility smiles: evaluation, arbitrage checks and fitting to quotes.

A raw SVI slice gives the total implied variance ``w = vol**2 * T`` of one expiry as a function
of log-moneyness ``k = ln(K / F)`` (F the forward of that expiry)::

    w(k) = a + b * (rho * (k - m) + sqrt((k - m)**2 + sigma**2))

Invariants
- An :class:`SviParams` value always has finite parameters with ``b >= 0``, ``|rho| < 1``,
  ``sigma > 0``, a non-negative minimum ``a + b*sigma*sqrt(1 - rho**2)`` and Roger Lee's wing
  bound ``b*(1 + |rho|) <= 2``: w is never negative and no wing grows faster than ``2|k|``.
- A slice is free of butterfly arbitrage iff ``w > 0`` and Gatheral's density function
  ``g(k) = (1 - k w'/(2w))**2 - (w'**2/4)(1/w + 1/4) + w''/2`` is ``>= 0`` for every k
  (the risk-neutral density is ``g(k)/sqrt(2 pi w) * exp(-d2**2/2)``).
- Slices ``T1 < T2`` are free of calendar arbitrage iff ``w_T2(k) >= w_T1(k)`` for every k.
- Every slice returned by the "reject" and "repair" policies passes :func:`check_butterfly`
  and, against the slice before it, :func:`check_calendar`.
- Fitting is deterministic: a fixed grid of starting points and SciPy's deterministic local
  solvers, no randomness.

Fitting
- Objective: the weighted sum of squared vol errors, ``sum_i weight_i (vol_model(k_i) -
  vol_i)**2``; only relative weights matter.
- Coordinates: ``(m, sigma, left slope b(1-rho), right slope b(1+rho), minimum variance)``, in
  which every validity condition above is a box bound, so no solver ever leaves the valid set.
- Starts: the quasi-explicit reduction (for fixed ``(m, sigma)`` the rest is linear least
  squares) solved on a fixed 13 x 10 grid of ``(m, sigma)``; the best three starts are polished
  by ``scipy.optimize.least_squares`` (trust region, analytic Jacobian) and the best result wins.
- Repair: SLSQP on the same objective with ``g >= 1e-5`` and ``w >= w_previous + 1e-5 * (mean
  quoted w)`` on a constraint grid and wing slopes no lower than the previous slice's. Points
  where the dense check still fails join the grid and the margins grow tenfold, for at most
  four rounds; if no refit passes, the previous slice lifted to the quotes' level (or a nearly
  flat smile) is used when it passes, else ``SVI_FIT_FAILED``. A calendar violation is repaired
  by moving the later slice only.

Limits
- The checks sample a grid (:func:`density_check_grid`); they are not proofs. A negative-density
  region narrower than the grid spacing (about 0.5% of the distance from m, and 0.01 on
  ``[-6, 6]``) or farther from m than the grid's reach ``50*(1 + sigma) + 2|m|`` is not seen.
  Far out, g tends to ``1/4 - s**2/16`` for a wing slope s, which Lee's bound keeps >= 0; at
  ``s = 2`` exactly the sign there is decided by terms the grid cannot see.
- The calendar check also compares the asymptotic wing lines, so crossings beyond the grid are
  caught unless both wings have the same slope and intercept to within the tolerances.
- This module uses NumPy/SciPy's libm-based functions and LAPACK: results are reproducible on one
  machine, not bit-identical across machines. Nothing here may decide venue state; the venue
  consumes sampled nodes (:mod:`strikechain.pricing.surface`).
- The fit searches ``m`` within two quote spans of the quoted log-moneyness range and
  ``sigma`` in ``[1e-4, 1 + 4 spans]``, keeps the minimum total variance >= 1e-12 and both wing
  slopes in ``[1e-8, 2 - 1e-9]``; a slice outside these bounds is approximated, not recovered.
- At most :data:`MAX_QUOTES_PER_SLICE` quotes per expiry and :data:`MAX_EXPIRIES` expiries.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import Bounds, NonlinearConstraint, least_squares, minimize

from strikechain.pricing._types import ArrayLike, BoolArray, FloatArray
from strikechain.pricing.backend import FAST
from strikechain.pricing.black import Pricer
from strikechain.pricing.errors import IVStatus, PricingError

_FAST_PRICER = Pricer(FAST)

MAX_QUOTES_PER_SLICE = 10_000
"""Quotes per expiry; more is rejected as bad input (the fit is O(quotes) per iteration)."""
MAX_EXPIRIES = 128
"""Expiries per surface fit."""
MIN_DISTINCT_STRIKES = 5
"""SVI has five parameters; fewer distinct strikes leave the fit undetermined."""

VOL_POINT = 0.01
"""One vol point: 0.01 of annualized volatility. Reports are in vol points."""

Policy = Literal["reject", "repair", "report"]
"""What a fit does with a slice that fails an arbitrage check.

``reject`` raises :class:`SurfaceError`; ``repair`` refits under no-arbitrage constraints and
reports the cost; ``report`` keeps the unconstrained fit and reports the failed checks.
"""

_DENSITY_TOLERANCE = 1e-10
_CALENDAR_TOLERANCE = 1e-12
_SLOPE_TOLERANCE = 1e-12
_GRID_REACH = 50.0
_GRID_SINH_POINTS = 4001
_GRID_UNIFORM_HALF_WIDTH = 6.0
_GRID_UNIFORM_POINTS = 1201

_SLOPE_MIN = 1e-8
_SLOPE_MAX = 2.0 - 1e-9
_SIGMA_MIN = 1e-4
_MIN_VARIANCE_FLOOR = 1e-12
_REPAIR_VARIANCE_MARGIN = 1e-5
"""Calendar repair margin, relative to the slice's mean quoted total variance."""


class SurfaceErrorCode(enum.StrEnum):
    """Stable codes of :class:`SurfaceError`; they never change meaning once released."""

    SVI_BAD_PARAMS = "SVI_BAD_PARAMS"
    SVI_BAD_QUOTES = "SVI_BAD_QUOTES"
    SVI_FIT_FAILED = "SVI_FIT_FAILED"
    SVI_BUTTERFLY_ARBITRAGE = "SVI_BUTTERFLY_ARBITRAGE"
    SVI_CALENDAR_ARBITRAGE = "SVI_CALENDAR_ARBITRAGE"
    SURFACE_BAD_NODES = "SURFACE_BAD_NODES"
    SURFACE_BAD_QUERY = "SURFACE_BAD_QUERY"
    SURFACE_BUTTERFLY_ARBITRAGE = "SURFACE_BUTTERFLY_ARBITRAGE"
    SURFACE_CALENDAR_ARBITRAGE = "SURFACE_CALENDAR_ARBITRAGE"


class SurfaceError(PricingError):
    """Bad input to, or an arbitrage in, a volatility surface; ``code`` is machine-readable.

    ``expiry`` (years) and ``log_moneyness`` say where, when the failure has a place
    (``log_moneyness`` is ``±inf`` for a crossing of the asymptotic wings).
    """

    def __init__(
        self,
        code: SurfaceErrorCode,
        message: str,
        *,
        expiry: float | None = None,
        log_moneyness: float | None = None,
    ) -> None:
        super().__init__(code, message)
        self.code: SurfaceErrorCode = code
        self.expiry = expiry
        self.log_moneyness = log_moneyness


@dataclass(frozen=True, slots=True)
class SviParams:
    """One raw SVI slice; constructing it validates the no-nonsense conditions (module doc)."""

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def __post_init__(self) -> None:
        values = (self.a, self.b, self.rho, self.m, self.sigma)
        problem = None
        if not all(np.isfinite(values)):
            problem = "parameters must be finite"
        elif self.b < 0.0:
            problem = "b must be >= 0"
        elif not abs(self.rho) < 1.0:
            problem = "|rho| must be < 1"
        elif not self.sigma > 0.0:
            problem = "sigma must be > 0"
        elif self.min_total_variance < 0.0:
            problem = "a + b*sigma*sqrt(1 - rho^2) must be >= 0 (total variance goes negative)"
        elif self.b * (1.0 + abs(self.rho)) > 2.0:
            problem = "b*(1 + |rho|) must be <= 2 (Roger Lee's moment bound on the wings)"
        if problem is not None:
            raise SurfaceError(SurfaceErrorCode.SVI_BAD_PARAMS, f"{problem}: {self}")

    @classmethod
    def from_wings(
        cls, m: float, sigma: float, left_slope: float, right_slope: float, min_variance: float
    ) -> SviParams:
        """Build from the wing slopes and the minimum total variance (the fit's coordinates).

        In these coordinates every validity condition is a simple bound: slopes in ``[0, 2]``
        (not both zero), ``min_variance >= 0``, ``sigma > 0``.
        """
        total = left_slope + right_slope
        b = 0.5 * total
        rho = (right_slope - left_slope) / total if total > 0.0 else 0.0
        a = min_variance - _min_variance_offset(b, rho, sigma)
        return cls(a=a, b=b, rho=rho, m=m, sigma=sigma)

    @property
    def min_total_variance(self) -> float:
        """The smallest total variance, at ``k = m - rho*sigma/sqrt(1 - rho^2)``."""
        return self.a + _min_variance_offset(self.b, self.rho, self.sigma)

    @property
    def left_slope(self) -> float:
        """Asymptotic slope of w as k -> -inf (w grows like ``left_slope * |k|``)."""
        return self.b * (1.0 - self.rho)

    @property
    def right_slope(self) -> float:
        """Asymptotic slope of w as k -> +inf."""
        return self.b * (1.0 + self.rho)

    @property
    def left_intercept(self) -> float:
        """Intercept of the left asymptote ``w ~ left_intercept - left_slope * k``."""
        return self.a + self.left_slope * self.m

    @property
    def right_intercept(self) -> float:
        """Intercept of the right asymptote ``w ~ right_intercept + right_slope * k``."""
        return self.a - self.right_slope * self.m

    def total_variance(self, log_moneyness: ArrayLike) -> FloatArray:
        """``w(k)``, vectorized over ``log_moneyness``."""
        x = np.asarray(log_moneyness, dtype=np.float64) - self.m
        root = np.sqrt(x * x + self.sigma * self.sigma)
        out: FloatArray = self.a + self.b * (self.rho * x + root)
        return out

    def total_variance_slope(self, log_moneyness: ArrayLike) -> FloatArray:
        """``w'(k)``."""
        x = np.asarray(log_moneyness, dtype=np.float64) - self.m
        out: FloatArray = self.b * (self.rho + x / np.sqrt(x * x + self.sigma * self.sigma))
        return out

    def total_variance_curvature(self, log_moneyness: ArrayLike) -> FloatArray:
        """``w''(k) = b sigma^2 / ((k-m)^2 + sigma^2)^(3/2)``, always > 0 when b > 0."""
        x = np.asarray(log_moneyness, dtype=np.float64) - self.m
        squared = x * x + self.sigma * self.sigma
        out: FloatArray = self.b * self.sigma * self.sigma / (squared * np.sqrt(squared))
        return out

    def implied_vol(self, log_moneyness: ArrayLike, expiry: float) -> FloatArray:
        """Black implied volatility ``sqrt(w(k) / T)`` at expiry ``T`` (years, > 0)."""
        if not (np.isfinite(expiry) and expiry > 0.0):
            raise SurfaceError(SurfaceErrorCode.SVI_BAD_PARAMS, f"expiry {expiry} must be > 0")
        out: FloatArray = np.sqrt(self.total_variance(log_moneyness) / expiry)
        return out

    def density(self, log_moneyness: ArrayLike) -> FloatArray:
        """Gatheral's ``g(k)``: the slice is butterfly-free iff ``g >= 0`` and ``w > 0``.

        Where ``w == 0`` the result is not finite, which the checks count as a failure.
        """
        k = np.asarray(log_moneyness, dtype=np.float64)
        w = self.total_variance(k)
        slope = self.total_variance_slope(k)
        curvature = self.total_variance_curvature(k)
        with np.errstate(divide="ignore", invalid="ignore"):
            first = 1.0 - k * slope / (2.0 * w)
            out: FloatArray = (
                first * first - 0.25 * slope * slope * (1.0 / w + 0.25) + 0.5 * curvature
            )
        return out


def _min_variance_offset(b: float, rho: float, sigma: float) -> float:
    """``b*sigma*sqrt(1 - rho^2)``, factored for accuracy near ``|rho| = 1``.

    :meth:`SviParams.from_wings` subtracts exactly this float from the minimum variance to get
    ``a``, so that the validation's ``a + offset`` gives the minimum back to within an ulp of
    the offset; with any other rounding, slices near ``|rho| = 1`` could fail their own check.
    """
    return b * sigma * float(np.sqrt((1.0 - rho) * (1.0 + rho)))


@dataclass(frozen=True, slots=True)
class ButterflyCheck:
    """Result of :func:`check_butterfly`: the smallest density on the grid and where."""

    passed: bool
    min_density: float
    at_log_moneyness: float


@dataclass(frozen=True, slots=True)
class CalendarCheck:
    """Result of :func:`check_calendar`.

    ``min_gap`` is the smallest ``w_later - w_earlier`` on the grid, at ``at_log_moneyness``;
    ``nearest_violation`` is the failing grid point closest to the money (NaN when the grid
    passes), which is where a quant looks first: the worst gap of two crossing wings is at the
    grid's edge. ``wings_passed`` says whether the later slice's asymptotes lie above the
    earlier's; when only the wings fail, ``at_log_moneyness`` is ``-inf`` or ``+inf``.
    """

    passed: bool
    min_gap: float
    at_log_moneyness: float
    nearest_violation: float
    wings_passed: bool


def density_check_grid(params: SviParams) -> FloatArray:
    """The sorted grid of log-moneyness points on which the arbitrage checks sample a slice.

    Two parts: 4001 points ``m + sigma*sinh(u)`` with u uniform, reaching
    ``50*(1 + sigma) + 2|m|`` on each side of m (spacing about 0.5% of the distance from m, and
    ``0.005*sigma`` near m, where the curvature lives); and 1201 points uniform on ``[-6, 6]``
    (spacing 0.01), where listed strikes are. Beyond the reach the density is close to its limit
    ``1/4 - s**2/16`` (module doc).
    """
    reach = _GRID_REACH * (1.0 + params.sigma) + 2.0 * abs(params.m)
    u_max = float(np.arcsinh(reach / params.sigma))
    u = np.linspace(-u_max, u_max, _GRID_SINH_POINTS)
    sinh_part = params.m + params.sigma * np.sinh(u)
    uniform = np.linspace(-_GRID_UNIFORM_HALF_WIDTH, _GRID_UNIFORM_HALF_WIDTH, _GRID_UNIFORM_POINTS)
    return np.union1d(sinh_part, uniform)


def check_butterfly(params: SviParams) -> ButterflyCheck:
    """Sample ``g`` on :func:`density_check_grid`; pass iff ``w > 0`` and ``g >= -1e-10`` there."""
    grid = density_check_grid(params)
    density = params.density(grid)
    bad = ~np.isfinite(density) | ~(params.total_variance(grid) > 0.0)
    density = np.where(bad, -np.inf, density)
    at = int(np.argmin(density))
    minimum = float(density[at])
    return ButterflyCheck(minimum >= -_DENSITY_TOLERANCE, minimum, float(grid[at]))


def check_calendar(earlier: SviParams, later: SviParams) -> CalendarCheck:
    """Check ``w_later >= w_earlier`` on both slices' grids and on the asymptotic wings.

    The wings pass when the later slope is larger, or equal (within 1e-12) with an intercept no
    lower: this covers crossings beyond any grid.
    """
    grid = np.union1d(density_check_grid(earlier), density_check_grid(later))
    gap = later.total_variance(grid) - earlier.total_variance(grid)
    at = int(np.argmin(gap))
    min_gap = float(gap[at])
    left = _wing_dominates(
        earlier.left_slope, earlier.left_intercept, later.left_slope, later.left_intercept
    )
    right = _wing_dominates(
        earlier.right_slope, earlier.right_intercept, later.right_slope, later.right_intercept
    )
    grid_passed = min_gap >= -_CALENDAR_TOLERANCE
    failing = grid[gap < -_CALENDAR_TOLERANCE]
    nearest = float(failing[np.argmin(np.abs(failing))]) if failing.size else float("nan")
    location = float(grid[at])
    if grid_passed and not left:
        location = -np.inf
    elif grid_passed and not right:
        location = np.inf
    wings = left and right
    return CalendarCheck(grid_passed and wings, min_gap, location, nearest, wings)


def _wing_dominates(
    slope_before: float, intercept_before: float, slope_after: float, intercept_after: float
) -> bool:
    if abs(slope_after - slope_before) <= _SLOPE_TOLERANCE:
        return intercept_after >= intercept_before - _CALENDAR_TOLERANCE
    return slope_after > slope_before


@dataclass(frozen=True, slots=True)
class SliceQuotes:
    """Validated quotes of one expiry: strikes with implied vols and fit weights.

    ``expiry`` is in years, ``forward`` is the expiry's forward price; the arrays are read-only
    copies. Duplicate strikes are allowed (bid and ask, several venues); at least five distinct
    strikes are required.
    """

    expiry: float
    forward: float
    strikes: FloatArray
    vols: FloatArray
    weights: FloatArray

    def __post_init__(self) -> None:
        expiry = _require_positive_scalar("expiry", self.expiry, None)
        forward = _require_positive_scalar("forward", self.forward, expiry)
        strikes = _positive_vector("strikes", self.strikes, expiry)
        vols = _positive_vector("vols", self.vols, expiry)
        weights = _positive_vector("weights", self.weights, expiry)
        if not strikes.shape == vols.shape == weights.shape:
            raise _bad_quotes(
                f"strikes, vols and weights differ in length: {strikes.size}, {vols.size}, "
                f"{weights.size}",
                expiry,
            )
        distinct = np.unique(strikes).size
        if distinct < MIN_DISTINCT_STRIKES:
            raise _bad_quotes(
                f"{distinct} distinct strikes; an SVI fit needs at least {MIN_DISTINCT_STRIKES}",
                expiry,
            )
        object.__setattr__(self, "expiry", expiry)
        object.__setattr__(self, "forward", forward)
        object.__setattr__(self, "strikes", strikes)
        object.__setattr__(self, "vols", vols)
        object.__setattr__(self, "weights", weights)

    @classmethod
    def from_vols(
        cls,
        expiry: float,
        forward: float,
        strikes: ArrayLike,
        vols: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> SliceQuotes:
        """Quotes given as implied vols; weights default to 1."""
        strike_array = np.asarray(strikes, dtype=np.float64)
        weight_array = (
            np.ones_like(strike_array) if weights is None else np.asarray(weights, np.float64)
        )
        return cls(expiry, forward, strike_array, np.asarray(vols, np.float64), weight_array)

    @classmethod
    def from_prices(
        cls,
        expiry: float,
        forward: float,
        strikes: ArrayLike,
        prices: ArrayLike,
        weights: ArrayLike | None = None,
        *,
        call: bool | ArrayLike = True,
        rate: float | None = None,
        discount_factor: float | None = None,
    ) -> SliceQuotes:
        """Quotes given as Black-76 option prices on the forward, converted to implied vols.

        Discounting is given by ``rate`` (continuously compounded) or ``discount_factor``
        (``exp(-rate * expiry)``), not both; the default is no discounting. ``call`` is one flag
        or one per quote. A price that no volatility explains is rejected with its index; filter
        such quotes before fitting if dropping them is intended.
        """
        strike_array = _positive_vector("strikes", strikes, expiry)
        price_array = _positive_vector("prices", prices, expiry)
        if strike_array.shape != price_array.shape:
            raise _bad_quotes(f"{strike_array.size} strikes but {price_array.size} prices", expiry)
        vols = _vols_from_prices(
            expiry,
            forward,
            strike_array,
            price_array,
            call=call,
            rate=_rate(expiry, rate, discount_factor),
        )
        return cls.from_vols(expiry, forward, strike_array, vols, weights)

    @property
    def log_moneyness(self) -> FloatArray:
        """``ln(K / F)`` per quote."""
        out: FloatArray = np.log(self.strikes / self.forward)
        return out

    @property
    def total_variance(self) -> FloatArray:
        """``vol^2 * T`` per quote."""
        out: FloatArray = self.vols * self.vols * self.expiry
        return out


def _bad_quotes(message: str, expiry: float | None) -> SurfaceError:
    return SurfaceError(SurfaceErrorCode.SVI_BAD_QUOTES, message, expiry=expiry)


def _require_positive_scalar(name: str, value: float, expiry: float | None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise _bad_quotes(f"{name} = {value!r} is not a number", expiry) from error
    if not (np.isfinite(number) and number > 0.0):
        raise _bad_quotes(f"{name} = {value!r} must be a finite number > 0", expiry)
    return number


def _positive_vector(name: str, values: ArrayLike, expiry: float) -> FloatArray:
    """A read-only 1-D float64 copy of ``values``, all finite and > 0, or a typed rejection."""
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise _bad_quotes(f"{name} are not numbers: {error}", expiry) from error
    if array.ndim != 1 or array.size == 0:
        raise _bad_quotes(f"{name} must be a non-empty 1-D array, got shape {array.shape}", expiry)
    if array.size > MAX_QUOTES_PER_SLICE:
        raise _bad_quotes(f"{array.size} {name}; the limit is {MAX_QUOTES_PER_SLICE}", expiry)
    bad = np.flatnonzero(~(np.isfinite(array) & (array > 0.0)))
    if bad.size:
        first = int(bad[0])
        raise _bad_quotes(
            f"{name}[{first}] = {float(array[first])} must be finite and > 0 "
            f"({bad.size} such entries)",
            expiry,
        )
    array.flags.writeable = False
    return array


def _rate(expiry: float, rate: float | None, discount_factor: float | None) -> float:
    if rate is not None and discount_factor is not None:
        raise _bad_quotes("give rate or discount_factor, not both", expiry)
    if discount_factor is not None:
        if not (np.isfinite(discount_factor) and discount_factor > 0.0):
            raise _bad_quotes(f"discount_factor = {discount_factor!r} must be > 0", expiry)
        _require_positive_scalar("expiry", expiry, expiry)
        return float(-np.log(discount_factor) / expiry)
    if rate is None:
        return 0.0
    if not np.isfinite(rate):
        raise _bad_quotes(f"rate = {rate!r} must be finite", expiry)
    return float(rate)


def _vols_from_prices(
    expiry: float,
    forward: float,
    strikes: FloatArray,
    prices: FloatArray,
    *,
    call: bool | ArrayLike,
    rate: float,
) -> FloatArray:
    """Invert Black-76 per quote; any failure rejects the slice with the first failing index."""
    _require_positive_scalar("expiry", expiry, expiry)
    _require_positive_scalar("forward", forward, expiry)
    is_call = np.broadcast_to(np.asarray(call, dtype=np.bool_), strikes.shape)
    result = _FAST_PRICER.black76_implied_vol(prices, forward, strikes, expiry, rate, call=is_call)
    vols, status = result.vol, result.status
    failed = np.flatnonzero((status != 0) | ~np.isfinite(vols))
    if failed.size:
        first = int(failed[0])
        raise _bad_quotes(
            f"price[{first}] = {float(prices[first])} at strike {float(strikes[first])} has no "
            f"implied vol ({IVStatus(int(status[first])).name}; {failed.size} such quotes)",
            expiry,
        )
    return vols


@dataclass(frozen=True, slots=True)
class SliceFitReport:
    """The fitted slice of one expiry and how well and how cleanly it fits.

    Errors are model vol minus quoted vol, in vol points (0.01 of vol). ``calendar_passed`` is
    against the previous expiry's final slice (True for the first expiry). When ``repaired``,
    ``repairs`` names the failed checks and ``unrepaired_rmse_vol_points`` is the RMSE of the
    unconstrained fit, so :attr:`repair_cost_vol_points` is what the repair cost.
    """

    expiry: float
    quote_count: int
    params: SviParams
    rmse_vol_points: float
    weighted_rmse_vol_points: float
    max_abs_error_vol_points: float
    butterfly_passed: bool
    calendar_passed: bool
    repaired: bool
    repairs: tuple[str, ...]
    unrepaired_rmse_vol_points: float

    @property
    def repair_cost_vol_points(self) -> float:
        """Increase in RMSE caused by the repair (0 when nothing was repaired)."""
        return self.rmse_vol_points - self.unrepaired_rmse_vol_points


def fit_svi_slice(
    quotes: SliceQuotes, *, policy: Policy = "reject", previous: SviParams | None = None
) -> SliceFitReport:
    """Fit one expiry's quotes; ``previous`` is the slice of the expiry before, for calendar.

    The fit minimizes the weighted sum of squared vol errors over the valid parameter set.
    Raises :class:`SurfaceError` with ``SVI_BUTTERFLY_ARBITRAGE`` or ``SVI_CALENDAR_ARBITRAGE``
    under "reject", and ``SVI_FIT_FAILED`` when no fit (or no repair) is found.
    """
    _require_policy(policy)
    params = _fit_unconstrained(quotes)
    butterfly = check_butterfly(params)
    calendar = None if previous is None else check_calendar(previous, params)
    calendar_passed = calendar is None or calendar.passed
    rmse = _errors(quotes, params)[0]
    if (butterfly.passed and calendar_passed) or policy == "report":
        return _report(quotes, params, (butterfly.passed, calendar_passed), (), rmse)
    if policy == "reject":
        raise _arbitrage_error(quotes.expiry, butterfly, calendar)
    repaired = _repair(quotes, params, previous)
    repairs = tuple(
        name
        for name, passed in (("butterfly", butterfly.passed), ("calendar", calendar_passed))
        if not passed
    )
    return _report(quotes, repaired, _checks_passed(repaired, previous), repairs, rmse)


def _require_policy(policy: str) -> None:
    if policy not in ("reject", "repair", "report"):
        raise ValueError(f"unknown policy {policy!r}; use 'reject', 'repair' or 'report'")


def _checks_passed(params: SviParams, previous: SviParams | None) -> tuple[bool, bool]:
    calendar = previous is None or check_calendar(previous, params).passed
    return check_butterfly(params).passed, calendar


def fit_svi_slices(
    quotes: Sequence[SliceQuotes], *, policy: Policy = "reject"
) -> tuple[SliceFitReport, ...]:
    """Fit expiries in increasing order, each checked (and repaired) against the one before.

    Under "repair" a calendar violation is removed by moving the later slice up, never the
    earlier one, so the shortest expiry's fit is only ever changed for its own butterfly.
    """
    _require_policy(policy)
    if not 1 <= len(quotes) <= MAX_EXPIRIES:
        raise _bad_quotes(f"{len(quotes)} expiries; between 1 and {MAX_EXPIRIES} needed", None)
    expiries = [q.expiry for q in quotes]
    for before, after in itertools.pairwise(expiries):
        if not after > before:
            raise _bad_quotes(f"expiries must increase strictly: {before} then {after}", after)
    reports: list[SliceFitReport] = []
    for slice_quotes in quotes:
        previous = reports[-1].params if reports else None
        reports.append(fit_svi_slice(slice_quotes, policy=policy, previous=previous))
    return tuple(reports)


def _arbitrage_error(
    expiry: float, butterfly: ButterflyCheck, calendar: CalendarCheck | None
) -> SurfaceError:
    if not butterfly.passed:
        return SurfaceError(
            SurfaceErrorCode.SVI_BUTTERFLY_ARBITRAGE,
            f"expiry {expiry}: density g = {butterfly.min_density:.3g} < 0 at log-moneyness "
            f"{butterfly.at_log_moneyness:.4g}",
            expiry=expiry,
            log_moneyness=butterfly.at_log_moneyness,
        )
    if calendar is None:
        raise AssertionError("called without a failed check")
    where = calendar.nearest_violation
    if np.isnan(where):
        where = calendar.at_log_moneyness
    return SurfaceError(
        SurfaceErrorCode.SVI_CALENDAR_ARBITRAGE,
        f"expiry {expiry}: total variance falls below the previous expiry's from log-moneyness "
        f"{where:.4g} (by up to {max(-calendar.min_gap, 0.0):.3g} "
        f"at {calendar.at_log_moneyness:.4g})"
        + ("" if calendar.wings_passed else "; the asymptotic wings cross"),
        expiry=expiry,
        log_moneyness=where,
    )


def _errors(quotes: SliceQuotes, params: SviParams) -> tuple[float, float, float]:
    """RMSE, weighted RMSE and max abs error of the model vols, in vol points."""
    error = (params.implied_vol(quotes.log_moneyness, quotes.expiry) - quotes.vols) / VOL_POINT
    squared = error * error
    rmse = float(np.sqrt(np.mean(squared)))
    weighted = float(np.sqrt(np.sum(quotes.weights * squared) / np.sum(quotes.weights)))
    return rmse, weighted, float(np.max(np.abs(error)))


def _report(
    quotes: SliceQuotes,
    params: SviParams,
    passed: tuple[bool, bool],
    repairs: tuple[str, ...],
    unrepaired_rmse: float,
) -> SliceFitReport:
    rmse, weighted, max_abs = _errors(quotes, params)
    return SliceFitReport(
        expiry=quotes.expiry,
        quote_count=int(quotes.strikes.size),
        params=params,
        rmse_vol_points=rmse,
        weighted_rmse_vol_points=weighted,
        max_abs_error_vol_points=max_abs,
        butterfly_passed=passed[0],
        calendar_passed=passed[1],
        repaired=bool(repairs),
        repairs=repairs,
        unrepaired_rmse_vol_points=unrepaired_rmse if repairs else rmse,
    )


# Fitting. The solvers work in "wing coordinates" theta = (m, sigma, left_slope, right_slope,
# min_variance), where every validity condition of SviParams is a box bound.


@dataclass(frozen=True, slots=True)
class _Problem:
    """One slice's fitting data: log-moneyness, vols, normalized weights, expiry and bounds."""

    k: FloatArray
    vols: FloatArray
    weights: FloatArray
    expiry: float
    bounds: Bounds
    variance_margin: float

    @classmethod
    def of(cls, quotes: SliceQuotes) -> _Problem:
        k = quotes.log_moneyness
        span = max(float(k.max() - k.min()), 0.1)
        max_variance = float(quotes.total_variance.max())
        lower = np.array(
            [k.min() - 2.0 * span, _SIGMA_MIN, _SLOPE_MIN, _SLOPE_MIN, _MIN_VARIANCE_FLOOR]
        )
        upper = np.array(
            [k.max() + 2.0 * span, 1.0 + 4.0 * span, _SLOPE_MAX, _SLOPE_MAX, 2.0 * max_variance]
        )
        weights = quotes.weights / np.sum(quotes.weights)
        margin = _REPAIR_VARIANCE_MARGIN * float(np.mean(quotes.total_variance))
        return cls(k, quotes.vols, weights, quotes.expiry, Bounds(lower, upper), margin)

    def clip(self, theta: FloatArray) -> FloatArray:
        out: FloatArray = np.clip(theta, self.bounds.lb, self.bounds.ub)
        return out


def _wing_variance(theta: FloatArray, k: FloatArray) -> FloatArray:
    m, sigma, left, right, min_variance = (float(v) for v in theta)
    x = k - m
    root = np.sqrt(x * x + sigma * sigma)
    cross = sigma * float(np.sqrt(left * right))
    out: FloatArray = min_variance - cross + 0.5 * left * (root - x) + 0.5 * right * (root + x)
    return out


def _wing_variance_jacobian(theta: FloatArray, k: FloatArray) -> FloatArray:
    """d w / d theta, shape (len(k), 5)."""
    m, sigma, left, right, _ = (float(v) for v in theta)
    x = k - m
    root = np.sqrt(x * x + sigma * sigma)
    ratio = x / root
    product = float(np.sqrt(left * right))
    columns = (
        0.5 * left * (1.0 - ratio) - 0.5 * right * (1.0 + ratio),
        -product + 0.5 * (left + right) * sigma / root,
        -0.5 * sigma * float(np.sqrt(right / left)) + 0.5 * (root - x),
        -0.5 * sigma * float(np.sqrt(left / right)) + 0.5 * (root + x),
        np.ones_like(k),
    )
    return np.stack(columns, axis=1)


def _params(theta: FloatArray) -> SviParams:
    m, sigma, left, right, min_variance = (float(v) for v in theta)
    return SviParams.from_wings(m, sigma, left, right, min_variance)


def _theta(params: SviParams) -> FloatArray:
    return np.array(
        [params.m, params.sigma, params.left_slope, params.right_slope, params.min_total_variance]
    )


def _vol_residuals(problem: _Problem, theta: FloatArray) -> FloatArray:
    """sqrt(weight) * (model vol - quoted vol): least squares on these is the fit objective."""
    vols = np.sqrt(_wing_variance(problem.clip(theta), problem.k) / problem.expiry)
    out: FloatArray = np.sqrt(problem.weights) * (vols - problem.vols)
    return out


def _vol_residual_jacobian(problem: _Problem, theta: FloatArray) -> FloatArray:
    theta = problem.clip(theta)
    variance = _wing_variance(theta, problem.k)
    scale = np.sqrt(problem.weights) / (2.0 * np.sqrt(variance * problem.expiry))
    out: FloatArray = scale[:, None] * _wing_variance_jacobian(theta, problem.k)
    return out


def _fit_unconstrained(quotes: SliceQuotes) -> SviParams:
    """Least squares in vol from the best few quasi-explicit starts; the lowest cost wins."""
    problem = _Problem.of(quotes)

    def residuals(theta: FloatArray) -> FloatArray:
        return _vol_residuals(problem, theta)

    def jacobian(theta: FloatArray) -> FloatArray:
        return _vol_residual_jacobian(problem, theta)

    best: tuple[float, FloatArray] | None = None
    for start in _quasi_explicit_starts(problem):
        result = least_squares(
            residuals,
            problem.clip(start),
            jac=jacobian,
            bounds=problem.bounds,
            method="trf",
            x_scale="jac",
            ftol=1e-15,
            xtol=1e-15,
            gtol=1e-15,
            max_nfev=400,
        )
        cost = float(result.cost)
        if np.isfinite(cost) and np.all(np.isfinite(result.x)) and (best is None or cost < best[0]):
            best = (cost, problem.clip(result.x))
    if best is None:
        raise SurfaceError(
            SurfaceErrorCode.SVI_FIT_FAILED,
            f"expiry {quotes.expiry}: no start converged to a finite fit",
            expiry=quotes.expiry,
        )
    return _params(best[1])


def _quasi_explicit_starts(problem: _Problem, count: int = 3) -> list[FloatArray]:
    """Starting points from the quasi-explicit reduction (Zeliade 2009) on an (m, sigma) grid.

    For fixed (m, sigma), w = a + d*y + c*sqrt(y^2 + 1) with y = (k - m)/sigma is linear in
    (a, d, c); the weighted linear least squares in total variance (weights scaled by 1/vol^2,
    so that variance errors approximate vol errors) is solved for the whole grid at once, then
    projected onto the valid set. The ``count`` best distinct grid points are returned.
    """
    k, variance = problem.k, problem.vols * problem.vols * problem.expiry
    weights = problem.weights / (problem.vols * problem.vols)
    low, high = float(k.min()), float(k.max())
    span = max(high - low, 0.1)
    m_grid = np.linspace(low - 0.25 * span, high + 0.25 * span, 13)
    sigma_grid = np.geomspace(0.01 * span, 2.0 * span, 10)
    m, sigma = (g.ravel() for g in np.meshgrid(m_grid, sigma_grid, indexing="ij"))
    y = (k[None, :] - m[:, None]) / sigma[:, None]
    basis = np.stack([np.ones_like(y), y, np.sqrt(y * y + 1.0)], axis=2)
    weighted = basis * weights[None, :, None]
    normal = np.einsum("pni,pnj->pij", weighted, basis) + 1e-12 * np.eye(3)
    rhs = np.einsum("pni,n->pi", weighted, variance)
    coefficients = np.linalg.solve(normal, rhs[:, :, None])[:, :, 0]
    d, c = coefficients[:, 1], coefficients[:, 2]
    left = np.clip((c - d) / sigma, _SLOPE_MIN, _SLOPE_MAX)
    right = np.clip((c + d) / sigma, _SLOPE_MIN, _SLOPE_MAX)
    shape = 0.5 * sigma[:, None] * (left[:, None] * (np.sqrt(y * y + 1.0) - y))
    shape += 0.5 * sigma[:, None] * (right[:, None] * (np.sqrt(y * y + 1.0) + y))
    level = np.sum(weights * (variance - shape), axis=1) / np.sum(weights)
    min_variance = level + sigma * np.sqrt(left * right)
    thetas = np.stack([m, sigma, left, right, min_variance], axis=1)
    thetas = np.clip(thetas, problem.bounds.lb, problem.bounds.ub)
    model = np.stack([_wing_variance(t, k) for t in thetas])
    sse = np.sum(weights * (model - variance) ** 2, axis=1)
    order = np.argsort(sse, kind="stable")
    return [thetas[i] for i in order[:count]]


# Repair: SLSQP on the weighted vol error, with g >= margin and w >= w_previous + margin on a
# constraint grid. Where the dense check still fails between constraint points, those points
# join the grid and the margins grow tenfold, and the solves are repeated.

_REPAIR_ROUNDS = 4
_REPAIR_DENSITY_MARGIN = 1e-5
_REPAIR_SLOPE_MARGIN = 1e-6
_REPAIR_MAX_ADDED_POINTS = 64


@dataclass(frozen=True, slots=True)
class _Constraints:
    """The repair's constraints: ``g >= density_margin`` and, against ``previous``,
    ``w - w_previous >= variance_margin`` on ``grid``, and wing slopes no lower."""

    grid: FloatArray
    previous: SviParams | None
    density_margin: float
    variance_margin: float

    def tightened(self, points: FloatArray) -> _Constraints:
        return _Constraints(
            np.union1d(self.grid, points),
            self.previous,
            10.0 * self.density_margin,
            10.0 * self.variance_margin,
        )

    def values(self, theta: FloatArray) -> FloatArray:
        """Non-negative iff the (clipped) slice theta meets the constraints."""
        params = _params(theta)
        density = params.density(self.grid)
        density = np.where(np.isfinite(density), density, -1.0) - self.density_margin
        previous = self.previous
        if previous is None:
            return density
        gap = params.total_variance(self.grid) - previous.total_variance(self.grid)
        slopes = np.array(
            [
                theta[2] - min(previous.left_slope + _REPAIR_SLOPE_MARGIN, _SLOPE_MAX),
                theta[3] - min(previous.right_slope + _REPAIR_SLOPE_MARGIN, _SLOPE_MAX),
            ]
        )
        return np.concatenate([density, gap - self.variance_margin, slopes])


def _repair(quotes: SliceQuotes, start: SviParams, previous: SviParams | None) -> SviParams:
    """The lowest-error slice near the quotes that passes both checks.

    Constrained refits start from the unconstrained fit, from a near-feasible slice, and from
    where the last round's failed refits stopped; a round's refits that fail the dense checks
    and would beat the best passing refit so far send their failing points to the next round.
    If no refit passes, the near-feasible slice itself is the answer when it passes.
    """
    problem = _Problem.of(quotes)
    fallback = problem.clip(_feasible_start(problem, previous))
    origins = [problem.clip(_theta(start)), fallback]
    constraints = _Constraints(
        _repair_grid(problem, start, previous),
        previous,
        _REPAIR_DENSITY_MARGIN,
        problem.variance_margin,
    )
    best: tuple[float, SviParams] | None = None
    starts = origins
    for _ in range(_REPAIR_ROUNDS):
        pending: list[tuple[float, FloatArray, FloatArray]] = []
        for theta0 in starts:
            theta = _constrained_fit(problem, theta0, constraints)
            objective = _objective(problem, theta)
            violations = _violations(_params(theta), previous)
            if violations.size == 0 and (best is None or objective < best[0]):
                best = (objective, _params(theta))
            elif violations.size:
                pending.append((objective, theta, violations))
        pending = [p for p in pending if best is None or p[0] < best[0]]
        if not pending:
            break
        constraints = constraints.tightened(np.concatenate([p[2] for p in pending]))
        starts = origins + [p[1] for p in pending]
    if best is None and _violations(_params(fallback), previous).size == 0:
        best = (_objective(problem, fallback), _params(fallback))
    if best is None:
        raise SurfaceError(
            SurfaceErrorCode.SVI_FIT_FAILED,
            f"expiry {quotes.expiry}: the constrained refit found no arbitrage-free slice",
            expiry=quotes.expiry,
        )
    return best[1]


def _objective(problem: _Problem, theta: FloatArray) -> float:
    return float(np.sum(_vol_residuals(problem, theta) ** 2))


def _repair_grid(problem: _Problem, start: SviParams, previous: SviParams | None) -> FloatArray:
    """Constraint points: the quotes' range with a margin, plus a coarse sinh grid around m."""
    low, high = float(problem.k.min()), float(problem.k.max())
    near = np.linspace(low - 1.0, high + 1.0, 121)
    coarse = density_check_grid(start)[:: _GRID_SINH_POINTS // 100]
    grid = np.union1d(near, coarse)
    return np.union1d(grid, _violations(start, previous))


def _feasible_start(problem: _Problem, previous: SviParams | None) -> FloatArray:
    """A slice near the feasible set: the previous slice lifted to the quotes' level, or a
    nearly flat smile at the quotes' mean variance when there is no previous slice."""
    variance = problem.vols * problem.vols * problem.expiry
    if previous is None:
        level = float(np.sum(problem.weights * variance))
        center = float(np.sum(problem.weights * problem.k))
        return np.array([center, 0.5, 0.05, 0.05, level])
    lift = max(float(np.sum(problem.weights * (variance - previous.total_variance(problem.k)))), 0)
    theta = _theta(previous)
    theta[2:4] = np.minimum(theta[2:4] + 10.0 * _REPAIR_SLOPE_MARGIN, _SLOPE_MAX)
    theta[4] += lift + 10.0 * problem.variance_margin
    return theta


def _constrained_fit(
    problem: _Problem, theta0: FloatArray, constraints: _Constraints
) -> FloatArray:
    """SLSQP on the mean weighted squared vol error (in vol points^2, so tolerances mean
    something) subject to ``constraints``."""
    scale = 1.0 / (VOL_POINT * VOL_POINT)

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        residuals = _vol_residuals(problem, theta)
        gradient = 2.0 * scale * (_vol_residual_jacobian(problem, theta).T @ residuals)
        return scale * float(residuals @ residuals), gradient

    def values(theta: FloatArray) -> FloatArray:
        return constraints.values(problem.clip(theta))

    result = minimize(
        objective,
        theta0,
        jac=True,
        method="SLSQP",
        bounds=problem.bounds,
        constraints=NonlinearConstraint(values, 0.0, np.inf),
        options={"maxiter": 300, "ftol": 1e-12},
    )
    theta: FloatArray = problem.clip(np.asarray(result.x, dtype=np.float64))
    return theta


def _violations(params: SviParams, previous: SviParams | None) -> FloatArray:
    """Check-grid points where the slice fails, with two neighbours on each side.

    The neighbours matter: at a constrained optimum the density touches the margin at a point
    that moves a little with each added constraint, and constraining a small neighbourhood stops
    the repair from chasing it. At most a fixed number of points, evenly chosen, are returned.
    """
    grid = density_check_grid(params)
    if previous is not None:
        grid = np.union1d(grid, density_check_grid(previous))
    density = params.density(grid)
    bad: BoolArray = ~(np.isfinite(density) & (density >= 0.0))
    if previous is not None:
        bad |= params.total_variance(grid) < previous.total_variance(grid)
        if not check_calendar(previous, params).wings_passed:
            bad[[0, -1]] = True
    near = bad.copy()
    for shift in (1, 2):
        near[shift:] |= bad[:-shift]
        near[:-shift] |= bad[shift:]
    points = grid[near]
    if points.size > _REPAIR_MAX_ADDED_POINTS:
        points = points[np.linspace(0, points.size - 1, _REPAIR_MAX_ADDED_POINTS).astype(int)]
    return points
