"""Order types, matching, cancels and amends of the continuous book, one behaviour per test."""

from __future__ import annotations

import msgspec
import pytest

from strikechain.engine.codes import CancelReason, RejectCode, Rejection
from strikechain.engine.events import OrderAccepted, OrderAmended, OrderExpired, OrderRepriced
from strikechain.engine.txs import (
    Amend,
    Cancel,
    CancelAll,
    OrderType,
    PlaceOrder,
    PostOnly,
    SelfTrade,
    Side,
    TimeInForce,
)
from tests.engine.harness import PERP, SECOND, Harness, cancels, fills, rejections

BUY, SELL = 1, -1


def test_price_time_priority() -> None:
    h = Harness()
    h.place("m1", SELL, 101, 2)
    h.place("m2", SELL, 100, 2)
    h.place("m3", SELL, 100, 2)
    trades = fills(h.place("t", BUY, 101, 5, time_in_force=TimeInForce.IOC))
    assert [(f.maker_account, f.price_ticks, f.size_lots) for f in trades] == [
        ("m2", 100, 2),
        ("m3", 100, 2),
        ("m1", 101, 1),
    ]
    assert h.depth() == ([], [(101, 1)])


def test_taker_remainder_rests_and_book_stays_uncrossed() -> None:
    h = Harness()
    h.place("m", SELL, 100, 3)
    events = h.place("t", BUY, 102, 5)
    assert [f.size_lots for f in fills(events)] == [3]
    assert fills(events)[0].taker_remaining_lots == 2
    assert h.depth() == ([(102, 2)], [])


def test_ioc_remainder_is_cancelled() -> None:
    h = Harness()
    h.place("m", SELL, 100, 3)
    events = h.place("t", BUY, 100, 5, time_in_force=TimeInForce.IOC)
    (cancelled,) = cancels(events)
    assert cancelled.remaining_lots == 2
    assert cancelled.reason == CancelReason.IMMEDIATE_OR_CANCEL
    assert h.depth() == ([], [])


def test_fill_or_kill_all_or_nothing() -> None:
    h = Harness()
    h.place("m", SELL, 100, 3)
    h.place("m", SELL, 101, 3)
    events = h.place("t", BUY, 101, 7, time_in_force=TimeInForce.FOK)
    assert [r.code for r in rejections(events)] == [RejectCode.FOK_NOT_FILLABLE]
    assert h.depth() == ([], [(100, 3), (101, 3)])
    events = h.place("t", BUY, 101, 6, time_in_force=TimeInForce.FOK)
    assert sum(f.size_lots for f in fills(events)) == 6
    assert h.depth() == ([], [])


def test_fill_or_kill_counts_only_what_self_trade_prevention_allows() -> None:
    h = Harness()
    h.place("t", SELL, 100, 5)
    h.place("m", SELL, 101, 5)
    kill = h.place("t", BUY, 101, 5, time_in_force=TimeInForce.FOK)
    assert [r.code for r in rejections(kill)] == [RejectCode.FOK_NOT_FILLABLE]
    skip_own = h.place(
        "t", BUY, 101, 5, time_in_force=TimeInForce.FOK, self_trade=SelfTrade.CANCEL_MAKER
    )
    assert [c.reason for c in cancels(skip_own)] == [CancelReason.SELF_TRADE]
    assert [(f.maker_account, f.size_lots) for f in fills(skip_own)] == [("m", 5)]


def test_market_order_stops_at_the_protection_band() -> None:
    h = Harness()
    h.place("m", SELL, 1000, 1)
    h.place("m", SELL, 1049, 1)
    h.place("m", SELL, 1051, 1)
    events = h.place("t", BUY, 0, 5, order_type=OrderType.MARKET)
    assert [f.price_ticks for f in fills(events)] == [1000, 1049]
    (cancelled,) = cancels(events)
    assert cancelled.reason == CancelReason.PRICE_BAND
    assert cancelled.remaining_lots == 3


def test_market_order_without_liquidity_is_rejected() -> None:
    h = Harness()
    events = h.place("t", BUY, 0, 5, order_type=OrderType.MARKET)
    assert [r.code for r in rejections(events)] == [RejectCode.NO_LIQUIDITY]


def test_post_only_reprices_one_tick_behind_the_touch() -> None:
    h = Harness()
    h.place("m", SELL, 100, 1)
    events = h.place("p", BUY, 105, 2, post_only=PostOnly.REPRICE)
    (repriced,) = [e for e in events if isinstance(e, OrderRepriced)]
    assert (repriced.price_ticks, repriced.requested_price_ticks) == (99, 105)
    assert not fills(events)
    assert h.depth() == ([(99, 2)], [(100, 1)])


