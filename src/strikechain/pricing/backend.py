"""The elementary functions the pricing formulas are written against, in two modes.

Every formula in :mod:`strikechain.pricing` is written once, against the small :class:`Backend`
interface below, and runs in two modes:

- :data:`FAST`: NumPy's and SciPy's vectorized libm-grade functions. Fastest, accurate to an ulp
  or so, but the last bit of ``np.exp``/``np.log`` depends on the CPU's SIMD target and the NumPy
  build, so results are not reproducible across machines.
- :data:`DETERMINISTIC`: :mod:`strikechain.pricing.detmath`, built only from correctly rounded
  IEEE operations, so every result is bit-identical on every machine. The venue's risk engine
  uses this mode for anything that decides state.

The formulas themselves use only ``+ - * /``, ``sqrt``, comparisons and selections besides the
backend's functions, so a formula run on the deterministic backend is deterministic as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.special as sc

from strikechain.pricing import detmath
from strikechain.pricing._types import FloatArray


class _Unary(Protocol):
    def __call__(self, x: FloatArray, /) -> FloatArray: ...


@dataclass(frozen=True, slots=True)
class Backend:
    """The transcendental functions a pricing formula may call.

    ``mills(z)`` is the Mills ratio ``Phi(-z) / phi(z)`` of the standard normal distribution,
    the scaled complementary error function in the normalization the Black formula needs.
    """

    name: str
    exp: _Unary
    log: _Unary
    mills: _Unary
    ndtri: _Unary
    cbrt: _Unary


def _np_exp(x: FloatArray) -> FloatArray:
    return np.exp(x)


def _np_log(x: FloatArray) -> FloatArray:
    return np.log(x)


def _np_cbrt(x: FloatArray) -> FloatArray:
    return np.cbrt(x)


def _scipy_ndtri(p: FloatArray) -> FloatArray:
    out: FloatArray = sc.ndtri(p)
    return out


FAST = Backend(
    name="fast", exp=_np_exp, log=_np_log, mills=detmath.mills, ndtri=_scipy_ndtri, cbrt=_np_cbrt
)
"""NumPy's exp/log/cbrt and SciPy's ndtri. The Mills ratio is detmath's in both modes: it is
deterministic anyway, about twice as fast as ``scipy.special.erfcx`` and accurate to 1.3 ulp."""
DETERMINISTIC = Backend(
    name="deterministic",
    exp=detmath.exp,
    log=detmath.log,
    mills=detmath.mills,
    ndtri=detmath.ndtri,
    cbrt=detmath.cbrt,
)
