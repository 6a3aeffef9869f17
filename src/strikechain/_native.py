"""The compiled engine's guard: a native module built from other sources is never used silently.

``tools/build_native.py`` (``make native``) compiles the engine's hot modules (:data:`MODULES`)
with mypyc into extension modules beside their sources; an extension module shadows the ``.py``
of the same name. The build records a digest of every ``strikechain/engine/*.py`` in
:data:`STAMP` (mypyc inlines what it knows of the modules a compiled one imports, so a change to
any engine source can make a build stale). At import of ``strikechain``, before any engine
module loads, :func:`check` compares the digest with the sources and raises
:class:`StaleNativeBuild` on a mismatch.

Without compiled modules (no mypyc or compiler, or ``make native-clean``) nothing is checked and
the engine runs interpreted, with the same results. ``STRIKECHAIN_NATIVE=0`` runs it interpreted
even where compiled modules exist (for debugging, and to compare the two). This lives outside
``strikechain.engine``, which reads no environment and no files.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

PACKAGE = "strikechain.engine"
MODULES = (
    "accounts",
    "auction",
    "book",
    "clearing",
    "engine",
    "liquidator",
    "margin",
    "marks",
    "merkle",
    "ordering",
    "position_limits",
)
"""The engine modules compiled by mypyc: the order and margin paths, and the state tree."""
GROUP = f"{PACKAGE}._native"
SHARED_LIBRARY = "_native__mypyc"
"""mypyc's runtime and the compiled code of the whole group, one extension in the package."""
STAMP = "_native_build.json"
ENVIRONMENT_VARIABLE = "STRIKECHAIN_NATIVE"
ENGINE_DIRECTORY = Path(__file__).resolve().parent / "engine"


class StaleNativeBuild(ImportError):
    """The compiled engine modules do not match the engine's sources."""


def source_digest(directory: Path = ENGINE_DIRECTORY) -> str:
    """SHA-256 over the names and contents of every ``*.py`` in ``directory``, sorted by name."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def compiled_files(directory: Path = ENGINE_DIRECTORY) -> list[Path]:
    """Extension modules in ``directory`` that this interpreter would import for our names."""
    names = (*MODULES, SHARED_LIBRARY)
    return [
        directory / f"{name}{suffix}"
        for name in names
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (directory / f"{name}{suffix}").is_file()
    ]


class _FromSource(importlib.abc.MetaPathFinder):
    """Loads the compiled modules' names from their ``.py`` files (``STRIKECHAIN_NATIVE=0``)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        package, _, leaf = fullname.rpartition(".")
        if package != PACKAGE or leaf not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, ENGINE_DIRECTORY / f"{leaf}.py")


def check(directory: Path = ENGINE_DIRECTORY) -> str:
    """Make sure no stale compiled module can be imported; returns the mode the engine runs in
    (``"compiled"`` or ``"interpreted"``). Raises :class:`StaleNativeBuild`."""
    if os.environ.get(ENVIRONMENT_VARIABLE, "") == "0":
        if not any(isinstance(finder, _FromSource) for finder in sys.meta_path):
            sys.meta_path.insert(0, _FromSource())
        return "interpreted"
    found = compiled_files(directory)
    if not found:
        return "interpreted"
    advice = (
        "run `make native` to rebuild them, or `make native-clean` (or set "
        f"{ENVIRONMENT_VARIABLE}=0) to run the engine interpreted"
    )
    stamp = directory / STAMP
    try:
        recorded = json.loads(stamp.read_text())
        digest = recorded["source_digest"]
    except (OSError, ValueError, KeyError, TypeError):
        raise StaleNativeBuild(
            f"{directory} holds compiled modules ({found[0].name}, ...) but no valid {STAMP}: "
            + advice
        ) from None
    if digest != source_digest(directory):
        raise StaleNativeBuild(
            f"the compiled engine modules in {directory} were built from other sources than "
            f"the engine's .py files now: {advice}"
        )
    return "compiled"


def mode() -> str:
    """How the engine runs in this process: ``"compiled"`` or ``"interpreted"``."""
    module = sys.modules.get(f"{PACKAGE}.engine")
    if module is None:
        return "not imported"
    return "interpreted" if (module.__file__ or "").endswith(".py") else "compiled"
