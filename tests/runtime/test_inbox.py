from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strikechain.runtime import Inbox, RuntimeCode, RuntimeRejection

from .helpers import cancel


def test_receipts_number_in_arrival_order() -> None:
    inbox = Inbox(3)
    receipts = [inbox.submit(cancel(order_id=i + 1), 100 + i) for i in range(3)]
    assert [(r.sequence, r.arrival_ns) for r in receipts] == [(1, 100), (2, 101), (3, 102)]
    assert [p.sequence for p in inbox] == [1, 2, 3]
    assert len(inbox) == 3
    assert inbox.free == 0


def test_full_inbox_refuses_and_changes_nothing() -> None:
    inbox = Inbox(2)
    inbox.submit(cancel(), 1)
    inbox.submit(cancel(), 2)
    with pytest.raises(RuntimeRejection) as refused:
        inbox.submit(cancel(), 3)
    assert refused.value.code == RuntimeCode.INBOX_FULL
    assert "INBOX_FULL" in str(refused.value)
    assert [p.sequence for p in inbox] == [1, 2]
    inbox.take([next(iter(inbox))])
    assert inbox.submit(cancel(), 4).sequence == 3, "a refusal used up no sequence number"


def test_not_a_transaction_is_refused() -> None:
    inbox = Inbox(2)
    with pytest.raises(RuntimeRejection) as refused:
        inbox.submit("place 1 BTC", 1)  # type: ignore[arg-type]
    assert refused.value.code == RuntimeCode.NOT_A_TRANSACTION
    assert len(inbox) == 0


def test_withdraw_and_take() -> None:
    inbox = Inbox(4)
    for i in range(4):
        inbox.submit(cancel(order_id=i + 1), i)
    assert inbox.withdraw(2) is not None
    assert inbox.withdraw(2) is None
    first = inbox.get(1)
    assert first is not None
    inbox.take([first])
    assert [p.sequence for p in inbox] == [3, 4]


def test_every_kind_of_the_transaction_union_is_admitted() -> None:
    import typing

    from strikechain.engine.txs import LiquidationBid, SetMarginMode, Transaction
    from strikechain.runtime.inbox import TRANSACTION_KINDS

    assert set(typing.get_args(Transaction)) == set(TRANSACTION_KINDS)
    assert {LiquidationBid, SetMarginMode} <= TRANSACTION_KINDS


@given(
    fees=st.lists(st.integers(0, 20), max_size=60),
    taken=st.sets(st.integers(0, 59)),
    minimum=st.integers(0, 20),
    count=st.integers(0, 70),
)
def test_top_by_fee_is_the_sorted_head_of_what_waits(
    fees: list[int], taken: set[int], minimum: int, count: int
) -> None:
    """The heap gives what sorting every waiting transaction by (fee desc, arrival) gives,
    however many left the inbox in between, and asking twice gives the same."""
    from strikechain.engine.txs import Cancel
    from strikechain.runtime.inbox import Inbox

    inbox = Inbox(100)
    receipts = [
        inbox.submit(Cancel(account="a", order_id=1, priority_fee=fee), now_ns=n)
        for n, fee in enumerate(fees)
    ]
    for index in sorted(taken):
        if index < len(receipts):
            inbox.withdraw(receipts[index].sequence)
    expected = sorted(
        (entry for entry in inbox if entry.tx.priority_fee >= minimum),
        key=lambda entry: (-entry.tx.priority_fee, entry.sequence),
    )[:count]
    assert inbox.top_by_fee(minimum, count) == expected
    assert inbox.top_by_fee(minimum, count) == expected
