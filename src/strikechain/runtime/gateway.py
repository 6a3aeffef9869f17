"""How agents and clients reach a venue, and how they are given time.

:class:`Gateway` is the one interface agent code is written against: the same market maker
runs in the lab (:class:`LocalGateway`, in process, over a :class:`Runtime`) and later
against a live node (a JSON-RPC/WebSocket gateway with the same methods, in ``node``).

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
  committed block that concerns ``topic.account`` (as owner, maker, taker or beneficiary)
  and/or ``topic.instrument``; an empty topic receives every event. Delivered after the block is
  in the log, in block order, each event once per subscription. ``unsubscribe()`` stops it.

:class:`Scheduler` gives agents time: ``now_ns()``, ``call_at(ns, callback)``,
``call_later(delay_ns, callback)``. The lab's discrete-event loop implements it in virtual time,
the node with the wall clock and an event loop. Callbacks run one at a time.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Final, Protocol

import msgspec

from strikechain.engine.engine import Engine
from strikechain.engine.events import Event
from strikechain.engine.txs import Cancel, Transaction
from strikechain.runtime.errors import RuntimeRejection
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


CHANNELS: Final = ("events", "ticker")


class Topic(msgspec.Struct, frozen=True, kw_only=True):
    """What a subscription receives. Channel ``events``: the events that concern ``account`` or
    ``instrument`` (either matching is enough), every event when both are empty. Channel
    ``ticker``: ``instrument``'s :class:`Ticker` after every block (Deribit's ``ticker``
    channel: what a quoting agent watches, one small message instead of every event)."""

    account: str = ""
    instrument: str = ""
    channel: str = "events"
    interval_ns: int = 0
    """Ticker channel: at most one ticker per this much block time (0: after every block), as
    Deribit's ``ticker.{instrument}.{interval}``."""

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"Topic.channel must be one of {CHANNELS}, not {self.channel!r}")
        if self.channel == "ticker" and (not self.instrument or self.account):
            raise ValueError("Topic: a ticker subscription names an instrument and no account")
        if type(self.interval_ns) is not int or self.interval_ns < 0:
            raise ValueError(f"Topic.interval_ns must be an integer >= 0, not {self.interval_ns}")


class Ticker(msgspec.Struct, frozen=True, gc=False):
    """An instrument after a block: its top of book (0: an empty side), last trade, mark and
    index (USDC minor units per unit of the underlying; 0: none yet)."""

    instrument: str
    best_bid_ticks: int
    best_bid_lots: int
    best_ask_ticks: int
    best_ask_lots: int
    last_trade_ticks: int
    mark_minor: int
    index_minor: int


def engine_ticker(engine: Engine, instrument: str) -> Ticker | None:
    """``instrument``'s ticker as the engine stands (None: not listed)."""
    book = engine.books.get(instrument)
    market = engine.markets.get(instrument)
    if book is None or market is None:
        return None
    bid, ask = book.best_bid(), book.best_ask()
    oracle = market.state.oracle
    index = oracle.index if oracle is not None and oracle.index is not None else 0
    return Ticker(
        instrument,
        bid or 0,
        0 if bid is None else book.bids.size(bid),
        ask or 0,
        0 if ask is None else book.asks.size(ask),
        market.last_trade_ticks,
        market.mark_minor,
        index,
    )


class Notice(msgspec.Struct, frozen=True, gc=False):
    """One event (or a ticker), with the block it happened in and the causing transaction's
    receipt sequence number (0 for what the engine did on its own, and for tickers)."""

    height: int
    timestamp_ns: int
    sequence: int
    event: Event | Ticker


Callback = Callable[[Notice], None]
Outcome = Callable[[Receipt | RuntimeRejection], None]
"""Receives a submission's answer: its receipt, or why the inbox refused it."""


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


_ACCOUNT_FIELDS: Final = ("account", "maker_account", "taker_account", "beneficiary")
_FIELDS_OF: dict[type, tuple[tuple[str, ...], bool]] = {}
"""Per event type: its account fields, and whether it names an instrument (found once)."""


def _fields_of(kind: type) -> tuple[tuple[str, ...], bool]:
    found = _FIELDS_OF.get(kind)
    if found is None:
        names = getattr(kind, "__struct_fields__", ())
        found = _FIELDS_OF[kind] = (
            tuple(name for name in _ACCOUNT_FIELDS if name in names),
            "instrument" in names,
        )
    return found


