"""Instruments as data: linear USDC-margined perpetuals and European options.

An instrument is a value: its name, what it is on, its tick and lot, and for an option its
strike and expiry. The engine never special-cases a product in code paths beyond the
perpetual/option distinction; listing and delisting are transactions that carry these values.

Prices are integers in ticks of ``tick_size`` (USDC per unit of the underlying), sizes
integers in lots of ``lot_size`` contracts, and a contract is ``contract_size`` units of the
underlying (1 for Deribit's linear instruments: a BTC_USDC contract is one BTC), so a trade's
notional is price x size x contract size. An option's
strike is stored in ticks of its own ``tick_size``; its ``expiry_ns`` is the settlement time in
integer nanoseconds since the Unix epoch (Deribit's 08:00 UTC).

Names follow Deribit's linear USDC instruments: ``BTC_USDC-PERPETUAL`` and
``BTC_USDC-27DEC26-100000-C`` (day without leading zero, three-letter month, two-digit year,
strike with ``d`` for a decimal point, ``C``/``P``).

Invariants
- A valid instrument's ``name`` is the canonical name of its fields, and only canonical names
  parse, so name and fields determine each other (:func:`validate_instrument`,
  :func:`parse_instrument_name`). Options expire at 08:00 UTC, the only time a name can say.
- Dates come from :mod:`strikechain.engine.calendar` (integers only, no ``datetime``); chains of
  instruments from :mod:`strikechain.engine.chain`.

Limits
- Names are at most :data:`MAX_NAME_CHARS` characters to parse and :data:`MAX_NAME_BYTES` to
  list (the state commitment stores a name as a ``bytes32``), underlyings 1 to
  :data:`MAX_UNDERLYING_CHARS` uppercase ASCII letters and digits, expiries in 2000..2099 (the
  name's year has two digits), strikes at most ``INT64_MAX`` ticks; the only quote is USDC.
"""

from __future__ import annotations

import enum
import re
from decimal import Decimal
from typing import Final

import msgspec

from strikechain.engine.calendar import EXPIRY_HOUR_UTC, civil_from_ns, days_in_month, expiry_ns
from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.units import (
    INT64_MAX,
    NANOS_PER_DAY,
    NANOS_PER_HOUR,
    NumberInput,
    grid_count,
    plain_decimal,
    ticks_to_price,
    to_decimal,
)


class InstrumentKind(enum.IntEnum):
    PERPETUAL = 1
    OPTION = 2


class OptionType(enum.IntEnum):
    NONE = 0
    """Not an option."""
    CALL = 1
    PUT = 2


class MatchingMode(enum.IntEnum):
    CONTINUOUS = 1
    """Price-time priority, each order matched on arrival."""
    BATCH = 2
    """A frequent batch auction per block: one uniform clearing price, then the rest rests."""


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """One listed contract. Immutable; a change of parameters is a new listing."""

    name: str
    kind: InstrumentKind
    underlying: str
    tick_size: Decimal
    lot_size: Decimal
    quote: str = "USDC"
    contract_size: Decimal = Decimal(1)
    strike_ticks: int = 0
    expiry_ns: int = 0
    option_type: OptionType = OptionType.NONE
    matching: MatchingMode = MatchingMode.CONTINUOUS

    @property
    def is_option(self) -> bool:
        return self.kind == InstrumentKind.OPTION


# --- Names: Deribit's linear USDC instruments ---------------------------------------------------

QUOTE_CURRENCY: Final = "USDC"
"""The only quote currency: :mod:`strikechain.engine.units` fixes its six decimals."""
MAX_NAME_CHARS: Final = 64
MAX_NAME_BYTES: Final = 32
"""A listed instrument's name in UTF-8: the state commitment's leaves store it as a ``bytes32``
(:mod:`strikechain.engine.commitment`), so a longer name could not be proved on chain."""
MAX_UNDERLYING_CHARS: Final = 12
MIN_EXPIRY_YEAR: Final = 2000
MAX_EXPIRY_YEAR: Final = 2099
"""A name carries a two-digit year, read as 20YY."""
MONTH_CODES: Final = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
UNDERLYING_NAME: Final = re.compile(r"[A-Z0-9]*[A-Z][A-Z0-9]*")
"""An underlying's name: capitals and digits, at least one letter (BTC, ETH, 1000PEPE)."""
_NAME: Final = re.compile(
    r"(?P<underlying>[A-Z0-9]+)_USDC-(?:PERPETUAL|"
    r"(?P<day>[0-9]+)(?P<month>[A-Z]{3})(?P<year>[0-9]{2})-(?P<strike>[0-9d]+)-(?P<type>[CP]))"
)
_STRIKE: Final = re.compile(r"(?:0|[1-9][0-9]*)(?:d[0-9]*[1-9])?")
_TYPE_LETTERS: Final = {OptionType.CALL: "C", OptionType.PUT: "P"}


