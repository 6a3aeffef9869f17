"""The demo's crash part: the scripted crash (:mod:`strikechain.sim.crash`) run twice, with
dynamic margin off and on, side by side: how much of the loss landed on someone other than the
traders who took it, and which part of the liquidation path carried it."""

from __future__ import annotations

import time
from decimal import Decimal

from rich import box
from rich.console import Console
from rich.table import Table

from strikechain.sim.crash import CrashParams, CrashReport, run_crash


def _usdc(minor: int) -> str:
    return f"{Decimal(minor).scaleb(-6):,.2f}"


def run_crash_demo(console: Console) -> bool:
    """Print the comparison; True if dynamic margin lowered the bad debt."""
    params = CrashParams()
    started = time.perf_counter()
    off = run_crash(CrashParams(dynamic=False))
    on = run_crash(CrashParams(dynamic=True))
    elapsed = time.perf_counter() - started
    console.rule(
        f"[bold]The crash[/]: {params.traders} longs at {params.leverage}x, a volatile minute, "
        f"then {-params.crash_ppm / 10_000:.0f}% in {params.crash_blocks} s into a thin book"
    )
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("")
    table.add_column("dynamic margin off", justify="right")
    table.add_column("dynamic margin on", justify="right")
    rows: list[tuple[str, object]] = [
        ("peak margin multiplier", lambda r: f"{r.peak_multiplier_ppm / 1e6:.2f}x"),
        ("liquidation queue entries", lambda r: f"{r.liquidations.queued:,}"),
        ("lots sold into the book by the lane", lambda r: f"{r.liquidations.lots_to_book:,}"),
        ("liquidation fees to the fund (USDC)", lambda r: _usdc(r.liquidations.fees)),
        ("deficits paid by the insurance fund", lambda r: _usdc(r.liquidations.insurance_paid)),
        ("deficits beyond the fund", lambda r: _usdc(r.liquidations.unpaid_by_fund)),
        ("lots auto-deleveraged", lambda r: f"{r.liquidations.deleveraged_lots:,}"),
        ("socialized to ADL counterparties", lambda r: _usdc(r.liquidations.socialized)),
        ("[bold]bad debt (USDC)[/]", lambda r: f"[bold]{_usdc(r.liquidations.bad_debt)}[/]"),
    ]
    for label, cell in rows:
        table.add_row(label, cell(off), cell(on))  # type: ignore[operator]
    console.print(table)
    lower = _lower(off, on)
    verdict = "[green]lower[/]" if lower else "[bold red]NOT lower[/]"
    console.print(
        f"  bad debt with dynamic margin: {verdict}; every invariant checked after each of the "
        f"{off.blocks + on.blocks} blocks ({elapsed:.1f} s)\n"
    )
    return lower


def _lower(off: CrashReport, on: CrashReport) -> bool:
    return on.liquidations.bad_debt < off.liquidations.bad_debt
