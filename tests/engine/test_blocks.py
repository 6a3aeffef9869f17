"""Blocks: ordering policies, block-level limits, listings, expiries, batch auctions."""

from __future__ import annotations

from decimal import Decimal

from strikechain.engine.calendar import expiry_ns
from strikechain.engine.codes import CancelReason, RejectCode
from strikechain.engine.events import (
    AuctionCleared,
    InstrumentDelisted,
    InstrumentExpired,
    InstrumentListed,
)
from strikechain.engine.instruments import Instrument, InstrumentKind, OptionType
from strikechain.engine.limits import Limits
from strikechain.engine.ordering import OrderingPolicy
from strikechain.engine.txs import (
    Block,
    Cancel,
    DelistInstrument,
    ListInstrument,
    PlaceOrder,
    SelfTrade,
    Side,
    TimeInForce,
)
from tests.engine.harness import (
    AUCTION,
    PERP,
    Harness,
    cancels,
    fills,
    perpetual,
    rejections,
)

BUY, SELL = 1, -1


def _maker_and_taker(policy: OrderingPolicy, cancel_first: bool) -> list[int]:
    """A maker cancels its quote in the same block as a taker hits it; returns filled lots."""
    h = Harness(policy)
    h.place("maker", SELL, 100, 5, client_order_id="quote")
    cancel = Cancel(account="maker", client_order_id="quote")
    take = PlaceOrder(
        account="taker",
        instrument=PERP,
        side=Side.BUY,
        price_ticks=100,
        size_lots=5,
        time_in_force=TimeInForce.IOC,
    )
    events = h.events(*((cancel, take) if cancel_first else (take, cancel)))
    return [f.size_lots for f in fills(events)]


def test_maker_cancel_beats_taker_under_the_lanes_policy() -> None:
    assert _maker_and_taker(OrderingPolicy.LANES, cancel_first=False) == []
    assert _maker_and_taker(OrderingPolicy.LANES, cancel_first=True) == []


def test_maker_cancel_loses_under_arrival_order_when_it_arrives_later() -> None:
    assert _maker_and_taker(OrderingPolicy.ARRIVAL, cancel_first=False) == [5]
    assert _maker_and_taker(OrderingPolicy.ARRIVAL, cancel_first=True) == []


def test_post_only_makers_go_before_takers_under_lanes() -> None:
    h = Harness()
    take = PlaceOrder(
        account="t",
        instrument=PERP,
        side=Side.BUY,
        price_ticks=100,
        size_lots=1,
        time_in_force=TimeInForce.IOC,
    )
    quote = PlaceOrder(
        account="m", instrument=PERP, side=Side.SELL, price_ticks=100, size_lots=1, post_only=1
    )
    assert [f.maker_account for f in fills(h.events(take, quote))] == ["m"]


def test_fee_priority_puts_the_highest_bidder_first() -> None:
    h = Harness(OrderingPolicy.FEE_PRIORITY)
    h.place("m", SELL, 100, 1)
    low = PlaceOrder(
        account="low", instrument=PERP, side=Side.BUY, price_ticks=100, size_lots=1, priority_fee=1
    )
    high = PlaceOrder(
        account="high", instrument=PERP, side=Side.BUY, price_ticks=100, size_lots=1, priority_fee=9
    )
    assert [f.taker_account for f in fills(h.events(low, high))] == ["high"]


def test_block_out_of_sequence_backwards_or_too_large_is_refused_whole() -> None:
    h = Harness(limits=Limits(max_transactions_per_block=3))
    engine = h.engine
    order = PlaceOrder(account="m", instrument=PERP, side=Side.SELL, price_ticks=100, size_lots=1)
    for block, code in (
        (
            Block(height=engine.height + 2, timestamp_ns=h.now + 1, transactions=[order]),
            RejectCode.BLOCK_OUT_OF_SEQUENCE,
        ),
        (
            Block(height=engine.height + 1, timestamp_ns=h.now - 1, transactions=[order]),
            RejectCode.TIMESTAMP_BACKWARDS,
        ),
        (
            Block(height=engine.height + 1, timestamp_ns=h.now + 1, transactions=[order] * 4),
            RejectCode.BLOCK_TOO_LARGE,
        ),
        (
            Block(height=engine.height + 1, timestamp_ns=h.now + 1, transactions=[order, "junk"]),
            RejectCode.UNKNOWN_TRANSACTION,
        ),  # type: ignore[list-item]
    ):
        height = engine.height
        result = engine.apply(block)
        assert result.rejected == code
        assert result.reason
        assert result.events == []
        assert engine.height == height
        assert not engine.orders


def test_too_many_open_orders_and_price_levels() -> None:
    h = Harness(limits=Limits(max_open_orders_per_account=2, max_price_levels_per_side=2))
    h.place("m", SELL, 100, 1)
    h.place("m", SELL, 101, 1)
    assert [r.code for r in rejections(h.place("m", SELL, 101, 1))] == [
        RejectCode.TOO_MANY_OPEN_ORDERS
    ]
    assert [r.code for r in rejections(h.place("n", SELL, 102, 1))] == [
        RejectCode.TOO_MANY_PRICE_LEVELS
    ]
    assert not rejections(h.place("n", SELL, 101, 1))  # an existing level is fine


def test_fill_limit_cancels_the_remainder() -> None:
    h = Harness(limits=Limits(max_fills_per_order=2))
    for account in ("a", "b", "c"):
        h.place(account, SELL, 100, 1)
    events = h.place("t", BUY, 100, 3)
    assert len(fills(events)) == 2
    assert [c.reason for c in cancels(events)] == [CancelReason.FILL_LIMIT]


