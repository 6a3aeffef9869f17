"""A UTC calendar in integer arithmetic, for a state machine that may not import ``datetime``.

Proleptic Gregorian, after Howard Hinnant's ``days_from_civil``/``civil_from_days``: exact for
every integer day count, no floats, no time zones, no clock. The engine names and expires
options with it; it never reads the current time (block time is data).
"""

from __future__ import annotations

import enum
from typing import Final, NamedTuple

from strikechain.engine.units import (
    NANOS_PER_DAY,
    NANOS_PER_HOUR,
    NANOS_PER_MINUTE,
    NANOS_PER_SECOND,
)

EXPIRY_HOUR_UTC: Final = 8
"""Options expire (and are named for) 08:00 UTC of their expiry day, as on Deribit."""
_EPOCH_SHIFT_DAYS: Final = 719_468
"""Days from 0000-03-01 (the start of era 0 in Hinnant's algorithms) to 1970-01-01."""
_DAYS_PER_ERA: Final = 146_097
"""Days in 400 Gregorian years, after which the calendar repeats."""


class Weekday(enum.IntEnum):
    """Day of the week, Monday = 0 (as ``datetime.date.weekday``)."""

    MONDAY = 0
    TUESDAY = 1
    WEDNESDAY = 2
    THURSDAY = 3
    FRIDAY = 4
    SATURDAY = 5
    SUNDAY = 6


class CivilTime(NamedTuple):
    """A UTC calendar date and time of day, split from integer nanoseconds."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    nanosecond: int


def is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    if month == 2:
        return 29 if is_leap_year(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a valid date (Hinnant's ``days_from_civil``).

    The year is shifted to start in March so that the leap day is the last day of a year;
    Python's floor division makes the era arithmetic correct for negative years too.
    """
    if not 1 <= day <= days_in_month(year, month):
        raise ValueError(f"{year:04d}-{month:02d} has no day {day}")
    shifted_year = year - 1 if month <= 2 else year
    era = shifted_year // 400
    year_of_era = shifted_year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * _DAYS_PER_ERA + day_of_era - _EPOCH_SHIFT_DAYS


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01 (Hinnant's ``civil_from_days``)."""
    shifted = days + _EPOCH_SHIFT_DAYS
    era = shifted // _DAYS_PER_ERA
    day_of_era = shifted - era * _DAYS_PER_ERA
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_from_march = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_from_march + 2) // 5 + 1
    month = month_from_march + 3 if month_from_march < 10 else month_from_march - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


def weekday_from_days(days: int) -> Weekday:
    """1970-01-01 was a Thursday."""
    return Weekday((days + Weekday.THURSDAY) % 7)


def expiry_ns(year: int, month: int, day: int, hour: int = EXPIRY_HOUR_UTC) -> int:
    """Nanoseconds since the epoch of ``hour``:00 UTC on a valid date."""
    if not 0 <= hour <= 23:
        raise ValueError(f"hour must be 0..23, got {hour}")
    return days_from_civil(year, month, day) * NANOS_PER_DAY + hour * NANOS_PER_HOUR


def civil_from_ns(timestamp_ns: int) -> CivilTime:
    days, nanos_of_day = divmod(timestamp_ns, NANOS_PER_DAY)
    hour, rest = divmod(nanos_of_day, NANOS_PER_HOUR)
    minute, rest = divmod(rest, NANOS_PER_MINUTE)
    second, nanosecond = divmod(rest, NANOS_PER_SECOND)
    return CivilTime(*civil_from_days(days), hour, minute, second, nanosecond)


def weekday_from_ns(timestamp_ns: int) -> Weekday:
    return weekday_from_days(timestamp_ns // NANOS_PER_DAY)


def last_friday(year: int, month: int) -> int:
    """Day of the month of the month's last Friday (Deribit's monthly and quarterly expiry)."""
    last_day = days_in_month(year, month)
    weekday = weekday_from_days(days_from_civil(year, month, last_day))
    return last_day - (weekday - Weekday.FRIDAY) % 7
