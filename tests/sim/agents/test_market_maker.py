"""Market makers in a lab, observed through the book's ticker: they quote both sides around
their fair value, requote after a reference jump within their latency and poll, skew against
inventory, hedge delta beyond their threshold, quote options around Black-76, and withdraw
after sustained negative markouts (a trending price and a faster arbitrageur), then resume."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

from strikechain import pricing
from strikechain.engine.oracle import NANOS_PER_YEAR
from strikechain.engine.txs import PlaceOrder, Side, TimeInForce
from strikechain.runtime.gateway import Ticker
from strikechain.sim.agents import (
    Arbitrageur,
    ArbitrageurParams,
    MarketMaker,
    MarketMakerParams,
    NoiseParams,
    NoiseTrader,
)
from strikechain.sim.agents.fair import smile_vol
from strikechain.sim.hedge_venue import HedgeVenueParams
from tests.sim.agents.world import (
    EXPIRY_NEAR,
    MS,
    PERP,
    SECOND,
    START_NS,
    World,
    flat,
    option,
    replayed,
    start_reporters,
)

TICK = 0.5


def mid(ticker: Ticker) -> float:
    return (ticker.best_bid_ticks + ticker.best_ask_ticks) * TICK / 2


def maker(**changes: object) -> MarketMakerParams:
    fields: dict[str, object] = {"instruments": (PERP.name,), "poll_ns": 50 * MS}
    fields.update(changes)
    return msgspec.convert(fields, MarketMakerParams)


def still(tmp_path: Path, price: float = 100_000.0) -> World:
    return World(
        replayed(tmp_path, [(0, price), (1, price)], steps=True),
        deposits_usdc={"mm": 5_000_000, "taker": 1_000_000},
        hedge=HedgeVenueParams(latency_ns=10 * MS),
    )


def take(world: World, side: Side, lots: int, price_ticks: int) -> None:
    order = PlaceOrder(
        account="taker",
        instrument=PERP.name,
        side=side,
        price_ticks=price_ticks,
        size_lots=lots,
        time_in_force=TimeInForce.IOC,
    )
    world.lab.gateway("taker").submit(order)


def test_quotes_both_sides_around_fair_and_requotes_after_a_jump(tmp_path: Path) -> None:
    prices = replayed(tmp_path, [(0, 100_000.0), (10, 101_000.0)], steps=True)
    world = World(prices, deposits_usdc={"mm": 5_000_000})
    start_reporters(world)
    tickers = world.tickers(PERP.name)
    mm = MarketMaker("mm", maker(half_spread_bps=5.0, level_step_bps=3.0, perp_size_lots=10))
    world.start(mm, latency_ns=200 * MS)
    world.run_for(20)
    quiet = [t for when, t in tickers if START_NS + 2 * SECOND < when < START_NS + 10 * SECOND]
    assert quiet
    for ticker in quiet:  # 5 bp either side of 100,000, floored and ceiled to the tick
        assert 99_950.0 - TICK < ticker.best_bid_ticks * TICK <= 99_950.0
        assert 100_050.0 <= ticker.best_ask_ticks * TICK < 100_050.0 + TICK
        assert ticker.best_bid_lots == ticker.best_ask_lots == 10
    moved = [when for when, t in tickers if mid(t) > 100_500.0]
    # the jump at 10 s is seen at 10.2 s, requoted within a 50 ms poll, in the next 100 ms block
    assert START_NS + 10_200 * MS < moved[0] < START_NS + 10_400 * MS
    last = tickers[-1][1]
    assert abs(mid(last) / 101_000.0 - 1.0) < 1e-5
    assert mm.requotes < 10  # the reference moved once; refreshes every 10 s
    assert mm.withdrawals == []
    assert mm.rejections == 0


def test_skews_quotes_against_its_inventory(tmp_path: Path) -> None:
    world = still(tmp_path)
    start_reporters(world)
    tickers = world.tickers(PERP.name)
    mm = MarketMaker("mm", maker(skew_bps_per_delta_unit=2_000.0, perp_size_lots=20))
    world.start(mm)
    world.run_for(3)
    assert abs(mid(tickers[-1][1]) - 100_000.0) <= TICK
    take(world, Side.SELL, 15, 199_000)  # the maker buys 15 lots: 0.015 BTC long
    world.run_for(2)
    assert mm.position_lots(PERP.name) == 15
    assert mm.net_delta_units("BTC") == pytest.approx(0.015)
    assert abs(mid(tickers[-1][1]) - 100_000.0 * (1 - 0.0030)) <= TICK  # 2,000 bp x 0.015
    take(world, Side.BUY, 30, 201_000)  # now 0.015 short
    world.run_for(2)
    assert mm.position_lots(PERP.name) == -15
    assert abs(mid(tickers[-1][1]) - 100_000.0 * (1 + 0.0030)) <= TICK


def test_hedges_its_delta_on_the_hedging_venue_beyond_its_threshold(tmp_path: Path) -> None:
    world = still(tmp_path)
    start_reporters(world)
    mm = MarketMaker("mm", maker(hedge_delta_units=0.005, perp_size_lots=10))
    world.start(mm)
    world.run_for(3)
    take(world, Side.SELL, 15, 199_000)  # +0.015 BTC on the venue
    world.run_for(1)
    assert world.lab.hedge is not None
    account = world.lab.hedge.get_account("mm")
    assert account is not None
    assert account.positions["BTC"] == pytest.approx(-0.015)
    take(world, Side.BUY, 4, 201_000)  # venue +0.011, net -0.004: within the threshold
    world.run_for(1)
    assert account.positions["BTC"] == pytest.approx(-0.015)
    take(world, Side.BUY, 3, 201_000)  # venue +0.008, net -0.007: beyond it
    world.run_for(1)
    assert account.positions["BTC"] == pytest.approx(-0.008)
    assert mm.net_delta_units("BTC") == pytest.approx(0.0, abs=1e-12)
    assert mm.hedger is not None
    assert mm.hedger.orders == 2


def test_quotes_options_around_black76_with_its_own_smile() -> None:
    options = [
        option(EXPIRY_NEAR, strike, call) for strike in (95_000, 105_000) for call in (True, False)
    ]
    world = World(flat(), instruments=options, deposits_usdc={"mm": 5_000_000})
    start_reporters(world)
    seen = {o.name: world.tickers(o.name) for o in options}
    params = maker(
        instruments=tuple(o.name for o in options),
        levels=1,
        option_half_spread_vol_points=2.0,
        vol_atm=0.6,
        vol_skew=-0.2,
        vol_curvature=0.5,
    )
    mm = MarketMaker("mm", params)
    world.start(mm)
    world.run_for(2)
    years = (EXPIRY_NEAR - world.now) / NANOS_PER_YEAR
    forward = world.reference()
    for instrument in options:
        strike = float(instrument.strike_ticks * instrument.tick_size)
        vol = float(smile_vol(0.6, -0.2, 0.5, np.log(np.asarray([strike / forward])))[0])
        call = instrument.option_type.name == "CALL"
        fair = pricing.black76(forward, strike, years, vol, call=call)
        vega = pricing.black76_greeks(forward, strike, years, vol, call=call, greeks=("vega",)).vega
        ticker = seen[instrument.name][-1][1]
        bid, ask = ticker.best_bid_ticks * 5.0, ticker.best_ask_ticks * 5.0
        assert bid < fair < ask
        assert ask - bid == pytest.approx(2 * 0.02 * vega, abs=10.0)  # two ticks of rounding
        assert ticker.best_bid_lots == ticker.best_ask_lots == 1


def test_withdraws_after_sustained_negative_markouts_then_resumes(tmp_path: Path) -> None:
    # +10 bp a second for a minute: a maker a second late is always 10 bp behind
    prices = replayed(tmp_path, [(0, 100_000.0), (60, 106_000.0)], steps=False)
    world = World(prices, deposits_usdc={"mm": 5_000_000, "arb": 5_000_000})
    start_reporters(world)
    tickers = world.tickers(PERP.name)
    params = maker(
        half_spread_bps=3.0,
        levels=1,
        perp_size_lots=5,
        requote_bps=1.0,
        markout_horizon_ns=SECOND,
        markout_window_ns=10 * SECOND,
        markout_min_fills=3,
        withdraw_markout_bps=-2.0,
        withdraw_after_ns=2 * SECOND,
        cooldown_ns=10 * SECOND,
    )
    mm = MarketMaker("mm", params)
    world.start(mm, latency_ns=SECOND)
    arb_params = ArbitrageurParams(
        instruments=(PERP.name,), edge_bps=1.0, max_position_lots=10_000, poll_ns=20 * MS
    )
    arb = Arbitrageur("arb", arb_params)
    world.start(arb, latency_ns=0)
    world.run_for(40)
    assert mm.withdrawals
    withdrew, resumed = mm.withdrawals[0], mm.resumes[0]
    assert withdrew < START_NS + 15 * SECOND
    assert resumed - withdrew == pytest.approx(10 * SECOND, abs=50 * MS)
    away = [t for when, t in tickers if withdrew + 500 * MS < when < resumed]
    back = [t for when, t in tickers if resumed + 500 * MS < when < resumed + 2 * SECOND]
    assert away
    assert all(t.best_bid_ticks == t.best_ask_ticks == 0 for t in away)
    assert back  # quoting again (its asks are taken as soon as they are stale)
    assert all(t.best_bid_ticks for t in back)
    assert arb.position_lots(PERP.name) > 0  # it bought the maker's stale asks


def test_does_not_withdraw_when_its_fills_are_uninformed(tmp_path: Path) -> None:
    world = World(flat(), deposits_usdc={"mm": 5_000_000, "noise": 1_000_000})
    start_reporters(world)
    params = maker(
        markout_window_ns=10 * SECOND,
        markout_min_fills=3,
        withdraw_markout_bps=-2.0,
        withdraw_after_ns=2 * SECOND,
    )
    mm = MarketMaker("mm", params)
    world.start(mm, latency_ns=SECOND)
    taking = NoiseParams(instruments=(PERP.name,), rate_per_s=5.0, take_probability=1.0)
    noise = NoiseTrader("noise", taking)
    world.start(noise)
    world.run_for(30)
    assert mm.fills > 30
    assert mm.withdrawals == []
    assert mm.markout_bps is not None
    assert mm.markout_bps > 0  # it earns its spread


def test_params_are_checked_where_they_are_loaded() -> None:
    with pytest.raises(ValueError, match=r"^MarketMakerParams.half_spread_bps must be > 0, got -1"):
        MarketMakerParams(instruments=("X",), half_spread_bps=-1)
    with pytest.raises(msgspec.ValidationError, match=r"levels must be between 1 and 20"):
        msgspec.convert({"instruments": ["X"], "levels": 0}, MarketMakerParams)
    with pytest.raises(msgspec.ValidationError, match=r"cancel_mode"):
        msgspec.convert({"instruments": ["X"], "cancel_mode": "sometimes"}, MarketMakerParams)
    world = World(flat())
    with pytest.raises(ValueError, match=r"MarketMakerParams.instruments must name listed"):
        world.start(MarketMaker("mm", maker(instruments=("ETH_USDC-PERPETUAL",))))
    hedgeless = maker(hedge_delta_units=0.1)
    with pytest.raises(ValueError, match=r"needs a hedging venue"):
        world.start(MarketMaker("mm", hedgeless))


def test_cancel_by_client_id_keeps_one_set_of_quotes(tmp_path: Path) -> None:
    prices = replayed(tmp_path, [(0, 100_000.0), (3, 100_100.0), (6, 100_200.0)], steps=True)
    world = World(prices, deposits_usdc={"mm": 5_000_000})
    start_reporters(world)
    mm = MarketMaker("mm", maker(cancel_mode="client_id"))
    world.start(mm)
    world.run_for(8)
    orders = world.engine.open_orders("mm")
    assert len(orders) == 4  # two levels a side, the last set only
    assert mm.requotes >= 3
    prices = [order.price for order in orders]
    assert (min(prices) + max(prices)) * TICK / 2 == pytest.approx(100_200.0, abs=TICK)
