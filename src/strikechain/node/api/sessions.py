"""WebSocket sessions: who a connection is (``public/auth`` binds it to a key), what it has
subscribed to, what it is still to be sent, and what happens when it goes.

:class:`Hub` holds every open :class:`Session` and is a sink of the node's runtime: after each
block it builds each subscribed channel's data once (:mod:`.channels`) and queues the encoded
notification on every subscriber. Sinks run in the event loop right after a block is applied
and logged, so between two blocks the engine is the state the last notifications described: a
book snapshot sent on subscribing and the changes sent after later blocks fit together.

Bounds. A session's send queue holds ``send_queue_max`` messages (replies and notifications);
the one that would overflow it closes the connection with code 1008 (policy violation), counted
in ``strikechain_ws_slow_consumers``: a consumer that does not keep up is dropped, never buffered
without bound. Sessions, subscriptions per session and channels per request are bounded too
(:class:`~strikechain.node.api.limits.ApiLimits`).

Cancel on disconnect (``private/enable_cancel_on_disconnect``, scope ``connection``): when the
session closes, for whatever reason, a ``CancelAll`` for its account is submitted. If the node
refuses it (a full inbox, a halted node) the refusal is logged and counted: the orders stay.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Iterator
from typing import Any, Final

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge

from strikechain.engine.engine import Engine
from strikechain.engine.events import (
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRepriced,
)
from strikechain.engine.txs import CancelAll
from strikechain.node.api import channels as shapes
from strikechain.node.api.channels import Channel, ChannelKind, OrderFacts, parse_channel
from strikechain.node.api.errors import TOO_MANY_REQUESTS, ApiError, invalid_params
from strikechain.node.api.limits import ApiLimits
from strikechain.node.keys import KeyRecord
from strikechain.node.service import Node, NodeHalted
from strikechain.runtime.errors import RuntimeRejection
from strikechain.runtime.runtime import Committed

log = logging.getLogger("strikechain.node.api")
NANOS_PER_MILLISECOND: Final = 1_000_000
POLICY_VIOLATION: Final = 1008
ENCODER: Final = msgspec.json.Encoder(decimal_format="number")

OrderEvent = OrderAccepted | Fill | OrderCancelled | OrderExpired | OrderAmended | OrderRepriced
_ORDER_EVENTS: Final = (OrderAccepted, OrderCancelled, OrderExpired, OrderAmended, OrderRepriced)
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


class Session:
    """One WebSocket connection's state; its messages wait in a bounded queue for its writer."""

    def __init__(self, session_id: int, client: str, limits: ApiLimits) -> None:
        self.id = session_id
        self.client = client
        self.key: KeyRecord | None = None
        self.subscriptions: dict[str, Channel] = {}
        self.cancel_on_disconnect = False
        self.overflowed = False
        self._queue_max = limits.send_queue_max
        self._queue: deque[str] = deque()
        self._wake = asyncio.Event()
        self.closed = asyncio.Event()
        """Set when the session must end: its queue overflowed."""

    @property
    def account(self) -> str:
        return "" if self.key is None else self.key.account

    def push(self, message: str) -> bool:
        """Queue ``message``; False (and the session marked to close) if the queue is full."""
        if self.overflowed:
            return False
        if len(self._queue) >= self._queue_max:
            self.overflowed = True
            self._queue.clear()
            self.closed.set()
            self._wake.set()
            return False
        self._queue.append(message)
        self._wake.set()
        return True

    async def next_message(self) -> str | None:
        """The next message to send, or None once the session overflowed."""
        while not self._queue:
            if self.overflowed:
                return None
            self._wake.clear()
            await self._wake.wait()
        return None if self.overflowed else self._queue.popleft()

    def __len__(self) -> int:
        return len(self._queue)


