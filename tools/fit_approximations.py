"""Fit every coefficient of strikechain.pricing.detmath and write them as hex floats.

The deterministic math library may only use correctly rounded IEEE operations, so its
polynomials, rational functions and tables are the whole of its knowledge about exp, log,
cbrt, the Mills ratio and the inverse normal CDF. This script derives all of them from
mpmath at high precision (Chebyshev interpolation, which is within a small factor of the
minimax error for the smooth functions used here, and an iteratively reweighted rational
least-squares fit for the central inverse normal CDF), rounds them to double and writes
``src/strikechain/pricing/_detmath_coefficients.py``.

Rerun after changing a method or a degree::

    .venv/bin/python tools/fit_approximations.py          # rewrite the module
    .venv/bin/python tools/fit_approximations.py --check  # fail if the module is stale

The output depends only on mpmath's arbitrary-precision arithmetic, so it is reproducible.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias

import mpmath as mp

mp.mp.dps = 60

OUTPUT = Path(__file__).resolve().parents[1] / "src/strikechain/pricing/_detmath_coefficients.py"

Mpf: TypeAlias = Any  # mpmath is untyped; values are mp.mpf
SERIES_BELOW = mp.mpf(10) ** -25
LINE_LENGTH = 100
Func = Callable[[Mpf], Mpf]

# Layout constants shared with detmath.py (it reads them back from the generated module).
EXP_TABLE_BITS = 6  # 2^(j/64) table
EXP_POLY_DEGREE = 6  # expm1(r) ~ r + r^2 q(r), |r| <= ln2/128
EXPM1_SMALL_LIMIT = mp.mpf(1) / 16  # direct polynomial for |x| < 1/16
EXPM1_SMALL_DEGREE = 8  # degree of (expm1(x) - x)/x^2
LOG_TABLE_BITS = 9  # cells of width 2^-9 in the mantissa m in [1/2, 1)
LOG_INVC_BITS = 26  # 1/c rounded to 26 bits so that (m - c) * invc splits exactly
LOG_HI_GRID = -42  # log table and ln2 high parts are multiples of 2^-42
LOG_POLY_DEGREE = 4  # log1p(R) ~ R + R^2 q(R), q of degree 4
CBRT_DEGREE = 6  # initial cbrt(m), m in [1/2, 1]
MILLS_DEGREE = 5  # per-cell polynomial degree
MILLS_CELLS_PER_UNIT = 128  # cell width 1/128
MILLS_SPLIT = 32  # cells on [0, 32); beyond it a polynomial in 1/z^2
NDTR_SMALL_LIMIT = mp.mpf(1) / 16  # Phi(z) = 1/2 + z G(z^2) for |z| < 1/16
NDTR_SMALL_DEGREE = 5
NDTRI_CENTRAL = mp.mpf("0.425")  # |p - 1/2| <= 0.425: rational in (p - 1/2)^2
NDTRI_CENTRAL_DEGREE = 8  # numerator and denominator degree
NDTRI_CENTRAL_CONSTANT = mp.mpf(5) / 2  # x/d = 5/2 + P/Q
NDTRI_TAIL_START = mp.mpf(1)  # s = sqrt(-log p) >= 1 in the tail
NDTRI_TAIL_END = mp.mpf(28)
NDTRI_TAIL_CELLS_PER_UNIT = 2
NDTRI_TAIL_DEGREE = 5


def to_double(x: Mpf) -> float:
    """Round to the nearest double (mpmath rounds to nearest, ties to even)."""
    return float(mp.mpf(x))


def hex_of(x: Mpf | float) -> str:
    return to_double(mp.mpf(x)).hex()


def round_to_grid(x: Mpf, exponent: int) -> Mpf:
    """Round x to a multiple of 2^exponent (nearest)."""
    scale = mp.ldexp(1, -exponent)
    return mp.nint(x * scale) / scale


def round_to_bits(x: Mpf, bits: int) -> Mpf:
    """Round x to `bits` significant bits."""
    _, e = mp.frexp(x)
    return round_to_grid(x, int(e) - bits)


def split_hi_lo(x: Mpf) -> tuple[float, float]:
    hi = to_double(x)
    return hi, to_double(x - mp.mpf(hi))


def chebyshev_nodes(a: Mpf, b: Mpf, count: int) -> list[Mpf]:
    mid, half = (a + b) / 2, (b - a) / 2
    return [mid + half * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / count) for k in range(count)]


def poly_fit(f: Func, a: Mpf, b: Mpf, degree: int) -> list[Mpf]:
    """Monomial coefficients (lowest first) of the interpolant of f at Chebyshev nodes."""
    nodes = chebyshev_nodes(a, b, degree + 1)
    matrix = mp.matrix([[x**j for j in range(degree + 1)] for x in nodes])
    coefficients = mp.lu_solve(matrix, mp.matrix([f(x) for x in nodes]))
    return [coefficients[j] for j in range(degree + 1)]


def poly_eval(coefficients: Sequence[Mpf | float], x: Mpf) -> Mpf:
    acc = mp.mpf(0)
    for c in reversed(coefficients):
        acc = acc * x + mp.mpf(c)
    return acc


def max_relative_error(f: Func, approx: Func, a: Mpf, b: Mpf, samples: int = 64) -> float:
    worst = mp.mpf(0)
    for k in range(samples + 1):
        x = a + (b - a) * k / samples
        exact = f(x)
        if exact != 0:
            worst = max(worst, abs(approx(x) / exact - 1))
    return float(worst)


def rational_fit(f: Func, a: Mpf, b: Mpf, degree: int) -> tuple[list[Mpf], list[Mpf]]:
    """Near-minimax relative-error rational P/Q (Q(0) = 1) by reweighted least squares.

    Each pass solves the linearised problem min sum w (P - f Q)^2 / f^2 with the weights
    from the previous denominator (Loeb's iteration), then Lawson reweighting pushes the
    least-squares error towards equal ripple.
    """
    points = chebyshev_nodes(a, b, 12 * degree)
    values = [f(x) for x in points]
    denominator: list[Mpf] = [mp.mpf(1)] + [mp.mpf(0)] * degree
    lawson = [mp.mpf(1)] * len(points)
    numerator: list[Mpf] = []
    for iteration in range(40):
        rows, rhs = [], []
        for x, y, lw in zip(points, values, lawson, strict=True):
            weight = mp.sqrt(lw) / abs(y * poly_eval(denominator, x))
            rows.append(
                [weight * x**j for j in range(degree + 1)]
                + [-weight * y * x**j for j in range(1, degree + 1)]
            )
            rhs.append(weight * y)
        solution = mp.qr_solve(mp.matrix(rows), mp.matrix(rhs))[0]
        numerator = [solution[j] for j in range(degree + 1)]
        denominator = [mp.mpf(1)] + [solution[degree + j] for j in range(1, degree + 1)]
        errors = [
            abs(poly_eval(numerator, x) / poly_eval(denominator, x) / y - 1)
            for x, y in zip(points, values, strict=True)
        ]
        if iteration >= 10:
            lawson = [lw * e for lw, e in zip(lawson, errors, strict=True)]
            total = mp.fsum(lawson)
            lawson = [lw / total for lw in lawson]
    return numerator, denominator


# ----------------------------------------------------------------------------------------
# The functions, at high precision


def mills_mp(z: Mpf) -> Mpf:
    """M(z) = Phi(-z)/phi(z) = sqrt(pi/2) erfc(z/sqrt2) exp(z^2/2)."""
    return mp.sqrt(mp.pi / 2) * mp.erfc(z / mp.sqrt(2)) * mp.exp(z * z / 2)


def ndtri_mp(q: Mpf) -> Mpf:
    """Inverse standard normal CDF for 0 < q <= 1/2, by Newton's method on log Phi.

    log Phi is concave, so Newton converges from either side even deep in the tail.
    """
    x = -mp.sqrt(-2 * mp.log(q)) if q < mp.mpf("0.3") else mp.sqrt(2 * mp.pi) * (q - mp.mpf(1) / 2)
    log_q = mp.log(q)
    for _ in range(200):
        cdf = mp.erfc(-x / mp.sqrt(2)) / 2
        step = (mp.log(cdf) - log_q) * cdf / (mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi))
        x -= step
        if abs(step) < mp.mpf(10) ** (-mp.mp.dps + 8) * (1 + abs(x)):
            break
    return x


# ----------------------------------------------------------------------------------------
# Fits


def exp_tables() -> dict[str, list[float]]:
    size = 1 << EXP_TABLE_BITS
    scales = {"EXP": mp.mpf(1), "PDF": 1 / mp.sqrt(2 * mp.pi), "MILLS_NEG": mp.sqrt(2 * mp.pi)}
    tables: dict[str, list[float]] = {}
    for name, scale in scales.items():
        pairs = [split_hi_lo(scale * mp.power(2, mp.mpf(j) / size)) for j in range(size)]
        tables[f"{name}_TABLE_HI"] = [hi for hi, _ in pairs]
        tables[f"{name}_TABLE_LO"] = [lo for _, lo in pairs]
    return tables


def exp_constants() -> dict[str, float]:
    size = 1 << EXP_TABLE_BITS
    step = mp.log(2) / size
    # k * STEP_HI must be exact for |k| < 2^17: keep 53 - 17 = 36 significant bits.
    step_hi = round_to_bits(step, 36)
    return {
        "EXP_INV_STEP": to_double(1 / step),
        "EXP_STEP_HI": to_double(step_hi),
        "EXP_STEP_LO": to_double(step - step_hi),
    }


def exp_poly() -> list[float]:
    bound = mp.log(2) / (1 << (EXP_TABLE_BITS + 1)) * mp.mpf("1.001")
    coefficients = poly_fit(_expm1_quotient, -bound, bound, EXP_POLY_DEGREE - 2)
    report(
        "exp: exp(r) on |r| <= ln2/128",
        max_relative_error(
            mp.exp, lambda r: 1 + r + r * r * poly_eval(coefficients, r), -bound, bound
        ),
    )
    return [to_double(c) for c in coefficients]


def _expm1_quotient(r: Mpf) -> Mpf:
    if abs(r) < SERIES_BELOW:  # a Chebyshev node next to 0 would cancel catastrophically
        return mp.mpf(1) / 2 + r / 6 + r * r / 24
    return (mp.expm1(r) - r) / (r * r)


def _relerr_expm1(coefficients: Sequence[Mpf], bound: Mpf) -> float:
    return max_relative_error(
        mp.expm1, lambda r: r + r * r * poly_eval(coefficients, r), -bound, bound
    )


def expm1_small_poly() -> list[float]:
    bound = EXPM1_SMALL_LIMIT
    coefficients = poly_fit(_expm1_quotient, -bound, bound, EXPM1_SMALL_DEGREE)
    report("expm1: direct on |x| <= 1/16", _relerr_expm1(coefficients, bound))
    return [to_double(c) for c in coefficients]


def log_tables() -> tuple[dict[str, list[float]], dict[str, float]]:
    ln2_hi = round_to_grid(mp.log(2), LOG_HI_GRID)
    ln2_lo = to_double(mp.log(2) - ln2_hi)
    invc, t_hi, t_lo = [], [], []
    cells = 1 << LOG_TABLE_BITS
    for i in range(cells // 2 + 1):
        centre = mp.mpf(cells // 2 + i) / cells  # c = 1/2 + i/512
        inverse = round_to_bits(1 / centre, LOG_INVC_BITS)
        table = -mp.log(inverse)
        hi = round_to_grid(table, LOG_HI_GRID)
        lo = to_double(table - hi)
        if i == 0:  # c = 1/2: use exactly -(LN2_HI + LN2_LO) so that log(1+) cancels exactly
            hi, lo = -ln2_hi, -ln2_lo
        invc.append(to_double(inverse))
        t_hi.append(to_double(hi))
        t_lo.append(lo)
    tables = {"LOG_INVC": invc, "LOG_T_HI": t_hi, "LOG_T_LO": t_lo}
    return tables, {"LN2_HI": to_double(ln2_hi), "LN2_LO": ln2_lo}


def log_poly() -> list[float]:
    bound = mp.ldexp(1, -LOG_TABLE_BITS) * mp.mpf("1.0001")

    def quotient(r: Mpf) -> Mpf:
        if abs(r) < SERIES_BELOW:
            return -mp.mpf(1) / 2 + r / 3 - r * r / 4
        return (mp.log1p(r) - r) / (r * r)

    coefficients = poly_fit(quotient, -bound, bound, LOG_POLY_DEGREE)
    report(
        "log: log1p(R) on |R| <= 2^-9",
        max_relative_error(
            mp.log1p, lambda r: r + r * r * poly_eval(coefficients, r), -bound, bound
        ),
    )
    return [to_double(c) for c in coefficients]


def cbrt_poly() -> list[float]:
    def root(t: Mpf) -> Mpf:
        return mp.cbrt(t + mp.mpf(3) / 4)

    quarter = mp.mpf(1) / 4
    coefficients = poly_fit(root, -quarter, quarter, CBRT_DEGREE)
    report(
        "cbrt: initial m^(1/3) on [1/2, 1]",
        max_relative_error(root, lambda t: poly_eval(coefficients, t), -quarter, quarter),
    )
    return [to_double(c) for c in coefficients]


def mills_tables() -> list[list[float]]:
    """Per-cell polynomials P_i(s), s = u + 1/Z^2 with u in [0, 1) the position in cell i.

    Cells i < N (N = Z * cells per unit) hold Z * M(z) for z = (i + u) h, so dividing by the
    power of two Z is exact; cell N holds F(w) = z M(z) as a function of w = 1/z^2, the
    variable the code feeds it when z >= Z. One Horner loop serves both.
    """
    h = mp.mpf(1) / MILLS_CELLS_PER_UNIT
    split = mp.mpf(MILLS_SPLIT)
    offset = 1 / (split * split)
    cells = MILLS_SPLIT * MILLS_CELLS_PER_UNIT
    columns: list[list[float]] = [[] for _ in range(MILLS_DEGREE + 1)]
    worst = 0.0
    for i in range(cells):

        def cell(s: Mpf, i: int = i) -> Mpf:
            return split * mills_mp((i + s - offset) * h)

        coefficients = poly_fit(cell, offset, 1 + offset, MILLS_DEGREE)
        if i % 256 == 0:
            worst = max(
                worst,
                max_relative_error(cell, partial(poly_eval, coefficients), offset, 1 + offset, 16),
            )
        for k, c in enumerate(coefficients):
            columns[k].append(to_double(c))
    report("mills: cells (sampled)", worst)
    # F(0) = 1 exactly: fit (F(w) - 1)/w and keep the constant term exact.
    tail = [mp.mpf(1), *poly_fit(_mills_tail_quotient, mp.mpf(0), offset, MILLS_DEGREE - 1)]
    report(
        "mills: tail z >= 32",
        max_relative_error(_mills_tail, lambda w: poly_eval(tail, w), mp.mpf(0), offset),
    )
    for k, c in enumerate(tail):
        columns[k].append(to_double(c))
    return columns


def _mills_tail_quotient(w: Mpf) -> Mpf:
    return (_mills_tail(w) - 1) / w


def _mills_tail(w: Mpf) -> Mpf:
    if w == 0:
        return mp.mpf(1)
    z = 1 / mp.sqrt(w)
    return z * mills_mp(z)


def ndtr_small_poly() -> list[float]:
    """G(v) = (Phi(z) - 1/2)/z with v = z^2: Phi(0) is exactly 1/2 and Phi is odd about it."""

    def quotient(v: Mpf) -> Mpf:
        if v == 0:
            return 1 / mp.sqrt(2 * mp.pi)
        z = mp.sqrt(v)
        return (mp.ncdf(z) - mp.mpf(1) / 2) / z

    bound = NDTR_SMALL_LIMIT**2
    coefficients = poly_fit(quotient, mp.mpf(0), bound, NDTR_SMALL_DEGREE)
    report(
        "ndtr: (Phi(z) - 1/2)/z for |z| < 1/16",
        max_relative_error(quotient, lambda v: poly_eval(coefficients, v), mp.mpf(0), bound),
    )
    return [to_double(c) for c in coefficients]


def ndtri_central() -> dict[str, list[float]]:
    """x = d (5/2 + P(r)/Q(r)), d = p - 1/2, r = B - d^2 with B = fl(0.425^2).

    In r the coefficients of P and Q are all positive, so rounding them to double
    perturbs the quotient by only a few units of 2^-53; in d^2 they alternate and lose
    nine bits. Splitting off the exact 5/2 (x/d runs from 2.507 to 3.39) shrinks the
    rounding errors of the two Horner loops by a factor of 4 to 400.
    """
    bound = mp.mpf(to_double(NDTRI_CENTRAL**2))

    def quotient(r: Mpf) -> Mpf:
        v = bound - r
        if v <= 0:
            return mp.sqrt(2 * mp.pi) - NDTRI_CENTRAL_CONSTANT
        d = mp.sqrt(v)
        return -ndtri_mp(mp.mpf(1) / 2 - d) / d - NDTRI_CENTRAL_CONSTANT

    numerator, denominator = rational_fit(quotient, mp.mpf(0), bound, NDTRI_CENTRAL_DEGREE)
    p_double = [to_double(c) for c in numerator]
    q_double = [to_double(c) for c in denominator]
    report(
        "ndtri: central rational (rounded coefficients)",
        max_relative_error(
            quotient,
            lambda r: poly_eval(p_double, r) / poly_eval(q_double, r),
            mp.mpf(0),
            bound,
            256,
        ),
    )
    return {"NDTRI_CENTRAL_P": p_double, "NDTRI_CENTRAL_Q": q_double}


def ndtri_tail() -> list[list[float]]:
    """x(s) = Phi^-1(exp(-s^2)) on cells of width 1/2 in s; refined later by Halley."""
    h = mp.mpf(1) / NDTRI_TAIL_CELLS_PER_UNIT
    count = int((NDTRI_TAIL_END - NDTRI_TAIL_START) * NDTRI_TAIL_CELLS_PER_UNIT)
    columns: list[list[float]] = [[] for _ in range(NDTRI_TAIL_DEGREE + 1)]
    worst = 0.0
    for i in range(count):
        start = NDTRI_TAIL_START + i * h

        def cell(u: Mpf, start: Mpf = start) -> Mpf:
            return ndtri_mp(mp.exp(-((start + u * h) ** 2)))

        coefficients = poly_fit(cell, mp.mpf(0), mp.mpf(1), NDTRI_TAIL_DEGREE)
        if i % 8 == 0:
            worst = max(
                worst,
                max_relative_error(
                    cell, partial(poly_eval, coefficients), mp.mpf(0), mp.mpf(1), 16
                ),
            )
        for k, c in enumerate(coefficients):
            columns[k].append(to_double(c))
    report("ndtri: tail initial cells (sampled)", worst)
    return columns


def report(what: str, error: float) -> None:
    bits = float(mp.log(error, 2)) if error > 0 else float("-inf")
    print(f"{what:52s} max rel error 2^{bits:.1f}", file=sys.stderr)


# ----------------------------------------------------------------------------------------
# Output


def emit_table(name: str, values: Sequence[float]) -> str:
    """A table as implicitly concatenated strings of hex floats, three per line."""
    words = [float(v).hex() for v in values]
    single = f'{name} = "{" ".join(words)} "'
    if len(single) <= LINE_LENGTH:  # the form `ruff format` gives a short table
        return single + "\n"
    lines = [" ".join(words[k : k + 3]) + " " for k in range(0, len(words), 3)]
    body = "\n".join(f'    "{line}"' for line in lines)
    return f"{name} = (\n{body}\n)\n"


def emit_scalar(name: str, value: float) -> str:
    return f'{name} = "{float(value).hex()}"\n'


HEADER = '''"""Coefficient tables of strikechain.pricing.detmath, as hex floats.

GENERATED by tools/fit_approximations.py from mpmath; do not edit by hand. Regenerate with

    .venv/bin/python tools/fit_approximations.py

Each table is one string of whitespace-separated hex floats; scalars are single hex strings.
"""

'''


def layout() -> dict[str, int]:
    return {
        "EXP_TABLE_BITS": EXP_TABLE_BITS,
        "LOG_TABLE_BITS": LOG_TABLE_BITS,
        "MILLS_CELLS_PER_UNIT": MILLS_CELLS_PER_UNIT,
        "MILLS_SPLIT": MILLS_SPLIT,
        "MILLS_DEGREE": MILLS_DEGREE,
        "NDTRI_TAIL_DEGREE": NDTRI_TAIL_DEGREE,
        "NDTRI_TAIL_START": int(NDTRI_TAIL_START),
        "NDTRI_TAIL_CELLS_PER_UNIT": NDTRI_TAIL_CELLS_PER_UNIT,
    }


def build_module() -> str:
    scalars = [f"{name} = {value}\n" for name, value in layout().items()]
    scalars.append(emit_scalar("NDTRI_CENTRAL_BOUND", to_double(NDTRI_CENTRAL**2)))
    scalars += [emit_scalar(name, scalar) for name, scalar in exp_constants().items()]
    log, log_scalars = log_tables()
    scalars += [emit_scalar(name, scalar) for name, scalar in log_scalars.items()]
    tables: dict[str, Sequence[float]] = {}
    tables.update(exp_tables())
    tables["EXP_POLY"] = exp_poly()
    tables["EXPM1_SMALL_POLY"] = expm1_small_poly()
    tables.update(log)
    tables["LOG_POLY"] = log_poly()
    tables["CBRT_POLY"] = cbrt_poly()
    tables["CBRT_SCALE"] = [to_double(mp.cbrt(2)), to_double(mp.cbrt(4))]
    for k, column in enumerate(mills_tables()):
        tables[f"MILLS_C{k}"] = column
    tables["NDTR_SMALL_POLY"] = ndtr_small_poly()
    tables.update(ndtri_central())
    for k, column in enumerate(ndtri_tail()):
        tables[f"NDTRI_TAIL_C{k}"] = column
    blocks = ["".join(scalars)] + [emit_table(name, values) for name, values in tables.items()]
    return HEADER + "\n".join(blocks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = build_module()
    if args.check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: rerun tools/fit_approximations.py", file=sys.stderr)
            return 1
        print(f"{OUTPUT} is up to date", file=sys.stderr)
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
