"""High-precision reference values (mpmath) for the pricing tests.

Inputs are taken as exact binary doubles; every reference is computed with 60 significant
digits, far beyond any cancellation the tests reach, so a reference is exact for our purpose.
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 60


def normalized_black(y: float, s: float) -> mp.mpf:
    """``b(y, s) = e^(y/2) Phi(y/s + s/2) - e^(-y/2) Phi(y/s - s/2)`` for exact ``y``, ``s``."""
    y_, s_ = mp.mpf(y), mp.mpf(s)
    h, t = y_ / s_, s_ / 2
    return mp.e ** (y_ / 2) * mp.ncdf(h + t) - mp.e ** (-y_ / 2) * mp.ncdf(h - t)


def bsm_price(
    spot: float, strike: float, expiry: float, vol: float, rate: float, carry: float, call: bool
) -> mp.mpf:
    """Generalized Black-Scholes-Merton price with exact inputs."""
    S, K, T, v, r, b = (mp.mpf(a) for a in (spot, strike, expiry, vol, rate, carry))
    forward = S * mp.e ** (b * T)
    sd = v * mp.sqrt(T)
    d1 = mp.log(forward / K) / sd + sd / 2
    d2 = d1 - sd
    theta = 1 if call else -1
    return mp.e ** (-r * T) * theta * (forward * mp.ncdf(theta * d1) - K * mp.ncdf(theta * d2))


def relative_error(value: float, reference: mp.mpf) -> float:
    """``|value - reference| / |reference|`` (absolute when the reference is 0)."""
    difference = abs(mp.mpf(value) - reference)
    return float(difference / abs(reference)) if reference != 0 else float(difference)


def price_condition(
    spot: float, strike: float, expiry: float, vol: float, rate: float, carry: float, call: bool
) -> float:
    """How much a relative error of one ulp in each input can move the price, relatively.

    ``1 + (S|dV/dS|(1 + |bT|) + K|dV/dK| + sigma|dV/dsigma|) / V + |rT|``, with ``dV/dK`` from
    Euler's relation ``V = S dV/dS + K dV/dK``. No double-precision method can beat this on
    inputs that are themselves rounded, so accuracy tests are stated relative to it.
    """
    from strikechain import pricing

    g = pricing.bsm_greeks(spot, strike, expiry, vol, rate, carry, call=call)
    dual = (g.price - spot * g.delta) / strike
    spread = spot * abs(g.delta) * (1 + abs(carry * expiry)) + strike * abs(dual)
    return 1.0 + (spread + vol * abs(g.vega)) / g.price + abs(rate * expiry)
