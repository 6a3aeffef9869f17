"""A whale in a lab: a market maker quotes three levels of 10 lots at 5, 8 and 11 bp from a
still reference, and the whale's 25-lot market buys walk it two levels (6 bp past the touch,
7.4 bp on average), every time, as the maker requotes between them; a limit through the
reference takes only what lies inside it. Bad parameters are refused naming the field."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from strikechain.engine.events import Fill
from strikechain.sim.agents import MarketMaker, MarketMakerParams, Whale, WhaleParams
from tests.sim.agents.arena import Arena, of_type
from tests.sim.agents.world import MS, PERP, SECOND, START_NS, replayed, start_reporters

LEVEL_LOTS = 10


def deep_book(directory: Path) -> Arena:
    world = Arena(
        replayed(directory, [(0, 100_000.0), (1, 100_000.0)], steps=True),
        deposits_usdc={"mm": 10_000_000, "whale": 1_000_000},
    )
    start_reporters(world)
    maker = MarketMakerParams(  # levels at 5, 8 and 11 bp either side
        instruments=(PERP.name,), poll_ns=50 * MS, levels=3, perp_size_lots=LEVEL_LOTS
    )
    world.start(MarketMaker("mm", maker))
    return world


def test_market_orders_walk_the_book_by_what_its_depth_implies(tmp_path: Path) -> None:
    world = deep_book(tmp_path)
    events = world.events("whale")
    params = WhaleParams(
        instrument=PERP.name, size_lots=25, after_ns=2 * SECOND, every_ns=3 * SECOND, orders=3
    )
    whale = Whale("whale", params)
    world.start(whale)
    world.run_for(10)
    assert whale.orders_sent == len(whale.history) == 3
    assert [round((o.sent_ns - START_NS) / MS) for o in whale.history] == [2_100, 5_100, 8_100]
    for order in whale.history:
        assert order.touch_ticks == 200_100  # the best ask, 5 bp over 100,000
        assert order.filled_lots == 25
        # 10 lots at +5 bp, 10 at +8 and 5 at +11 (the maker ceils its asks: 200,220.00...01
        # is 200,221): the last 6 bp past the touch, 7.4 bp over the reference on average
        assert order.last_ticks == 200_221
        assert order.impact_bps() == pytest.approx(6.0, abs=0.05)
        assert order.average_ticks == pytest.approx(200_148.2)
    fills = of_type(events, Fill)
    assert [(f.price_ticks, f.size_lots) for f in fills] == [
        (200_100, 10),
        (200_160, 10),
        (200_221, 5),
    ] * 3
    assert whale.filled_lots == whale.position_lots == 75
    assert world.engine.position("whale", PERP.name) == 75
    assert whale.rejections == 0


def test_a_limit_through_the_reference_takes_only_what_lies_inside_it(tmp_path: Path) -> None:
    world = deep_book(tmp_path)
    params = WhaleParams(
        instrument=PERP.name,
        size_lots=25,
        side="sell",
        market_orders=False,
        slippage_bps=9.0,
        after_ns=2 * SECOND,
    )
    whale = Whale("whale", params)
    world.start(whale)
    world.run_for(4)
    (order,) = whale.history
    assert order.touch_ticks == 199_900  # the best bid, 5 bp under 100,000
    assert order.filled_lots == 20  # the bids at -5 and -8 bp; -11 bp is beyond its limit
    assert order.last_ticks == 199_840
    assert order.impact_bps() == pytest.approx(3.0, abs=0.05)
    assert whale.position_lots == world.engine.position("whale", PERP.name) == -20


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^WhaleParams.size_lots must be between 1 and"):
        WhaleParams(instrument="X", size_lots=0)
    with pytest.raises(ValueError, match=r"^WhaleParams.every_ns must be > 0 with orders > 1"):
        WhaleParams(instrument="X", size_lots=1, orders=2, every_ns=0)
    with pytest.raises(msgspec.ValidationError, match=r"Invalid enum value 'long'"):
        msgspec.convert({"instrument": "X", "size_lots": 1, "side": "long"}, WhaleParams)
    with pytest.raises(msgspec.ValidationError, match=r"WhaleParams.orders must be between 1"):
        msgspec.convert({"instrument": "X", "size_lots": 1, "orders": 0}, WhaleParams)
