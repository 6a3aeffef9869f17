"""``strikechain agents``: the lab's agents trading on a running node, from another process.

The cli composes across drivers (DESIGN.md): the agents are the lab's own
(:class:`~strikechain.sim.agents.market_maker.MarketMaker`,
:class:`~strikechain.sim.agents.noise.NoiseTrader`,
:class:`~strikechain.sim.agents.arbitrageur.Arbitrageur`), unchanged; their edges are live: the
client's :class:`~strikechain.client.gateway.RemoteGateway` (one WebSocket per account: signed
orders in, the engine's events out), the wall clock
(:class:`~strikechain.runtime.live_scheduler.LiveScheduler`) and a reference price that is a
seeded GBM path starting at each underlying's index on the node when the agents start.

Accounts come from a keys file (``strikechain serve --dev --dev-keys-out FILE`` writes one: a
JSON list of ``{api_key, api_secret, address, private_key}``), in order: the market makers
first, then the noise traders, then the arbitrageurs; every agent trades every perpetual.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from rich.console import Console

from strikechain.client import Client, RemoteGateway

SEED: Final = 7
ARBITRAGEUR_LATENCY_NS: Final = 0
MAKER_LATENCY_NS: Final = 200_000_000
"""The makers see the reference 200 ms late: what an arbitrageur with none picks off."""


class AgentsInputError(ValueError):
    """Bad input to ``strikechain agents``: ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def read_keys(path: Path, needed: int) -> list[dict[str, str]]:
    """The first ``needed`` accounts of a keys file; AgentsInputError if it cannot serve."""
    try:
        accounts = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise AgentsInputError("KEYS_UNREADABLE", f"{path}: {error}") from None
    fields = ("api_key", "api_secret", "address", "private_key")
    if not isinstance(accounts, list) or not all(
        isinstance(account, dict) and all(isinstance(account.get(f), str) for f in fields)
        for account in accounts
    ):
        raise AgentsInputError(
            "KEYS_MALFORMED", f"{path}: a JSON list of {{{', '.join(fields)}}} objects"
        )
    if len(accounts) < needed:
        raise AgentsInputError(
            "NOT_ENOUGH_ACCOUNTS", f"{path} holds {len(accounts)} accounts; {needed} are needed"
        )
    return accounts[:needed]


async def run_agents(
    console: Console,
    *,
    url: str,
    accounts: Sequence[dict[str, str]],
    makers: int,
    noise: int,
    arbitrageurs: int,
    seed: int = SEED,
    duration_s: float | None = None,
) -> list[Any]:
    """Start the agents on the node at ``url`` and run them for ``duration_s`` (None: until
    cancelled); the agents, for their counters."""
    from strikechain.cli.live_makers import reference_paths

    clients = [Client(url, a["api_key"], a["api_secret"], a["private_key"]) for a in accounts]
    gateways: list[RemoteGateway] = []
    try:
        for client in clients:  # one by one: those connected are closed if one fails
            gateway = await RemoteGateway.connect(client)
            gateways.append(gateway)
        instruments = gateways[0].instruments if gateways else {}
        perps = tuple(name for name, i in instruments.items() if not i.is_option)
        spots: dict[str, float] = {}
        for name in perps:
            underlying = instruments[name].underlying
            if underlying not in spots:
                index = (await clients[0].ticker(name)).get("index_price")
                if not index:
                    raise AgentsInputError("NO_INDEX", f"{underlying} has no index on the node yet")
                spots[underlying] = float(index)
        paths = reference_paths(spots, time.time_ns())
        agents = _start(gateways, perps, paths, makers, noise, arbitrageurs, seed)
        console.print(
            f"strikechain agents: {makers} market makers, {noise} noise traders, "
            f"{arbitrageurs} arbitrageurs on {', '.join(perps)} at {url}",
            soft_wrap=True,
        )
        if duration_s is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration_s)
        return agents
    finally:
        for gateway in gateways:
            await gateway.close()
        for client in clients:
            await client.close()


def _start(
    gateways: list[RemoteGateway],
    perps: tuple[str, ...],
    paths: Any,
    makers: int,
    noise: int,
    arbitrageurs: int,
    seed: int,
) -> list[Any]:
    from strikechain.runtime.live_scheduler import LiveScheduler
    from strikechain.sim.agents.arbitrageur import Arbitrageur
    from strikechain.sim.agents.base import AgentContext, ReferenceFeed
    from strikechain.sim.agents.market_maker import MarketMaker
    from strikechain.sim.agents.noise import NoiseTrader
    from strikechain.sim.agents.params import ArbitrageurParams, MarketMakerParams, NoiseParams
    from strikechain.sim.world import component_rng

    scheduler = LiveScheduler(asyncio.get_running_loop())
    agents: list[Any] = []
    for number, gateway in enumerate(gateways):
        name = gateway.account
        agent: Any
        latency = MAKER_LATENCY_NS
        if number < makers:
            agent = MarketMaker(name, MarketMakerParams(instruments=perps, perp_size_lots=5))
        elif number < makers + noise:
            agent = NoiseTrader(name, NoiseParams(instruments=perps, size_lots_max=3))
        else:
            latency = ARBITRAGEUR_LATENCY_NS
            agent = Arbitrageur(name, ArbitrageurParams(instruments=perps, max_take_lots=5))
        agent.start(
            AgentContext(
                name=name,
                gateway=gateway,
                scheduler=scheduler,
                rng=component_rng(seed, f"agent/{name}"),
                reference=ReferenceFeed(paths, scheduler, latency),
                instruments=gateway.instruments,
            )
        )
        agents.append(agent)
    return agents


def summary_lines(agents: Sequence[Any]) -> list[str]:
    """One line per agent: its kind, account and what it did."""
    lines = []
    for agent in agents:
        kind = type(agent).__name__
        if kind == "MarketMaker":
            did = f"quotes {agent.quotes_sent}, fills {agent.fills}, rejections {agent.rejections}"
        elif kind == "NoiseTrader":
            did = f"orders {agent.arrivals} (takes {agent.takes}, limits {agent.limits})"
        else:
            did = f"orders {agent.orders_sent}, filled lots {agent.filled_lots}"
        lines.append(f"{kind:<12} {agent.name}  {did}")
    return lines
