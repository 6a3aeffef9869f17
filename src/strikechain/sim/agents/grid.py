"""What agents precompute once so that their handlers stay cheap: an instrument's grid as floats
(:class:`InstrumentGrid`), batched random draws (:class:`Draws`), and which way a fill moved an
account (:func:`fill_side`); and :data:`BPS`, the basis point every agent's parameters are in.

An agent decides in floats (USDC per unit, units of the underlying) and sends integers: a quote
price becomes ticks here, with the rounding named by the method (a bid is floored, an ask is
ceiled: a quote never crosses its own fair value by a rounding). These are the agent's choices,
not venue state; only ``+ - * /`` and ``floor``/``ceil`` are used, so they are the same on every
machine.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from strikechain.engine.events import Fill
from strikechain.engine.instruments import Instrument, OptionType
from strikechain.pricing import _detmath_coefficients as _coef
from strikechain.pricing import detmath

DRAWS_PER_REFILL: Final = 512
BPS: Final = 1e-4
"""One basis point, as a fraction."""


class InstrumentGrid:
    """One instrument's tick and lot as floats, and its option fields."""

    __slots__ = (
        "expiry_ns",
        "inverse_tick",
        "is_call",
        "is_option",
        "name",
        "strike_usdc",
        "tick_usdc",
        "underlying",
        "units_per_lot",
    )

    def __init__(self, instrument: Instrument) -> None:
        self.name = instrument.name
        self.underlying = instrument.underlying
        self.tick_usdc = float(instrument.tick_size)
        self.inverse_tick = 1.0 / self.tick_usdc
        self.units_per_lot = float(instrument.lot_size * instrument.contract_size)
        """Units of the underlying in one lot (BTC per lot)."""
        self.is_option = instrument.is_option
        self.is_call = instrument.option_type == OptionType.CALL
        self.strike_usdc = float(instrument.strike_ticks * instrument.tick_size)
        self.expiry_ns = instrument.expiry_ns

    def bid_ticks(self, price_usdc: float) -> int:
        """The highest tick at or below ``price_usdc`` (FLOOR)."""
        return math.floor(price_usdc * self.inverse_tick)

    def ask_ticks(self, price_usdc: float) -> int:
        """The lowest tick at or above ``price_usdc`` (CEIL)."""
        return math.ceil(price_usdc * self.inverse_tick)

    def through_ticks(self, price_usdc: float, side: int, bps: float) -> int:
        """A taker's limit ``bps`` through ``price_usdc`` on ``side``: above it for a buy (CEIL),
        below it for a sell (FLOOR)."""
        limit = price_usdc * (1.0 + side * bps * BPS)
        return self.ask_ticks(limit) if side > 0 else self.bid_ticks(limit)

    def price_usdc(self, ticks: int) -> float:
        return ticks * self.tick_usdc

    def lots(self, units: float) -> int:
        """Whole lots in ``units`` of the underlying (FLOOR, after forgiving the float
        division's last bits: 1.0 / 0.001 is 1,000 lots, not 999)."""
        return math.floor(units / self.units_per_lot * (1.0 + 1e-12))


def fill_side(fill: Fill, account: str) -> int:
    """+1 if ``account`` bought in ``fill``, -1 if it sold, 0 if it was not a party (or both)."""
    if fill.taker_account == account:
        return 0 if fill.maker_account == account else fill.taker_side
    if fill.maker_account == account:
        return -fill.taker_side
    return 0


def _floats(text: str) -> list[float]:
    return [float.fromhex(word) for word in text.split()]


_LN2_HI: Final = float.fromhex(_coef.LN2_HI)
_LN2_LO: Final = float.fromhex(_coef.LN2_LO)
_LOG_CELLS: Final = float(1 << _coef.LOG_TABLE_BITS)
_LOG_FIRST_CELL: Final = _LOG_CELLS / 2
_LOG_INVC: Final = _floats(_coef.LOG_INVC)
_LOG_T_HI: Final = _floats(_coef.LOG_T_HI)
_LOG_T_LO: Final = _floats(_coef.LOG_T_LO)
_LOG_POLY: Final = _floats(_coef.LOG_POLY)
_LOG_LAST_CELL: Final = len(_LOG_INVC) - 1
_LOG1P_DIRECT: Final = 2.0**-10
_LOG_SPLIT: Final = 3.0 * 2.0**15
_frexp: Final = math.frexp
"""A static of the compiled module: ``math.frexp`` is an attribute lookup on the module per call."""


