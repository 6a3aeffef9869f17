"""The block log, state commitment and replay part of ``strikechain demo``.

The venue session runs through the runtime into a SQLite block log (state root every
:data:`ROOT_EVERY` blocks, snapshot every :data:`SNAPSHOT_EVERY`). This part then shows what a
third party can do with that file alone: rebuild the venue from genesis and from the latest
snapshot, checking every block digest and state root, and check one sub-ledger's leaf against
the final state root with its inclusion proof.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Final

from rich import box
from rich.console import Console
from rich.table import Table

from strikechain.engine.commitment import decode_leaf, ledger_leaf, verify_ledger
from strikechain.engine.merkle import DEPTH
from strikechain.runtime import ReplayReport, SqliteLog, Sync, rebuild, replay

ROOT_EVERY: Final = 50
SNAPSHOT_EVERY: Final = 120


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _replay_row(report: ReplayReport) -> str:
    start = f"block {report.start_height}'s snapshot" if report.start_height else "genesis"
    verdict = "[green]all match[/]" if report.ok else "[red]DIFFERS[/]"
    rate = report.blocks / report.seconds if report.seconds > 0 else 0.0
    return (
        f"from {start}: {_count(report.blocks, 'block')} applied ({rate:,.0f} blocks/s), "
        f"{_count(report.digests_checked, 'digest')} and "
        f"{_count(report.roots_checked, 'state root')} checked: {verdict}"
    )


def run_commitment_demo(console: Console, path: Path) -> bool:
    """Print the log, the final commitment, a verified proof and both replays; True if all
    checks pass."""
    with SqliteLog(path, sync=Sync.NORMAL) as log:
        height = log.last_height()
        last = next(log.records(height))
        snapshot = log.latest_snapshot()
        from_genesis = replay(log)
        from_snapshot = replay(log, from_snapshot=True)
        engine = rebuild(log)
    root = engine.state_root()
    # the sub-ledger with the largest exit value, proved against the root
    ledgers = [
        ledger
        for mine in engine.accounts.values()
        for ledger in mine.ledgers.values()
        if ledger.leaf_index
    ]
    richest = max(ledgers, key=lambda ledger: decode_leaf(ledger_leaf(ledger)).exit_value)
    data = ledger_leaf(richest)
    leaf = decode_leaf(data)
    index, proof, rest_hash = engine.ledger_proof(richest.account, richest.underlying)
    proved = verify_ledger(data, index, proof, rest_hash, root)
    tampered = bytearray(data)
    tampered[127] ^= 1
    refused = not verify_ledger(bytes(tampered), index, proof, rest_hash, root)

    table = Table(title="Block log, state commitment and replay", show_header=False, box=box.SIMPLE)
    size = path.stat().st_size
    table.add_row(
        "block log",
        f"{path} (SQLite, WAL): {height:,} blocks, {size / 1e6:,.1f} MB, "
        f"snapshot at block {snapshot.height if snapshot else '-'}",
    )
    table.add_row("last block digest", last.digest.hex())
    table.add_row(
        "state root",
        f"{root.hex()}\n(every {ROOT_EVERY} blocks in the log; tree of depth {DEPTH} over "
        f"{len(ledgers):,} sub-ledger leaves and the system leaf)",
    )
    positions = ", ".join(f"{name} {size:+,} lots" for name, size, _ in leaf.positions) or "none"
    table.add_row(
        "inclusion proof",
        f"{richest.account} {richest.underlying}, leaf {index}: collateral "
        f"{Decimal(leaf.collateral).scaleb(-6):,.2f} USDC, positions {positions}, exit value "
        f"{Decimal(leaf.exit_value).scaleb(-6):,.2f} USDC; {len(proof)} sibling hashes: "
        + ("[green]verifies[/]" if proved else "[red]FAILS[/]")
        + (", a tampered leaf does not" if refused else ", [red]a tampered leaf verifies[/]"),
    )
    table.add_row("replay", _replay_row(from_genesis))
    table.add_row("", _replay_row(from_snapshot))
    matches = last.state_root in (b"", root) and last.digest == engine.digest
    table.add_row(
        "check",
        f"`strikechain replay {path}` repeats this; "
        + ("[green]passed[/]" if matches else "[red]the rebuilt engine disagrees[/]"),
    )
    console.print(table)
    return proved and refused and from_genesis.ok and from_snapshot.ok and matches
