"""Prices: textbook examples, parity, bounds, accuracy in the wings, shapes and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strikechain import pricing as px
from tests.pricing.reference import bsm_price, price_condition, relative_error

EPS = float(np.finfo(np.float64).eps)


def test_hull_example() -> None:
    """Hull, Options, Futures and Other Derivatives: S=42, K=40, r=10%, sigma=20%, T=0.5."""
    assert px.bsm(42.0, 40.0, 0.5, 0.2, 0.1) == pytest.approx(4.7594, abs=5e-5)
    assert px.bsm(42.0, 40.0, 0.5, 0.2, 0.1, call=False) == pytest.approx(0.8086, abs=5e-5)


@pytest.mark.parametrize(
    ("args", "call", "expected"),
    [
        # Haug, The Complete Guide to Option Pricing Formulas: generalized BSM, b = r - q.
        ((75.0, 70.0, 0.5, 0.35, 0.10, 0.05), False, 4.0870),
        # Merton with a dividend yield q = 5%: S=100, K=95, T=0.5, r=10%, sigma=20%.
        ((100.0, 95.0, 0.5, 0.20, 0.10, 0.05), False, 2.4648),
    ],
)
def test_haug_generalized_examples(args: tuple[float, ...], call: bool, expected: float) -> None:
    assert px.bsm(*args, call=call) == pytest.approx(expected, abs=5e-5)


def test_haug_black76_example() -> None:
    """Haug: F=19, K=19, T=0.75, r=10%, sigma=28%: call = put = 1.7011."""
    assert px.black76(19.0, 19.0, 0.75, 0.28, 0.10) == pytest.approx(1.7011, abs=5e-5)
    assert px.black76(19.0, 19.0, 0.75, 0.28, 0.10, call=False) == pytest.approx(1.7011, abs=5e-5)


def test_bsm_with_zero_carry_is_black76() -> None:
    rng = np.random.default_rng(1)
    F, K = rng.uniform(50, 150, 100), rng.uniform(50, 150, 100)
    T, v, r = rng.uniform(0.01, 3, 100), rng.uniform(0.05, 1, 100), rng.uniform(-0.02, 0.1, 100)
    np.testing.assert_array_equal(px.bsm(F, K, T, v, r, 0.0), px.black76(F, K, T, v, r))


options = st.tuples(
    st.floats(min_value=1.0, max_value=1e5),  # spot
    st.floats(min_value=0.2, max_value=5.0),  # strike / spot
    st.floats(min_value=1e-4, max_value=5.0),  # expiry
    st.floats(min_value=0.01, max_value=3.0),  # vol
    st.floats(min_value=-0.05, max_value=0.2),  # rate
    st.floats(min_value=-0.2, max_value=0.2),  # carry
)


@given(options)
def test_put_call_parity(option: tuple[float, ...]) -> None:
    spot, moneyness, expiry, vol, rate, carry = option
    strike = spot * moneyness
    call = px.bsm(spot, strike, expiry, vol, rate, carry)
    put = px.bsm(spot, strike, expiry, vol, rate, carry, call=False)
    parity = spot * np.exp((carry - rate) * expiry) - strike * np.exp(-rate * expiry)
    assert call - put == pytest.approx(parity, rel=1e-12, abs=1e-12 * max(spot, strike))


@given(options, st.booleans())
def test_price_within_no_arbitrage_bounds(option: tuple[float, ...], call: bool) -> None:
    spot, moneyness, expiry, vol, rate, carry = option
    strike = spot * moneyness
    price = px.bsm(spot, strike, expiry, vol, rate, carry, call=call)
    forward, discount = spot * np.exp(carry * expiry), np.exp(-rate * expiry)
    intrinsic = discount * max((forward - strike) if call else (strike - forward), 0.0)
    upper = discount * (forward if call else strike)
    assert intrinsic * (1 - 1e-12) <= price <= upper * (1 + 1e-12)


def test_wing_prices_keep_full_relative_accuracy() -> None:
    """Far out of the money, tiny expiries and tiny vols: still ~1e-14 relative (conditioned)."""
    cases = [
        (100.0, 150.0, 1.0 / 365, 0.3, 0.0, 0.0, True),  # 1 day, far OTM call
        (100.0, 60.0, 0.02, 0.5, 0.01, 0.0, False),  # far OTM put
        (100.0, 100.2, 1e-6, 0.2, 0.0, 0.0, True),  # half a minute to expiry
        (100.0, 100.5, 1.0, 1e-3, 0.0, 0.0, True),  # vanishing vol
        (1.0, 3.0, 2.0, 0.4, 0.03, 0.01, True),  # 9 standard deviations
    ]
    for spot, strike, expiry, vol, rate, carry, call in cases:
        price = px.bsm(spot, strike, expiry, vol, rate, carry, call=call)
        reference = bsm_price(spot, strike, expiry, vol, rate, carry, call)
        condition = price_condition(spot, strike, expiry, vol, rate, carry, call)
        assert relative_error(price, reference) <= 4 * EPS * condition, (spot, strike, expiry)
        assert price > 0.0


def test_random_grid_against_reference() -> None:
    rng = np.random.default_rng(7)
    n = 300
    spot = np.full(n, 100.0)
    expiry = np.exp(rng.uniform(np.log(1 / 8760), np.log(3), n))
    vol = rng.uniform(0.05, 1.5, n)
    strike = spot * np.exp(rng.uniform(-8, 8, n) * vol * np.sqrt(expiry))
    rate, carry = rng.uniform(-0.01, 0.08, n), rng.uniform(-0.05, 0.08, n)
    call = rng.uniform(size=n) < 0.5
    prices = px.bsm(spot, strike, expiry, vol, rate, carry, call=call)
    for i in range(n):
        reference = bsm_price(spot[i], strike[i], expiry[i], vol[i], rate[i], carry[i], call[i])
        args = (spot[i], strike[i], expiry[i], vol[i], rate[i], carry[i], bool(call[i]))
        assert relative_error(prices[i], reference) <= 4 * EPS * price_condition(*args), i


def test_shapes_broadcast_and_scalars_stay_scalars() -> None:
    assert isinstance(px.bsm(100.0, 100.0, 1.0, 0.2), float)
    strikes = np.array([[90.0, 100.0, 110.0]])
    vols = np.array([[0.1], [0.2]])
    prices = px.bsm(100.0, strikes, 1.0, vols, 0.01, call=np.array([True, False, True]))
    assert prices.shape == (2, 3)
    assert prices[1, 1] == px.bsm(100.0, 100.0, 1.0, 0.2, 0.01, call=False)
    assert px.bsm(np.zeros((0,)) + 100.0, 100.0, 1.0, 0.2).shape == (0,)


def test_chunked_and_single_evaluation_agree_bitwise() -> None:
    rng = np.random.default_rng(3)
    n = 70_001  # more than two chunks
    strike = rng.uniform(50, 200, n)
    vol = rng.uniform(0.05, 2.0, n)
    prices = px.bsm(100.0, strike, 0.25, vol, 0.02)
    for i in (0, 32767, 32768, 65536, n - 1):
        assert prices[i] == px.bsm(100.0, strike[i], 0.25, vol[i], 0.02)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"vol": -0.2}, "INVALID_VOLATILITY"),
        ({"vol": 0.0}, "INVALID_VOLATILITY"),
        ({"vol": float("nan")}, "INVALID_VOLATILITY"),
        ({"expiry": 0.0}, "INVALID_EXPIRY"),
        ({"expiry": -1.0}, "INVALID_EXPIRY"),
        ({"strike": 0.0}, "INVALID_STRIKE"),
        ({"spot": -5.0}, "INVALID_SPOT"),
        ({"spot": float("inf")}, "INVALID_SPOT"),
        ({"rate": float("nan")}, "INVALID_RATE"),
        ({"carry": float("inf")}, "INVALID_CARRY"),
        ({"vol": "abc"}, "INVALID_NUMBER"),
        ({"call": 1}, "INVALID_CALL_FLAG"),
        ({"strike": np.ones(3), "vol": np.full(2, 0.2)}, "SHAPE_MISMATCH"),
    ],
)
def test_bad_input_raises_typed_error(kwargs: dict[str, object], code: str) -> None:
    args: dict[str, object] = {
        "spot": 100.0,
        "strike": 100.0,
        "expiry": 1.0,
        "vol": 0.2,
        "rate": 0.01,
        "carry": 0.0,
    }
    call = kwargs.pop("call", True)
    args.update(kwargs)
    with pytest.raises(px.PricingError) as info:
        px.bsm(**args, call=call)  # type: ignore[arg-type]
    assert info.value.code == code
    assert code in str(info.value)


def test_error_names_the_offending_element() -> None:
    with pytest.raises(px.PricingError, match=r"element 2 of 4"):
        px.black76(100.0, 100.0, 1.0, np.array([0.2, 0.3, -0.1, 0.2]))
