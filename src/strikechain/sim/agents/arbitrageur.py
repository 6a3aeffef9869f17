"""Arbitrageurs: take quotes that have gone stale against the reference.

What an arbitrageur does (:class:`Arbitrageur`, parameters :class:`ArbitrageurParams`)
- It watches its perpetuals' tickers (channel ``ticker``: the top of book after every block) and
  its reference, usually with a short latency (the scenario sets its feed's). Its fair value is
  the reference times ``1 + basis_bps``.
- When the best ask is below ``fair x (1 - edge_bps)`` it buys, when the best bid is above
  ``fair x (1 + edge_bps)`` it sells: an immediate-or-cancel limit at that threshold (so it
  takes every level that is stale by the edge, and nothing else), for at most the top level's
  size, ``max_take_lots`` and what its inventory limit ``max_position_lots`` leaves, with
  priority fee ``context.fee(tip)``: a higher ``tip`` goes first under fee priority.
- One order per instrument is in flight at a time: the next waits for the first's outcome
  (fill, cancelled remainder or rejection, from its own account's events), or ``retry_ns`` if
  the order was lost (:class:`~strikechain.sim.agents.orders.OrdersInFlight`). A new ticker of
  the same block cannot make it send twice for one quote.
- With ``poll_ns > 0`` it also checks the last ticker against a fresh reference every
  ``poll_ns``: a quote can go stale between blocks, as the reference moves.
- With ``hedge_delta_units > 0`` it lays its position off on the hedging venue whenever its net
  delta exceeds that threshold (:class:`~strikechain.sim.agents.hedging.DeltaHedger`): it then
  earns the edge less the hedge's spread and fee, and its venue inventory still counts against
  ``max_position_lots``.

Perpetuals only (an option's reference is not its price). Cost per ticker: a reference read and
two comparisons; an order when something is stale.
"""

from __future__ import annotations

import math
from typing import Final

from strikechain.engine.events import Fill
from strikechain.runtime.gateway import Notice, Ticker, Topic
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.grid import BPS, Draws, InstrumentGrid, fill_side
from strikechain.sim.agents.hedging import DeltaHedger
from strikechain.sim.agents.orders import OrdersInFlight, StaleQuotes
from strikechain.sim.agents.params import ArbitrageurParams
from strikechain.sim.agents.registry import KINDS, AgentKind
from strikechain.sim.agents.validation import (
    refuse,
    require_instruments,
)

_STRUCT: Final = "ArbitrageurParams"
_TICKER: Final = Ticker
"""The class a ticker notice carries, as a static of the compiled module (a name imported from
another module is looked up in the module's globals on every delivery)."""


class _Watch:
    """One instrument: last ticker, position."""

    __slots__ = ("grid", "position_lots", "ticker")

    def __init__(self, grid: InstrumentGrid) -> None:
        self.grid = grid
        self.ticker: Ticker | None = None
        self.position_lots = 0


class Arbitrageur:
    """An arbitrageur (see the module)."""

    _context: AgentContext

    def __init__(self, name: str, params: ArbitrageurParams) -> None:
        self.name = name
        self.params = params
        self.orders_sent = 0
        self.filled_lots = 0
        self.hedger: DeltaHedger | None = None
        self._watches: dict[str, _Watch] = {}
        self._orders = OrdersInFlight(name, params.retry_ns)
        self._delta: dict[str, float] = {}
        """Venue delta per underlying (units of the underlying)."""
        self._stale = StaleQuotes(
            1.0 + params.basis_bps * BPS - params.edge_bps * BPS,
            1.0 + params.basis_bps * BPS + params.edge_bps * BPS,
            params.max_take_lots,
            params.max_position_lots,
        )

    def start(self, context: AgentContext) -> None:
        params = self.params
        self._context = context
        instruments = require_instruments(
            _STRUCT, "instruments", params.instruments, context.instruments, perpetual_only=True
        )
        if params.hedge_delta_units > 0:
            if context.hedge is None:
                requirement = "needs a hedging venue in the agent's context"
                raise refuse(_STRUCT, "hedge_delta_units", requirement, params.hedge_delta_units)
            self.hedger = DeltaHedger(
                context.hedge,
                self.name,
                params.hedge_delta_units,
                context.hedge.params.max_quantity,
            )
        gateway = context.gateway
        gateway.subscribe(Topic(account=self.name), self._on_event)
        for instrument in instruments:
            self._watches[instrument.name] = _Watch(InstrumentGrid(instrument))
            topic = Topic(instrument=instrument.name, channel="ticker")
            gateway.subscribe(topic, self._on_ticker)
        if params.poll_ns:
            offset = math.floor(Draws(context.rng).uniform() * params.poll_ns)
            context.scheduler.call_later(offset, self._poll)

    def position_lots(self, instrument: str) -> int:
        watch = self._watches.get(instrument)
        return 0 if watch is None else watch.position_lots

    # -- market data ---------------------------------------------------------------------------

    def _on_ticker(self, notice: Notice) -> None:
        ticker = notice.event
        if isinstance(ticker, _TICKER):
            watch = self._watches[ticker.instrument]
            watch.ticker = ticker
            self._check(watch, ticker)
            hedger = self.hedger
            if hedger is not None:  # a hedge waits for the one in flight: try again
                underlying = watch.grid.underlying
                hedger.rebalance(underlying, self._delta.get(underlying, 0.0))

    def _poll(self) -> None:
        context = self._context
        context.scheduler.call_later(self.params.poll_ns, self._poll)
        for watch in self._watches.values():
            if watch.ticker is not None:
                self._check(watch, watch.ticker)

    def _check(self, watch: _Watch, ticker: Ticker) -> None:
        context = self._context
        grid = watch.grid
        if not self._orders.free(grid.name, context.scheduler.now_ns()):
            return
        reference = context.reference.price(grid.underlying)
        side, limit_ticks, lots = self._stale.take(grid, ticker, reference, watch.position_lots)
        if lots > 0:
            fee = context.fee(self.params.tip)
            self._orders.send(context, grid.name, side, limit_ticks, lots, fee)
            self.orders_sent += 1

    # -- own events ----------------------------------------------------------------------------

    def _on_event(self, notice: Notice) -> None:
        event = notice.event
        if isinstance(event, Fill):
            self._on_fill(event)
        else:
            self._orders.follow(event)

    def _on_fill(self, fill: Fill) -> None:
        side = fill_side(fill, self.name)
        watch = self._watches.get(fill.instrument)
        if side == 0 or watch is None:
            return
        watch.position_lots += side * fill.size_lots
        self.filled_lots += fill.size_lots
        self._orders.follow(fill)
        underlying = watch.grid.underlying
        self._delta[underlying] = (
            self._delta.get(underlying, 0.0) + side * fill.size_lots * watch.grid.units_per_lot
        )
        if self.hedger is not None:
            self.hedger.rebalance(underlying, self._delta[underlying])


KINDS["arbitrageur"] = AgentKind(
    params=ArbitrageurParams, make=lambda name, params, seed: Arbitrageur(name, params)
)
