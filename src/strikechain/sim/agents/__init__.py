"""The lab's agents: market makers, arbitrageurs, noise traders, leveraged traders and oracle
reporters, written against the runtime's Gateway and Scheduler only (:mod:`.base`).

One module per kind, each with a frozen parameter struct (plain data, loadable from a scenario's
``[[agents]]`` table; the compiled kinds' structs are in :mod:`.params`) and the agent class;
importing this package registers every kind in
:data:`~strikechain.sim.agents.registry.KINDS` under the name a scenario uses: ``market_maker``,
``arbitrageur``, ``noise``, ``leveraged``, ``reporter``.
"""

from strikechain.sim.agents.arbitrageur import Arbitrageur
from strikechain.sim.agents.base import Agent, AgentContext, ReferenceFeed
from strikechain.sim.agents.leveraged import LeveragedParams, LeveragedTrader
from strikechain.sim.agents.market_maker import MarketMaker
from strikechain.sim.agents.noise import NoiseTrader
from strikechain.sim.agents.params import ArbitrageurParams, MarketMakerParams, NoiseParams
from strikechain.sim.agents.registry import KINDS, AgentKind
from strikechain.sim.agents.reporter import (
    Reporter,
    ReporterParams,
    reporter_address,
    reporter_key,
)

__all__ = [
    "KINDS",
    "Agent",
    "AgentContext",
    "AgentKind",
    "Arbitrageur",
    "ArbitrageurParams",
    "LeveragedParams",
    "LeveragedTrader",
    "MarketMaker",
    "MarketMakerParams",
    "NoiseParams",
    "NoiseTrader",
    "ReferenceFeed",
    "Reporter",
    "ReporterParams",
    "reporter_address",
    "reporter_key",
]
