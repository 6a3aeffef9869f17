"""Noise traders: orders at random times, on random sides, of random sizes, uninformed.

What a noise trader does (:class:`NoiseTrader`, parameters :class:`NoiseParams`)
- **Arrivals** are a Poisson process of ``rate_per_s`` times the demand multiplier in force
  (``context.demand()``, the mempool's demand spikes): each gap is an exponential draw at the
  rate of the moment it is drawn (a spike that begins during a gap takes effect at the next
  arrival; exact for a constant rate, and the count over a spike is off by at most about one
  arrival at each of its edges). With a multiplier of 0 it looks again after
  ``idle_check_ns``.
- **Each order**: an instrument uniformly among ``instruments``, a buy with
  ``buy_probability``, ``size_lots_min .. size_lots_max`` lots (uniform). With
  ``take_probability`` it takes: an immediate-or-cancel limit ``through_bps`` through the touch
  (the best opposite price of the instrument's ticker, which it watches; the reference if that
  side is empty), or with ``market_orders`` a market order. Otherwise a good-till-time limit
  ``0 .. limit_offset_ticks_max`` ticks behind its own side's touch (behind the reference when
  that side is empty), which expires after ``limit_lifetime_ns``; with ``cancel_probability``
  it is cancelled by its client id at a uniform time before that.

Its own fills do not matter to it: it subscribes to its instruments' tickers only (one small
message per block), not to its account's events. Cost per arrival: a few draws from buffers
and one transaction; per ticker: one assignment.
"""

from __future__ import annotations

import math
from typing import Final

from strikechain.engine.txs import PlaceOrder, Side, TimeInForce
from strikechain.engine.units import NANOS_PER_SECOND
from strikechain.runtime.gateway import Notice, Ticker, Topic
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.grid import Draws, InstrumentGrid
from strikechain.sim.agents.orders import ioc_order
from strikechain.sim.agents.params import NoiseParams
from strikechain.sim.agents.registry import KINDS, AgentKind
from strikechain.sim.agents.validation import (
    require_instruments,
)

_GTT: Final = int(TimeInForce.GTT)
_BUY: Final = int(Side.BUY)
_SELL: Final = int(Side.SELL)
_STRUCT: Final = "NoiseParams"
_TICKER: Final = Ticker
"""The class a ticker notice carries, as a static of the compiled module (a name imported from
another module is looked up in the module's globals on every delivery)."""


class NoiseTrader:
    """A noise trader (see the module)."""

    _context: AgentContext
    _draws: Draws

    def __init__(self, name: str, params: NoiseParams) -> None:
        self.name = name
        self.params = params
        self.arrivals = 0
        self.takes = 0
        self.limits = 0
        self.cancels = 0
        self._grids: list[InstrumentGrid] = []
        self._tickers: dict[str, Ticker] = {}
        self._mean_gap_ns = NANOS_PER_SECOND / params.rate_per_s

    def start(self, context: AgentContext) -> None:
        self._context = context
        self._draws = Draws(context.rng)
        instruments = require_instruments(
            _STRUCT, "instruments", self.params.instruments, context.instruments
        )
        self._grids = [InstrumentGrid(instrument) for instrument in instruments]
        for instrument in instruments:
            topic = Topic(
                instrument=instrument.name,
                channel="ticker",
                interval_ns=self.params.ticker_interval_ns,
            )
            context.gateway.subscribe(topic, self._on_ticker)
        self._schedule()

    def _on_ticker(self, notice: Notice) -> None:
        ticker = notice.event
        if isinstance(ticker, _TICKER):
            self._tickers[ticker.instrument] = ticker

    def _schedule(self) -> None:
        """The next arrival at the rate in force now; at a rate of 0, look again later (the
        process is memoryless, so nothing is owed for the time without demand)."""
        context = self._context
        demand = context.demand()
        if demand <= 0:
            context.scheduler.call_later(self.params.idle_check_ns, self._schedule)
            return
        gap = math.ceil(self._draws.exponential() * self._mean_gap_ns / demand)
        context.scheduler.call_later(gap, self._arrive)

    def _arrive(self) -> None:
        self.arrivals += 1
        self._order(self._context, self._draws)
        self._schedule()

    def _order(self, context: AgentContext, draws: Draws) -> None:
        params = self.params
        grids = self._grids
        grid = grids[math.floor(draws.uniform() * len(grids))]
        side = _BUY if draws.uniform() < params.buy_probability else _SELL
        lots = draws.integer(params.size_lots_min, params.size_lots_max)
        ticker = self._tickers.get(grid.name)
        fee = context.fee(params.tip)
        if draws.uniform() < params.take_probability:
            self.takes += 1
            order = self._take(context, grid, ticker, side, lots, fee)
        else:
            self.limits += 1
            order = self._limit(context, draws, grid, ticker, side, lots, fee)
        context.gateway.submit(order)

    def _take(
        self,
        context: AgentContext,
        grid: InstrumentGrid,
        ticker: Ticker | None,
        side: int,
        lots: int,
        fee: int,
    ) -> PlaceOrder:
        if self.params.market_orders:
            return ioc_order(self.name, grid.name, side, lots, fee, price_ticks=None)
        touch_ticks = 0
        if ticker is not None:
            touch_ticks = ticker.best_ask_ticks if side == _BUY else ticker.best_bid_ticks
        touch = (
            touch_ticks * grid.tick_usdc
            if touch_ticks
            else context.reference.price(grid.underlying)
        )
        price = grid.through_ticks(touch, side, self.params.through_bps)
        return ioc_order(self.name, grid.name, side, lots, fee, price_ticks=price)

    def _limit(
        self,
        context: AgentContext,
        draws: Draws,
        grid: InstrumentGrid,
        ticker: Ticker | None,
        side: int,
        lots: int,
        fee: int,
    ) -> PlaceOrder:
        params = self.params
        own_ticks = 0
        if ticker is not None:
            own_ticks = ticker.best_bid_ticks if side == _BUY else ticker.best_ask_ticks
        if not own_ticks:
            reference = context.reference.price(grid.underlying)
            own_ticks = grid.bid_ticks(reference) if side == _BUY else grid.ask_ticks(reference)
        behind = draws.integer(0, params.limit_offset_ticks_max)
        price = own_ticks - side * behind
        now = context.scheduler.now_ns()
        client_id = ""
        if params.cancel_probability and draws.uniform() < params.cancel_probability:
            client_id = context.client_order_id()
            delay = math.floor(draws.uniform() * params.limit_lifetime_ns)
            context.scheduler.call_later(delay, lambda: self._cancel(client_id))
        return PlaceOrder(
            account=self.name,
            instrument=grid.name,
            side=side,
            price_ticks=max(price, 1),
            size_lots=lots,
            time_in_force=_GTT,
            expire_at_ns=now + params.limit_lifetime_ns,
            client_order_id=client_id,
            priority_fee=fee,
        )

    def _cancel(self, client_id: str) -> None:
        context = self._context
        self.cancels += 1
        fee = context.fee(self.params.tip)
        context.gateway.cancel(self.name, client_order_id=client_id, priority_fee=fee)


KINDS["noise"] = AgentKind(
    params=NoiseParams, make=lambda name, params, seed: NoiseTrader(name, params)
)
