"""Oracle reporters in a lab: the venue's index follows honest reporters; a biased or
manipulating minority is dropped as outliers; a frozen majority leaves the index stale (its
price held, or its reports refused until the breaker opens); vol nodes come from SVI fits made
at a bounded rate and are published unchanged between fits."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

from strikechain.engine.events import CircuitBreakerOpened, IndexUpdated
from strikechain.engine.oracle import OracleReport
from strikechain.sim.agents import KINDS, ReporterParams, reporter_address
from tests.sim.agents.world import (
    EXPIRY_FAR,
    EXPIRY_NEAR,
    MS,
    PERP,
    SECOND,
    SEED,
    START_NS,
    World,
    flat,
    honest,
    option,
    replayed,
    start_reporters,
)

FIVE = tuple(f"reporter-{i}" for i in range(5))


def test_the_index_follows_honest_reporters_and_drops_a_biased_and_a_manipulating_one() -> None:
    world = World(flat(), reporters=FIVE, quorum=3)
    events = world.events()
    push_from, push_until = 10 * SECOND, 20 * SECOND
    reporters = start_reporters(
        world,
        {
            "reporter-3": honest(behaviour="biased", bias_bps=500.0),
            "reporter-4": honest(
                behaviour="manipulating",
                push_bps=-400.0,
                push_after_ns=push_from,
                push_for_ns=push_until - push_from,
            ),
        },
        latency_ns=100 * MS,
    )
    world.run_for(30)
    updates = [(t, e) for t, e in events if isinstance(e, IndexUpdated)]
    assert len(updates) > 100
    for t, update in updates:  # within a few bp of the reference (noise 1 bp, latency 100 ms)
        assert abs(update.index / 1e6 / world.reference(t) - 1.0) < 5e-4
    start = START_NS + 100 * MS  # the reporters started after the first block
    # a report lands 1 to 2 blocks after it is made, and stays fresh for 10 s
    before = {e.reporters for t, e in updates if t < start + push_from}
    during = {
        e.reporters for t, e in updates if start + push_from + SECOND < t < start + push_until
    }
    assert before == {4}  # the biased one is always out
    assert during == {3}  # and the manipulating one while it pushes
    assert all(50 <= r.reports <= 60 for r in reporters.values())  # every 0.5 to 0.6 s
    assert not world.engine.underlyings["BTC"].oracle.breaker_open


def test_a_frozen_majority_that_resends_its_report_goes_stale_and_the_breaker_opens() -> None:
    world = World(flat(), reporters=FIVE, quorum=3)
    events = world.events()
    frozen = honest(behaviour="frozen", frozen_after_ns=5 * SECOND, frozen_resend=True)
    start_reporters(world, {f"reporter-{i}": frozen for i in range(3)})
    world.run_for(20)
    opened = [(t, e) for t, e in events if isinstance(e, CircuitBreakerOpened)]
    assert len(opened) == 1
    t, event = opened[0]
    assert event.reason == "NO_QUORUM"
    # frozen at ~5 s, last accepted report then, fresh for the oracle's 10 s
    assert START_NS + 14 * SECOND < t < START_NS + 17 * SECOND
    assert world.engine.underlyings["BTC"].oracle.breaker_open


def test_a_frozen_majority_stamping_new_reports_holds_the_index_where_it_froze(
    tmp_path: Path,
) -> None:
    # +10 bp a second: +3% over the run
    prices = replayed(tmp_path, [(0, 100_000.0), (30, 103_000.0)], steps=False)
    world = World(prices, reporters=FIVE, quorum=3)
    frozen = honest(behaviour="frozen", frozen_after_ns=5 * SECOND)
    start_reporters(world, {f"reporter-{i}": frozen for i in range(3)})
    world.run_for(30)
    oracle = world.engine.underlyings["BTC"].oracle
    assert not oracle.breaker_open
    assert oracle.index is not None
    at_freeze = world.reference(START_NS + 5 * SECOND)
    assert abs(oracle.index / 1e6 / at_freeze - 1.0) < 5e-4
    assert world.reference() / at_freeze - 1.0 > 0.02


def test_vol_nodes_come_from_fits_at_the_bounded_rate_and_hold_between_them() -> None:
    options = [
        option(expiry, strike, call)
        for expiry in (EXPIRY_NEAR, EXPIRY_FAR)
        for strike in (90_000, 100_000, 110_000)
        for call in (True, False)
    ]
    world = World(flat(), instruments=(PERP, *options))
    vols = honest(fit_interval_ns=10 * SECOND, period_ns=SECOND)
    reporters = start_reporters(world, dict.fromkeys(world.reporter_addresses, vols))
    oracle = world.engine.underlyings["BTC"].oracle
    address = world.reporter_addresses["reporter-0"]
    seen: list[OracleReport] = []
    for _ in range(5):  # 2 s to 7 s: one fit
        world.run_for(1.0 if seen else 2.0)
        report = oracle.get_report(address)
        assert report is not None
        seen.append(report)
    world.run_for(18)
    assert all(report.vols == seen[0].vols for report in seen)
    for reporter in reporters.values():
        assert reporter.fits == 3  # at 0, 10 and 20 s (a report every 1 to 1.2 s)
        assert reporter.fit_failures == 0
        assert np.all(np.diff(reporter.fit_times) >= 10 * SECOND)
    nodes = oracle.vol_nodes
    assert list(nodes) == [EXPIRY_NEAR, EXPIRY_FAR]
    grid = np.asarray(oracle.params.log_moneyness_ppm) / 1e6
    true = np.sqrt(ReporterParams(underlying="BTC").true_smile().total_variance(grid))
    for vols_ppm in nodes.values():  # the median of three fits to noisy quotes (0.5 vol points)
        assert np.max(np.abs(np.asarray(vols_ppm) / 1e6 - true)) < 0.01


def test_reporter_keys_and_params() -> None:
    assert KINDS["reporter"].address is not None
    assert KINDS["reporter"].address(SEED, "reporter-0") == reporter_address(SEED, "reporter-0")
    assert reporter_address(SEED, "a") != reporter_address(SEED, "b")
    assert reporter_address(SEED, "a") != reporter_address(SEED + 1, "a")
    params = msgspec.convert({"underlying": "BTC", "behaviour": "stale"}, ReporterParams)
    assert KINDS["reporter"].underlying is not None
    assert KINDS["reporter"].underlying(params) == "BTC"
    with pytest.raises(ValueError, match=r"ReporterParams.period_ns must be between"):
        ReporterParams(underlying="BTC", period_ns=0)
    with pytest.raises(msgspec.ValidationError, match=r"sneaky.*behaviour"):
        msgspec.convert({"underlying": "BTC", "behaviour": "sneaky"}, ReporterParams)
    with pytest.raises(ValueError, match=r"ReporterParams.quote_log_moneyness must be at least 5"):
        ReporterParams(underlying="BTC", quote_log_moneyness=(0.0, 0.1))
    with pytest.raises(ValueError, match=r"ReporterParams.true_svi_\* must make a raw SVI"):
        ReporterParams(underlying="BTC", true_svi_rho=1.5)


def test_a_stale_reporter_reports_an_old_price(tmp_path: Path) -> None:
    prices = replayed(tmp_path, [(0, 100_000.0), (10, 101_000.0)], steps=False)
    world = World(prices)
    stale = honest(behaviour="stale", stale_lag_ns=3 * SECOND, noise_bps=0.0)
    start_reporters(world, {"reporter-0": stale})
    world.run_for(8)
    report = world.engine.underlyings["BTC"].oracle.get_report(
        world.reporter_addresses["reporter-0"]
    )
    assert report is not None
    then = world.reference(report.timestamp_ns - 3 * SECOND)
    assert abs(report.price / 1e6 - then) < 0.01
    assert world.reference(report.timestamp_ns) - then > 250.0  # 10 USDC/s for 3 s
