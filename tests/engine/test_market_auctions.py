"""Long-block and price-monitoring auctions in the engine: a gap of more than 10 s between
blocks puts the markets into a call auction and they reopen through it; a trade that would move
the price beyond its band calls an auction instead of trading through; both say why in market
data (:class:`MarketAuction`). ``Venue.apply`` checks every invariant after every block (a book
may be crossed only while its market is in an auction)."""

from __future__ import annotations

from strikechain.engine.auction_triggers import AuctionParams
from strikechain.engine.events import AuctionCleared, Fill, MarketAuction, OrderCancelled
from strikechain.engine.snapshot import capture, decode_snapshot, encode_snapshot, restore
from strikechain.engine.txs import Block, PostOnly, TimeInForce
from tests.engine.venue import (
    BTC_PERP,
    ETH_PERP,
    MINUTE,
    SECOND,
    TICKS_AT_100K,
    USDC,
    Venue,
    config,
    of_type,
    rejections,
)

MAKER = {"post_only": PostOnly.REJECT}
IOC = {"time_in_force": TimeInForce.IOC}
LONG_BLOCKS = AuctionParams(price_monitoring_bands=())
MONITORING = AuctionParams(long_block_thresholds_ns=(), price_monitoring_bands=((MINUTE, 20_000),))


def venue_with(auctions: AuctionParams) -> Venue:
    venue = Venue(config(auctions=auctions))
    for who in ("maker", "taker", "other"):
        venue.deposit(who, 1_000_000 * USDC)
    return venue


def test_a_gap_over_10_s_puts_every_market_into_a_one_minute_auction() -> None:
    venue = venue_with(LONG_BLOCKS)
    venue.place("maker", -1, TICKS_AT_100K, 10, **MAKER)
    events = venue.events(dt=11 * SECOND)
    started = of_type(events, MarketAuction)
    assert {a.instrument for a in started} == {BTC_PERP, ETH_PERP}
    for auction in started:
        assert (auction.kind, auction.reason, auction.gap_ns) == (
            "AUCTION_STARTED",
            "LONG_BLOCK",
            11 * SECOND,
        )
        assert auction.ends_ns == venue.now + MINUTE
    assert venue.engine.markets[BTC_PERP].in_auction


def test_the_market_reopens_through_the_auction_at_one_price() -> None:
    venue = venue_with(LONG_BLOCKS)
    venue.place("maker", -1, TICKS_AT_100K, 10, **MAKER)
    venue.events(dt=11 * SECOND)
    # during the auction: immediate orders are refused, crossing orders rest without trading
    events = venue.events(
        venue.order("taker", 1, TICKS_AT_100K + 10, 4, **IOC),
        venue.order("taker", 1, TICKS_AT_100K + 10, 6),
        venue.order("other", 1, TICKS_AT_100K + 4, 3),
    )
    assert rejections(events) == ["MARKET_IN_AUCTION"]
    assert not of_type(events, Fill)
    book = venue.engine.books[BTC_PERP]
    best_bid, best_ask = book.best_bid(), book.best_ask()
    assert best_bid is not None
    assert best_ask is not None
    assert best_bid > best_ask
    for _ in range(6):  # 54 s later, in blocks short enough not to call another auction
        assert not of_type(venue.events(dt=9 * SECOND), Fill)
    events = venue.events(dt=9 * SECOND)  # past the end: uncross, then continuous
    ended = [a for a in of_type(events, MarketAuction) if a.instrument == BTC_PERP]
    assert [(a.kind, a.reason) for a in ended] == [("AUCTION_ENDED", "NONE")]
    [cleared] = of_type(events, AuctionCleared)
    fills = of_type(events, Fill)
    assert {f.price_ticks for f in fills} == {cleared.price_ticks}
    assert sum(f.size_lots for f in fills) == cleared.volume_lots == 9
    assert not venue.engine.markets[BTC_PERP].in_auction
    # continuous again: an IOC trades at once
    venue.place("maker", -1, TICKS_AT_100K, 5, **MAKER)
    events = venue.place("taker", 1, TICKS_AT_100K, 1, **IOC)
    assert of_type(events, Fill)


def test_a_longer_gap_calls_for_a_longer_auction() -> None:
    venue = venue_with(LONG_BLOCKS)
    events = venue.events(dt=2 * MINUTE)
    assert {a.ends_ns - venue.now for a in of_type(events, MarketAuction)} == {5 * MINUTE}


def trade_at_100k(venue: Venue) -> None:
    venue.place("maker", -1, TICKS_AT_100K, 1, **MAKER)
    assert of_type(venue.place("taker", 1, TICKS_AT_100K, 1, **IOC), Fill)


