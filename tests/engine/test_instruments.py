"""Instruments: integer calendar, Deribit names, constructors and validation, option chains."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strikechain.engine.calendar import (
    CivilTime,
    Weekday,
    civil_from_days,
    civil_from_ns,
    days_from_civil,
    days_in_month,
    expiry_ns,
    is_leap_year,
    last_friday,
    weekday_from_days,
    weekday_from_ns,
)
from strikechain.engine.chain import (
    DEFAULT_CHAIN_POLICY,
    MAX_EXPIRIES,
    MAX_STRIKES_PER_EXPIRY,
    MAX_STRIKES_PER_SIDE,
    ChainPolicy,
    listed_expiries,
    option_chain,
    strike_step_ticks,
    strikes_around,
)
from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.instruments import (
    MAX_NAME_BYTES,
    MAX_NAME_CHARS,
    Instrument,
    InstrumentKind,
    MatchingMode,
    OptionType,
    ParsedName,
    format_option_name,
    instrument_name,
    make_option,
    make_perpetual,
    parse_instrument_name,
    perpetual_name,
    validate_instrument,
)
from strikechain.engine.units import INT64_MAX, NANOS_PER_DAY, NANOS_PER_HOUR, ticks_to_price

EPOCH = dt.date(1970, 1, 1)
EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_MICROSECOND = dt.timedelta(microseconds=1)


def _reference_ns(when: dt.datetime) -> int:
    return (when - EPOCH_UTC) // ONE_MICROSECOND * 1_000


def _invalid(call: object, *args: object, **kwargs: object) -> str:
    """The message of the INVALID_INSTRUMENT rejection ``call`` raises."""
    assert callable(call)
    with pytest.raises(Rejection) as caught:
        call(*args, **kwargs)
    assert caught.value.code == RejectCode.INVALID_INSTRUMENT
    return caught.value.message


# --- calendar ---------------------------------------------------------------------------------


def test_calendar_matches_datetime_on_every_day_from_1900_to_2200() -> None:
    start = days_from_civil(1900, 1, 1)
    assert start == (dt.date(1900, 1, 1) - EPOCH).days
    for days in range(start, days_from_civil(2200, 12, 31) + 1):
        date = EPOCH + dt.timedelta(days=days)
        assert civil_from_days(days) == (date.year, date.month, date.day)
        assert weekday_from_days(days) == date.weekday()


@given(st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)))
def test_calendar_matches_datetime_over_its_whole_range(date: dt.date) -> None:
    days = (date - EPOCH).days
    assert days_from_civil(date.year, date.month, date.day) == days
    assert civil_from_days(days) == (date.year, date.month, date.day)
    assert weekday_from_days(days) == date.weekday()


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_calendar_round_trips_far_beyond_datetime(days: int) -> None:
    assert days_from_civil(*civil_from_days(days)) == days


@given(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)))
def test_civil_from_ns_matches_datetime(naive: dt.datetime) -> None:
    when = naive.replace(tzinfo=dt.UTC)
    extra_ns = naive.microsecond % 7  # nanoseconds below datetime's resolution
    timestamp_ns = _reference_ns(when) + extra_ns
    assert civil_from_ns(timestamp_ns) == CivilTime(
        when.year,
        when.month,
        when.day,
        when.hour,
        when.minute,
        when.second,
        when.microsecond * 1_000 + extra_ns,
    )
    assert weekday_from_ns(timestamp_ns) == when.weekday()


def test_expiry_ns_examples() -> None:
    assert expiry_ns(1970, 1, 1, hour=0) == 0
    assert expiry_ns(2026, 12, 27) == _reference_ns(dt.datetime(2026, 12, 27, 8, tzinfo=dt.UTC))
    assert civil_from_ns(expiry_ns(2024, 2, 29)) == CivilTime(2024, 2, 29, 8, 0, 0, 0)
    assert civil_from_ns(-1) == CivilTime(1969, 12, 31, 23, 59, 59, 999_999_999)
    assert weekday_from_days(0) == Weekday.THURSDAY


@pytest.mark.parametrize(
    ("year", "month", "day", "hour", "message"),
    [
        (2026, 2, 29, 8, "2026-02 has no day 29"),
        (2026, 4, 31, 8, "2026-04 has no day 31"),
        (2026, 1, 0, 8, "2026-01 has no day 0"),
        (2026, 13, 1, 8, "month must be 1..12, got 13"),
        (2026, 0, 1, 8, "month must be 1..12, got 0"),
        (2026, 1, 1, 24, "hour must be 0..23, got 24"),
        (2026, 1, 1, -1, "hour must be 0..23, got -1"),
    ],
)
def test_invalid_dates_raise(year: int, month: int, day: int, hour: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expiry_ns(year, month, day, hour)


def test_leap_years_and_month_lengths() -> None:
    assert [is_leap_year(y) for y in (1900, 2000, 2024, 2026, 2100)] == [
        False,
        True,
        True,
        False,
        False,
    ]
    assert days_in_month(2024, 2) == 29
    assert days_in_month(2100, 2) == 28
    assert [days_in_month(2026, m) for m in range(1, 13)] == [
        31,
        28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ]


def test_last_friday_matches_a_brute_force_search() -> None:
    for year in range(2000, 2100):
        for month in range(1, 13):
            date = dt.date(year, month, days_in_month(year, month))
            while date.weekday() != 4:
                date -= dt.timedelta(days=1)
            assert last_friday(year, month) == date.day
    assert last_friday(2026, 12) == 25
    assert last_friday(2027, 1) == 29


# --- names ------------------------------------------------------------------------------------


def test_deribit_examples() -> None:
    assert perpetual_name("BTC") == "BTC_USDC-PERPETUAL"
    assert (
        format_option_name("BTC", expiry_ns(2026, 12, 27), Decimal(100000), OptionType.CALL)
        == "BTC_USDC-27DEC26-100000-C"
    )
    assert (
        format_option_name("ETH", expiry_ns(2027, 1, 5), Decimal("3500.00"), OptionType.PUT)
        == "ETH_USDC-5JAN27-3500-P"
    )
    assert (
        format_option_name("XRP", expiry_ns(2024, 12, 27), Decimal("0.625"), OptionType.CALL)
        == "XRP_USDC-27DEC24-0d625-C"
    )
    assert (
        format_option_name("SOL", expiry_ns(2025, 3, 28), Decimal("1E+2"), OptionType.PUT)
        == "SOL_USDC-28MAR25-100-P"
    )


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("BTC_USDC-PERPETUAL", ParsedName(underlying="BTC", kind=InstrumentKind.PERPETUAL)),
        (
            "BTC_USDC-27DEC26-100000-C",
            ParsedName(
                underlying="BTC",
                kind=InstrumentKind.OPTION,
                expiry_ns=expiry_ns(2026, 12, 27),
                strike=Decimal(100000),
                option_type=OptionType.CALL,
            ),
        ),
        (
            "ETH_USDC-5JAN27-3500-P",
            ParsedName(
                underlying="ETH",
                kind=InstrumentKind.OPTION,
                expiry_ns=expiry_ns(2027, 1, 5),
                strike=Decimal(3500),
                option_type=OptionType.PUT,
            ),
        ),
        (
            "XRP_USDC-29FEB28-0d625-C",
            ParsedName(
                underlying="XRP",
                kind=InstrumentKind.OPTION,
                expiry_ns=expiry_ns(2028, 2, 29),
                strike=Decimal("0.625"),
                option_type=OptionType.CALL,
            ),
        ),
        (
            "1000PEPE_USDC-PERPETUAL",
            ParsedName(underlying="1000PEPE", kind=InstrumentKind.PERPETUAL),
        ),
    ],
)
def test_parse_examples(name: str, parsed: ParsedName) -> None:
    assert parse_instrument_name(name) == parsed


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "is not a linear instrument name"),
        ("BTC-PERPETUAL", "is not a linear instrument name"),
        ("btc_USDC-PERPETUAL", "is not a linear instrument name"),
        ("BTC_USD-PERPETUAL", "is not a linear instrument name"),
        ("BTC_USDT-PERPETUAL", "is not a linear instrument name"),
        ("BTC_USDC-PERPETUAL ", "is not a linear instrument name"),
        ("BTC_USDC-PERPETUAL\n", "is not a linear instrument name"),
        ("BTC_USDC-perpetual", "is not a linear instrument name"),
        ("BTC_USDC-27DEC26-100000-X", "is not a linear instrument name"),
        ("BTC_USDC-27DEC26-100000", "is not a linear instrument name"),
        ("BTC_USDC-27Dec26-100000-C", "is not a linear instrument name"),
        ("BTC_USDC-27DEC2026-100000-C", "is not a linear instrument name"),
        ("BTC_USDC-27DEC26-1.5-C", "is not a linear instrument name"),
        ("BTC_USDC-\uff127DEC26-100000-C", "is not a linear instrument name"),
        ("BTC_USDC-27DEC26--100000-C", "is not a linear instrument name"),
        ("_USDC-PERPETUAL", "is not a linear instrument name"),
        ("BTC_USDC-27XYZ26-100000-C", "'XYZ' is not a month like JAN or DEC"),
        ("BTC_USDC-027DEC26-100000-C", "DEC26 has no day '027'"),
        ("BTC_USDC-0DEC26-100000-C", "DEC26 has no day '0'"),
        ("BTC_USDC-32DEC26-100000-C", "DEC26 has no day '32'"),
        ("BTC_USDC-31FEB26-100000-C", "FEB26 has no day '31'"),
        ("BTC_USDC-29FEB27-100000-C", "FEB27 has no day '29'"),
        ("BTC_USDC-27DEC26-0100000-C", "strike '0100000' is not canonical"),
        ("BTC_USDC-27DEC26-1d50-C", "strike '1d50' is not canonical"),
        ("BTC_USDC-27DEC26-1d-C", "strike '1d' is not canonical"),
        ("BTC_USDC-27DEC26-d5-C", "strike 'd5' is not canonical"),
        ("BTC_USDC-27DEC26-1d2d5-C", "strike '1d2d5' is not canonical"),
        ("BTC_USDC-27DEC26-0-C", "strike must be positive"),
        ("ABCDEFGHIJKLM_USDC-PERPETUAL", "underlying 'ABCDEFGHIJKLM' must be 1 to 12"),
        ("123_USDC-PERPETUAL", "underlying '123' must be 1 to 12"),
        ("BTC_USDC-27DEC26-" + "1" * 60 + "-C", f"is over {MAX_NAME_CHARS} chars"),
    ],
)
def test_malformed_names_are_rejected(name: str, reason: str) -> None:
    assert reason in _invalid(parse_instrument_name, name)


def test_a_malformed_name_message_says_what_is_expected() -> None:
    message = _invalid(parse_instrument_name, "BTC-PERPETUAL")
    assert message == (
        "'BTC-PERPETUAL' is not a linear instrument name like BTC_USDC-PERPETUAL "
        "or BTC_USDC-27DEC26-100000-C"
    )


underlyings = st.from_regex(r"[A-Z][A-Z0-9]{0,11}", fullmatch=True)
expiry_days = st.integers(
    min_value=days_from_civil(2000, 1, 1), max_value=days_from_civil(2099, 12, 31)
)
ticks_sizes = st.sampled_from(
    [Decimal(s) for s in ("0.0001", "0.001", "0.01", "0.1", "0.5", "1", "5", "25", "0.0025")]
)
option_types = st.sampled_from([OptionType.CALL, OptionType.PUT])


@given(
    underlyings, expiry_days, st.integers(min_value=1, max_value=10**12), ticks_sizes, option_types
)
def test_option_names_round_trip(
    underlying: str, days: int, strike_ticks: int, tick: Decimal, option_type: OptionType
) -> None:
    expiry = days * NANOS_PER_DAY + 8 * NANOS_PER_HOUR
    strike = ticks_to_price(strike_ticks, tick)
    name = format_option_name(underlying, expiry, strike, option_type)
    assert len(name) <= MAX_NAME_CHARS
    parsed = parse_instrument_name(name)
    assert parsed == ParsedName(
        underlying=underlying,
        kind=InstrumentKind.OPTION,
        expiry_ns=expiry,
        strike=strike,
        option_type=option_type,
    )
    assert format_option_name(parsed.underlying, parsed.expiry_ns, parsed.strike, option_type) == (
        name
    )
    if len(name) > MAX_NAME_BYTES:  # parses, but cannot be listed: see the test below
        assert "state commitment" in _invalid(
            make_option, underlying, expiry, strike, option_type, tick, "0.01"
        )
        return
    instrument = make_option(underlying, expiry, strike, option_type, tick, "0.01")
    assert instrument.name == name
    assert instrument.strike_ticks == strike_ticks


@given(underlyings)
def test_perpetual_names_round_trip(underlying: str) -> None:
    parsed = parse_instrument_name(perpetual_name(underlying))
    assert parsed == ParsedName(underlying=underlying, kind=InstrumentKind.PERPETUAL)


@pytest.mark.parametrize(
    ("expiry", "strike", "option_type", "message"),
    [
        (expiry_ns(2026, 12, 27, hour=9), Decimal(1), OptionType.CALL, "is 09:00:00+0ns UTC"),
        (expiry_ns(2026, 12, 27) + 1, Decimal(1), OptionType.CALL, "is 08:00:00+1ns UTC"),
        (expiry_ns(2100, 1, 1), Decimal(1), OptionType.CALL, "is in 2100, outside 2000..2099"),
        (expiry_ns(1999, 12, 31), Decimal(1), OptionType.CALL, "is in 1999, outside"),
        (expiry_ns(2026, 12, 27), Decimal(0), OptionType.CALL, "strike 0 must be positive"),
        (expiry_ns(2026, 12, 27), Decimal("NaN"), OptionType.CALL, "strike NaN is not finite"),
        (expiry_ns(2026, 12, 27), Decimal(1), OptionType.NONE, "is neither CALL nor PUT"),
    ],
)
def test_unnameable_options_are_rejected(
    expiry: int, strike: Decimal, option_type: OptionType, message: str
) -> None:
    assert message in _invalid(format_option_name, "BTC", expiry, strike, option_type)


# --- constructors and validation --------------------------------------------------------------

EXPIRY = expiry_ns(2026, 12, 27)


def test_make_perpetual() -> None:
    perpetual = make_perpetual("BTC", "0.50", "0.0010", matching=MatchingMode.BATCH)
    assert perpetual == Instrument(
        name="BTC_USDC-PERPETUAL",
        kind=InstrumentKind.PERPETUAL,
        underlying="BTC",
        tick_size=Decimal("0.5"),
        lot_size=Decimal("0.001"),
        matching=MatchingMode.BATCH,
    )
    assert str(perpetual.tick_size) == "0.5"  # canonical, so equal listings encode equally
    same = make_perpetual("BTC", 0.5, "1e-3", matching=MatchingMode.BATCH)
    assert msgspec.json.encode(perpetual) == msgspec.json.encode(same)
    assert not perpetual.is_option


def test_make_option() -> None:
    option = make_option("BTC", EXPIRY, "100000", OptionType.CALL, "0.1", "0.01")
    assert option.name == "BTC_USDC-27DEC26-100000-C"
    assert option.strike_ticks == 1_000_000
    assert option.is_option
    assert instrument_name(option) == option.name
    decoded = msgspec.json.decode(msgspec.json.encode(option), type=Instrument)
    assert decoded == option
    validate_instrument(decoded)


def test_strike_off_the_tick_grid_is_rejected() -> None:
    message = _invalid(make_option, "BTC", EXPIRY, "100.05", OptionType.CALL, "0.1", "0.01")
    assert message == "strike 100.05 is not a multiple of tick 0.1"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tick_size": "0"}, "tick_size 0 must be positive"),
        ({"tick_size": "-0.1"}, "tick_size -0.1 must be positive"),
        ({"tick_size": "abc"}, "tick_size 'abc' is not a decimal number"),
        ({"lot_size": Decimal("NaN")}, "lot_size NaN is not finite"),
        ({"lot_size": 0}, "lot_size 0 must be positive"),
        ({"contract_size": "-1"}, "contract_size -1 must be positive"),
        ({"underlying": "btc"}, "underlying 'btc' must be 1 to 12 uppercase ASCII"),
        ({"underlying": ""}, "underlying '' must be 1 to 12"),
        ({"underlying": "BTC_USDC"}, "underlying 'BTC_USDC' must be"),
    ],
)
def test_make_perpetual_rejects_bad_fields(arguments: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"underlying": "BTC", "tick_size": "0.5", "lot_size": "0.001"}
    fields.update(arguments)
    assert message in _invalid(make_perpetual, **fields)


def test_strike_beyond_int64_ticks_is_rejected() -> None:
    strike = str(INT64_MAX + 1)
    message = _invalid(make_option, "BTC", EXPIRY, strike, OptionType.CALL, "1", "1")
    assert f"needs a strike of 1..{INT64_MAX} ticks" in message


def test_names_over_32_bytes_cannot_be_listed() -> None:
    """The state commitment stores instrument names as bytes32."""
    longest = make_option("ABCDEFGHIJKL", EXPIRY, "1000", OptionType.CALL, "1", "1")
    assert len(longest.name) == MAX_NAME_BYTES
    message = _invalid(make_option, "ABCDEFGHIJKL", EXPIRY, "10000", OptionType.CALL, "1", "1")
    assert message == (
        "name 'ABCDEFGHIJKL_USDC-27DEC26-10000-C' is 33 bytes, over 32: the state commitment "
        "stores names as bytes32 (use a shorter underlying or strike)"
    )
    assert len(parse_instrument_name("ABCDEFGHIJKL_USDC-27DEC26-10000-C").underlying) == 12


PERPETUAL = make_perpetual("BTC", "0.5", "0.001")
OPTION = make_option("BTC", EXPIRY, "100000", OptionType.CALL, "0.1", "0.01")


@pytest.mark.parametrize(
    ("instrument", "message"),
    [
        (
            msgspec.structs.replace(PERPETUAL, name="ETH_USDC-PERPETUAL"),
            "name 'ETH_USDC-PERPETUAL' does not match the fields, which name 'BTC_USDC-PERPETUAL'",
        ),
        (
            msgspec.structs.replace(OPTION, strike_ticks=1_000_010),
            "which name 'BTC_USDC-27DEC26-100001-C'",
        ),
        (
            msgspec.structs.replace(OPTION, option_type=OptionType.PUT),
            "which name 'BTC_USDC-27DEC26-100000-P'",
        ),
        (
            msgspec.structs.replace(OPTION, tick_size=Decimal("0.2")),
            "which name 'BTC_USDC-27DEC26-200000-C'",
        ),
        (
            msgspec.structs.replace(OPTION, expiry_ns=expiry_ns(2026, 12, 26)),
            "which name 'BTC_USDC-26DEC26-100000-C'",
        ),
        (msgspec.structs.replace(PERPETUAL, tick_size=Decimal(0)), "tick_size 0 must be positive"),
        (msgspec.structs.replace(PERPETUAL, lot_size=Decimal(-1)), "lot_size -1 must be positive"),
        (
            msgspec.structs.replace(PERPETUAL, contract_size=Decimal(0)),
            "contract_size 0 must be positive",
        ),
        (
            msgspec.structs.replace(PERPETUAL, tick_size=0.5),
            "tick_size 0.5 must be a Decimal",
        ),
        (msgspec.structs.replace(PERPETUAL, quote="USDT"), "quote 'USDT' is not USDC"),
        (msgspec.structs.replace(PERPETUAL, underlying="btc"), "underlying 'btc' must be"),
        (msgspec.structs.replace(PERPETUAL, name="X" * 65), "name must be a string of at most 64"),
        (
            msgspec.structs.replace(PERPETUAL, strike_ticks=1),
            "perpetual 'BTC_USDC-PERPETUAL' must have no strike, expiry or option type",
        ),
        (msgspec.structs.replace(PERPETUAL, expiry_ns=EXPIRY), "must have no strike, expiry"),
        (
            msgspec.structs.replace(PERPETUAL, option_type=OptionType.CALL),
            "must have no strike, expiry",
        ),
        (
            msgspec.structs.replace(OPTION, option_type=OptionType.NONE),
            "option 'BTC_USDC-27DEC26-100000-C' needs a CALL or PUT type",
        ),
        (msgspec.structs.replace(OPTION, strike_ticks=0), "needs a strike of 1.."),
        (msgspec.structs.replace(OPTION, strike_ticks=-10), "needs a strike of 1.."),
        (msgspec.structs.replace(OPTION, expiry_ns=0), "is in 1970, outside 2000..2099"),
        (msgspec.structs.replace(OPTION, expiry_ns=EXPIRY + 1), "not 08:00 UTC"),
        (msgspec.structs.replace(OPTION, matching=3), "matching mode 3 is unknown"),
        (msgspec.structs.replace(OPTION, kind=3), "unknown instrument kind 3"),
    ],
)
def test_inconsistent_instruments_are_rejected(instrument: Instrument, message: str) -> None:
    assert message in _invalid(validate_instrument, instrument)


def test_decoding_then_validating_a_listing() -> None:
    raw = (
        b'{"name":"ETH_USDC-5JAN27-3500-P","kind":2,"underlying":"ETH","tick_size":"0.1",'
        b'"lot_size":"0.01","strike_ticks":35000,"expiry_ns":%d,"option_type":2}'
    ) % expiry_ns(2027, 1, 5)
    instrument = msgspec.json.decode(raw, type=Instrument)
    validate_instrument(instrument)
    assert instrument == make_option(
        "ETH", expiry_ns(2027, 1, 5), 3500, OptionType.PUT, "0.1", "0.01"
    )


# --- option chains ----------------------------------------------------------------------------

NOW = expiry_ns(2026, 11, 25, hour=1)  # a Wednesday, before the day's 08:00 expiry
SPOT = Decimal("91234.5")


def _chain(now: int = NOW, policy: ChainPolicy = DEFAULT_CHAIN_POLICY) -> list[Instrument]:
    return option_chain("BTC", SPOT, now, tick_size="0.1", lot_size="0.01", policy=policy)


def _by_expiry(chain: list[Instrument]) -> dict[int, list[Instrument]]:
    grouped: dict[int, list[Instrument]] = {}
    for instrument in chain:
        grouped.setdefault(instrument.expiry_ns, []).append(instrument)
    return grouped


def _dates(expiries: list[int]) -> list[tuple[int, int, int]]:
    return [civil_from_ns(expiry)[:3] for expiry in expiries]


def test_listed_expiries_follow_deribit() -> None:
    assert _dates(listed_expiries(NOW)) == [
        (2026, 11, 25),
        (2026, 11, 26),
        (2026, 11, 27),
        (2026, 11, 28),  # dailies
        (2026, 12, 4),
        (2026, 12, 11),  # weeklies (27 Nov is also the first weekly)
        (2026, 12, 25),
        (2027, 1, 29),  # monthlies (27 Nov is the first)
        (2027, 3, 26),
        (2027, 6, 25),
        (2027, 9, 24),  # quarterlies (25 Dec is the first)
    ]


def test_an_expiry_at_now_is_not_listed() -> None:
    at_expiry = expiry_ns(2026, 11, 25)
    assert _dates(listed_expiries(at_expiry))[0] == (2026, 11, 26)
    assert _dates(listed_expiries(at_expiry - 1))[0] == (2026, 11, 25)


@settings(max_examples=60)
@given(st.integers(min_value=expiry_ns(2001, 1, 1), max_value=expiry_ns(2090, 1, 1)))
def test_expiry_kinds_hold_at_any_time(now: int) -> None:
    policy = DEFAULT_CHAIN_POLICY
    expiries = listed_expiries(now, policy)
    assert expiries == sorted(set(expiries))
    assert all(expiry > now for expiry in expiries)
    assert all(expiry % NANOS_PER_DAY == 8 * NANOS_PER_HOUR for expiry in expiries)
    first_day = expiries[0] // NANOS_PER_DAY
    assert expiries[0] - now <= NANOS_PER_DAY
    dailies = [(first_day + offset) * NANOS_PER_DAY + 8 * NANOS_PER_HOUR for offset in range(4)]
    assert set(dailies) <= set(expiries)
    fridays = [e for e in expiries if weekday_from_ns(e) == Weekday.FRIDAY]
    assert len([f for f in fridays if f not in dailies]) >= 2
    assert all(e in dailies or weekday_from_ns(e) == Weekday.FRIDAY for e in expiries)
    month_ends = [e for e in fridays if civil_from_ns(e).day == last_friday(*civil_from_ns(e)[:2])]
    assert len(month_ends) >= 3
    quarter_ends = [e for e in month_ends if civil_from_ns(e).month in (3, 6, 9, 12)]
    assert len(quarter_ends) == 4
    assert quarter_ends[-1] - now > 270 * NANOS_PER_DAY
    assert len(expiries) <= 14


def test_chain_is_sorted_paired_and_on_the_grid() -> None:
    chain = _chain()
    keys = [(i.expiry_ns, i.strike_ticks, i.option_type) for i in chain]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert [i.option_type for i in chain] == [OptionType.CALL, OptionType.PUT] * (len(chain) // 2)
    for call, put in zip(chain[::2], chain[1::2], strict=True):
        assert (call.expiry_ns, call.strike_ticks) == (put.expiry_ns, put.strike_ticks)
        assert call.name[:-1] == put.name[:-1]
    assert sorted(_by_expiry(chain)) == listed_expiries(NOW)
    for instrument in chain:
        validate_instrument(instrument)
        assert parse_instrument_name(instrument.name).strike == ticks_to_price(
            instrument.strike_ticks, instrument.tick_size
        )


def test_chain_strikes_surround_spot_on_a_nice_widening_grid() -> None:
    previous_step = 0
    for expiry, options in _by_expiry(_chain()).items():
        strikes = [o.strike_ticks for o in options[::2]]
        step = strike_step_ticks(SPOT, expiry - NOW, Decimal("0.1"), DEFAULT_CHAIN_POLICY)
        assert step >= previous_step
        previous_step = step
        mantissa = Decimal(step) / Decimal(10) ** (len(str(step)) - 1)
        assert mantissa in (1, 2, Decimal("2.5"), 5)
        assert all(b - a == step for a, b in itertools.pairwise(strikes))
        assert all(strike % step == 0 for strike in strikes)
        assert strikes[0] * Decimal("0.1") < SPOT < strikes[-1] * Decimal("0.1")
        at_the_money = round(SPOT * 10 / step) * step
        assert abs(at_the_money - SPOT * 10) <= step / 2
        assert at_the_money in strikes
        per_side = DEFAULT_CHAIN_POLICY.strikes_per_side
        assert len(strikes) == min(2 * per_side + 1, at_the_money // step + per_side)


def test_strike_step_rule_examples() -> None:
    policy = DEFAULT_CHAIN_POLICY  # 2 reference moves of 60% vol over 8 strikes
    tick = Decimal("0.1")
    spot = Decimal(100000)
    # one day: 2 * 100000 * 0.6 * sqrt(1/365) / 8 = 785 -> 1000
    assert strike_step_ticks(spot, NANOS_PER_DAY, tick, policy) == 10_000
    assert strike_step_ticks(spot, 1, tick, policy) == 10_000  # at least a day
    # 28 days: 15000 * sqrt(28/365) = 4154 -> 5000
    assert strike_step_ticks(spot, 28 * NANOS_PER_DAY, tick, policy) == 50_000
    # 91 days: 15000 * sqrt(91/365) = 7490 -> 10000
    assert strike_step_ticks(spot, 91 * NANOS_PER_DAY, tick, policy) == 100_000
    # 2.5 is on the ladder: 15000 * sqrt(9/365) = 2355 -> 2500
    assert strike_step_ticks(spot, 9 * NANOS_PER_DAY, tick, policy) == 25_000
    # never below a tick, and a whole number of ticks for an odd tick
    assert strike_step_ticks(Decimal(1), NANOS_PER_DAY, Decimal(5), policy) == 1
    assert strike_step_ticks(spot, NANOS_PER_DAY, Decimal(3), policy) == 334  # 1000 -> 1002


def test_strikes_around_rounds_half_up_and_stays_positive() -> None:
    assert strikes_around(Decimal(100500), 1000, Decimal(1), 1) == [100_000, 101_000, 102_000]
    assert strikes_around(Decimal(100499), 1000, Decimal(1), 1) == [99_000, 100_000, 101_000]
    assert strikes_around(Decimal(3), 10, Decimal(1), 2) == [10, 20]


def test_small_spot_chain_uses_decimal_strikes() -> None:
    chain = option_chain("XRP", Decimal("0.6234"), NOW, tick_size="0.0001", lot_size="1")
    assert any("d" in instrument.name for instrument in chain)
    assert "XRP_USDC-25NOV26-0d6-C" in [instrument.name for instrument in chain]


def test_chain_is_deterministic() -> None:
    first = msgspec.msgpack.encode(_chain())
    assert msgspec.msgpack.encode(_chain()) == first


def test_chain_is_bounded() -> None:
    widest = ChainPolicy(
        dailies=14, weeklies=8, monthlies=6, quarterlies=4, strikes_per_side=MAX_STRIKES_PER_SIDE
    )
    chain = _chain(policy=widest)
    grouped = _by_expiry(chain)
    assert len(grouped) <= MAX_EXPIRIES
    assert all(len(options) <= 2 * MAX_STRIKES_PER_EXPIRY for options in grouped.values())


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (ChainPolicy(dailies=MAX_EXPIRIES, weeklies=1), "sum to 1..32"),
        (ChainPolicy(dailies=0, weeklies=0, monthlies=0, quarterlies=0), "sum to 1..32"),
        (ChainPolicy(dailies=-1), "must be >= 0"),
        (ChainPolicy(strikes_per_side=0), "strikes_per_side must be 1..50"),
        (ChainPolicy(strikes_per_side=MAX_STRIKES_PER_SIDE + 1), "strikes_per_side must be 1..50"),
        (ChainPolicy(reference_vol=Decimal(0)), "reference_vol 0 must be positive"),
        (ChainPolicy(std_devs=Decimal(11)), "std_devs 11 must be positive and at most 10"),
    ],
)
def test_chain_policy_bounds(policy: ChainPolicy, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _chain(policy=policy)


def test_chain_bad_arguments() -> None:
    with pytest.raises(ValueError, match="spot -1 must be positive"):
        option_chain("BTC", Decimal(-1), NOW, tick_size="0.1", lot_size="0.01")
    assert "underlying 'btc'" in _invalid(
        option_chain, "btc", SPOT, NOW, tick_size="0.1", lot_size="0.01"
    )
    late = expiry_ns(2099, 11, 1)
    assert "outside 2000..2099" in _invalid(
        option_chain, "BTC", SPOT, late, tick_size="0.1", lot_size="0.01"
    )
