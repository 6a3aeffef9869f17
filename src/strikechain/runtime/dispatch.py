"""Who receives which event of a committed block: :class:`Dispatcher`.

The one place that decides it, for every gateway (in process, the lab's network feed, a node's
sockets). Compiled by mypyc (``make native``): the lab calls it for every block and every
subscriber.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from strikechain.engine.events import Event
from strikechain.runtime.messages import Callback, Notice, Ticker, Topic
from strikechain.runtime.runtime import Committed

_ACCOUNT_FIELDS: Final = ("account", "maker_account", "taker_account", "beneficiary", "bidder")


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

    __slots__ = (
        "callback",
        "dispatcher",
        "interval_ns",
        "next_ticker_ns",
        "number",
        "owner",
        "sink_data",
        "topic",
    )

    def __init__(
        self, dispatcher: Dispatcher, number: int, owner: str, topic: Topic, callback: Callback
    ) -> None:
        self.dispatcher = dispatcher
        self.number = number
        self.owner = owner
        self.topic = topic
        self.callback = callback
        self.interval_ns = topic.interval_ns
        """The topic's (read once: a Struct's field costs a lookup on every block)."""
        self.next_ticker_ns = 0
        """Ticker channel: no ticker before this block time (the topic's interval)."""
        self.sink_data: object = None
        """What the sink delivering it keeps per subscription (the lab's feed: the owner's
        mailbox, so a notice costs no lookup by owner); None until the sink sets it."""

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
                    interval = registration.interval_ns
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
