"""The reference session: a fixed seeded run of about 100k transactions through the runtime into
a SQLite block log, replayed from genesis and from its latest snapshot.

Its state roots and last digest are committed (``tests/golden/reference_session.json``,
written by ``tools/make_session_golden.py``): any change to the encoding or to the engine's
behaviour changes them, and CI says so. The test runs it in two processes under different
``PYTHONHASHSEED`` values (``python -m strikechain.sim.reference DIR`` prints the JSON of
:func:`run_reference`), so nothing in the state may depend on string hashing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Final

import msgspec

from strikechain.runtime import ReplayReport, SqliteLog, Sync, replay
from strikechain.sim.scripted import SessionParams
from strikechain.sim.summary import run_session

REFERENCE_SESSION: Final = SessionParams(seed=20_261_125, blocks=1_000, transactions_per_block=100)
ROOT_EVERY: Final = 50
SNAPSHOT_EVERY: Final = 400


class ReplayCheck(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    start_height: int
    blocks: int
    digests_checked: int
    roots_checked: int

    @classmethod
    def of(cls, report: ReplayReport) -> ReplayCheck:
        return cls(
            ok=report.ok,
            start_height=report.start_height,
            blocks=report.blocks,
            digests_checked=report.digests_checked,
            roots_checked=report.roots_checked,
        )


class ReferenceRun(msgspec.Struct, frozen=True, kw_only=True):
    """What the reference session committed to, and what replaying its log found."""

    seed: int
    blocks: int
    transactions: int
    last_digest: str
    roots: list[tuple[int, str]]
    """(height, state root) every :data:`ROOT_EVERY` blocks, hex."""
    from_genesis: ReplayCheck
    from_snapshot: ReplayCheck


def run_reference(directory: Path, params: SessionParams = REFERENCE_SESSION) -> ReferenceRun:
    """Run the session into ``directory/reference.sqlite``, then replay the log twice."""
    path = directory / "reference.sqlite"
    with SqliteLog(path, sync=Sync.NORMAL) as log:
        summary = run_session(params, log=log, root_every=ROOT_EVERY, snapshot_every=SNAPSHOT_EVERY)
    with SqliteLog(path, sync=Sync.NORMAL) as log:
        roots = [
            (record.height, record.state_root.hex())
            for record in log.records()
            if record.state_root
        ]
        from_genesis = replay(log)
        from_snapshot = replay(log, from_snapshot=True)
    return ReferenceRun(
        seed=params.seed,
        blocks=summary.blocks,
        transactions=summary.transactions,
        last_digest=summary.block_digests[-1].hex(),
        roots=roots,
        from_genesis=ReplayCheck.of(from_genesis),
        from_snapshot=ReplayCheck.of(from_snapshot),
    )


def main(argv: list[str]) -> None:
    directory = Path(argv[1])
    directory.mkdir(parents=True, exist_ok=True)
    print(json.dumps(msgspec.to_builtins(run_reference(directory))))


if __name__ == "__main__":
    main(sys.argv)
