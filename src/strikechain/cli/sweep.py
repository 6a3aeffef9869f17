"""``strikechain sweep SWEEP``: a scenario over a grid of parameters x designs x seeds, compared.

Loads the sweep (:func:`~strikechain.sim.sweep.load_sweep`: the file, its scenario and every
override checked, each design at each grid point built into a run) before anything runs, so a
bad file fails at once (``error: CODE: message``, status 2, from the command). Then runs every
run with a progress bar (runs done, on stderr) in ``--workers`` local processes, or on the Dask
scheduler at ``--address``; prints per metric and grid point each design's mean over the seeds
with its 95% confidence interval and each design's verdict against the baseline; writes the
sweep's folder (:func:`~strikechain.sim.sweep_report.write_sweep_report`) and prints its path.
``--quiet`` prints only that path.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from strikechain.sim.report import format_metric
from strikechain.sim.sweep import (
    SweepResult,
    SweepSpec,
    describe_point,
    load_sweep,
    run_sweep,
)
from strikechain.sim.sweep_report import write_sweep_report

RUNS_FOLDER = Path("runs")


def default_out(path: Path) -> Path:
    """Where a sweep's folder goes without ``--out``: ``runs/<the sweep file's stem>``."""
    return RUNS_FOLDER / path.stem


def prepare(path: Path) -> SweepSpec:
    """The sweep at ``path``, checked; raises :class:`~strikechain.sim.sweep.SweepError` for a
    sweep that cannot run."""
    return load_sweep(path)


def execute(spec: SweepSpec, *, workers: int, address: str | None, quiet: bool) -> SweepResult:
    """Run every run of ``spec`` with a progress bar in runs on stderr."""
    where = f"on {address}" if address else f"in {workers} local processes"
    progress = Progress(
        TextColumn(f"[bold]sweeping[/] {where}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
    )
    with progress:
        task = progress.add_task("sweep", total=len(spec.tasks()))
        return run_sweep(
            spec,
            workers=workers,
            address=address,
            progress=lambda done, _: progress.update(task, completed=done),
        )


def _interval(record: dict[str, float]) -> str:
    if record["n"] < 2:
        return format_metric(record["mean"])
    low, high = format_metric(record["ci_low"]), format_metric(record["ci_high"])
    return f"{format_metric(record['mean'])} [{low}, {high}]"


def summary_table(result: SweepResult) -> Table:
    """Per metric and grid point: each design's mean [95% interval], and each other design's
    mean difference from the baseline with the verdict."""
    spec = result.spec
    designs = [design.name for design in spec.designs]
    others = [name for name in designs if name != spec.baseline]
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("metric")
    table.add_column("grid point")
    for name in designs:
        table.add_column(name, justify="right")
    for name in others:
        table.add_column(f"{name} - {spec.baseline}")
    names = [parameter.name for parameter in spec.parameters]
    summary = {
        (row["design"], tuple(row[n] for n in names), row["metric"]): row
        for row in result.summary.to_dict("records")
    }
    comparisons = {
        (row["design"], tuple(row[n] for n in names), row["metric"]): row
        for row in result.comparisons.to_dict("records")
    }
    for metric in spec.metrics:
        for point in spec.points():
            cells = [_interval(summary[(name, point, metric)]) for name in designs]
            for name in others:
                row = comparisons[(name, point, metric)]
                cells.append(f"{format_metric(row['difference_mean'])}: {row['verdict']}")
            table.add_row(metric, describe_point(spec.parameters, point), *cells)
        table.add_section()
    return table


def run_sweep_command(
    path: Path,
    spec: SweepSpec,
    *,
    workers: int,
    address: str | None,
    out: Path,
    quiet: bool,
    console: Console | None = None,
) -> SweepResult:
    """Run the loaded ``spec``; print its summary (unless ``quiet``) and write its folder."""
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    result = execute(spec, workers=workers, address=address, quiet=quiet)
    folder = write_sweep_report(result, out)["report"].parent
    if not quiet:
        points = len(spec.points())
        console.print(
            f"[bold]{path.name}[/bold]: {len(result.runs):,} runs of "
            f"{spec.scenario_path.name} ({len(spec.designs)} designs x {points} grid points x "
            f"{len(spec.seeds)} seeds), {result.wall_s:.1f} s wall; means over seeds "
            f"[95% interval]",
            highlight=False,
        )
        console.print(summary_table(result))
    console.print(f"sweep folder: {folder}", highlight=False, soft_wrap=True)
    return result
