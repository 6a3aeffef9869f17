"""``strikechain serve --dev --with-market-makers``: the lab's market makers on a live node.

The cli composes across drivers (DESIGN.md): the makers are the lab's own agents
(:class:`strikechain.sim.agents.market_maker.MarketMaker`), unchanged, given a context whose
edges are live: the node's runtime through the in-process gateway (orders go to the inbox,
events come back as each block is logged), the wall clock through the event loop, and a
reference price that is a seeded GBM path in wall time, which the development reporter
publishes as the index too. So a newcomer sees a two-sided market within seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

from strikechain.engine.instruments import Instrument

MAKERS: Final = 2
"""Development accounts 0 and 1 make markets (their collateral is the dev funding)."""
VOL: Final = 0.5
SEED: Final = 7


class LiveScheduler:
    """The agents' :class:`~strikechain.runtime.gateway.Scheduler` on the wall clock."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def now_ns(self) -> int:
        return time.time_ns()

    def call_at(self, when_ns: int, callback: Callable[[], None]) -> asyncio.TimerHandle:
        delay = max(0, when_ns - time.time_ns()) / 1e9
        return self._loop.call_later(delay, callback)

    def call_later(self, delay_ns: int, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self._loop.call_later(max(0, delay_ns) / 1e9, callback)


def reference_paths(underlyings: dict[str, float], start_ns: int) -> Any:
    """Seeded GBM paths from ``start_ns`` on, one per underlying (its spot in USDC)."""
    from strikechain.sim.kernel import Kernel
    from strikechain.sim.processes import GbmParams, PricePaths, PricesSpec, UnderlyingProcess

    spec = PricesSpec(
        underlyings=tuple(
            UnderlyingProcess(name=name, process=GbmParams(vol=VOL), spot_usdc=spot)
            for name, spot in underlyings.items()
        )
    )
    return PricePaths(spec, Kernel(SEED, start_ns=start_ns).rng, start_ns)


def start_makers(node: Any, accounts: list[dict[str, str]], paths: Any) -> list[Any]:
    """Start :data:`MAKERS` market makers quoting every perpetual of ``node``."""
    from strikechain.runtime.gateway import LocalGateway
    from strikechain.sim.agents.base import AgentContext, ReferenceFeed
    from strikechain.sim.agents.market_maker import MarketMaker
    from strikechain.sim.agents.params import MarketMakerParams
    from strikechain.sim.world import component_rng

    scheduler = LiveScheduler(asyncio.get_running_loop())
    engine = node.engine
    instruments: dict[str, Instrument] = dict(engine.instruments)
    gateway = LocalGateway(node.runtime, scheduler)
    makers = []
    for account in accounts[:MAKERS]:
        name = account["address"]
        maker = MarketMaker(
            name,
            MarketMakerParams(
                instruments=tuple(instruments),
                half_spread_bps=5.0,
                levels=3,
                perp_size_lots=5,
                poll_ns=250_000_000,
            ),
        )
        maker.start(
            AgentContext(
                name=name,
                gateway=gateway,
                scheduler=scheduler,
                rng=component_rng(SEED, f"agent/{name}"),
                reference=ReferenceFeed(paths, scheduler, 0),
                instruments=instruments,
            )
        )
        makers.append(maker)
    return makers
