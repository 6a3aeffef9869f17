"""Taking orders: how agents build them, what a stale quote is worth taking, and following one to
its end.

- :func:`ioc_order` builds the immediate-or-cancel order every taking agent sends, a limit (at
  least one tick: a sell limit driven to zero or below is still an order) or a market order;
  :func:`take_order` is either, the limit a slippage through the agent's reference.
- :class:`StaleQuotes` is the arbitrageur's and the sniper's trade: a top of book beyond the
  reference by an edge is taken up to that edge, within a size and an inventory limit.
- :class:`OrdersInFlight` sends an agent's immediate-or-cancel limits, at most one in flight per
  instrument, and follows each from its client id to its order id to its end: a fill that leaves
  nothing, the cancel of the rest, a refusal (from the agent's own account's events), or, without
  any of them for ``retry_ns``, given up as lost.

Nothing here draws or reads a clock but through the agent's context.
"""

from __future__ import annotations

from typing import Final

from strikechain.engine.events import Event, Fill, OrderAccepted, OrderCancelled, Rejected
from strikechain.engine.invariant import invariant
from strikechain.engine.txs import OrderType, PlaceOrder, Side, TimeInForce
from strikechain.runtime.gateway import Ticker
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.grid import InstrumentGrid

_IOC: Final = int(TimeInForce.IOC)
_LIMIT: Final = int(OrderType.LIMIT)
_MARKET: Final = int(OrderType.MARKET)
_BUY: Final = int(Side.BUY)
_SELL: Final = int(Side.SELL)


def ioc_order(
    account: str,
    instrument: str,
    side: int,
    size_lots: int,
    priority_fee: int,
    *,
    price_ticks: int | None,
    client_order_id: str = "",
    reduce_only: bool = False,
) -> PlaceOrder:
    """An immediate-or-cancel order: a limit at ``price_ticks`` (at least 1), or with ``None`` a
    market order."""
    return PlaceOrder(
        account=account,
        instrument=instrument,
        side=side,
        size_lots=size_lots,
        price_ticks=0 if price_ticks is None else max(price_ticks, 1),
        order_type=_MARKET if price_ticks is None else _LIMIT,
        time_in_force=_IOC,
        reduce_only=reduce_only,
        client_order_id=client_order_id,
        priority_fee=priority_fee,
    )


def take_order(
    context: AgentContext,
    account: str,
    grid: InstrumentGrid,
    side: int,
    size_lots: int,
    *,
    tip: int,
    market: bool,
    slippage_bps: float,
    client_order_id: str = "",
    reduce_only: bool = False,
) -> PlaceOrder:
    """``account``'s order with priority fee ``context.fee(tip)``: a market order (``market``),
    or a limit ``slippage_bps`` through its reference."""
    fee = context.fee(tip)
    price_ticks = None
    if not market:
        reference = context.reference.price(grid.underlying)
        price_ticks = grid.through_ticks(reference, side, slippage_bps)
    return ioc_order(
        account,
        grid.name,
        side,
        size_lots,
        fee,
        price_ticks=price_ticks,
        client_order_id=client_order_id,
        reduce_only=reduce_only,
    )


class StaleQuotes:
    """When a top of book is stale against a reference: the best ask below ``reference x
    buy_below`` is bought, the best bid above ``reference x sell_above`` sold, with a limit at
    that threshold (every level stale by the edge, nothing else), for at most the top level's
    size, ``max_take_lots`` and what ``max_position_lots`` leaves."""

    __slots__ = ("buy_below", "max_position_lots", "max_take_lots", "sell_above")

    def __init__(
        self, buy_below: float, sell_above: float, max_take_lots: int, max_position_lots: int
    ) -> None:
        self.buy_below = buy_below
        self.sell_above = sell_above
        self.max_take_lots = max_take_lots
        self.max_position_lots = max_position_lots

    def take(
        self, grid: InstrumentGrid, ticker: Ticker, reference: float, position_lots: int
    ) -> tuple[int, int, int]:
        """``(side, limit_ticks, lots)`` to take, or ``(0, 0, 0)``: nothing stale, or no room."""
        ask, bid = ticker.best_ask_ticks, ticker.best_bid_ticks
        if ask and ask * grid.tick_usdc < reference * self.buy_below:
            room = self.max_position_lots - position_lots
            lots = min(ticker.best_ask_lots, self.max_take_lots, room)
            if lots > 0:
                return _BUY, grid.bid_ticks(reference * self.buy_below), lots
        elif bid and bid * grid.tick_usdc > reference * self.sell_above:
            room = self.max_position_lots + position_lots
            lots = min(ticker.best_bid_lots, self.max_take_lots, room)
            if lots > 0:
                return _SELL, grid.ask_ticks(reference * self.sell_above), lots
        return 0, 0, 0


