"""The pricing functions in deterministic mode: bit-identical results on every machine.

Same names and signatures as the fast functions in :mod:`strikechain.pricing`, computed with
:mod:`strikechain.pricing.detmath` (exp, log, Mills ratio, inverse normal built only from
correctly rounded ``+ - * /`` and ``sqrt``, exact scaling by powers of two, comparisons and
table lookups) instead of NumPy's and SciPy's CPU-dispatched kernels. Every formula above the
elementary functions is elementwise arithmetic in a fixed order, and no step depends on other
elements of the batch (chunking, region dispatch and the extra Householder steps are decided per
element), so a result depends only on its own inputs.

This is what the venue's risk engine uses for anything that decides state (marks, margin,
liquidation). Golden vectors in ``tests/golden/pricing_deterministic.json`` pin the exact bits
and are checked in CI.

Accuracy against the fast mode: the two modes share every formula and differ only in the last
bits of exp, log, cbrt and the inverse normal (both accurate to about half an ulp). Measured on
200,000 options of the benchmark workload (``strikechain bench pricing``): 99.7-99.8% of prices
and Greeks are bit-identical between the modes; the rest differ by at most 1 ulp (price, delta)
to 5 ulps (volga) at the 99.9th percentile, and by at most 4.3e-14 relative anywhere, which is
within the condition number of the deep-wing prices concerned. Theta and rho, which pass through
zero, can differ by more relative to their own size (1.6e-7 at a zero crossing) but not relative
to their terms. Implied vols meet the same bound as the fast mode, ``8 eps (vol + price/vega)``,
with identical statuses. ``tests/pricing/test_deterministic.py`` checks these bounds on the
golden grid.
"""

from __future__ import annotations

from strikechain.pricing.backend import DETERMINISTIC
from strikechain.pricing.black import Pricer

PRICER = Pricer(DETERMINISTIC)

black76 = PRICER.black76
bsm = PRICER.bsm
black76_greeks = PRICER.black76_greeks
bsm_greeks = PRICER.bsm_greeks
black76_implied_vol = PRICER.black76_implied_vol
bsm_implied_vol = PRICER.bsm_implied_vol

__all__ = [
    "PRICER",
    "black76",
    "black76_greeks",
    "black76_implied_vol",
    "bsm",
    "bsm_greeks",
    "bsm_implied_vol",
]
