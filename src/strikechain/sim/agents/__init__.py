"""The lab's agents: market makers, arbitrageurs, noise traders, leveraged traders, oracle
reporters, snipers, keepers, whales and manipulators, written against the runtime's Gateway and
Scheduler only (:mod:`.base`).

One module per kind, each with a frozen parameter struct (plain data, loadable from a scenario's
``[[agents]]`` table; the compiled kinds' structs are in :mod:`.params`) and the agent class;
importing this package registers every kind in
:data:`~strikechain.sim.agents.registry.KINDS` under the name a scenario uses: ``market_maker``,
``arbitrageur``, ``noise``, ``leveraged``, ``reporter``, ``sniper``, ``keeper``, ``whale``,
``manipulator``.
"""

from strikechain.sim.agents.arbitrageur import Arbitrageur
from strikechain.sim.agents.base import Agent, AgentContext, ReferenceFeed
from strikechain.sim.agents.keeper import Keeper, KeeperParams
from strikechain.sim.agents.leveraged import LeveragedParams, LeveragedTrader
from strikechain.sim.agents.manipulator import Manipulator, ManipulatorParams
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
from strikechain.sim.agents.sniper import Sniper, SniperParams
from strikechain.sim.agents.whale import Whale, WhaleOrder, WhaleParams

__all__ = [
    "KINDS",
    "Agent",
    "AgentContext",
    "AgentKind",
    "Arbitrageur",
    "ArbitrageurParams",
    "Keeper",
    "KeeperParams",
    "LeveragedParams",
    "LeveragedTrader",
    "Manipulator",
    "ManipulatorParams",
    "MarketMaker",
    "MarketMakerParams",
    "NoiseParams",
    "NoiseTrader",
    "ReferenceFeed",
    "Reporter",
    "ReporterParams",
    "Sniper",
    "SniperParams",
    "Whale",
    "WhaleOrder",
    "WhaleParams",
    "reporter_address",
    "reporter_key",
]
