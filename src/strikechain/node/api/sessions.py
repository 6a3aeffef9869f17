"""WebSocket sessions: who a connection is (``public/auth`` binds it to a key), what it has
subscribed to, what it is still to be sent, and what happens when it goes.

:class:`Hub` holds every open :class:`Session` and is a sink of the node's runtime, after the
API's :class:`~strikechain.node.api.history.TradeHistory`: after each block it builds each
subscribed channel's data once, from the engine and what the history recorded of the block
(``last_block``), in the methods' shapes (:mod:`.shapes`: a notification carries what the
corresponding method would answer), and queues the encoded notification on every subscriber.
Sinks run in the event loop right after a block is applied and logged, so between two blocks the
engine is the state the last notifications described: a book snapshot sent on subscribing and
the changes sent after later blocks fit together.

Sending. A message goes to the socket at once while the socket takes writes (its transport is
below its high-water mark); otherwise it waits in the session's queue, in order, until the
socket drains (:meth:`Session.drain`). Bounds: that queue holds ``send_queue_max`` messages
(replies and notifications); the one that would overflow it closes the connection with code
1008 (policy violation), counted in ``strikechain_ws_slow_consumers``: a consumer that does not
keep up is dropped, never buffered without bound. Sessions, subscriptions per session and
channels per request are bounded too (:class:`~strikechain.node.api.limits.ApiLimits`).

Cancel on disconnect (``private/enable_cancel_on_disconnect``, scope ``connection``): when the
session closes, for whatever reason, a ``CancelAll`` for its account is submitted. If the node
refuses it (a full inbox, a halted node) the refusal is logged and counted: the orders stay.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, Final

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge

from strikechain.engine.engine import Engine
from strikechain.engine.events import Event, Fill
from strikechain.engine.instruments import Instrument
from strikechain.engine.invariant import invariant
from strikechain.engine.txs import CancelAll, Side
from strikechain.node.api import events as engine_events
from strikechain.node.api import shapes, venue
from strikechain.node.api.channels import Channel, ChannelKind, parse_channel
from strikechain.node.api.errors import TOO_MANY_REQUESTS, ApiError, invalid_params
from strikechain.node.api.history import BlockChanges, TradeHistory
from strikechain.node.api.limits import ApiLimits
from strikechain.node.api.private import account_summary
from strikechain.node.keys import KeyRecord
from strikechain.node.server import DirectWebSocket
from strikechain.node.service import Node, NodeHalted
from strikechain.runtime.errors import RuntimeRejection
from strikechain.runtime.runtime import Committed

log = logging.getLogger("strikechain.node.api")
POLICY_VIOLATION: Final = 1008
ENCODER: Final = msgspec.json.Encoder(decimal_format="number")
SubscriptionKey = tuple[str, str]
"""(channel name, account): the account is empty for public channels."""


class ApiMetrics:
    """The API's counters, in the node's registry (one API per node)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "strikechain_api_requests", "API requests.", ["transport"], registry=registry
        )
        self.errors = Counter(
            "strikechain_api_errors", "API error replies, by code.", ["code"], registry=registry
        )
        self.rate_limited = Counter(
            "strikechain_api_rate_limited", "Requests refused by a rate limit.", registry=registry
        )
        self.sessions = Gauge(
            "strikechain_ws_sessions", "Open WebSocket sessions.", registry=registry
        )
        self.slow_consumers = Counter(
            "strikechain_ws_slow_consumers",
            "WebSocket sessions closed because their send queue overflowed.",
            registry=registry,
        )
        self.cancel_on_disconnect = Counter(
            "strikechain_ws_cancel_on_disconnect",
            "CancelAll submitted for sessions closed with cancel-on-disconnect, by outcome.",
            ["outcome"],
            registry=registry,
        )
        # The per-request children, bound once (a labels() lookup costs more than the count).
        self.http_requests = self.requests.labels("http")
        self.websocket_requests = self.requests.labels("websocket")


