"""The reference session: ~100k transactions through the runtime into a SQLite log, replayed
from genesis and from a snapshot, bit for bit, under two PYTHONHASHSEED values, against the
committed golden roots (tools/make_session_golden.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tools.make_session_golden import PATH, golden

from strikechain.sim.reference import REFERENCE_SESSION, ROOT_EVERY, SNAPSHOT_EVERY

ROOT = Path(__file__).resolve().parents[2]
HASH_SEEDS = ("1", "4242")


def test_the_reference_session_replays_and_matches_its_golden_roots(tmp_path: Path) -> None:
    runs = []
    for seed in HASH_SEEDS:  # both at once: one process per core
        env = {**os.environ, "PYTHONHASHSEED": seed}
        runs.append(
            subprocess.Popen(
                [sys.executable, "-m", "strikechain.sim.reference", str(tmp_path / seed)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    for process in runs:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        outputs.append(json.loads(stdout))
    first, second = outputs
    assert first == second, "the run depends on PYTHONHASHSEED"

    blocks = REFERENCE_SESSION.blocks
    assert first["transactions"] >= 100_000
    assert first["from_genesis"] == {
        "ok": True,
        "start_height": 0,
        "blocks": blocks,
        "digests_checked": blocks,
        "roots_checked": blocks // ROOT_EVERY,
    }
    last_snapshot = blocks - blocks % SNAPSHOT_EVERY
    assert last_snapshot % ROOT_EVERY == 0
    assert first["from_snapshot"] == {
        "ok": True,
        "start_height": last_snapshot,
        "blocks": blocks - last_snapshot,
        # the restored snapshot's own digest and root are checked too
        "digests_checked": blocks - last_snapshot + 1,
        "roots_checked": (blocks - last_snapshot) // ROOT_EVERY + 1,
    }
    committed = json.loads(PATH.read_text())
    assert golden(first) == committed, (
        "the reference session's roots moved: if the change to the encoding or the engine is "
        "intended, rerun tools/make_session_golden.py and say why in the commit"
    )
