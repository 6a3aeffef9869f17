"""Deposits, withdrawals, transfers, fills, fees and cost basis, with margin on."""

from __future__ import annotations

import pytest

from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.events import (
    Deposited,
    Fill,
    ForcedWithdrawalServed,
    OrderCancelled,
    Transferred,
    WithdrawalRequested,
)
from strikechain.engine.params import FeeParams
from strikechain.engine.txs import (
    Cancel,
    CancelAll,
    Deposit,
    ForcedWithdrawal,
    PostOnly,
    Transfer,
    Withdraw,
)
from tests.engine.venue import (
    BTC_PERP,
    ETH_PERP,
    LOT_VALUE_AT_100K,
    OPERATOR,
    TICKS_AT_100K,
    USDC,
    Venue,
    config,
    of_type,
    rejections,
)

MAKER = {"post_only": PostOnly.REJECT}


def money_held(venue: Venue) -> int:
    engine = venue.engine
    return engine.total_cash() + engine.fee_pool + engine.insurance_fund + engine.dust


def trade(venue: Venue, buyer: str, seller: str, lots: int, ticks: int = TICKS_AT_100K) -> Fill:
    """``seller`` rests, ``buyer`` takes: one fill of ``lots`` at ``ticks``."""
    venue.place(seller, -1, ticks, lots, **MAKER)
    fills = of_type(venue.place(buyer, 1, ticks, lots), Fill)
    assert len(fills) == 1
    return fills[0]


# -- deposits ---------------------------------------------------------------------------------


def test_deposit_credits_the_sub_ledger_once_in_order() -> None:
    venue = Venue()
    events = venue.deposit("alice", 500 * USDC)
    assert of_type(events, Deposited) == [Deposited(0 + 6, 1, "alice", "BTC", 500 * USDC)]
    assert venue.ledger("alice").cash == 500 * USDC
    assert venue.engine.deposits_total == 500 * USDC
    again = Deposit(
        account=OPERATOR, deposit_id=1, beneficiary="alice", underlying="BTC", amount=500 * USDC
    )
    assert rejections(venue.events(again)) == [RejectCode.DUPLICATE_DEPOSIT]
    assert venue.ledger("alice").cash == 500 * USDC
    gap = Deposit(
        account=OPERATOR, deposit_id=3, beneficiary="alice", underlying="BTC", amount=USDC
    )
    assert rejections(venue.events(gap)) == [RejectCode.DEPOSIT_OUT_OF_ORDER]
    assert venue.engine.next_deposit_id == 2


def test_deposit_refusals_change_nothing() -> None:
    venue = Venue()
    forged = Deposit(account="alice", deposit_id=1, beneficiary="alice", underlying="BTC", amount=1)
    unknown = Deposit(
        account=OPERATOR, deposit_id=1, beneficiary="alice", underlying="DOGE", amount=1
    )
    huge = Deposit(
        account=OPERATOR, deposit_id=1, beneficiary="alice", underlying="BTC", amount=10**16
    )
    events = venue.events(forged, unknown, huge)
    assert rejections(events) == [
        RejectCode.NOT_AUTHORIZED,
        RejectCode.UNKNOWN_UNDERLYING,
        RejectCode.AMOUNT_OUT_OF_RANGE,
    ]
    assert venue.engine.get_ledger("alice", "BTC") is None
    assert venue.engine.deposits_total == 0


@pytest.mark.parametrize("amount", [0, -5])
def test_amounts_must_be_positive(amount: int) -> None:
    with pytest.raises(Rejection) as caught:
        Withdraw(account="alice", underlying="BTC", amount=amount)
    assert caught.value.code == RejectCode.INVALID_AMOUNT
    with pytest.raises(Rejection):
        Transfer(account="a", from_underlying="BTC", to_underlying="BTC", amount=1)


# -- fills, fees and basis --------------------------------------------------------------------