def _round_half_even(x: float) -> float:
    """``float(round(x))`` for finite ``x >= 0``, bit for bit: compiled, the builtin ``round``
    is a lookup in the builtins and a call (``x - floor(x)`` is exact, so the tie test is)."""
    whole = float(math.floor(x))
    part = x - whole
    if part > 0.5 or (part == 0.5 and whole % 2.0 == 1.0):
        return whole + 1.0
    return whole


def _horner(x: float) -> float:
    poly = _LOG_POLY
    acc = x * poly[-1] + poly[-2]
    for position in range(len(poly) - 3, -1, -1):
        acc = acc * x + poly[position]
    return acc


def exponential_of_uniform(uniform: float) -> float:
    """``-log1p(-uniform)`` for ``uniform`` in ``[0, 1)``: one element of
    ``-detmath.log1p(-uniforms)``, bit for bit (the same operations on the same doubles, in the
    same order; tested against it), without a NumPy call per element."""
    x = -uniform
    if not -1.0 < x <= 0.0:
        return float(-detmath.log1p(x))
    if -x < _LOG1P_DIRECT:
        return -(x + x * x * _horner(x))
    # detmath's _log_positive(1 + x, lost / (1 + x)), for -1 < x <= 0 (big = 1, little = x)
    u = 1.0 + x
    extra = (x - (u - 1.0)) / u
    m, e = _frexp(u)
    k = _round_half_even(m * _LOG_CELLS)
    cell = min(max(int(k - _LOG_FIRST_CELL), 0), _LOG_LAST_CELL)
    c = k * (1.0 / _LOG_CELLS)
    d = m - c
    d_hi = (d + _LOG_SPLIT) - _LOG_SPLIT
    invc = _LOG_INVC[cell]
    r_hi = d_hi * invc
    r_lo = (d - d_hi) * invc + (c * invc - 1.0)
    r = r_hi + r_lo
    r_err = (r_hi - r) + r_lo
    ef = float(e)
    a = ef * _LN2_HI + _LOG_T_HI[cell]
    hi = a + r
    lo = r - (hi - a)
    tiny = ((ef * _LN2_LO + _LOG_T_LO[cell]) + extra) + r_err
    return -(hi + ((tiny + lo) + r * r * _horner(r)))


class Draws:
    """Draws from one generator, made :data:`DRAWS_PER_REFILL` at a time (a NumPy call per draw
    costs about a microsecond; a list pop a few tens of nanoseconds). Each kind has its own
    buffer; the generator's sequence depends only on the order of the calls.

    Exponentials are ``-log1p(-U)`` through the pricing library's deterministic ``log1p`` (as
    the network's jitter is; :func:`exponential_of_uniform`, its scalar form), so arrival times
    are the same on every machine."""

    __slots__ = ("_exponential", "_normal", "_rng", "_uniform")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._uniform: list[float] = []
        self._exponential: list[float] = []
        self._normal: list[float] = []

    def uniform(self) -> float:
        """Uniform on ``[0, 1)``."""
        if not self._uniform:
            self._uniform = self._rng.random(DRAWS_PER_REFILL).tolist()[::-1]
        return self._uniform.pop()

    def exponential(self) -> float:
        """Exponential with mean 1 (its uniforms drawn :data:`DRAWS_PER_REFILL` at a time,
        each transformed when used: most agents use a few dozen of a refill)."""
        if not self._exponential:
            self._exponential = self._rng.random(DRAWS_PER_REFILL).tolist()[::-1]
        return exponential_of_uniform(self._exponential.pop())

    def normal(self) -> float:
        """Standard normal."""
        if not self._normal:
            self._normal = self._rng.standard_normal(DRAWS_PER_REFILL).tolist()[::-1]
        return self._normal.pop()

    def integer(self, low: int, high: int) -> int:
        """Uniform on ``low .. high`` (both included)."""
        return low + math.floor(self.uniform() * (high - low + 1))
