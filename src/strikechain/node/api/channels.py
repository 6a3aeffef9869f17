"""Deribit's subscription channels: their names (:func:`parse_channel`) and the data their
notifications carry, built from the engine after a block.

Channels (``INTERVAL`` is ``raw``, ``100ms`` or ``agg2``; all are published once per block,
which is at least as often as Deribit's 100 ms):

- ``book.{instrument}.{interval}``: a ``snapshot`` on subscribing, then ``change`` messages
  whose entries are ``["new"|"change"|"delete", price, amount]`` against the previous one
  (``change_id`` is the block height of the change, ``prev_change_id`` the one before);
  ``book.{instrument}.{group}.{depth}.{interval}``: the top ``depth`` levels whole,
  ``[price, amount]``, when they change.
- ``ticker.{instrument}.{interval}``: on subscribing, then whenever a field but the time changes.
- ``trades.{instrument}.{interval}`` and ``trades.{kind}.{currency}.{interval}``: the block's
  trades.
- ``user.orders.{instrument}.{interval}``, ``user.orders.{kind}.{currency}.{interval}``, the same
  for ``user.trades``: the account's orders that changed (``raw``: one notification per order)
  and its trades; ``user.portfolio.{currency}``: the account's sub-ledger when the block moved it.

``kind`` is ``future`` (perpetuals), ``option`` or ``any``; ``currency`` an underlying, the quote
(``USDC``) or ``any``, in any case. Prices and amounts leave as JSON numbers, as Deribit's do:
the one place a decimal becomes a float is :func:`number`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from strikechain.engine.book import Order
from strikechain.engine.engine import Engine
from strikechain.engine.events import Fill
from strikechain.engine.instruments import Instrument
from strikechain.engine.txs import Side
from strikechain.engine.units import lots_to_size, minor_to_quote, ticks_to_price
from strikechain.node.api.errors import invalid_params
from strikechain.node.api.limits import ApiLimits

INTERVALS: Final = frozenset({"raw", "100ms", "agg2"})
KINDS: Final = frozenset({"future", "option", "any"})
BOOK_DEPTHS: Final = frozenset({1, 10, 20})
NANOS_PER_MILLISECOND: Final = 1_000_000


class ChannelKind(enum.StrEnum):
    BOOK = "book"
    BOOK_DEPTH = "book_depth"
    TICKER = "ticker"
    TRADES = "trades"
    USER_ORDERS = "user.orders"
    USER_TRADES = "user.trades"
    USER_PORTFOLIO = "user.portfolio"


PRIVATE_KINDS: Final = frozenset(
    {ChannelKind.USER_ORDERS, ChannelKind.USER_TRADES, ChannelKind.USER_PORTFOLIO}
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
    if head == "user" and len(parts) >= 3:
        return _user_channel(name, parts[1], parts[2:], instruments)
    if head in ("book", "ticker", "trades") and len(parts) >= 3:
        return _market_channel(name, head, parts[1:], instruments)
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


# -- data (local shapes, Deribit's field names) ---------------------------------------------------


def number(value: Decimal) -> float | int:
    """A decimal as a JSON number: an integer when whole, else the nearest float."""
    return int(value) if value == value.to_integral_value() else float(value)


def price(instrument: Instrument, price_ticks: int) -> float | int:
    return number(ticks_to_price(price_ticks, instrument.tick_size))


def amount(instrument: Instrument, size_lots: int) -> float | int:
    return number(lots_to_size(size_lots, instrument.lot_size))


def levels(engine: Engine, instrument: str, depth: int) -> tuple[list[tuple[int, int]], ...]:
    """The best ``depth`` (price ticks, lots) of each side: ``(bids, asks)``."""
    book = engine.books.get(instrument)
    if book is None:
        return [], []
    return book.depth(int(Side.BUY), depth), book.depth(int(Side.SELL), depth)


def ticker(engine: Engine, name: str, timestamp_ms: int) -> dict[str, Any]:
    instrument = engine.instruments[name]
    bids, asks = levels(engine, name, 1)
    market = engine.markets.get(name)
    mark_minor = market.mark_minor if market is not None else 0
    last_ticks = market.last_trade_ticks if market is not None else 0
    oracle = engine.underlyings[instrument.underlying].oracle
    index = oracle.index if oracle is not None else None
    halted = market is not None and market.halted
    return {
        "timestamp": timestamp_ms,
        "instrument_name": name,
        "state": "closed" if halted else "open",
        "best_bid_price": price(instrument, bids[0][0]) if bids else None,
        "best_bid_amount": amount(instrument, bids[0][1]) if bids else 0,
        "best_ask_price": price(instrument, asks[0][0]) if asks else None,
        "best_ask_amount": amount(instrument, asks[0][1]) if asks else 0,
        "last_price": price(instrument, last_ticks) if last_ticks else None,
        "mark_price": number(minor_to_quote(mark_minor)) if mark_minor else None,
        "index_price": number(minor_to_quote(index)) if index else None,
        "stats": {},
    }


def trade(engine: Engine, fill: Fill, trade_id: str, timestamp_ms: int) -> dict[str, Any]:
    instrument = (
        engine.instruments.get(fill.instrument) or engine.expired_instruments[fill.instrument]
    )
    return {
        "trade_id": trade_id,
        "trade_seq": 0,
        "timestamp": timestamp_ms,
        "instrument_name": fill.instrument,
        "price": price(instrument, fill.price_ticks),
        "amount": amount(instrument, fill.size_lots),
        "direction": "buy" if fill.taker_side == Side.BUY else "sell",
        "tick_direction": 0,
    }


def user_trade(
    engine: Engine, fill: Fill, account: str, trade_id: str, timestamp_ms: int
) -> dict[str, Any]:
    maker = fill.maker_account == account
    side = -fill.taker_side if maker else fill.taker_side
    shaped = trade(engine, fill, trade_id, timestamp_ms)
    shaped["direction"] = "buy" if side == Side.BUY else "sell"
    shaped["order_id"] = str(fill.maker_order_id if maker else fill.taker_order_id)
    shaped["liquidity"] = "M" if maker else "T"
    shaped["fee"] = number(minor_to_quote(fill.maker_fee if maker else fill.taker_fee))
    shaped["fee_currency"] = "USDC"
    return shaped


@dataclasses.dataclass(frozen=True, slots=True)
class OrderFacts:
    """What an order was created with: kept for orders that may leave the book."""

    order_id: int
    account: str
    instrument: str
    side: int
    price_ticks: int
    size_lots: int
    client_order_id: str

    @classmethod
    def of(cls, order: Order) -> OrderFacts:
        return cls(
            order.order_id,
            order.account,
            order.instrument,
            order.side,
            order.price,
            order.size,
            order.client_order_id,
        )


def order(
    engine: Engine, facts: OrderFacts, remaining_lots: int, state: str, timestamp_ms: int
) -> dict[str, Any]:
    instrument = (
        engine.instruments.get(facts.instrument) or engine.expired_instruments[facts.instrument]
    )
    return {
        "order_id": str(facts.order_id),
        "instrument_name": facts.instrument,
        "direction": "buy" if facts.side == Side.BUY else "sell",
        "price": price(instrument, facts.price_ticks),
        "amount": amount(instrument, facts.size_lots),
        "filled_amount": amount(instrument, facts.size_lots - remaining_lots),
        "order_state": state,
        "order_type": "limit",
        "time_in_force": "good_til_cancelled",
        "label": facts.client_order_id,
        "last_update_timestamp": timestamp_ms,
    }


def portfolio(engine: Engine, account: str, currency: str) -> dict[str, Any] | None:
    """The account's sub-ledger of underlying ``currency`` (None if it has none)."""
    ledger = engine.get_ledger(account, currency)
    if ledger is None:
        return None
    equity = ledger.cash + ledger.value
    return {
        "currency": currency,
        "balance": number(minor_to_quote(ledger.cash)),
        "equity": number(minor_to_quote(equity)),
        "initial_margin": number(minor_to_quote(ledger.initial)),
        "maintenance_margin": number(minor_to_quote(ledger.maintenance)),
        "available_funds": number(minor_to_quote(equity - ledger.initial - ledger.reserve)),
    }
