"""strikechain.pricing: option pricing math, independent of the venue.

Black-76 and generalized Black-Scholes-Merton prices, analytic Greeks and implied volatility,
vectorized over NumPy arrays and accurate to the last digits in the wings; raw SVI volatility
surfaces with arbitrage checks; node surfaces interpolated in total variance.

The functions here run in the fast mode (NumPy/SciPy transcendentals).
:mod:`strikechain.pricing.deterministic` offers the same functions with results that are
bit-identical on every machine, for anything that decides state. Volatility surfaces live in
:mod:`strikechain.pricing.svi` (raw SVI fits and arbitrage checks) and
:mod:`strikechain.pricing.surface` (surfaces over expiries, node surfaces); they are imported
on their own because they pull in SciPy's optimizers.

>>> from strikechain import pricing
>>> round(pricing.bsm(42.0, 40.0, 0.5, 0.2, 0.1), 4)  # Hull's example
4.7594
>>> round(pricing.bsm_implied_vol(4.759422392871532, 42.0, 40.0, 0.5, 0.1), 12)
0.2
"""

from strikechain.pricing.backend import FAST, Backend
from strikechain.pricing.black import GREEK_NAMES, Greeks, ImpliedVol, Pricer
from strikechain.pricing.errors import IVStatus, PricingError

_FAST = Pricer(FAST)

black76 = _FAST.black76
bsm = _FAST.bsm
black76_greeks = _FAST.black76_greeks
bsm_greeks = _FAST.bsm_greeks
black76_implied_vol = _FAST.black76_implied_vol
bsm_implied_vol = _FAST.bsm_implied_vol

__all__ = [
    "FAST",
    "GREEK_NAMES",
    "Backend",
    "Greeks",
    "IVStatus",
    "ImpliedVol",
    "Pricer",
    "PricingError",
    "black76",
    "black76_greeks",
    "black76_implied_vol",
    "bsm",
    "bsm_greeks",
    "bsm_implied_vol",
]
