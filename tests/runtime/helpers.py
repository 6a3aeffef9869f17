"""Shared pieces of the runtime tests: cheap transactions, a real engine, fakes."""

from __future__ import annotations

from strikechain.engine.events import BlockResult, Event, Rejected
from strikechain.engine.limits import Limits
from strikechain.engine.params import VenueConfig
from strikechain.engine.txs import Block, Cancel
from strikechain.runtime import (
    ArrivalOrder,
    BlockPolicy,
    External,
    Genesis,
    MemoryLog,
    Runtime,
    RuntimeConfig,
)
from strikechain.runtime.cutting import CutRule
from strikechain.runtime.log import BlockLog
from strikechain.runtime.selection import Selection


def cancel(account: str = "alice", order_id: int = 1, fee: int = 0) -> Cancel:
    """A transaction the engine answers with a rejection (no such order): cheap and valid."""
    return Cancel(account=account, order_id=order_id, priority_fee=fee)


def genesis(limits: Limits | None = None) -> Genesis:
    return Genesis(venue=VenueConfig(), limits=limits or Limits(), margin="none")


def make_runtime(
    selection: Selection | None = None,
    cutting: CutRule | None = None,
    config: RuntimeConfig | None = None,
    log: BlockLog | None = None,
    limits: Limits | None = None,
) -> Runtime:
    log = log if log is not None else MemoryLog()
    g = genesis(limits)
    if log.get_genesis() is None:
        log.write_genesis(g)
    policy = BlockPolicy(selection or ArrivalOrder(), cutting or External())
    return Runtime(g.build_engine(), log, policy, config)


class FakeEngine:
    """An engine that records blocks; refuses them whole when told to."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.height = 0
        self.timestamp_ns = 0
        self.limits = limits or Limits()
        self.blocks: list[Block] = []
        self.refuse = False

    def apply(self, block: Block) -> BlockResult:
        if self.refuse:
            return BlockResult(
                height=block.height,
                timestamp_ns=block.timestamp_ns,
                events=[],
                rejected="BLOCK_TOO_LARGE",
                reason="told to",
            )
        self.blocks.append(block)
        self.height, self.timestamp_ns = block.height, block.timestamp_ns
        events: list[Event] = [
            Rejected(i, tx.account, "ORDER_NOT_FOUND", "fake")
            for i, tx in enumerate(block.transactions)
        ]
        digest = block.height.to_bytes(32, "big")
        return BlockResult(
            height=block.height, timestamp_ns=block.timestamp_ns, events=events, digest=digest
        )

    def state_root(self) -> bytes:
        return (1000 + self.height).to_bytes(32, "big")
