"""Implied volatility to full attainable accuracy, vectorized.

The inversion works on the normalized out-of-the-money price ``beta = b(y, s)`` (see
:mod:`strikechain.pricing.normalized`), ``y = -|ln(F/K)| <= 0``, for the total standard deviation
``s = sigma * sqrt(T)``. In-the-money prices are first reduced to their time value through
put-call parity, because an in-the-money price carries the intrinsic value's rounding and would
give a wrong volatility silently; when the time value is within that rounding the element is
flagged :attr:`~strikechain.pricing.errors.IVStatus.ILL_POSED`.

The method follows Jaeckel's "Let's Be Rational" (2013, revised 2016); the interpolants and
their derivatives are derived afresh here. ``b`` as a function of ``s`` is convex below the
inflection point ``s_c = sqrt(2|y|)`` and concave above; two tangent points ``s_l < s_c < s_u``
(where the tangent at ``s_c`` reaches 0 and ``b_max = e^(y/2)``) cut the price range into four
branches:

1. ``beta < b(s_l)``: ``b`` behaves like ``f(s) = 2 pi |y| / sqrt(27) * Phi(-|y|/(sqrt(3) s))^3``,
   exact to leading order as ``s -> 0``; a rational cubic in ``beta`` corrects the map to pass
   through ``(b_l, f(s_l))`` with matching slope and curvature, and the map inverts in closed form.
2. and 3. ``b(s_l) <= beta < b(s_u)``: ``s(beta)`` itself is interpolated by shape-preserving
   rational cubics through ``(b_l, s_l)``, ``(b_c, s_c)``, ``(b_u, s_u)`` with exact slopes and
   the inflection's zero curvature at ``b_c``.
4. ``beta >= b(s_u)``: ``b_max - b`` behaves like ``Phi(-s/2)``, corrected the same way.

From that guess, third-order Householder steps on an objective chosen per branch to be nearly
linear (``1/ln b`` in branch 1, ``b`` in 2 and 3, ``ln(b_max - b)`` in 4) converge to the last
bit in two steps for almost every input; any element whose second step was still large gets
more steps, inside a bracket that can only shrink. Every step uses the accurate normalized
Black function, which is what makes the result accurate to ``|d sigma| <= 8 eps (sigma +
price/vega)``, the limit set by the price's own rounding, for prices down to 1e-300 of the
forward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from strikechain.pricing._types import BoolArray, FloatArray
from strikechain.pricing.backend import Backend
from strikechain.pricing.normalized import INV_SQRT_2PI, otm_value_and_density

_SQRT3 = float.fromhex("0x1.bb67ae8584caap+0")  # sqrt(3)
_LOWER_MAP_SCALE = float.fromhex("0x1.3593b8e4b39b7p+0")  # 2 pi / sqrt(27)
_EPSILON = float(np.finfo(np.float64).eps)

BASE_ITERATIONS = 2
"""Householder steps taken by every element."""
EXTRA_ITERATIONS = 8
"""Further steps, at most, for elements whose last step was not yet negligible."""
_CONVERGED_STEP = 2.0**-17
"""After a third-order step this small (relative), the error left is of the order of its cube:
below an ulp. Two steps reach it everywhere but in the most extreme wings (|ln(F/K)| > 30)."""
_NEGLIGIBLE_STEP = 2.0**-40
"""A step this small (relative) is rounding noise at the root."""


def solve_otm(
    beta: FloatArray, complement: FloatArray, y: FloatArray, half: FloatArray, backend: Backend
) -> FloatArray:
    """Total standard deviation ``s`` with ``b(y, s) = beta``, for 1-d validated inputs.

    ``complement`` is ``b_max - beta`` computed by the caller from unnormalized quantities, so
    that prices near the upper bound keep their digits. Requires ``y <= 0`` and
    ``0 < beta < b_max = half = exp(y/2)``. Each branch is solved on its own gathered
    elements, so an element pays only for its own branch's objective.
    """
    knots = _Knots.build(y, beta, half, backend)
    lower = beta < knots.b_l
    upper = beta >= knots.b_u
    middle_low = ~lower & (beta < knots.b_c)
    middle_high = ~(lower | upper | middle_low)
    s = np.empty_like(beta)
    for mask, branch in (
        (lower, _LOWER),
        (middle_low, _MIDDLE_LOW),
        (middle_high, _MIDDLE_HIGH),
        (upper, _UPPER),
    ):
        idx = np.flatnonzero(mask)
        if idx.size:
            level = branch.level(beta[idx], complement[idx], backend)
            target = _Target(beta[idx], complement[idx], y[idx], knots.take(idx), level)
            s[idx] = _solve_branch(target, branch, backend)
    return s


class _Knots(NamedTuple):
    """The inflection point and the two tangent points that delimit the branches."""

    half: FloatArray  # b_max = e^(y/2)
    s_c: FloatArray
    b_c: FloatArray
    v_c: FloatArray
    s_l: FloatArray
    b_l: FloatArray
    v_l: FloatArray
    s_u: FloatArray
    b_u: FloatArray
    v_u: FloatArray

    def take(self, idx: NDArray[np.intp]) -> _Knots:
        return _Knots(*(np.asarray(field[idx], dtype=np.float64) for field in self))

    @classmethod
    def build(cls, y: FloatArray, beta: FloatArray, half: FloatArray, backend: Backend) -> _Knots:
        """The knots; ``b_l`` only where ``beta < b_c`` and ``b_u`` only where not.

        Each element needs just the tangent point on its side of the inflection, which halves
        the cost of the knots. On the other side the value is set so that it never selects.
        """
        s_c = np.sqrt(-2.0 * y)
        # At s_c: h = -t, so b_c = e^(y/2) (1/2 - M(s_c)/sqrt(2 pi)), b'(s_c) = e^(y/2)/sqrt(2 pi).
        at_money = y == 0.0
        b_c = np.where(at_money, 0.0, half * (0.5 - backend.mills(s_c) * INV_SQRT_2PI))
        v_c = half * INV_SQRT_2PI
        s_l = s_c - b_c / v_c
        s_u = s_c + (half - b_c) / v_c
        below = beta < b_c
        b_l, v_l = _value_where(below, y, s_l, half, 0.0, backend)
        b_u, v_u = _value_where(~below, y, s_u, half, np.inf, backend)
        return cls(half, s_c, b_c, v_c, s_l, b_l, v_l, s_u, b_u, v_u)


def _value_where(
    mask: BoolArray,
    y: FloatArray,
    s: FloatArray,
    half: FloatArray,
    otherwise: float,
    backend: Backend,
) -> tuple[FloatArray, FloatArray]:
    """``b(y, s)`` and ``b'`` where ``mask`` holds; ``otherwise`` and 1.0 elsewhere."""
    value = np.full_like(y, otherwise)
    density = np.ones_like(y)
    idx = np.flatnonzero(mask)
    if idx.size:
        value[idx], density[idx] = otm_value_and_density(y[idx], s[idx], backend, half[idx])
    return value, density


