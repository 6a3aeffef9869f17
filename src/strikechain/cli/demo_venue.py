"""The venue part of ``strikechain demo``: a seeded engine session, and what it did.

Runs :func:`strikechain.sim.run_session` on a short scripted session (BTC and ETH perpetuals and
a BTC option chain, 06:00 to 08:05 UTC, so it crosses two funding times and the 08:00 expiry)
through the runtime into a SQLite block log, with every invariant checked after every block, and
prints per-market trades, volume, fees and open interest, funding, option settlement, the
oracle's breaker and the liquidation queue, rejections by code, and the conservation of money;
then what the block log proves (:mod:`strikechain.cli.demo_commitment`).
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from strikechain.cli.demo_commitment import ROOT_EVERY, SNAPSHOT_EVERY, run_commitment_demo
from strikechain.engine.calendar import civil_from_ns
from strikechain.runtime import SqliteLog, Sync
from strikechain.sim import ScriptedSession, SessionParams, SessionSummary, run_session

DEMO_TRANSACTIONS_PER_BLOCK = 60
DEMO_TRADERS = 36


def demo_params(seed: int, blocks: int) -> SessionParams:
    return SessionParams(
        seed=seed,
        blocks=blocks,
        transactions_per_block=DEMO_TRANSACTIONS_PER_BLOCK,
        traders=DEMO_TRADERS,
    )


def run_venue_demo(
    console: Console, seed: int, blocks: int, log_path: Path
) -> tuple[SessionSummary, bool]:
    """Run the session through the runtime into a SQLite block log at ``log_path`` (which must
    not exist), print what it did, then what its block log proves; the summary, and whether the
    log's checks passed."""
    session = ScriptedSession(demo_params(seed, blocks))
    started = time.perf_counter()
    with SqliteLog(log_path, sync=Sync.NORMAL) as log:
        summary = run_session(
            session,
            check_every_block=True,
            log=log,
            root_every=ROOT_EVERY,
            snapshot_every=SNAPSHOT_EVERY,
        )
    elapsed = time.perf_counter() - started
    console.rule(
        f"[bold]strikechain demo[/] - a seeded venue session: BTC and ETH perpetuals, a BTC "
        f"option chain expiring 08:00 UTC, seed {seed}"
    )
    _session_table(console, summary, elapsed)
    _market_table(console, session, summary)
    _funding_table(console, summary, session)
    _settlement_table(console, summary)
    _oracle_table(console, summary)
    _rejection_table(console, summary)
    _conservation_table(console, summary)
    return summary, run_commitment_demo(console, log_path)


def _usdc(minor: int, places: int = 2) -> str:
    """Minor units as USDC with thousands separators (exact: through Decimal)."""
    return f"{Decimal(minor).scaleb(-6):,.{places}f}"


def _clock(timestamp_ns: int) -> str:
    t = civil_from_ns(timestamp_ns)
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def _session_table(console: Console, summary: SessionSummary, elapsed: float) -> None:
    table = Table(title="Session", show_header=False, box=box.SIMPLE)
    table.add_row(
        "blocks",
        f"{summary.blocks:,} from {_clock(summary.first_block_ns)} to "
        f"{_clock(summary.last_block_ns)} UTC (bursts a second apart)",
    )
    table.add_row(
        "transactions",
        f"{summary.transactions:,}: {summary.accepted:,} accepted, {summary.rejected:,} rejected",
    )
    table.add_row("fills", f"{summary.fills:,}, {_usdc(summary.volume_quote, 0)} USDC traded")
    table.add_row(
        "invariants",
        f"all checked after each of the {summary.blocks:,} blocks: passed "
        f"({summary.transactions / elapsed:,.0f} transactions/s with the checks)",
    )
    console.print(table)


def _market_table(console: Console, session: ScriptedSession, summary: SessionSummary) -> None:
    table = Table(title="Markets (USDC; sizes in the underlying)", box=box.SIMPLE_HEAD)
    for column in ("instrument", "trades", "size", "volume", "fees", "rebates", "open interest"):
        table.add_column(column, justify="left" if column == "instrument" else "right")
    lots = {i.name: i.lot_size * i.contract_size for i in session.instruments}
    for market in summary.instruments:
        if market.name == session.options[0].name:
            table.add_section()
        unit = lots[market.name]
        table.add_row(
            market.name,
            f"{market.fills:,}",
            f"{market.volume_lots * unit:,}",
            _usdc(market.volume_quote, 0),
            _usdc(market.fees),
            _usdc(market.rebates),
            f"{market.open_interest_lots * unit:,}"
            if market.open_interest_lots or market.settlement is None
            else "settled",
        )
    console.print(table)