class ParsedName(msgspec.Struct, frozen=True, kw_only=True):
    """The fields an instrument name determines; perpetuals leave the option fields at zero."""

    underlying: str
    kind: InstrumentKind
    expiry_ns: int = 0
    strike: Decimal = Decimal(0)
    option_type: OptionType = OptionType.NONE


def perpetual_name(underlying: str) -> str:
    """``BTC`` -> ``BTC_USDC-PERPETUAL``."""
    _check_underlying(underlying)
    return f"{underlying}_{QUOTE_CURRENCY}-PERPETUAL"


def format_option_name(
    underlying: str, expiry_ns: int, strike: Decimal, option_type: OptionType
) -> str:
    """``BTC_USDC-27DEC26-100000-C``; the strike with ``d`` for a decimal point (``0d625``).

    The name fixes every field, so the expiry must be at 08:00 UTC and the strike positive.
    """
    _check_underlying(underlying)
    if option_type not in _TYPE_LETTERS:
        raise _invalid_instrument(f"option type {option_type!r} is neither CALL nor PUT")
    strike_text = plain_decimal(_positive_number(strike, "strike")).replace(".", "d")
    year, month, day = _check_expiry(expiry_ns)
    date = f"{day}{MONTH_CODES[month - 1]}{year % 100:02d}"
    return f"{underlying}_{QUOTE_CURRENCY}-{date}-{strike_text}-{_TYPE_LETTERS[option_type]}"


def instrument_name(instrument: Instrument) -> str:
    """The canonical name of an instrument's fields (its ``name`` must equal it)."""
    if instrument.kind == InstrumentKind.PERPETUAL:
        return perpetual_name(instrument.underlying)
    if instrument.kind == InstrumentKind.OPTION:
        strike = ticks_to_price(instrument.strike_ticks, instrument.tick_size)
        return format_option_name(
            instrument.underlying, instrument.expiry_ns, strike, instrument.option_type
        )
    raise _invalid_instrument(f"unknown instrument kind {instrument.kind!r}")


def parse_instrument_name(name: str) -> ParsedName:
    """Fields of a canonical name; any other spelling is ``INVALID_INSTRUMENT``.

    Only canonical names parse (no leading zero in the day or strike, no trailing zero after
    ``d``), so that name and fields determine each other.
    """
    if len(name) > MAX_NAME_CHARS:
        raise _invalid_instrument(
            f"name {name[:MAX_NAME_CHARS]!r}... is over {MAX_NAME_CHARS} chars"
        )
    match = _NAME.fullmatch(name)
    if match is None:
        raise _invalid_instrument(
            f"{name!r} is not a linear instrument name like BTC_USDC-PERPETUAL "
            "or BTC_USDC-27DEC26-100000-C"
        )
    underlying = match["underlying"]
    _check_underlying(underlying)
    if match["type"] is None:
        return ParsedName(underlying=underlying, kind=InstrumentKind.PERPETUAL)
    return ParsedName(
        underlying=underlying,
        kind=InstrumentKind.OPTION,
        expiry_ns=_parse_expiry(name, match["day"], match["month"], match["year"]),
        strike=_parse_strike(name, match["strike"]),
        option_type=OptionType.CALL if match["type"] == "C" else OptionType.PUT,
    )


