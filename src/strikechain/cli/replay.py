"""``strikechain replay LOG``: rebuild the venue from a block log and check every digest and root.

Opens a SQLite block log (written by the runtime: a node, the lab, ``strikechain demo --log``),
builds the engine from its genesis record (or restores its latest snapshot with
``--from-snapshot``), re-applies every block from its canonical bytes and compares each
block's chained digest and every recorded state root (:func:`strikechain.runtime.replay`).
Prints what was checked, or the first block that differs and how. Exit status: 0 when everything
matches, 1 when a block differs, 2 when the file is not a block log.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from strikechain.engine.codec import CodecError
from strikechain.runtime import LogError, ReplayReport, SqliteLog, Sync, replay


class ReplayInputError(Exception):
    """The path is not a readable block log."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def replay_log(path: Path, *, from_snapshot: bool) -> tuple[ReplayReport, int]:
    """Replay the log at ``path``; the report and the log's last height."""
    if not path.is_file():
        raise ReplayInputError("LOG_NOT_FOUND", f"{path} is not a file")
    try:
        with SqliteLog(path, sync=Sync.NORMAL) as log:
            return replay(log, from_snapshot=from_snapshot), log.last_height()
    except sqlite3.DatabaseError as error:
        raise ReplayInputError("NOT_A_BLOCK_LOG", f"{path}: {error}") from error
    except (LogError, CodecError) as error:
        raise ReplayInputError("NOT_A_BLOCK_LOG", f"{path}: {error}") from error


def report_json(report: ReplayReport, last_height: int) -> str:
    found = report.mismatch
    return json.dumps(
        {
            "ok": report.ok,
            "last_height": last_height,
            "start_height": report.start_height,
            "end_height": report.end_height,
            "blocks": report.blocks,
            "transactions": report.transactions,
            "digests_checked": report.digests_checked,
            "roots_checked": report.roots_checked,
            "seconds": report.seconds,
            "mismatch": None
            if found is None
            else {
                "height": found.height,
                "field": found.field,
                "recorded": found.recorded.hex(),
                "replayed": found.replayed.hex(),
                "message": found.message,
            },
        }
    )


def render(console: Console, path: Path, report: ReplayReport, last_height: int) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_header=False, title=f"replay of {path}")
    table.add_column(style="bold")
    table.add_column()
    start = "genesis" if report.start_height == 0 else f"snapshot at block {report.start_height:,}"
    rate = report.blocks / report.seconds if report.seconds > 0 else 0.0
    table.add_row("log", f"{last_height:,} blocks")
    table.add_row("rebuilt from", start)
    table.add_row(
        "replayed",
        f"{report.blocks:,} blocks, {report.transactions:,} transactions in "
        f"{report.seconds:.2f} s ({rate:,.0f} blocks/s)",
    )
    table.add_row(
        "checked", f"{report.digests_checked:,} block digests, {report.roots_checked:,} state roots"
    )
    found = report.mismatch
    if found is None:
        table.add_row("result", "[green]every digest and state root matches[/]")
    else:
        table.add_row("result", f"[red]block {found.height:,} differs: {found.field}[/]")
        if found.recorded or found.replayed:
            table.add_row("recorded", found.recorded.hex())
            table.add_row("replayed", found.replayed.hex())
        if found.message:
            table.add_row("why", found.message)
    console.print(table)
