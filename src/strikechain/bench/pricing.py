"""``strikechain bench pricing``: Greeks and implied vols on 1,000,000 mixed options.

The workload: expiries log-uniform from one hour to three years, volatilities 5% to 150%,
log-moneyness uniform out to 12 standard deviations either side (``ln(F/K) = m sigma sqrt(T)``,
``|m| <= 12``), calls and puts half and half, rates 0 to 5%, carry equal to the rate. Measured
in the same run:

- strikechain's fast mode and deterministic mode, asked for the same five quantities as the
  reference (price, delta, gamma, vega, theta: ``greeks_per_s``), and for all eight
  (``all_greeks_per_s``, adding rho, vanna and volga);
- a plain NumPy reference: ``ndtr``-based Black-Scholes price, delta, gamma, vega, theta, and a
  safeguarded vectorized Newton iteration for implied vol (accurate near the money, not in the
  far wing, which is the point of the comparison);
- py_vollib_vectorized (Numba-compiled Let's Be Rational; its Greeks are finite differences),
  if the ``bench`` extra is installed, after a warm-up call so that JIT compilation is not timed.

Throughputs are options per second, best of several repeats. Accuracy metrics invert the prices
our own fast mode computes ("priced as given"): ``iv_max_conditioned_error`` is the largest
``|iv - vol| / (eps (vol + price/vega))`` over all options with an OK status, and
``iv_max_abs_error_otm_within_6sd`` the largest absolute error on out-of-the-money options
within 6 standard deviations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import ndtr

from strikechain import pricing
from strikechain.pricing import deterministic

SIZE = 1_000_000
REPEATS = 3
EPSILON = float(np.finfo(np.float64).eps)


def make_options(size: int = SIZE, seed: int = 20261125) -> dict[str, np.ndarray]:
    """The seeded mixed workload described in the module docstring."""
    rng = np.random.default_rng(seed)
    expiry = np.exp(rng.uniform(np.log(1.0 / 8760.0), np.log(3.0), size))
    vol = rng.uniform(0.05, 1.5, size)
    moneyness = rng.uniform(-12.0, 12.0, size)
    rate = rng.uniform(0.0, 0.05, size)
    spot = np.full(size, 100.0)
    forward = spot * np.exp(rate * expiry)
    strike = forward * np.exp(-moneyness * vol * np.sqrt(expiry))
    call = rng.uniform(size=size) < 0.5
    return {
        "spot": spot,
        "strike": strike,
        "expiry": expiry,
        "vol": vol,
        "rate": rate,
        "call": call,
        "moneyness": moneyness,
    }


def _best_rate(function: Callable[[], Any], size: int, repeats: int = REPEATS) -> float:
    return _race({"only": function}, size, repeats)["only"]


def _race(functions: dict[str, Callable[[], Any]], size: int, repeats: int) -> dict[str, float]:
    """Options per second of each function, best of ``repeats``, the runs interleaved.

    Interleaving makes a slow phase of a shared machine hit every contender alike, so the
    ratios the targets are stated in stay meaningful even when the absolute numbers wander.
    """
    best = dict.fromkeys(functions, np.inf)
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: size / seconds for name, seconds in best.items()}


def numpy_reference_greeks(o: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Textbook vectorized Black-Scholes with ``scipy.special.ndtr``: price, delta, gamma,
    vega, theta. Fast, and inaccurate far out of the money (a difference of nearly equal terms)."""
    spot, strike, expiry, vol, rate = o["spot"], o["strike"], o["expiry"], o["vol"], o["rate"]
    sign = np.where(o["call"], 1.0, -1.0)
    sqrt_t = np.sqrt(expiry)
    sd = vol * sqrt_t
    d1 = (np.log(spot / strike) + (rate + 0.5 * vol * vol) * expiry) / sd
    d2 = d1 - sd
    discount = np.exp(-rate * expiry)
    n1, n2 = ndtr(sign * d1), ndtr(sign * d2)
    density = np.exp(-0.5 * d1 * d1) * (1.0 / np.sqrt(2.0 * np.pi))
    price = sign * (spot * n1 - strike * discount * n2)
    delta = sign * n1
    gamma = density / (spot * sd)
    vega = spot * density * sqrt_t
    theta = -spot * density * vol / (2.0 * sqrt_t) - sign * rate * strike * discount * n2
    return price, delta, gamma, vega, theta


