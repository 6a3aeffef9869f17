from __future__ import annotations

from strikechain.engine.oracle import OracleReport
from strikechain.runtime import ArrivalOrder, BaseFeeRule, FeePriority, Inbox
from strikechain.runtime.inbox import Pending
from strikechain.runtime.selection import BlockBounds, next_base_fee

from .helpers import cancel


def fill(fees: list[int]) -> Inbox:
    inbox = Inbox(len(fees) + 10)
    for i, fee in enumerate(fees):
        inbox.submit(cancel(order_id=i + 1, fee=fee), i)
    return inbox


def sequences(chosen: list[Pending]) -> list[int]:
    return [p.sequence for p in chosen]


def test_arrival_order_is_fifo_up_to_capacity() -> None:
    inbox = fill([5, 1, 9, 3, 7])
    chosen = ArrivalOrder().select(inbox, BlockBounds(3, 100))
    assert sequences(chosen) == [1, 2, 3]
    assert ArrivalOrder().ready(inbox) == 5


def test_fee_priority_takes_highest_fees_stable_by_arrival() -> None:
    inbox = fill([5, 1, 9, 5, 7, 9])
    chosen = FeePriority().select(inbox, BlockBounds(4, 100))
    # fees 9 (#3, #6), 7 (#5), then the earlier of the two 5s (#1); returned in arrival order
    assert sequences(chosen) == [1, 3, 5, 6]


def test_base_fee_makes_cheap_transactions_wait() -> None:
    selection = FeePriority(BaseFeeRule(floor=8, initial=10))
    inbox = fill([9, 10, 11, 3])
    assert selection.ready(inbox) == 2
    assert sequences(selection.select(inbox, BlockBounds(10, 100))) == [2, 3]


def test_base_fee_moves_at_most_an_eighth_toward_half_full() -> None:
    bounds = BlockBounds(100, 100)
    selection = FeePriority(BaseFeeRule(floor=8, initial=800))
    selection.after_block(100, bounds)  # full: +1/8
    assert selection.base_fee == 900
    selection.after_block(50, bounds)  # at target: unchanged
    assert selection.base_fee == 900
    selection.after_block(0, bounds)  # empty: -1/8
    assert selection.base_fee == 900 - 900 // 8
    selection.after_block(75, bounds)  # half way above target: +1/16
    assert selection.base_fee == 788 + 788 * 25 // 400


def test_base_fee_floor_and_least_rise() -> None:
    assert next_base_fee(8, 0, 100, floor=8) == 8, "never below the floor"
    assert next_base_fee(8, 51, 100, floor=8) == 9, "a rise is at least 1"
    fee = 1_000
    for _ in range(200):
        after = next_base_fee(fee, 0, 100, floor=8)
        assert fee - after <= fee // 8
        fee = after
    assert fee == 8
    for _ in range(50):
        after = next_base_fee(fee, 100, 100, floor=8)
        assert 0 < after - fee <= fee // 8
        fee = after


def test_congestion_then_relief() -> None:
    """Full blocks raise the fee above low bidders, who wait; quiet blocks bring it back."""
    bounds = BlockBounds(4, 100)
    selection = FeePriority(BaseFeeRule(floor=8))
    inbox = Inbox(100)
    low = inbox.submit(cancel(fee=9), 0).sequence
    for block in range(6):  # eight high bidders a block: every block full
        for i in range(8):
            inbox.submit(cancel(order_id=i + 1, fee=1_000), block)
        chosen = selection.select(inbox, bounds)
        inbox.take(chosen)
        selection.after_block(len(chosen), bounds)
    assert selection.base_fee > 9
    assert inbox.get(low) is not None, "the low bidder waits"
    while inbox.get(low) is not None:
        chosen = selection.select(inbox, bounds)
        inbox.take(chosen)
        selection.after_block(len(chosen), bounds)
    assert selection.base_fee <= 9


def test_report_bound_defers_reports() -> None:
    inbox = Inbox(10)
    report = OracleReport(
        account="0x" + "11" * 20, underlying="BTC", timestamp_ns=1, price=100, confidence=1
    )
    for _ in range(3):
        inbox.submit(report, 0)
    inbox.submit(cancel(), 0)
    chosen = ArrivalOrder().select(inbox, BlockBounds(10, 2))
    assert sequences(chosen) == [1, 2, 4]
    chosen = FeePriority().select(inbox, BlockBounds(10, 1))
    assert sequences(chosen) == [1, 4]