def _concerns(event: Event) -> tuple[list[str], str]:
    """The accounts an event concerns and its instrument's name ('' if none)."""
    fields, named = _fields_of(type(event))
    accounts = [value for name in fields if (value := getattr(event, name))]
    instrument = getattr(event, "instrument", "") if named else ""
    if not isinstance(instrument, str):  # a listing carries the instrument itself
        instrument = getattr(instrument, "name", "")
    return accounts, instrument


class Registration:
    """One subscription in a :class:`Dispatcher`: its number (delivery order), topic, callback
    and owner (whom it is delivered to: the lab batches an agent's notices per block)."""

    __slots__ = ("callback", "dispatcher", "next_ticker_ns", "number", "owner", "topic")

    def __init__(
        self, dispatcher: Dispatcher, number: int, owner: str, topic: Topic, callback: Callback
    ) -> None:
        self.dispatcher = dispatcher
        self.number = number
        self.owner = owner
        self.topic = topic
        self.callback = callback
        self.next_ticker_ns = 0
        """Ticker channel: no ticker before this block time (the topic's interval)."""

    def unsubscribe(self) -> None:
        self.dispatcher.remove(self)


class Dispatcher:
    """Subscriptions indexed by account and instrument, so an event costs a lookup per key it
    concerns, not a scan; the one place that decides who receives which event."""

    def __init__(self) -> None:
        self._next = 1
        self._everything: dict[int, Registration] = {}
        self._by_account: dict[str, dict[int, Registration]] = {}
        self._by_instrument: dict[str, dict[int, Registration]] = {}
        self._tickers: dict[str, dict[int, Registration]] = {}

    def add(self, owner: str, topic: Topic, callback: Callback) -> Registration:
        registration = Registration(self, self._next, owner, topic, callback)
        number = registration.number
        self._next += 1
        if topic.channel == "ticker":
            self._tickers.setdefault(topic.instrument, {})[number] = registration
            return registration
        if not topic.account and not topic.instrument:
            self._everything[number] = registration
        if topic.account:
            self._by_account.setdefault(topic.account, {})[number] = registration
        if topic.instrument:
            self._by_instrument.setdefault(topic.instrument, {})[number] = registration
        return registration

    def remove(self, registration: Registration) -> None:
        number, topic = registration.number, registration.topic
        self._everything.pop(number, None)
        ticker = topic.channel == "ticker"
        for index, key in (
            (self._tickers if ticker else self._by_account, topic.account),
            (self._tickers if ticker else self._by_instrument, topic.instrument),
        ):
            entries = index.get(key)
            if entries is not None:
                entries.pop(number, None)
                if not entries:
                    del index[key]

    def notices(
        self, committed: Committed, ticker: Callable[[str], Ticker | None] | None = None
    ) -> list[tuple[Registration, Notice]]:
        """Each event of a logged block for each subscription it concerns: in event order, and
        for one event in subscription order, each event once per subscription; then each
        subscribed instrument's ticker (from ``ticker``), in subscription order."""
        result, sequences = committed.result, committed.sequences
        out: list[tuple[Registration, Notice]] = []
        for event in result.events:
            targets = self._targets(event)
            if not targets:
                continue
            index = event.tx
            sequence = sequences[index] if 0 <= index < len(sequences) else 0
            notice = Notice(result.height, result.timestamp_ns, sequence, event)
            out.extend((registration, notice) for registration in targets)
        if self._tickers and ticker is not None:
            out.extend(self._ticker_notices(committed, ticker))
        return out

    def _ticker_notices(
        self, committed: Committed, ticker: Callable[[str], Ticker | None]
    ) -> list[tuple[Registration, Notice]]:
        result = committed.result
        now = result.timestamp_ns
        out: list[tuple[Registration, Notice]] = []
        for instrument, registrations in self._tickers.items():
            current = ticker(instrument)
            if current is None:
                continue
            notice = Notice(result.height, now, 0, current)
            for registration in registrations.values():
                if registration.next_ticker_ns <= now:
                    out.append((registration, notice))
                    interval = registration.topic.interval_ns
                    if interval:
                        registration.next_ticker_ns = now + interval
        return out

    def _targets(self, event: Event) -> list[Registration]:
        by_account, by_instrument = self._by_account, self._by_instrument
        if not (by_account or by_instrument):
            return list(self._everything.values())
        accounts, instrument = _concerns(event)
        found = [by_account[a] for a in accounts if a in by_account]
        if instrument and instrument in by_instrument:
            found.append(by_instrument[instrument])
        if not found:
            return list(self._everything.values())
        if len(found) == 1 and not self._everything:
            return list(found[0].values())  # one index entry: already in number order
        targets = dict(self._everything)
        for entries in found:
            targets.update(entries)
        return [targets[number] for number in sorted(targets)]


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