def numpy_newton_iv(
    price: np.ndarray, o: dict[str, np.ndarray], iterations: int = 40
) -> np.ndarray:
    """Safeguarded vectorized Newton on the ``ndtr`` price: bracketed, bisection on bad steps."""
    spot, strike, expiry, rate = o["spot"], o["strike"], o["expiry"], o["rate"]
    sign = np.where(o["call"], 1.0, -1.0)
    sqrt_t = np.sqrt(expiry)
    discount = np.exp(-rate * expiry)
    log_moneyness = np.log(spot / strike) + rate * expiry
    low, high = np.full_like(price, 1e-6), np.full_like(price, 10.0)
    vol = np.full_like(price, 0.5)
    active = np.arange(price.size)
    for _ in range(iterations):
        v, t = vol[active], sqrt_t[active]
        sd = v * t
        d1 = log_moneyness[active] / sd + 0.5 * sd
        sgn = sign[active]
        model = sgn * (
            spot[active] * ndtr(sgn * d1)
            - strike[active] * discount[active] * ndtr(sgn * (d1 - sd))
        )
        vega = spot[active] * np.exp(-0.5 * d1 * d1) * t * (1.0 / np.sqrt(2.0 * np.pi))
        diff = model - price[active]
        low[active] = np.where(diff < 0, v, low[active])
        high[active] = np.where(diff >= 0, v, high[active])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = v - diff / vega
        bad = ~((step > low[active]) & (step < high[active]))
        new = np.where(bad, 0.5 * (low[active] + high[active]), step)
        vol[active] = new
        active = active[np.abs(new - v) > 1e-14 * new]
        if not active.size:
            break
    return vol


BENCH_GREEKS = ("price", "delta", "gamma", "vega", "theta")
"""What ``greeks_per_s`` computes, the same quantities as the NumPy reference."""


def _ours(o: dict[str, np.ndarray], mode: Any, greeks: tuple[str, ...] = BENCH_GREEKS) -> Any:
    return mode.bsm_greeks(
        o["spot"], o["strike"], o["expiry"], o["vol"], o["rate"], call=o["call"], greeks=greeks
    )


def _accuracy(o: dict[str, np.ndarray], greeks: Any, result: Any) -> dict[str, float]:
    ok = result.status == pricing.IVStatus.OK
    vol = o["vol"]
    error = np.abs(result.vol - vol)
    conditioned = error[ok] / (EPSILON * (vol[ok] + greeks.price[ok] / greeks.vega[ok]))
    out_of_money = np.where(o["call"], o["moneyness"] < 0, o["moneyness"] > 0)
    within = ok & out_of_money & (np.abs(o["moneyness"]) <= 6.0)
    return {
        "iv_max_abs_error_otm_within_6sd": float(error[within].max()),
        "iv_max_conditioned_error": float(conditioned.max()),
        "iv_ok_share": float(ok.mean()),
        "iv_ill_posed_count": int((result.status == pricing.IVStatus.ILL_POSED).sum()),
    }


def _py_vollib(o: dict[str, np.ndarray], price: np.ndarray) -> dict[str, float]:
    try:
        import py_vollib_vectorized as vv
    except ImportError:  # the bench extra is not installed
        return {}
    flag = np.where(o["call"], "c", "p")
    args = (o["spot"], o["strike"], o["expiry"], o["rate"])
    warm = slice(0, 100)

    def greeks(part: slice = slice(None)) -> None:
        s, k, t, r = (a[part] for a in args)
        vv.vectorized_black_scholes(flag[part], s, k, t, r, o["vol"][part], return_as="numpy")
        vv.get_all_greeks(
            flag[part], s, k, t, r, o["vol"][part], model="black_scholes", return_as="dict"
        )

    def implied(part: slice = slice(None)) -> None:
        s, k, t, r = (a[part] for a in args)
        vv.vectorized_implied_volatility(
            price[part],
            s,
            k,
            t,
            r,
            flag[part],
            model="black_scholes",
            return_as="numpy",
            on_error="ignore",
        )

    greeks(warm)
    implied(warm)
    return {
        "py_vollib_vectorized_greeks_per_s": _best_rate(greeks, SIZE, 2),
        "py_vollib_vectorized_iv_per_s": _best_rate(implied, SIZE, 2),
    }


def run() -> dict[str, float]:
    """All metrics of the pricing benchmark."""
    o = make_options()
    det = deterministic.PRICER
    ours_greeks = _ours(o, pricing, pricing.GREEK_NAMES)
    price = ours_greeks.price

    def implied() -> Any:
        return pricing.bsm_implied_vol(
            price, o["spot"], o["strike"], o["expiry"], o["rate"], call=o["call"]
        )

    greeks = _race(
        {
            "greeks_per_s": lambda: _ours(o, pricing),
            "numpy_reference_greeks_per_s": lambda: numpy_reference_greeks(o),
            "deterministic_greeks_per_s": lambda: _ours(o, det),
            "all_greeks_per_s": lambda: _ours(o, pricing, pricing.GREEK_NAMES),
        },
        SIZE,
        REPEATS + 2,
    )
    metrics: dict[str, float] = {
        **greeks,
        "iv_per_s": _best_rate(implied, SIZE),
        "numpy_newton_iv_per_s": _best_rate(lambda: numpy_newton_iv(price, o), SIZE, 1),
    }
    metrics.update(_py_vollib(o, price))
    metrics.update(_accuracy(o, ours_greeks, implied()))
    metrics["deterministic_slowdown"] = (
        metrics["greeks_per_s"] / metrics["deterministic_greeks_per_s"]
    )
    return metrics