class _Target(NamedTuple):
    """One branch's elements: what to match, and the knots around it."""

    beta: FloatArray
    complement: FloatArray
    y: FloatArray
    knots: _Knots
    level: FloatArray  # the objective's target value, computed once (see _Branch.level)

    def take(self, idx: NDArray[np.intp]) -> _Target:
        return _Target(
            self.beta[idx],
            self.complement[idx],
            self.y[idx],
            self.knots.take(idx),
            self.level[idx],
        )


def _guess_lower(target: _Target, backend: Backend) -> FloatArray:
    """Branch 1: interpolate the lower map ``f`` in ``beta`` on ``[0, b_l]``, then invert it."""
    beta, y, k = target.beta, target.y, target.knots
    ay = -y
    z = -ay / (_SQRT3 * k.s_l)
    density = backend.exp(-0.5 * z * z) * INV_SQRT_2PI
    cdf = density * backend.mills(-z)  # Phi(z), z < 0
    dz = ay / (_SQRT3 * k.s_l * k.s_l)
    f_l = _LOWER_MAP_SCALE * ay * cdf * cdf * cdf
    f_s = 3.0 * _LOWER_MAP_SCALE * ay * cdf * cdf * density * dz
    f_ss = (
        3.0
        * _LOWER_MAP_SCALE
        * ay
        * (
            2.0 * cdf * density * density * dz * dz
            - cdf * cdf * z * density * dz * dz
            - cdf * cdf * density * 2.0 * dz / k.s_l
        )
    )
    curvature = y * y / (k.s_l * k.s_l * k.s_l) - 0.25 * k.s_l  # b''/b' at s_l
    slope = f_s / k.v_l
    second = (f_ss - f_s * curvature) / (k.v_l * k.v_l)
    zero = np.zeros_like(beta)
    f = rational_cubic(
        beta, zero, k.b_l, zero, f_l, np.ones_like(beta), slope, second, at_left=False
    )
    ratio = beta / k.b_l
    f = np.where(f > 0.0, f, (f_l * ratio + k.b_l * (1.0 - ratio)) * ratio)
    z_guess = backend.ndtri(backend.cbrt(f / (_LOWER_MAP_SCALE * ay)))
    return -ay / (_SQRT3 * z_guess)