class Session:
    """One WebSocket connection's state and its way out (``socket``; see the module docstring
    for when a message waits in the session's bounded queue)."""

    def __init__(
        self, session_id: int, client: str, limits: ApiLimits, socket: DirectWebSocket
    ) -> None:
        self.id = session_id
        self.client = client
        self.socket = socket
        self.key: KeyRecord | None = None
        self.subscriptions: dict[str, Channel] = {}
        self.cancel_on_disconnect = False
        self.overflowed = False
        self._queue_max = limits.send_queue_max
        self._queue: deque[bytes] = deque()

    @property
    def account(self) -> str:
        return "" if self.key is None else self.key.account

    def push(self, message: bytes, *, now: bool = False) -> bool:
        """Send ``message`` (an encoded JSON text) or queue it; False, and the connection
        closed with 1008, if the queue is full. ``now``: not gathered with the loop's other
        writes (see :meth:`DirectWebSocket.send_texts`)."""
        return self.push_all((message,), now=now)

    def push_all(self, messages: Sequence[bytes], *, now: bool = False) -> bool:
        """:meth:`push` each of ``messages``, in order: with one write while the socket
        takes them (a system call per message was the largest cost of an answer)."""
        if self.overflowed:
            return False
        queue = self._queue
        if not queue and self.socket.can_write():
            self.socket.send_texts(messages, now=now)
            return True
        for message in messages:
            if len(queue) >= self._queue_max:
                self.overflowed = True
                queue.clear()
                self.socket.close(POLICY_VIOLATION)
                return False
            queue.append(message)
        return True

    def drain(self) -> None:
        """Send what waits while the socket takes it (the socket drained)."""
        queue, socket = self._queue, self.socket
        while queue and not self.overflowed and socket.can_write():
            socket.send_texts((queue.popleft(),))

    def __len__(self) -> int:
        return len(self._queue)


