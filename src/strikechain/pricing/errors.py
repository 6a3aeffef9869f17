"""Typed errors and per-element status codes of the pricing library.

Two kinds of failure, as everywhere in strikechain:

- Bad input to a pricing call (a negative volatility, a non-positive expiry, arrays that do not
  broadcast) raises :class:`PricingError` with a stable ``code`` and a message a person can act
  on. Nothing is computed.
- A market price that no volatility explains (below intrinsic value, above the upper bound, or a
  time value lost in the price's own rounding) is an expected outcome of implied-volatility
  inversion. The array API reports it per element with an :class:`IVStatus` code beside a NaN;
  the scalar API raises :class:`PricingError` whose code is the status name.

Codes are part of the public interface: they never change meaning once released.
"""

from __future__ import annotations

import enum


class PricingError(ValueError):
    """Bad input to the pricing library, with a stable machine-readable ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class IVStatus(enum.IntEnum):
    """Outcome of implied-volatility inversion for one option (stored as int8 in arrays)."""

    OK = 0
    """The volatility was found to full attainable accuracy."""
    BELOW_INTRINSIC = 1
    """The price is below the option's discounted intrinsic value: no volatility gives it."""
    ABOVE_MAXIMUM = 2
    """The price reaches the upper bound (discounted forward for a call, strike for a put)."""
    ILL_POSED = 3
    """The time value is within the price's rounding (deep in the money), zero, or subnormal:
    the price no longer determines the volatility."""
    INVALID_INPUT = 4
    """A parameter is not a finite positive number (or the rate is not finite)."""

    @property
    def message(self) -> str:
        """A sentence a person can act on."""
        return _STATUS_MESSAGES[self]


_STATUS_MESSAGES = {
    IVStatus.OK: "implied volatility found",
    IVStatus.BELOW_INTRINSIC: (
        "price is below the discounted intrinsic value; no volatility gives it"
    ),
    IVStatus.ABOVE_MAXIMUM: (
        "price is at or above the upper bound (discounted forward for a call, discounted strike "
        "for a put); no finite volatility gives it"
    ),
    IVStatus.ILL_POSED: (
        "time value is within the rounding of the price (deep in the money), zero or "
        "subnormal; the price does not determine the volatility"
    ),
    IVStatus.INVALID_INPUT: (
        "forward/spot, strike and expiry must be finite and positive, rate and carry finite"
    ),
}
