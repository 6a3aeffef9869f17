"""``strikechain simulate SCENARIO``: run a lab scenario, print its key metrics, keep its run.

Loads the scenario (:func:`~strikechain.sim.scenario.load_scenario`, ``--seed`` overriding
``run.seed``) and builds its run before anything is simulated, so a bad scenario fails at once
(``error: CODE: message``, status 2, from the command). Then simulates it with a progress bar in
virtual time (on stderr), prints the key metrics grouped as the report groups them
(:data:`SUMMARY`), and with ``--out`` writes the run folder
(:func:`~strikechain.sim.report.write_run`) and prints its path. ``--quiet`` prints only that
path.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from strikechain.sim.report import format_metric, write_run
from strikechain.sim.run import Run, RunResult
from strikechain.sim.scenario import load_scenario

SUMMARY: Final = {
    "trading": ("slippage_bps_mean", "slippage_bps_p99", "effective_spread_bps", "slippage_fills"),
    "market makers": (
        "mm_markout_1s_bps",
        "mm_markout_10s_bps",
        "mm_markout_60s_bps",
        "mm_markout_60s_usdc",
        "mm_volume_usdc",
        "mm_fills",
    ),
    "liquidations": (
        "liquidations_count",
        "liquidated_notional_usdc",
        "liquidation_delay_ms_p99",
        "bad_debt_usdc",
        "insurance_fund_min_usdc",
        "insurance_fund_end_usdc",
    ),
    "blocks & latency": (
        "blocks_count",
        "throughput_tx_per_s",
        "block_interval_ms_p50",
        "block_interval_ms_p99",
        "finality_ms_p99",
        "block_utilization_mean",
        "inclusion_latency_ms_p50",
        "inclusion_latency_ms_p99",
        "ack_latency_ms_p50",
        "runtime_rejections_count",
        "engine_rejections_count",
    ),
    "oracle": ("index_error_bps_mean", "index_error_bps_max"),
    "state": ("state_accounts", "state_subledgers", "state_open_orders", "state_snapshot_bytes"),
}
"""The key metrics the command prints, by group (every metric is in ``metrics.json`` and the
report)."""


def prepare(path: Path, seed: int | None) -> Run:
    """The scenario at ``path`` built into a run; raises
    :class:`~strikechain.sim.scenario.ScenarioError` for a scenario that cannot run."""
    return Run(load_scenario(path, seed=seed))


def execute(run: Run, *, quiet: bool) -> RunResult:
    """Simulate ``run``'s whole duration, with a progress bar in virtual seconds on stderr."""
    total_s = run.scenario.run.duration_s
    progress = Progress(
        TextColumn("[bold]simulating"),
        BarColumn(),
        TextColumn("{task.fields[virtual]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
    )

    def virtual(fraction: float) -> str:
        return f"{fraction * total_s:,.0f} / {total_s:,.0f} s virtual"

    with progress:
        task = progress.add_task("simulate", total=1.0, virtual=virtual(0.0))
        return run.execute(
            lambda fraction: progress.update(task, completed=fraction, virtual=virtual(fraction))
        )


def summary_table(metrics: Mapping[str, float | int]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("group", style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for group, keys in SUMMARY.items():
        present = [key for key in keys if key in metrics]
        for number, key in enumerate(present):
            table.add_row(group if number == 0 else "", key, format_metric(metrics[key]))
        if present:
            table.add_section()
    return table


def run_simulate(
    path: Path, run: Run, *, out: Path | None, quiet: bool, console: Console | None = None
) -> RunResult:
    """Simulate the prepared ``run``; print its summary (unless ``quiet``) and write its run
    folder to ``out`` (if given)."""
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    started = time.perf_counter()
    result = execute(run, quiet=quiet)
    wall_s = time.perf_counter() - started
    folder = None if out is None else write_run(result, out, source=path)["report"].parent
    if not quiet:
        section = result.scenario.run
        console.print(
            f"[bold]{path.name}[/bold]: seed {section.seed}, {section.duration_s:g} s simulated "
            f"after a {section.warmup_s:g} s warm-up; {len(run.members):,} agents, "
            f"{result.events:,} kernel events, {wall_s:.1f} s wall",
            highlight=False,
        )
        console.print(summary_table(result.metrics))
    if folder is not None:
        console.print(f"run folder: {folder}", highlight=False, soft_wrap=True)
    return result
