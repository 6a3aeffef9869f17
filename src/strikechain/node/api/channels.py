"""Deribit's subscription channels: their names (:func:`parse_channel`) and what their
notifications carry (built by :class:`~strikechain.node.api.sessions.Hub` after each block, in the
shapes of :mod:`.shapes`, the same as the corresponding method's result).

Channels (``INTERVAL`` is ``raw``, ``100ms`` or ``agg2``; all are published once per block,
which is at least as often as Deribit's 100 ms):

- ``book.{instrument}.{interval}``: a ``snapshot`` on subscribing, then ``change`` messages
  whose entries are ``["new"|"change"|"delete", price, amount]`` against the previous one
  (``change_id`` is the block height of the change, ``prev_change_id`` the one before);
  ``book.{instrument}.{group}.{depth}.{interval}``: the top ``depth`` levels whole,
  ``[price, amount]``, when they change.
- ``ticker.{instrument}.{interval}``: ``public/ticker``'s result, on subscribing, then whenever
  a field but the time changes.
- ``trades.{instrument}.{interval}`` and ``trades.{kind}.{currency}.{interval}``: the block's
  trades (:func:`~strikechain.node.api.shapes.public_trade_shape`, Deribit's public trade).
- ``user.orders.{instrument}.{interval}``, ``user.orders.{kind}.{currency}.{interval}``, the same
  for ``user.trades``: the account's orders that changed, as ``private/get_order_state`` shows
  them (``raw``: one notification per order), and its trades, as
  ``private/get_user_trades_by_*``; ``user.portfolio.{currency}``: ``private/get_account_summary``
  of the currency (an underlying or ``USDC``; another is accepted and never sent) on subscribing
  and whenever a block touched the account.

``kind`` is ``future`` (perpetuals), ``option`` or ``any``; ``currency`` an underlying, the quote
(``USDC``) or ``any``, in any case.

strikechain's own: ``venue.{status|liquidations|settlement}`` and
``venue.{oracle|options}.{currency}`` (an underlying with a listed instrument), built by
:mod:`.venue` (see there).

strikechain's engine channels, built by :mod:`.events` (see there): ``user.events.raw`` (private:
the account's engine events), ``events.{instrument}.raw`` (the instrument's engine events) and
``events.{instrument}.ticker`` (its top of book, mark and index in ticks, lots and USDC minor
units, after every block), in the engine's own encoding (:mod:`strikechain.runtime.notice_wire`):
what the client's remote gateway runs the lab's agents on.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Final

from strikechain.engine.instruments import Instrument
from strikechain.node.api.errors import invalid_params
from strikechain.node.api.limits import ApiLimits

INTERVALS: Final = frozenset({"raw", "100ms", "agg2"})
KINDS: Final = frozenset({"future", "option", "any"})
BOOK_DEPTHS: Final = frozenset({1, 10, 20})


class ChannelKind(enum.StrEnum):
    BOOK = "book"
    BOOK_DEPTH = "book_depth"
    TICKER = "ticker"
    TRADES = "trades"
    USER_ORDERS = "user.orders"
    USER_TRADES = "user.trades"
    USER_PORTFOLIO = "user.portfolio"
    VENUE = "venue"
    USER_EVENTS = "user.events"
    EVENTS = "events"
    EVENTS_TICKER = "events.ticker"


PRIVATE_KINDS: Final = frozenset(
    {
        ChannelKind.USER_ORDERS,
        ChannelKind.USER_TRADES,
        ChannelKind.USER_PORTFOLIO,
        ChannelKind.USER_EVENTS,
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class Channel:
    """A parsed channel name. ``instrument`` names one instrument, or is empty and
    ``instrument_kind``/``currency`` filter (``currency`` upper case)."""

    name: str
    kind: ChannelKind
    instrument: str = ""
    instrument_kind: str = "any"
    currency: str = "ANY"
    interval: str = "raw"
    depth: int = 0
    topic: str = ""
    """``venue.*`` channels: the topic (``status``, ``oracle``...)."""

    @property
    def private(self) -> bool:
        return self.kind in PRIVATE_KINDS

    def matches(self, instrument: Instrument) -> bool:
        """Whether ``instrument``'s data belongs on this channel."""
        if self.instrument:
            return instrument.name == self.instrument
        if self.instrument_kind != "any" and self.instrument_kind != _kind_of(instrument):
            return False
        return self.currency in ("ANY", instrument.underlying, instrument.quote)


def parse_channel(name: str, instruments: Mapping[str, Instrument], limits: ApiLimits) -> Channel:
    """``name`` as a :class:`Channel`; invalid params if it is not one this node serves."""
    if not 0 < len(name) <= limits.channel_chars_max or not name.isprintable():
        raise invalid_params("channels", f"a channel name is 1 to {limits.channel_chars_max} chars")
    parts = name.split(".")
    head = parts[0]
    if head == "events" or parts[:2] == ["user", "events"]:
        return _events_channel(name, parts, instruments)
    if head == "user" and len(parts) >= 3:
        return _user_channel(name, parts[1], parts[2:], instruments)
    if head in ("book", "ticker", "trades") and len(parts) >= 3:
        return _market_channel(name, head, parts[1:], instruments)
    if head == "venue":
        return _venue_channel(name, parts, instruments)
    raise invalid_params("channels", f"unknown channel {name!r}")


