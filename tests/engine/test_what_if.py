"""What-if margin: the margin an order would leave its sub-ledger with, before it is placed,
equals what placing it does, and asking changes nothing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.snapshot import capture, encode_snapshot
from strikechain.engine.txs import PostOnly, TimeInForce
from tests.engine.venue import TICKS_AT_100K, USDC, Venue, rejections

MAKER = {"post_only": PostOnly.REJECT}


def funded(cash: int = 2_000 * USDC) -> Venue:
    venue = Venue()
    venue.deposit("alice", cash)
    venue.deposit("bob", 100_000 * USDC)
    return venue


@settings(max_examples=60, deadline=None)
@given(
    side=st.sampled_from([1, -1]),
    distance=st.integers(1, 2_000),
    lots=st.integers(1, 600),
    held=st.integers(-200, 200),
)
def test_a_resting_order_leaves_what_the_query_said(
    side: int, distance: int, lots: int, held: int
) -> None:
    venue = funded(5_000 * USDC)
    if held:  # alice holds a position first, bob takes the other side
        venue.place("bob", -1 if held > 0 else 1, TICKS_AT_100K, abs(held), **MAKER)
        venue.place("alice", 1 if held > 0 else -1, TICKS_AT_100K, abs(held))
    price = TICKS_AT_100K - side * distance  # never crosses: it rests
    order = venue.order("alice", side, price, lots, **MAKER)
    asked = venue.engine.what_if(order)
    events = venue.events(order)
    if asked.accepted:
        assert not rejections(events)
        ledger = venue.ledger("alice")
        assert (asked.resting_initial, asked.resting_maintenance, asked.resting_reserve) == (
            ledger.initial,
            ledger.maintenance,
            ledger.reserve,
        )
        assert asked.resting_free_collateral == ledger.free_collateral
    else:
        assert rejections(events) == [RejectCode.INSUFFICIENT_MARGIN]


def test_a_filled_order_leaves_what_the_query_said() -> None:
    venue = funded()
    venue.place("bob", -1, TICKS_AT_100K, 50, **MAKER)
    order = venue.order("alice", 1, TICKS_AT_100K, 50, time_in_force=TimeInForce.IOC)
    asked = venue.engine.what_if(order)
    # 50 lots at 100,000 USDC x 0.001 = 5,000 USDC: 5% initial is 250 USDC, 3% maintenance 150
    assert (asked.filled_initial, asked.filled_maintenance) == (250 * USDC, 150 * USDC)
    assert not rejections(venue.events(order))
    ledger = venue.ledger("alice")
    assert asked.filled_equity == ledger.equity
    assert (asked.filled_initial, asked.filled_maintenance, asked.filled_reserve) == (
        ledger.initial,
        ledger.maintenance,
        ledger.reserve,
    )
    assert asked.filled_free_collateral == ledger.free_collateral


def test_asking_changes_nothing() -> None:
    venue = funded()
    venue.place("alice", 1, TICKS_AT_100K - 10, 20, **MAKER)
    before = encode_snapshot(capture(venue.engine))
    venue.engine.what_if(venue.order("alice", -1, TICKS_AT_100K + 10, 900, **MAKER))
    venue.engine.what_if(venue.order("carol", 1, TICKS_AT_100K, 1))
    assert encode_snapshot(capture(venue.engine)) == before


def test_an_account_without_collateral_and_an_unknown_instrument() -> None:
    venue = funded()
    asked = venue.engine.what_if(venue.order("carol", 1, TICKS_AT_100K - 10, 10))
    assert (asked.equity, asked.initial, asked.accepted) == (0, 0, False)
    assert asked.resting_reserve > 0
    with pytest.raises(Rejection) as refused:
        venue.engine.what_if(venue.order("alice", 1, 1, 1, instrument="DOGE_USDC-PERPETUAL"))
    assert refused.value.code == RejectCode.UNKNOWN_INSTRUMENT
