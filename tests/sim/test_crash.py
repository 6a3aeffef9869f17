"""The scripted crash (price -30% within two minutes after a volatile prelude, a thin book, 40
leveraged longs at 12x), run twice with one setting changed: dynamic margin off, then on. With
it on, margin rises with the prelude's volatility and the lane sells most of the longs into the
book while it still has bids; with it off they meet the crash whole, the fund runs dry and ADL
socializes the rest. Every invariant is checked after every block (money conserved through
fees, the fund and ADL)."""

from __future__ import annotations

from functools import cache

from strikechain.sim.crash import CrashParams, CrashReport, run_crash

USDC = 1_000_000


@cache
def crash(dynamic: bool) -> CrashReport:
    return run_crash(CrashParams(dynamic=dynamic))


def test_bad_debt_is_lower_with_dynamic_margin() -> None:
    off, on = crash(False).liquidations, crash(True).liquidations
    # measured: 23,001.71 USDC without dynamic margin, 7,019.59 USDC with it
    assert 21_000 * USDC < off.bad_debt < 25_000 * USDC
    assert 6_000 * USDC < on.bad_debt < 8_000 * USDC
    assert on.bad_debt * 3 < off.bad_debt


def test_without_dynamic_margin_the_longs_meet_the_crash_whole() -> None:
    report = crash(False)
    assert report.peak_multiplier_ppm == 1_000_000
    off = report.liquidations
    assert off.lots_to_book < 500  # of 4,000: the thin book took little
    assert off.deleveraged_lots > 3_000
    assert off.insurance_paid > 0
    # the counterparties absorb what the fund could not pay, to the minor unit per lot
    assert 0 <= off.socialized - off.unpaid_by_fund < off.deleveraged_lots


def test_with_dynamic_margin_the_lane_sells_most_of_them_before_the_crash() -> None:
    report = crash(True)
    assert report.peak_multiplier_ppm == 5_000_000  # the cap
    on = report.liquidations
    assert on.lots_to_book > 3_500
    assert on.deleveraged_lots < 500
    assert on.fees > 2_000 * USDC  # liquidation fees fed the fund, which paid most deficits
    assert on.insurance_paid > on.socialized
