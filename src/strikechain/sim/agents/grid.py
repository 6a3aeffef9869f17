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


class Draws:
    """Draws from one generator, made :data:`DRAWS_PER_REFILL` at a time (a NumPy call per draw
    costs about a microsecond; a list pop a few tens of nanoseconds). Each kind has its own
    buffer; the generator's sequence depends only on the order of the calls.

    Exponentials are ``-log1p(-U)`` through the pricing library's deterministic ``log1p`` (as
    the network's jitter is), so arrival times are the same on every machine."""

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
        """Exponential with mean 1."""
        if not self._exponential:
            draws = -detmath.log1p(-self._rng.random(DRAWS_PER_REFILL))
            self._exponential = draws.tolist()[::-1]
        return self._exponential.pop()

    def normal(self) -> float:
        """Standard normal."""
        if not self._normal:
            self._normal = self._rng.standard_normal(DRAWS_PER_REFILL).tolist()[::-1]
        return self._normal.pop()

    def integer(self, low: int, high: int) -> int:
        """Uniform on ``low .. high`` (both included)."""
        return low + math.floor(self.uniform() * (high - low + 1))
