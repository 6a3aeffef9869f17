"""strikechain's engine channels: what the engine made of each block, in its own encoding, for
clients that run the runtime's gateway protocol over a socket (the client's
:class:`~strikechain.client.gateway.RemoteGateway`: the lab's agents on a live node).

Channels (the names are parsed in :mod:`.channels`; the data's wire form is
:mod:`strikechain.runtime.notice_wire`):

- ``user.events.raw`` (``private/subscribe``): every event of a block that concerns the
  session's account (as owner, maker, taker, beneficiary or auction bidder), one notification
  per block that has any.
- ``events.{instrument}.raw``: every event of a block that names the instrument, one
  notification per block that has any. Public, as the block log's data is: the settlement layer
  posts every transaction for anyone to replay, and these events are what the replay yields.
- ``events.{instrument}.ticker``: the instrument's
  :class:`~strikechain.runtime.messages.Ticker` after every block (top of book in ticks and
  lots, last trade, mark and index in USDC minor units).

Who receives which event is decided by the runtime's :class:`~strikechain.runtime.dispatch.
Dispatcher`, the same that serves the in-process and the lab's gateways, so a notice received
here equals the one an agent in the node's process receives (height, block time, the causing
transaction's inbox sequence number, the event). No snapshot is sent on subscribing: the
in-process gateway sends none either.

:class:`EngineChannels` is a runtime sink before the :class:`~strikechain.node.api.sessions.Hub`
(attached once per node by :func:`attach`): after each block it dispatches the block's events to
one registration per subscribed channel (and account) and keeps each one's notification data
until the hub publishes it in the same pass. Cost per block: nothing without subscribers; else a
dispatcher lookup per event and key it concerns, one canonical encoding per notified channel.
Bounded by the block: one notification per channel per block, at most the block's events.

Method: ``public/get_engine_instruments`` (no parameters), the listed instruments as the engine
holds them (ticks, lots and expiries exact), for a client that builds the lab's agents.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from strikechain.engine.engine import Engine
from strikechain.node.api.channels import Channel, ChannelKind
from strikechain.node.api.public import NoParams
from strikechain.node.api.registry import Context, attached, method
from strikechain.runtime.dispatch import Dispatcher, Registration
from strikechain.runtime.messages import Notice, Ticker, Topic, engine_ticker
from strikechain.runtime.notice_wire import events_data, ticker_data
from strikechain.runtime.runtime import Committed

KINDS: Final = frozenset({ChannelKind.USER_EVENTS, ChannelKind.EVENTS, ChannelKind.EVENTS_TICKER})
"""The channel kinds this module serves."""
Key = tuple[str, str]
"""The hub's subscription key: (channel name, account; empty for a public channel)."""


def _ignore(notice: Notice) -> None:
    """Registrations here are read in bulk (:meth:`Dispatcher.notices`), never called."""


def topic_of(channel: Channel, account: str) -> Topic:
    """The runtime topic a channel stands for."""
    if channel.kind == ChannelKind.USER_EVENTS:
        return Topic(account=account)
    if channel.kind == ChannelKind.EVENTS:
        return Topic(instrument=channel.instrument)
    return Topic(instrument=channel.instrument, channel="ticker")


class EngineChannels:
    """The engine channels' registrations and, during a block's publication, their data."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.dispatcher = Dispatcher()
        self._registrations: dict[Key, Registration] = {}
        self._ready: dict[int, Any] = {}
        """Registration number -> its notification data for the block being published."""

    def watch(self, key: Key, channel: Channel) -> None:
        """Start dispatching to ``key`` (the hub's first subscriber of it)."""
        if channel.kind in KINDS and key not in self._registrations:
            self._registrations[key] = self.dispatcher.add(
                channel.name, topic_of(channel, key[1]), _ignore
            )

    def unwatch(self, key: Key) -> None:
        """Stop dispatching to ``key`` (its last subscriber left)."""
        registration = self._registrations.pop(key, None)
        if registration is not None:
            registration.unsubscribe()
            self._ready.pop(registration.number, None)

    def on_block(self, committed: Committed) -> None:
        """The sink: each registration's data for this block (kept for :meth:`publication`)."""
        self._ready = {}
        if not self._registrations:
            return
        engine = self.node.engine
        result = committed.result
        grouped: dict[int, list[Notice]] = {}
        for registration, notice in self.dispatcher.notices(committed, _tickers(engine)):
            grouped.setdefault(registration.number, []).append(notice)
        ready = self._ready
        for number, notices in grouped.items():
            if isinstance(notices[0].event, Ticker):
                ready[number] = ticker_data(notices[0])
            else:
                ready[number] = events_data(result.height, result.timestamp_ns, notices)

    def publication(self, key: Key) -> Any | None:
        """``key``'s notification data for the block just committed (None: nothing for it)."""
        registration = self._registrations.get(key)
        if registration is None:
            return None
        return self._ready.pop(registration.number, None)


def _tickers(engine: Engine) -> Any:
    def ticker(instrument: str) -> Ticker | None:
        return engine_ticker(engine, instrument)

    return ticker


def attach(node: Any) -> EngineChannels:
    """The node's engine channels, added as a runtime sink on first use (the hub calls this
    while it is made, so the sink runs before the hub's)."""
    return attached(node, EngineChannels, lambda: EngineChannels(node))


# --- the method ---------------------------------------------------------------------------------


@method("public/get_engine_instruments", NoParams)
async def get_engine_instruments(context: Context, params: NoParams) -> Any:
    """The listed instruments as the engine holds them (every field of
    :class:`~strikechain.engine.instruments.Instrument` by name, decimals as text, enumerations
    as their integers), in listing order: what a client needs to run the lab's agents, which
    work in ticks and lots on the engine's instruments."""
    return [
        msgspec.to_builtins(instrument) for instrument in context.node.engine.instruments.values()
    ]
