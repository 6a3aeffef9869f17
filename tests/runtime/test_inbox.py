from __future__ import annotations

import pytest

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
