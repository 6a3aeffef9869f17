"""A manipulator in a thin market: it lifts a ladder of small asks up to 100 bp over a still
reference and the last trade prints there, but the mark moves only by the clamped average of
the book's basis (0.5% of the index at most, however long the book stays lifted) and the index,
the reporters' median, barely moves though one reporter of five pushes it 150 bp. With three
reporters that push opens the oracle's circuit breaker and the manipulator's order is refused.
Bad parameters are refused naming the field."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from strikechain.engine.codes import RejectCode
from strikechain.engine.events import CircuitBreakerOpened, Fill
from strikechain.engine.txs import Side
from strikechain.sim.agents import Manipulator, ManipulatorParams
from tests.sim.agents.arena import Arena, of_type
from tests.sim.agents.world import PERP, SECOND, honest, replayed, start_reporters

ASKS_BPS = ((10, 2), (30, 2), (60, 2), (100, 2), (300, 1))
"""The thin book's asks: (bp over 100,000, lots)."""
BIDS_BPS = ((10, 4), (30, 4))


def thin_market(
    directory: Path,
    reporters: int,
    *,
    asks_bps: tuple[tuple[int, int], ...] = ASKS_BPS,
    oracle_push: bool = True,
    wash_usdc: int = 0,
) -> Arena:
    """A still reference at 100,000; ``reporters`` reporters, the last (with ``oracle_push``)
    pushing its price 150 bp up from 2 s after it starts; a thin ladder of orders, and one
    trade at 100,000; with ``wash_usdc``, a funded account ``wash``."""
    deposits = {"thin": 1_000_000, "trader": 100_000, "manipulator": 100_000}
    if wash_usdc:
        deposits["wash"] = wash_usdc
    world = Arena(
        replayed(directory, [(0, 100_000.0), (1, 100_000.0)], steps=True),
        reporters=tuple(f"reporter-{i}" for i in range(reporters)),
        quorum=reporters // 2 + 1,
        deposits_usdc=deposits,
    )
    push = honest(
        behaviour="manipulating", push_bps=150.0, push_after_ns=2 * SECOND, push_for_ns=300 * SECOND
    )
    start_reporters(world, {f"reporter-{reporters - 1}": push} if oracle_push else {})
    for bps, lots in asks_bps:
        world.rest("thin", Side.SELL, 100_000 * (1 + bps * 1e-4), lots)
    for bps, lots in BIDS_BPS:
        world.rest("thin", Side.BUY, 100_000 * (1 - bps * 1e-4), lots)
    world.rest("thin", Side.SELL, 100_000.0, 1)
    world.run_for(0.5)
    world.take("trader", Side.BUY, 100_000.0, 1)
    world.run_for(1)
    return world


def test_it_moves_the_last_trade_but_not_the_mark_beyond_its_clamp(tmp_path: Path) -> None:
    world = thin_market(tmp_path, reporters=5)
    events = world.events("manipulator")
    manipulator = Manipulator(
        "manipulator",
        ManipulatorParams(  # one push, then 120 s of a lifted book, then it unwinds
            instrument=PERP.name,
            push_bps=100.0,
            size_lots=8,
            after_ns=SECOND,
            every_ns=120 * SECOND,
            pushes=1,
        ),
    )
    world.start(manipulator)
    world.run_for(125)
    fills = [(f.price_ticks, f.size_lots) for f in of_type(events, Fill)]
    # every ask up to 100 bp, 2 lots each; then the unwind sells into the two bids
    pushed = [(200_200, 2), (200_600, 2), (201_200, 2), (202_000, 2)]
    assert fills == [*pushed, (199_800, 4), (199_400, 4)]
    assert manipulator.last_trade_before_ticks == 200_000
    assert manipulator.last_trade_extreme_ticks == 202_000
    assert manipulator.last_trade_move_bps() == pytest.approx(100.0)
    # the book's mid sat at +145 bp for two minutes (the ask left at 300 bp, the bid at -10):
    # the mark took the clamp, 0.5% of the index, and no more
    assert manipulator.mark_extreme_minor <= manipulator.index_extreme_minor * 1.005 + 1
    assert 45.0 < manipulator.mark_move_bps() < 52.0
    # one reporter of five 150 bp up is not the median
    assert abs(manipulator.index_move_bps()) < 3.0
    # the prints cost it: 0.002 BTC at each of 10, 30, 60 and 100 bp over 100,000, and the
    # unwind 0.004 BTC at each of 10 and 30 bp under
    assert manipulator.cost_usdc == pytest.approx(5.6)
    assert manipulator.position_lots == world.engine.position("manipulator", PERP.name) == 0
    assert manipulator.rejections == {}


