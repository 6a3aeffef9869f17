"""Agents' fair values: a parametric smile and Black-76 on the reference, vectorized per set of
options.

The smile (:func:`smile_vol`) is ``vol(k) = atm * (1 + skew * k + curvature * k^2)`` at
log-moneyness ``k = ln(K / F)``, floored at :data:`MIN_VOL`: the same shape for every expiry. A
market maker prices with its own; an oracle reporter draws its quotes from the "true" one.

:class:`OptionSet` holds a set of options' strikes, expiries and flags as arrays, built once;
:meth:`OptionSet.values` prices all of them in one call of the pricing library's deterministic
mode (prices, deltas and vegas bit-identical on every machine, so a lab run is too), which costs
about half a millisecond whatever the set's size up to hundreds: call it when quotes are
renewed, never per market-data message. The forward is the reference (USDC-margined options,
zero rates, as the venue marks them).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from strikechain.engine.oracle import NANOS_PER_YEAR
from strikechain.pricing import deterministic, detmath
from strikechain.sim.agents.grid import InstrumentGrid

FloatArray = npt.NDArray[np.float64]
MIN_VOL: Final = 0.01
"""1% a year: the floor of a parametric smile far in the wings."""


def smile_vol(atm: float, skew: float, curvature: float, k: FloatArray) -> FloatArray:
    """``atm * (1 + skew k + curvature k^2)`` at log-moneyness ``k``, at least :data:`MIN_VOL`."""
    out: FloatArray = np.maximum(atm * (1.0 + skew * k + curvature * k * k), MIN_VOL)
    return out


class OptionValues:
    """Per option of a set: price (USDC per unit), delta (per unit) and vega (USDC per unit per
    1.00 of vol), as Python lists; options expiring within ``min_expiry_ns`` are NaN."""

    __slots__ = ("delta", "price", "vega")

    def __init__(self, price: list[float], delta: list[float], vega: list[float]) -> None:
        self.price = price
        self.delta = delta
        self.vega = vega


class OptionSet:
    """Options' fields as arrays, for one vectorized valuation."""

    __slots__ = ("_calls", "_expiries", "_strikes", "min_expiry_ns")

    def __init__(self, options: list[InstrumentGrid], min_expiry_ns: int) -> None:
        self._strikes = np.asarray([o.strike_usdc for o in options], dtype=np.float64)
        self._expiries = np.asarray([o.expiry_ns for o in options], dtype=np.int64)
        self._calls = np.asarray([o.is_call for o in options], dtype=np.bool_)
        self.min_expiry_ns = min_expiry_ns

    def values(
        self, forward: float, now_ns: int, atm: float, skew: float, curvature: float
    ) -> OptionValues:
        """Black-76 at ``forward`` with the smile ``(atm, skew, curvature)`` at ``now_ns``."""
        left_ns = self._expiries - now_ns
        live = left_ns >= self.min_expiry_ns
        years = np.where(live, left_ns, NANOS_PER_YEAR).astype(np.float64) / NANOS_PER_YEAR
        k = detmath.log(self._strikes / forward)
        vol = smile_vol(atm, skew, curvature, k)
        greeks = deterministic.black76_greeks(
            forward, self._strikes, years, vol, call=self._calls, greeks=("price", "delta", "vega")
        )
        nan = np.nan
        return OptionValues(
            np.where(live, greeks.price, nan).tolist(),
            np.where(live, greeks.delta, nan).tolist(),
            np.where(live, greeks.vega, nan).tolist(),
        )