class Hub:
    """Every open session, their subscriptions, and the notifications after each block."""

    def __init__(
        self, node: Node, history: TradeHistory, limits: ApiLimits, metrics: ApiMetrics
    ) -> None:
        self.node = node
        self.history = history
        """Runs before the hub after each block: its ``last_block`` is the block's changes."""
        self.limits = limits
        self.metrics = metrics
        self.sessions: dict[int, Session] = {}
        self._ids = itertools.count(1)
        self._subscribers: dict[SubscriptionKey, dict[int, Session]] = {}
        self._channels: dict[SubscriptionKey, Channel] = {}
        self._books: dict[str, tuple[dict[int, int], dict[int, int], int]] = {}
        """instrument -> (bids, asks, change id) as last published, while a book is watched."""
        self._book_watchers: dict[str, int] = {}
        self._last: dict[SubscriptionKey, bytes] = {}
        """Ticker and depth channels: the data last published (without its time)."""
        self.cancel_tasks: set[asyncio.Future[Any]] = set()
        self.venue = venue.attach(node)
        """The ``venue.*`` channels' data (a runtime sink before the hub)."""
        self.events = engine_events.attach(node)
        """The engine channels' data (``user.events.raw``, ``events.*``; a sink before the hub)."""

    # -- sessions -----------------------------------------------------------------------------

    def open(self, socket: DirectWebSocket) -> Session:
        if len(self.sessions) >= self.limits.sessions_max:
            raise ApiError(TOO_MANY_REQUESTS, "too_many_requests", {"reason": "too many sessions"})
        session = Session(next(self._ids), socket.client_host, self.limits, socket)
        self.sessions[session.id] = session
        self.metrics.sessions.set(len(self.sessions))
        return session

    def close(self, session: Session) -> None:
        """Forget ``session``; cancel its account's orders if it asked for that."""
        if self.sessions.pop(session.id, None) is None:
            return
        self.metrics.sessions.set(len(self.sessions))
        for name in list(session.subscriptions):
            self._remove(session, name)
        if session.overflowed:
            self.metrics.slow_consumers.inc()
        if session.cancel_on_disconnect and session.key is not None:
            self._cancel_all(session.key.account)

    def _cancel_all(self, account: str) -> None:
        try:
            future = self.node.submit_nowait(CancelAll(account=account))
        except (RuntimeRejection, NodeHalted) as error:
            self.metrics.cancel_on_disconnect.labels("refused").inc()
            log.warning(
                "cancel on disconnect refused", extra={"account": account, "error": str(error)}
            )
            return
        self.metrics.cancel_on_disconnect.labels("submitted").inc()
        self.cancel_tasks.add(future)
        future.add_done_callback(self._cancel_done)

    def _cancel_done(self, future: asyncio.Future[Any]) -> None:
        self.cancel_tasks.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.warning("cancel on disconnect failed", extra={"error": repr(future.exception())})

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, session: Session, names: list[str], *, private: bool) -> list[str]:
        """Subscribe ``session`` to ``names``; the names subscribed. Their first data (a book
        snapshot, a ticker, a portfolio) is queued on the session after the caller's reply:
        call :meth:`send_snapshots` once the reply is queued."""
        limits = self.limits
        if len(names) > limits.channels_per_request_max:
            raise invalid_params("channels", f"at most {limits.channels_per_request_max} channels")
        engine = self.node.engine
        parsed = [parse_channel(name, engine.instruments, limits) for name in names]
        for channel in parsed:
            if channel.private and not private:
                raise invalid_params("channels", f"{channel.name}: use private/subscribe")
        new = {
            channel.name: channel for channel in parsed if channel.name not in session.subscriptions
        }
        if len(session.subscriptions) + len(new) > limits.subscriptions_per_session_max:
            raise invalid_params(
                "channels", f"at most {limits.subscriptions_per_session_max} subscriptions"
            )
        for channel in new.values():
            self._add(session, channel)
        return [channel.name for channel in parsed]

    def unsubscribe(self, session: Session, names: list[str]) -> list[str]:
        """Unsubscribe ``session`` from ``names``; the channels it remains subscribed to."""
        if len(names) > self.limits.channels_per_request_max:
            raise invalid_params(
                "channels", f"at most {self.limits.channels_per_request_max} channels"
            )
        for name in names:
            if name in session.subscriptions:
                self._remove(session, name)
        return list(session.subscriptions)

    def send_snapshots(self, session: Session, names: list[str]) -> None:
        """Queue the current data of ``names`` (Deribit sends a book snapshot first)."""
        engine = self.node.engine
        for name in names:
            channel = session.subscriptions.get(name)
            if channel is None:
                continue
            data = self._snapshot(engine, channel, session.account)
            if data is not None and not session.push(_notification(name, data)):
                return

    def _add(self, session: Session, channel: Channel) -> None:
        key = (channel.name, session.account if channel.private else "")
        subscribers = self._subscribers.setdefault(key, {})
        if not subscribers:
            self._channels[key] = channel
            self._watch(channel, +1)
            self.events.watch(key, channel)
        subscribers[session.id] = session
        session.subscriptions[channel.name] = channel

    def _remove(self, session: Session, name: str) -> None:
        channel = session.subscriptions.pop(name)
        key = (name, session.account if channel.private else "")
        subscribers = self._subscribers[key]
        del subscribers[session.id]
        if not subscribers:
            del self._subscribers[key]
            del self._channels[key]
            self._last.pop(key, None)
            self._watch(channel, -1)
            self.events.unwatch(key)

    def _watch(self, channel: Channel, step: int) -> None:
        if channel.kind not in (ChannelKind.BOOK, ChannelKind.BOOK_DEPTH):
            return
        count = self._book_watchers.get(channel.instrument, 0) + step
        if count:
            self._book_watchers[channel.instrument] = count
            if channel.instrument not in self._books:
                self._books[channel.instrument] = self._book_state(channel.instrument)
        else:
            del self._book_watchers[channel.instrument]
            del self._books[channel.instrument]

    def _book_state(self, instrument: str) -> tuple[dict[int, int], dict[int, int], int]:
        engine = self.node.engine
        bids, asks = _levels(engine, instrument, self.limits.book_levels_max)
        return dict(bids), dict(asks), engine.height

    def _snapshot(self, engine: Engine, channel: Channel, account: str) -> Any | None:
        kind = channel.kind
        if kind == ChannelKind.BOOK:
            instrument = engine.instruments.get(channel.instrument)
            if instrument is None:
                return None
            bids, asks, change_id = self._books[channel.instrument]
            return {
                "type": "snapshot",
                "timestamp": shapes.ms(engine.timestamp_ns),
                "instrument_name": channel.instrument,
                "change_id": change_id,
                "bids": _entries(instrument, "new", bids.items()),
                "asks": _entries(instrument, "new", asks.items()),
            }
        if kind == ChannelKind.BOOK_DEPTH:
            return self._depth(engine, channel)
        if kind == ChannelKind.TICKER:
            return self._ticker(engine, channel)
        if kind == ChannelKind.USER_PORTFOLIO:
            return _portfolio(engine, account, channel.currency)
        if kind == ChannelKind.VENUE:
            return self.venue.snapshot(channel.topic, channel.currency)
        return None

    def _depth(self, engine: Engine, channel: Channel) -> dict[str, Any] | None:
        instrument = engine.instruments.get(channel.instrument)
        if instrument is None:
            return None
        bids, asks = _levels(engine, channel.instrument, channel.depth)
        return {
            "timestamp": shapes.ms(engine.timestamp_ns),
            "instrument_name": channel.instrument,
            "change_id": self._books[channel.instrument][2],
            "bids": [_level(instrument, p, s) for p, s in bids],
            "asks": [_level(instrument, p, s) for p, s in asks],
        }

    def _ticker(self, engine: Engine, channel: Channel) -> dict[str, Any] | None:
        """``public/ticker``'s result (None once the instrument is no longer listed)."""
        instrument = engine.instruments.get(channel.instrument)
        if instrument is None:
            return None
        return shapes.ticker_shape(engine, instrument, self.history)

    # -- the runtime's sink -------------------------------------------------------------------

    def on_block(self, committed: Committed) -> None:
        """Publish what the block changed on every subscribed channel."""
        if not self._subscribers:
            return
        engine = self.node.engine
        changes = self.history.last_block
        invariant(changes.height == committed.result.height, "the history is a sink before the hub")
        block = _BlockView(engine, changes, committed.result.events)
        books = {name: self._book_change(engine, name, changes.height) for name in self._books}
        for key, subscribers in list(self._subscribers.items()):
            channel = self._channels[key]
            for data in self._publish(engine, key, channel, block, books):
                message = _notification(channel.name, data)
                for session in list(subscribers.values()):
                    session.push(message)

    def _publish(
        self,
        engine: Engine,
        key: SubscriptionKey,
        channel: Channel,
        block: _BlockView,
        books: dict[str, dict[str, Any] | None],
    ) -> Iterator[Any]:
        kind, account = channel.kind, key[1]
        if kind == ChannelKind.BOOK:
            change = books[channel.instrument]
            if change is not None:
                yield change
        elif kind in (ChannelKind.BOOK_DEPTH, ChannelKind.TICKER):
            data = (
                self._depth(engine, channel)
                if kind == ChannelKind.BOOK_DEPTH
                else self._ticker(engine, channel)
            )
            if data is None:
                return
            seen = ENCODER.encode({k: v for k, v in data.items() if k != "timestamp"})
            if self._last.get(key) != seen:
                self._last[key] = seen
                yield data
        elif kind == ChannelKind.TRADES:
            trades = block.trades(channel)
            if trades:
                yield trades
        elif kind == ChannelKind.USER_TRADES:
            trades = block.user_trades(channel, account)
            if trades:
                yield trades
        elif kind == ChannelKind.USER_ORDERS:
            orders = block.user_orders(channel, account)
            if channel.interval == "raw":
                yield from orders
            elif orders:
                yield orders
        elif kind == ChannelKind.USER_PORTFOLIO and account in block.touched_accounts():
            summary = _portfolio(engine, account, channel.currency)
            if summary is not None:
                yield summary
        elif kind == ChannelKind.VENUE:
            data = self.venue.publication(channel.name, channel.topic, channel.currency)
            if data is not None:
                yield data
        elif kind in engine_events.KINDS:
            data = self.events.publication(key)
            if data is not None:
                yield data

    def _book_change(self, engine: Engine, instrument: str, height: int) -> dict[str, Any] | None:
        old_bids, old_asks, previous = self._books[instrument]
        if instrument not in engine.instruments:
            return None
        bids, asks = _levels(engine, instrument, self.limits.book_levels_max)
        listed = engine.instruments[instrument]
        bid_changes = _diff(listed, old_bids, bids)
        ask_changes = _diff(listed, old_asks, asks)
        if not bid_changes and not ask_changes:
            return None
        self._books[instrument] = (dict(bids), dict(asks), height)
        return {
            "type": "change",
            "timestamp": shapes.ms(engine.timestamp_ns),
            "instrument_name": instrument,
            "change_id": height,
            "prev_change_id": previous,
            "bids": bid_changes,
            "asks": ask_changes,
        }