def test_reject_post_only_rejects_a_crossing_order_and_changes_nothing() -> None:
    h = Harness()
    h.place("m", SELL, 100, 1)
    before = h.depth()
    events = h.place("p", BUY, 100, 2, post_only=PostOnly.REJECT)
    assert [r.code for r in rejections(events)] == [RejectCode.POST_ONLY_WOULD_CROSS]
    assert h.depth() == before
    assert h.engine.next_order_id == 2


def test_good_till_time_expires_by_block_time() -> None:
    h = Harness()
    expiry = h.now + 3 * SECOND
    h.place("m", SELL, 100, 1, time_in_force=TimeInForce.GTT, expire_at_ns=expiry)
    assert not [e for e in h.events(dt=SECOND) if isinstance(e, OrderExpired)]
    expired = [e for e in h.events(dt=2 * SECOND) if isinstance(e, OrderExpired)]
    assert [e.remaining_lots for e in expired] == [1]
    assert h.depth() == ([], [])
    late = h.place("m", SELL, 100, 1, time_in_force=TimeInForce.GTT, expire_at_ns=h.now)
    assert [r.code for r in rejections(late)] == [RejectCode.ALREADY_EXPIRED]


@pytest.mark.parametrize(
    ("mode", "maker_left", "taker_cancelled"),
    [
        (SelfTrade.CANCEL_TAKER, [(100, 2)], True),
        (SelfTrade.CANCEL_MAKER, [], False),
        (SelfTrade.CANCEL_BOTH, [], True),
    ],
)
def test_self_trade_prevention(
    mode: SelfTrade, maker_left: list[tuple[int, int]], taker_cancelled: bool
) -> None:
    h = Harness()
    h.place("me", SELL, 100, 2)
    events = h.place("me", BUY, 100, 3, self_trade=mode)
    assert not fills(events)
    reasons = {c.order_id: c.reason for c in cancels(events)}
    assert all(reason == CancelReason.SELF_TRADE for reason in reasons.values())
    assert (2 in reasons) == taker_cancelled
    assert (1 in reasons) == (mode != SelfTrade.CANCEL_TAKER)
    bids, asks = h.depth()
    assert asks == maker_left
    assert bids == ([] if taker_cancelled else [(100, 3)])


def test_self_trade_prevention_skips_own_orders_then_trades_with_others() -> None:
    h = Harness()
    h.place("me", SELL, 100, 1)
    h.place("other", SELL, 100, 1)
    events = h.place("me", BUY, 100, 1, self_trade=SelfTrade.CANCEL_MAKER)
    assert [(f.maker_account, f.size_lots) for f in fills(events)] == [("other", 1)]


def test_cancel_by_id_and_client_id_and_the_refusals() -> None:
    h = Harness()
    (accepted,) = [
        e for e in h.place("m", SELL, 100, 1, client_order_id="x") if isinstance(e, OrderAccepted)
    ]
    h.place("m", SELL, 101, 1)
    assert [
        r.code for r in rejections(h.events(Cancel(account="n", order_id=accepted.order_id)))
    ] == [RejectCode.NOT_YOUR_ORDER]
    assert [r.code for r in rejections(h.events(Cancel(account="m", order_id=999)))] == [
        RejectCode.ORDER_NOT_FOUND
    ]
    assert (
        cancels(h.events(Cancel(account="m", client_order_id="x")))[0].order_id == accepted.order_id
    )
    assert cancels(h.events(Cancel(account="m", order_id=accepted.order_id + 1)))
    assert h.depth() == ([], [])


def test_client_order_ids_are_unique_per_account_among_open_orders() -> None:
    h = Harness()
    h.place("m", SELL, 100, 1, client_order_id="q")
    dup = h.place("m", SELL, 101, 1, client_order_id="q")
    assert [r.code for r in rejections(dup)] == [RejectCode.DUPLICATE_CLIENT_ORDER_ID]
    assert not rejections(h.place("other", SELL, 101, 1, client_order_id="q"))
    h.place("t", BUY, 100, 1)  # fills m's order: its client id is free again
    assert not rejections(h.place("m", SELL, 102, 1, client_order_id="q"))


def test_cancel_all_on_one_instrument_or_all() -> None:
    h = Harness()
    h.place("m", SELL, 100, 1)
    h.place("m", BUY, 90, 1)
    h.place("m", BUY, 90, 1, instrument="ETH_USDC-PERPETUAL")
    h.place("n", BUY, 91, 1)
    assert len(cancels(h.events(CancelAll(account="m", instrument=PERP)))) == 2
    assert len(h.engine.open_orders("m")) == 1
    assert len(cancels(h.events(CancelAll(account="m")))) == 1
    assert h.depth() == ([(91, 1)], [])