def _guess_upper(target: _Target, backend: Backend) -> FloatArray:
    """Branch 4: interpolate ``f = Phi(-s/2)`` in ``beta`` on ``[b_u, b_max]``, then invert."""
    beta, y, k = target.beta, target.y, target.knots
    half_s = 0.5 * k.s_u
    density = backend.exp(-0.5 * half_s * half_s) * INV_SQRT_2PI
    f_u = density * backend.mills(half_s)
    f_s = -0.5 * density
    f_ss = 0.25 * half_s * density
    curvature = y * y / (k.s_u * k.s_u * k.s_u) - 0.25 * k.s_u
    slope = f_s / k.v_u
    second = (f_ss - f_s * curvature) / (k.v_u * k.v_u)
    zero = np.zeros_like(beta)
    f = rational_cubic(
        beta, k.b_u, k.half, f_u, zero, slope, np.full_like(beta, -0.5), second, at_left=True
    )
    span = k.half - k.b_u
    f = np.where(f > 0.0, f, f_u * target.complement / span)
    return -2.0 * backend.ndtri(f)


def _guess_middle_low(target: _Target, backend: Backend) -> FloatArray:
    """``s(beta)`` on ``[b_l, b_c]``: slopes ``1/b'`` at both ends, zero curvature at ``b_c``."""
    k = target.knots
    return rational_cubic(
        target.beta, k.b_l, k.b_c, k.s_l, k.s_c, 1.0 / k.v_l, 1.0 / k.v_c, 0.0, at_left=False
    )


def _guess_middle_high(target: _Target, backend: Backend) -> FloatArray:
    """``s(beta)`` on ``[b_c, b_u]``: slopes ``1/b'`` at both ends, zero curvature at ``b_c``."""
    k = target.knots
    return rational_cubic(
        target.beta, k.b_c, k.b_u, k.s_c, k.s_u, 1.0 / k.v_c, 1.0 / k.v_u, 0.0, at_left=True
    )


def rational_cubic(
    x: FloatArray,
    x_l: FloatArray,
    x_r: FloatArray,
    y_l: FloatArray,
    y_r: FloatArray,
    d_l: FloatArray,
    d_r: FloatArray,
    second: FloatArray | float,
    *,
    at_left: bool,
) -> FloatArray:
    """Delbourgo-Gregory rational cubic through two points with given slopes.

    ``R = [y_r w^3 + (r y_r - h d_r) w^2 (1-w) + (r y_l + h d_l) w (1-w)^2 + y_l (1-w)^3]
    / [1 + (r-3) w (1-w)]`` with ``w = (x - x_l)/h``. ``r = 3`` is the cubic Hermite; large ``r``
    tends to the straight line. ``r`` is chosen to match the second derivative ``second`` at the
    left end (``at_left``) or the right end, from ``R''(x_l) = 2 (r (delta - d_l) - (d_r - d_l))
    / h`` and ``R''(x_r) = 2 (r (d_r - delta) - (d_r - d_l)) / h``, then raised to the least
    value that keeps the data's monotonicity and convexity, so the interpolant never overshoots.
    """
    h = x_r - x_l
    delta = (y_r - y_l) / h
    with np.errstate(divide="ignore", invalid="ignore"):
        if at_left:
            r = (0.5 * h * second + (d_r - d_l)) / (delta - d_l)
        else:
            r = (0.5 * h * second + (d_r - d_l)) / (d_r - delta)
    r = np.maximum(r, _shape_preserving_minimum(d_l, d_r, delta))
    r = np.where(np.isfinite(r), r, 1.0 / _EPSILON)
    w = (x - x_l) / h
    v = 1.0 - w
    numerator = (
        y_r * w * w * w
        + (r * y_r - h * d_r) * w * w * v
        + (r * y_l + h * d_l) * w * v * v
        + y_l * v * v * v
    )
    return numerator / (1.0 + (r - 3.0) * w * v)


