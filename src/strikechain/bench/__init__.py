"""Benchmarks: ``strikechain bench NAME`` runs one on one core and writes its metrics as JSON.

Each benchmark module exposes ``run() -> dict[str, float]`` and measures strikechain beside the
reference the issue names, in the same process and run, so the ratio is meaningful on any
machine. Results go to ``benchmarks/results/NAME.json`` as ``{"name", "metrics", "context"}``;
they stay out of git because the numbers depend on the machine.
"""
