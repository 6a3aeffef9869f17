"""The scripted session: a seeded run of about 100k transactions with every invariant checked
after every block, what it must have exercised, and replay by seed.

A failing run names its seed and block in the error; ``run_session(SessionParams(seed=...),
check_every_block=True)`` reproduces it.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from strikechain.engine.codes import RejectCode
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.oracle import OracleReport, ReportVerifier
from strikechain.engine.units import NANOS_PER_HOUR
from strikechain.sim import ScriptedSession, SessionParams, SessionSummary, run_session
from strikechain.sim.signer import ReportSigner
from strikechain.sim.world import OPTION_EXPIRY_NS, SESSION_START_NS

SMALL = SessionParams(seed=11, blocks=200, transactions_per_block=40, traders=24)
"""About 8,000 transactions: enough for every episode, fast enough to run three times."""

SCRIPTED_REJECTIONS = {
    RejectCode.PRICE_OUT_OF_RANGE,
    RejectCode.SIZE_OUT_OF_RANGE,
    RejectCode.UNKNOWN_INSTRUMENT,
    RejectCode.UNKNOWN_UNDERLYING,
    RejectCode.NOT_AUTHORIZED,
    RejectCode.ALREADY_EXPIRED,
    RejectCode.ORDER_NOT_FOUND,
    RejectCode.DUPLICATE_DEPOSIT,
    RejectCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL,
    RejectCode.REDUCE_ONLY_WOULD_INCREASE,
    RejectCode.POST_ONLY_WOULD_CROSS,
    RejectCode.FOK_NOT_FILLABLE,
    RejectCode.CIRCUIT_BREAKER_OPEN,
    RejectCode.IN_LIQUIDATION_QUEUE,
    RejectCode.UNKNOWN_REPORTER,
    RejectCode.BAD_SIGNATURE,
    RejectCode.REPORT_FROM_FUTURE,
}
"""Codes the script provokes on purpose (invalid input, breaker and queue episodes, races)."""


def assert_exercised(summary: SessionSummary, session: ScriptedSession) -> None:
    """What every seeded session must show, whatever its size."""
    perps = [i.name for i in session.perps.values()]
    options = [i.name for i in session.options]
    for name in perps:
        perp = summary.instrument(name)
        assert perp.fills > 0, name
        assert perp.fundings >= 1, f"{name} never paid funding"
        assert perp.funding_paid > 0
        assert perp.open_interest_lots > 0
    assert sum(summary.instrument(name).fills for name in options) > 0
    settlements = summary.settlements
    assert sorted(settlements) == sorted(name for name in options if summary.instrument(name).fills)
    assert any(s.received > 0 for s in settlements.values()), "no option paid out"
    for settlement in settlements.values():
        assert settlement.paid - settlement.received == settlement.dust >= 0
    assert all(summary.instrument(name).open_interest_lots == 0 for name in options)
    # The breaker starts open (no price) and closes at block 1 on each underlying; every later
    # opening closes again before the end.
    assert summary.breaker_reasons.get("NO_QUORUM", 0) >= 2
    for underlying in ("BTC", "ETH"):
        assert summary.breaker_opened[underlying] >= 1
        assert summary.breaker_closed[underlying] == summary.breaker_opened[underlying] + 1
    assert summary.liquidations.queued >= 1
    assert summary.liquidations.orders >= 1  # the lane works the queue
    assert summary.fees > summary.rebates > 0
    missing = SCRIPTED_REJECTIONS - set(summary.rejected_by_code)
    assert not missing, f"never rejected: {sorted(missing)}"
    assert summary.first_block_ns < SESSION_START_NS + NANOS_PER_HOUR < OPTION_EXPIRY_NS
    assert summary.last_block_ns > OPTION_EXPIRY_NS
    money = summary.conservation
    assert money.exact, money
    assert money.held == money.deposits - money.withdrawals
    assert money.withdrawals > 0
    assert money.dust > 0
    assert money.fee_pool > 0


def test_a_100k_transaction_session_keeps_every_invariant_after_every_block() -> None:
    session = ScriptedSession(SessionParams())
    summary = run_session(session, check_every_block=True)
    assert summary.blocks == 1_000
    assert summary.transactions >= 100_000
    assert summary.rejected < summary.transactions // 10
    assert summary.fills > 10_000
    assert_exercised(summary, session)


def test_a_small_session_exercises_the_same() -> None:
    session = ScriptedSession(SMALL)
    assert_exercised(run_session(session, check_every_block=True), session)


def test_the_same_seed_replays_to_the_same_digests_and_another_seed_does_not() -> None:
    first = run_session(SMALL)
    again = run_session(SMALL)  # a fresh engine, a fresh pass over the script
    assert first.block_digests == again.block_digests
    assert first.digest == again.digest
    assert first == again
    other = run_session(dataclasses.replace(SMALL, seed=SMALL.seed + 1))
    assert other.digest != first.digest
    assert sum(a != b for a, b in zip(first.block_digests, other.block_digests, strict=True)) > 190


def test_the_script_is_open_loop_and_restartable() -> None:
    session = ScriptedSession(SMALL)
    assert list(session.blocks()) == list(session.blocks())
    assert [b.height for b in session] == list(range(1, SMALL.blocks + 1))
    times = session.times
    assert all(a < b for a, b in itertools.pairwise(times))


def test_components_draw_from_their_own_streams() -> None:
    """More traders change the agents' streams, not the world's: same times, paths, keys."""
    small, large = ScriptedSession(SMALL), ScriptedSession(dataclasses.replace(SMALL, traders=48))
    assert small.times == large.times
    for underlying in ("BTC", "ETH"):
        assert (small.index[underlying] == large.index[underlying]).all()
        assert small.keys[underlying] == large.keys[underlying]
    assert len(large.agents.takers) > len(small.agents.takers)


def test_scripted_reports_verify_to_their_reporter_under_the_venue_domain() -> None:
    session = ScriptedSession(SMALL)
    key = session.keys["BTC"][0]
    signer = ReportSigner(key, session.venue.signing)
    report = OracleReport(
        account=signer.address,
        underlying="BTC",
        timestamp_ns=SESSION_START_NS,
        price=100_000_000_000,
        confidence=10_000_000,
    )
    signed = signer.sign(report)
    assert ReportVerifier(session.venue.signing).signer(signed) == signer.address


@pytest.mark.parametrize(
    "change",
    [{"blocks": 199}, {"transactions_per_block": 19}, {"quorum": 5}, {"seed": -1}],
)
def test_parameters_out_of_bounds_are_refused(change: dict[str, int]) -> None:
    with pytest.raises(InvariantViolation):
        SessionParams(**change)  # type: ignore[arg-type]


@pytest.mark.long
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_full_sessions_on_other_seeds_exercise_the_same(seed: int) -> None:
    session = ScriptedSession(SessionParams(seed=seed))
    assert_exercised(run_session(session, check_every_block=True), session)