def test_with_three_reporters_the_oracle_push_opens_the_breaker_and_refuses_it(
    tmp_path: Path,
) -> None:
    world = thin_market(tmp_path, reporters=3)
    events = world.events()
    manipulator = Manipulator(
        "manipulator",
        ManipulatorParams(instrument=PERP.name, size_lots=8, after_ns=SECOND, pushes=1),
    )
    world.start(manipulator)
    world.run_for(3)
    assert of_type(events, CircuitBreakerOpened)
    assert manipulator.rejections == {RejectCode.CIRCUIT_BREAKER_OPEN: 1}
    assert manipulator.filled_lots == 0
    assert manipulator.last_trade_move_bps() == 0.0


WIDE_ASKS_BPS = ((300, 2),)
"""A thin market with a wide spread: nothing offered between the last trade and +300 bp."""


def test_a_wash_push_prints_the_target_at_the_cost_of_fees_only(tmp_path: Path) -> None:
    world = thin_market(
        tmp_path, reporters=5, asks_bps=WIDE_ASKS_BPS, oracle_push=False, wash_usdc=100_000
    )
    events = world.events("manipulator")
    thin_events = world.events("thin")
    manipulator = Manipulator(
        "manipulator",
        ManipulatorParams(  # one wash push of 3 lots at +100 bp, 10 s later the wash unwind
            instrument=PERP.name,
            push_bps=100.0,
            size_lots=8,
            after_ns=SECOND,
            every_ns=10 * SECOND,
            pushes=1,
            wash_account="wash",
            wash_lots=3,
        ),
    )
    world.start(manipulator)
    world.run_for(5)
    # the push: one trade between its two accounts, at the target, +100 bp
    assert [(f.price_ticks, f.size_lots, f.maker_account) for f in of_type(events, Fill)] == [
        (202_000, 3, "wash")
    ]
    assert manipulator.wash_trades == 1
    assert manipulator.wash_prices_ticks == [202_000]
    assert manipulator.last_trade_before_ticks == 200_000
    assert manipulator.last_trade_extreme_ticks == 202_000
    assert manipulator.last_trade_move_bps() == pytest.approx(100.0)
    # its two accounts net to zero, and neither's print cost anything against the other's
    assert manipulator.position_lots == world.engine.position("manipulator", PERP.name) == 3
    assert manipulator.wash_position_lots == world.engine.position("wash", PERP.name) == -3
    assert manipulator.net_position_lots() == 0
    assert manipulator.cost_usdc + manipulator.wash_cost_usdc == pytest.approx(0.0)
    # nobody else's liquidity was touched
    assert not of_type(thin_events, Fill)
    world.run_for(10)
    # the mark: at most the clamp over the index, which did not move (honest reporters: their
    # noise only)
    assert abs(manipulator.index_move_bps()) < 1.0
    assert manipulator.mark_extreme_minor <= manipulator.index_extreme_minor * 1.005 + 1
    # (the wide book's mid, +145 bp, in a 60 s basis average over the 10 s it measured: ~21 bp;
    # the print itself is not in the mark)
    assert 15.0 < manipulator.mark_move_bps() < 25.0
    # the unwind: a wash trade the other way at the reference; both accounts flat
    fills = [(f.price_ticks, f.size_lots, f.maker_account) for f in of_type(events, Fill)]
    assert fills == [(202_000, 3, "wash"), (200_000, 3, "wash")]
    assert manipulator.wash_trades == 2
    assert world.engine.position("manipulator", PERP.name) == 0
    assert world.engine.position("wash", PERP.name) == 0
    assert manipulator.net_position_lots() == 0
    assert manipulator.cost_usdc + manipulator.wash_cost_usdc == pytest.approx(0.0)
    fees = sum(f.maker_fee + f.taker_fee for f in of_type(events, Fill)) / 1e6
    assert manipulator.fees_usdc == pytest.approx(fees)
    assert manipulator.rejections == manipulator.wash_rejections == {}
    # what it cost: the fees of two 3-lot trades, each paid by both its accounts
    assert manipulator.fees_usdc == pytest.approx(0.2412)


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^ManipulatorParams.push_bps must be > 0, got 0"):
        ManipulatorParams(instrument="X", push_bps=0.0)
    with pytest.raises(ValueError, match=r"^ManipulatorParams.pushes must be between 1 and"):
        ManipulatorParams(instrument="X", pushes=0)
    with pytest.raises(msgspec.ValidationError, match=r"Invalid enum value 'sideways'"):
        msgspec.convert({"instrument": "X", "direction": "sideways"}, ManipulatorParams)
    with pytest.raises(msgspec.ValidationError, match=r"ManipulatorParams.size_lots must be >= 1"):
        msgspec.convert({"instrument": "X", "size_lots": 0}, ManipulatorParams)
    with pytest.raises(ValueError, match=r"^ManipulatorParams.wash_lots must be >= 0, got -1"):
        ManipulatorParams(instrument="X", wash_lots=-1)
    same = ManipulatorParams(instrument="X", wash_account="manipulator")
    with pytest.raises(ValueError, match=r"^ManipulatorParams.wash_account must be another"):
        Manipulator("manipulator", same)
