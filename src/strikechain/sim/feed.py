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


class MarketDataFeed:
    """Delivers each committed block's events to subscribed agents over the network model."""

    def __init__(self, kernel: Kernel, network: Network, runtime: Runtime) -> None:
        self.kernel = kernel
        self.network = network
        self.runtime = runtime
        self.dispatcher = Dispatcher()
        self._streams: dict[str, MarketDataStream] = {}
        self.messages = 0
        """Deliveries scheduled: one per agent and block with something for it."""
        self.notices = 0
        runtime.add_sink(self)

    def subscribe(self, agent: str, topic: Topic, callback: Callback) -> Registration:
        return self.dispatcher.add(agent, topic, callback)

    def on_block(self, committed: Committed) -> None:
        by_agent: dict[str, list[tuple[Registration, Notice]]] = {}
        notices = self.dispatcher.notices(committed, self._ticker)
        for item in notices:
            owner = item[0].owner
            items = by_agent.get(owner)
            if items is None:
                by_agent[owner] = [item]
            else:
                items.append(item)
        schedule, streams = self.kernel.schedule, self._streams
        for agent, items in by_agent.items():
            stream = streams.get(agent)
            if stream is None:
                stream = streams[agent] = self._stream(agent)
            schedule(stream.next_ns(), _deliver, items)
        self.messages += len(by_agent)
        self.notices += len(notices)

    def _stream(self, agent: str) -> MarketDataStream:
        network = self.network
        return network.market_data_stream(network.entry_validator(agent), agent)

    def _ticker(self, instrument: str) -> Ticker | None:
        engine = self.runtime.engine
        return engine_ticker(engine, instrument) if isinstance(engine, Engine) else None


def _deliver(items: list[tuple[Registration, Notice]]) -> None:
    for registration, notice in items:
        registration.callback(notice)
