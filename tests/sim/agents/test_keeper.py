"""Keepers in a lab: a 17x long falls into the liquidation queue when the reference steps down
3.5%. Under keeper auctions the keeper bids its margin under its reference and wins the
position at that bid, then unwinds it on the book; a better bid beats a faster one, a worse one
is refused; a bid capped below the base fee never lands and a keeper slower than the auction
misses it. Under the liquidation lane (the default) there are no auctions and it does nothing."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from strikechain.engine.codes import RejectCode
from strikechain.engine.events import (
    BackstopTaken,
    Event,
    Fill,
    LiquidationAuctionEnded,
    LiquidationAuctionStarted,
    LiquidationOrder,
)
from strikechain.engine.txs import Side
from strikechain.sim.agents import Keeper, KeeperParams
from strikechain.sim.consensus import MempoolParams
from tests.sim.agents.arena import KEEPER_AUCTIONS, Arena, of_type
from tests.sim.agents.world import MS, PERP, USDC, flat, replayed, start_reporters

DROP_S = 5.0
"""The reference steps from 100,000 to 96,500 here."""


def crash(
    directory: Path, *, auctions: bool = True, base_fee_floor: int = 0, keepers: int = 3
) -> tuple[Arena, list[tuple[int, Event]]]:
    """A world where ``lev`` is long 100 lots (0.1 BTC) at 100,000 on 600 USDC, then the
    reference steps to 96,500: below its 3% maintenance."""
    path = [(0, 100_000.0), (DROP_S, 96_500.0)]
    deposits = {"maker": 1_000_000, "lev": 600} | {f"keeper-{i}": 100_000 for i in range(keepers)}
    world = Arena(
        replayed(directory, path, steps=True),
        liquidation=KEEPER_AUCTIONS if auctions else None,
        mempool=MempoolParams(base_fee_floor=base_fee_floor),
        deposits_usdc=deposits,
    )
    start_reporters(world)
    events = world.events()
    world.rest("maker", Side.SELL, 100_000.0, 100)
    world.run_for(0.5)
    world.take("lev", Side.BUY, 100_000.0, 100)
    world.run_for(0.5)
    assert world.engine.position("lev", PERP.name) == 100
    return world, events


def keeper(world: Arena, name: str, *, max_fee: int = 0, **params: object) -> Keeper:
    agent = Keeper(name, KeeperParams(instruments=(PERP.name,), **params))  # type: ignore[arg-type]
    context = world.context(name)
    context.max_fee = max_fee
    agent.start(context)
    return agent


def test_wins_an_auction_at_its_margin_then_unwinds(tmp_path: Path) -> None:
    world, events = crash(tmp_path)
    agent = keeper(world, "keeper-0", margin_bps=50.0, reaction_ns=200 * MS, unwind=True)
    world.run_for(8)  # queued at 5 s, announced, bid, and 2 s later sold
    started = of_type(events, LiquidationAuctionStarted)
    assert [(e.account, e.side, e.lots) for e in started] == [("lev", Side.SELL, 100)]
    ended = of_type(events, LiquidationAuctionEnded)
    # 50 bp under 96,500 is 96,017.5: 192,035 ticks
    assert [(e.winner, e.lots, e.price_ticks) for e in ended] == [("keeper-0", 100, 192_035)]
    assert ended[0].auction_id == started[0].auction_id
    assert (agent.auctions_seen, agent.bids_sent, agent.wins, agent.won_lots) == (1, 1, 1, 100)
    assert agent.profit_usdc == pytest.approx(48.25)  # (96,500 - 96,017.5) x 0.1 BTC
    assert agent.rejections == {}
    # its unwind, 50 bp through 96,500, found no bid: the position stays with it
    assert agent.position_lots(PERP.name) == world.engine.position("keeper-0", PERP.name) == 100
    world.rest("maker", Side.BUY, 96_400.0, 100)
    world.run_for(1)
    assert world.engine.position("keeper-0", PERP.name) == 100  # one attempt, no retry


def test_unwinds_against_a_bid_and_keeps_the_margin(tmp_path: Path) -> None:
    world, events = crash(tmp_path)
    world.rest("maker", Side.BUY, 96_400.0, 100)
    agent = keeper(world, "keeper-0", margin_bps=50.0, unwind=True)
    before = world.engine.get_ledger("keeper-0", "BTC")
    assert before is not None
    cash_before = before.cash
    world.run_for(8)
    fills = [e for e in of_type(events, Fill) if e.taker_account == "keeper-0"]
    assert [(e.price_ticks, e.size_lots, e.taker_side) for e in fills] == [(192_800, 100, -1)]
    assert agent.position_lots(PERP.name) == world.engine.position("keeper-0", PERP.name) == 0
    assert agent.unwound_lots == 100
    ledger = world.engine.get_ledger("keeper-0", "BTC")
    assert ledger is not None
    # bought at 96,017.5, sold at 96,400 (0.1 BTC): 38.25 USDC, less the 5 bp taker fee (4.82)
    assert (ledger.cash - cash_before) / USDC == pytest.approx(38.25 - 4.82)
    world.engine.check()


def test_the_best_bid_wins_and_a_worse_one_is_refused(tmp_path: Path) -> None:
    world, events = crash(tmp_path)
    fast = keeper(world, "keeper-0", margin_bps=200.0, reaction_ns=100 * MS)
    better = keeper(world, "keeper-1", margin_bps=50.0, reaction_ns=600 * MS)
    worse = keeper(world, "keeper-2", margin_bps=300.0, reaction_ns=1_200 * MS)
    world.run_for(8)
    ended = of_type(events, LiquidationAuctionEnded)
    assert [(e.winner, e.price_ticks) for e in ended] == [("keeper-1", 192_035)]
    assert (fast.bids_sent, fast.wins, fast.losses) == (1, 0, 1)
    assert (better.wins, better.losses) == (1, 0)
    assert worse.rejections == {RejectCode.BID_NOT_BETTER: 1}
    assert (worse.wins, worse.losses) == (0, 1)


def test_a_bid_capped_below_the_base_fee_never_lands_and_a_slow_keeper_misses(
    tmp_path: Path,
) -> None:
    world, events = crash(tmp_path, base_fee_floor=8)
    cheap = keeper(world, "keeper-0", margin_bps=20.0, max_fee=5)  # the best price, no gas
    slow = keeper(world, "keeper-1", margin_bps=20.0, reaction_ns=2_500 * MS)  # past the end
    paying = keeper(world, "keeper-2", margin_bps=100.0, tip=10)
    world.run_for(8)
    ended = of_type(events, LiquidationAuctionEnded)
    # 100 bp under 96,500 is 95,535: the worst price wins, the only bid that arrived in time
    assert [(e.winner, e.price_ticks) for e in ended] == [("keeper-2", 191_070)]
    assert (cheap.bids_sent, cheap.wins, cheap.priority_fees_paid) == (1, 0, 5)
    assert (slow.bids_sent, slow.missed) == (0, 1)
    assert (paying.wins, paying.priority_fees_paid) == (1, 18)  # the base fee (8) and its tip


def test_does_nothing_under_the_liquidation_lane(tmp_path: Path) -> None:
    world, events = crash(tmp_path, auctions=False)
    agent = keeper(world, "keeper-0")
    world.run_for(8)
    assert world.engine.position("lev", PERP.name) == 0  # the lane closed it
    assert of_type(events, LiquidationOrder)
    assert sum(e.lots for e in of_type(events, BackstopTaken)) == 100
    assert not of_type(events, LiquidationAuctionStarted)
    assert (agent.auctions_seen, agent.bids_sent, agent.wins) == (0, 0, 0)
    assert world.engine.position("keeper-0", PERP.name) == 0


def test_params_and_instruments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^KeeperParams.margin_bps must be between 0.0 and"):
        KeeperParams(instruments=("X",), margin_bps=-1.0)
    with pytest.raises(msgspec.ValidationError, match=r"KeeperParams.reaction_ns must be >= 0"):
        msgspec.convert({"instruments": ["X"], "reaction_ns": -1}, KeeperParams)
    with pytest.raises(ValueError, match=r"^KeeperParams.max_position_lots must be >= 1, got 0"):
        KeeperParams(instruments=("X",), max_position_lots=0)
    world = Arena(flat())
    with pytest.raises(ValueError, match=r"KeeperParams.instruments must name listed"):
        world.start(Keeper("keeper", KeeperParams(instruments=("ETH_USDC-PERPETUAL",))))
