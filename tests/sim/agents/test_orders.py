"""The taking agents' shared order helpers, alone: an order in flight ends with a fill that leaves
nothing, the cancel of its rest or a refusal, and is given up after ``retry_ns``; other accounts'
fills and other orders' events end nothing; a stale quote is taken within its limits; an
immediate-or-cancel order is a market order or a limit of at least one tick."""

from __future__ import annotations

from strikechain.engine.codes import RejectCode
from strikechain.engine.events import Fill, OrderAccepted, OrderCancelled, Rejected
from strikechain.engine.txs import OrderType, TimeInForce
from strikechain.runtime.gateway import Ticker
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.grid import InstrumentGrid
from strikechain.sim.agents.orders import OrdersInFlight, StaleQuotes, ioc_order
from tests.sim.agents.world import PERP, World, flat

NAME = PERP.name


def accepted(order_id: int, client_id: str) -> OrderAccepted:
    return OrderAccepted(1, order_id, "arb", NAME, 1, 200_000, 5, client_id)


def fill(order_id: int, remaining_lots: int, taker: str = "arb") -> Fill:
    return Fill(1, NAME, 200_000, 1, 1, 99, order_id, "maker", taker, 0, remaining_lots)


def sender() -> tuple[OrdersInFlight, AgentContext, int]:
    """An arbitrageur's orders (``retry_ns`` 100), its context and the time it sends at."""
    world = World(flat())
    return OrdersInFlight("arb", retry_ns=100), world.context("arb"), world.now


def test_an_order_in_flight_ends_once_and_holds_its_instrument_until_then() -> None:
    orders, context, now = sender()
    assert orders.free(NAME, now)
    orders.send(context, NAME, 1, 200_000, 5, 0)  # arb-1
    assert not orders.free(NAME, now + 99)
    assert orders.follow(accepted(7, "arb-1")) == ""
    assert orders.instrument_of(7) == NAME
    assert orders.follow(fill(7, remaining_lots=4)) == ""  # a part: still in flight
    assert orders.follow(fill(7, remaining_lots=0, taker="other")) == ""
    assert orders.follow(fill(7, remaining_lots=0)) == NAME
    assert orders.instrument_of(7) == ""
    assert orders.free(NAME, now)
    assert orders.follow(OrderCancelled(1, 7, "arb", NAME, 0, "ioc")) == ""  # already over


def test_a_cancelled_rest_a_refusal_and_a_lost_order_end_it() -> None:
    orders, context, now = sender()
    orders.send(context, NAME, 1, 200_000, 5, 0)
    orders.follow(accepted(7, "arb-1"))
    assert orders.follow(OrderCancelled(1, 7, "arb", NAME, 4, "ioc")) == NAME
    orders.send(context, NAME, 1, 200_000, 5, 0)
    refused = Rejected(1, "arb", RejectCode.INSUFFICIENT_MARGIN, "no", client_order_id="arb-2")
    assert orders.follow(refused) == NAME
    orders.send(context, NAME, 1, 200_000, 5, 0)
    assert orders.free(NAME, now + 100)  # lost: forgotten
    assert orders.follow(accepted(9, "arb-3")) == ""
    assert orders.instrument_of(9) == ""


def ticker(bid: tuple[int, int] = (0, 0), ask: tuple[int, int] = (0, 0)) -> Ticker:
    return Ticker(NAME, *bid, *ask, 0, 0, 0)


def test_a_stale_quote_is_taken_up_to_the_edge_within_size_and_inventory() -> None:
    grid = InstrumentGrid(PERP)  # 0.5 USDC ticks
    stale = StaleQuotes(0.999, 1.001, max_take_lots=10, max_position_lots=12)
    ask = ticker(ask=(199_000, 50))
    assert stale.take(grid, ask, 100_000.0, position_lots=0) == (1, 199_800, 10)
    assert stale.take(grid, ask, 100_000.0, position_lots=8) == (1, 199_800, 4)
    assert stale.take(grid, ask, 100_000.0, position_lots=12) == (0, 0, 0)
    assert stale.take(grid, ask, 99_500.0, position_lots=0) == (0, 0, 0)  # within the edge
    bid = ticker(bid=(201_000, 3))
    assert stale.take(grid, bid, 100_000.0, position_lots=0) == (-1, 200_200, 3)


def test_an_ioc_order_is_a_market_order_or_a_limit_of_at_least_one_tick() -> None:
    market = ioc_order("a", NAME, 1, 5, 7, price_ticks=None)
    assert (market.order_type, market.price_ticks) == (OrderType.MARKET, 0)
    limit = ioc_order("a", NAME, -1, 5, 7, price_ticks=-3, reduce_only=True)
    assert (limit.order_type, limit.price_ticks, limit.reduce_only) == (OrderType.LIMIT, 1, True)
    assert market.time_in_force == limit.time_in_force == TimeInForce.IOC
    grid = InstrumentGrid(PERP)
    assert grid.through_ticks(100_000.0, 1, 10.0) == 200_200  # a buy: above, ceiled
    assert grid.through_ticks(100_000.1, -1, 10.0) == 199_800  # a sell: below, floored
