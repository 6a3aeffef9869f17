"""How agents and clients reach a venue, and how they are given time.

:class:`Gateway` is the one interface agent code is written against: the same market maker
runs in the lab (:class:`LocalGateway`, in process, over a :class:`Runtime`) and later
against a live node (a JSON-RPC/WebSocket gateway with the same methods, in ``node``).

- ``submit(tx) -> Receipt``: the transaction is in the venue's inbox (or a
  :class:`~strikechain.runtime.errors.RuntimeRejection` with a stable code, e.g.
  ``INBOX_FULL``). A receipt is not an outcome: the outcome arrives as events.
- ``cancel(account, order_id=..., client_order_id=...) -> Receipt``: submits a
  :class:`~strikechain.engine.txs.Cancel` (the engine judges it in block order like any other
  transaction: a cancel can lose a race with a fill).
- ``subscribe(topic, callback) -> Subscription``: ``callback(notice)`` for every event of a
  committed block that concerns ``topic.account`` (as owner, maker, taker or beneficiary)
  and/or ``topic.instrument``; an empty topic receives every event. Delivered after the block is
  in the log, in block order, each event once per subscription. ``unsubscribe()`` stops it.

:class:`Scheduler` gives agents time: ``now_ns()``, ``call_at(ns, callback)``,
``call_later(delay_ns, callback)``. The lab's discrete-event loop implements it in virtual time,
the node with the wall clock and an event loop. Callbacks run one at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

import msgspec

from strikechain.engine.events import Event
from strikechain.engine.txs import Cancel, Transaction
from strikechain.runtime.inbox import Receipt
from strikechain.runtime.runtime import Committed, Runtime


class Clock(Protocol):
    def now_ns(self) -> int: ...


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Clock, Protocol):
    """Time for agents and drivers: virtual in the lab, the wall clock in the node."""

    def call_at(self, when_ns: int, callback: Callable[[], None]) -> TimerHandle: ...

    def call_later(self, delay_ns: int, callback: Callable[[], None]) -> TimerHandle: ...


class Topic(msgspec.Struct, frozen=True, kw_only=True):
    """Which events a subscription receives: those that concern ``account`` or
    ``instrument`` (either matching is enough); every event when both are empty."""

    account: str = ""
    instrument: str = ""


class Notice(msgspec.Struct, frozen=True, gc=False):
    """One event, with the block it happened in and the causing transaction's receipt
    sequence number (0 for what the engine did on its own)."""

    height: int
    timestamp_ns: int
    sequence: int
    event: Event


Callback = Callable[[Notice], None]


class Subscription(Protocol):
    def unsubscribe(self) -> None: ...


class Gateway(Protocol):
    def submit(self, tx: Transaction) -> Receipt: ...

    def cancel(
        self, account: str, *, order_id: int = 0, client_order_id: str = "", priority_fee: int = 0
    ) -> Receipt: ...

    def subscribe(self, topic: Topic, callback: Callback) -> Subscription: ...


_ACCOUNT_FIELDS: Final = ("account", "maker_account", "taker_account", "beneficiary")


def _concerns(event: Event) -> tuple[list[str], str]:
    """The accounts an event concerns and its instrument's name ('' if none)."""
    accounts = [
        value
        for name in _ACCOUNT_FIELDS
        if isinstance(value := getattr(event, name, None), str) and value
    ]
    instrument = getattr(event, "instrument", "")
    if not isinstance(instrument, str):  # a listing carries the instrument itself
        instrument = getattr(instrument, "name", "")
    return accounts, instrument


class _LocalSubscription:
    __slots__ = ("_gateway", "callback", "number", "topic")

    def __init__(self, gateway: LocalGateway, number: int, topic: Topic, callback: Callback):
        self._gateway = gateway
        self.number = number
        self.topic = topic
        self.callback = callback

    def unsubscribe(self) -> None:
        self._gateway._remove(self)


class LocalGateway:
    """A :class:`Gateway` in process: submit goes to the runtime's inbox at the clock's time;
    subscriptions are served by a sink on the runtime that dispatches events by account and
    instrument (an index per key, so an event costs a lookup per key, not a scan)."""

    def __init__(self, runtime: Runtime, clock: Clock) -> None:
        self.runtime = runtime
        self.clock = clock
        self._next = 1
        self._everything: dict[int, _LocalSubscription] = {}
        self._by_account: dict[str, dict[int, _LocalSubscription]] = {}
        self._by_instrument: dict[str, dict[int, _LocalSubscription]] = {}
        runtime.add_sink(self)

    def submit(self, tx: Transaction) -> Receipt:
        return self.runtime.submit(tx, self.clock.now_ns())

    def cancel(
        self, account: str, *, order_id: int = 0, client_order_id: str = "", priority_fee: int = 0
    ) -> Receipt:
        tx = Cancel(
            account=account,
            order_id=order_id,
            client_order_id=client_order_id,
            priority_fee=priority_fee,
        )
        return self.submit(tx)

    def subscribe(self, topic: Topic, callback: Callback) -> Subscription:
        subscription = _LocalSubscription(self, self._next, topic, callback)
        self._next += 1
        if not topic.account and not topic.instrument:
            self._everything[subscription.number] = subscription
        if topic.account:
            self._by_account.setdefault(topic.account, {})[subscription.number] = subscription
        if topic.instrument:
            index = self._by_instrument.setdefault(topic.instrument, {})
            index[subscription.number] = subscription
        return subscription

    def _remove(self, subscription: _LocalSubscription) -> None:
        number, topic = subscription.number, subscription.topic
        self._everything.pop(number, None)
        for index, key in (
            (self._by_account, topic.account),
            (self._by_instrument, topic.instrument),
        ):
            entries = index.get(key)
            if entries is not None:
                entries.pop(number, None)
                if not entries:
                    del index[key]

    def on_block(self, committed: Committed) -> None:
        """The sink side: deliver each event of a logged block to the subscriptions it
        concerns, in event order, once per subscription."""
        result, sequences = committed.result, committed.sequences
        for event in result.events:
            targets = self._targets(event)
            if not targets:
                continue
            index = event.tx
            sequence = sequences[index] if 0 <= index < len(sequences) else 0
            notice = Notice(result.height, result.timestamp_ns, sequence, event)
            for subscription in targets:
                subscription.callback(notice)

    def _targets(self, event: Event) -> list[_LocalSubscription]:
        targets = dict(self._everything)
        if self._by_account or self._by_instrument:
            accounts, instrument = _concerns(event)
            for account in accounts:
                targets.update(self._by_account.get(account, {}))
            if instrument:
                targets.update(self._by_instrument.get(instrument, {}))
        return [targets[number] for number in sorted(targets)]
