"""Noise traders in a lab: their orders arrive as a Poisson process at ``rate_per_s`` times the
mempool's demand multiplier, every one of them reaching the venue through the gateway."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from strikechain.engine.events import OrderAccepted, Rejected
from strikechain.pricing import detmath
from strikechain.sim.agents import MarketMaker, MarketMakerParams, NoiseParams, NoiseTrader
from strikechain.sim.agents.grid import Draws, exponential_of_uniform
from strikechain.sim.consensus import DemandSpike, MempoolParams
from tests.sim.agents.world import MS, PERP, SECOND, START_NS, World, flat, start_reporters


def test_arrivals_match_the_rate_and_follow_demand_spikes() -> None:
    spike = DemandSpike(
        start_ns=START_NS + 100 * SECOND, end_ns=START_NS + 200 * SECOND, multiplier=3.0
    )
    world = World(
        flat(),
        deposits_usdc={f"noise-{i}": 1_000_000 for i in range(4)} | {"mm": 10_000_000},
        block_interval_ns=250 * MS,
        mempool=MempoolParams(base_fee_floor=0, demand_spikes=(spike,)),
    )
    start_reporters(world)
    world.start(MarketMaker("mm", MarketMakerParams(instruments=(PERP.name,), perp_size_lots=50)))
    params = NoiseParams(instruments=(PERP.name,), rate_per_s=2.0, cancel_probability=0.2)
    traders = [NoiseTrader(f"noise-{i}", params) for i in range(4)]
    events = [world.events(trader.name) for trader in traders]
    for trader in traders:
        world.start(trader)
    world.run_for(99.8)  # 100 s at 8 orders a second in all
    quiet = sum(trader.arrivals for trader in traders)
    world.run_for(100)  # 100 s at 24 a second
    busy = sum(trader.arrivals for trader in traders) - quiet
    # Poisson counts: 800 +- 28 and 2,400 +- 49 (one standard deviation); within 4 of them
    assert abs(quiet - 800) < 4 * math.sqrt(800)
    assert abs(busy - 2_400) < 4 * math.sqrt(2_400)
    for trader, seen in zip(traders, events, strict=True):  # every order reached the venue
        placed = [
            e
            for _, e in seen
            if isinstance(e, OrderAccepted)
            or (isinstance(e, Rejected) and e.code != "ORDER_NOT_FOUND")  # a cancel too late
        ]
        in_flight = trader.arrivals - len(placed)  # sent in the last block's time
        assert 0 <= in_flight <= 3
        assert trader.takes + trader.limits == trader.arrivals
        assert 0.5 < trader.takes / trader.arrivals < 0.7  # take_probability 0.6
        assert trader.cancels > 0


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^NoiseParams.rate_per_s must be > 0, got 0"):
        NoiseParams(instruments=("X",), rate_per_s=0.0)
    with pytest.raises(msgspec.ValidationError, match=r"size_lots_max must be >= size_lots_min"):
        msgspec.convert({"instruments": ["X"], "size_lots_min": 3, "size_lots_max": 2}, NoiseParams)


def test_arrival_gaps_are_the_pricing_librarys_exponentials_bit_for_bit() -> None:
    """``Draws.exponential`` transforms one uniform at a time (no NumPy call per draw): the same
    doubles as ``-detmath.log1p(-U)`` over the whole refill, edge cases included."""
    uniforms = np.random.default_rng(11).random(200_000)
    edges = [0.0, 2.0**-1074, 2.0**-11, 2.0**-10 * (1 - 2.0**-52), 2.0**-10, 0.5, 0.75]
    uniforms = np.concatenate([uniforms, uniforms * 2.0**-10, np.array([*edges, 1 - 2.0**-53])])
    expected = (-detmath.log1p(-uniforms)).view(np.int64).tolist()
    got = np.array([exponential_of_uniform(u) for u in uniforms.tolist()]).view(np.int64)
    assert got.tolist() == expected
    draws, rng = Draws(np.random.default_rng(3)), np.random.default_rng(3)
    assert [draws.exponential() for _ in range(600)] == (
        -detmath.log1p(-np.concatenate([rng.random(512), rng.random(512)]))
    ).tolist()[:600]