def _parse_expiry(name: str, day_text: str, month_text: str, year_text: str) -> int:
    if month_text not in MONTH_CODES:
        raise _invalid_instrument(f"{name!r}: {month_text!r} is not a month like JAN or DEC")
    year, month = 2000 + int(year_text), MONTH_CODES.index(month_text) + 1
    if day_text.startswith("0") or not 1 <= int(day_text) <= days_in_month(year, month):
        raise _invalid_instrument(
            f"{name!r}: {month_text}{year_text} has no day {day_text!r} "
            "(write the day without a leading zero)"
        )
    return expiry_ns(year, month, int(day_text))


def _parse_strike(name: str, text: str) -> Decimal:
    if _STRIKE.fullmatch(text) is None:
        raise _invalid_instrument(
            f"{name!r}: strike {text!r} is not canonical (digits, 'd' for a decimal point, "
            "no leading or trailing zeros)"
        )
    strike = Decimal(text.replace("d", "."))
    if strike <= 0:
        raise _invalid_instrument(f"{name!r}: strike must be positive")
    return strike


def _check_underlying(underlying: str) -> None:
    if (
        not isinstance(underlying, str)
        or not 1 <= len(underlying) <= MAX_UNDERLYING_CHARS
        or UNDERLYING_NAME.fullmatch(underlying) is None
    ):
        raise _invalid_instrument(
            f"underlying {underlying!r} must be 1 to {MAX_UNDERLYING_CHARS} uppercase ASCII "
            "letters and digits, with at least one letter"
        )


def _check_expiry(timestamp_ns: int) -> tuple[int, int, int]:
    """(year, month, day) of an option expiry, which must be 08:00 UTC in 2000..2099."""
    if not isinstance(timestamp_ns, int) or isinstance(timestamp_ns, bool):
        raise _invalid_instrument(f"expiry {timestamp_ns!r} must be integer nanoseconds")
    time = civil_from_ns(timestamp_ns)
    if not MIN_EXPIRY_YEAR <= time.year <= MAX_EXPIRY_YEAR:
        raise _invalid_instrument(
            f"expiry {timestamp_ns} ns is in {time.year}, outside "
            f"{MIN_EXPIRY_YEAR}..{MAX_EXPIRY_YEAR}"
        )
    if timestamp_ns % NANOS_PER_DAY != EXPIRY_HOUR_UTC * NANOS_PER_HOUR:
        raise _invalid_instrument(
            f"expiry {timestamp_ns} ns is {time.hour:02d}:{time.minute:02d}:{time.second:02d}"
            f"+{time.nanosecond}ns UTC, not {EXPIRY_HOUR_UTC:02d}:00 UTC"
        )
    return time.year, time.month, time.day


def _invalid_instrument(message: str) -> Rejection:
    return Rejection(RejectCode.INVALID_INSTRUMENT, message)


# --- Constructors and validation ----------------------------------------------------------------


def make_perpetual(
    underlying: str,
    tick_size: NumberInput,
    lot_size: NumberInput,
    *,
    contract_size: NumberInput = 1,
    matching: MatchingMode = MatchingMode.CONTINUOUS,
) -> Instrument:
    """A validated linear perpetual with its canonical name."""
    instrument = Instrument(
        name=perpetual_name(underlying),
        kind=InstrumentKind.PERPETUAL,
        underlying=underlying,
        tick_size=grid_size(tick_size, "tick_size"),
        lot_size=grid_size(lot_size, "lot_size"),
        contract_size=grid_size(contract_size, "contract_size"),
        matching=matching,
    )
    validate_instrument(instrument)
    return instrument


def make_option(
    underlying: str,
    expiry_ns: int,
    strike: NumberInput,
    option_type: OptionType,
    tick_size: NumberInput,
    lot_size: NumberInput,
    *,
    contract_size: NumberInput = 1,
    matching: MatchingMode = MatchingMode.CONTINUOUS,
) -> Instrument:
    """A validated European option with its canonical name; the strike must be on the tick."""
    tick = grid_size(tick_size, "tick_size")
    strike_ticks = _strike_ticks(strike, tick)
    instrument = Instrument(
        name=format_option_name(
            underlying, expiry_ns, ticks_to_price(strike_ticks, tick), option_type
        ),
        kind=InstrumentKind.OPTION,
        underlying=underlying,
        tick_size=tick,
        lot_size=grid_size(lot_size, "lot_size"),
        contract_size=grid_size(contract_size, "contract_size"),
        strike_ticks=strike_ticks,
        expiry_ns=expiry_ns,
        option_type=option_type,
        matching=matching,
    )
    validate_instrument(instrument)
    return instrument


