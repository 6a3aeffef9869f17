"""Write tests/golden/detmath.json: inputs and outputs of strikechain.pricing.detmath as hex.

The golden file pins the exact bits of every deterministic function; the tests compare
against it bit for bit, in this process and in a subprocess with NumPy's SIMD targets
disabled. Regenerate only after a deliberate change of method or coefficients, and say so
in the commit:

    .venv/bin/python tools/make_detmath_golden.py
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from strikechain.pricing import detmath

OUTPUT = Path(__file__).resolve().parents[1] / "tests/golden/detmath.json"
SEED = 20240611
RANDOM_POINTS = 40

Function = Callable[[NDArray[np.float64]], NDArray[np.float64]]

SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 2.2250738585072014e-308]


def domains(rng: np.random.Generator) -> dict[str, tuple[Function, list[float]]]:
    """Per function: edge points plus seeded random points across its domain."""

    def logu(low: float, high: float) -> list[float]:
        return [float(v) for v in np.exp(rng.uniform(np.log(low), np.log(high), RANDOM_POINTS))]

    def uniform(low: float, high: float) -> list[float]:
        return [float(v) for v in rng.uniform(low, high, RANDOM_POINTS)]

    return {
        "exp": (detmath.exp, join([1.0, 709.78, 709.79, -745.13, -745.14], uniform(-746, 710))),
        "expm1": (
            detmath.expm1,
            join([1e-300, -1e-300, 0.0625, -0.0625, 40.0], uniform(-50, 710), uniform(-0.1, 0.1)),
        ),
        "log": (
            detmath.log,
            join([0.5, 1.0 + 2.0**-52, 1.0 - 2.0**-53], logu(5e-324, 1e308), uniform(0.99, 1.01)),
        ),
        "log1p": (
            detmath.log1p,
            join([-1.0, -0.5, -1e-17, 2.0**-10, -2.0], logu(1e-300, 1e300), uniform(-1.0, 1.0)),
        ),
        "cbrt": (detmath.cbrt, join([8.0, -27.0, 1e-310], logu(5e-324, 1e308), uniform(-9, 9))),
        "mills": (
            detmath.mills,
            join([32.0, 31.999999999999996, 1e300, -38.0], uniform(0, 40), logu(1e-6, 1e8))
            + uniform(-37.0, 0.0),
        ),
        "normal_pdf": (detmath.normal_pdf, join([1.0, 38.6, -38.6], uniform(-40.0, 40.0))),
        "ndtr": (detmath.ndtr, join([-38.4, -38.5, 8.3], uniform(-39, 9), uniform(-3, 3))),
        "ndtri": (
            detmath.ndtri,
            join([1e-300, 1.0 - 2.0**-53, 0.075, 0.925], uniform(0, 1), logu(1e-320, 0.5))
            + [1.0 - p for p in logu(2e-16, 0.5)],
        ),
    }


def join(*parts: list[float]) -> list[float]:
    return [value for part in parts for value in part]


def build() -> dict[str, object]:
    rng = np.random.default_rng(SEED)
    table: dict[str, list[list[str]]] = {}
    for name, (function, points) in domains(rng).items():
        inputs = np.array(points + SPECIALS, dtype=np.float64)
        outputs = function(inputs)
        table[name] = [
            [float(x).hex(), float(y).hex()] for x, y in zip(inputs, outputs, strict=True)
        ]
    return {
        "about": "strikechain.pricing.detmath golden vectors [input, output] as float.hex(); "
        "written by tools/make_detmath_golden.py",
        "functions": table,
    }


def main() -> int:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
