"""What every lab agent is given, and the one method it must have.

An agent is written against the runtime's interfaces only: a
:class:`~strikechain.runtime.gateway.Gateway` (submit, cancel, subscribe: in the lab it crosses
the network model, against a node it would cross a socket) and a
:class:`~strikechain.runtime.gateway.Scheduler` (virtual time here, the wall clock live). What it
knows of the outside world comes through its :class:`ReferenceFeed` (the reference price as it
stood ``latency`` ago) and, for hedgers, the external :class:`~strikechain.sim.hedge_venue.
HedgeVenue`. Its randomness is its own stream, ``kernel.rng("agent/<name>")``: adding an agent
changes nobody else's draws.

Conventions every agent follows:
- client order ids are ``"<agent>-<n>"`` with ``n`` counting up from 1 (unique per agent; the
  recorder joins fills to decisions with them);
- a transaction carries the agent's ``priority_fee`` (:meth:`AgentContext.fee`), at least the
  base fee the mempool currently asks, or it waits in the mempool under fee priority;
- money is the engine's: prices in ticks, sizes in lots (:attr:`AgentContext.instruments` gives
  each instrument's grid), USDC in minor units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from strikechain.engine.instruments import Instrument
from strikechain.runtime.gateway import Gateway, Scheduler
from strikechain.sim.hedge_venue import HedgeVenue
from strikechain.sim.path_cursor import PriceCursor
from strikechain.sim.processes import PricePaths


class ReferenceFeed:
    """The reference price of each underlying as an agent sees it: the path at ``now - latency``
    (never before the path's start). Market makers and arbitrageurs differ mostly in this
    latency."""

    __slots__ = ("_clock", "_cursors", "_paths", "latency_ns")

    def __init__(self, paths: PricePaths, clock: Scheduler, latency_ns: int) -> None:
        self._paths = paths
        self._clock = clock
        self.latency_ns = latency_ns
        self._cursors: dict[str, PriceCursor] = {}

    def price(self, underlying: str) -> float:
        """USDC per unit of ``underlying``, as last seen."""
        seen = self._clock.now_ns() - self.latency_ns
        start = self._paths.start_ns
        cursor = self._cursors.get(underlying)
        if cursor is None:
            cursor = self._cursors[underlying] = PriceCursor(self._paths, underlying)
        return cursor.price(seen if seen > start else start)

    def delayed(self, extra_latency_ns: int) -> ReferenceFeed:
        """The same paths seen ``extra_latency_ns`` later still (a stale reporter's view)."""
        return ReferenceFeed(self._paths, self._clock, self.latency_ns + extra_latency_ns)


@dataclass
class AgentContext:
    """Everything an agent may use (see the module)."""

    name: str
    gateway: Gateway
    scheduler: Scheduler
    rng: np.random.Generator
    reference: ReferenceFeed
    instruments: Mapping[str, Instrument]
    """Listed instruments by name (the scenario lists them before agents start)."""
    base_fee: Callable[[], int] = field(default=lambda: 0)
    """The base fee the mempool asks now (0 without fee priority)."""
    hedge: HedgeVenue | None = None
    max_fee: int = 0
    """The most this agent pays (EIP-1559's max fee; 0: no cap): above it its transactions
    wait in the mempool until the base fee falls, which is what keeps congestion bounded."""
    demand: Callable[[], float] = field(default=lambda: 1.0)
    """The demand multiplier in force now (the mempool's demand spikes; 1.0: none): arrival
    rates of agents that trade on their own schedule are multiplied by it."""
    _client_ids: int = 0

    def client_order_id(self) -> str:
        """The next ``"<agent>-<n>"``."""
        self._client_ids += 1
        return f"{self.name}-{self._client_ids}"

    def fee(self, tip: int = 0) -> int:
        """A priority fee that clears the current base fee, plus ``tip``, but at most
        ``max_fee``."""
        fee = self.base_fee() + tip
        return fee if not self.max_fee or fee <= self.max_fee else self.max_fee


class Agent(Protocol):
    """A lab agent: ``start`` is called once, at the run's start time, after the scenario's
    listings and deposits are in the venue; from then on it acts through its context only."""

    name: str

    def start(self, context: AgentContext) -> None: ...