def test_a_fill_moves_notional_positions_and_fees() -> None:
    venue = Venue()
    venue.deposit("alice", 10_000 * USDC)
    venue.deposit("bob", 10_000 * USDC)
    fill = trade(venue, "alice", "bob", 4)
    notional = 4 * LOT_VALUE_AT_100K
    # Defaults: makers get 1 bp back (FLOOR), takers pay 5 bp (CEIL).
    assert (fill.maker_fee, fill.taker_fee) == (-notional // 10_000, notional * 5 // 10_000)
    alice, bob = venue.ledger("alice"), venue.ledger("bob")
    assert alice.cash == 10_000 * USDC - notional - fill.taker_fee
    assert bob.cash == 10_000 * USDC + notional - fill.maker_fee
    assert venue.engine.position("alice", BTC_PERP) == 4
    assert venue.engine.position("bob", BTC_PERP) == -4
    assert (alice.basis, bob.basis) == (notional, -notional)
    assert venue.engine.fee_pool == fill.maker_fee + fill.taker_fee
    assert money_held(venue) == 20_000 * USDC
    market = venue.engine.markets[BTC_PERP]
    assert market.long_lots == market.short_lots == 4


def test_fees_round_in_the_venues_favour() -> None:
    venue = Venue(config(fees=FeeParams(perp_maker_ppm=-3, perp_taker_ppm=7)))
    venue.deposit("alice", 10_000 * USDC)
    venue.deposit("bob", 10_000 * USDC)
    fill = trade(venue, "alice", "bob", 1, ticks=200_001)  # 100,000.5 USDC: 100,000,500 minor
    notional = 200_001 * 500
    assert fill.taker_fee == -(-notional * 7 // 1_000_000)  # ceil: 701 (700.0035)
    assert fill.maker_fee == -(notional * 3 // 1_000_000)  # rebate floored: -300
    assert (fill.taker_fee, fill.maker_fee) == (701, -300)


def test_reductions_realize_pnl_and_keep_the_rest_of_the_basis() -> None:
    venue = Venue(config(fees=FeeParams(perp_maker_ppm=0, perp_taker_ppm=0)))
    for name in ("alice", "bob", "carol"):
        venue.deposit(name, 10_000 * USDC)
    trade(venue, "alice", "bob", 3, ticks=200_000)  # alice long 3 at 100,000
    trade(venue, "alice", "bob", 1, ticks=200_010)  # and 1 at 100,005: basis 400.005 USDC
    alice = venue.ledger("alice")
    assert alice.basis == 3 * 100 * USDC + 100_005_000
    # Sell 3 of 4 to carol at 101,000: removed basis = 400,005,000 x 3 / 4, truncated.
    trade(venue, "carol", "alice", 3, ticks=202_000)
    removed = 400_005_000 * 3 // 4
    assert alice.realized == 3 * 101_000_000 - removed
    assert alice.basis == 400_005_000 - removed
    # Close the last lot: all the basis goes, realized adds up exactly.
    trade(venue, "carol", "alice", 1, ticks=202_000)
    assert alice.basis == 0
    assert alice.realized == 4 * 101_000_000 - 400_005_000
    assert alice.cash == 10_000 * USDC + alice.realized  # no fees, flat: cash = deposits + P&L


def test_a_flip_opens_the_rest_at_the_fill_price() -> None:
    venue = Venue(config(fees=FeeParams(perp_maker_ppm=0, perp_taker_ppm=0)))
    for name in ("alice", "bob"):
        venue.deposit(name, 10_000 * USDC)
    trade(venue, "alice", "bob", 2, ticks=200_000)
    trade(venue, "bob", "alice", 5, ticks=201_000)  # alice sells 5: closes 2, opens 3 short
    alice = venue.ledger("alice")
    assert venue.engine.position("alice", BTC_PERP) == -3
    assert alice.basis == -3 * 201_000 * 500
    assert alice.realized == 2 * 1_000 * 500
    assert venue.engine.position("bob", BTC_PERP) == 3


# -- withdrawals and transfers ------------------------------------------------------------------


def test_withdrawal_takes_free_collateral_only() -> None:
    venue = Venue()
    venue.deposit("alice", 1_000 * USDC)
    too_much = Withdraw(account="alice", underlying="BTC", amount=1_000 * USDC + 1)
    assert rejections(venue.events(too_much)) == [RejectCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL]
    events = venue.events(Withdraw(account="alice", underlying="BTC", amount=400 * USDC))
    assert of_type(events, WithdrawalRequested) == [
        WithdrawalRequested(6, 1, "alice", "BTC", 400 * USDC)
    ]
    assert venue.ledger("alice").cash == 600 * USDC
    assert money_held(venue) == 600 * USDC
    nobody = Withdraw(account="nobody", underlying="BTC", amount=1)
    assert rejections(venue.events(nobody)) == [RejectCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL]


def forced(request_id: int, owner: str, amount: int, relayer: str = OPERATOR) -> ForcedWithdrawal:
    return ForcedWithdrawal(
        account=relayer, request_id=request_id, owner=owner, underlying="BTC", amount=amount
    )


def test_forced_withdrawals_are_served_in_order_with_what_may_leave() -> None:
    venue = Venue()
    venue.deposit("alice", 1_000 * USDC)
    venue.place("alice", 1, TICKS_AT_100K - 100, 100, client_order_id="bid")  # reserves 500
    events = venue.events(forced(1, "alice", 800 * USDC))
    assert of_type(events, ForcedWithdrawalServed) == [
        ForcedWithdrawalServed(6, 1, "alice", "BTC", 800 * USDC, 500 * USDC, 1)
    ]
    assert of_type(events, WithdrawalRequested) == [
        WithdrawalRequested(6, 1, "alice", "BTC", 500 * USDC)
    ]
    assert venue.ledger("alice").cash == 500 * USDC
    assert venue.engine.withdrawals_total == 500 * USDC
    # Nothing left to take, or nobody there: served with 0, and the index still moves on.
    for request_id, owner in ((2, "alice"), (3, "nobody")):
        events = venue.events(forced(request_id, owner, 1))
        assert of_type(events, ForcedWithdrawalServed) == [
            ForcedWithdrawalServed(6, request_id, owner, "BTC", 1, 0, 0)
        ]
        assert not of_type(events, WithdrawalRequested)
    assert venue.engine.next_forced_id == 4


def test_forced_withdrawal_refusals_change_nothing() -> None:
    venue = Venue()
    venue.deposit("alice", 1_000 * USDC)
    venue.events(forced(1, "alice", USDC))
    refused = {
        RejectCode.DUPLICATE_FORCED_WITHDRAWAL: forced(1, "alice", USDC),
        RejectCode.FORCED_WITHDRAWAL_OUT_OF_ORDER: forced(3, "alice", USDC),
        RejectCode.NOT_AUTHORIZED: forced(2, "alice", USDC, relayer="alice"),
    }
    for code, tx in refused.items():
        assert rejections(venue.events(tx)) == [code]
    assert venue.ledger("alice").cash == 999 * USDC
    assert venue.engine.next_forced_id == 2
    with pytest.raises(Rejection) as refused_amount:
        forced(2, "alice", 0)
    assert refused_amount.value.code == RejectCode.INVALID_AMOUNT


def test_open_orders_reserve_margin_until_cancelled() -> None:
    venue = Venue()
    venue.deposit("alice", 1_000 * USDC)
    # 100 lots at 100,000 = 10,000 USDC notional: 5% initial margin = 500 USDC reserved.
    accepted = venue.place("alice", 1, TICKS_AT_100K - 100, 100, client_order_id="bid")
    assert not rejections(accepted)
    alice = venue.ledger("alice")
    assert alice.reserve == 500 * USDC
    assert alice.withdrawable == 500 * USDC
    over = Withdraw(account="alice", underlying="BTC", amount=500 * USDC + 1)
    assert rejections(venue.events(over)) == [RejectCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL]
    # A second order needing more than what is free is refused.
    second = venue.place("alice", 1, TICKS_AT_100K - 100, 101, **MAKER)
    assert rejections(second) == [RejectCode.INSUFFICIENT_MARGIN]
    # The sell side is an alternative: the larger side counts, not the sum. An ask for 100
    # lots at 100,050 USDC reserves 5% of 10,005 USDC, only 0.25 USDC more than the bid.
    assert not rejections(venue.place("alice", -1, TICKS_AT_100K + 100, 100, **MAKER))
    assert venue.ledger("alice").reserve == 500_250_000
    venue.events(Cancel(account="alice", client_order_id="bid"))
    assert venue.ledger("alice").reserve == 500_250_000  # the ask still reserves its side
    venue.events(CancelAll(account="alice"))
    assert venue.ledger("alice").reserve == 0
    assert venue.ledger("alice").withdrawable == 1_000 * USDC


def test_unrealized_gains_back_margin_but_cannot_be_withdrawn() -> None:
    venue = Venue(config(fees=FeeParams(perp_maker_ppm=0, perp_taker_ppm=0)))
    venue.deposit("alice", 1_000 * USDC)
    venue.deposit("bob", 100_000 * USDC)
    trade(venue, "alice", "bob", 10)  # alice long 10 lots (1,000 USDC notional) at 100,000
    venue.prices["BTC"] = 110_000 * USDC  # +10%: alice's position gains 100 USDC
    venue.events()
    alice = venue.ledger("alice")
    mark = venue.engine.markets[BTC_PERP].mark_per_lot
    assert alice.unrealized == 10 * mark - 1_000 * USDC > 0
    assert alice.equity == 1_000 * USDC + alice.unrealized
    assert alice.withdrawable == 1_000 * USDC - alice.initial  # the gain does not count
    assert alice.free_collateral == alice.withdrawable + alice.unrealized  # but backs margin
    gain = Withdraw(account="alice", underlying="BTC", amount=alice.withdrawable + 1)
    assert rejections(venue.events(gain)) == [RejectCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL]
    # Realize it: sell the position; now the gain may leave.
    venue.place("bob", 1, 220_000, 10, **MAKER)
    venue.place("alice", -1, 220_000, 10, reduce_only=True)
    alice = venue.ledger("alice")
    assert alice.realized == 10 * 110 * USDC - 1_000 * USDC
    assert alice.withdrawable == 1_100 * USDC
    venue.events(Withdraw(account="alice", underlying="BTC", amount=1_100 * USDC))
    assert venue.ledger("alice").cash == 0


def test_unrealized_losses_count_against_withdrawal() -> None:
    venue = Venue(config(fees=FeeParams(perp_maker_ppm=0, perp_taker_ppm=0)))
    venue.deposit("alice", 1_000 * USDC)
    venue.deposit("bob", 100_000 * USDC)
    trade(venue, "alice", "bob", 10)
    venue.prices["BTC"] = 95_000 * USDC
    venue.events()
    alice = venue.ledger("alice")
    assert alice.unrealized < 0
    assert alice.withdrawable == 1_000 * USDC + alice.unrealized - alice.initial


def test_transfer_moves_collateral_between_sub_ledgers() -> None:
    venue = Venue()
    venue.deposit("alice", 1_000 * USDC)
    events = venue.events(
        Transfer(account="alice", from_underlying="BTC", to_underlying="ETH", amount=300 * USDC)
    )
    assert of_type(events, Transferred) == [Transferred(6, "alice", "BTC", "ETH", 300 * USDC)]
    assert venue.ledger("alice", "BTC").cash == 700 * USDC
    assert venue.ledger("alice", "ETH").cash == 300 * USDC
    # ETH perp: tick 0.05, lot 0.01: 4,000 USDC is 80,000 ticks, a lot 40 USDC.
    assert not rejections(venue.place("alice", 1, 80_000 - 10, 100, instrument=ETH_PERP, **MAKER))
    over = Transfer(account="alice", from_underlying="ETH", to_underlying="BTC", amount=300 * USDC)
    assert rejections(venue.events(over)) == [RejectCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL]
    unknown = Transfer(account="alice", from_underlying="BTC", to_underlying="SOL", amount=1)
    assert rejections(venue.events(unknown)) == [RejectCode.UNKNOWN_UNDERLYING]
    assert money_held(venue) == 1_000 * USDC


# -- margin checks -----------------------------------------------------------------------------


def test_insufficient_margin_without_collateral() -> None:
    venue = Venue()
    events = venue.place("nobody", 1, TICKS_AT_100K, 1, **MAKER)
    assert rejections(events) == [RejectCode.INSUFFICIENT_MARGIN]
    assert "nobody" not in venue.engine.accounts  # a refusal creates no account


def test_taker_margin_includes_the_fee_and_the_loss_against_the_mark() -> None:
    venue = Venue(config(fees=FeeParams(perp_maker_ppm=0, perp_taker_ppm=1_000)))
    venue.deposit("maker", 1_000_000 * USDC)
    venue.place("maker", -1, TICKS_AT_100K, 100, **MAKER)
    # 100 lots at 100,000: 10,000 USDC notional; 5% is 500 USDC, the fee 10 USDC.
    venue.deposit("taker", 510 * USDC - 1)
    assert rejections(venue.place("taker", 1, TICKS_AT_100K, 100)) == [
        RejectCode.INSUFFICIENT_MARGIN
    ]
    venue.deposit("taker", 1)
    assert of_type(venue.place("taker", 1, TICKS_AT_100K, 100), Fill)
    # Buying 2% above the mark costs that 2% at once on top of the margin.
    venue.deposit("rich", 1_000_000 * USDC)
    venue.place("maker", -1, 204_000, 10, **MAKER)
    venue.deposit("dear", 10 * 102 * USDC * 5 // 100 + 10 * 2 * USDC + 1_020_000 - 1)
    assert rejections(venue.place("dear", 1, 204_000, 10)) == [RejectCode.INSUFFICIENT_MARGIN]


def test_orders_that_reduce_need_no_margin() -> None:
    venue = Venue(config(fees=FeeParams(perp_maker_ppm=0, perp_taker_ppm=0)))
    venue.deposit("alice", 52 * USDC)
    venue.deposit("bob", 100_000 * USDC)
    trade(venue, "alice", "bob", 10)  # 1,000 USDC notional: 50 USDC initial margin
    venue.prices["BTC"] = 99_500 * USDC  # a loss of 5 USDC: free collateral is now negative
    venue.events()
    assert venue.ledger("alice").free_collateral < 0
    # A new long is refused; a closing sell, reduce-only or not, is accepted.
    assert rejections(venue.place("alice", 1, 190_000, 1, **MAKER)) == [
        RejectCode.INSUFFICIENT_MARGIN
    ]
    assert not rejections(venue.place("alice", -1, 210_000, 10, **MAKER))


def test_reduce_only_is_enforced_against_the_position() -> None:
    venue = Venue()
    venue.deposit("alice", 10_000 * USDC)
    venue.deposit("bob", 10_000 * USDC)
    flat = venue.place("alice", -1, TICKS_AT_100K, 1, reduce_only=True)
    assert rejections(flat) == [RejectCode.REDUCE_ONLY_WOULD_INCREASE]
    trade(venue, "alice", "bob", 5)
    same_side = venue.place("alice", 1, TICKS_AT_100K, 1, reduce_only=True)
    too_big = venue.place("alice", -1, TICKS_AT_100K, 6, reduce_only=True)
    assert rejections(same_side) == rejections(too_big) == [RejectCode.REDUCE_ONLY_WOULD_INCREASE]
    # Two reduce-only asks for 5 each rest (each fits the position); the first to fill closes
    # the position, and the second, reached next, is cancelled instead of opening a short.
    venue.place("alice", -1, TICKS_AT_100K + 10, 5, reduce_only=True, post_only=PostOnly.REJECT)
    venue.place("alice", -1, TICKS_AT_100K + 20, 5, reduce_only=True, post_only=PostOnly.REJECT)
    assert venue.ledger("alice").reserve == 0  # reduce-only orders reserve nothing
    venue.deposit("carol", 10_000 * USDC)
    events = venue.place("carol", 1, TICKS_AT_100K + 20, 8)
    fills = of_type(events, Fill)
    assert [f.size_lots for f in fills] == [5]
    cancelled = of_type(events, OrderCancelled)
    assert [c.reason for c in cancelled] == ["REDUCE_ONLY"]  # carol's remaining 3 rest
    assert venue.engine.position("alice", BTC_PERP) == 0