class _BlockView:
    """One block's changes (:class:`~strikechain.node.api.history.BlockChanges`), in the
    methods' shapes, for the channels that read them."""

    def __init__(self, engine: Engine, changes: BlockChanges, events: list[Event]) -> None:
        self.engine = engine
        self.changes = changes
        self.events = events
        self._touched: set[str] | None = None

    def trades(self, channel: Channel) -> list[dict[str, Any]]:
        return [
            shapes.public_trade_shape(trade, instrument)
            for trade in self.changes.public_trades
            if (instrument := self._instrument(trade.instrument, channel)) is not None
        ]

    def user_trades(self, channel: Channel, account: str) -> list[dict[str, Any]]:
        return [
            shapes.trade_shape(trade, instrument)
            for trade in self.changes.trades
            if trade.account == account
            and (instrument := self._instrument(trade.instrument, channel)) is not None
        ]

    def user_orders(self, channel: Channel, account: str) -> list[dict[str, Any]]:
        return [
            shapes.order_shape(record, instrument)
            for record in self.changes.orders
            if record.account == account
            and (instrument := self._instrument(record.instrument, channel)) is not None
        ]

    def touched_accounts(self) -> set[str]:
        if self._touched is None:
            touched: set[str] = set()
            for event in self.events:
                if isinstance(event, Fill):
                    touched.update((event.maker_account, event.taker_account))
                else:
                    account = getattr(event, "account", None)
                    if isinstance(account, str):
                        touched.add(account)
            self._touched = touched
        return self._touched

    def _instrument(self, name: str, channel: Channel) -> Instrument | None:
        """The instrument ``name`` (listed or expired) if its data belongs on ``channel``."""
        engine = self.engine
        instrument: Instrument | None = engine.instruments.get(name)
        if instrument is None:
            instrument = engine.expired_instruments.get(name)
        return instrument if instrument is not None and channel.matches(instrument) else None


