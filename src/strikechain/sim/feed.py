"""The lab's market-data feed: each committed block's notices to the agents subscribed, each
agent's as one message over its stream from its entry validator (see
:mod:`strikechain.sim.gateway`). Compiled by mypyc (``make native``): it runs for every block
and every subscriber.
"""

from __future__ import annotations

from typing import cast

from strikechain.engine.engine import Engine
from strikechain.runtime.gateway import (
    Callback,
    Dispatcher,
    Notice,
    Registration,
    Ticker,
    Topic,
    engine_ticker,
)
from strikechain.runtime.runtime import Committed, Runtime
from strikechain.sim.kernel import Kernel
from strikechain.sim.network import MarketDataStream, Network

_Item = tuple[Registration, Notice]


class _Mailbox:
    """One agent's side of the feed: its stream, and its notices of the block being sent.

    ``delivery`` is one ``(registration, notice)`` item (most deliveries: one ticker), or a
    list of them in dispatch order: held as ``object`` so that the dispatcher's tuples are
    passed on as they are (a typed tuple would be unboxed here and boxed again)."""

    __slots__ = ("block", "delivery", "stream")

    def __init__(self, stream: MarketDataStream) -> None:
        self.stream = stream
        self.block = -1
        self.delivery: object = None


class MarketDataFeed:
    """Delivers each committed block's events to subscribed agents over the network model."""

    def __init__(self, kernel: Kernel, network: Network, runtime: Runtime) -> None:
        self.kernel = kernel
        self.network = network
        self.runtime = runtime
        self.dispatcher = Dispatcher()
        self._mailboxes: dict[str, _Mailbox] = {}
        self._blocks = 0
        self.messages = 0
        """Deliveries scheduled: one per agent and block with something for it."""
        self.notices = 0
        runtime.add_sink(self)

    def subscribe(self, agent: str, topic: Topic, callback: Callback) -> Registration:
        return self.dispatcher.add(agent, topic, callback)

    def on_block(self, committed: Committed) -> None:
        block = self._blocks
        self._blocks = block + 1
        notices = self.dispatcher.notices(committed, self._ticker)
        sending: list[_Mailbox] = []
        for item in cast(list[object], notices):
            registration = cast(_Item, item)[0]
            mailbox = registration.sink_data
            if not isinstance(mailbox, _Mailbox):
                mailbox = self._mailbox(registration.owner)
                registration.sink_data = mailbox
            if mailbox.block != block:
                mailbox.block = block
                mailbox.delivery = item
                sending.append(mailbox)
            else:
                delivery = mailbox.delivery
                if isinstance(delivery, list):
                    delivery.append(item)
                else:
                    mailbox.delivery = [delivery, item]
        # in the order of each agent's first notice; one batch of kernel events
        times = [mailbox.stream.next_ns() for mailbox in sending]
        self.kernel.schedule_batch(times, _deliver, [mailbox.delivery for mailbox in sending])
        self.messages += len(sending)
        self.notices += len(notices)

    def _mailbox(self, agent: str) -> _Mailbox:
        """``agent``'s mailbox (one per agent, shared by its subscriptions), made when it is
        first sent something."""
        mailbox = self._mailboxes.get(agent)
        if mailbox is None:
            network = self.network
            stream = network.market_data_stream(network.entry_validator(agent), agent)
            mailbox = self._mailboxes[agent] = _Mailbox(stream)
        return mailbox

    def _ticker(self, instrument: str) -> Ticker | None:
        engine = self.runtime.engine
        return engine_ticker(engine, instrument) if isinstance(engine, Engine) else None


def _deliver(delivery: object) -> None:
    """One agent's notices of one block: one item, or a list of them (see :class:`_Mailbox`)."""
    if isinstance(delivery, list):
        for item in delivery:
            registration, notice = cast(_Item, item)
            registration.callback(notice)
        return
    registration, notice = cast(_Item, delivery)
    registration.callback(notice)
