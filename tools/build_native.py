"""Compile the engine's hot modules and the lab's event loop with mypyc, in place: ``make native``.

    python tools/build_native.py          # build (skipped, with a note, without mypyc or gcc)
    python tools/build_native.py --clean  # remove the compiled modules: the engine runs interpreted

The modules listed in :data:`strikechain._native.MODULES` become extension modules beside their
sources (``src/strikechain/engine/*``, ``src/strikechain/sim/kernel``; an extension shadows the
``.py`` of the same name), with mypyc's runtime in one more extension in the engine package
(``_native__mypyc``). The C sources and objects stay in ``build/native``. Last, the build writes
the digest of the sources (:func:`strikechain._native.sources`) to
``engine/_native_build.json``; ``strikechain`` refuses to import compiled modules whose digest no
longer matches (see :mod:`strikechain._native`).

When mypyc, setuptools, a C compiler or Python's headers are missing, the build removes any
compiled modules and exits 0: the engine runs interpreted, with the same results, slower.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sysconfig
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _load_guard() -> ModuleType:
    """This checkout's ``strikechain/_native.py``, loaded alone: importing ``strikechain`` would
    run the guard, which refuses the stale build this script is here to replace."""
    spec = importlib.util.spec_from_file_location(
        "_strikechain_native", ROOT / "src" / "strikechain" / "_native.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_native = _load_guard()
BUILD = ROOT / "build" / "native"
PACKAGE = _native.PACKAGE_DIRECTORY
ENGINE = _native.ENGINE_DIRECTORY
MYPY_OPTIONS = [
    # Not pyproject's [tool.mypy]: its file list and per-module sections confuse a build of
    # eight modules. Types are checked by `make lint`; this only compiles.
    "--config-file=",
    "--python-version=3.11",
    "--ignore-missing-imports",
]


def clean() -> list[Path]:
    """Remove the compiled modules and the stamp; returns what was removed."""
    removed = [*_native.compiled_files(PACKAGE), ENGINE / _native.STAMP]
    removed = [path for path in removed if path.exists()]
    for path in removed:
        path.unlink()
    return removed


def missing_toolchain() -> str | None:
    """Why a native build cannot run here, or None."""
    for module in ("mypyc", "setuptools"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (it comes with mypy: requirements/dev.txt)"
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.is_file():
        return f"no Python headers ({header})"
    return None


def build() -> list[Path]:
    """Compile into ``build/native`` and move the extensions into place, stamp last."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    digest = _native.source_digest(PACKAGE)
    paths = [str(_native.module_path(name).relative_to(ROOT)) for name in _native.MODULES]
    lib = BUILD / "lib"
    shutil.rmtree(lib, ignore_errors=True)
    cwd = Path.cwd()
    os.chdir(ROOT)  # mypyc names modules from paths relative to here (src/strikechain/...)
    try:
        extensions = mypycify(
            [*MYPY_OPTIONS, *paths],
            opt_level="3",
            group_name=_native.GROUP,
            target_dir=str((BUILD / "c").relative_to(ROOT)),
        )
        # The build_ext command alone: setup() would read pyproject.toml, which is hatchling's.
        distribution = Distribution(
            {"name": "strikechain-native", "package_dir": {"": "src"}, "ext_modules": extensions}
        )
        distribution.verbose = False
        command = distribution.get_command_obj("build_ext")
        command.build_lib = str(lib)
        command.build_temp = str(BUILD / "temp")
        command.parallel = 2
        distribution.run_command("build_ext")
    finally:
        os.chdir(cwd)
    package_lib = lib / "strikechain"
    built = sorted(path for path in package_lib.rglob("*") if path.is_file())
    names = {
        ".".join((*path.relative_to(package_lib).parent.parts, path.name.split(".")[0]))
        for path in built
    }
    expected = {*_native.MODULES, f"engine.{_native.SHARED_LIBRARY}"}
    if names != expected:
        raise SystemExit(f"mypyc built {sorted(names)}, expected {sorted(expected)}")
    if _native.source_digest(PACKAGE) != digest:
        raise SystemExit("sources changed during the build; run it again")
    clean()
    installed = []
    for path in built:
        target = PACKAGE / path.relative_to(package_lib)
        # A fresh file renamed over the old one: a running process keeps its mapped copy.
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as temporary:
            temporary.write(path.read_bytes())
        os.replace(temporary.name, target)
        target.chmod(0o755)
        installed.append(target)
    stamp = {
        "source_digest": digest,
        "modules": list(_native.MODULES),
        "python": platform.python_version(),
        "mypy": _mypy_version(),
    }
    (ENGINE / _native.STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    return installed


def _mypy_version() -> str:
    from mypy.version import __version__

    return __version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    args = parser.parse_args()
    if args.clean:
        removed = clean()
        print(f"native: removed {len(removed)} files; the engine runs interpreted")
        return
    why = missing_toolchain()
    if why is not None:
        removed = clean()
        note = f" (removed {len(removed)} stale files)" if removed else ""
        print(f"native: skipped, {why}; the engine runs interpreted{note}")
        return
    start = time.perf_counter()
    installed = build()
    seconds = time.perf_counter() - start
    print(f"native: compiled {len(_native.MODULES)} modules with mypyc in {seconds:.0f} s")
    print(f"native: {len(installed)} extension modules in {PACKAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
