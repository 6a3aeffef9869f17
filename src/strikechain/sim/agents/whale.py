"""Whales: large orders on a schedule, whatever the book can take.

What a whale does (:class:`Whale`, parameters :class:`WhaleParams`)
- ``after_ns`` after it starts, and then every ``every_ns``, ``orders`` times in all, it sends
  one taking order of ``size_lots`` on ``side`` of one instrument: a market order
  (``market_orders``, the default), or an immediate-or-cancel limit ``slippage_bps`` through its
  reference. It does not look at the book first and does not split the order: the point is the
  impact of size. What the book cannot take is cancelled by the venue and not sent again.
- The venue bounds it: a market order fills no further than the engine's market-order band
  (5% by default) from the best opposite price and from the mark, and the rest is cancelled;
  margin refuses what the whale's collateral cannot carry (``Rejected``); under price monitoring
  a fill outside the band calls an auction instead.
- For each order it keeps a :class:`WhaleOrder`: the touch it faced (the best opposite price of
  the last ticker before it sent), lots filled, the volume-weighted and the last fill price.
  :meth:`WhaleOrder.impact_bps` is how far the last fill went past that touch: with levels of
  ``d`` lots every ``s`` bps, ``n`` lots walk about ``s x n / d`` bps.

Any listed instrument (an option's "reference" is only used for a limit, so give an option
whale ``market_orders``).
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from strikechain.engine.events import Fill, OrderAccepted, OrderCancelled, Rejected
from strikechain.engine.limits import DEFAULT_LIMITS
from strikechain.engine.txs import Side
from strikechain.engine.units import NANOS_PER_SECOND
from strikechain.runtime.gateway import Notice, Ticker, Topic
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.grid import BPS, InstrumentGrid
from strikechain.sim.agents.orders import take_order
from strikechain.sim.agents.registry import KINDS, AgentKind
from strikechain.sim.agents.validation import (
    refuse,
    require_between,
    require_instrument,
    require_non_negative,
)

MAX_ORDERS: Final = 10_000
MAX_SLIPPAGE_BPS: Final = 5_000.0
_STRUCT: Final = "WhaleParams"


class WhaleParams(msgspec.Struct, frozen=True, kw_only=True):
    """A whale's parameters (see the module)."""

    instrument: str
    size_lots: int
    """Lots per order."""
    side: Literal["buy", "sell"] = "buy"
    after_ns: int = 0
    """The first order, after it starts."""
    every_ns: int = 60 * NANOS_PER_SECOND
    """Between orders (with ``orders`` > 1)."""
    orders: int = 1
    market_orders: bool = True
    slippage_bps: float = 100.0
    """A limit order's distance through the reference (without ``market_orders``)."""
    tip: int = 0

    def __post_init__(self) -> None:
        if not self.instrument:
            raise refuse(_STRUCT, "instrument", "must name an instrument", self.instrument)
        require_between(_STRUCT, "size_lots", self.size_lots, 1, DEFAULT_LIMITS.max_size_lots)
        if self.side not in ("buy", "sell"):
            raise refuse(_STRUCT, "side", "must be 'buy' or 'sell'", self.side)
        require_between(_STRUCT, "orders", self.orders, 1, MAX_ORDERS)
        for field in ("after_ns", "every_ns", "tip"):
            require_non_negative(_STRUCT, field, getattr(self, field))
        if self.every_ns == 0 and self.orders > 1:
            raise refuse(_STRUCT, "every_ns", "must be > 0 with orders > 1", self.every_ns)
        require_between(_STRUCT, "slippage_bps", self.slippage_bps, 0.0, MAX_SLIPPAGE_BPS)


