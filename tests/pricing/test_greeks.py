"""Analytic Greeks against central finite differences, and the textbook values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from strikechain import pricing as px

CASES = [
    # spot, strike, expiry, vol, rate, carry
    (42.0, 40.0, 0.5, 0.2, 0.1, 0.1),
    (100.0, 130.0, 0.05, 0.6, 0.03, 0.0),
    (100.0, 70.0, 2.0, 0.3, 0.05, 0.02),
    (1.0, 1.0, 1.0, 1.5, -0.01, 0.04),
    (100.0, 160.0, 0.02, 0.8, 0.01, 0.01),  # ~ 7 standard deviations out
    (3000.0, 2900.0, 1 / 365, 0.5, 0.05, -0.03),  # one day
]


def _bsm(args: tuple[float, ...], call: bool, **bump: float) -> float:
    spot, strike, expiry, vol, rate, carry = args
    return px.bsm(
        spot + bump.get("spot", 0.0),
        strike,
        expiry + bump.get("expiry", 0.0),
        vol + bump.get("vol", 0.0),
        rate + bump.get("rate", 0.0),
        carry + bump.get("rate", 0.0),  # rho holds the dividend yield q = r - b
        call=call,
    )


def _central(f, step: float) -> float:  # type: ignore[no-untyped-def]
    return (f(step) - f(-step)) / (2.0 * step)


@pytest.mark.parametrize(("case", "call"), list(itertools.product(CASES, [True, False])))
def test_bsm_greeks_match_finite_differences(case: tuple[float, ...], call: bool) -> None:
    spot, strike, expiry, vol, rate, carry = case
    g = px.bsm_greeks(*case, call=call)
    scale = g.price + 1e-12 * spot  # tolerance floor where the price itself is tiny
    d_spot, d_vol, d_time, d_rate = spot * 1e-5, vol * 1e-5, expiry * 1e-5, 1e-6

    assert g.price == px.bsm(*case, call=call)
    assert g.delta == pytest.approx(
        _central(lambda h: _bsm(case, call, spot=h), d_spot), rel=1e-6, abs=1e-7 * scale / spot
    )
    assert g.vega == pytest.approx(
        _central(lambda h: _bsm(case, call, vol=h), d_vol), rel=1e-6, abs=1e-7 * scale
    )
    assert g.theta == pytest.approx(
        -_central(lambda h: _bsm(case, call, expiry=h), d_time), rel=1e-6, abs=1e-7 * scale / expiry
    )
    assert g.rho == pytest.approx(
        _central(lambda h: _bsm(case, call, rate=h), d_rate), rel=1e-6, abs=1e-7 * scale
    )

    def greeks(**bump: float) -> px.Greeks[float]:
        return px.bsm_greeks(
            spot + bump.get("spot", 0.0),
            strike,
            expiry,
            vol + bump.get("vol", 0.0),
            rate,
            carry,
            call=call,
        )

    gamma = _central(lambda h: greeks(spot=h).delta, d_spot)
    vanna = _central(lambda h: greeks(vol=h).delta, d_vol)
    volga = _central(lambda h: greeks(vol=h).vega, d_vol)
    assert g.gamma == pytest.approx(gamma, rel=1e-6, abs=1e-7 * scale / spot**2)
    assert g.vanna == pytest.approx(vanna, rel=1e-6, abs=1e-7 * scale / spot)
    assert g.volga == pytest.approx(volga, rel=1e-6, abs=1e-7 * scale)
    # Second-order Greeks also against second differences of the price itself.
    second = (
        _bsm(case, call, spot=d_spot * 10) - 2 * g.price + _bsm(case, call, spot=-d_spot * 10)
    ) / (d_spot * 10) ** 2
    assert g.gamma == pytest.approx(second, rel=1e-3, abs=1e-5 * scale / spot**2)


@pytest.mark.parametrize("call", [True, False])
def test_black76_greeks_are_forward_sensitivities(call: bool) -> None:
    F, K, T, v, r = 19.0, 21.0, 0.75, 0.28, 0.10
    g = px.black76_greeks(F, K, T, v, r, call=call)
    d = 1e-5

    def price(dF: float = 0.0, dT: float = 0.0, dv: float = 0.0, dr: float = 0.0) -> float:
        return px.black76(F + dF, K, T + dT, v + dv, r + dr, call=call)

    assert g.delta == pytest.approx((price(dF=d) - price(dF=-d)) / (2 * d), rel=1e-7)
    assert g.vega == pytest.approx((price(dv=d) - price(dv=-d)) / (2 * d), rel=1e-7)
    assert g.theta == pytest.approx(-(price(dT=d) - price(dT=-d)) / (2 * d), rel=1e-6)
    assert g.rho == pytest.approx(-T * g.price, rel=1e-12)  # the forward is held
    assert g.rho == pytest.approx((price(dr=d) - price(dr=-d)) / (2 * d), rel=1e-6)
    gamma = (
        px.black76_greeks(F + d, K, T, v, r, call=call).delta
        - px.black76_greeks(F - d, K, T, v, r, call=call).delta
    ) / (2 * d)
    assert g.gamma == pytest.approx(gamma, rel=1e-6)


def test_hull_greeks() -> None:
    """Hull's worked example (S=49, K=50, r=5%, sigma=20%, T=0.3846): delta 0.522, gamma 0.066,
    vega 12.1 (per 1.00 of vol), theta -4.31 per year, rho 8.91 (per 1.00 of rate)."""
    g = px.bsm_greeks(49.0, 50.0, 0.3846, 0.2, 0.05)
    assert g.delta == pytest.approx(0.522, abs=5e-4)
    assert g.gamma == pytest.approx(0.066, abs=5e-4)
    assert g.vega == pytest.approx(12.1, abs=0.05)
    assert g.theta == pytest.approx(-4.31, abs=0.005)
    assert g.rho == pytest.approx(8.91, abs=0.005)


def test_put_call_relations() -> None:
    args = (100.0, 110.0, 0.7, 0.35, 0.04, 0.01)
    c, p = px.bsm_greeks(*args), px.bsm_greeks(*args, call=False)
    growth = np.exp((args[5] - args[4]) * args[2])
    assert c.delta - p.delta == pytest.approx(growth, rel=1e-14)
    for name in ("gamma", "vega", "vanna", "volga"):
        assert getattr(c, name) == pytest.approx(getattr(p, name), rel=1e-13)


def test_array_greeks_match_scalar_greeks() -> None:
    strikes = np.array([60.0, 100.0, 140.0])
    g = px.bsm_greeks(100.0, strikes, 0.5, 0.3, 0.02, call=np.array([False, True, True]))
    assert g.delta.shape == (3,)
    for i, (k, c) in enumerate(zip(strikes, [False, True, True], strict=True)):
        single = px.bsm_greeks(100.0, float(k), 0.5, 0.3, 0.02, call=c)
        for name, value in single.as_dict().items():
            assert getattr(g, name)[i] == value


def test_deep_wing_greeks_are_finite_and_signed() -> None:
    g = px.bsm_greeks(100.0, np.array([40.0, 300.0]), 0.01, 0.3, 0.0, call=np.array([False, True]))
    for name, values in g.as_dict().items():
        assert np.all(np.isfinite(values)), name
    assert np.all(g.price > 0)
    assert np.all(g.gamma > 0)
    assert np.all(g.vega > 0)
    assert g.delta[0] < 0 < g.delta[1]


def test_a_subset_of_greeks_matches_the_full_set_bit_for_bit() -> None:
    strikes = np.array([60.0, 100.0, 140.0])
    full = px.bsm_greeks(100.0, strikes, 0.5, 0.3, 0.02, 0.01)
    for subset in (("delta",), ("price", "theta"), ("vanna", "rho"), ("gamma", "volga")):
        part = px.bsm_greeks(100.0, strikes, 0.5, 0.3, 0.02, 0.01, greeks=subset)
        assert list(part.as_dict()) == [n for n in px.GREEK_NAMES if n in subset]
        for name in subset:
            np.testing.assert_array_equal(getattr(part, name), getattr(full, name))
    black = px.black76_greeks(100.0, strikes, 0.5, 0.3, 0.02, greeks=("theta", "rho"))
    np.testing.assert_array_equal(black.rho, px.black76_greeks(100.0, strikes, 0.5, 0.3, 0.02).rho)


def test_reading_an_unrequested_greek_raises() -> None:
    g = px.bsm_greeks(100.0, 100.0, 1.0, 0.2, greeks=("delta",))
    with pytest.raises(px.PricingError) as info:
        _ = g.gamma
    assert info.value.code == "GREEK_NOT_COMPUTED"


@pytest.mark.parametrize("greeks", [("delta", "charm"), ()])
def test_unknown_or_empty_greek_names_are_rejected(greeks: tuple[str, ...]) -> None:
    with pytest.raises(px.PricingError) as info:
        px.bsm_greeks(100.0, 100.0, 1.0, 0.2, greeks=greeks)
    assert info.value.code == "UNKNOWN_GREEK"
