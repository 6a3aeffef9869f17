"""A market maker's vega management: its net vega from its option fills, and the skew of its
option quotes' vol against it (long vega: lower vols, both sides, capped); with the skew off
(the default) a run is the one it was without it, block for block."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from strikechain import pricing
from strikechain.engine.instruments import Instrument
from strikechain.engine.oracle import NANOS_PER_YEAR
from strikechain.engine.txs import PlaceOrder, Side, TimeInForce
from strikechain.sim.agents import MarketMaker, MarketMakerParams, NoiseParams, NoiseTrader
from strikechain.sim.agents.fair import smile_vol
from strikechain.sim.hedge_venue import HedgeVenueParams
from tests.sim.agents.world import (
    EXPIRY_FAR,
    EXPIRY_NEAR,
    MS,
    PERP,
    World,
    flat,
    option,
    start_reporters,
)

ATM_CALL = option(EXPIRY_NEAR, 100_000, True)
OPTION_TICK = 5.0
UNITS_PER_LOT = 0.01
LOTS = 10


def maker(instruments: tuple[str, ...], **changes: object) -> MarketMakerParams:
    fields: dict[str, object] = {
        "instruments": instruments,
        "poll_ns": 50 * MS,
        "levels": 1,
        "option_size_lots": LOTS,
    }
    fields.update(changes)
    return msgspec.convert(fields, MarketMakerParams)


def quotes(world: World) -> tuple[int, int]:
    """The maker's one bid and one ask on the option, in ticks."""
    orders = world.engine.open_orders("mm")
    bids = [o.price for o in orders if o.side == int(Side.BUY)]
    asks = [o.price for o in orders if o.side == int(Side.SELL)]
    assert len(bids) == len(asks) == 1
    return bids[0], asks[0]


def after_a_fill(side: Side, **changes: object) -> tuple[World, MarketMaker]:
    """A maker quoting the at-the-money call, after a taker took its whole ``side`` quote
    (SELL: the maker bought ``LOTS`` lots)."""
    world = World(flat(), instruments=[ATM_CALL], deposits_usdc={"mm": 5_000_000, "t": 1_000_000})
    start_reporters(world)
    mm = MarketMaker("mm", maker((ATM_CALL.name,), **changes))
    world.start(mm)
    world.run_for(2)
    take = PlaceOrder(
        account="t",
        instrument=ATM_CALL.name,
        side=side,
        price_ticks=1 if side == Side.SELL else 100_000,
        size_lots=LOTS,
        time_in_force=TimeInForce.IOC,
    )
    world.lab.gateway("t").submit(take)
    world.run_for(1)
    return world, mm


def fair_and_vega(world: World, instrument: Instrument) -> tuple[float, float]:
    """Black-76 price and vega per vol point (USDC per BTC) at the default smile of a maker."""
    forward = world.reference()
    strike = float(instrument.strike_ticks * instrument.tick_size)
    years = (instrument.expiry_ns - world.now) / NANOS_PER_YEAR
    vol = float(smile_vol(0.6, -0.2, 0.5, np.log(np.asarray([strike / forward])))[0])
    call = instrument.option_type.name == "CALL"
    greeks = pricing.black76_greeks(
        forward, strike, years, vol, call=call, greeks=("price", "vega")
    )
    return float(greeks.price), float(greeks.vega) * 0.01


@pytest.mark.parametrize("side", [Side.SELL, Side.BUY])
def test_quotes_move_by_the_skew_times_vega_against_net_vega_and_stop_at_the_cap(
    side: Side,
) -> None:
    plain_world, plain = after_a_fill(side)
    skew_world, skewed = after_a_fill(
        side, vega_skew_points_per_unit=0.5, max_vega_skew_points=50.0
    )
    capped_world, capped = after_a_fill(
        side, vega_skew_points_per_unit=0.5, max_vega_skew_points=1.0
    )
    sign = 1 if side == Side.SELL else -1  # the maker bought: long vega
    for mm in (plain, skewed, capped):
        assert mm.position_lots(ATM_CALL.name) == sign * LOTS
    _, vega = fair_and_vega(plain_world, ATM_CALL)  # about 57 USDC a BTC per vol point
    net_vega = plain.net_vega("BTC")
    assert net_vega == pytest.approx(sign * LOTS * UNITS_PER_LOT * vega, rel=1e-3)
    assert skewed.net_vega("BTC") == pytest.approx(net_vega, rel=1e-9)
    assert plain.net_vega("ETH") == 0.0
    assert abs(0.5 * net_vega) > 1.0  # about 2.8 points: the cap of 1 binds
    plain_bid, plain_ask = quotes(plain_world)
    for world, points in ((skew_world, 0.5 * net_vega), (capped_world, sign * 1.0)):
        shift_ticks = points * vega / OPTION_TICK  # vol points x USDC per vol point, in ticks
        assert abs(shift_ticks) > 4
        bid, ask = quotes(world)
        # long vega (points > 0): both sides lower by the shift; each within a tick of rounding
        assert plain_bid - bid == pytest.approx(shift_ticks, abs=1.0)
        assert plain_ask - ask == pytest.approx(shift_ticks, abs=1.0)


