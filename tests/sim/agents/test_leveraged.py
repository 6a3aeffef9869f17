"""A leveraged trader in a lab: it reaches its target leverage (retrying what a thin book or a
margin refusal left), then holds, and a crash of the reference liquidates it."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from strikechain.engine.events import BackstopTaken, LiquidationOrder, LiquidationQueued
from strikechain.sim.agents import LeveragedParams, LeveragedTrader, MarketMaker, MarketMakerParams
from tests.sim.agents.world import MS, PERP, SECOND, START_NS, World, replayed, start_reporters


def test_reaches_its_leverage_then_a_crash_liquidates_it(tmp_path: Path) -> None:
    # still for 20 s, then -15% in 10 s
    path = [(0, 100_000.0), (20, 100_000.0), (30, 85_000.0)]
    world = World(
        replayed(tmp_path, path, steps=False), deposits_usdc={"mm": 20_000_000, "lev": 10_000}
    )
    start_reporters(world)
    events = world.events("lev")
    maker = MarketMakerParams(
        instruments=(PERP.name,), poll_ns=50 * MS, levels=3, perp_size_lots=300
    )
    world.start(MarketMaker("mm", maker))
    params = LeveragedParams(
        instrument=PERP.name,
        collateral_usdc=10_000.0,
        leverage=10.0,
        open_after_ns=3 * SECOND,
        retry_after_ns=SECOND,
    )
    trader = LeveragedTrader("lev", params)
    world.start(trader, latency_ns=100 * MS)
    world.run_for(10)
    # 1,000 lots of 0.001 BTC: 900 from the maker's three levels, the rest on the retry
    assert trader.target_lots == 1_000
    assert world.engine.position("lev", PERP.name) == trader.position_lots == 1_000
    assert trader.orders_sent == 2
    assert trader.reached_ns > 0
    ledger = world.engine.get_ledger("lev", "BTC")
    assert ledger is not None
    assert 9.9 < trader.leverage(world.reference(), ledger.equity / 1e6) < 10.2
    sent = trader.orders_sent
    world.run_for(30)
    # maintenance (3%) is breached near 92,780: 4.8 s into the crash
    assert START_NS + 24 * SECOND < trader.liquidated_ns < START_NS + 27 * SECOND
    assert [e for _, e in events if isinstance(e, LiquidationQueued)]
    # the lane's orders meet a book the maker empties every block (its cancels run first,
    # then the liquidations, then its new quotes), so the backstop pool takes the position
    assert [e for _, e in events if isinstance(e, LiquidationOrder)]
    assert sum(e.lots for _, e in events if isinstance(e, BackstopTaken)) > 0
    assert world.engine.position("lev", PERP.name) == 0
    assert trader.orders_sent == sent  # it did nothing to save itself
    world.engine.check()


def test_retries_smaller_after_a_refusal(tmp_path: Path) -> None:
    world = World(
        replayed(tmp_path, [(0, 100_000.0), (1, 100_000.0)], steps=True),
        deposits_usdc={"mm": 20_000_000, "lev": 10_000},
    )
    start_reporters(world)
    world.start(
        MarketMaker("mm", MarketMakerParams(instruments=(PERP.name,), perp_size_lots=3_000))
    )
    params = LeveragedParams(  # 25x is beyond the venue's 20x (5% initial margin)
        instrument=PERP.name, collateral_usdc=10_000.0, leverage=25.0, open_after_ns=2 * SECOND
    )
    trader = LeveragedTrader("lev", params)
    world.start(trader)
    world.run_for(8)
    assert trader.rejections >= 1
    assert 0 < trader.position_lots < trader.target_lots == 2_500
    assert trader.orders_sent <= params.max_attempts


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^LeveragedParams.leverage must be > 0, got 0"):
        LeveragedParams(instrument="X", collateral_usdc=1.0, leverage=0.0)
    with pytest.raises(msgspec.ValidationError, match=r"Invalid enum value 'up'"):
        msgspec.convert({"instrument": "X", "collateral_usdc": 1.0, "side": "up"}, LeveragedParams)
