"""The liquidation path through the engine: the lane sells into the book after cancels and
before new orders, within the band and the bankruptcy price; the backstop pool takes the rest at
a penalty; the fee goes to the insurance fund, which pays a flat sub-ledger's deficit; ADL comes
last, at the bankruptcy price; never on an open breaker's price (until its maximum pause); stress
mode; the keeper-auction baseline. ``Venue.apply`` runs ``Engine.check`` after every block
(money conserved, exactly the sub-ledgers below maintenance queued)."""

from __future__ import annotations

from strikechain.engine.events import (
    BackstopTaken,
    Deleveraged,
    Fill,
    InsurancePaid,
    LiquidationAuctionEnded,
    LiquidationAuctionStarted,
    LiquidationBidPlaced,
    LiquidationFee,
    LiquidationOrder,
    LiquidationQueued,
    StressMode,
)
from strikechain.engine.liquidation import AdlMode, LiquidationParams, LiquidationPolicy
from strikechain.engine.txs import Cancel, LiquidationBid, PostOnly, TimeInForce
from tests.engine.venue import (
    BTC_PERP,
    BTC_PRICE,
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
LANE = LiquidationParams(step_share_ppm_max=1_000_000)  # a whole position per step
PER_TICK_LOT = 500  # minor units: a tick (0.5 USDC) of a lot (0.001 BTC)


def crashed(
    cash: int = 700 * USDC,
    lane: LiquidationParams = LANE,
    bid: int = 189_800,
    fund: int = 0,
    backstop: int = 0,
    others: tuple[str, ...] = (),
) -> Venue:
    """carol long 100 lots at 100,000 with ``cash``; bob bids 100 lots at ``bid`` ticks; the
    insurance fund and the backstop pool hold what they are given, ``others`` 100,000 USDC
    each; the index falls to 95,000: carol is queued at the end of that block."""
    venue = Venue(config(liquidation=lane))
    venue.deposit("carol", cash)
    venue.deposit("bob", 1_000_000 * USDC)
    for other in others:
        venue.deposit(other, 100_000 * USDC)
    if fund:
        venue.deposit(venue.engine.venue.insurance_fund, fund)
    if backstop:
        venue.deposit(venue.engine.venue.backstop, backstop)
    venue.place("bob", -1, TICKS_AT_100K, 100, **MAKER)
    venue.place("carol", 1, TICKS_AT_100K, 100)
    venue.place("bob", 1, bid, 100, client_order_id="bid", **MAKER)
    venue.prices["BTC"] = BTC_PRICE * 95 // 100
    assert of_type(venue.events(), LiquidationQueued)
    return venue


def mark(venue: Venue) -> int:
    return venue.engine.markets[BTC_PERP].mark_per_lot


def test_the_lane_sells_into_the_book_and_charges_the_fee_to_the_insurance_fund() -> None:
    venue = crashed()
    fund = venue.engine.insurance_fund
    events = venue.events()
    [order] = of_type(events, LiquidationOrder)
    assert (order.account, order.side, order.lots, order.filled_lots) == ("carol", -1, 100, 100)
    fills = [f for f in of_type(events, Fill) if f.taker_order_id == order.order_id]
    assert [(f.price_ticks, f.size_lots, f.taker_fee) for f in fills] == [(189_800, 100, 0)]
    [fee] = of_type(events, LiquidationFee)
    assert fee.amount == 94_900_000  # 1% of the 9,490 USDC closed; no taker fee beside it
    assert venue.engine.insurance_fund == fund + fee.amount
    carol = venue.ledger("carol")
    assert venue.engine.position("carol", BTC_PERP) == 0
    assert not carol.in_liquidation
    assert carol.cash >= 0


def test_a_cancel_in_the_same_block_goes_first_and_nothing_is_sold_below_bankruptcy() -> None:
    # bob cancels his bid in the block the lane runs: cancels go before liquidations, so the
    # book has nothing for carol within her bankruptcy price; no backstop pool is funded
    venue = crashed()
    events = venue.events(Cancel(account="bob", client_order_id="bid"))
    [order] = of_type(events, LiquidationOrder)
    assert order.filled_lots == 0
    assert not of_type(events, BackstopTaken)
    assert venue.engine.position("carol", BTC_PERP) == 100
    assert venue.ledger("carol").in_liquidation


def test_the_limit_is_the_bankruptcy_price_while_solvent() -> None:
    # carol (520 USDC, 5 paid in taker fees) at 95,000 has 15 USDC of equity over 100 lots:
    # she may lose 0.15 USDC a lot below the mark, and bob's bid at 93,000 is further
    venue = crashed(cash=520 * USDC, bid=186_000)
    [order] = of_type(venue.events(), LiquidationOrder)
    equity = venue.ledger("carol").equity
    bankruptcy = mark(venue) - equity // 100
    assert order.limit_ticks == -(-bankruptcy // PER_TICK_LOT)
    assert order.filled_lots == 0


def test_a_bankrupt_sub_ledger_beyond_an_empty_fund_is_deleveraged_at_its_bankruptcy_price() -> (
    None
):
    venue = crashed(cash=520 * USDC, bid=186_000)
    venue.events()
    # the index falls to 93,000: 185 USDC under water, the fund is empty: ADL against bob, the
    # only short, at carol's bankruptcy price (above the mark: bob pays her deficit)
    venue.prices["BTC"] = BTC_PRICE * 93 // 100
    events = venue.events()
    assert not of_type(events, LiquidationOrder)  # the book would only deepen the deficit
    [paid] = of_type(events, InsurancePaid)
    assert paid.amount == 0
    assert paid.uncovered > 0
    [adl] = of_type(events, Deleveraged)
    assert (adl.account, adl.counterparty, adl.side, adl.lots) == ("carol", "bob", -1, 100)
    assert adl.price_per_lot > mark(venue)
    assert adl.socialized == 100 * (adl.price_per_lot - mark(venue))
    assert 0 <= adl.socialized - paid.uncovered < 100  # the rounding stays with carol
    carol = venue.ledger("carol")
    assert venue.engine.position("carol", BTC_PERP) == 0
    assert venue.engine.position("bob", BTC_PERP) == 0
    assert 0 <= carol.equity < 100
    assert not carol.in_liquidation


def test_a_funded_insurance_fund_pays_instead_and_the_book_may_use_what_it_can_cover() -> None:
    venue = crashed(cash=520 * USDC, bid=186_000, fund=1_000 * USDC)
    venue.events()
    venue.prices["BTC"] = BTC_PRICE * 93 // 100
    events = venue.events()
    # bankrupt, but within the fund: the book (bob's bid at 93,000) closes her within the band
    [order] = of_type(events, LiquidationOrder)
    assert order.filled_lots == 100
    assert not of_type(events, Deleveraged)
    [paid] = of_type(events, InsurancePaid)
    assert paid.uncovered == 0
    assert paid.amount > 0
    assert not of_type(events, LiquidationFee)  # nothing left to pay it from
    assert venue.ledger("carol").cash == 0
    assert venue.engine.insurance_fund == 1_000 * USDC - paid.amount


def test_the_backstop_takes_what_the_book_cannot_at_its_bankruptcy_price() -> None:
    venue = crashed(cash=520 * USDC, bid=186_000, backstop=100_000 * USDC)
    before = venue.ledger("carol").equity
    events = venue.events()
    [order] = of_type(events, LiquidationOrder)
    assert order.filled_lots == 0
    [taken] = of_type(events, BackstopTaken)
    assert (taken.account, taken.lots, taken.backstop) == ("carol", 100, "backstop")
    # 15 USDC of equity is less than the 2% penalty: she gives up all of it, no more
    assert taken.price_per_lot == mark(venue) - (-(-before // 100))
    assert venue.engine.position("backstop", BTC_PERP) == 100
    carol = venue.ledger("carol")
    assert 0 <= carol.equity < 100
    assert not carol.in_liquidation


def test_a_well_collateralized_position_pays_the_backstop_penalty_only() -> None:
    # carol at 700 USDC has 195 USDC at 95,000: more than the 2% penalty on 9,500 USDC
    venue = crashed(bid=180_000, backstop=100_000 * USDC)
    events = venue.events()
    [taken] = of_type(events, BackstopTaken)
    assert taken.price_per_lot == mark(venue) * 98 // 100
    [fee] = of_type(events, LiquidationFee)
    assert venue.ledger("carol").equity >= 0
    assert fee.amount > 0


def test_the_backstop_takes_no_more_than_its_margin_allows() -> None:
    venue = crashed(cash=520 * USDC, bid=186_000, backstop=300 * USDC)
    [taken] = of_type(venue.events(), BackstopTaken)
    assert 0 < taken.lots < 100
    pool = venue.ledger("backstop")
    assert pool.free_collateral >= 0
    assert venue.engine.position("carol", BTC_PERP) == 100 - taken.lots


def adl_venue(mode: AdlMode) -> Venue:
    """carol long 100 lots bought from dan (50), erin (30) and bob (20), who then have
    different equity; the index gaps to 93,000 with an empty fund."""
    venue = Venue(config(liquidation=LiquidationParams(adl_mode=mode)))
    venue.deposit("carol", 520 * USDC)
    for who, cash in (("dan", 20_000), ("erin", 2_000), ("bob", 50_000)):
        venue.deposit(who, cash * USDC)
    venue.place("dan", -1, TICKS_AT_100K, 50, **MAKER)
    venue.place("erin", -1, TICKS_AT_100K, 30, **MAKER)
    venue.place("bob", -1, TICKS_AT_100K, 20, **MAKER)
    venue.place("carol", 1, TICKS_AT_100K, 100)
    venue.prices["BTC"] = BTC_PRICE * 93 // 100
    venue.events()  # queued
    return venue


def test_adl_is_pro_rata_by_size_by_default() -> None:
    venue = adl_venue(AdlMode.PRO_RATA_RISK)
    events = venue.events()
    closed = {d.counterparty: d.lots for d in of_type(events, Deleveraged)}
    assert closed == {"bob": 20, "dan": 50, "erin": 30}  # every short closes in full here
    assert venue.engine.position("carol", BTC_PERP) == 0


def test_adl_by_profit_and_leverage_closes_the_most_levered_winner_first() -> None:
    venue = adl_venue(AdlMode.PROFIT_LEVERAGE)
    events = venue.events()
    order = [d.counterparty for d in of_type(events, Deleveraged)]
    # same profit per lot for all three; erin holds the least equity per lot of profit
    assert order == ["erin", "dan", "bob"]


def test_no_liquidation_while_the_breaker_is_open() -> None:
    venue = crashed()
    venue.confidence["BTC"] = BTC_PRICE // 100  # too wide: the breaker opens at once
    for _ in range(3):
        events = venue.events()
        assert venue.engine.underlyings["BTC"].restricted
        assert not of_type(events, LiquidationOrder)
    assert venue.engine.position("carol", BTC_PERP) == 100
    venue.confidence["BTC"] = 10 * USDC  # trusted again: the lane resumes
    assert of_type(venue.events(), LiquidationOrder)


def test_after_the_maximum_pause_liquidation_resumes_on_the_last_price_with_a_wider_band() -> None:
    venue = crashed(cash=520 * USDC, bid=186_000, fund=10_000 * USDC)
    venue.events(Cancel(account="bob", client_order_id="bid"))
    venue.prices["BTC"] = BTC_PRICE * 93 // 100  # under water, within the fund: waits for a bid
    venue.events()
    venue.confidence["BTC"] = BTC_PRICE // 100
    venue.events()  # the breaker opens
    oracle = venue.engine.underlyings["BTC"].oracle
    assert oracle is not None
    assert oracle.breaker_open
    opened = oracle.breaker_opened_ns
    # a bid 8.6% below the last trusted price: outside the 5% band, inside the 10% one
    venue.place("bob", 1, 170_000, 100, **MAKER)
    while True:
        events = venue.events(dt=30 * SECOND)
        if venue.now - opened >= oracle.params.max_pause_ns:
            break
        assert not of_type(events, LiquidationOrder)
    assert oracle.breaker_open
    [order] = of_type(events, LiquidationOrder)
    assert order.limit_ticks == -(-mark(venue) * 9 // 10 // PER_TICK_LOT)
    assert order.filled_lots == 100


def test_stress_mode_lets_takers_only_reduce_and_caps_them() -> None:
    venue = crashed(others=("dave", "erin"))
    events = venue.events(Cancel(account="bob", client_order_id="bid"))
    [stress] = of_type(events, StressMode)
    assert (stress.underlying, stress.active, stress.backlog) == ("BTC", True, 1)
    assert venue.engine.underlyings["BTC"].stressed
    venue.place("erin", -1, 190_000, 50, **MAKER)  # someone to take from
    # a taker adding risk is refused; a maker is not; bob (short 100) may reduce
    events = venue.events(
        venue.order("dave", 1, 200_000, 5, **IOC),
        venue.order("dave", 1, 150_000, 5, **MAKER),
    )
    assert rejections(events) == ["STRESS_REDUCE_ONLY"]
    assert venue.engine.position("dave", BTC_PERP) == 0
    # six reports and four takers: ceil(25% of 10) = 3 taker slots
    events = venue.events(*(venue.order("bob", 1, 200_000, 1, **IOC) for _ in range(4)))
    assert rejections(events) == ["STRESS_TAKER_CAP"]
    assert venue.engine.position("bob", BTC_PERP) == -97
    # erin's ask (post-only) rests; the lane sells carol to bob's new bid; stress ends
    venue.place("bob", 1, 189_000, 100, **MAKER)
    events = venue.events()
    assert [(s.active, s.backlog) for s in of_type(events, StressMode)] == [(False, 0)]
    assert not venue.engine.underlyings["BTC"].stressed


def keeper_venue(**lane: object) -> Venue:
    policy = LiquidationParams(
        policy=LiquidationPolicy.KEEPER_AUCTION,
        keeper_auction_ns=30 * SECOND,
        **lane,  # type: ignore[arg-type]
    )
    return crashed(lane=policy, others=("kim",))


def test_keeper_auctions_accept_any_bid_and_turn_a_bad_one_into_bad_debt() -> None:
    venue = keeper_venue()
    events = venue.events()
    [auction] = of_type(events, LiquidationAuctionStarted)
    assert (auction.account, auction.side, auction.lots) == ("carol", -1, 100)
    assert not of_type(events, LiquidationOrder)  # the book (bob's bid at 94,900) is not used
    bid = LiquidationBid(account="kim", auction_id=auction.auction_id, price_ticks=2)
    events = venue.events(bid)
    assert of_type(events, LiquidationBidPlaced)
    assert rejections(
        venue.events(
            LiquidationBid(account="bob", auction_id=auction.auction_id, price_ticks=1),
            LiquidationBid(account="carol", auction_id=auction.auction_id, price_ticks=9),
            LiquidationBid(account="bob", auction_id=99, price_ticks=9),
        )
    ) == ["BID_NOT_BETTER", "NOT_AUTHORIZED", "AUCTION_NOT_FOUND"]
    events = venue.events(dt=30 * SECOND)
    [ended] = of_type(events, LiquidationAuctionEnded)
    assert (ended.winner, ended.lots, ended.price_ticks) == ("kim", 100, 2)
    assert venue.engine.position("kim", BTC_PERP) == 100
    # a long sold for nothing: the fund (empty) pays nothing, the deficit is bad debt
    [paid] = of_type(events, InsurancePaid)
    assert paid.amount == 0
    assert paid.uncovered > 9_000 * USDC
    assert venue.ledger("carol").cash == -paid.uncovered
    assert venue.ledger("carol").in_liquidation  # flat, its deficit uncovered


def test_a_keeper_auction_without_bids_is_announced_again() -> None:
    venue = keeper_venue()
    [first] = of_type(venue.events(), LiquidationAuctionStarted)
    events = venue.events(dt=30 * SECOND)
    [ended] = of_type(events, LiquidationAuctionEnded)
    assert (ended.auction_id, ended.winner, ended.lots) == (first.auction_id, "", 0)
    [again] = of_type(events, LiquidationAuctionStarted)
    assert again.auction_id == first.auction_id + 1
    assert venue.engine.position("carol", BTC_PERP) == 100


def test_flat_sub_ledgers_never_pay() -> None:
    venue = adl_venue(AdlMode.PRO_RATA_RISK)
    venue.deposit("frank", 5_000 * USDC)  # flat, on the same underlying
    venue.events()
    assert venue.ledger("frank").cash == 5_000 * USDC
    assert venue.engine.insurance_fund >= 0


def test_the_lane_goes_most_under_water_first_and_is_bounded_per_block() -> None:
    one = LiquidationParams(step_share_ppm_max=100_000, subledgers_per_block_max=1)
    venue = crashed(lane=one)
    events = venue.events()
    [order] = of_type(events, LiquidationOrder)
    # 10% of the position would be 10 lots; a step closes at least 1,000 USDC: 11 lots at 95,000
    assert order.lots == 11
    assert venue.engine.position("carol", BTC_PERP) == 89