def _levels(engine: Engine, instrument: str, depth: int) -> tuple[list[tuple[int, int]], ...]:
    """The best ``depth`` (price ticks, lots) of each side: ``(bids, asks)``."""
    book = engine.books.get(instrument)
    if book is None:
        return [], []
    return book.depth(int(Side.BUY), depth), book.depth(int(Side.SELL), depth)


def _level(instrument: Instrument, price_ticks: int, lots: int) -> list[Any]:
    return [shapes.price_of(price_ticks, instrument), shapes.amount_of(lots, instrument)]


def _portfolio(engine: Engine, account: str, currency: str) -> dict[str, Any] | None:
    """``private/get_account_summary`` of ``currency`` (None: not one the venue has)."""
    if currency != shapes.QUOTE and currency not in engine.underlyings:
        return None
    return account_summary(engine, account, currency, extended=False)


def _diff(
    instrument: Instrument, old: dict[int, int], new: list[tuple[int, int]]
) -> list[list[Any]]:
    """Deribit's book changes from ``old`` to ``new`` levels: deletions, then new and changed."""
    current = dict(new)
    changes: list[list[Any]] = [
        ["delete", shapes.price_of(p, instrument), 0] for p in old if p not in current
    ]
    for price_ticks, lots in new:
        before = old.get(price_ticks)
        if before != lots:
            changes.append(
                ["new" if before is None else "change", *_level(instrument, price_ticks, lots)]
            )
    return changes


def _entries(instrument: Instrument, action: str, levels: Any) -> list[list[Any]]:
    return [[action, *_level(instrument, p, s)] for p, s in levels]


def _notification(channel: str, data: Any) -> bytes:
    return ENCODER.encode(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}
    )
