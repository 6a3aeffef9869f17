"""Units: the one place where user numbers become the engine's integers, and back.

State holds only integers: prices in ticks of an instrument's ``tick_size``, sizes in lots of
its ``lot_size``, money in USDC minor units (:data:`QUOTE_DECIMALS` = 6) and time in integer
nanoseconds since the Unix epoch. A price is quote currency per unit of the underlying; a
contract is ``contract_size`` units of the underlying, so the notional of ``size_lots`` at
``price_ticks`` is ``price_ticks * tick_size * size_lots * lot_size * contract_size`` USDC.

Invariants
- Exact: every conversion is integer arithmetic on the exact rational value of a ``Decimal``
  (``Decimal.as_integer_ratio``) or builds a ``Decimal`` from a digit string. No float is ever
  multiplied by a scale, and no result depends on the thread's ``decimal`` context, which any
  library may change.
- Never silently rounded: a user's price or size off its grid is rejected
  (``PRICE_NOT_ON_TICK``, ``SIZE_NOT_ON_LOT``), never snapped to it.
- Every rounding is named by the caller (:class:`Rounding`), who picks the direction in the
  venue's favour: ``FLOOR`` for what the venue pays or credits, ``CEIL`` for what it charges or
  requires. Both are mathematical (towards -inf and +inf), also for negative amounts.
- A float input is read through its shortest round-trip ``repr``, so ``0.1`` is ``0.1`` and
  ``0.1 + 0.2`` is ``0.30000000000000004`` (which a tick of 0.1 then rejects).

Limits
- An input number has at most :data:`MAX_INPUT_CHARS` characters (as a string), at most
  :data:`MAX_DIGITS` significant digits and a decimal exponent within +-:data:`MAX_EXPONENT`;
  this bounds the size of every integer computed from it.
- Tick, lot and minor-unit counts produced here fit a signed 64-bit integer
  (:data:`INT64_MAX`); larger values are rejected. Tighter venue limits live elsewhere.
- Strings are plain ASCII decimals (sign, digits, optional point, optional exponent):
  no whitespace, underscores, non-ASCII digits, NaN or infinity.
"""

from __future__ import annotations

import enum
import math
import re
from decimal import Decimal
from typing import Final, Protocol

from strikechain.engine.codes import RejectCode, Rejection

NumberInput = str | int | float | Decimal
"""What a user may send for a number: a decimal string, an int, a float or a ``Decimal``."""

QUOTE_DECIMALS: Final = 6
"""USDC minor units: one USDC is 10**6 minor units."""
QUOTE_SCALE: Final = 10**QUOTE_DECIMALS

INT64_MAX: Final = 2**63 - 1
"""Largest tick, lot or minor-unit count a conversion returns."""
MAX_INPUT_CHARS: Final = 64
MAX_DIGITS: Final = 64
MAX_EXPONENT: Final = 64

NANOS_PER_MICROSECOND: Final = 1_000
NANOS_PER_MILLISECOND: Final = 1_000_000
NANOS_PER_SECOND: Final = 1_000_000_000
NANOS_PER_MINUTE: Final = 60 * NANOS_PER_SECOND
NANOS_PER_HOUR: Final = 60 * NANOS_PER_MINUTE
NANOS_PER_DAY: Final = 24 * NANOS_PER_HOUR

_DECIMAL_STRING: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class Rounding(enum.StrEnum):
    """A rounding direction, always named by the caller (in the venue's favour)."""

    FLOOR = "FLOOR"
    """Towards -inf: for amounts the venue pays out or credits."""
    CEIL = "CEIL"
    """Towards +inf: for amounts the venue charges or requires."""


class ContractSpec(Protocol):
    """What a notional needs of an instrument (``Instrument`` has it); declared here so that
    units does not depend on instruments."""

    @property
    def tick_size(self) -> Decimal: ...

    @property
    def lot_size(self) -> Decimal: ...

    @property
    def contract_size(self) -> Decimal: ...


