"""congestion-liquidations.toml does what its header says: through a crash with congested blocks
the keeper auctions (``l1-auction``) accumulate bad debt and the strikechain design (the
liquidation lane with dynamic margin) almost none, and dynamic margin cuts what the lane leaves.

One scenario, run per design with ``msgspec.structs.replace`` (the design, dynamic margin) and
per seed; the bounds keep wide margins from the measured numbers in the header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import msgspec
import pytest

from strikechain.sim.agents.keeper import Keeper
from strikechain.sim.run import Run, RunResult
from strikechain.sim.scenario import Scenario, load_scenario
from strikechain.sim.settings import BUNDLED

SEEDS = (5, 6)
Variant = Literal["strikechain", "static-lane", "l1-auction"]


@dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    run: Run
    result: RunResult

    def metric(self, name: str) -> float:
        return float(self.result.metrics[name])


def variant(scenario: Scenario, name: Variant, seed: int) -> Scenario:
    """The file as written is the strikechain design; ``static-lane`` is it without dynamic
    margin; ``l1-auction`` changes the design only."""
    replace = msgspec.structs.replace
    scenario = replace(scenario, run=replace(scenario.run, seed=seed))
    if name == "l1-auction":
        return replace(scenario, venue=replace(scenario.venue, design="l1-auction"))
    if name == "static-lane":
        risk = scenario.risk
        btc = replace(risk.underlyings["BTC"], dynamic=None)
        return replace(scenario, risk=replace(risk, underlyings={**risk.underlyings, "BTC": btc}))
    return scenario


@pytest.fixture(scope="module")
def outcomes() -> dict[tuple[Variant, int], Outcome]:
    base = load_scenario(BUNDLED / "congestion-liquidations.toml")
    assert base.venue.design == "rollup-clob"
    assert base.risk.underlyings["BTC"].dynamic is not None
    runs: dict[tuple[Variant, int], Outcome] = {}
    names: tuple[Variant, ...] = ("strikechain", "static-lane", "l1-auction")
    for seed in SEEDS:
        for name in names:
            scenario = variant(base, name, seed)
            run = Run(scenario)
            runs[name, seed] = Outcome(scenario, run, run.execute())
    return runs


def _leveraged(outcome: Outcome) -> list[str]:
    return [member.name for member in outcome.run.members if member.group.kind == "leveraged"]


def _stepped(outcome: Outcome) -> set[str]:
    """The accounts something was closed for: a lane order, the backstop, ADL, an auction."""
    rows = outcome.result.frames["liquidations"]
    steps = rows["kind"].isin(["order", "backstop", "deleveraged", "auction_ended"])
    return set(rows[steps & (rows["lots"] > 0)]["account"])


def _keepers(outcome: Outcome, max_fee: int | None = None) -> list[Keeper]:
    """The keepers, or those whose gas cap is ``max_fee``."""
    return [
        member.agent
        for member in outcome.run.members
        if isinstance(member.agent, Keeper) and max_fee in (None, member.group.max_fee)
    ]


@pytest.mark.parametrize("seed", SEEDS)
def test_keeper_auctions_accumulate_bad_debt_the_lane_almost_none(
    outcomes: dict[tuple[Variant, int], Outcome], seed: int
) -> None:
    lane, auctions = outcomes["strikechain", seed], outcomes["l1-auction", seed]
    lane_debt, auction_debt = lane.metric("bad_debt_usdc"), auctions.metric("bad_debt_usdc")
    assert auction_debt > 20_000.0, f"seed {seed}: keeper auctions left {auction_debt:.0f}"
    assert auction_debt > 20 * lane_debt, f"seed {seed}: {auction_debt:.0f} vs {lane_debt:.0f}"
    assert lane_debt < 2_000.0, f"seed {seed}: the lane left {lane_debt:.0f}"
    seeded = float(lane.scenario.risk.insurance_fund_usdc)
    assert lane.metric("insurance_fund_min_usdc") >= 0.9 * seeded, f"seed {seed}"
    assert auctions.metric("insurance_fund_min_usdc") < 0.5 * seeded, f"seed {seed}"
    for outcome in (lane, auctions):
        assert _stepped(outcome) == set(_leveraged(outcome)), f"seed {seed}: every long"


@pytest.mark.parametrize("seed", SEEDS)
def test_auctions_wait_for_keepers_the_lane_acts_next_block(
    outcomes: dict[tuple[Variant, int], Outcome], seed: int
) -> None:
    lane, auctions = outcomes["strikechain", seed], outcomes["l1-auction", seed]
    block_ms = lane.scenario.consensus.block_interval_ns / 1e6
    assert lane.metric("liquidation_delay_ms_p99") <= 2 * block_ms, f"seed {seed}"
    liquidation = auctions.scenario.risk.underlyings["BTC"].liquidation
    assert liquidation is not None
    auction_ms = liquidation.keeper_auction_ns / 1e6
    # a sale comes at an auction's end at the earliest; two auctions: the first found no bid
    assert auctions.metric("liquidation_delay_ms_p99") >= 2 * auction_ms, f"seed {seed}"
    ended = auctions.result.frames["liquidations"]
    ended = ended[ended["kind"] == "auction_ended"]
    assert (ended["lots"] == 0).sum() >= 5, f"seed {seed}: auctions that ended without a bid"
    cheap = _keepers(auctions, max_fee=1_000)
    assert len(cheap) == 2
    orders = auctions.result.frames["orders"]
    mine = orders["agent"].isin([keeper.name for keeper in cheap])
    bids = orders[mine & (orders["kind"] == "LiquidationBid")]
    assert len(bids) == sum(keeper.bids_sent for keeper in cheap) > 0, f"seed {seed}"
    assert bids["included_height"].isna().all(), (
        f"seed {seed}: no bid of a keeper capped at 1,000 ever made it into a block"
    )
    wins = sum(keeper.wins for keeper in _keepers(auctions))
    assert wins == len(_leveraged(auctions)), f"seed {seed}: every long sold once, at last"


def test_dynamic_margin_cuts_what_the_lane_leaves(
    outcomes: dict[tuple[Variant, int], Outcome],
) -> None:
    dynamic = sum(outcomes["strikechain", seed].metric("bad_debt_usdc") for seed in SEEDS)
    static = sum(outcomes["static-lane", seed].metric("bad_debt_usdc") for seed in SEEDS)
    assert static > 3 * dynamic, f"seeds {SEEDS}: static {static:.0f}, dynamic {dynamic:.0f}"
    auctions = sum(outcomes["l1-auction", seed].metric("bad_debt_usdc") for seed in SEEDS)
    assert auctions > 10 * static, "the lane, not dynamic margin, does most of it"
