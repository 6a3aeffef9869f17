"""Time strikechain.pricing.detmath against NumPy/SciPy on 10^6 float64; print JSON.

Speed belongs to benchmarks, not tests. One command:

    .venv/bin/python tools/bench_detmath.py [--output results.json]

Each figure is the best of several runs, in ns per element, single thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.special as sc
from numpy.typing import NDArray

from strikechain.pricing import detmath

FloatArray = NDArray[np.float64]
SIZE = 1_000_000
REPEATS = 9
SQRT_HALF_PI = float(np.sqrt(np.pi / 2))
INV_SQRT_2PI = float(1 / np.sqrt(2 * np.pi))


def best_ns(function: Callable[[FloatArray], FloatArray], x: FloatArray) -> float:
    function(x)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function(x)
        times.append(time.perf_counter() - start)
    return round(min(times) / x.size * 1e9, 1)


def cases() -> list[
    tuple[str, Callable[[FloatArray], FloatArray], Callable[..., FloatArray], FloatArray]
]:
    rng = np.random.default_rng(0)
    wide = rng.uniform(-700.0, 700.0, SIZE)
    positive = np.exp(wide)
    z_positive = rng.uniform(0.0, 10.0, SIZE)
    z = rng.uniform(-8.0, 8.0, SIZE)
    return [
        ("exp", detmath.exp, np.exp, wide),
        ("expm1", detmath.expm1, np.expm1, wide),
        ("log", detmath.log, np.log, positive),
        ("log1p", detmath.log1p, np.log1p, positive),
        ("cbrt", detmath.cbrt, np.cbrt, wide),
        ("mills z in [0, 10] vs erfcx", detmath.mills, sc.erfcx, z_positive),
        ("mills z in [-8, 8] vs erfcx", detmath.mills, sc.erfcx, z),
        ("normal_pdf vs exp(-z*z/2)/sqrt(2pi)",
         detmath.normal_pdf, lambda v: np.exp(-v * v / 2) * INV_SQRT_2PI, z),
        ("ndtr", detmath.ndtr, sc.ndtr, z),
        ("ndtri", detmath.ndtri, sc.ndtri, rng.uniform(0.0, 1.0, SIZE)),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    results = [
        {"case": name, "detmath_ns": best_ns(ours, x), "reference_ns": best_ns(ref, x)}
        for name, ours, ref, x in cases()
    ]
    text = json.dumps({"size": SIZE, "results": results}, indent=1)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