def test_listing_needs_the_operator_and_a_new_name() -> None:
    h = Harness()
    sol = perpetual("SOL")
    assert [
        r.code for r in rejections(h.events(ListInstrument(account="mallory", instrument=sol)))
    ] == [RejectCode.NOT_AUTHORIZED]
    assert [
        r.code
        for r in rejections(h.events(ListInstrument(account="operator", instrument=perpetual())))
    ] == [RejectCode.INSTRUMENT_EXISTS]
    assert [type(e) for e in h.events(ListInstrument(account="operator", instrument=sol))] == [
        InstrumentListed
    ]


def test_delisting_cancels_open_orders() -> None:
    h = Harness()
    h.place("m", SELL, 100, 1)
    events = h.events(DelistInstrument(account="operator", instrument=PERP))
    assert [c.reason for c in cancels(events)] == [CancelReason.DELISTED]
    assert isinstance(events[-1], InstrumentDelisted)
    assert [r.code for r in rejections(h.place("m", SELL, 100, 1))] == [
        RejectCode.UNKNOWN_INSTRUMENT
    ]


def test_an_option_market_expires_by_block_time() -> None:
    h = Harness()
    expiry = expiry_ns(2026, 11, 25)  # 08:00 UTC, eight hours after the harness starts
    option = Instrument(
        name="BTC_USDC-OPTION-TEST",
        kind=InstrumentKind.OPTION,
        underlying="BTC",
        tick_size=Decimal("5"),
        lot_size=Decimal("0.01"),
        strike_ticks=20_000,
        expiry_ns=expiry,
        option_type=OptionType.CALL,
    )
    option = _named(option)
    h.events(ListInstrument(account="operator", instrument=option))
    h.place("m", SELL, 10, 1, instrument=option.name)
    events = h.events(dt=expiry - h.now)
    assert [c.reason for c in cancels(events)] == [CancelReason.MARKET_EXPIRED]
    assert isinstance(events[-1], InstrumentExpired)
    assert [r.code for r in rejections(h.place("m", SELL, 10, 1, instrument=option.name))] == [
        RejectCode.MARKET_EXPIRED
    ]


def _named(option: Instrument) -> Instrument:
    """The option with its canonical Deribit name."""
    from strikechain.engine.instruments import instrument_name

    fields = {name: getattr(option, name) for name in option.__struct_fields__}
    fields["name"] = instrument_name(option)
    return Instrument(**fields)


def test_batch_auction_clears_at_one_price_and_the_rest_rests() -> None:
    h = Harness()
    orders = [
        ("s1", SELL, 100, 3),
        ("s2", SELL, 102, 3),
        ("s3", SELL, 105, 3),
        ("b1", BUY, 104, 2),
        ("b2", BUY, 103, 3),
        ("b3", BUY, 99, 4),
    ]
    events = h.events(
        *[
            PlaceOrder(account=a, instrument=AUCTION, side=Side(s), price_ticks=p, size_lots=z)
            for a, s, p, z in orders
        ]
    )
    (cleared,) = [e for e in events if isinstance(e, AuctionCleared)]
    trades = fills(events)
    assert {f.price_ticks for f in trades} == {cleared.price_ticks}
    assert sum(f.size_lots for f in trades) == cleared.volume_lots == 5
    assert 102 <= cleared.price_ticks <= 103
    bids, asks = h.depth(AUCTION)
    assert bids
    assert asks
    assert bids[0][0] < asks[0][0]


def test_batch_auction_orders_do_not_match_on_arrival_and_ioc_remainders_cancel() -> None:
    h = Harness()
    h.place("s", SELL, 100, 2, instrument=AUCTION)
    assert h.depth(AUCTION) == ([], [(100, 2)])
    events = h.place("b", BUY, 101, 5, instrument=AUCTION, time_in_force=TimeInForce.IOC)
    assert [f.size_lots for f in fills(events)] == [2]
    assert [c.reason for c in cancels(events)] == [CancelReason.IMMEDIATE_OR_CANCEL]
    assert h.depth(AUCTION) == ([], [])


def test_batch_auction_prevents_self_trades_by_the_newer_orders_mode() -> None:
    h = Harness()
    h.place("me", SELL, 100, 2, instrument=AUCTION)
    events = h.place("me", BUY, 100, 2, instrument=AUCTION, self_trade=SelfTrade.CANCEL_MAKER)
    assert not fills(events)
    assert [c.reason for c in cancels(events)] == [CancelReason.SELF_TRADE]
    assert h.depth(AUCTION) == ([(100, 2)], [])


def _clearing(*orders: tuple[str, int, int, int]) -> int:
    h = Harness()
    events = h.events(
        *[
            PlaceOrder(account=a, instrument=AUCTION, side=Side(s), price_ticks=p, size_lots=z)
            for a, s, p, z in orders
        ]
    )
    (cleared,) = [e for e in events if isinstance(e, AuctionCleared)]
    return cleared.price_ticks


def test_clearing_price_tie_breaks() -> None:
    # Balanced at both candidate prices: the lower middle one.
    assert _clearing(("a", BUY, 110, 5), ("b", SELL, 100, 5)) == 100
    # Excess demand at every tied price: buyers press it up to the highest.
    assert _clearing(("a", BUY, 110, 5), ("b", SELL, 100, 3)) == 110
    # Excess supply at every tied price: the lowest.
    assert _clearing(("a", BUY, 110, 3), ("b", SELL, 100, 5)) == 100
    # Volume decides first: 4 lots trade at 103 against 2 anywhere else.
    assert (
        _clearing(("a", BUY, 105, 2), ("b", BUY, 103, 2), ("c", SELL, 101, 2), ("d", SELL, 103, 2))
        == 103
    )
