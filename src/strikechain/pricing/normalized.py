"""The normalized Black function, accurate to the last digits in every region.

Every European option price in this library reduces to the normalized Black function of the
log-moneyness ``x = ln(F/K)`` and the total standard deviation ``s = sigma * sqrt(T)``::

    V = D * sqrt(F*K) * b(x, s),
    b(x, s) = theta * (e^(x/2) Phi(theta*(h+t)) - e^(-x/2) Phi(theta*(h-t)))

with ``h = x/s``, ``t = s/2``, theta = +1 for calls and -1 for puts, D the discount factor.
Put-call symmetry (``b_put(x) = b_call(-x)``) and parity (``b_call(x) - b_put(x) = 2 sinh(x/2)``)
reduce everything to the out-of-the-money value ``b(y, s)`` with ``y = -|x| <= 0``, which this
module computes. In the money, the intrinsic value is added in the caller's units.

Why not the textbook formula: out of the money the two terms of ``b`` nearly cancel. With
``p = -y/s``, ``a = p - t`` and ``c = p + t``, one can write ``b = phi0 * (M(a) - M(c))`` where
``M`` is the Mills ratio and ``phi0 = exp(-(h^2+t^2)/2)/sqrt(2 pi)``; the subtraction loses about
``log10(1 + a/(2t))`` digits, all of them for tiny vols, tiny expiries or far wings. Relative to
the condition number ``1 + p^2 + t^2`` of ``b`` itself that loss is about ``1 / (2 t max(p, 1))``,
so the difference is used wherever ``t max(p, 1) >= SERIES_REACH`` and a series elsewhere (after
Jaeckel, "Let's Be Rational", 2013-2016, with expansions derived here in the Mills-ratio form):

- ``a >= ASYMPTOTIC_THRESHOLD`` (far out of the money): the asymptotic series of ``M`` with the
  differences ``a^-n - c^-n`` formed by a recurrence in which every term is positive, so
  nothing cancels.
- otherwise (small total volatility): the Taylor series of ``M(p - t) - M(p + t)`` in ``t``
  around ``p``, whose terms ``2 I_k(p) t^k / k!`` (odd ``k``) are all positive.

Accuracy: the relative error of ``b`` stays within a small multiple of machine epsilon times
``1 + h^2 + t^2``, the condition number of ``b`` itself (a relative change ``eps`` in ``x`` or
``s`` changes ``b`` by about that much). No region loses more. See
``tests/pricing/test_normalized.py`` for the measured bound against 50-digit references.

All functions here take float64 arrays that are already broadcast to one shape and validated
(``y <= 0``, ``s > 0``, both finite); the public API in :mod:`strikechain.pricing.black` does that.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Protocol

import numpy as np

from strikechain.pricing._types import BoolArray, FloatArray, select
from strikechain.pricing.backend import Backend

INV_SQRT_2PI = float.fromhex("0x1.9884533d43651p-2")  # 1/sqrt(2 pi)

ASYMPTOTIC_THRESHOLD = 12.0
"""Smallest ``a = p - t`` at which the asymptotic series converges to double precision."""
ASYMPTOTIC_TERMS = 17
"""Terms of the asymptotic series used; enough at the threshold (tested)."""
SERIES_REACH = 0.3
"""Below this ``t max(p, 1)`` a series is used: the Mills-ratio difference would lose more than
about twice the condition number of ``b`` (measured in ``tests/pricing/test_normalized.py``)."""
SMALL_T_BANDS = ((0.05, 5), (SERIES_REACH, 9))
"""``(largest t, odd terms t, t^3, ... used)``: the first omitted term is below 2^-54 of the sum
even at ``p = 0`` where the terms decay slowest (``t^(2j) / (2j+1)!!``), so short-dated options
pay for few terms."""

_DEKKER_SPLIT = 134217729.0  # 2^27 + 1
_SCALE_LIMIT = 2.0**990  # above this, 2^27 + 1 times the value could overflow
_SMALLEST_NORMAL = 2.0**-1022


def log_moneyness(forward: FloatArray, strike: FloatArray, backend: Backend) -> FloatArray:
    """``ln(F/K)`` correct to about an ulp of the result, also when ``F/K`` is near 1.

    ``log(F/K)`` alone carries the rounding of the quotient, an absolute error of about one ulp
    of 1.0, which is a large relative error in ``x`` near the money and, for short expiries, a
    large error in the price (``h = x/s`` is then large). The quotient's rounding error is
    recovered exactly with Dekker's two-product and added back as ``ln(1+d) ~ d``.
    """
    big = (forward > _SCALE_LIMIT) | (strike > _SCALE_LIMIT)
    if big.any():  # keep Dekker's splitting from overflowing; scaling by 2^-128 is exact
        forward = np.where(big, np.ldexp(forward, -128), forward)
        strike = np.where(big, np.ldexp(strike, -128), strike)
    q = forward / strike
    extreme = (q > _SCALE_LIMIT) | (q < _SMALLEST_NORMAL)
    divisor = strike
    if extreme.any():  # a harmless stand-in here; fixed up below
        q = np.where(extreme, 1.0, q)
        divisor = np.where(extreme, forward, strike)
    product_hi, product_lo = _two_product(q, divisor)
    residual = (forward - product_hi) - product_lo
    x = backend.log(q) + residual / forward
    if extreme.any():  # |x| > 680: the quotient's rounding is negligible, but it may underflow
        idx = np.flatnonzero(extreme)
        x[idx] = backend.log(forward[idx]) - backend.log(strike[idx])
    return x


def _two_product(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``a*b`` as an unevaluated sum ``hi + lo``, exactly (Dekker), without fused multiply-add."""
    hi = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    lo = ((a_hi * b_hi - hi) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return hi, lo


def _split(a: FloatArray) -> tuple[FloatArray, FloatArray]:
    c = _DEKKER_SPLIT * a
    hi = c - (c - a)
    return hi, a - hi


class OtmParts(NamedTuple):
    """The out-of-the-money price with the pieces the Greeks are built from.

    ``value`` is ``b(y, s)``; ``density`` is ``phi0 = db/ds``; ``tail1 = Phi(-a) = Phi(h + t)``
    and ``tail2 = Phi(-c) = Phi(h - t)`` are the two normal probabilities of the formula,
    ``upper1 = 1 - tail1`` (computed without cancellation when ``tail1`` is near 1) and
    ``half = e^(y/2)``.
    """

    value: FloatArray
    density: FloatArray
    tail1: FloatArray
    upper1: FloatArray
    tail2: FloatArray
    half: FloatArray


def otm_value(
    y: FloatArray, s: FloatArray, backend: Backend, half: FloatArray | None = None
) -> FloatArray:
    """``b(y, s)`` for ``y <= 0`` and ``s > 0``: the normalized out-of-the-money price.

    ``half = e^(y/2)`` may be passed when the caller has it (from ``sqrt(min(F,K)/max(F,K))``,
    say), so that every path through the library uses the same rounding of it.
    """
    value, _ = otm_value_and_density(y, s, backend, half)
    return value


def otm_value_and_density(
    y: FloatArray, s: FloatArray, backend: Backend, half: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """``b(y, s)`` and its derivative in ``s``, ``phi0``, which every caller needs too."""
    if half is None:
        half = backend.exp(0.5 * y)
    p = -y / s
    t = 0.5 * s
    density = backend.exp(-0.5 * (p * p + t * t)) * INV_SQRT_2PI
    value = np.empty_like(density)
    _fill(value, _region_kernels(p, t), p, t, half, density, backend)
    return value, density


def otm_parts(y: FloatArray, s: FloatArray, half: FloatArray, backend: Backend) -> OtmParts:
    """The out-of-the-money price and the normal tails, for Greeks; ``half = e^(y/2)``.

    The two Mills ratios that the tails need also give the price wherever the difference
    formula is accurate, so only the elements of the series regions are priced again.
    """
    p = -y / s
    t = 0.5 * s
    density = backend.exp(-0.5 * (p * p + t * t)) * INV_SQRT_2PI
    a = p - t
    m_a = density * backend.mills(np.abs(a))  # e^(y/2) Phi(-|a|)
    m_c = density * backend.mills(p + t)  # e^(-y/2) Phi(-c)
    positive = (a >= 0.0).astype(np.float64)
    value = np.maximum(select(positive, m_a - m_c, half - (m_a + m_c)), 0.0)
    series = [(region, kernel) for region, kernel in _region_kernels(p, t) if kernel is not _direct]
    _fill(value, series, p, t, half, density, backend)
    small1 = m_a / half  # Phi(-|a|) = phi(a) M(|a|) with phi(a) = phi0 e^(-y/2)
    tail1 = select(positive, small1, 1.0 - small1)
    upper1 = select(positive, 1.0 - small1, small1)
    return OtmParts(value, density, tail1, upper1, m_c * half, half)


def _fill(
    value: FloatArray,
    regions: list[tuple[BoolArray | None, _Kernel]],
    p: FloatArray,
    t: FloatArray,
    half: FloatArray,
    density: FloatArray,
    backend: Backend,
) -> None:
    """Write each region's formula into ``value`` (``None``: the one region of every element)."""
    for region, kernel in regions:
        if region is None:
            value[...] = kernel(p, t, half, density, backend)
            return
        idx = np.flatnonzero(region)
        value[idx] = kernel(p[idx], t[idx], half[idx], density[idx], backend)


def _region_kernels(p: FloatArray, t: FloatArray) -> list[tuple[BoolArray | None, _Kernel]]:
    """Which elements go through which formula; ``None`` marks a single region for all."""
    series = t * np.maximum(p, 1.0) < SERIES_REACH
    asymptotic = series & ((p - t) >= ASYMPTOTIC_THRESHOLD)
    series &= ~asymptotic
    regions: list[tuple[BoolArray, _Kernel]] = [(asymptotic, _asymptotic)]
    lower = np.zeros_like(series)
    for limit, terms in SMALL_T_BANDS:
        band = series & (t < limit) & ~lower
        regions.append((band, _SMALL_T_KERNELS[terms]))
        lower = lower | band
    regions.append((~(asymptotic | lower), _direct))
    for region, kernel in regions:
        if region.all():
            return [(None, kernel)]
    return [(region, kernel) for region, kernel in regions if region.any()]


class _Kernel(Protocol):
    """Signature of a region's formula: ``(p, t, e^(y/2), phi0, backend) -> b``."""

    def __call__(
        self, p: FloatArray, t: FloatArray, half: FloatArray, phi0: FloatArray, backend: Backend, /
    ) -> FloatArray: ...


def _direct(
    p: FloatArray, t: FloatArray, half: FloatArray, phi0: FloatArray, backend: Backend
) -> FloatArray:
    """``phi0 (M(a) - M(c))``, or via ``Phi(-a) = 1 - Phi(a)`` when ``a < 0``."""
    a = p - t
    c = p + t
    m_a = phi0 * backend.mills(np.abs(a))
    m_c = phi0 * backend.mills(c)
    positive = (a >= 0.0).astype(np.float64)
    value = select(positive, m_a - m_c, half - (m_a + m_c))
    return np.maximum(value, 0.0)


def _small_t(
    p: FloatArray, t: FloatArray, half: FloatArray, phi0: FloatArray, backend: Backend, terms: int
) -> FloatArray:
    """Taylor series in ``t``: ``M(p-t) - M(p+t) = 2 sum_{k odd} I_k(p) t^k / k!``.

    ``I_k(p) = integral_0^inf u^k exp(-p u - u^2/2) du = (-1)^k M^(k)(p)`` is positive and obeys
    ``I_(k+1) = k I_(k-1) - p I_k`` from ``I_0 = M(p)``, ``I_1 = 1 - p M(p)``.
    """
    tt = t * t
    i_even = backend.mills(p)  # I_0
    i_odd = 1.0 - p * i_even  # I_1
    total = i_odd.copy()
    weight = np.ones_like(t)
    for j in range(1, terms):
        i_even = (2 * j - 1) * i_even - p * i_odd  # I_(2j)
        i_odd = (2 * j) * i_odd - p * i_even  # I_(2j+1)
        weight = weight * (tt * (1.0 / ((2 * j) * (2 * j + 1))))
        total = total + weight * i_odd
    return phi0 * (2.0 * t) * total


def _asymptotic(
    p: FloatArray, t: FloatArray, half: FloatArray, phi0: FloatArray, backend: Backend
) -> FloatArray:
    """``M(a) - M(c)`` from ``M(z) ~ sum_k (-1)^k (2k-1)!! z^-(2k+1)``, differenced termwise.

    ``D_n = a^-n - c^-n`` follows ``D_(n+2) = a^-2 D_n + c^-n (a^-2 - c^-2)`` with
    ``D_1 = 2t/(a c)``: all terms positive, so the differences never cancel.
    """
    a = p - t
    c = p + t
    u = 1.0 / a
    v = 1.0 / c
    uu = u * u
    vv = v * v
    difference = (2.0 * t) / (a * c)  # D_1
    cross = difference * (u + v)  # a^-2 - c^-2
    v_power = v
    total = difference.copy()
    coefficient = 1.0
    for k in range(1, ASYMPTOTIC_TERMS):
        difference = uu * difference + v_power * cross
        v_power = v_power * vv
        coefficient = -coefficient * (2 * k - 1)
        total = total + coefficient * difference
    return phi0 * total


_SMALL_T_KERNELS: dict[int, _Kernel] = {
    terms: functools.partial(_small_t, terms=terms) for _, terms in SMALL_T_BANDS
}