def to_decimal(value: NumberInput, what: str) -> Decimal:
    """``value`` as an exact finite ``Decimal``; ``what`` names it in the rejection message.

    Raises ``Rejection(INVALID_NUMBER)`` for bools, NaN, infinities, malformed strings, other
    types, and numbers beyond the digit and exponent limits.
    """
    if isinstance(value, bool):
        raise _invalid(what, value, "is a boolean, not a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        if value.bit_length() > 4 * MAX_DIGITS:
            raise _invalid(what, value, f"has more than {MAX_DIGITS} digits")
        result = Decimal(value)
    elif isinstance(value, float):
        result = _float_to_decimal(value, what)
    elif isinstance(value, str):
        result = _string_to_decimal(value, what)
    else:
        raise _invalid(what, value, "is not a number or decimal string")
    _check_finite_and_bounded(result, what)
    return result


def price_to_ticks(value: NumberInput, tick_size: Decimal) -> int:
    """A positive price as a count of ticks; rejected when off the tick grid, never rounded."""
    price = to_decimal(value, "price")
    if price <= 0:
        raise Rejection(RejectCode.PRICE_OUT_OF_RANGE, f"price {price} must be positive")
    ticks = grid_count(price, tick_size)
    if ticks is None:
        message = f"{price} is not a multiple of tick {tick_size}"
        raise Rejection(RejectCode.PRICE_NOT_ON_TICK, message)
    if ticks > INT64_MAX:
        message = f"price {price} is {ticks} ticks, above the maximum of {INT64_MAX}"
        raise Rejection(RejectCode.PRICE_OUT_OF_RANGE, message)
    return ticks


def size_to_lots(value: NumberInput, lot_size: Decimal) -> int:
    """A positive size (in contracts) as a count of lots; rejected when off the lot grid."""
    size = to_decimal(value, "size")
    if size <= 0:
        raise Rejection(RejectCode.SIZE_OUT_OF_RANGE, f"size {size} must be positive")
    lots = grid_count(size, lot_size)
    if lots is None:
        raise Rejection(RejectCode.SIZE_NOT_ON_LOT, f"{size} is not a multiple of lot {lot_size}")
    if lots > INT64_MAX:
        message = f"size {size} is {lots} lots, above the maximum of {INT64_MAX}"
        raise Rejection(RejectCode.SIZE_OUT_OF_RANGE, message)
    return lots


def ticks_to_price(ticks: int, tick_size: Decimal) -> Decimal:
    """The exact price of ``ticks`` ticks, with the tick size's number of decimals."""
    return scale_decimal(ticks, tick_size)


def lots_to_size(lots: int, lot_size: Decimal) -> Decimal:
    """The exact size (in contracts) of ``lots`` lots, with the lot size's number of decimals."""
    return scale_decimal(lots, lot_size)


def quote_to_minor(value: NumberInput, rounding: Rounding) -> int:
    """A USDC amount (any sign) in minor units, rounded as the caller names."""
    amount = to_decimal(value, "amount")
    numerator, denominator = amount.as_integer_ratio()
    minor = divide(numerator * QUOTE_SCALE, denominator, rounding)
    if abs(minor) > INT64_MAX:
        raise _invalid("amount", amount, f"is beyond {INT64_MAX} minor units")
    return minor


def minor_to_quote(minor: int) -> Decimal:
    """Exact USDC of ``minor`` minor units, with six decimals (``1500000`` -> ``1.500000``)."""
    return Decimal(_scientific(minor, -QUOTE_DECIMALS))


def notional_minor(
    price_ticks: int, size_lots: int, instrument: ContractSpec, rounding: Rounding
) -> int:
    """Notional in USDC minor units: price x size x contract size, exact, then rounded once.

    Signed sizes give signed notionals; the rounding stays mathematical (``FLOOR`` of a negative
    notional is further from zero).
    """
    tick_n, tick_d = _positive_ratio(instrument.tick_size, "tick_size")
    lot_n, lot_d = _positive_ratio(instrument.lot_size, "lot_size")
    contract_n, contract_d = _positive_ratio(instrument.contract_size, "contract_size")
    numerator = price_ticks * tick_n * size_lots * lot_n * contract_n * QUOTE_SCALE
    return divide(numerator, tick_d * lot_d * contract_d, rounding)


def seconds_to_ns(seconds: int) -> int:
    return seconds * NANOS_PER_SECOND


def ms_to_ns(milliseconds: int) -> int:
    return milliseconds * NANOS_PER_MILLISECOND


def us_to_ns(microseconds: int) -> int:
    return microseconds * NANOS_PER_MICROSECOND


def divide(numerator: int, denominator: int, rounding: Rounding) -> int:
    """Integer quotient rounded towards -inf (``FLOOR``) or +inf (``CEIL``); denominator > 0."""
    if denominator <= 0:
        raise ValueError(f"denominator must be positive, got {denominator}")
    if rounding is Rounding.FLOOR:
        return numerator // denominator
    return -(-numerator // denominator)


def grid_count(value: Decimal, step: Decimal) -> int | None:
    """How many ``step``s make ``value`` exactly, or None when ``value`` is off the grid."""
    value_n, value_d = value.as_integer_ratio()
    step_n, step_d = _positive_ratio(step, "grid step")
    count, remainder = divmod(value_n * step_d, value_d * step_n)
    return count if remainder == 0 else None


def scale_decimal(count: int, step: Decimal) -> Decimal:
    """``count * step`` exactly, keeping ``step``'s exponent (no context, no rounding)."""
    _positive_ratio(step, "grid step")
    coefficient, exponent = _coefficient_exponent(step)
    return Decimal(_scientific(count * coefficient, exponent))


def plain_decimal(value: Decimal) -> str:
    """Positional notation without trailing fractional zeros: ``1E+5`` -> ``100000``, ``0.50``
    -> ``0.5``. Exact and context-free (``Decimal.normalize`` would round to the context)."""
    coefficient, exponent = _coefficient_exponent(value)
    if abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"exponent of {value} beyond +-{MAX_EXPONENT}")
    while exponent < 0 and coefficient % 10 == 0 and coefficient != 0:
        coefficient //= 10
        exponent += 1
    if coefficient == 0:
        return "0"
    text = str(coefficient * 10**exponent) if exponent >= 0 else _point(coefficient, exponent)
    return "-" + text if value.is_signed() else text


def _coefficient_exponent(value: Decimal) -> tuple[int, int]:
    """The unsigned integer coefficient and exponent of a finite ``Decimal``."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite decimal: {value}")
    return int("".join(map(str, digits))), exponent


def _point(coefficient: int, exponent: int) -> str:
    digits = str(coefficient).rjust(1 - exponent, "0")
    return f"{digits[:exponent]}.{digits[exponent:]}"


def _scientific(coefficient: int, exponent: int) -> str:
    """A string ``Decimal`` reads exactly, whatever its context."""
    return f"{coefficient}E{exponent}"


def _positive_ratio(value: Decimal, what: str) -> tuple[int, int]:
    """The exact ratio of a positive finite grid size. A bad one is a bug, not user input:
    instruments are validated when listed."""
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValueError(f"{what} must be a positive finite Decimal, got {value!r}")
    return value.as_integer_ratio()


def _float_to_decimal(value: float, what: str) -> Decimal:
    if not math.isfinite(value):
        raise _invalid(what, value, "is not finite")
    return Decimal(repr(value))


def _string_to_decimal(value: str, what: str) -> Decimal:
    if len(value) > MAX_INPUT_CHARS:
        raise _invalid(what, value[:MAX_INPUT_CHARS] + "...", "is too long")
    if _DECIMAL_STRING.fullmatch(value) is None:
        raise _invalid(what, value, "is not a decimal number")
    return Decimal(value)


def _check_finite_and_bounded(value: Decimal, what: str) -> None:
    if not value.is_finite():
        raise _invalid(what, value, "is not finite")
    _, digits, exponent = value.as_tuple()
    if len(digits) > MAX_DIGITS:
        raise _invalid(what, value, f"has more than {MAX_DIGITS} significant digits")
    if not isinstance(exponent, int) or not -MAX_EXPONENT <= exponent <= MAX_EXPONENT:
        raise _invalid(what, value, f"has a decimal exponent beyond +-{MAX_EXPONENT}")


def _invalid(what: str, value: object, reason: str) -> Rejection:
    shown = repr(value) if isinstance(value, str) else str(value)
    return Rejection(RejectCode.INVALID_NUMBER, f"{what} {shown} {reason}")