def validate_instrument(instrument: Instrument) -> None:
    """Raise ``Rejection(INVALID_INSTRUMENT)`` unless the instrument is consistent.

    Checked: name length (at most :data:`MAX_NAME_BYTES` UTF-8 bytes, checked last so a
    wrong field is reported first) and that the name is the canonical name of the fields; underlying
    symbol; quote currency; tick, lot and contract sizes positive, finite and within the
    number limits of :mod:`~strikechain.engine.units`; kind, option type and matching mode
    members of their enums; option fields set for an option (positive strike ticks within
    int64, expiry at 08:00 UTC in 2000..2099) and zero for a perpetual.
    """
    if not isinstance(instrument.name, str) or len(instrument.name) > MAX_NAME_CHARS:
        raise _invalid_instrument(f"name must be a string of at most {MAX_NAME_CHARS} chars")
    _check_underlying(instrument.underlying)
    if instrument.quote != QUOTE_CURRENCY:
        raise _invalid_instrument(f"quote {instrument.quote!r} is not {QUOTE_CURRENCY}")
    for what, size in (
        ("tick_size", instrument.tick_size),
        ("lot_size", instrument.lot_size),
        ("contract_size", instrument.contract_size),
    ):
        if not isinstance(size, Decimal):
            raise _invalid_instrument(f"{what} {size!r} must be a Decimal")
        _positive_number(size, what)
    if not isinstance(instrument.matching, MatchingMode):
        raise _invalid_instrument(f"matching mode {instrument.matching!r} is unknown")
    if instrument.kind == InstrumentKind.OPTION:
        _check_option_fields(instrument)
    elif instrument.kind == InstrumentKind.PERPETUAL:
        _check_perpetual_fields(instrument)
    expected = instrument_name(instrument)
    if instrument.name != expected:
        raise _invalid_instrument(
            f"name {instrument.name!r} does not match the fields, which name {expected!r}"
        )
    name_bytes = len(instrument.name.encode("utf-8"))
    if name_bytes > MAX_NAME_BYTES:
        raise _invalid_instrument(
            f"name {instrument.name!r} is {name_bytes} bytes, over {MAX_NAME_BYTES}: the state "
            "commitment stores names as bytes32 (use a shorter underlying or strike)"
        )


def _check_option_fields(instrument: Instrument) -> None:
    if instrument.option_type not in _TYPE_LETTERS:
        raise _invalid_instrument(f"option {instrument.name!r} needs a CALL or PUT type")
    ticks = instrument.strike_ticks
    if not isinstance(ticks, int) or isinstance(ticks, bool) or not 0 < ticks <= INT64_MAX:
        raise _invalid_instrument(
            f"option {instrument.name!r} needs a strike of 1..{INT64_MAX} ticks, got {ticks!r}"
        )
    _check_expiry(instrument.expiry_ns)


def _check_perpetual_fields(instrument: Instrument) -> None:
    if (
        instrument.strike_ticks != 0
        or instrument.expiry_ns != 0
        or instrument.option_type != OptionType.NONE
    ):
        raise _invalid_instrument(
            f"perpetual {instrument.name!r} must have no strike, expiry or option type"
        )


def grid_size(value: NumberInput, what: str) -> Decimal:
    """A positive size in canonical form (``0.10`` -> ``0.1``), so equal listings encode
    equally."""
    return Decimal(plain_decimal(_positive_number(value, what)))


def _positive_number(value: NumberInput, what: str) -> Decimal:
    """A positive number within the units limits, or ``INVALID_INSTRUMENT``."""
    try:
        number = to_decimal(value, what)
    except Rejection as rejection:
        raise _invalid_instrument(rejection.message) from rejection
    if number <= 0:
        raise _invalid_instrument(f"{what} {number} must be positive")
    return number


def _strike_ticks(strike: NumberInput, tick_size: Decimal) -> int:
    value = _positive_number(strike, "strike")
    ticks = grid_count(value, tick_size)
    if ticks is None:
        raise _invalid_instrument(f"strike {value} is not a multiple of tick {tick_size}")
    return ticks
