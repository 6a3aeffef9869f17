"""Every kind of agent in one lab: registered under its scenario name, made from a scenario
table, and the run is a function of the seed alone (two runs, the same blocks)."""

from __future__ import annotations

import msgspec

from strikechain.sim.agents import KINDS, Agent
from strikechain.sim.hedge_venue import HedgeVenueParams
from tests.sim.agents.world import MS, PERP, SEED, World, flat

TABLES: dict[str, dict[str, object]] = {
    "reporter": {"underlying": "BTC", "period_ns": 500 * MS},
    "market_maker": {"instruments": [PERP.name], "hedge_delta_units": 0.02},
    "arbitrageur": {"instruments": [PERP.name], "edge_bps": 2.0, "poll_ns": 20 * MS},
    "noise": {"instruments": [PERP.name], "rate_per_s": 4.0, "cancel_probability": 0.3},
    "leveraged": {"instrument": PERP.name, "collateral_usdc": 10_000.0, "open_after_ns": 10**9},
}


def _counters(agent: object) -> list[tuple[str, float]]:
    """An agent's numeric attributes (dir(), not vars(): a compiled agent has no __dict__)."""
    found = ((name, getattr(agent, name)) for name in dir(agent) if not name.startswith("__"))
    return sorted((k, v) for k, v in found if isinstance(v, int | float))


def run() -> tuple[list[bytes], list[object]]:
    world = World(
        flat(),
        deposits_usdc=dict.fromkeys(TABLES, 1000000),
        hedge=HedgeVenueParams(latency_ns=10 * MS, latency_jitter_ns=5 * MS),
    )
    agents: list[Agent] = []
    for kind, table in TABLES.items():
        spec = KINDS[kind]
        params = msgspec.convert(table, spec.params)
        names = list(world.reporter_addresses) if kind == "reporter" else [kind]
        agents.extend(spec.make(name, params, SEED) for name in names)
    for agent in agents:
        world.start(agent, latency_ns=50 * MS)
    world.run_for(15)
    world.engine.check()
    stats = [_counters(agent) for agent in agents]
    return [block.digest for block in world.lab.blocks], stats


def test_every_kind_is_registered_and_a_run_is_a_function_of_its_seed() -> None:
    assert sorted(KINDS) == [
        "arbitrageur",
        "keeper",
        "leveraged",
        "manipulator",
        "market_maker",
        "noise",
        "reporter",
        "sniper",
        "whale",
    ]
    first, again = run(), run()
    assert first == again
    assert len(first[0]) > 100
