"""The API's unit conversions: the fast path equals the exact Decimal one, value and type."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from strikechain.engine.units import scale_decimal
from strikechain.node.api.shapes import _scaled, number

STEPS = ("0.5", "0.05", "0.001", "0.01", "5", "0.000001", "2.5", "0.1", "0.0005")


@given(count=st.integers(-(10**15), 10**15), step=st.sampled_from(STEPS))
def test_scaled_is_the_exact_decimal_as_json(count: int, step: str) -> None:
    exact = number(scale_decimal(count, Decimal(step))) if count else 0
    fast = _scaled(count, Decimal(step))
    assert fast == exact
    assert type(fast) is type(exact)