def _funding_table(console: Console, summary: SessionSummary, session: ScriptedSession) -> None:
    table = Table(
        title="Funding (hourly: longs and shorts pay each other; rounding dust to the "
        "dust account)",
        box=box.SIMPLE_HEAD,
    )
    for column in ("perpetual", "fundings", "paid (USDC)", "dust (minor units)"):
        table.add_column(column, justify="left" if column == "perpetual" else "right")
    for perp in session.perps.values():
        market = summary.instrument(perp.name)
        table.add_row(
            perp.name, f"{market.fundings}", _usdc(market.funding_paid, 6), f"{market.funding_dust}"
        )
    console.print(table)


def _settlement_table(console: Console, summary: SessionSummary) -> None:
    table = Table(
        title="Option settlement at 08:00 (cash, against the average index of 07:30 to 08:00)",
        box=box.SIMPLE_HEAD,
    )
    for column in ("option", "price", "payout/lot", "lots", "paid", "received", "dust (minor)"):
        table.add_column(column, justify="left" if column == "option" else "right")
    for name, s in summary.settlements.items():
        table.add_row(
            name,
            _usdc(s.price),
            _usdc(s.payout_per_lot, 6),
            f"{s.lots:,}",
            _usdc(s.paid),
            _usdc(s.received),
            f"{s.dust}",
        )
    console.print(table)


def _oracle_table(console: Console, summary: SessionSummary) -> None:
    underlyings = ("BTC", "ETH")
    table = Table(title="Oracle circuit breaker", box=box.SIMPLE_HEAD)
    table.add_column("")
    for underlying in underlyings:
        table.add_column(underlying, justify="right")
    opened, closed = summary.breaker_opened, summary.breaker_closed
    table.add_row("breaker openings", *(f"{opened.get(u, 0)}" for u in underlyings))
    table.add_row(
        "breaker closings (the first: the first index)",
        *(f"{closed.get(u, 0)}" for u in underlyings),
    )
    console.print(table)
    reasons = ", ".join(f"{reason} x{count}" for reason, count in summary.breaker_reasons.items())
    console.print(f"  breaker opened for: {reasons}")
    lane = summary.liquidations
    console.print(
        f"  liquidation queue: {lane.queued} entries, {lane.left} left again, "
        f"{summary.liquidation_queue_end} at the end (members may only reduce risk)"
    )
    console.print(
        f"  liquidation lane: {lane.orders} IOC orders sold {lane.lots_to_book:,} lots into the "
        f"book, the backstop took {lane.backstop_lots:,}, fees {_usdc(lane.fees)} USDC to the "
        f"insurance fund; bad debt {_usdc(lane.bad_debt)} USDC ({_usdc(lane.insurance_paid)} "
        f"paid by the fund, {lane.deleveraged_lots:,} lots auto-deleveraged); stress mode "
        f"{lane.stress_episodes} times\n"
    )


def _rejection_table(console: Console, summary: SessionSummary) -> None:
    table = Table(title="Rejections by code", box=box.SIMPLE_HEAD)
    table.add_column("code")
    table.add_column("count", justify="right")
    for code, count in summary.rejected_by_code.items():
        table.add_row(code, f"{count:,}")
    console.print(table)


def _conservation_table(console: Console, summary: SessionSummary) -> None:
    money = summary.conservation
    table = Table(title="Conservation of money (USDC)", show_header=False, box=box.SIMPLE)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("deposits", _usdc(money.deposits, 6))
    table.add_row("- withdrawals", _usdc(money.withdrawals, 6))
    table.add_row("= net deposits", _usdc(money.net_deposits, 6))
    table.add_section()
    table.add_row("sum of sub-ledger collateral", _usdc(money.cash, 6))
    table.add_row("+ fee pool", _usdc(money.fee_pool, 6))
    table.add_row("+ insurance fund", _usdc(money.insurance_fund, 6))
    table.add_row("+ dust account", _usdc(money.dust, 6))
    table.add_row("= held", _usdc(money.held, 6))
    table.add_section()
    verdict = "[green]exact[/]" if money.exact else "[bold red]VIOLATED[/]"
    table.add_row(
        "held - net deposits", f"{money.held - money.net_deposits} minor units: {verdict}"
    )
    console.print(table)
