"""The lab's agents: market makers, arbitrageurs, noise traders, leveraged traders and oracle
reporters, written against the runtime's Gateway and Scheduler only (:mod:`.base`)."""

from strikechain.sim.agents.base import Agent, AgentContext, ReferenceFeed

__all__ = ["Agent", "AgentContext", "ReferenceFeed"]
