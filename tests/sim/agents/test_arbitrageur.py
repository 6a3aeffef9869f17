"""An arbitrageur in a lab: it takes a quote that is stale against its reference by more than
its edge, and leaves a fair one alone; it keeps within its inventory limit and hedges."""

from __future__ import annotations

import msgspec
import pytest

from strikechain.engine.events import Fill
from strikechain.engine.txs import CancelAll, PlaceOrder, PostOnly, Side
from strikechain.sim.agents import Arbitrageur, ArbitrageurParams
from strikechain.sim.hedge_venue import HedgeVenueParams
from tests.sim.agents.world import EXPIRY_NEAR, MS, PERP, World, flat, option, start_reporters


def quote(world: World, side: Side, price_ticks: int, lots: int) -> None:
    order = PlaceOrder(
        account="maker",
        instrument=PERP.name,
        side=side,
        price_ticks=price_ticks,
        size_lots=lots,
        post_only=PostOnly.REJECT,
    )
    world.lab.gateway("maker").submit(order)


def test_takes_a_stale_quote_and_not_a_fair_one() -> None:
    world = World(
        flat(),
        deposits_usdc={"maker": 1_000_000, "arb": 1_000_000},
        hedge=HedgeVenueParams(latency_ns=10 * MS),
    )
    start_reporters(world)
    fills = world.events("arb")
    params = ArbitrageurParams(
        instruments=(PERP.name,),
        edge_bps=5.0,
        max_take_lots=4,
        max_position_lots=6,
        hedge_delta_units=0.001,
    )
    arb = Arbitrageur("arb", params)
    world.start(arb, latency_ns=0)
    world.run_for(2)
    quote(world, Side.BUY, 199_980, 10)  # 1 bp either side of 100,000: fair
    quote(world, Side.SELL, 200_020, 10)
    world.run_for(3)
    assert not [e for _, e in fills if isinstance(e, Fill)]
    assert arb.orders_sent == 0
    world.lab.gateway("maker").submit(CancelAll(account="maker"))
    quote(world, Side.SELL, 199_700, 10)  # an ask 15 bp under the reference: stale
    world.run_for(3)
    taken = [e for _, e in fills if isinstance(e, Fill)]
    assert taken  # the stale ask, 4 lots at a time up to its limit of 6
    assert all(f.maker_account == "maker" and f.price_ticks == 199_700 for f in taken)
    assert all(f.taker_side == Side.BUY for f in taken)
    assert [f.size_lots for f in taken] == [4, 2]
    assert arb.position_lots(PERP.name) == 6
    assert arb.orders_sent == 2
    assert world.lab.hedge is not None
    account = world.lab.hedge.get_account("arb")
    assert account is not None
    assert account.positions["BTC"] == pytest.approx(-0.006)


def test_params_and_instruments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^ArbitrageurParams.edge_bps must be > 0, got 0"):
        ArbitrageurParams(instruments=("X",), edge_bps=0)
    with pytest.raises(msgspec.ValidationError, match=r"max_take_lots must be >= 1"):
        msgspec.convert({"instruments": ["X"], "max_take_lots": 0}, ArbitrageurParams)
    call = option(EXPIRY_NEAR, 100_000, True)
    world = World(flat(), instruments=(PERP, call))
    arb = Arbitrageur("arb", ArbitrageurParams(instruments=(call.name,)))
    with pytest.raises(ValueError, match=r"ArbitrageurParams.instruments must name perpetuals"):
        world.start(arb)