def test_a_trade_beyond_the_band_calls_an_auction_instead() -> None:
    venue = venue_with(MONITORING)
    trade_at_100k(venue)
    venue.place("maker", -1, TICKS_AT_100K + 2_000, 5, **MAKER)  # 1% above
    venue.place("maker", -1, TICKS_AT_100K + 6_000, 5, **MAKER)  # 3% above: beyond 2%
    events = venue.place("taker", 1, TICKS_AT_100K + 6_000, 10, **IOC)
    assert [f.price_ticks for f in of_type(events, Fill)] == [TICKS_AT_100K + 2_000]
    [auction] = of_type(events, MarketAuction)
    assert (auction.kind, auction.reason) == ("AUCTION_STARTED", "PRICE_MONITORING")
    assert (auction.horizon_ns, auction.band_ppm) == (MINUTE, 20_000)
    assert (auction.reference_ticks, auction.price_ticks) == (TICKS_AT_100K, TICKS_AT_100K + 6_000)
    [cancelled] = of_type(events, OrderCancelled)
    assert (cancelled.reason, cancelled.remaining_lots) == ("PRICE_MONITORING", 5)
    assert venue.engine.markets[BTC_PERP].in_auction


def test_a_resting_order_that_calls_the_auction_rests_in_it() -> None:
    venue = venue_with(MONITORING)
    trade_at_100k(venue)
    venue.place("maker", -1, TICKS_AT_100K + 6_000, 5, **MAKER)
    events = venue.place("taker", 1, TICKS_AT_100K + 6_000, 5)
    assert not of_type(events, Fill)
    book = venue.engine.books[BTC_PERP]
    assert book.best_bid() == book.best_ask() == TICKS_AT_100K + 6_000


def test_a_price_monitoring_auction_is_extended_once_then_uncrosses() -> None:
    venue = venue_with(MONITORING)
    trade_at_100k(venue)
    venue.place("maker", -1, TICKS_AT_100K + 6_000, 5, **MAKER)
    venue.place("taker", 1, TICKS_AT_100K + 6_000, 5)  # rests crossed: the auction starts
    for _ in range(6):
        venue.events(dt=9 * SECOND)
    events = venue.events(dt=9 * SECOND)
    [extended] = of_type(events, MarketAuction)
    assert (extended.kind, extended.extended) == ("AUCTION_EXTENDED", True)
    assert not of_type(events, Fill)
    for _ in range(6):
        venue.events(dt=9 * SECOND)
    events = venue.events(dt=9 * SECOND)
    [ended] = of_type(events, MarketAuction)
    assert ended.kind == "AUCTION_ENDED"
    assert [f.price_ticks for f in of_type(events, Fill)] == [TICKS_AT_100K + 6_000]
    # the band restarts from the uncrossing price: a trade there is continuous again
    venue.place("maker", -1, TICKS_AT_100K + 6_000, 1, **MAKER)
    events = venue.place("taker", 1, TICKS_AT_100K + 6_000, 1, **IOC)
    assert of_type(events, Fill)
    assert not of_type(events, MarketAuction)


def test_fill_or_kill_counts_only_what_the_band_lets_trade() -> None:
    venue = venue_with(MONITORING)
    trade_at_100k(venue)
    venue.place("maker", -1, TICKS_AT_100K, 5, **MAKER)
    venue.place("maker", -1, TICKS_AT_100K + 6_000, 5, **MAKER)
    events = venue.place("taker", 1, TICKS_AT_100K + 6_000, 10, time_in_force=TimeInForce.FOK)
    assert rejections(events) == ["FOK_NOT_FILLABLE"]
    assert not venue.engine.markets[BTC_PERP].in_auction


def test_auction_state_survives_a_snapshot() -> None:
    venue = venue_with(MONITORING)
    trade_at_100k(venue)
    venue.place("maker", -1, TICKS_AT_100K + 6_000, 5, **MAKER)
    venue.place("taker", 1, TICKS_AT_100K + 6_000, 5)
    engine = venue.engine
    copy = restore(decode_snapshot(encode_snapshot(capture(engine))), venue=engine.venue)
    copy.check()
    assert copy.markets[BTC_PERP].in_auction
    assert encode_snapshot(capture(copy)) == encode_snapshot(capture(engine))
    for _ in range(8):
        venue.now += 9 * SECOND
        block = Block(
            height=engine.height + 1, timestamp_ns=venue.now, transactions=venue.reports()
        )
        assert copy.apply(block) == engine.apply(block)
