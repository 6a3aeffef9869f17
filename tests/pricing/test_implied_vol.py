"""Implied volatility: round trips to the limit set by the price's rounding, and statuses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strikechain import pricing as px
from strikechain.pricing import IVStatus

EPS = float(np.finfo(np.float64).eps)
LIMIT = 8.0
"""Allowed |error in vol| in units of eps * (vol + price / vega): the issue's accuracy bound."""


def _conditioned_error(
    vol: np.ndarray, solved: np.ndarray, price: np.ndarray, vega: np.ndarray
) -> np.ndarray:
    return np.abs(solved - vol) / (EPS * (vol + price / vega))


def _round_trip(forward, strike, expiry, vol, rate, call):  # type: ignore[no-untyped-def]
    g = px.black76_greeks(forward, strike, expiry, vol, rate, call=call)
    result = px.black76_implied_vol(g.price, forward, strike, expiry, rate, call=call)
    return g, result


def test_issue_grid_log_moneyness_by_total_vol() -> None:
    """log-moneyness in [-3, 3] x sigma sqrt(T) in [1e-3, 3], calls and puts, both sides."""
    x, s = np.meshgrid(np.linspace(-3, 3, 241), np.geomspace(1e-3, 3, 241))
    x, s = x.ravel(), s.ravel()
    for call in (True, False):
        for expiry, rate in ((1.0, 0.0), (0.25, 0.05)):
            forward = 100.0
            strike = forward * np.exp(-x)
            vol = s / np.sqrt(expiry)
            g, result = _round_trip(forward, strike, expiry, vol, rate, call)
            ok = result.status == IVStatus.OK
            # Deep in the money the time value may vanish in the price's rounding: flagged.
            assert np.all(ok | (result.status == IVStatus.ILL_POSED))
            out_of_the_money = np.where(call, x <= 0, x >= 0) & (g.price >= 1e-300 * forward)
            assert np.all(result.status[out_of_the_money] == IVStatus.OK)
            error = _conditioned_error(vol[ok], result.vol[ok], g.price[ok], g.vega[ok])
            assert error.max() <= LIMIT, (call, expiry, float(error.max()))


def test_out_of_the_money_prices_down_to_1e_300_of_the_forward() -> None:
    forward, expiry = 1.0, 1.0
    for x in (-1e-3, -0.05, -0.5, -3.0, -10.0, -40.0):
        s = np.geomspace(abs(x) / 38.5, 30.0, 400)
        strike = forward * np.exp(-x)
        g = px.black76_greeks(forward, strike, expiry, s, call=True)
        keep = (g.price >= 1e-300) & (g.price < forward * (1 - 1e-12))  # below the upper bound
        assert keep.sum() > 300
        result = px.black76_implied_vol(g.price[keep], forward, strike, expiry, call=True)
        assert np.all(result.status == IVStatus.OK)
        error = _conditioned_error(s[keep], result.vol, g.price[keep], g.vega[keep])
        assert error.max() <= LIMIT, (x, float(error.max()))
        assert g.price[keep].min() < 1e-250


@given(
    st.floats(min_value=1e-3, max_value=1e4),  # forward
    st.floats(min_value=-5.0, max_value=5.0),  # standardized moneyness
    st.floats(min_value=1 / 8760, max_value=10.0),  # expiry
    st.floats(min_value=0.01, max_value=4.0),  # vol
    st.booleans(),
)
def test_round_trip_property(
    forward: float, moneyness: float, expiry: float, vol: float, call: bool
) -> None:
    strike = forward * np.exp(moneyness * vol * np.sqrt(expiry))
    g = px.black76_greeks(forward, strike, expiry, vol, 0.01, call=call)
    result = px.black76_implied_vol(
        np.array([g.price]), forward, strike, expiry, 0.01, call=np.array([call])
    )
    if result.status[0] == IVStatus.ILL_POSED:  # only a vanished time value may refuse
        assert (
            g.price
            - max((forward - strike) if call else (strike - forward), 0.0) * np.exp(-0.01 * expiry)
            <= 1e-13 * g.price
        )
        return
    assert result.status[0] == IVStatus.OK
    assert abs(result.vol[0] - vol) <= LIMIT * EPS * (vol + g.price / g.vega)


def test_bsm_scalar_round_trip_hull() -> None:
    price = px.bsm(42.0, 40.0, 0.5, 0.2, 0.1)
    assert px.bsm_implied_vol(price, 42.0, 40.0, 0.5, 0.1) == pytest.approx(0.2, rel=4 * EPS)
    put = px.bsm(42.0, 40.0, 0.5, 0.2, 0.1, call=False)
    assert px.bsm_implied_vol(put, 42.0, 40.0, 0.5, 0.1, call=False) == pytest.approx(
        0.2, rel=4 * EPS
    )