class Hub:
    """Every open session, their subscriptions, and the notifications after each block."""

    def __init__(self, node: Node, limits: ApiLimits, metrics: ApiMetrics) -> None:
        self.node = node
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
        self._orders: dict[int, OrderFacts] = {}
        """Orders of accounts with a user.orders subscription, from their acceptance on."""
        self._order_watchers: dict[str, int] = {}
        self.cancel_tasks: set[asyncio.Future[Any]] = set()

    # -- sessions -----------------------------------------------------------------------------

    def open(self, client: str) -> Session:
        if len(self.sessions) >= self.limits.sessions_max:
            raise ApiError(TOO_MANY_REQUESTS, "too_many_requests", {"reason": "too many sessions"})
        session = Session(next(self._ids), client, self.limits)
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
        now_ms = engine.timestamp_ns // NANOS_PER_MILLISECOND
        for name in names:
            channel = session.subscriptions.get(name)
            if channel is None:
                continue
            data = self._snapshot(engine, channel, session.account, now_ms)
            if data is not None and not session.push(_notification(name, data)):
                return

    def _add(self, session: Session, channel: Channel) -> None:
        key = (channel.name, session.account if channel.private else "")
        subscribers = self._subscribers.setdefault(key, {})
        if not subscribers:
            self._channels[key] = channel
            self._watch(channel, session.account, +1)
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
            self._watch(channel, session.account, -1)

    def _watch(self, channel: Channel, account: str, step: int) -> None:
        if channel.kind in (ChannelKind.BOOK, ChannelKind.BOOK_DEPTH):
            count = self._book_watchers.get(channel.instrument, 0) + step
            if count:
                self._book_watchers[channel.instrument] = count
                if channel.instrument not in self._books:
                    self._books[channel.instrument] = self._book_state(channel.instrument)
            else:
                del self._book_watchers[channel.instrument]
                del self._books[channel.instrument]
        elif channel.kind == ChannelKind.USER_ORDERS:
            count = self._order_watchers.get(account, 0) + step
            if count:
                self._order_watchers[account] = count
                for order in self.node.engine.open_orders(account):
                    self._orders.setdefault(order.order_id, OrderFacts.of(order))
            else:
                del self._order_watchers[account]
                for order_id in [i for i, f in self._orders.items() if f.account == account]:
                    del self._orders[order_id]

    def _book_state(self, instrument: str) -> tuple[dict[int, int], dict[int, int], int]:
        engine = self.node.engine
        bids, asks = shapes.levels(engine, instrument, self.limits.book_levels_max)
        return dict(bids), dict(asks), engine.height

    def _snapshot(self, engine: Engine, channel: Channel, account: str, now_ms: int) -> Any | None:
        kind = channel.kind
        if kind == ChannelKind.BOOK:
            bids, asks, change_id = self._books[channel.instrument]
            instrument = engine.instruments[channel.instrument]
            return {
                "type": "snapshot",
                "timestamp": now_ms,
                "instrument_name": channel.instrument,
                "change_id": change_id,
                "bids": _entries(instrument, "new", bids.items()),
                "asks": _entries(instrument, "new", asks.items()),
            }
        if kind == ChannelKind.BOOK_DEPTH:
            return self._depth(engine, channel, now_ms)
        if kind == ChannelKind.TICKER:
            return shapes.ticker(engine, channel.instrument, now_ms)
        if kind == ChannelKind.USER_PORTFOLIO:
            return shapes.portfolio(engine, account, channel.currency)
        return None

    def _depth(self, engine: Engine, channel: Channel, now_ms: int) -> dict[str, Any]:
        instrument = engine.instruments[channel.instrument]
        bids, asks = shapes.levels(engine, channel.instrument, channel.depth)
        return {
            "timestamp": now_ms,
            "instrument_name": channel.instrument,
            "change_id": self._books[channel.instrument][2],
            "bids": [[shapes.price(instrument, p), shapes.amount(instrument, s)] for p, s in bids],
            "asks": [[shapes.price(instrument, p), shapes.amount(instrument, s)] for p, s in asks],
        }

    # -- the runtime's sink -------------------------------------------------------------------

    def on_block(self, committed: Committed) -> None:
        """Publish what the block changed on every subscribed channel."""
        if not self._subscribers:
            return
        engine = self.node.engine
        result = committed.result
        events: list[Event] = [] if result.rejected else list(result.events)
        now_ms = result.timestamp_ns // NANOS_PER_MILLISECOND
        block = _BlockView(
            engine, result.height, now_ms, events, self._orders, self._order_watchers
        )
        changes = {name: self._book_change(engine, name, result.height) for name in self._books}
        for key, subscribers in list(self._subscribers.items()):
            channel = self._channels[key]
            for data in self._publish(engine, key, channel, block, changes):
                message = _notification(channel.name, data)
                for session in list(subscribers.values()):
                    session.push(message)
        block.forget_closed(self._orders)

    def _publish(
        self,
        engine: Engine,
        key: SubscriptionKey,
        channel: Channel,
        block: _BlockView,
        changes: dict[str, dict[str, Any] | None],
    ) -> Iterator[Any]:
        kind, account = channel.kind, key[1]
        if kind == ChannelKind.BOOK:
            change = changes[channel.instrument]
            if change is not None:
                yield change
        elif kind in (ChannelKind.BOOK_DEPTH, ChannelKind.TICKER):
            data = (
                self._depth(engine, channel, block.now_ms)
                if kind == ChannelKind.BOOK_DEPTH
                else shapes.ticker(engine, channel.instrument, block.now_ms)
            )
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
            summary = shapes.portfolio(engine, account, channel.currency)
            if summary is not None:
                yield summary

    def _book_change(self, engine: Engine, instrument: str, height: int) -> dict[str, Any] | None:
        old_bids, old_asks, previous = self._books[instrument]
        if instrument not in engine.instruments:
            return None
        bids, asks = shapes.levels(engine, instrument, self.limits.book_levels_max)
        listed = engine.instruments[instrument]
        bid_changes = _diff(listed, old_bids, bids)
        ask_changes = _diff(listed, old_asks, asks)
        if not bid_changes and not ask_changes:
            return None
        self._books[instrument] = (dict(bids), dict(asks), height)
        return {
            "type": "change",
            "timestamp": engine.timestamp_ns // NANOS_PER_MILLISECOND,
            "instrument_name": instrument,
            "change_id": height,
            "prev_change_id": previous,
            "bids": bid_changes,
            "asks": ask_changes,
        }


