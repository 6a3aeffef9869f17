"""``strikechain bench lab``: the lab's event loop and its consensus model, in wall-clock terms.

- ``kernel_events_per_s`` (target at least 1,000,000): trivial events through
  :class:`~strikechain.sim.kernel.Kernel`, :data:`CHAINS` self-rescheduling chains (each event
  schedules the next one of its chain 1 to 8 us of virtual time later, so the heap holds
  :data:`CHAINS` events throughout), :data:`EVENTS` events, best of :data:`REPEATS`. Beside it,
  in the same run, the references the issue names: ``reference_heapq_events_per_s``, the same
  workload as a bare ``heapq`` loop with no kernel around it (the floor of any heap-based
  loop in Python), and ``reference_simpy_events_per_s``, the same chains as SimPy processes
  (``yield env.timeout``), when SimPy is installed (the ``bench`` extra).
  ``kernel_vs_heapq`` is the kernel's rate over the bare loop's.
- ``consensus_blocks_per_s``: simulated Tendermint blocks per wall second, four honest
  validators at 50 ms one-way latency with CometBFT's timeouts and no transactions
  (:func:`strikechain.sim.consensus.benchmark_run`), with ``consensus_events_per_block``, the
  kernel events a block costs, and ``consensus_virtual_s_per_wall_s``, how much faster than
  real time the model runs.

- ``agent_messages_per_s`` (target at least 150,000; ABIDES manages 35-50k for a 1,000-agent
  market on this class of machine): ``scenarios/bench-1000.toml`` (50 market makers, 50
  arbitrageurs, 900 noise traders, 5 reporters, 4 validators, 200 ms blocks, a simulated
  minute), its messages (every agent transaction and every market-data delivery to an agent,
  each through the network model) over the wall time of the simulation (recording included,
  the tables and metrics built after it not); ``agent_order_share`` (orders, amends and
  cancels among the messages; at least 20%), ``engine_tx_per_s`` (transactions the engine
  applied in that wall time), ``bench_1000_sim_seconds_per_wall_second``;
- ``demo_sim_seconds_per_wall_second``: the demo's run (``scenarios/crash.toml``, the
  sequencer setting, a simulated hour), simulated seconds per wall second.
- ``sweep_runs_per_minute``: the bundled sweep (``scenarios/sweeps/block-interval.toml``: 3
  block intervals x 2 designs x 3 seeds = 18 runs of ``calm.toml``, a simulated minute each) in
  :data:`SWEEP_WORKERS` local processes, runs per wall minute (process start-up included). The
  benchmark process is pinned to one core; its sweep workers get :data:`SWEEP_WORKERS` of the
  cores it was allowed (``sweep_cores``), as the issue's two local workers on two cores.

``context.engine`` says whether the kernel (built with the engine by ``make native``) ran
compiled.
"""

from __future__ import annotations

import heapq
import importlib.util
import time
from collections.abc import Callable, Generator
from typing import Any

from strikechain.sim.consensus import benchmark_run
from strikechain.sim.kernel import Kernel

CHAINS = 1_000
EVENTS = 1_000_000
REPEATS = 3
CONSENSUS_BLOCKS = 2_000


