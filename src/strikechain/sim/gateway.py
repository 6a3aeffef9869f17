"""Agents' gateways in the lab: the runtime's :class:`~strikechain.runtime.gateway.Gateway`
over the network model.

An agent written against ``Gateway`` (submit, cancel, subscribe) runs unchanged in the lab and
against a live node; here each call crosses the simulated network:

- :meth:`LabGateway.submit` hands the transaction to the :class:`~strikechain.sim.consensus.
  Mempool`: it reaches the agent's entry validator after the path's one-way delay (or is lost),
  the shared mempool (the runtime's inbox) after the gossip delay, and the answer (a receipt or
  a rejection) travels back over the entry validator's stream to the agent.
- :meth:`LabGateway.subscribe` registers with the :class:`MarketDataFeed`, a sink on the runtime:
  when a block is committed (logged), each agent's notices of it leave its entry validator as
  one message and arrive after that link's delay, in order (a stream never reorders and market
  data is never lost), so two agents see the same block at different times.

Which events an agent receives is the runtime's :class:`~strikechain.runtime.gateway.
Dispatcher`'s decision, the same as in process: only the timing is the lab's.
"""

from __future__ import annotations

from strikechain.engine.engine import Engine
from strikechain.engine.txs import Transaction
from strikechain.runtime.gateway import (
    Callback,
    CancelBySubmit,
    Dispatcher,
    Notice,
    Outcome,
    Registration,
    Subscription,
    Ticker,
    Topic,
    engine_ticker,
)
from strikechain.runtime.runtime import Committed, Runtime
from strikechain.sim.consensus import Mempool
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


class LabGateway(CancelBySubmit):
    """One agent's :class:`~strikechain.runtime.gateway.Gateway` in the lab."""

    __slots__ = ("agent", "feed", "mempool")

    def __init__(self, agent: str, mempool: Mempool, feed: MarketDataFeed) -> None:
        self.agent = agent
        self.mempool = mempool
        self.feed = feed

    def submit(self, tx: Transaction, on_outcome: Outcome | None = None) -> None:
        self.mempool.submit(self.agent, tx, on_outcome)

    def subscribe(self, topic: Topic, callback: Callback) -> Subscription:
        return self.feed.subscribe(self.agent, topic, callback)
