"""How agents and clients reach a venue, and how they are given time.

:class:`Gateway` is the one interface agent code is written against: the same market maker
runs in the lab (:class:`LocalGateway`, in process, over a :class:`Runtime`) and against a
live node from another process (:class:`strikechain.client.gateway.RemoteGateway`, over the
node's JSON-RPC WebSocket and its engine channels).

- ``submit(tx, on_outcome)``: sends the transaction; ``on_outcome`` receives, when the answer
  reaches the sender, a :class:`~strikechain.runtime.inbox.Receipt` (it is in the venue's inbox)
  or a :class:`~strikechain.runtime.errors.RuntimeRejection` with a stable code (e.g.
  ``INBOX_FULL``). In process the answer is immediate; in the lab it crosses the network model
  (and a lost message never answers); a node answers over its socket. A receipt is not a fill:
  what the engine made of the transaction arrives as events.
- ``cancel(account, order_id=..., client_order_id=..., on_outcome=...)``: submits a
  :class:`~strikechain.engine.txs.Cancel` (the engine judges it in block order like any other
  transaction: a cancel can lose a race with a fill).
- ``subscribe(topic, callback) -> Subscription``: ``callback(notice)`` for every event of a
  committed block that concerns ``topic.account`` (as owner, maker, taker, beneficiary or
  auction bidder) and/or ``topic.instrument``; an empty topic receives every event. Delivered
  after the block is in the log, in block order, each event once per subscription.
  ``unsubscribe()`` stops it.

:class:`Scheduler` gives agents time: ``now_ns()``, ``call_at(ns, callback)``,
``call_later(delay_ns, callback)``. The lab's discrete-event loop implements it in virtual time,
:class:`~strikechain.runtime.live_scheduler.LiveScheduler` with the wall clock and an event loop.
Callbacks run one at a time.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Protocol

from strikechain.engine.engine import Engine
from strikechain.engine.txs import Cancel, Transaction
from strikechain.runtime.dispatch import Dispatcher, Registration
from strikechain.runtime.errors import RuntimeRejection
from strikechain.runtime.inbox import Receipt
from strikechain.runtime.messages import (
    CHANNELS,
    Callback,
    Notice,
    Outcome,
    Ticker,
    Topic,
    engine_ticker,
)
from strikechain.runtime.runtime import Committed, Runtime

__all__ = [
    "CHANNELS",
    "Callback",
    "CancelBySubmit",
    "Clock",
    "Dispatcher",
    "Gateway",
    "LocalGateway",
    "Notice",
    "Outcome",
    "Registration",
    "Scheduler",
    "Subscription",
    "Ticker",
    "TimerHandle",
    "Topic",
    "engine_ticker",
]


class Clock(Protocol):
    def now_ns(self) -> int: ...


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Clock, Protocol):
    """Time for agents and drivers: virtual in the lab, the wall clock in the node."""

    def call_at(self, when_ns: int, callback: Callable[[], None]) -> TimerHandle: ...

    def call_later(self, delay_ns: int, callback: Callable[[], None]) -> TimerHandle: ...


class Subscription(Protocol):
    def unsubscribe(self) -> None: ...


class Gateway(Protocol):
    def submit(self, tx: Transaction, on_outcome: Outcome | None = None) -> None: ...

    def cancel(
        self,
        account: str,
        *,
        order_id: int = 0,
        client_order_id: str = "",
        priority_fee: int = 0,
        on_outcome: Outcome | None = None,
    ) -> None: ...

    def subscribe(self, topic: Topic, callback: Callback) -> Subscription: ...


class CancelBySubmit(abc.ABC):
    """``cancel`` for a gateway that has ``submit``: a cancel is a transaction like any other."""

    __slots__ = ()

    @abc.abstractmethod
    def submit(self, tx: Transaction, on_outcome: Outcome | None = None) -> None: ...

    def cancel(
        self,
        account: str,
        *,
        order_id: int = 0,
        client_order_id: str = "",
        priority_fee: int = 0,
        on_outcome: Outcome | None = None,
    ) -> None:
        tx = Cancel(
            account=account,
            order_id=order_id,
            client_order_id=client_order_id,
            priority_fee=priority_fee,
        )
        self.submit(tx, on_outcome)


class LocalGateway(CancelBySubmit):
    """A :class:`Gateway` in process: submit goes to the runtime's inbox at the clock's time and
    answers at once; subscriptions are served by a sink on the runtime (a :class:`Dispatcher`)
    as soon as a block is logged."""

    __slots__ = ("clock", "dispatcher", "runtime")

    def __init__(self, runtime: Runtime, clock: Clock) -> None:
        self.runtime = runtime
        self.clock = clock
        self.dispatcher = Dispatcher()
        runtime.add_sink(self)

    def _ticker(self, instrument: str) -> Ticker | None:
        engine = self.runtime.engine
        return engine_ticker(engine, instrument) if isinstance(engine, Engine) else None

    def submit(self, tx: Transaction, on_outcome: Outcome | None = None) -> None:
        outcome: Receipt | RuntimeRejection
        try:
            outcome = self.runtime.submit(tx, self.clock.now_ns())
        except RuntimeRejection as rejection:
            outcome = rejection
        if on_outcome is not None:
            on_outcome(outcome)

    def subscribe(self, topic: Topic, callback: Callback) -> Subscription:
        return self.dispatcher.add("", topic, callback)

    def on_block(self, committed: Committed) -> None:
        """The sink side: deliver each event of a logged block to the subscriptions it
        concerns, in event order, once per subscription."""
        for registration, notice in self.dispatcher.notices(committed, self._ticker):
            registration.callback(notice)