def chain_run(**changes: object) -> tuple[list[bytes], MarketMaker, World]:
    """A maker on a perp and a small chain, noise traders selling it options for 15 s."""
    options = [
        option(e, k, c)
        for e in (EXPIRY_NEAR, EXPIRY_FAR)
        for k in (95_000, 105_000)
        for c in (True, False)
    ]
    world = World(
        flat(),
        instruments=[PERP, *options],
        deposits_usdc={"mm": 5_000_000, "noise": 1_000_000},
        hedge=HedgeVenueParams(latency_ns=10 * MS),
    )
    start_reporters(world)
    names = tuple(o.name for o in options)
    params = maker((PERP.name, *names), hedge_delta_units=0.01, **changes)
    mm = MarketMaker("mm", params)
    world.start(mm, latency_ns=50 * MS)
    selling = NoiseParams(
        instruments=names, rate_per_s=6.0, buy_probability=0.0, take_probability=1.0
    )
    world.start(NoiseTrader("noise", selling))
    world.run_for(15)
    world.engine.check()
    return [block.digest for block in world.lab.blocks], mm, world


def quoted_vols(world: World) -> dict[tuple[str, int], float]:
    """(option, side) -> how far the maker's quote stands from fair, in vol points."""
    found = {}
    for order in world.engine.open_orders("mm"):
        instrument = world.instruments[order.instrument]
        if instrument.is_option:
            fair, vega = fair_and_vega(world, instrument)
            found[order.instrument, order.side] = (order.price * OPTION_TICK - fair) / vega
    return found


def test_a_maker_long_vega_from_its_fills_quotes_lower_vols() -> None:
    _, plain, plain_world = chain_run()
    _, skewed, skew_world = chain_run(vega_skew_points_per_unit=0.5, max_vega_skew_points=3.0)
    assert plain.fills > 50
    assert skewed.fills > 50
    assert plain.net_vega("BTC") > 50.0  # long vega: 0.5 a unit is far beyond the cap
    assert skewed.net_vega("BTC") > 50.0
    plain_vols, skewed_vols = quoted_vols(plain_world), quoted_vols(skew_world)
    assert len(plain_vols) == len(skewed_vols) == 16  # eight options, a bid and an ask each
    for (name, side), offset in plain_vols.items():
        half = 2.0 if side == int(Side.SELL) else -2.0  # the half spread, in vol points
        assert offset == pytest.approx(half, abs=0.15)  # a tick of rounding, in vol
        assert skewed_vols[name, side] == pytest.approx(half - 3.0, abs=0.15)


def test_default_params_leave_a_run_unchanged() -> None:
    digests, _, _ = chain_run()
    assert len(digests) > 100
    for changes in (
        {"vega_skew_points_per_unit": 0.0, "max_vega_skew_points": 1.0},
        {"vega_skew_points_per_unit": 0.5, "max_vega_skew_points": 0.0},
    ):
        assert chain_run(**changes)[0] == digests


def test_params_are_checked_where_they_are_loaded() -> None:
    for field in ("vega_skew_points_per_unit", "max_vega_skew_points"):
        for bad in (-1.0, math.inf, math.nan):
            with pytest.raises(ValueError, match=rf"^MarketMakerParams.{field} must be >= 0"):
                MarketMakerParams(instruments=("X",), **{field: bad})  # type: ignore[arg-type]
