"""Run one benchmark in a fresh process pinned to one core with single-threaded math libraries.

The thread-count variables must be set before NumPy (and BLAS, OpenMP, Numba) are first
imported, which is why every benchmark runs in its own interpreter.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = {
    "commitment": "strikechain.bench.commitment",
    "engine": "strikechain.bench.engine",
    "lab": "strikechain.bench.lab",
    "liquidation": "strikechain.bench.liquidation",
    "margin": "strikechain.bench.margin",
    "node": "strikechain.bench.node",
    "node-core": "strikechain.bench.node_core",
    "pricing": "strikechain.bench.pricing",
    "settlement": "strikechain.bench.settlement",
}
"""Benchmark name -> module exposing ``run() -> dict[str, float]``."""

_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
SINGLE_THREAD = dict.fromkeys(_THREAD_VARIABLES, "1")


def run_in_subprocess(name: str, out: str) -> int:
    """Run benchmark ``name`` in a child interpreter; return its exit status."""
    env = {**os.environ, **SINGLE_THREAD}
    command = [sys.executable, "-m", "strikechain.bench.runner", name, out]
    return subprocess.run(command, env=env, check=False).returncode


ALLOWED_CORES_VARIABLE = "STRIKECHAIN_BENCH_ALLOWED_CORES"
"""Set by the pinning to the cores the benchmark's process could use before (comma-separated):
what a benchmark that times several processes (the lab's sweep) may hand back to them. An
environment variable, not a module global: the runner runs as ``__main__``, so the benchmark
modules import another copy of this module."""


def allowed_cores() -> list[int]:
    """The cores this process could use before it was pinned (empty: it was not pinned)."""
    text = os.environ.get(ALLOWED_CORES_VARIABLE, "")
    return [int(core) for core in text.split(",") if core]


def _pin_to_one_core() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    os.environ[ALLOWED_CORES_VARIABLE] = ",".join(map(str, allowed))
    os.sched_setaffinity(0, {allowed[0]})
    return allowed[0]


def _context(core: int | None, seconds: float) -> dict[str, object]:
    import numpy as np
    import scipy

    from strikechain import _native

    return {
        "python": platform.python_version(),
        "engine": _native.mode(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "pinned_core": core,
        "threads": SINGLE_THREAD["OMP_NUM_THREADS"],
        "seconds": round(seconds, 2),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(name: str, out: str) -> None:
    """Child side: pin, run, write ``out/name.json`` and print the metrics."""
    core = _pin_to_one_core()
    module = importlib.import_module(BENCHMARKS[name])
    start = time.perf_counter()
    metrics = module.run()
    seconds = time.perf_counter() - start
    document = {"name": name, "metrics": metrics, "context": _context(core, seconds)}
    path = Path(out) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    width = max(len(key) for key in metrics)
    print(f"{name}: wrote {path}")
    for key, value in metrics.items():
        print(f"  {key:<{width}}  {value:.6g}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
