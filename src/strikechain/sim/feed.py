"""The lab's market-data feed: each committed block's notices to the agents subscribed, each
agent's as one message over its stream from its entry validator (see
:mod:`strikechain.sim.gateway`). Compiled by mypyc (``make native``): it runs for every block
and every subscriber.
"""

from __future__ import annotations

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


class _Mailbox:
    """One agent's side of the feed: its stream, and its notices of the block being sent."""

    __slots__ = ("block", "items", "stream")

    def __init__(self, stream: MarketDataStream) -> None:
        self.stream = stream
        self.block = -1
        self.items: list[tuple[Registration, Notice]] = []


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
        mailboxes = self._mailboxes
        sending: list[_Mailbox] = []
        for item in notices:
            owner = item[0].owner
            mailbox = mailboxes.get(owner)
            if mailbox is None:
                mailbox = mailboxes[owner] = self._mailbox(owner)
            if mailbox.block != block:
                mailbox.block = block
                mailbox.items = [item]
                sending.append(mailbox)
            else:
                mailbox.items.append(item)
        # in the order of each agent's first notice; one batch of kernel events
        times = [mailbox.stream.next_ns() for mailbox in sending]
        self.kernel.schedule_batch(times, _deliver, [mailbox.items for mailbox in sending])
        self.messages += len(sending)
        self.notices += len(notices)

    def _mailbox(self, agent: str) -> _Mailbox:
        network = self.network
        return _Mailbox(network.market_data_stream(network.entry_validator(agent), agent))

    def _ticker(self, instrument: str) -> Ticker | None:
        engine = self.runtime.engine
        return engine_ticker(engine, instrument) if isinstance(engine, Engine) else None


def _deliver(items: list[tuple[Registration, Notice]]) -> None:
    for registration, notice in items:
        registration.callback(notice)
