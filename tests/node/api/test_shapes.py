"""The API's unit conversions: the fast path equals the exact Decimal one, value and type."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from strikechain.engine.instruments import Instrument
from strikechain.engine.units import scale_decimal
from strikechain.node.api.shapes import _scaled, amount_of, number, unit_per_lot
from tests.node.test_service import config

STEPS = ("0.5", "0.05", "0.001", "0.01", "5", "0.000001", "2.5", "0.1", "0.0005")


@given(count=st.integers(-(10**15), 10**15), step=st.sampled_from(STEPS))
def test_scaled_is_the_exact_decimal_as_json(count: int, step: str) -> None:
    exact = number(scale_decimal(count, Decimal(step))) if count else 0
    fast = _scaled(count, Decimal(step))
    assert fast == exact
    assert type(fast) is type(exact)


def _perpetuals() -> tuple[Instrument, Instrument]:
    (perpetual,) = config(Path("unused")).listings()
    return perpetual, msgspec.structs.replace(perpetual, lot_size=Decimal("0.5"))


@given(lots=st.integers(0, 10**12))
def test_amounts_are_the_exact_decimal_as_json(lots: int) -> None:
    """``amount_of`` keeps each instrument's lot as a fraction (by instrument, derived again for
    another object of the same name): the same numbers as the Decimal product."""
    first, second = _perpetuals()
    for instrument in (first, second, first):
        exact = number(Decimal(lots) * unit_per_lot(instrument)) if lots else 0
        fast = amount_of(lots, instrument)
        assert fast == exact
        assert type(fast) is type(exact)
