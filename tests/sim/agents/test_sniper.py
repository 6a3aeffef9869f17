"""A sniper in a lab: the reference jumps 30 bp between two blocks and a market maker amends its
stale quotes while the sniper's order, with a tip, races them into the same block. Under fee
priority the sniper goes first and fills at the stale price; under the lanes the maker's
post-only amends go first and the sniper misses. Its fee cap is honoured, and bad parameters
are refused naming the field."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from strikechain.engine.codes import RejectCode
from strikechain.engine.events import Event, Fill, OrderAmended, OrderCancelled, Rejected
from strikechain.engine.ordering import OrderingPolicy
from strikechain.sim.agents import MarketMaker, MarketMakerParams, Sniper, SniperParams
from strikechain.sim.consensus import MempoolParams
from tests.sim.agents.arena import Arena
from tests.sim.agents.world import (
    EXPIRY_NEAR,
    MS,
    PERP,
    START_NS,
    flat,
    option,
    replayed,
    start_reporters,
)

JUMP_S = 3.03
"""The reference steps from 100,000 to 100,300 here: 30 ms before the block of 3.1 s."""
RACE_BLOCK_NS = START_NS + 3_100 * MS


def race(
    directory: Path, ordering: OrderingPolicy, *, max_fee: int = 0, base_fee_floor: int = 0
) -> tuple[Sniper, list[tuple[int, Event]]]:
    path = [(0, 100_000.0), (JUMP_S, 100_300.0)]
    world = Arena(
        replayed(directory, path, steps=True),
        ordering=ordering,
        mempool=MempoolParams(base_fee_floor=base_fee_floor),
        deposits_usdc={"mm": 10_000_000, "sniper": 1_000_000},
    )
    start_reporters(world)
    events = world.events()
    maker = MarketMakerParams(  # asks at +5 and +8 bp, 10 lots each, amended in place
        instruments=(PERP.name,), poll_ns=10 * MS, cancel_mode="amend", perp_size_lots=10
    )
    world.start(MarketMaker("mm", maker))
    sniper = Sniper(
        "sniper", SniperParams(instruments=(PERP.name,), edge_bps=10.0, tip=1_000, poll_ns=5 * MS)
    )
    context = world.context("sniper")
    context.max_fee = max_fee
    sniper.start(context)
    world.run_for(4)
    return sniper, [(t, e) for t, e in events if t == RACE_BLOCK_NS]


def test_under_fee_priority_its_tip_puts_it_ahead_of_the_makers_amends(tmp_path: Path) -> None:
    sniper, block = race(tmp_path, OrderingPolicy.FEE_PRIORITY)
    kinds = [type(e).__name__ for _, e in block]
    fills = [e for _, e in block if isinstance(e, Fill)]
    assert len(fills) == 1  # the stale ask at +5 bp of 100,000: 10 lots at 100,050
    fill = fills[0]
    assert (fill.taker_account, fill.maker_account) == ("sniper", "mm")
    assert (fill.price_ticks, fill.size_lots) == (200_100, 10)
    # applied first: before every one of the maker's amends in the same block, and the amend
    # meant for the ask it took finds nothing
    assert kinds.index("Fill") < kinds.index("OrderAmended")
    refused = [e for _, e in block if isinstance(e, Rejected) and e.account == "mm"]
    assert [e.code for e in refused] == [RejectCode.ORDER_NOT_FOUND]
    assert (sniper.attempts, sniper.hits, sniper.misses) == (1, 1, 0)
    assert sniper.filled_lots == 10
    assert sniper.position_lots(PERP.name) == 10
    assert sniper.priority_fees_paid == 1_000  # the tip (no base fee here)
    assert sniper.taker_fees_paid == 500_250  # 5 bp of 100,050 x 0.01 BTC, in minor units
    assert sniper.edge_usdc == pytest.approx(2.5)  # (100,300 - 100,050) x 0.01 BTC


def test_under_the_lanes_the_makers_amends_go_first_and_it_misses(tmp_path: Path) -> None:
    sniper, block = race(tmp_path, OrderingPolicy.LANES)
    assert not [e for _, e in block if isinstance(e, Fill)]
    kinds = [type(e).__name__ for _, e in block]
    amends = [e for _, e in block if isinstance(e, OrderAmended)]
    assert len(amends) == 4  # both bids and both asks, moved up with the reference
    assert min(e.price_ticks for e in amends[2:]) == 200_701  # the asks now at +5 bp of 100,300
    assert kinds.index("OrderAmended") < kinds.index("OrderAccepted")
    cancelled = [e for _, e in block if isinstance(e, OrderCancelled)]
    assert [(e.account, e.remaining_lots) for e in cancelled] == [("sniper", 10)]
    assert (sniper.attempts, sniper.hits, sniper.misses) == (1, 0, 1)
    assert sniper.filled_lots == sniper.position_lots(PERP.name) == 0
    assert sniper.priority_fees_paid == 1_000  # paid for a place it could not use


def test_its_fee_is_capped_and_it_does_not_send_below_the_base_fee(tmp_path: Path) -> None:
    capped, _ = race(tmp_path, OrderingPolicy.FEE_PRIORITY, max_fee=300, base_fee_floor=8)
    assert (capped.attempts, capped.hits) == (1, 1)
    assert capped.priority_fees_paid == 300  # the base fee plus the tip, cut to the cap
    priced_out, _ = race(tmp_path, OrderingPolicy.FEE_PRIORITY, max_fee=5, base_fee_floor=8)
    assert priced_out.attempts == 0
    assert priced_out.priced_out > 0
    assert priced_out.priority_fees_paid == 0


def test_params_and_instruments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^SniperParams.edge_bps must be > 0, got 0"):
        SniperParams(instruments=("X",), edge_bps=0)
    with pytest.raises(ValueError, match=r"^SniperParams.tip must be >= 0, got -1"):
        SniperParams(instruments=("X",), tip=-1)
    with pytest.raises(msgspec.ValidationError, match=r"SniperParams.max_take_lots must be >= 1"):
        msgspec.convert({"instruments": ["X"], "max_take_lots": 0}, SniperParams)
    call = option(EXPIRY_NEAR, 100_000, True)
    world = Arena(flat(), instruments=(PERP, call))
    with pytest.raises(ValueError, match=r"SniperParams.instruments must name perpetuals"):
        world.start(Sniper("sniper", SniperParams(instruments=(call.name,))))
