"""Cross-check against QuantLib's analytic European engine on a random grid."""

from __future__ import annotations

import numpy as np
import pytest

from strikechain import pricing as px

ql = pytest.importorskip("QuantLib")


def _quantlib(
    spot: float, strike: float, days: int, vol: float, rate: float, carry: float, call: bool
) -> dict[str, float]:
    today = ql.Date(15, ql.January, 2025)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    rate_curve = ql.YieldTermStructureHandle(ql.FlatForward(today, rate, day_count, ql.Continuous))
    dividend_curve = ql.YieldTermStructureHandle(
        ql.FlatForward(today, rate - carry, day_count, ql.Continuous)
    )
    vol_surface = ql.BlackVolTermStructureHandle(
        ql.BlackConstantVol(today, ql.NullCalendar(), vol, day_count)
    )
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)), dividend_curve, rate_curve, vol_surface
    )
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, strike)
    option = ql.VanillaOption(payoff, ql.EuropeanExercise(today + days))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return {
        "price": option.NPV(),
        "delta": option.delta(),
        "gamma": option.gamma(),
        "vega": option.vega(),
        "theta": option.theta(),
        "rho": option.rho(),
    }


def test_random_grid_matches_quantlib() -> None:
    rng = np.random.default_rng(2025)
    n = 250
    spot = rng.uniform(10, 1000, n)
    days = rng.integers(1, 3 * 365, n)
    expiry = days / 365.0
    vol = rng.uniform(0.05, 1.2, n)
    strike = spot * np.exp(rng.uniform(-3, 3, n) * vol * np.sqrt(expiry))
    rate = rng.uniform(-0.01, 0.08, n)
    carry = rate - rng.uniform(-0.02, 0.05, n)
    call = rng.uniform(size=n) < 0.5
    ours = px.bsm_greeks(spot, strike, expiry, vol, rate, carry, call=call)
    for i in range(n):
        theirs = _quantlib(
            spot[i], strike[i], int(days[i]), vol[i], rate[i], carry[i], bool(call[i])
        )
        scale = spot[i]  # absolute floor relative to the contract's size
        for name, value in theirs.items():
            mine = float(getattr(ours, name)[i])
            floor = 1e-11 * scale / (spot[i] if name == "gamma" else 1.0)
            assert mine == pytest.approx(value, rel=1e-9, abs=floor), (name, i)
