"""Deterministic elementary functions and normal-distribution functions.

Why: NumPy picks exp/log kernels by CPU and differs from libm in the last bit on a few
percent of inputs, so any number that decides venue state must come from operations whose
result IEEE 754 fixes exactly. Every function here is built only from:

- correctly rounded ``+ - * /`` and ``sqrt`` on float64;
- exact operations: ``frexp``, ``floor``, ``rint``, ``abs``, ``copysign``, min/max,
  comparisons, selection, ``take`` from constant tables, casts of integral floats, integer
  ``+ & >> <<``, and powers of two assembled from their IEEE bits (they multiply exactly and
  are several times faster than ``ldexp`` here);
- constant tables of hex floats written by ``tools/fit_approximations.py``.

No reduction is used: each output element depends on its own input element only, so the
chunked evaluation cannot change a bit. The golden vectors in ``tests/golden/detmath.json``
pin the bits, also with NumPy's SIMD dispatch disabled.

Methods (coefficients: Chebyshev fits at 60 digits by mpmath, rounded to double):

- ``exp``: x = k ln2/64 + r with a two-part ln2/64, |r| <= ln2/128; 2^(j/64) from a hi/lo
  table, expm1(r) by a degree-6 polynomial, one final rounding of ``T_hi + (T_lo + T_hi p)``,
  then an exact scaling by 2^n.
- ``expm1``: a degree-10 polynomial for |x| < 1/16; otherwise the exp reduction with the
  ``- 1`` done by an error-free two-sum; exp itself for x > 40.
- ``log``: frexp; the mantissa's cell (width 2^-9) gives c and invc, 1/c to 26 bits, so
  R = m invc - 1 is formed exactly as a hi/lo pair; log(1/invc) and ln2 are hi/lo tables
  whose high parts sum exactly; the cells holding 1 (c = 1/2 with e = 1, and c = 1) have
  log(c 2^e) = 0 exactly, so results near x = 1 keep full relative precision.
- ``log1p``: |x| < 2^-10: x + x^2 q(x) with log's polynomial; otherwise ``u = 1 + x`` by
  fast two-sum, log(u) plus the lost low part divided by u.
- ``cbrt``: a degree-6 polynomial, one Newton step, then a Newton step whose residual
  ``t - y^3`` is computed exactly from a 17-bit head of y.
- ``mills``: for 0 <= z < 32, 4096 cells of width 1/128, each a degree-5 polynomial
  (coefficients gathered with ``take``) of 32 M(z); for z >= 32 the same Horner loop with
  a degree-5 polynomial of w = 1/z^2 for z M(z). The cell variable is ``u + 1/max(z, 32)^2``
  (u is the position in the cell, exactly 0 in the tail cell) and the result is divided by
  ``max(z, 32)``, exact for cells, so no branch or select is needed. z < 0 uses
  M(z) = sqrt(2 pi) exp(z^2/2) - M(-z), with z^2 exact as a double-double.
- ``normal_pdf``: exp of -z^2/2 with z^2 as a Dekker double-double, using a 2^(j/64) table
  pre-scaled by 1/sqrt(2 pi) so the scale costs no rounding.
- ``ndtr``: Phi(-|z|) = phi(z) M(|z|), then 1 - that for z > 0; for |z| < 1/16,
  1/2 + z G(z^2) with a degree-5 G, so Phi(0) = 1/2 exactly.
- ``ndtri``: |p - 1/2| <= 0.425: d (5/2 + P(r)/Q(r)), degree 8/8, r = 0.425^2 - d^2. Further out:
  s = sqrt(-log q), a degree-5 polynomial per cell of width 1/2 in s (about 2^-20), then
  one Halley step with the residual (Phi(x) - q)/phi(x) = M(-x) - q/phi(x).

Measured (max error in ulps of the exact value from mpmath at 120 bits, over 200,000 to
400,000 random points per function across its domain, tails, tiny and huge arguments and
subnormals, 60,000 for ndtri; speed in ns/element on 10^6 float64, one core of the
development machine, ``tools/bench_detmath.py``)::

    function     max ulps                      detmath ns   reference ns
    exp          0.511 (0.750 subnormal out)   18           np.exp 10
    expm1        0.594                         36           np.expm1 10
    log          0.502                         27           np.log 4.4
    log1p        0.500                         40           np.log1p 11
    cbrt         0.500                         26           np.cbrt 17
    mills z>=0   1.333                         14           scipy erfcx 27
    mills z<0    1.946                         28 *         scipy erfcx 31 *
    normal_pdf   0.511 (0.737 subnormal out)   24           np exp formula 12
    ndtr         2.585 (1.63 for z > 0)        47           scipy ndtr 21
    ndtri        2.200                         50           scipy ndtri 17

    * z uniform in [-8, 8]: half the elements take the exp path.

Domains: every function takes a float64 array of any shape (0-d included), never modifies
it and returns a new float64 array of the same shape; nan in gives nan out, signed zeros
are kept where the function is odd. ``log``: x < 0 gives nan, log(+-0) = -inf. ``log1p``:
x < -1 gives nan, log1p(-1) = -inf. ``ndtri``: p outside [0, 1] gives nan, ndtri(0) = -inf,
ndtri(1) = inf. ``mills`` overflows to inf below z = -37.7 or so. Subnormal results of exp,
normal_pdf and ndtr are rounded twice, so within one unit of the subnormal spacing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from strikechain.pricing import _detmath_coefficients as _coef
from strikechain.pricing._types import FloatArray, IntArray

__all__ = [
    "cbrt",
    "exp",
    "expm1",
    "log",
    "log1p",
    "mills",
    "ndtr",
    "ndtri",
    "normal_pdf",
]


def _table(text: str) -> FloatArray:
    return np.array([float.fromhex(word) for word in text.split()], dtype=np.float64)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float.fromhex(word) for word in text.split())


_INF = float("inf")
_NAN = float("nan")

_EXP_INV_STEP = float.fromhex(_coef.EXP_INV_STEP)
_EXP_STEP_HI = float.fromhex(_coef.EXP_STEP_HI)
_EXP_STEP_LO = float.fromhex(_coef.EXP_STEP_LO)
_EXP_MASK = (1 << _coef.EXP_TABLE_BITS) - 1
_EXP_CLAMP = 800.0  # beyond every overflow/underflow threshold; keeps |k| < 2^17
_EXP_POLY = _floats(_coef.EXP_POLY)
_EXP_TABLE = (_table(_coef.EXP_TABLE_HI), _table(_coef.EXP_TABLE_LO))
_PDF_TABLE = (_table(_coef.PDF_TABLE_HI), _table(_coef.PDF_TABLE_LO))
_MILLS_NEG_TABLE = (_table(_coef.MILLS_NEG_TABLE_HI), _table(_coef.MILLS_NEG_TABLE_LO))
_EXPM1_SMALL_LIMIT = 2.0**-4
_EXPM1_EXP_ABOVE = 40.0  # exp(x) - 1 rounds to exp(x) here
_EXPM1_SMALL_POLY = _floats(_coef.EXPM1_SMALL_POLY)

_LN2_HI = float.fromhex(_coef.LN2_HI)
_LN2_LO = float.fromhex(_coef.LN2_LO)
_LOG_CELLS = float(1 << _coef.LOG_TABLE_BITS)
_LOG_FIRST_CELL = _LOG_CELLS / 2
_LOG_INVC = _table(_coef.LOG_INVC)
_LOG_T_HI = _table(_coef.LOG_T_HI)
_LOG_T_LO = _table(_coef.LOG_T_LO)
_LOG_POLY = _floats(_coef.LOG_POLY)
_LOG1P_DIRECT = 2.0**-10  # |x| below: the polynomial of log's central cell, R = x
_LOG_SPLIT = 3.0 * 2.0**15  # rounds |d| <= 2^-10 to a multiple of 2^-36 (<= 27 bits)

_CBRT_POLY = _floats(_coef.CBRT_POLY)  # in m - 3/4
_CBRT_CENTRE = 3.0 / 4.0
_THIRD = 1.0 / 3.0
_CBRT_SCALE = _table("0x1p+0 " + _coef.CBRT_SCALE)
_CBRT_SPLIT = 3.0 * 2.0**35  # rounds y in [0.79, 1.59] to a multiple of 2^-16 (<= 17 bits)

_MILLS_SPLIT = float(_coef.MILLS_SPLIT)
_MILLS_CELLS_PER_UNIT = float(_coef.MILLS_CELLS_PER_UNIT)
_MILLS_COLUMNS = tuple(_table(getattr(_coef, f"MILLS_C{k}")) for k in range(_coef.MILLS_DEGREE + 1))
_NEG_SQUARE_CLAMP = 40.0  # exp(40^2/2) overflows and exp(-40^2/2) underflows

_DEKKER_SPLITTER = 2.0**27 + 1.0
_CHUNK = 16384  # elements per pass of the kernels: 128 KiB per temporary

_NDTR_SMALL_LIMIT = 2.0**-4
_NDTRI_CONSTANT = 5.0 / 2.0  # x/d = 5/2 + P/Q in the central region
_NDTR_SMALL_POLY = _floats(_coef.NDTR_SMALL_POLY)
_NDTRI_BOUND = float.fromhex(_coef.NDTRI_CENTRAL_BOUND)
_NDTRI_P = _floats(_coef.NDTRI_CENTRAL_P)
_NDTRI_Q = _floats(_coef.NDTRI_CENTRAL_Q)
_NDTRI_TAIL_START = float(_coef.NDTRI_TAIL_START)
_NDTRI_TAIL_CELLS = float(_coef.NDTRI_TAIL_CELLS_PER_UNIT)
_NDTRI_TAIL_COLUMNS = tuple(
    _table(getattr(_coef, f"NDTRI_TAIL_C{k}")) for k in range(_coef.NDTRI_TAIL_DEGREE + 1)
)


# ----------------------------------------------------------------------------------------
# Shared kernels


Kernel = Callable[[FloatArray], FloatArray]


def _apply(kernel: Kernel, x: ArrayLike) -> FloatArray:
    """Run a 1-D elementwise kernel over cache-sized chunks of x; returns x's shape.

    Chunking keeps every temporary in the L2 cache (about 3x faster on 10^6 elements) and
    cannot change a bit, since no element's result depends on another element.
    Overflow, underflow and inf/nan arithmetic are handled explicitly by the kernels, so
    floating-point warnings are silenced here.
    """
    array = np.asarray(x, dtype=np.float64)
    flat = np.ravel(array)
    out = np.empty(flat.shape[0])
    with np.errstate(all="ignore"):
        for start in range(0, flat.shape[0], _CHUNK):
            stop = start + _CHUNK
            out[start:stop] = kernel(flat[start:stop])
    return out.reshape(array.shape)


def _power_of_two(n: IntArray) -> FloatArray:
    """2.0**n for -1022 <= n <= 1023, assembled from its IEEE 754 bits (exact)."""
    return ((n + 1023) << 52).view(np.float64)


def _scale(y: FloatArray, n: IntArray) -> FloatArray:
    """y 2^n with one rounding, like ldexp but several times faster here.

    Needs |n| <= 2044 and y 2^(n >> 1) normal or exact (callers: |n| <= 1160 with
    y in [2^-2, 2], or y >= 2^-1074 scaled up): then only the second product can round.
    """
    half = n >> 1
    return (y * _power_of_two(half)) * _power_of_two(n - half)


def _horner(coefficients: Sequence[float], x: FloatArray) -> FloatArray:
    """Coefficients lowest degree first, Python floats (exact float64 constants)."""
    acc = x * coefficients[-1] + coefficients[-2]
    for c in coefficients[-3::-1]:
        acc = acc * x + c
    return acc


def _gathered_horner(columns: Sequence[FloatArray], cell: IntArray, x: FloatArray) -> FloatArray:
    acc = np.take(columns[-1], cell, mode="clip")
    for column in columns[-2::-1]:
        acc = acc * x + np.take(column, cell, mode="clip")
    return acc


def _exp_parts(
    x_hi: FloatArray, x_lo: FloatArray | float, table: tuple[FloatArray, FloatArray]
) -> tuple[FloatArray, FloatArray, IntArray]:
    """(t_hi, w, n) with scale * exp(x_hi + x_lo) ~ (t_hi + w) 2^n, |w| < 0.011 t_hi.

    ``table`` holds scale * 2^(j/64) as hi/lo. x_hi must not be nan; |x_lo| <= 2^-40.
    Returning the parts lets callers scale, add or subtract before the one final rounding.
    """
    x = np.minimum(np.maximum(x_hi, -_EXP_CLAMP), _EXP_CLAMP)
    k = np.rint(x * _EXP_INV_STEP)
    r = ((x - k * _EXP_STEP_HI) - k * _EXP_STEP_LO) + x_lo
    k_int = k.astype(np.int64)
    j = k_int & _EXP_MASK
    p = r + r * r * _horner(_EXP_POLY, r)
    t_hi = np.take(table[0], j, mode="clip")
    w = np.take(table[1], j, mode="clip") + t_hi * p
    return t_hi, w, k_int >> _coef.EXP_TABLE_BITS


def _square(a: FloatArray) -> tuple[FloatArray, FloatArray]:
    """a^2 = hi + lo exactly (Dekker's product with Veltkamp splitting); |a| <= 2^500."""
    g = a * _DEKKER_SPLITTER
    a_hi = g - (g - a)
    a_lo = a - a_hi
    hi = a * a
    lo = ((a_hi * a_hi - hi) + 2.0 * a_hi * a_lo) + a_lo * a_lo
    return hi, lo


def _gauss_parts(
    a: FloatArray, sign: float, table: tuple[FloatArray, FloatArray]
) -> tuple[FloatArray, IntArray]:
    """(y, n) with scale * exp(sign * a^2 / 2) = y 2^n to about half an ulp.

    a^2 is formed exactly as a double-double: rounding it first would cost up to a^2/2 ulps.
    """
    hi, lo = _square(np.fmin(a, _NEG_SQUARE_CLAMP))
    t_hi, w, n = _exp_parts(hi * (0.5 * sign), lo * (0.5 * sign), table)
    return t_hi + w, n


# ----------------------------------------------------------------------------------------
# exp, expm1


def exp(x: ArrayLike) -> FloatArray:
    """e^x within 0.52 ulp; overflows to inf above 709.78, underflows to 0 below -745.13."""
    return _apply(_exp_kernel, x)


def _exp_kernel(x: FloatArray) -> FloatArray:
    nan = np.isnan(x)
    t_hi, w, n = _exp_parts(np.where(nan, 0.0, x), 0.0, _EXP_TABLE)
    return np.where(nan, x, _scale(t_hi + w, n))


def expm1(x: ArrayLike) -> FloatArray:
    """e^x - 1 with full relative precision near 0; -1 below -37.5, inf above 709.78."""
    return _apply(_expm1_kernel, x)


def _expm1_kernel(x: FloatArray) -> FloatArray:
    nan = np.isnan(x)
    xs = np.maximum(np.where(nan, 0.0, x), -_EXPM1_EXP_ABOVE)  # expm1(-40) rounds to -1
    small = xs + xs * xs * _horner(_EXPM1_SMALL_POLY, xs)
    out = np.where(np.abs(xs) < _EXPM1_SMALL_LIMIT, small, _expm1_reduced(xs))
    return np.where(nan | (x == 0.0), x, out)


def _expm1_reduced(x: FloatArray) -> FloatArray:
    """2^n (T_hi + w) - 1 with the -1 taken by an error-free two-sum (|x| >= 1/16).

    2^n T_hi - 1 is exact for -1 <= n <= 52 and the two-sum also covers the rest, so the
    only roundings left are in w (at most 1.1% of the result here) and the final sum.
    """
    t_hi, w, n = _exp_parts(x, 0.0, _EXP_TABLE)
    scale = _power_of_two(n)  # used only where -40 <= x <= 40: n in [-58, 58]
    u = t_hi * scale
    s = u - 1.0
    s_back = s - u
    err = (u - (s - s_back)) + (-1.0 - s_back)
    reduced = s + (err + w * scale)
    return np.where(x > _EXPM1_EXP_ABOVE, _scale(t_hi + w, n), reduced)


# ----------------------------------------------------------------------------------------
# log, log1p


def log(x: ArrayLike) -> FloatArray:
    """Natural logarithm within 0.52 ulp, relative precision kept near x = 1."""
    return _apply(_log_kernel, x)


def _log_kernel(x: FloatArray) -> FloatArray:
    regular = (x > 0.0) & (x < _INF)
    out = _log_positive(np.where(regular, x, 1.0), 0.0)
    return np.where(regular, out, _log_special(x, 0.0))


def log1p(x: ArrayLike) -> FloatArray:
    """log(1 + x) with full relative precision for tiny x; -inf at -1, nan below."""
    return _apply(_log1p_kernel, x)


def _log1p_kernel(x: FloatArray) -> FloatArray:
    regular = (x > -1.0) & (x < _INF)
    xs = np.where(regular, x, 0.0)
    big = np.maximum(xs, 1.0)
    little = np.minimum(xs, 1.0)
    u = big + little
    lost = little - (u - big)  # fast two-sum: u + lost = 1 + x exactly
    out = _log_positive(u, lost / u)
    near = xs + xs * xs * _horner(_LOG_POLY, xs)  # the c = 1 cell with R = x exactly
    out = np.where(np.abs(xs) < _LOG1P_DIRECT, near, out)
    return np.where(regular, out, _log_special(x, -1.0))


def _log_special(x: FloatArray, pole: float) -> FloatArray:
    return np.where(x == pole, -_INF, np.where(x == _INF, _INF, _NAN))


def _log_positive(x: FloatArray, extra: FloatArray | float) -> FloatArray:
    """log(x) + extra for finite x > 0 (subnormals included) and |extra| <= 2^-52.

    x = m 2^e, c = the multiple of 1/512 nearest m, invc = 1/c to 26 bits. With
    R = m invc - 1 = (m - c) invc + (c invc - 1), log x = e ln2 - log(invc) + log1p(R).
    m - c, its 27-bit head times invc and c invc - 1 are all exact, so R = r_hi + r_lo
    carries only a rounding of 2^-53 |r_lo| <= 2^-89.
    """
    m, e = np.frexp(x)
    k = np.rint(m * _LOG_CELLS)
    cell = (k - _LOG_FIRST_CELL).astype(np.int64)
    c = k * (1.0 / _LOG_CELLS)
    d = m - c
    d_hi = (d + _LOG_SPLIT) - _LOG_SPLIT
    invc = np.take(_LOG_INVC, cell, mode="clip")
    r_hi = d_hi * invc
    r_lo = (d - d_hi) * invc + (c * invc - 1.0)  # c invc - 1: exact, |.| <= 2^-26
    r = r_hi + r_lo
    r_err = (r_hi - r) + r_lo  # fast two-sum: r_hi is 0 or at least twice r_lo
    ef = e.astype(np.float64)
    a = ef * _LN2_HI + np.take(_LOG_T_HI, cell, mode="clip")  # exact: both on 2^-42 grid
    hi = a + r
    lo = r - (hi - a)  # fast two-sum: |a| > |r| whenever a != 0
    tiny = ((ef * _LN2_LO + np.take(_LOG_T_LO, cell, mode="clip")) + extra) + r_err
    return hi + ((tiny + lo) + r * r * _horner(_LOG_POLY, r))


# ----------------------------------------------------------------------------------------
# cbrt


def cbrt(x: ArrayLike) -> FloatArray:
    """Real cube root within 0.51 ulp; odd, so cbrt(-0.0) = -0.0 and cbrt(-8) = -2."""
    return _apply(_cbrt_kernel, x)


def _cbrt_kernel(x: FloatArray) -> FloatArray:
    ax = np.abs(x)
    regular = (ax > 0.0) & (ax < _INF)
    m, e = np.frexp(np.where(regular, ax, 1.0))
    ef = e.astype(np.float64)
    q = np.floor(ef / 3.0)
    s = (ef - 3.0 * q).astype(np.int64)
    t = m * _power_of_two(s)  # in [1/2, 4), exact
    y = _horner(_CBRT_POLY, m - _CBRT_CENTRE) * np.take(_CBRT_SCALE, s, mode="clip")
    y = y - (y - t / (y * y)) * _THIRD
    y = _cbrt_exact_newton(t, y)
    out = np.copysign(y * _power_of_two(q.astype(np.int64)), x)  # |q| <= 358: exact
    return np.where(regular, out, x)


def _cbrt_exact_newton(t: FloatArray, y: FloatArray) -> FloatArray:
    """One Newton step y + (t - y^3)/(3 y^2) whose residual is exact to about 2^-70.

    y = y_hi + y_lo with y_hi of 17 bits, so y_hi^3 (51 bits) and t - y_hi^3 are exact and
    the remaining terms are tiny; with y good to 2^-35 the step leaves 2^-70.
    """
    y_hi = (y + _CBRT_SPLIT) - _CBRT_SPLIT
    y_lo = y - y_hi
    y_hi2 = y_hi * y_hi
    residual = (t - y_hi2 * y_hi) - (3.0 * y_hi2 * y_lo + y_lo * y_lo * (3.0 * y_hi + y_lo))
    return y + residual / (3.0 * (y * y))


# ----------------------------------------------------------------------------------------
# Mills ratio


def _mills_nonnegative(a: FloatArray) -> FloatArray:
    """M(a) for a >= 0, +inf or nan (1-D), the hot path: 27 in-place passes, no selects.

    The cell index comes from min(a, 32) (nan -> 32, a valid cell; the nan survives in
    dz); u is exactly 0 in the tail cell and s = u + 1/dz^2 is u + 2^-10 in the cells.
    """
    s = np.fmin(a, _MILLS_SPLIT)
    np.multiply(s, _MILLS_CELLS_PER_UNIT, out=s)
    tmp = np.floor(s)
    cell = tmp.astype(np.int64)  # integral values: exact
    np.subtract(s, tmp, out=s)
    dz = np.maximum(a, _MILLS_SPLIT)
    np.multiply(dz, dz, out=tmp)
    np.divide(1.0, tmp, out=tmp)
    np.add(s, tmp, out=s)
    acc = np.take(_MILLS_COLUMNS[-1], cell, mode="clip")
    for column in _MILLS_COLUMNS[-2::-1]:
        np.multiply(acc, s, out=acc)
        np.take(column, cell, out=tmp, mode="clip")
        np.add(acc, tmp, out=acc)
    np.divide(acc, dz, out=acc)  # exact division by 32 in the cells
    return acc


def mills(z: ArrayLike) -> FloatArray:
    """Mills ratio M(z) = Phi(-z)/phi(z) = sqrt(pi/2) erfcx(z/sqrt(2)).

    Within 1.4 ulp for z >= 0 (M(0) = sqrt(pi/2), M(z) ~ 1/z, M(inf) = 0); for z < 0,
    sqrt(2 pi) exp(z^2/2) - M(-z), which overflows to inf below about -37.7.
    """
    return _apply(_mills_kernel, z)


def _mills_kernel(z: FloatArray) -> FloatArray:
    out = _mills_nonnegative(np.abs(z))
    negative = np.flatnonzero(z < 0.0)
    if negative.size:
        out[negative] = _mills_negative(z[negative], out[negative])
    return out


def _mills_negative(z: FloatArray, m_reflected: FloatArray) -> FloatArray:
    y, n = _gauss_parts(-z, 1.0, _MILLS_NEG_TABLE)
    return _scale(y, n) - m_reflected


# ----------------------------------------------------------------------------------------
# Normal density, CDF and its inverse


def normal_pdf(z: ArrayLike) -> FloatArray:
    """phi(z) = exp(-z^2/2)/sqrt(2 pi) within 0.52 ulp (relative, also deep in the tails)."""
    return _apply(_normal_pdf_kernel, z)


def _normal_pdf_kernel(z: FloatArray) -> FloatArray:
    y, n = _gauss_parts(np.fmin(np.abs(z), _NEG_SQUARE_CLAMP), -1.0, _PDF_TABLE)
    return np.where(np.isnan(z), z, _scale(y, n))


def ndtr(z: ArrayLike) -> FloatArray:
    """Phi(z) with small relative error in both tails: phi(z) M(|z|) below 0, 1 - that above."""
    return _apply(_ndtr_kernel, z)


def _ndtr_kernel(z: FloatArray) -> FloatArray:
    a = np.abs(z)
    y, n = _gauss_parts(np.fmin(a, _NEG_SQUARE_CLAMP), -1.0, _PDF_TABLE)
    lower = _scale(y * _mills_nonnegative(a), n)
    out = np.where(z > 0.0, 1.0 - lower, lower)
    near = 0.5 + z * _horner(_NDTR_SMALL_POLY, z * z)  # exact 1/2 at 0, 0.5 ulp nearby
    return np.where(a < _NDTR_SMALL_LIMIT, near, out)


def ndtri(p: ArrayLike) -> FloatArray:
    """Phi^-1(p) for 0 < p < 1 (0 -> -inf, 1 -> inf, elsewhere nan), a few ulps throughout.

    q = min(p, 1 - p) is exact (1 - p is exact for p >= 1/2), and the result is odd in
    p - 1/2, so both tails are computed from the small side.
    """
    return _apply(_ndtri_kernel, p)


def _ndtri_kernel(p: FloatArray) -> FloatArray:
    regular = (p > 0.0) & (p < 1.0)
    ps = np.where(regular, p, 0.5)
    upper = ps > 0.5
    q = np.where(upper, 1.0 - ps, ps)
    d = q - 0.5
    x = _ndtri_central(d)
    tail = np.flatnonzero(d * d > _NDTRI_BOUND)
    if tail.size:
        x[tail] = _ndtri_tail(q[tail])
    x = np.where(upper, -x, x)
    return np.where(regular, x, _ndtri_special(p))


def _ndtri_special(p: FloatArray) -> FloatArray:
    return np.where(p == 0.0, -_INF, np.where(p == 1.0, _INF, _NAN))


def _ndtri_central(d: FloatArray) -> FloatArray:
    """d (5/2 + P(r)/Q(r)), r = 0.425^2 - d^2 >= 0: positive coefficients, well conditioned.

    P/Q is at most a quarter of the sum, which scales its rounding errors down.
    """
    r = _NDTRI_BOUND - d * d
    return d * (_NDTRI_CONSTANT + _horner(_NDTRI_P, r) / _horner(_NDTRI_Q, r))


def _ndtri_tail(q: FloatArray) -> FloatArray:
    """x < 0 with Phi(x) = q < 0.075: a per-cell polynomial in sqrt(-log q), then Halley.

    The residual u = (Phi(x) - q)/phi(x) = M(-x) - q/phi(x) has an absolute error of a few
    2^-53 M(-x), which is below an ulp of x here; phi is kept as y 2^n so q/phi neither
    underflows nor loses bits for subnormal q.
    """
    position = (np.sqrt(-_log_kernel(q)) - _NDTRI_TAIL_START) * _NDTRI_TAIL_CELLS
    cell_floor = np.floor(position)
    x = _gathered_horner(_NDTRI_TAIL_COLUMNS, cell_floor.astype(np.int64), position - cell_floor)
    a = -x
    y, n = _gauss_parts(a, -1.0, _PDF_TABLE)
    u = _mills_nonnegative(a) - _scale(q, -n) / y
    return x - u / (1.0 + x * u * 0.5)