def _shape_preserving_minimum(d_l: FloatArray, d_r: FloatArray, delta: FloatArray) -> FloatArray:
    """Least control parameter keeping monotone data monotone and convex data convex."""
    with np.errstate(divide="ignore", invalid="ignore"):
        monotone = (d_l * delta >= 0.0) & (d_r * delta >= 0.0) & (delta != 0.0)
        r_monotone = np.where(monotone, (d_l + d_r) / delta, 0.0)
        convex = ((d_l - delta) * (d_r - delta) < 0.0) & (d_l != d_r)
        r_left = (d_r - d_l) / (delta - d_l)
        r_right = (d_r - d_l) / (d_r - delta)
        r_convex = np.where(convex, np.maximum(r_left, r_right), 0.0)
    return np.maximum(np.maximum(r_monotone, r_convex), 0.0)


class _Step(NamedTuple):
    """Newton step ``nu = -g/g'``, ``h2 = g''/g'``, ``h3 = g'''/g'``, and which side ``s`` is on."""

    nu: FloatArray
    h2: FloatArray
    h3: FloatArray
    below: BoolArray


class _Branch(NamedTuple):
    """How one branch guesses, where its root can lie, and the objective it iterates on."""

    guess: Callable[[_Target, Backend], FloatArray]
    level: Callable[[FloatArray, FloatArray, Backend], FloatArray]
    low: Callable[[_Knots], FloatArray]
    high: Callable[[_Knots], FloatArray]
    objective: Callable[[_Target, FloatArray, Backend], _Step]


def _solve_branch(target: _Target, branch: _Branch, backend: Backend) -> FloatArray:
    """Guess, then Householder(3): two steps for all, more only where the last was not tiny."""
    low = branch.low(target.knots)
    high = branch.high(target.knots)
    s = np.minimum(np.maximum(branch.guess(target, backend), low), high)
    step = np.full_like(s, np.inf)
    for _ in range(BASE_ITERATIONS):
        s, step, low, high = _householder_step(target, s, low, high, branch, backend)
    for _ in range(EXTRA_ITERATIONS):
        active = np.flatnonzero(~(np.abs(step) <= _CONVERGED_STEP * s))
        if not active.size:
            break
        sub = target.take(active)
        s[active], step[active], low[active], high[active] = _householder_step(
            sub, s[active], low[active], high[active], branch, backend
        )
    return s