class _BlockView:
    """One block's events, sorted once for the channels that read them."""

    def __init__(
        self,
        engine: Engine,
        height: int,
        now_ms: int,
        events: list[Event],
        orders: dict[int, OrderFacts],
        watched: dict[str, int],
    ) -> None:
        self.engine = engine
        self.height = height
        self.now_ms = now_ms
        self.events = events
        self._fills = [(i, e) for i, e in enumerate(events) if isinstance(e, Fill)]
        self._touched: set[str] | None = None
        self._order_events: dict[int, OrderEvent] = {}
        """Order id -> its last event in the block (orders of watched accounts)."""
        for event in events:
            if isinstance(event, OrderAccepted) and event.account in watched:
                orders[event.order_id] = OrderFacts(
                    event.order_id,
                    event.account,
                    event.instrument,
                    event.side,
                    event.price_ticks,
                    event.size_lots,
                    event.client_order_id,
                )
            if isinstance(event, Fill):
                ids: tuple[int, ...] = (event.maker_order_id, event.taker_order_id)
            elif isinstance(event, _ORDER_EVENTS):
                ids = (event.order_id,)
            else:
                continue
            for order_id in ids:
                if order_id in orders:
                    self._order_events[order_id] = event
        self._facts = orders

    def trades(self, channel: Channel) -> list[dict[str, Any]]:
        return [
            shapes.trade(self.engine, fill, f"{self.height}.{i}", self.now_ms)
            for i, fill in self._fills
            if channel.matches(self._instrument(fill.instrument))
        ]

    def user_trades(self, channel: Channel, account: str) -> list[dict[str, Any]]:
        return [
            shapes.user_trade(self.engine, fill, account, f"{self.height}.{i}", self.now_ms)
            for i, fill in self._fills
            if account in (fill.maker_account, fill.taker_account)
            and channel.matches(self._instrument(fill.instrument))
        ]

    def user_orders(self, channel: Channel, account: str) -> list[dict[str, Any]]:
        out = []
        for order_id, event in self._order_events.items():
            facts = self._facts[order_id]
            if facts.account != account or not channel.matches(self._instrument(facts.instrument)):
                continue
            remaining, state = self._state(order_id, facts, event)
            out.append(shapes.order(self.engine, facts, remaining, state, self.now_ms))
        return out

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

    def forget_closed(self, orders: dict[int, OrderFacts]) -> None:
        for order_id in self._order_events:
            if order_id not in self.engine.orders:
                orders.pop(order_id, None)

    def _state(self, order_id: int, facts: OrderFacts, event: OrderEvent) -> tuple[int, str]:
        resting = self.engine.orders.get(order_id)
        if resting is not None:
            return resting.remaining, "open"
        if isinstance(event, OrderCancelled | OrderExpired):
            return event.remaining_lots, "cancelled"
        if isinstance(event, Fill):
            maker = event.maker_order_id == order_id
            remaining = event.maker_remaining_lots if maker else event.taker_remaining_lots
            return remaining, "filled" if remaining == 0 else "cancelled"
        return 0, "filled"

    def _instrument(self, name: str) -> Any:
        engine = self.engine
        return engine.instruments.get(name) or engine.expired_instruments[name]


def _diff(instrument: Any, old: dict[int, int], new: list[tuple[int, int]]) -> list[list[Any]]:
    """Deribit's book changes from ``old`` to ``new`` levels: deletions, then new and changed."""
    current = dict(new)
    changes: list[list[Any]] = [
        ["delete", shapes.price(instrument, p), 0] for p in old if p not in current
    ]
    for price_ticks, lots in new:
        before = old.get(price_ticks)
        if before != lots:
            action = "new" if before is None else "change"
            changes.append(
                [action, shapes.price(instrument, price_ticks), shapes.amount(instrument, lots)]
            )
    return changes


def _entries(instrument: Any, action: str, levels: Any) -> list[list[Any]]:
    return [[action, shapes.price(instrument, p), shapes.amount(instrument, s)] for p, s in levels]


def _notification(channel: str, data: Any) -> str:
    return ENCODER.encode(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}
    ).decode()
