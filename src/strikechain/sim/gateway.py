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

from strikechain.engine.txs import Cancel, Transaction
from strikechain.runtime.gateway import (
    Callback,
    Outcome,
    Subscription,
    Topic,
)
from strikechain.sim.consensus import Mempool
from strikechain.sim.feed import MarketDataFeed

__all__ = ["LabGateway", "MarketDataFeed"]


class LabGateway:
    """One agent's :class:`~strikechain.runtime.gateway.Gateway` in the lab. Compiled by mypyc
    (``make native``): every agent transaction passes here, so it implements ``cancel`` as
    :class:`~strikechain.runtime.gateway.CancelBySubmit` does (a compiled class cannot derive
    from an interpreted one)."""

    __slots__ = ("agent", "feed", "mempool")

    def __init__(self, agent: str, mempool: Mempool, feed: MarketDataFeed) -> None:
        self.agent = agent
        self.mempool = mempool
        self.feed = feed

    def submit(self, tx: Transaction, on_outcome: Outcome | None = None) -> None:
        self.mempool.submit(self.agent, tx, on_outcome)

    def cancel(
        self,
        account: str,
        *,
        order_id: int = 0,
        client_order_id: str = "",
        priority_fee: int = 0,
        on_outcome: Outcome | None = None,
    ) -> None:
        tx = Cancel(
            account=account,
            order_id=order_id,
            client_order_id=client_order_id,
            priority_fee=priority_fee,
        )
        self.mempool.submit(self.agent, tx, on_outcome)

    def subscribe(self, topic: Topic, callback: Callback) -> Subscription:
        return self.feed.subscribe(self.agent, topic, callback)