class _InFlight:
    """One order in flight."""

    __slots__ = ("client_order_id", "instrument", "order_id", "sent_ns")

    def __init__(self, instrument: str, client_order_id: str, sent_ns: int) -> None:
        self.instrument = instrument
        self.client_order_id = client_order_id
        self.sent_ns = sent_ns
        self.order_id = 0
        """0 until the venue accepts it."""


class OrdersInFlight:
    """``account``'s orders in flight, at most one per instrument (see the module)."""

    __slots__ = ("_account", "_by_client_id", "_by_instrument", "_by_order_id", "_retry_ns")

    def __init__(self, account: str, retry_ns: int) -> None:
        self._account = account
        self._retry_ns = retry_ns
        self._by_instrument: dict[str, _InFlight] = {}
        self._by_client_id: dict[str, _InFlight] = {}
        self._by_order_id: dict[int, _InFlight] = {}

    def free(self, instrument: str, now_ns: int) -> bool:
        """Whether an order for ``instrument`` may be sent now: none is in flight, or the one in
        flight was sent ``retry_ns`` or more ago and is forgotten (lost)."""
        order = self._by_instrument.get(instrument)
        if order is None:
            return True
        if now_ns - order.sent_ns < self._retry_ns:
            return False
        self._end(order)
        return True

    def send(
        self,
        context: AgentContext,
        instrument: str,
        side: int,
        price_ticks: int,
        size_lots: int,
        priority_fee: int,
    ) -> None:
        """Sends an immediate-or-cancel limit for ``instrument`` (which must be :meth:`free`)
        with the agent's next client id, and follows it."""
        invariant(instrument not in self._by_instrument, "one order in flight per instrument")
        client_id = context.client_order_id()
        order = ioc_order(
            self._account,
            instrument,
            side,
            size_lots,
            priority_fee,
            price_ticks=price_ticks,
            client_order_id=client_id,
        )
        context.gateway.submit(order)
        in_flight = _InFlight(instrument, client_id, context.scheduler.now_ns())
        self._by_instrument[instrument] = in_flight
        self._by_client_id[client_id] = in_flight

    def instrument_of(self, order_id: int) -> str:
        """The instrument of accepted order ``order_id`` if it is in flight, else ``""``."""
        order = self._by_order_id.get(order_id)
        return "" if order is None else order.instrument

    def follow(self, event: Event | Ticker) -> str:
        """Notes the order id an ``OrderAccepted`` gives; returns the instrument whose order in
        flight ``event`` (one of the account's) ends, and forgets that order, or ``""``."""
        order: _InFlight | None = None
        if isinstance(event, Fill):
            if event.taker_account == self._account and event.taker_remaining_lots == 0:
                order = self._by_order_id.get(event.taker_order_id)
        elif isinstance(event, OrderAccepted):
            accepted = self._by_client_id.get(event.client_order_id)
            if accepted is not None:
                accepted.order_id = event.order_id
                self._by_order_id[event.order_id] = accepted
        elif isinstance(event, OrderCancelled):
            order = self._by_order_id.get(event.order_id)
        elif isinstance(event, Rejected):
            order = self._by_client_id.get(event.client_order_id)
        if order is None:
            return ""
        self._end(order)
        return order.instrument

    def _end(self, order: _InFlight) -> None:
        del self._by_instrument[order.instrument]
        self._by_client_id.pop(order.client_order_id, None)
        self._by_order_id.pop(order.order_id, None)
