"""Venue designs: the rule sets a protocol team chooses between, as presets over a scenario.

A scenario's ``venue.design`` picks one; :func:`apply_design` turns it into the engine's and the
mempool's settings before the run is built, so every design runs the same agents, network,
block production and price paths, and differs only in what defines it:

- ``rollup-clob``: strikechain's design. Continuous matching, the engine's priority lanes
  (cancels and post-only quotes before takers inside a block), the liquidation lane.
- ``rollup-fba``: the same with a frequent batch auction per block and market (Budish, Cramton
  and Shim): every crossing order of a block trades at one price, so speed inside a block buys
  nothing.
- ``l1-clob``: every order a layer-1 transaction: the block's transactions in fee order (the
  engine's ``FEE_PRIORITY`` policy, so ordering is for sale and front-running is possible) and
  an EIP-1559 base fee (gas; its floor raised to the minimum where the scenario had none).
- ``l1-auction``: ``l1-clob`` with the keeper-auction liquidation policy (announced auctions that
  keepers bid in) on every underlying: the baseline for liquidation design.
- ``cpmm``: a constant-product AMM instead of an order book (:mod:`strikechain.sim.cpmm`): not
  the engine; its run is the AMM model under the scenario's price path and block interval.

What a design does not set stays the scenario's: above all the block production (a layer 1's
long blocks are ``consensus.block_interval_ns = 12_000_000_000``; leaving the interval a
parameter is what lets a sweep compare designs at equal intervals).
"""

from __future__ import annotations

from typing import Final

import msgspec

from strikechain.engine.liquidation import (
    DEFAULT_LIQUIDATION_PARAMS,
    LiquidationParams,
    LiquidationPolicy,
)
from strikechain.engine.units import NANOS_PER_SECOND
from strikechain.sim.cpmm import CpmmParams
from strikechain.sim.processes import GbmParams
from strikechain.sim.scenario import (
    DESIGNS,
    Design,
    RiskSection,
    Scenario,
    ScenarioCode,
    ScenarioError,
    UnderlyingRiskSection,
)

MIN_BASE_FEE: Final = 8
"""The mempool's smallest base fee floor (EIP-1559's 8 wei analogue)."""

__all__ = [
    "DESIGNS",
    "MIN_BASE_FEE",
    "Design",
    "apply_design",
    "block_interval_ns",
    "cpmm_params",
    "is_engine_design",
]


def is_engine_design(design: Design | None) -> bool:
    """True for every design the engine runs (all but ``cpmm``)."""
    return design != "cpmm"


def apply_design(scenario: Scenario) -> Scenario:
    """``scenario`` with its ``venue.design``'s rules in force (unchanged without a design)."""
    design = scenario.venue.design
    if design is None or design == "cpmm":
        return scenario
    replace = msgspec.structs.replace
    venue = scenario.venue
    if design == "rollup-clob":
        return replace(scenario, venue=replace(venue, matching="continuous"))
    if design == "rollup-fba":
        return replace(scenario, venue=replace(venue, matching="batch"))
    consensus = scenario.consensus
    mempool = consensus.mempool
    floor = max(mempool.base_fee_floor, MIN_BASE_FEE)
    mempool = replace(mempool, fee_priority=True, base_fee_floor=floor)
    scenario = replace(
        scenario,
        venue=replace(venue, matching="continuous", ordering="fee_priority"),
        consensus=replace(consensus, mempool=mempool),
    )
    if design == "l1-auction":
        scenario = replace(scenario, risk=_keeper_auctions(scenario))
    return scenario


def block_interval_ns(scenario: Scenario) -> int:
    """The scenario's nominal block interval: the sequencer's, or Tendermint's commit timeout
    (a Tendermint block takes that plus its rounds' messages)."""
    consensus = scenario.consensus
    if consensus.kind == "sequencer":
        return consensus.block_interval_ns
    return consensus.timeout_commit_ns


def cpmm_params(scenario: Scenario) -> CpmmParams:
    """The AMM model's parameters for a ``cpmm`` scenario: its pool (``venue.cpmm``) on the
    first underlying at its spot, with that underlying's GBM vol and drift, the scenario's block
    interval, duration (after its warm-up) and seed."""
    underlying = scenario.market.underlyings[0]
    process = underlying.process
    spot = underlying.spot_usdc
    if not isinstance(process, GbmParams) or spot is None:
        raise ScenarioError(
            ScenarioCode.INVALID,
            f"$.market.underlyings[0].process: the cpmm design needs a gbm process, not "
            f"{type(process).__name__}",
        )
    pool = scenario.venue.cpmm
    half = pool.pool_value_usdc / 2.0
    run = scenario.run
    return CpmmParams(
        base_reserve=half / spot,
        quote_reserve_usdc=half,
        fee_bps=pool.fee_bps,
        gas_usdc=pool.gas_usdc,
        block_interval_ns=block_interval_ns(scenario),
        vol=process.vol,
        drift=process.drift,
        horizon_ns=round(run.duration_s * NANOS_PER_SECOND),
        warmup_ns=round(run.warmup_s * NANOS_PER_SECOND),
        paths=pool.paths,
        seed=run.seed,
    )


def _keeper_auctions(scenario: Scenario) -> RiskSection:
    risk = scenario.risk
    replace = msgspec.structs.replace
    underlyings = dict(risk.underlyings)
    for process in scenario.market.underlyings:
        section = underlyings.get(process.name, UnderlyingRiskSection())
        params: LiquidationParams = section.liquidation or DEFAULT_LIQUIDATION_PARAMS
        auctions = replace(params, policy=LiquidationPolicy.KEEPER_AUCTION)
        underlyings[process.name] = replace(section, liquidation=auctions)
    return replace(risk, underlyings=underlyings)
