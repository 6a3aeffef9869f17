"""``strikechain serve --dev --with-market-makers``: the lab's market makers on a live node.

The cli composes across drivers (DESIGN.md): the makers are the lab's own agents
(:class:`strikechain.sim.agents.market_maker.MarketMaker`), unchanged, given a context whose
edges are live: the node's runtime through the in-process gateway (orders go to the inbox,
events come back as each block is logged), the wall clock through the event loop, and a
reference price that is a seeded GBM path in wall time, which the development reporter
publishes as the index too. So a newcomer sees a two-sided market within seconds.

Options are quoted with the development reporter's smile (:data:`strikechain.node.dev.SMILE`),
so quotes sit around the marks. The makers quote the instruments listed when they start; every
:data:`LISTING_CHECK_NS` the instruments listed since (the rolling option expiries) get makers of
their own on the same accounts (a new agent name per generation keeps client order ids apart).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from strikechain.engine.instruments import Instrument
from strikechain.runtime.live_scheduler import LiveScheduler

MAKERS: Final = 2
"""Development accounts 0 and 1 make markets (their collateral is the dev funding)."""
VOL: Final = 0.5
SEED: Final = 7
NANOS_PER_SECOND: Final = 1_000_000_000
LISTING_CHECK_NS: Final = 2 * NANOS_PER_SECOND
OPTION_MIN_EXPIRY_NS: Final = 60 * NANOS_PER_SECOND
"""An option this close to expiry is not quoted (nor given a maker)."""
OPTION_SIZE_LOTS: Final = 2
"""Lots of each option quote (0.02 BTC). The makers quote three levels a side of every listed
strike on the BTC sub-ledger their perpetual quotes share: at 10 lots the options' reserve
passed the development funding and the perpetual quotes were refused for margin now and
then, both makers' at once sometimes, leaving the perpetual's book empty until a requote."""


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
    """Start :data:`MAKERS` market makers quoting every instrument of ``node``, and makers for
    the instruments listed later (checked every :data:`LISTING_CHECK_NS`); the list grows."""
    from strikechain.runtime.gateway import LocalGateway
    from strikechain.sim.agents.base import AgentContext, ReferenceFeed
    from strikechain.sim.agents.market_maker import MarketMaker
    from strikechain.sim.world import component_rng

    scheduler = LiveScheduler(asyncio.get_running_loop())
    gateway = LocalGateway(node.runtime, scheduler)
    makers: list[Any] = []
    quoted: dict[str, None] = {}

    def start_generation() -> None:
        scheduler.call_later(LISTING_CHECK_NS, start_generation)
        listed: dict[str, Instrument] = dict(node.engine.instruments)
        latest_ns = scheduler.now_ns() + OPTION_MIN_EXPIRY_NS
        names = tuple(
            name
            for name, instrument in listed.items()
            if name not in quoted and (not instrument.is_option or instrument.expiry_ns > latest_ns)
        )
        if not names:
            return
        generation = len(makers) // MAKERS
        quoted.update(dict.fromkeys(names))
        for account in accounts[:MAKERS]:
            name = account["address"]
            agent = name if not generation else f"{name}/{generation}"
            maker = MarketMaker(name, maker_params(names))
            maker.start(
                AgentContext(
                    name=agent,
                    gateway=gateway,
                    scheduler=scheduler,
                    rng=component_rng(SEED, f"agent/{agent}"),
                    reference=ReferenceFeed(paths, scheduler, 0),
                    instruments=listed,
                )
            )
            makers.append(maker)

    start_generation()
    return makers


def maker_params(instruments: tuple[str, ...]) -> Any:
    """The development makers' parameters: perps 5 bps either side, options around the
    development reporter's smile."""
    from strikechain.node.dev import SMILE
    from strikechain.sim.agents.params import MarketMakerParams

    return MarketMakerParams(
        instruments=instruments,
        half_spread_bps=5.0,
        levels=3,
        perp_size_lots=5,
        poll_ns=250_000_000,
        option_size_lots=OPTION_SIZE_LOTS,
        option_min_expiry_ns=OPTION_MIN_EXPIRY_NS,
        vol_atm=SMILE.atm,
        vol_skew=SMILE.skew,
        vol_curvature=SMILE.curvature,
    )
