"""The liquidation lane through the engine: queued sub-ledgers are reduced against the book
after cancels and before new orders, within the band and the bankruptcy price, the fee goes to
the insurance fund, which makes flat sub-ledgers with negative equity whole; never on an open
breaker's price; bounded per block. ``Venue.apply`` runs ``Engine.check`` after every block
(money conserved, exactly the sub-ledgers below maintenance queued)."""

from __future__ import annotations

from strikechain.engine.events import (
    Fill,
    InsurancePaid,
    LiquidationFee,
    LiquidationOrder,
    LiquidationQueued,
)
from strikechain.engine.liquidation import LiquidationParams
from strikechain.engine.txs import Cancel, PostOnly
from tests.engine.venue import BTC_PERP, BTC_PRICE, TICKS_AT_100K, USDC, Venue, config, of_type

MAKER = {"post_only": PostOnly.REJECT}
LANE = LiquidationParams(step_share_ppm_max=1_000_000)  # a whole position per step


def crashed(cash: int = 700 * USDC, lane: LiquidationParams = LANE, bid: int = 189_800) -> Venue:
    """carol long 100 lots at 100,000 with ``cash``; bob bids 100 lots at ``bid`` ticks; the
    index falls to 95,000: carol is queued at the end of that block."""
    venue = Venue(config(liquidation=lane))
    venue.deposit("carol", cash)
    venue.deposit("bob", 1_000_000 * USDC)
    venue.place("bob", -1, TICKS_AT_100K, 100, **MAKER)
    venue.place("carol", 1, TICKS_AT_100K, 100)
    venue.place("bob", 1, bid, 100, client_order_id="bid", **MAKER)
    venue.prices["BTC"] = BTC_PRICE * 95 // 100
    assert of_type(venue.events(), LiquidationQueued)
    return venue


def test_the_lane_sells_into_the_book_and_charges_the_fee_to_the_insurance_fund() -> None:
    venue = crashed()
    fund = venue.engine.insurance_fund
    events = venue.events()
    [order] = of_type(events, LiquidationOrder)
    assert (order.account, order.side, order.lots, order.filled_lots) == ("carol", -1, 100, 100)
    fills = [f for f in of_type(events, Fill) if f.taker_order_id == order.order_id]
    assert [(f.price_ticks, f.size_lots) for f in fills] == [(189_800, 100)]
    [fee] = of_type(events, LiquidationFee)
    # 1% of 9,490 USDC closed
    assert fee.amount == 94_900_000
    assert venue.engine.insurance_fund == fund + fee.amount
    carol = venue.ledger("carol")
    assert venue.engine.position("carol", BTC_PERP) == 0
    assert not carol.in_liquidation
    assert carol.cash >= 0


def test_a_cancel_in_the_same_block_goes_first_and_nothing_is_sold_below_bankruptcy() -> None:
    # bob cancels his bid in the block the lane runs: cancels go before liquidations, so the
    # book has nothing for carol within her bankruptcy price and nothing is sold
    venue = crashed()
    events = venue.events(Cancel(account="bob", client_order_id="bid"))
    [order] = of_type(events, LiquidationOrder)
    assert order.filled_lots == 0
    assert venue.engine.position("carol", BTC_PERP) == 100
    assert venue.ledger("carol").in_liquidation


def test_insurance_covers_a_flat_sub_ledger_as_far_as_the_fund_goes() -> None:
    # carol (520 USDC, 5 paid in taker fees) at 95,000 has 15 USDC of equity: her bankruptcy
    # price is 94,850 (189,700 ticks) and bob's bid at 93,000 is below it: nothing is sold
    venue = crashed(cash=520 * USDC, bid=186_000)
    [order] = of_type(venue.events(), LiquidationOrder)
    assert (order.limit_ticks, order.filled_lots) == (189_700, 0)
    # the index falls to 93,000: her equity is negative, the limit is the band's edge, she is
    # sold out at 93,000 (a 700 USDC loss on 520); no fee can be paid from nothing; the fund
    # (which holds only fees, none yet) pays what it has and the rest is bad debt
    venue.prices["BTC"] = BTC_PRICE * 93 // 100
    fund = venue.engine.insurance_fund
    events = venue.events()
    [order] = of_type(events, LiquidationOrder)
    assert order.filled_lots == 100
    assert not of_type(events, LiquidationFee)
    [paid] = of_type(events, InsurancePaid)
    assert paid.account == "carol"
    deficit = paid.amount + paid.uncovered
    assert deficit > 0
    assert paid.amount == min(deficit, fund)
    assert venue.ledger("carol").cash == -paid.uncovered


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


def test_the_lane_is_bounded_per_block() -> None:
    one = LiquidationParams(step_share_ppm_max=100_000, subledgers_per_block_max=1)
    venue = crashed(lane=one)
    events = venue.events()
    [order] = of_type(events, LiquidationOrder)
    assert order.lots == 10  # 10% of the position per step
    assert venue.engine.position("carol", BTC_PERP) == 90
