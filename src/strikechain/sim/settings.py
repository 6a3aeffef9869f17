"""The bundled scenarios, and the two block-production settings the demo compares.

``scenarios/`` (at the top of the checkout) holds the bundled scenario files; :data:`BUNDLED`
points there. :func:`crash_setting` gives ``crash.toml`` under one of :data:`SETTINGS`: the
scenario as written (a rollup sequencer, a block every 250 ms), or four CometBFT-style
validators 100 ms apart (blocks about 1.3 s apart, final when they commit), everything else the
same. :func:`run_setting` runs one and returns its metrics and scale: the demo runs both in two
processes at once, the lab benchmark times one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

import msgspec

from strikechain.sim.network import ConstantLatency, LinkParams
from strikechain.sim.run import Run
from strikechain.sim.scenario import Scenario, load_scenario

BUNDLED: Final = Path(__file__).resolve().parents[3] / "scenarios"
"""The bundled scenarios, at the top of the checkout."""
CRASH: Final = BUNDLED / "crash.toml"
VALIDATOR_LATENCY_NS: Final = 100_000_000
SETTINGS: Final = {
    "sequencer": "rollup sequencer, 250 ms blocks",
    "validators": "4 validators 100 ms apart (CometBFT timeouts)",
}


def with_duration(scenario: Scenario, duration_s: float | None) -> Scenario:
    """``scenario`` run for ``duration_s`` simulated seconds (None: as written)."""
    if duration_s is None:
        return scenario
    shorter = msgspec.structs.replace(scenario.run, duration_s=duration_s)
    return msgspec.structs.replace(scenario, run=shorter)


def crash_setting(setting: str, seed: int, duration_s: float | None = None) -> Scenario:
    """``crash.toml`` under ``setting`` (a key of :data:`SETTINGS`)."""
    scenario = with_duration(load_scenario(CRASH, seed=seed), duration_s)
    if setting == "validators":
        link = LinkParams(latency=ConstantLatency(one_way_ns=VALIDATOR_LATENCY_NS))
        scenario = msgspec.structs.replace(
            scenario,
            consensus=msgspec.structs.replace(scenario.consensus, kind="tendermint"),
            network=msgspec.structs.replace(scenario.network, validator_validator=link),
        )
    return scenario


def run_setting(setting: str, seed: int, duration_s: float | None = None) -> dict[str, Any]:
    """One setting's run: its metrics, agents, instruments, simulated and wall seconds."""
    started = time.perf_counter()
    run = Run(crash_setting(setting, seed, duration_s))
    result = run.execute()
    return {
        "metrics": result.metrics,
        "agents": len(run.members),
        "instruments": len(run.instruments),
        "simulated_s": run.scenario.run.duration_s + run.scenario.run.warmup_s,
        "wall_s": time.perf_counter() - started,
    }
