"""Write tests/golden/reference_session.json: the reference session's state roots and digest.

The reference session (:mod:`strikechain.sim.reference`: about 100k seeded transactions through
the runtime into a SQLite log) commits to its state every 50 blocks. The committed roots pin the
canonical encoding, the state commitment and the engine's behaviour together: a change to any
of them changes the roots. When one changes on purpose, rerun

    .venv/bin/python tools/make_session_golden.py

and say in the commit why the roots moved. tests/runtime/test_reference_session.py checks the
committed file against two fresh runs under different ``PYTHONHASHSEED`` values.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import msgspec

from strikechain.sim.reference import run_reference

PATH = Path(__file__).resolve().parent.parent / "tests" / "golden" / "reference_session.json"


def golden(run: dict[str, object]) -> dict[str, object]:
    """What the golden file pins: the run's commitments, not its replay timings."""
    keys = ("seed", "blocks", "transactions", "last_digest")
    roots = run["roots"]
    assert isinstance(roots, list)
    return {key: run[key] for key in keys} | {"roots": {str(h): root for h, root in roots}}


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        run = msgspec.to_builtins(run_reference(Path(directory)))
    PATH.write_text(json.dumps(golden(run), indent=1) + "\n")
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
