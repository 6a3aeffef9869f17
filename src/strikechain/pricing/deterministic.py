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

Accuracy against the fast mode: the two modes differ only in the last bits of their elementary
functions, so prices, Greeks and implied vols agree to within a few ulps times the same
condition numbers that bound the fast mode's own error (measured in
``tests/pricing/test_deterministic.py``: see ``MODE_AGREEMENT`` there).
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