def _best_rate(count: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return count / best


def _kernel_run() -> None:
    kernel = Kernel(1)
    schedule = kernel.schedule

    def tick(chain: int) -> None:
        schedule(kernel.now + 1_000 + (chain & 7) * 1_000, tick, chain)

    for chain in range(CHAINS):
        schedule(chain, tick, chain)
    ran = kernel.run(max_events=EVENTS)
    assert ran == EVENTS


def _heapq_run() -> None:
    heap: list[tuple[int, int, int]] = [(chain, chain, chain) for chain in range(CHAINS)]
    pop, push = heapq.heappop, heapq.heappush
    sequence = CHAINS
    for _ in range(EVENTS):
        when, _, chain = pop(heap)
        sequence += 1
        push(heap, (when + 1_000 + (chain & 7) * 1_000, sequence, chain))


def _simpy_run() -> None:
    import simpy

    environment = simpy.Environment()

    def chain(number: int) -> Generator[Any, Any, None]:
        while True:
            yield environment.timeout(1_000 + (number & 7) * 1_000)

    for number in range(CHAINS):
        environment.process(chain(number))
    # each timeout is one event of SimPy's loop (plus a process resumption, as in any SimPy model)
    for _ in range(EVENTS):
        environment.step()


def _consensus() -> dict[str, float]:
    best = float("inf")
    events = virtual = 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        consensus = benchmark_run(CONSENSUS_BLOCKS)
        elapsed = time.perf_counter() - started
        if elapsed < best:
            best = elapsed
            events = consensus.kernel.events_run
            virtual = consensus.blocks[-1].commit_ns - consensus.blocks[0].propose_ns
    return {
        "consensus_blocks_per_s": CONSENSUS_BLOCKS / best,
        "consensus_events_per_block": events / CONSENSUS_BLOCKS,
        "consensus_virtual_s_per_wall_s": virtual / 1e9 / best,
    }


BENCH_DURATION_S: float | None = None
"""Shorter simulated runs than the scenarios' (the benchmark's own test); None: as written."""
ORDER_KINDS = ("PlaceOrder", "Amend", "Cancel", "CancelAll")


def _agents() -> dict[str, float]:
    from strikechain.sim.run import Run
    from strikechain.sim.scenario import load_scenario
    from strikechain.sim.settings import BUNDLED, with_duration

    run = Run(with_duration(load_scenario(BUNDLED / "bench-1000.toml"), BENCH_DURATION_S))
    started = time.perf_counter()
    warmup_end = run.simulate()
    wall = time.perf_counter() - started
    result = run.result(warmup_end)
    kinds = result.frames["orders"]["kind"].value_counts().to_dict()
    submissions = sum(kinds.values())
    messages = submissions + run.lab.feed.messages
    orders = sum(count for kind, count in kinds.items() if kind in ORDER_KINDS)
    simulated = run.scenario.run.duration_s + run.scenario.run.warmup_s
    return {
        "agent_messages_per_s": messages / wall,
        "agent_messages": messages,
        "agent_order_share": orders / messages,
        "engine_tx_per_s": int(sum(result.frames["blocks"]["transactions"])) / wall,
        "bench_1000_sim_seconds_per_wall_second": simulated / wall,
        "bench_1000_agents": len(run.members),
    }


SWEEP_WORKERS = 2
SWEEP_DURATION_S: float | None = None
"""Shorter runs than the sweep file's (the benchmark's own test); None: as written."""


def _sweep() -> dict[str, float]:
    import dataclasses
    import os

    import msgspec

    from strikechain.bench.runner import allowed_cores
    from strikechain.sim.sweep import EXAMPLE, load_sweep, run_sweep

    spec = load_sweep(EXAMPLE)
    if SWEEP_DURATION_S is not None:
        replace = msgspec.structs.replace
        cells = tuple(
            dataclasses.replace(
                cell,
                scenario=replace(
                    cell.scenario, run=replace(cell.scenario.run, duration_s=SWEEP_DURATION_S)
                ),
            )
            for cell in spec.cells
        )
        spec = dataclasses.replace(spec, cells=cells, duration_s=SWEEP_DURATION_S)
    pinned = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    cores = (allowed_cores() or sorted(pinned))[:SWEEP_WORKERS]
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cores))  # the spawned workers inherit it
    try:
        result = run_sweep(spec, workers=SWEEP_WORKERS)
    finally:
        if pinned and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, pinned)
    runs = len(result.runs)
    return {
        "sweep_runs_per_minute": runs / (result.wall_s / 60.0),
        "sweep_runs": runs,
        "sweep_workers": SWEEP_WORKERS,
        "sweep_cores": len(cores),
    }


def _demo() -> dict[str, float]:
    from strikechain.sim.settings import run_setting

    ran = run_setting("sequencer", 7, BENCH_DURATION_S)
    return {"demo_sim_seconds_per_wall_second": ran["simulated_s"] / ran["wall_s"]}


def run() -> dict[str, float]:
    kernel = _best_rate(EVENTS, _kernel_run)
    bare = _best_rate(EVENTS, _heapq_run)
    metrics = {
        "kernel_events_per_s": kernel,
        "reference_heapq_events_per_s": bare,
        "kernel_vs_heapq": kernel / bare,
    }
    if importlib.util.find_spec("simpy") is not None:  # the bench extra installs it
        metrics["reference_simpy_events_per_s"] = _best_rate(EVENTS, _simpy_run)
    metrics.update(_consensus())
    metrics.update(_agents())
    metrics.update(_demo())
    metrics.update(_sweep())
    return metrics