class WhaleOrder:
    """One whale order and what it did."""

    __slots__ = (
        "filled_lots",
        "last_ticks",
        "notional_ticks",
        "order_id",
        "sent_ns",
        "side",
        "size_lots",
        "touch_ticks",
    )

    def __init__(self, sent_ns: int, side: int, size_lots: int, touch_ticks: int) -> None:
        self.sent_ns = sent_ns
        self.side = side
        self.size_lots = size_lots
        self.touch_ticks = touch_ticks
        """The best opposite price it faced (0: none seen)."""
        self.order_id = 0
        self.filled_lots = 0
        self.notional_ticks = 0
        """Sum of price (ticks) x lots over its fills."""
        self.last_ticks = 0
        """Its last fill's price (0: none)."""

    @property
    def average_ticks(self) -> float:
        """Volume-weighted fill price (0.0: nothing filled)."""
        return self.notional_ticks / self.filled_lots if self.filled_lots else 0.0

    def impact_bps(self) -> float:
        """How far past the touch its last fill went (bps; 0.0 without a touch or a fill)."""
        if not self.touch_ticks or not self.last_ticks:
            return 0.0
        return self.side * (self.last_ticks - self.touch_ticks) / self.touch_ticks / BPS


class Whale:
    """A whale (see the module)."""

    _context: AgentContext
    _grid: InstrumentGrid

    def __init__(self, name: str, params: WhaleParams) -> None:
        self.name = name
        self.params = params
        self.side = int(Side.BUY) if params.side == "buy" else int(Side.SELL)
        self.orders_sent = 0
        self.rejections = 0
        self.filled_lots = 0
        self.position_lots = 0
        self.history: list[WhaleOrder] = []
        self._ticker: Ticker | None = None
        self._by_client_id: dict[str, WhaleOrder] = {}
        self._by_order_id: dict[int, WhaleOrder] = {}

    def start(self, context: AgentContext) -> None:
        self._context = context
        instrument = require_instrument(
            _STRUCT, "instrument", self.params.instrument, context.instruments
        )
        self._grid = InstrumentGrid(instrument)
        gateway = context.gateway
        gateway.subscribe(Topic(account=self.name), self._on_event)
        gateway.subscribe(Topic(instrument=instrument.name, channel="ticker"), self._on_ticker)
        context.scheduler.call_later(self.params.after_ns, self._send)

    def _on_ticker(self, notice: Notice) -> None:
        if isinstance(notice.event, Ticker):
            self._ticker = notice.event

    def _send(self) -> None:
        context, params, grid = self._context, self.params, self._grid
        self.orders_sent += 1
        if self.orders_sent < params.orders:
            context.scheduler.call_later(params.every_ns, self._send)
        ticker, side = self._ticker, self.side
        touch = 0
        if ticker is not None:
            touch = ticker.best_ask_ticks if side > 0 else ticker.best_bid_ticks
        client_id = context.client_order_id()
        record = WhaleOrder(context.scheduler.now_ns(), side, params.size_lots, touch)
        self.history.append(record)
        self._by_client_id[client_id] = record
        order = take_order(
            context,
            self.name,
            grid,
            side,
            params.size_lots,
            tip=params.tip,
            market=params.market_orders,
            slippage_bps=params.slippage_bps,
            client_order_id=client_id,
        )
        context.gateway.submit(order)

    def _on_event(self, notice: Notice) -> None:
        event = notice.event
        if isinstance(event, Fill):
            record = self._by_order_id.get(event.taker_order_id)
            if record is None or event.taker_account != self.name:
                return
            record.filled_lots += event.size_lots
            record.notional_ticks += event.price_ticks * event.size_lots
            record.last_ticks = event.price_ticks
            self.filled_lots += event.size_lots
            self.position_lots += event.taker_side * event.size_lots
            if event.taker_remaining_lots == 0:
                self._by_order_id.pop(event.taker_order_id, None)
        elif isinstance(event, OrderAccepted):
            record = self._by_client_id.pop(event.client_order_id, None)
            if record is not None:
                record.order_id = event.order_id
                self._by_order_id[event.order_id] = record
        elif isinstance(event, OrderCancelled):
            self._by_order_id.pop(event.order_id, None)
        elif isinstance(event, Rejected) and event.client_order_id in self._by_client_id:
            del self._by_client_id[event.client_order_id]
            self.rejections += 1


KINDS["whale"] = AgentKind(params=WhaleParams, make=lambda name, params, seed: Whale(name, params))
