"""The compiled engine's guard: a native module built from other sources is never used silently.

``tools/build_native.py`` (``make native``) compiles the engine's hot modules and the lab's event
loop (:data:`MODULES`) with mypyc into extension modules beside their sources; an extension
module shadows the ``.py`` of the same name. The build records a digest of its sources
(:func:`sources`: every ``strikechain/engine/*.py`` and the compiled modules outside it) in
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

PACKAGE = "strikechain"
MODULES = (
    "engine.accounts",
    "engine.auction",
    "engine.book",
    "engine.clearing",
    "engine.engine",
    "engine.liquidator",
    "engine.margin",
    "engine.marks",
    "engine.merkle",
    "engine.ordering",
    "engine.position_limits",
    "engine.wellformed",
    "runtime.dispatch",
    "runtime.inbox",
    "sim.agents.arbitrageur",
    "sim.agents.base",
    "sim.agents.grid",
    "sim.agents.market_maker",
    "sim.agents.noise",
    "sim.agents.orders",
    "sim.consensus",
    "sim.feed",
    "sim.gateway",
    "sim.kernel",
    "sim.network",
    "sim.path_cursor",
    "sim.recorder",
)
"""The modules compiled by mypyc (names inside ``strikechain``): the engine's order, margin and
liquidation paths and its state tree; the runtime's inbox and dispatcher; the lab's event loop,
network, consensus, agents' gateway, market-data feed, reference-price cursor, recorder and
busiest agents (what runs for every message of a simulation)."""
GROUP = f"{PACKAGE}.engine._native"
SHARED_LIBRARY = "_native__mypyc"
"""mypyc's runtime and the compiled code of the whole group, one extension in the engine
package (the other modules' extensions are thin shims that load it)."""
STAMP = "_native_build.json"
ENVIRONMENT_VARIABLE = "STRIKECHAIN_NATIVE"
PACKAGE_DIRECTORY = Path(__file__).resolve().parent
ENGINE_DIRECTORY = PACKAGE_DIRECTORY / "engine"
EXTRA_SOURCES = ("sim/world.py",)
"""Sources outside the engine that a compiled module outside it imports (their signatures are
compiled into the callers): their changes make a build stale too."""


class StaleNativeBuild(ImportError):
    """The compiled modules do not match the sources."""


def module_path(name: str, root: Path = PACKAGE_DIRECTORY) -> Path:
    """The source of compiled module ``name`` (``"engine.book"`` -> ``engine/book.py``)."""
    return root / (name.replace(".", "/") + ".py")


def sources(root: Path = PACKAGE_DIRECTORY) -> list[Path]:
    """What a build depends on: every engine source (mypyc inlines what it knows of the modules
    a compiled one imports, and the engine's modules import each other), the compiled modules
    outside the engine, and :data:`EXTRA_SOURCES`."""
    found = set((root / "engine").glob("*.py"))
    found.update(module_path(name, root) for name in MODULES)
    found.update(root / extra for extra in EXTRA_SOURCES)
    return sorted(found)


def source_digest(root: Path = PACKAGE_DIRECTORY) -> str:
    """SHA-256 over the relative names and contents of :func:`sources`, sorted by name."""
    digest = hashlib.sha256()
    for path in sources(root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def compiled_files(root: Path = PACKAGE_DIRECTORY) -> list[Path]:
    """Extension modules beside the sources that this interpreter would import for our names."""
    stems = [module_path(name, root).with_suffix("") for name in MODULES]
    stems.append(root / "engine" / SHARED_LIBRARY)
    return [
        stem.with_name(stem.name + suffix)
        for stem in stems
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if stem.with_name(stem.name + suffix).is_file()
    ]


class _FromSource(importlib.abc.MetaPathFinder):
    """Loads the compiled modules' names from their ``.py`` files (``STRIKECHAIN_NATIVE=0``)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != PACKAGE or name not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, module_path(name))


def check(root: Path = PACKAGE_DIRECTORY) -> str:
    """Make sure no stale compiled module can be imported; returns the mode the engine runs in
    (``"compiled"`` or ``"interpreted"``). Raises :class:`StaleNativeBuild`."""
    if os.environ.get(ENVIRONMENT_VARIABLE, "") == "0":
        if not any(isinstance(finder, _FromSource) for finder in sys.meta_path):
            sys.meta_path.insert(0, _FromSource())
        return "interpreted"
    found = compiled_files(root)
    if not found:
        return "interpreted"
    advice = (
        "run `make native` to rebuild them, or `make native-clean` (or set "
        f"{ENVIRONMENT_VARIABLE}=0) to run the engine interpreted"
    )
    stamp = root / "engine" / STAMP
    try:
        recorded = json.loads(stamp.read_text())
        digest = recorded["source_digest"]
    except (OSError, ValueError, KeyError, TypeError):
        raise StaleNativeBuild(
            f"{root} holds compiled modules ({found[0].name}, ...) but no valid {STAMP}: " + advice
        ) from None
    if digest != source_digest(root):
        raise StaleNativeBuild(
            f"the compiled modules in {root} were built from other sources than the .py files "
            f"now: {advice}"
        )
    return "compiled"


def mode() -> str:
    """How the engine runs in this process: ``"compiled"`` or ``"interpreted"``."""
    module = sys.modules.get(f"{PACKAGE}.engine.engine")
    if module is None:
        return "not imported"
    return "interpreted" if (module.__file__ or "").endswith(".py") else "compiled"