def test_amend_keeps_priority_only_for_a_pure_size_decrease() -> None:
    h = Harness()
    first = next(e for e in h.place("a", SELL, 100, 5) if isinstance(e, OrderAccepted)).order_id
    h.place("b", SELL, 100, 5)
    (amended,) = [
        e
        for e in h.events(Amend(account="a", order_id=first, price_ticks=100, size_lots=3))
        if isinstance(e, OrderAmended)
    ]
    assert amended.priority_kept
    assert fills(h.place("t", BUY, 100, 1, time_in_force=TimeInForce.IOC))[0].maker_account == "a"
    h.events(
        Amend(account="a", order_id=first, price_ticks=100, size_lots=6)
    )  # larger: to the back
    assert fills(h.place("t", BUY, 100, 1, time_in_force=TimeInForce.IOC))[0].maker_account == "b"


def test_amend_below_filled_is_refused_and_amend_that_crosses_trades() -> None:
    h = Harness()
    order = next(e for e in h.place("a", SELL, 100, 5) if isinstance(e, OrderAccepted)).order_id
    h.place("t", BUY, 100, 2)
    refused = h.events(Amend(account="a", order_id=order, price_ticks=100, size_lots=2))
    assert [r.code for r in rejections(refused)] == [RejectCode.AMEND_BELOW_FILLED]
    h.place("b", BUY, 95, 4)
    crossed = h.events(Amend(account="a", order_id=order, price_ticks=95, size_lots=5))
    assert [(f.maker_account, f.size_lots, f.price_ticks) for f in fills(crossed)] == [("b", 3, 95)]
    assert h.depth() == ([(95, 1)], [])


ORDER = {"account": "t", "instrument": PERP, "side": Side.BUY, "price_ticks": 100, "size_lots": 1}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"size_lots": 0}, RejectCode.SIZE_OUT_OF_RANGE),
        ({"size_lots": 10**13}, RejectCode.SIZE_OUT_OF_RANGE),
        ({"price_ticks": 0}, RejectCode.PRICE_OUT_OF_RANGE),
        ({"price_ticks": -5}, RejectCode.PRICE_OUT_OF_RANGE),
        ({"price_ticks": 10**16}, RejectCode.PRICE_OUT_OF_RANGE),
        ({"instrument": "NOPE"}, RejectCode.UNKNOWN_INSTRUMENT),
        ({"client_order_id": "x" * 65}, RejectCode.CLIENT_ORDER_ID_TOO_LONG),
        ({"account": ""}, RejectCode.MESSAGE_TOO_LARGE),
        ({"account": "a" * 65}, RejectCode.MESSAGE_TOO_LARGE),
    ],
)
def test_bad_orders_are_rejected_with_a_code_and_change_nothing(
    fields: dict[str, object], code: RejectCode
) -> None:
    h = Harness()
    h.place("m", SELL, 100, 1)
    before = (h.depth(), h.engine.next_order_id, dict(h.engine.orders))
    events = h.events(PlaceOrder(**{**ORDER, **fields}))  # type: ignore[arg-type]
    assert [r.code for r in rejections(events)] == [code]
    assert rejections(events)[0].message
    assert len(events) == 1
    assert (h.depth(), h.engine.next_order_id, dict(h.engine.orders)) == before


@pytest.mark.parametrize(
    "fields",
    [
        {"price_ticks": 100.5},
        {"size_lots": "1"},
        {"side": 0},
        {"time_in_force": 9},
        {"self_trade": 7},
        {"post_only": PostOnly.REPRICE, "time_in_force": TimeInForce.IOC},
        {"order_type": OrderType.MARKET},  # a market order with a price
        {"order_type": OrderType.MARKET, "price_ticks": 0, "time_in_force": TimeInForce.GTT},
        {"expire_at_ns": 5},  # an expiry without good-till-time
        {"time_in_force": TimeInForce.GTT},  # good-till-time without an expiry
        {"reduce_only": 1},
        {"account": 7},
    ],
)
def test_malformed_orders_cannot_be_made(fields: dict[str, object]) -> None:
    """Types, enumerations and combinations are refused where the value is made, once."""
    with pytest.raises(Rejection) as info:
        PlaceOrder(**{**ORDER, **fields})  # type: ignore[arg-type]
    assert info.value.code == RejectCode.INVALID_ORDER
    assert info.value.message


def test_malformed_orders_cannot_be_decoded_either() -> None:
    good = msgspec.msgpack.encode(PlaceOrder(**ORDER))  # type: ignore[arg-type]
    assert msgspec.msgpack.decode(good, type=PlaceOrder) == PlaceOrder(**ORDER)  # type: ignore[arg-type]
    bad = msgspec.msgpack.encode({**ORDER, "type": "place", "post_only": 1, "time_in_force": 2})
    with pytest.raises((Rejection, msgspec.ValidationError)):
        msgspec.msgpack.decode(bad, type=PlaceOrder)