def _market_channel(
    name: str, head: str, rest: list[str], instruments: Mapping[str, Instrument]
) -> Channel:
    interval = _interval(name, rest[-1])
    if head == "trades" and len(rest) == 3:
        return Channel(name, ChannelKind.TRADES, "", *_filter(name, rest[0], rest[1]), interval)
    instrument = _instrument(name, rest[0], instruments)
    if head == "book" and len(rest) == 4:
        group, depth = rest[1], rest[2]
        if group != "none" or not depth.isdigit() or int(depth) not in BOOK_DEPTHS:
            raise invalid_params("channels", f"{name!r}: book.NAME.none.{{1|10|20}}.INTERVAL")
        return Channel(
            name, ChannelKind.BOOK_DEPTH, instrument, interval=interval, depth=int(depth)
        )
    if len(rest) != 2:
        raise invalid_params("channels", f"unknown channel {name!r}")
    return Channel(name, ChannelKind(head), instrument, interval=interval)


def _user_channel(
    name: str, what: str, rest: list[str], instruments: Mapping[str, Instrument]
) -> Channel:
    if what == "portfolio" and len(rest) == 1:
        return Channel(name, ChannelKind.USER_PORTFOLIO, currency=rest[0].upper())
    if what not in ("orders", "trades"):
        raise invalid_params("channels", f"unknown channel {name!r}")
    kind = ChannelKind.USER_ORDERS if what == "orders" else ChannelKind.USER_TRADES
    interval = _interval(name, rest[-1])
    if len(rest) == 2:
        return Channel(name, kind, _instrument(name, rest[0], instruments), interval=interval)
    if len(rest) == 3:
        return Channel(name, kind, "", *_filter(name, rest[0], rest[1]), interval)
    raise invalid_params("channels", f"unknown channel {name!r}")


def _interval(name: str, text: str) -> str:
    if text not in INTERVALS:
        raise invalid_params("channels", f"{name!r}: the interval is raw, 100ms or agg2")
    return text


def _filter(name: str, kind: str, currency: str) -> tuple[str, str]:
    if kind not in KINDS:
        raise invalid_params("channels", f"{name!r}: the kind is future, option or any")
    return kind, currency.upper()


def _instrument(name: str, instrument: str, instruments: Mapping[str, Instrument]) -> str:
    if instrument not in instruments:
        raise invalid_params("channels", f"{name!r}: no instrument {instrument!r} is listed")
    return instrument


def _kind_of(instrument: Instrument) -> str:
    return "option" if instrument.is_option else "future"


# -- strikechain's venue channels ------------------------------------------------------------------

VENUE_TOPICS: Final = frozenset({"status", "liquidations", "settlement", "oracle", "options"})
VENUE_CURRENCY_TOPICS: Final = frozenset({"oracle", "options"})


def _venue_channel(name: str, parts: list[str], instruments: Mapping[str, Instrument]) -> Channel:
    """``venue.{topic}``, or ``venue.{topic}.{currency}`` for the topics of one underlying."""
    topic = parts[1] if len(parts) >= 2 else ""
    if topic not in VENUE_TOPICS:
        topics = "|".join(sorted(VENUE_TOPICS))
        raise invalid_params("channels", f"{name!r}: venue.{{{topics}}}[.CURRENCY]")
    if topic not in VENUE_CURRENCY_TOPICS:
        if len(parts) != 2:
            raise invalid_params("channels", f"unknown channel {name!r}")
        return Channel(name, ChannelKind.VENUE, topic=topic)
    currency = parts[2].upper() if len(parts) == 3 else ""
    if currency not in {instrument.underlying for instrument in instruments.values()}:
        raise invalid_params("channels", f"{name!r}: venue.{topic}.CURRENCY, an underlying")
    return Channel(name, ChannelKind.VENUE, currency=currency, topic=topic)


# -- strikechain's engine channels -----------------------------------------------------------------

EVENT_VIEWS: Final = {"raw": ChannelKind.EVENTS, "ticker": ChannelKind.EVENTS_TICKER}


def _events_channel(name: str, parts: list[str], instruments: Mapping[str, Instrument]) -> Channel:
    """``user.events.raw``, or ``events.{instrument}.{raw|ticker}``."""
    if parts[0] == "user":
        if parts != ["user", "events", "raw"]:
            raise invalid_params("channels", f"{name!r}: the account's events are user.events.raw")
        return Channel(name, ChannelKind.USER_EVENTS)
    if len(parts) != 3 or parts[2] not in EVENT_VIEWS:
        raise invalid_params("channels", f"{name!r}: events.INSTRUMENT.{{raw|ticker}}")
    instrument = _instrument(name, parts[1], instruments)
    return Channel(name, EVENT_VIEWS[parts[2]], instrument)
