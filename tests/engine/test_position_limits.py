"""Position limits: the cap check on the order path and the size-scaled initial margin rate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strikechain.engine.accounts import Exposure, SubLedger, UnderlyingState, market_for
from strikechain.engine.codes import RejectCode
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.margin import STANDARD_MARGIN
from strikechain.engine.marks import set_mark
from strikechain.engine.params import PositionLimits
from strikechain.engine.position_limits import PPM, check_caps, growing_lots, size_scaled_ppm
from strikechain.engine.txs import Amend, PostOnly
from tests.engine.venue import (
    BTC_PERP,
    BTC_PRICE,
    TICKS_AT_100K,
    USDC,
    Venue,
    btc_perp,
    config,
    params,
    rejections,
)

# -- growing lots and the cap check --------------------------------------------------------------


def test_growing_lots() -> None:
    assert growing_lots(0, 1, 5) == 5
    assert growing_lots(3, 1, 5) == 5  # adds to a long
    assert growing_lots(-3, 1, 5) == 2  # closes 3 of a short, opens a long of 2
    assert growing_lots(-8, 1, 5) == 0  # only closes
    assert growing_lots(8, -1, 8) == 0
    assert growing_lots(8, -1, 9) == 1


def _check(
    position: int,
    side: int,
    lots: int,
    side_open: int = 0,
    *,
    open_interest: int = 0,
    open_interest_cap: int = 0,
    position_cap: int = 0,
) -> RejectCode | None:
    return check_caps(
        open_interest_cap_lots=open_interest_cap,
        position_cap_lots=position_cap,
        long_open_interest_lots=open_interest,
        position_lots=position,
        side=side,
        lots=lots,
        side_open_lots=side_open,
    )


def test_no_caps_accept_everything() -> None:
    assert _check(0, 1, 10**9, 10**9, open_interest=10**12) is None


def test_the_position_cap_counts_the_sides_other_orders() -> None:
    """Cap 10: long 4 with 3 lots bid may bid 3 more (4 + 3 + 3 = 10), not 4."""
    assert _check(4, 1, 3, 3, position_cap=10) is None
    assert _check(4, 1, 4, 3, position_cap=10) == RejectCode.POSITION_CAP
    # A sell that flips a long of 4 to a short of 11 breaks it too.
    assert _check(4, -1, 15, position_cap=10) == RejectCode.POSITION_CAP
    assert _check(4, -1, 14, position_cap=10) is None


def test_reductions_pass_even_above_a_lowered_cap() -> None:
    assert _check(30, -1, 20, position_cap=10, open_interest=500, open_interest_cap=100) is None
    assert _check(30, 1, 1, position_cap=10) == RejectCode.POSITION_CAP


def test_the_open_interest_cap_counts_the_growing_lots_only() -> None:
    """Long open interest 95 of 100: short 3, a bid of 8 closes 3 and opens 5 (95 + 5 = 100)."""
    assert _check(-3, 1, 8, open_interest=95, open_interest_cap=100) is None
    assert _check(-3, 1, 9, open_interest=95, open_interest_cap=100) == (
        RejectCode.OPEN_INTEREST_CAP
    )
    # A short grows open interest as much as a long (its counterparty may open a long).
    assert _check(0, -1, 6, open_interest=95, open_interest_cap=100) == (
        RejectCode.OPEN_INTEREST_CAP
    )


def _worst_case(position: int, side: int, total: int) -> tuple[int, int]:
    """Fill ``total`` lots one at a time: the position reached, and how many lots grew it."""
    grew = 0
    for _ in range(total):
        if side * position >= 0:
            grew += 1
        position += side
    return position, grew


caps = st.one_of(st.just(0), st.integers(1, 300))


@given(
    position=st.integers(-200, 200),
    side=st.sampled_from([1, -1]),
    lots=st.integers(1, 200),
    side_open=st.integers(0, 200),
    open_interest=st.integers(0, 400),
    open_interest_cap=caps,
    position_cap=caps,
)
def test_the_check_accepts_exactly_the_orders_whose_fill_stays_within_the_caps(
    position: int,
    side: int,
    lots: int,
    side_open: int,
    open_interest: int,
    open_interest_cap: int,
    position_cap: int,
) -> None:
    """An order is judged as if it and the side's other open orders all filled, one lot at a
    time, each growing lot raising long open interest by one (the worst case): it passes
    exactly when it grows nothing, or the position and open interest it reaches are within the
    caps (0: no cap), and the code names the cap it breaks (the position cap first)."""
    after, grew = _worst_case(position, side, side_open + lots)
    within_position = not position_cap or abs(after) <= position_cap
    within_open_interest = not open_interest_cap or open_interest + grew <= open_interest_cap
    code = _check(
        position,
        side,
        lots,
        side_open,
        open_interest=open_interest,
        open_interest_cap=open_interest_cap,
        position_cap=position_cap,
    )
    if grew == 0 or (within_position and within_open_interest):
        assert code is None
    elif not within_position:
        assert code == RejectCode.POSITION_CAP
    else:
        assert code == RejectCode.OPEN_INTEREST_CAP
    if code is None and lots > 1:  # a smaller order on the same side passes too
        smaller = _check(
            position,
            side,
            lots - 1,
            side_open,
            open_interest=open_interest,
            open_interest_cap=open_interest_cap,
            position_cap=position_cap,
        )
        assert smaller is None


# -- the size-scaled initial margin rate --------------------------------------------------------


def test_size_scaled_ppm_examples() -> None:
    """5% base, a market that absorbs 100 lots: 5% at no size, 7.5% at 50, 10% at 100, and
    ``CEIL(5% x 101 / 100)`` = 5.05% at one lot; 100% (no leverage) from 19 x 100 lots on."""
    assert size_scaled_ppm(50_000, 0, 100) == 50_000
    assert size_scaled_ppm(50_000, 50, 100) == 75_000
    assert size_scaled_ppm(50_000, -100, 100) == 100_000
    assert size_scaled_ppm(50_000, 1, 100) == 50_500
    assert size_scaled_ppm(50_000, 1, 3) == 66_667  # 50,000 x 4 / 3, up
    assert size_scaled_ppm(50_000, 1_900, 100) == PPM
    assert size_scaled_ppm(50_000, 10**9, 100) == PPM
    assert size_scaled_ppm(50_000, 10**9, 0) == 50_000  # no liquidity parameter: no add-on


@given(
    base=st.integers(1, PPM),
    liquidity=st.integers(0, 10_000),
    sizes=st.tuples(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6)),
)
def test_size_scaled_ppm_is_monotone_and_the_base_at_zero(
    base: int, liquidity: int, sizes: tuple[int, int]
) -> None:
    small, large = sorted(sizes, key=abs)
    assert size_scaled_ppm(base, 0, liquidity) == base
    scaled = size_scaled_ppm(base, large, liquidity)
    assert base <= size_scaled_ppm(base, small, liquidity) <= scaled <= PPM
    assert size_scaled_ppm(base, -large, liquidity) == scaled
    if liquidity == 0:
        assert scaled == base
    elif scaled < PPM:  # CEIL: never below the exact rate
        assert scaled * liquidity >= base * (liquidity + abs(large))


def test_params_validate_the_limits() -> None:
    with pytest.raises(InvariantViolation):
        PositionLimits(perp_position_cap_lots=-1)
    with pytest.raises(InvariantViolation):
        PositionLimits(perp_open_interest_cap_lots=10, perp_position_cap_lots=11)
    with pytest.raises(InvariantViolation):
        PositionLimits(perp_liquidity_lots=-1)
    PositionLimits(perp_position_cap_lots=11)  # no open-interest cap: any position cap


# -- the size add-on in StandardMargin ------------------------------------------------------------


def _perp_exposure(position: int, liquidity_lots: int) -> Exposure:
    """A BTC perp at 100,000 USDC (a lot is 100 USDC), 5% / 3% margin."""
    limits = PositionLimits(perp_liquidity_lots=liquidity_lots)
    state = UnderlyingState(name="BTC", params=params(limits=limits), oracle=None)
    market = market_for(btc_perp(), state)
    set_mark(market, BTC_PRICE, BTC_PRICE)
    exposure = SubLedger(account="a", underlying="BTC", state=state).exposure(market)
    exposure.position = position
    return exposure


def test_the_size_add_on_raises_a_perps_initial_margin_only() -> None:
    """100 lots (10,000 USDC) in a market that absorbs 100: initial 10%, 1,000 USDC, instead of
    500; maintenance stays 3%, 300 USDC. Without the parameter, nothing changes."""
    assert STANDARD_MARGIN.requirement(_perp_exposure(100, 100)) == (1_000 * USDC, 300 * USDC, 0)
    assert STANDARD_MARGIN.requirement(_perp_exposure(-100, 0)) == (500 * USDC, 300 * USDC, 0)


def test_the_reserve_holds_the_rate_the_side_would_reach() -> None:
    """Long 50 lots (initial 7.5% of 5,000 USDC = 375) bidding 50 more at the mark: if they
    fill the position is 100 lots at 10%, 1,000 USDC. The reserve is the bids' 10% (500 USDC)
    plus what the higher rate adds on the 50 lots held (500 - 375 = 125): 625 USDC."""
    exposure = _perp_exposure(50, 100)
    value = TICKS_AT_100K * 50 * exposure.market.value_per_tick_lot
    initial, _, reserve = STANDARD_MARGIN.requirement(exposure, 1, 50, value, 0)
    assert (initial, reserve) == (375 * USDC, 625 * USDC)
    assert initial + reserve == 1_000 * USDC
    assert STANDARD_MARGIN.order_bound(exposure, 1, 50, value, 0) >= reserve


def test_the_size_add_on_in_a_venue() -> None:
    """With 1,000 USDC, an account can bid for 100 lots (10% of 10,000 USDC) but not 101."""
    venue = Venue(config(limits=PositionLimits(perp_liquidity_lots=100)))
    venue.deposit("alice", 1_000 * USDC)
    maker = {"post_only": PostOnly.REJECT}
    refused = rejections(venue.place("alice", 1, TICKS_AT_100K, 101, **maker))
    assert refused == [RejectCode.INSUFFICIENT_MARGIN]
    assert not rejections(venue.place("alice", 1, TICKS_AT_100K, 100, **maker))
    assert venue.ledger("alice").free_collateral == 0
    assert venue.engine.markets[BTC_PERP].liquidity_lots == 100


# -- through the engine -------------------------------------------------------------------------


def test_the_engine_refuses_orders_past_the_caps() -> None:
    maker = {"post_only": PostOnly.REJECT}
    venue = Venue(
        config(limits=PositionLimits(perp_open_interest_cap_lots=150, perp_position_cap_lots=100))
    )
    for account in ("alice", "bob", "carol", "dave"):
        venue.deposit(account, 100_000 * USDC)
    # alice bids 60 and then 50 more: together they could take her long past 100 lots
    assert not rejections(venue.place("alice", 1, TICKS_AT_100K - 10, 60, **maker))
    assert rejections(venue.place("alice", 1, TICKS_AT_100K - 10, 50, **maker)) == [
        RejectCode.POSITION_CAP
    ]
    # growing the resting bid by amend is checked the same way; shrinking it is not
    order_id = venue.engine.open_orders("alice")[0].order_id
    grow = Amend(account="alice", order_id=order_id, price_ticks=TICKS_AT_100K - 10, size_lots=101)
    assert rejections(venue.events(grow)) == [RejectCode.POSITION_CAP]
    shrink = Amend(account="alice", order_id=order_id, price_ticks=TICKS_AT_100K - 10, size_lots=40)
    assert not rejections(venue.events(shrink))
    # bob sells 100 into bids: alice long 40 after her bid fills, bob short 100 ...
    assert not rejections(venue.place("bob", -1, TICKS_AT_100K - 10, 40))
    assert venue.engine.position("alice", "BTC_USDC-PERPETUAL") == 40
    assert not rejections(venue.place("carol", 1, TICKS_AT_100K - 20, 60, **maker))
    assert not rejections(venue.place("bob", -1, TICKS_AT_100K - 20, 60))
    # ... long open interest is 100 now: dave may not bid for 60 (100 + 60 > 150), nor carol
    # for 60 more (her long would pass 100 first)
    assert rejections(venue.place("dave", 1, TICKS_AT_100K - 30, 60, **maker)) == [
        RejectCode.OPEN_INTEREST_CAP
    ]
    assert rejections(venue.place("carol", 1, TICKS_AT_100K - 30, 60, **maker)) == [
        RejectCode.POSITION_CAP
    ]
    assert not rejections(venue.place("dave", 1, TICKS_AT_100K - 30, 50, **maker))
    # bob (short 100, at his cap) may always buy back; selling more is refused
    assert rejections(venue.place("bob", -1, TICKS_AT_100K + 50, 1, **maker)) == [
        RejectCode.POSITION_CAP
    ]
    assert not rejections(venue.place("bob", 1, TICKS_AT_100K - 40, 100, **maker))
