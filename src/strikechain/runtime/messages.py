"""What a venue tells its subscribers: topics, tickers, notices, and the callbacks' types.

Plain frozen Structs shared by the gateways (:mod:`strikechain.runtime.gateway`) and the
dispatcher (:mod:`strikechain.runtime.dispatch`, compiled: mypyc compiles no msgspec Struct,
so they live here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from strikechain.engine.engine import Engine
from strikechain.engine.events import Event
from strikechain.runtime.errors import RuntimeRejection
from strikechain.runtime.inbox import Receipt

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
