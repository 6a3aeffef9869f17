"""Units: exact conversions, rejections with their codes and messages, named roundings."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.instruments import make_perpetual
from strikechain.engine.units import (
    INT64_MAX,
    MAX_INPUT_CHARS,
    NANOS_PER_DAY,
    NANOS_PER_HOUR,
    NANOS_PER_MILLISECOND,
    NANOS_PER_MINUTE,
    NANOS_PER_SECOND,
    QUOTE_DECIMALS,
    Rounding,
    divide,
    grid_count,
    lots_to_size,
    minor_to_quote,
    ms_to_ns,
    notional_minor,
    plain_decimal,
    price_to_ticks,
    quote_to_minor,
    seconds_to_ns,
    size_to_lots,
    ticks_to_price,
    to_decimal,
    us_to_ns,
)

TICK = Decimal("0.1")


def _rejected(code: RejectCode, call: object, *args: object) -> Rejection:
    assert callable(call)
    with pytest.raises(Rejection) as caught:
        call(*args)
    assert caught.value.code == code
    assert str(caught.value) == f"{code}: {caught.value.message}"
    return caught.value


# --- to_decimal -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", Decimal(1)),
        ("-1.5", Decimal("-1.5")),
        ("+2", Decimal(2)),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("1e3", Decimal(1000)),
        ("1E-3", Decimal("0.001")),
        ("1.0005E+2", Decimal("100.05")),
        ("0.000", Decimal(0)),
    ],
)
def test_decimal_strings_are_read_exactly(text: str, expected: Decimal) -> None:
    assert to_decimal(text, "price") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1",
        "1 ",
        "1_000",
        "abc",
        "NaN",
        "nan",
        "inf",
        "-Infinity",
        "sNaN",
        "0x10",
        "\u0661\u0662",
        "\uff11",
        "1e",
        "e3",
        "1.2.3",
        "--1",
        "1,5",
        "1e+-3",
        "Infinity",
    ],
)
def test_malformed_strings_are_invalid_numbers(text: str) -> None:
    rejection = _rejected(RejectCode.INVALID_NUMBER, to_decimal, text, "price")
    assert rejection.message == f"price {text!r} is not a decimal number"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "price True is a boolean, not a number"),
        (False, "price False is a boolean, not a number"),
        (None, "price None is not a number or decimal string"),
        (b"1", "price b'1' is not a number or decimal string"),
        (1 + 2j, "price (1+2j) is not a number or decimal string"),
        (float("nan"), "price nan is not finite"),
        (float("inf"), "price inf is not finite"),
        (float("-inf"), "price -inf is not finite"),
        (Decimal("NaN"), "price NaN is not finite"),
        (Decimal("sNaN"), "price sNaN is not finite"),
        (Decimal("-Infinity"), "price -Infinity is not finite"),
        (Decimal("1E+65"), "price 1E+65 has a decimal exponent beyond +-64"),
        (Decimal("1E-65"), "price 1E-65 has a decimal exponent beyond +-64"),
        (5e-324, "price 5E-324 has a decimal exponent beyond +-64"),
        ("1e999999999", "price 1E+999999999 has a decimal exponent beyond +-64"),
        (Decimal("1" * 65), f"price {'1' * 65} has more than 64 significant digits"),
        (10**80, f"price {10**80} has more than 64 digits"),
    ],
)
def test_non_numbers_and_out_of_bounds_numbers_are_invalid(value: object, message: str) -> None:
    rejection = _rejected(RejectCode.INVALID_NUMBER, to_decimal, value, "price")
    assert rejection.message == message


def test_overlong_strings_are_rejected_before_parsing() -> None:
    text = "1" * (MAX_INPUT_CHARS + 1)
    rejection = _rejected(RejectCode.INVALID_NUMBER, to_decimal, text, "size")
    assert rejection.message == f"size {'1' * MAX_INPUT_CHARS + '...'!r} is too long"
    assert to_decimal("1" * MAX_INPUT_CHARS, "size") == Decimal("1" * MAX_INPUT_CHARS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, "0.1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1 / 3, "0.3333333333333333"),
        (1e22, "1E+22"),
        (100.05, "100.05"),
        (-0.0, "-0.0"),
        (123456789.12345679, "123456789.12345679"),
    ],
)
def test_floats_are_read_through_their_shortest_repr(value: float, expected: str) -> None:
    result = to_decimal(value, "price")
    assert result == Decimal(expected)
    assert str(result) == str(Decimal(expected))


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=1e-30, max_value=1e30))
def test_a_float_reads_back_as_itself(value: float) -> None:
    assert float(to_decimal(value, "price")) == value


# --- prices and sizes -------------------------------------------------------------------------


def test_price_off_tick_is_rejected_with_an_actionable_message() -> None:
    rejection = _rejected(RejectCode.PRICE_NOT_ON_TICK, price_to_ticks, "100.05", TICK)
    assert str(rejection) == "PRICE_NOT_ON_TICK: 100.05 is not a multiple of tick 0.1"


@pytest.mark.parametrize("value", ["100", "100.0", "100.000", 100, 100.0, "1e2", "1000e-1", "1E+2"])
def test_equal_prices_give_equal_ticks(value: str | int | float) -> None:
    assert price_to_ticks(value, TICK) == 1000


def test_float_sums_are_not_rounded_onto_the_grid() -> None:
    rejection = _rejected(RejectCode.PRICE_NOT_ON_TICK, price_to_ticks, 0.1 + 0.2, TICK)
    assert rejection.message == "0.30000000000000004 is not a multiple of tick 0.1"
    assert price_to_ticks(0.3, TICK) == 3
    assert price_to_ticks("0.3", TICK) == 3


@pytest.mark.parametrize(
    ("value", "tick", "ticks"),
    [
        ("0.5", Decimal("0.5"), 1),
        ("100", Decimal("1E+1"), 10),
        ("12.25", Decimal("0.25"), 49),
        ("1.0005E+2", Decimal("0.0001"), 1000500),
        ("0.00000001", Decimal("1E-8"), 1),
        (str(INT64_MAX), Decimal(1), INT64_MAX),
    ],
)
def test_prices_on_unusual_ticks(value: str, tick: Decimal, ticks: int) -> None:
    assert price_to_ticks(value, tick) == ticks


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "price 0 must be positive"),
        ("-0", "price -0 must be positive"),
        (-0.0, "price -0.0 must be positive"),
        (-1, "price -1 must be positive"),
        ("1E+64", f"price 1E+64 is {10**64} ticks, above the maximum of {INT64_MAX}"),
        (str(INT64_MAX + 1), f"price {INT64_MAX + 1} is {INT64_MAX + 1} ticks, above the maximum"),
    ],
)
def test_prices_out_of_range(value: str | int | float, message: str) -> None:
    rejection = _rejected(RejectCode.PRICE_OUT_OF_RANGE, price_to_ticks, value, Decimal(1))
    assert rejection.message.startswith(message)


def test_tiny_prices_are_off_the_grid_not_rounded_to_zero() -> None:
    rejection = _rejected(RejectCode.PRICE_NOT_ON_TICK, price_to_ticks, "1E-64", TICK)
    assert rejection.message == "1E-64 is not a multiple of tick 0.1"


def test_size_rejections() -> None:
    lot = Decimal("0.001")
    rejection = _rejected(RejectCode.SIZE_NOT_ON_LOT, size_to_lots, "0.0015", lot)
    assert str(rejection) == "SIZE_NOT_ON_LOT: 0.0015 is not a multiple of lot 0.001"
    rejection = _rejected(RejectCode.SIZE_OUT_OF_RANGE, size_to_lots, "-0", lot)
    assert rejection.message == "size -0 must be positive"
    rejection = _rejected(RejectCode.SIZE_OUT_OF_RANGE, size_to_lots, "1E+30", lot)
    assert rejection.message == f"size 1E+30 is {10**33} lots, above the maximum of {INT64_MAX}"
    rejection = _rejected(RejectCode.INVALID_NUMBER, size_to_lots, "1 lot", lot)
    assert rejection.message == "size '1 lot' is not a decimal number"
    assert size_to_lots("0.003", lot) == 3


def test_bad_grid_sizes_are_bugs_not_rejections() -> None:
    for tick in (Decimal(0), Decimal(-1), Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValueError, match="grid step must be a positive finite Decimal"):
            price_to_ticks("1", tick)


ticks_strategy = st.integers(min_value=1, max_value=INT64_MAX)
grid_strategy = st.builds(
    lambda coefficient, exponent: Decimal(f"{coefficient}E{exponent}"),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=-12, max_value=6),
)


@given(ticks_strategy, grid_strategy)
def test_ticks_round_trip_through_every_spelling(ticks: int, tick: Decimal) -> None:
    price = ticks_to_price(ticks, tick)
    for spelling in (price, str(price), format(price, "f"), format(price, "E")):
        assert price_to_ticks(spelling, tick) == ticks
    assert lots_to_size(ticks, tick) == price
    assert size_to_lots(str(price), tick) == ticks


@given(ticks_strategy, grid_strategy)
def test_off_grid_by_a_tenth_of_the_last_digit_is_rejected(ticks: int, tick: Decimal) -> None:
    exponent = tick.as_tuple().exponent
    assert isinstance(exponent, int)
    nudged = Decimal(f"{ticks_to_price(ticks, tick)}") + Decimal(f"1E{exponent - 1}")
    _rejected(RejectCode.PRICE_NOT_ON_TICK, price_to_ticks, format(nudged, "f"), tick)


@given(st.integers(min_value=1, max_value=10**15 - 1))
def test_cent_prices_survive_a_float(ticks: int) -> None:
    tick = Decimal("0.01")
    assert price_to_ticks(float(ticks_to_price(ticks, tick)), tick) == ticks


def test_output_keeps_the_grid_exponent() -> None:
    assert str(ticks_to_price(1000, TICK)) == "100.0"
    assert str(lots_to_size(3, Decimal("0.001"))) == "0.003"
    assert ticks_to_price(-5, Decimal("0.5")) == Decimal("-2.5")


def test_conversions_ignore_the_thread_decimal_context() -> None:
    with decimal.localcontext() as context:
        context.prec = 2
        context.rounding = decimal.ROUND_DOWN
        context.traps[decimal.Inexact] = True
        assert price_to_ticks("123456789.123", Decimal("0.001")) == 123456789123
        assert ticks_to_price(123456789123, Decimal("0.001")) == Decimal("123456789.123")
        assert quote_to_minor("123456789.1234567", Rounding.CEIL) == 123456789123457
        assert minor_to_quote(123456789123457) == Decimal("123456789.123457")
        assert plain_decimal(Decimal("123456789.1230")) == "123456789.123"


# --- quote money ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "floor", "ceil"),
    [
        ("1.5", 1_500_000, 1_500_000),
        ("0.0000001", 0, 1),
        ("-0.0000001", -1, 0),
        ("-1.0000005", -1_000_001, -1_000_000),
        ("0", 0, 0),
        ("-0", 0, 0),
        (0.1, 100_000, 100_000),
        ("1e-6", 1, 1),
    ],
)
def test_quote_rounding_is_mathematical_floor_and_ceil(value: str, floor: int, ceil: int) -> None:
    assert quote_to_minor(value, Rounding.FLOOR) == floor
    assert quote_to_minor(value, Rounding.CEIL) == ceil


def test_quote_out_of_range() -> None:
    rejection = _rejected(RejectCode.INVALID_NUMBER, quote_to_minor, "1E+13", Rounding.FLOOR)
    assert rejection.message == f"amount 1E+13 is beyond {INT64_MAX} minor units"


@given(
    st.decimals(
        min_value=-(10**12), max_value=10**12, places=12, allow_nan=False, allow_infinity=False
    )
)
def test_quote_floor_and_ceil_bracket_the_exact_value(value: Decimal) -> None:
    floor = quote_to_minor(value, Rounding.FLOOR)
    ceil = quote_to_minor(value, Rounding.CEIL)
    exact = Fraction(value) * 10**QUOTE_DECIMALS
    assert floor <= exact <= ceil
    assert ceil - floor == (0 if exact.denominator == 1 else 1)


@given(st.integers(min_value=-INT64_MAX, max_value=INT64_MAX))
def test_minor_units_round_trip(minor: int) -> None:
    quote = minor_to_quote(minor)
    assert quote.as_tuple().exponent == -QUOTE_DECIMALS
    assert quote_to_minor(quote, Rounding.FLOOR) == minor
    assert quote_to_minor(str(quote), Rounding.CEIL) == minor


def test_minor_to_quote_examples() -> None:
    assert str(minor_to_quote(1)) == "0.000001"
    assert str(minor_to_quote(1_500_000)) == "1.500000"
    assert minor_to_quote(-1_500_000) == Decimal("-1.5")


# --- notional ---------------------------------------------------------------------------------


def test_notional_rounds_in_the_named_direction() -> None:
    instrument = make_perpetual("ETH", "0.0001", "0.001")
    # 1.2345 USDC x 0.001 contracts = 0.0012345 USDC = 1234.5 minor units
    assert notional_minor(12345, 1, instrument, Rounding.FLOOR) == 1234
    assert notional_minor(12345, 1, instrument, Rounding.CEIL) == 1235
    assert notional_minor(12345, -1, instrument, Rounding.FLOOR) == -1235
    assert notional_minor(12345, -1, instrument, Rounding.CEIL) == -1234


def test_notional_exact_cases_and_contract_size() -> None:
    btc = make_perpetual("BTC", "0.5", "0.001")
    # 100000.5 x 0.003 = 300.0015 USDC
    assert notional_minor(200_001, 3, btc, Rounding.FLOOR) == 300_001_500
    assert notional_minor(200_001, 3, btc, Rounding.CEIL) == 300_001_500
    small = make_perpetual("BTC", "0.5", "1", contract_size="0.01")
    # 100000.5 per BTC x 3 contracts of 0.01 BTC = 3000.015 USDC
    assert notional_minor(200_001, 3, small, Rounding.FLOOR) == 3_000_015_000


@given(
    st.integers(min_value=1, max_value=10**15),
    st.integers(min_value=-(10**12), max_value=10**12),
    grid_strategy,
    grid_strategy,
    grid_strategy,
)
def test_notional_matches_exact_rational_arithmetic(
    price_ticks: int, size_lots: int, tick: Decimal, lot: Decimal, contract: Decimal
) -> None:
    instrument = make_perpetual("BTC", tick, lot, contract_size=contract)
    exact = price_ticks * Fraction(tick) * size_lots * Fraction(lot) * Fraction(contract) * 10**6
    floor = notional_minor(price_ticks, size_lots, instrument, Rounding.FLOOR)
    ceil = notional_minor(price_ticks, size_lots, instrument, Rounding.CEIL)
    assert floor <= exact <= ceil
    assert ceil - floor == (0 if exact.denominator == 1 else 1)


# --- helpers and time -------------------------------------------------------------------------


def test_divide_and_grid_count() -> None:
    assert divide(7, 2, Rounding.FLOOR) == 3
    assert divide(7, 2, Rounding.CEIL) == 4
    assert divide(-7, 2, Rounding.FLOOR) == -4
    assert divide(-7, 2, Rounding.CEIL) == -3
    with pytest.raises(ValueError, match="denominator must be positive"):
        divide(1, 0, Rounding.FLOOR)
    assert grid_count(Decimal("0.3"), TICK) == 3
    assert grid_count(Decimal("0.35"), TICK) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1E+5"), "100000"),
        (Decimal("100000.000"), "100000"),
        (Decimal("0.50"), "0.5"),
        (Decimal("0.625"), "0.625"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("-2.50"), "-2.5"),
        (Decimal("-0.00"), "0"),
        (Decimal("1.5E-7"), "0.00000015"),
    ],
)
def test_plain_decimal(value: Decimal, text: str) -> None:
    assert plain_decimal(value) == text
    assert Decimal(text) == value


def test_time_constants_and_helpers() -> None:
    assert NANOS_PER_SECOND == 10**9
    assert NANOS_PER_MILLISECOND == 10**6
    assert NANOS_PER_MINUTE == 60 * 10**9
    assert NANOS_PER_HOUR == 3_600 * 10**9
    assert NANOS_PER_DAY == 86_400 * 10**9
    assert seconds_to_ns(2) == 2_000_000_000
    assert ms_to_ns(250) == 250_000_000
    assert us_to_ns(3) == 3_000