def _householder_step(
    target: _Target,
    s: FloatArray,
    low: FloatArray,
    high: FloatArray,
    branch: _Branch,
    backend: Backend,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """One third-order step, kept inside a bracket that every evaluation narrows."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        nu, h2, h3, below = branch.objective(target, s, backend)
        low = np.where(below, np.maximum(low, s), low)
        high = np.where(below, high, np.minimum(high, s))
        step = nu * (1.0 + 0.5 * h2 * nu) / (1.0 + nu * (h2 + h3 * nu / 6.0))
        candidate = s + step
        inside = (candidate > low) & (candidate < high)
        bisect = np.where(np.isfinite(high), 0.5 * (low + high), 2.0 * np.maximum(low, s))
        # At the root, rounding noise may point a negligible step just past a bracket end
        # that an earlier iterate set: that is convergence, not a reason to bisect.
        negligible = np.abs(step) <= _NEGLIGIBLE_STEP * s
        new_s = np.where(inside, candidate, np.where(negligible, s, bisect))
    return new_s, new_s - s, low, high


def _derivative_ratios(y: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``b''/b'`` and ``b'''/b'`` in ``s``, exactly.

    ``b' = phi0`` with ``ln phi0 = -(y^2/s^2 + s^2/4)/2``, so ``b''/b' = y^2/s^3 - s/4`` and
    ``b'''/b' = (b''/b')^2 - 3 y^2/s^4 - 1/4``.
    """
    s2 = s * s
    curvature = y * y / (s2 * s) - 0.25 * s
    third = curvature * curvature - 3.0 * y * y / (s2 * s2) - 0.25
    return curvature, third


def _objective_price(target: _Target, s: FloatArray, backend: Backend) -> _Step:
    """Branches 2 and 3: ``g = b(s) - beta``, nearly linear around the inflection point."""
    b, density = otm_value_and_density(target.y, s, backend, target.knots.half)
    curvature, third = _derivative_ratios(target.y, s)
    return _Step((target.beta - b) / density, curvature, third, b < target.beta)


def _objective_lower(target: _Target, s: FloatArray, backend: Backend) -> _Step:
    """Branch 1: ``g = 1/ln b(s) - 1/ln beta``, nearly quadratic in ``s`` where ``b`` is tiny.

    With ``L = ln b``: ``G' = -1/(b L^2)``, ``G''/G' = -(2+L)/(b L)``,
    ``G'''/G' = (2L^2+6L+6)/(b L)^2``, each scaled by ``b'`` through ``q = b'/(b L)`` so that
    nothing overflows when ``b`` is near the smallest doubles.
    """
    b, density = otm_value_and_density(target.y, s, backend, target.knots.half)
    curvature, third = _derivative_ratios(target.y, s)
    log_b = backend.log(b)
    q = density / (b * log_b)
    ratio2 = -(2.0 + log_b) * q
    ratio3 = (2.0 * log_b * log_b + 6.0 * log_b + 6.0) * q * q
    g = 1.0 / log_b - target.level
    h2 = ratio2 + curvature
    h3 = ratio3 + 3.0 * ratio2 * curvature + third
    return _Step(g * log_b / q, h2, h3, b < target.beta)


def _objective_upper(target: _Target, s: FloatArray, backend: Backend) -> _Step:
    """Branch 4: ``g = ln(b_max - beta) - ln(b_max - b(s))``, nearly linear as ``b -> b_max``.

    Above the tangent point ``s_u`` (which exceeds 2.5) ``a = p - t < 0`` and ``t > 1``, so
    ``b_max - b = phi0 (M(-a) + M(c))`` is formed directly as a sum, with no cancellation.
    ``G = -ln(b_max - b)``: ``G' = 1/c``, ``G''/G' = 1/c``, ``G'''/G' = 2/c^2``.
    """
    y = target.y
    h = y / s
    t = 0.5 * s
    density = backend.exp(-0.5 * (h * h + t * t)) * INV_SQRT_2PI
    rest = density * (backend.mills(h + t) + backend.mills(t - h))
    curvature, third = _derivative_ratios(y, s)
    g = target.level - backend.log(rest)
    ratio = density / rest
    h2 = ratio + curvature
    h3 = 2.0 * ratio * ratio + 3.0 * ratio * curvature + third
    return _Step(-g / ratio, h2, h3, rest > target.complement)


def _zero(knots: _Knots) -> FloatArray:
    return np.zeros_like(knots.s_c)


def _infinity(knots: _Knots) -> FloatArray:
    return np.full_like(knots.s_c, np.inf)


def _level_lower(beta: FloatArray, complement: FloatArray, backend: Backend) -> FloatArray:
    return 1.0 / backend.log(beta)


def _level_price(beta: FloatArray, complement: FloatArray, backend: Backend) -> FloatArray:
    return beta


def _level_upper(beta: FloatArray, complement: FloatArray, backend: Backend) -> FloatArray:
    return backend.log(complement)


_LOWER = _Branch(_guess_lower, _level_lower, _zero, lambda k: k.s_l, _objective_lower)
_MIDDLE_LOW = _Branch(
    _guess_middle_low, _level_price, lambda k: k.s_l, lambda k: k.s_c, _objective_price
)
_MIDDLE_HIGH = _Branch(
    _guess_middle_high, _level_price, lambda k: k.s_c, lambda k: k.s_u, _objective_price
)
_UPPER = _Branch(_guess_upper, _level_upper, lambda k: k.s_u, _infinity, _objective_upper)