def test_in_the_money_goes_through_parity() -> None:
    """An ITM call and the OTM put of the same strike imply the same vol."""
    spot, strike, expiry, rate, carry, vol = 100.0, 80.0, 0.3, 0.02, -0.01, 0.45
    call = px.bsm(spot, strike, expiry, vol, rate, carry)
    put = px.bsm(spot, strike, expiry, vol, rate, carry, call=False)
    from_call = px.bsm_implied_vol(call, spot, strike, expiry, rate, carry)
    from_put = px.bsm_implied_vol(put, spot, strike, expiry, rate, carry, call=False)
    assert from_put == pytest.approx(vol, rel=4 * EPS)
    assert from_call == pytest.approx(vol, rel=1e-12)


def test_statuses_in_the_array_api() -> None:
    F, K, T, r = 100.0, 90.0, 1.0, 0.05
    D = np.exp(-r * T)
    intrinsic = D * (F - K)
    prices = np.array(
        [
            intrinsic * 0.999,  # below intrinsic
            -1.0,  # negative
            D * F,  # the upper bound for a call
            D * F * 1.01,  # beyond it
            intrinsic * (1 + EPS),  # time value inside the price's rounding
            px.black76(F, K, T, 0.2, r),  # fine
            np.nan,  # not a price
        ]
    )
    result = px.black76_implied_vol(prices, F, K, T, r)
    expected = [
        IVStatus.BELOW_INTRINSIC,
        IVStatus.BELOW_INTRINSIC,
        IVStatus.ABOVE_MAXIMUM,
        IVStatus.ABOVE_MAXIMUM,
        IVStatus.ILL_POSED,
        IVStatus.OK,
        IVStatus.INVALID_INPUT,
    ]
    assert result.status.tolist() == expected
    assert result.status.dtype == np.int8
    assert np.isnan(result.vol[result.status != IVStatus.OK]).all()
    assert result.vol[5] == pytest.approx(0.2, rel=1e-13)
    assert result.ok.tolist() == [s == IVStatus.OK for s in expected]


def test_zero_price_out_of_the_money_is_ill_posed() -> None:
    result = px.black76_implied_vol(np.array([0.0]), 100.0, 120.0, 1.0)
    assert result.status[0] == IVStatus.ILL_POSED


def test_invalid_parameters_are_flagged_per_element() -> None:
    result = px.bsm_implied_vol(
        np.full(4, 5.0),
        np.array([100.0, -1.0, 100.0, 100.0]),
        100.0,
        np.array([1.0, 1.0, 0.0, 1.0]),
    )
    assert result.status.tolist() == [
        IVStatus.OK,
        IVStatus.INVALID_INPUT,
        IVStatus.INVALID_INPUT,
        IVStatus.OK,
    ]


@pytest.mark.parametrize(
    ("price", "kwargs", "code"),
    [
        (0.5, {}, "BELOW_INTRINSIC"),
        (200.0, {}, "ABOVE_MAXIMUM"),
        (float("nan"), {}, "INVALID_PRICE"),
        (5.0, {"strike": -1.0}, "INVALID_STRIKE"),
        (5.0, {"expiry": 0.0}, "INVALID_EXPIRY"),
    ],
)
def test_scalar_api_raises_typed_errors(price: float, kwargs: dict[str, float], code: str) -> None:
    args = {"spot": 100.0, "strike": 95.0, "expiry": 1.0, "rate": 0.0}
    args.update(kwargs)
    with pytest.raises(px.PricingError) as info:
        px.bsm_implied_vol(price, **args)
    assert info.value.code == code


def test_scalar_ill_posed_deep_in_the_money() -> None:
    spot, strike = 100.0, 1.0
    price = px.bsm(spot, strike, 0.1, 0.2)  # time value ~ 1e-300, far below the rounding of 99
    with pytest.raises(px.PricingError) as info:
        px.bsm_implied_vol(price, spot, strike, 0.1)
    assert info.value.code == "ILL_POSED"


def test_shapes() -> None:
    prices = px.bsm(100.0, np.array([[90.0, 110.0]]), 1.0, np.array([[0.2], [0.3]]))
    result = px.bsm_implied_vol(prices, 100.0, np.array([[90.0, 110.0]]), 1.0)
    assert result.vol.shape == (2, 2)
    assert result.status.shape == (2, 2)
    np.testing.assert_allclose(result.vol, [[0.2, 0.2], [0.3, 0.3]], rtol=1e-13)
