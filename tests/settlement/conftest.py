"""Chains for the settlement tests: the embedded EVM, and one anvil node per test module
(installed and started by the project's own code, :mod:`strikechain.settlement.anvil`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from strikechain.settlement.anvil import AnvilNode


@pytest.fixture(scope="module")
def anvil_node() -> Iterator[AnvilNode]:
    if shutil.which("npm") is None:
        pytest.skip("npm is not on PATH: anvil is installed with npm (install Node.js 20+)")
    with AnvilNode() as running:
        yield running
