"""Agent kinds by the name a scenario gives them: each kind's parameter table and how to make
one agent of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from strikechain.sim.agents.base import Agent


class AgentKind(NamedTuple):
    """One kind of agent: its parameters' struct, and ``make(name, params, seed)``."""

    params: type[Any]
    make: Callable[[str, Any, int], Agent]
    underlying: Callable[[Any], str] | None = None
    """Reporters only: the underlying a reporter reports on (it is registered there)."""
    address: Callable[[int, str], str] | None = None
    """Reporters only: the address of the reporter's signing key (``seed``, ``name``)."""


KINDS: dict[str, AgentKind] = {}
"""Filled by the agents' modules (see :mod:`strikechain.sim.agents`)."""
