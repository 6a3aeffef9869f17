"""The demo's lab part: ``scenarios/crash.toml`` under two block-production settings, side by side.

The same crash (BTC -40% in an hour while blocks congest, a hundred agents, the same seed) runs
twice, in two processes at once, changing only how blocks are made:

- a **rollup sequencer** cutting a block every 250 ms (the scenario as written);
- a **validator set**: four CometBFT-style validators 100 ms apart, which makes blocks about
  1.3 s apart and final when they commit.

It prints what that one change did to traders (slippage, inclusion latency), to market makers
(markouts, adverse selection), to liquidations (delay, bad debt) and to the oracle (index error),
what settling on chain cost (batches, the delay until a block's state is final on chain, posted
bytes and gas per trade; the venue settles on the embedded EVM, whose execution gas is
understated: ``bench settlement`` publishes anvil's), and the run's scale.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from strikechain.sim.settings import SETTINGS, run_setting

ROWS: tuple[tuple[str, str, str], ...] = (
    ("blocks", "block_interval_ms_p50", "block interval p50 (ms)"),
    ("blocks", "finality_ms_p50", "finality p50 (ms)"),
    ("blocks", "inclusion_latency_ms_p50", "order inclusion p50 (ms)"),
    ("blocks", "inclusion_latency_ms_p99", "order inclusion p99 (ms)"),
    ("traders", "slippage_bps_mean", "taker slippage vs reference (bps)"),
    ("traders", "slippage_bps_p99", "taker slippage p99 (bps)"),
    ("traders", "effective_spread_bps", "effective spread (bps)"),
    ("makers", "mm_markout_1s_bps", "maker markout 1 s (bps)"),
    ("makers", "mm_markout_60s_bps", "maker markout 60 s (bps)"),
    ("makers", "mm_adverse_selection_usdc", "maker adverse selection (USDC)"),
    ("liquidations", "liquidations_count", "sub-ledgers liquidated"),
    ("liquidations", "liquidation_delay_ms_p50", "liquidation delay p50 (ms)"),
    ("liquidations", "liquidation_delay_ms_p99", "liquidation delay p99 (ms)"),
    ("liquidations", "bad_debt_usdc", "bad debt (USDC)"),
    ("liquidations", "insurance_fund_end_usdc", "insurance fund at the end (USDC)"),
    ("oracle", "index_error_bps_mean", "index error vs reference (bps)"),
    ("settlement", "settlement_batches", "batches committed on chain"),
    ("settlement", "settlement_latency_s_p50", "block to final on chain p50 (s)"),
    ("settlement", "settlement_bytes_per_trade", "posted bytes per trade"),
    ("settlement", "settlement_gas_per_trade", "chain gas per trade (embedded EVM)"),
)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}"


def run_lab_demo(console: Console, seed: int, duration_s: float | None = None) -> bool:
    """Run both settings at once and print the comparison; True if both ran."""
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_setting, name, seed, duration_s) for name in SETTINGS}
        results = {name: future.result() for name, future in futures.items()}
    wall = time.perf_counter() - started
    first = results["sequencer"]
    hours = first["simulated_s"] / 3600
    console.rule(
        f"[bold]strikechain demo[/] - scenarios/crash.toml (BTC -40% in an hour, congested "
        f"blocks), seed {seed}, under two block-production settings"
    )
    console.print(
        f"  scale: {first['agents']} agents, {first['instruments']} instrument(s), "
        f"{hours:.2f} simulated hours per run, every block through the engine; "
        f"{wall:.0f} s wall for both runs in parallel"
    )
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("")
    table.add_column("")
    for label in SETTINGS.values():
        table.add_column(label, justify="right")
    for group, key, label in ROWS:
        table.add_row(group, label, *(_cell(results[n]["metrics"].get(key)) for n in SETTINGS))
    table.add_section()
    table.add_row(
        "run", "blocks", *(_cell(results[n]["metrics"].get("blocks_count")) for n in SETTINGS)
    )
    table.add_row("run", "wall time (s)", *(f"{results[n]['wall_s']:.1f}" for n in SETTINGS))
    console.print(table)
    for line in _findings(results["sequencer"]["metrics"], results["validators"]["metrics"]):
        console.print(f"  {line}")
    console.print()
    return True


FINDINGS: tuple[tuple[str, str], ...] = (
    ("liquidation_delay_ms_p50", "liquidations act {ratio:.1f}x later"),
    ("inclusion_latency_ms_p50", "orders wait {ratio:.1f}x longer for a block"),
    ("effective_spread_bps", "the effective spread is {ratio:.1f}x"),
    ("index_error_bps_mean", "the index strays {ratio:.1f}x as far from the reference"),
)


def _findings(fast: dict[str, Any], slow: dict[str, Any]) -> list[str]:
    """What the slower block production changed, in words, from the numbers above."""
    lines = []
    for key, text in FINDINGS:
        a, b = fast.get(key), slow.get(key)
        if isinstance(a, int | float) and isinstance(b, int | float) and a and not math.isnan(a):
            lines.append(f"with the validator set, {text.format(ratio=b / a)}")
    markouts = (fast.get("mm_markout_60s_bps"), slow.get("mm_markout_60s_bps"))
    if all(isinstance(m, int | float) and not math.isnan(m) for m in markouts):
        lines.append(
            f"makers' 60 s markouts: {markouts[0]:+.1f} bps with the sequencer, "
            f"{markouts[1]:+.1f} bps with the validators; fewer blocks a second also carry "
            f"fewer transactions, so the validator set trades less in the congested hour"
        )
    return lines
