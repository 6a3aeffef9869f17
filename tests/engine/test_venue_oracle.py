"""The oracle inside the engine: signed reports, the index, the circuit breaker's trading rules."""

from __future__ import annotations

import msgspec

from strikechain.engine.codes import RejectCode
from strikechain.engine.events import (
    CircuitBreakerClosed,
    CircuitBreakerOpened,
    Fill,
    IndexUpdated,
)
from strikechain.engine.oracle import OracleReport, sign_report
from strikechain.engine.signing import keccak256
from strikechain.engine.txs import PostOnly
from tests.engine.venue import (
    BTC_PERP,
    BTC_PRICE,
    KEYS,
    MINUTE,
    REPORTERS,
    SECOND,
    TICKS_AT_100K,
    USDC,
    Venue,
    of_type,
    rejections,
)

MAKER = {"post_only": PostOnly.REJECT}


def funded(**kwargs: object) -> Venue:
    venue = Venue(**kwargs)  # type: ignore[arg-type]
    for name in ("alice", "bob"):
        venue.deposit(name, 100_000 * USDC)
    return venue


def test_no_risk_before_the_first_index() -> None:
    venue = Venue(report=False)
    venue.reporting = {"BTC": (), "ETH": ()}
    venue.deposit("alice", 100_000 * USDC)
    oracle = venue.engine.underlyings["BTC"].oracle
    assert oracle is not None
    assert oracle.index is None
    assert oracle.breaker_open
    refused = venue.place("alice", 1, TICKS_AT_100K, 1, **MAKER)
    assert rejections(refused) == [RejectCode.NO_INDEX_PRICE]
    venue.reporting = {"BTC": KEYS, "ETH": KEYS}
    events = venue.events()
    assert of_type(events, IndexUpdated)[0].index == BTC_PRICE
    assert of_type(events, CircuitBreakerClosed)
    assert not rejections(venue.place("alice", 1, TICKS_AT_100K, 1, **MAKER))


def test_index_is_the_median_and_an_outlier_does_not_move_it() -> None:
    venue = funded()
    # Reporter 0 is pumped 24x (Mango): dropped as an outlier; the others agree.
    reports = [
        sign_report(
            OracleReport(
                account=REPORTERS[i],
                underlying="BTC",
                timestamp_ns=venue.now + SECOND,
                price=price,
                confidence=10 * USDC,
            ),
            KEYS[i],
        )
        for i, price in enumerate((24 * BTC_PRICE, BTC_PRICE + 50 * USDC, BTC_PRICE + 50 * USDC))
    ]
    venue.reporting["BTC"] = ()
    events = venue.events(*reports)
    oracle = venue.engine.underlyings["BTC"].oracle
    assert oracle is not None
    assert oracle.index == BTC_PRICE + 50 * USDC
    assert not oracle.breaker_open
    assert of_type(events, IndexUpdated)[0].reporters == 2


def test_a_forged_report_is_refused() -> None:
    venue = funded()
    forged = sign_report(
        OracleReport(
            account=REPORTERS[0],
            underlying="BTC",
            timestamp_ns=venue.now + SECOND,
            price=2 * BTC_PRICE,
            confidence=0,
        ),
        keccak256(b"the operator"),
    )
    assert rejections(venue.events(forged, report=False)) == [RejectCode.BAD_SIGNATURE]
    # An honest report with its price changed after signing is refused as well.
    honest = venue.reports()[0]
    tampered = msgspec.structs.replace(honest, price=honest.price + 1)  # type: ignore[type-var]
    venue.now += SECOND
    assert rejections(venue.events(tampered, report=False, dt=0)) == [RejectCode.BAD_SIGNATURE]
    outsider = sign_report(
        OracleReport(
            account="0x" + "11" * 20,
            underlying="BTC",
            timestamp_ns=venue.now,
            price=BTC_PRICE,
            confidence=0,
        ),
        keccak256(b"x"),
    )
    assert rejections(venue.events(outsider, report=False, dt=0)) == [RejectCode.UNKNOWN_REPORTER]


def test_breaker_opens_on_stale_reports_and_makes_takers_reduce_only() -> None:
    venue = funded()
    venue.place("alice", -1, TICKS_AT_100K, 10, **MAKER)
    venue.place("bob", 1, TICKS_AT_100K, 5)  # bob long 5
    venue.reporting["BTC"] = ()
    venue.events(dt=10 * SECOND)  # reports exactly at the staleness bound: still fresh
    oracle = venue.engine.underlyings["BTC"].oracle
    assert oracle is not None
    assert not oracle.breaker_open
    events = venue.events(dt=1)
    assert of_type(events, CircuitBreakerOpened) == [CircuitBreakerOpened(-1, "BTC", "NO_QUORUM")]
    assert oracle.breaker_open
    assert oracle.index == BTC_PRICE  # the last good index is kept
    # A taker that adds risk is refused; a maker is not; a taker that reduces is not.
    taker = venue.place("bob", 1, TICKS_AT_100K, 1)
    assert rejections(taker) == [RejectCode.CIRCUIT_BREAKER_OPEN]
    assert not rejections(venue.place("bob", 1, TICKS_AT_100K - 10, 1, **MAKER))
    reduce = venue.place("bob", -1, TICKS_AT_100K - 10, 2, reduce_only=True)
    assert rejections(reduce) == []
    # Liquidations pause for at most the configured pause (5 minutes by default).
    start = oracle.breaker_opened_ns
    assert oracle.liquidations_paused(start + 5 * MINUTE - 1)
    assert not oracle.liquidations_paused(start + 5 * MINUTE)
    # Fresh reports close it.
    venue.reporting["BTC"] = KEYS
    events = venue.events()
    assert of_type(events, CircuitBreakerClosed) == [CircuitBreakerClosed(-1, "BTC")]
    assert of_type(venue.place("bob", 1, TICKS_AT_100K, 1), Fill)


def test_breaker_opens_when_the_confidence_is_too_wide() -> None:
    venue = funded()
    venue.confidence["BTC"] = BTC_PRICE // 100  # 1% > 0.5%
    events = venue.events()
    assert of_type(events, CircuitBreakerOpened) == [
        CircuitBreakerOpened(-1, "BTC", "CONFIDENCE_TOO_WIDE")
    ]
    assert rejections(venue.place("alice", 1, TICKS_AT_100K, 1)) == [
        RejectCode.CIRCUIT_BREAKER_OPEN
    ]


def test_perp_mark_follows_the_book_within_its_clamp() -> None:
    venue = funded()
    market = venue.engine.markets[BTC_PERP]
    assert market.mark_minor == BTC_PRICE
    # A book 2% above the index: the basis average moves up but is clamped at 0.5%.
    venue.place("alice", 1, 204_000, 1, **MAKER)
    venue.place("bob", -1, 204_010, 1, **MAKER)
    venue.events(dt=60 * SECOND)
    after_a_minute = market.mark_minor - BTC_PRICE
    assert 0 < after_a_minute <= BTC_PRICE * 5 // 1000
    venue.events(dt=3600 * SECOND)
    assert market.mark_minor == BTC_PRICE + BTC_PRICE * 5 // 1000
    # The market order band follows the mark: a market buy cannot trade 5% above it.
    assert market.mark_per_lot == market.mark_minor // 1000
