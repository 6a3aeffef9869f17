"""Option chains: the strikes and expiries a venue lists around spot, Deribit style.

Expiries at 08:00 UTC: dailies for the next days, weeklies on Fridays, monthlies on the last
Friday of the month, quarterlies on the last Friday of March, June, September and December;
strikes on a "nice" grid (1, 2, 2.5 or 5 times a power of ten) whose step widens with the
square root of time to expiry. :func:`option_chain` is a pure function of its arguments: no
randomness, no set or hash order; its output is sorted by (expiry, strike, call before put).

Limits: at most :data:`MAX_EXPIRIES` expiries and :data:`MAX_STRIKES_PER_EXPIRY` strikes per
expiry, each listed as a call and a put.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Final

import msgspec

from strikechain.engine.calendar import (
    EXPIRY_HOUR_UTC,
    Weekday,
    civil_from_days,
    expiry_ns,
    last_friday,
    weekday_from_days,
)
from strikechain.engine.codes import Rejection
from strikechain.engine.instruments import (
    Instrument,
    MatchingMode,
    OptionType,
    grid_size,
    make_option,
)
from strikechain.engine.units import (
    MAX_EXPONENT,
    NANOS_PER_DAY,
    NANOS_PER_HOUR,
    NumberInput,
    ticks_to_price,
    to_decimal,
)

MAX_EXPIRIES: Final = 32
"""Expiries one chain may list (before duplicates are merged)."""
MAX_STRIKES_PER_SIDE: Final = 50
MAX_STRIKES_PER_EXPIRY: Final = 2 * MAX_STRIKES_PER_SIDE + 1
MAX_CHAIN_PARAMETER: Final = Decimal(10)
"""Upper bound of ``std_devs`` and ``reference_vol`` (1000% vol)."""
YEAR_NS: Final = 365 * NANOS_PER_DAY
"""The strike grid measures time to expiry in years of 365 days."""
MIN_STEP_HORIZON_NS: Final = NANOS_PER_DAY
"""The grid treats an expiry less than a day away as a day away, so that an option listed
minutes before expiry still gets a useful spread of strikes rather than a few ticks."""
_NICE_MANTISSAS: Final = (Fraction(1), Fraction(2), Fraction(5, 2), Fraction(5))
_ALL_MONTHS: Final = tuple(range(1, 13))
_QUARTER_MONTHS: Final = (3, 6, 9, 12)


class ChainPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Which expiries a chain lists and how its strikes are spaced (see :func:`option_chain`)."""

    dailies: int = 4
    """The next N days' 08:00 UTC expiries."""
    weeklies: int = 3
    """The next N Fridays."""
    monthlies: int = 3
    """The next N last Fridays of a month."""
    quarterlies: int = 4
    """The next N last Fridays of March, June, September and December."""
    strikes_per_side: int = 8
    """Strikes above and below the at-the-money strike."""
    std_devs: Decimal = Decimal(2)
    """How many standard deviations of the reference move the strikes on one side span."""
    reference_vol: Decimal = Decimal("0.6")
    """Annualized volatility that sets the reference move (not a mark: it only spaces strikes)."""


DEFAULT_CHAIN_POLICY: Final = ChainPolicy()


def listed_expiries(now_ns: int, policy: ChainPolicy = DEFAULT_CHAIN_POLICY) -> list[int]:
    """Deribit-style expiries after ``now_ns``, ascending and without duplicates.

    A Friday can be a daily, a weekly, a monthly and a quarterly at once; it is listed once.
    """
    _check_policy(policy)
    expiries = [
        *_daily_expiries(now_ns, policy.dailies),
        *_weekly_expiries(now_ns, policy.weeklies),
        *_month_end_expiries(now_ns, policy.monthlies, _ALL_MONTHS),
        *_month_end_expiries(now_ns, policy.quarterlies, _QUARTER_MONTHS),
    ]
    return sorted(dict.fromkeys(expiries))


def strike_step_ticks(
    spot: Decimal, time_to_expiry_ns: int, tick_size: Decimal, policy: ChainPolicy
) -> int:
    """The strike spacing of one expiry, in ticks.

    Rule: the reference move is ``spot * reference_vol * sqrt(T)`` with ``T`` in years of 365
    days (at least :data:`MIN_STEP_HORIZON_NS`). The raw step spreads ``std_devs`` reference
    moves over ``strikes_per_side`` strikes; the step is the smallest "nice" number
    (1, 2, 2.5 or 5 x 10^n) that is at least the raw step and at least one tick, rounded up
    to a whole number of ticks (a no-op for ticks of 1, 2 or 5 x 10^n). Exact: the square
    root is avoided by comparing squares of rationals.
    """
    _check_policy(policy)
    horizon_ns = max(time_to_expiry_ns, MIN_STEP_HORIZON_NS)
    move = Fraction(policy.std_devs) * Fraction(spot) * Fraction(policy.reference_vol)
    raw_squared = (move / policy.strikes_per_side) ** 2 * Fraction(horizon_ns, YEAR_NS)
    tick = Fraction(tick_size)
    nice = _nice_at_least(raw_squared, tick, tick_size.adjusted())
    return math.ceil(nice / tick)


def strikes_around(spot: Decimal, step_ticks: int, tick_size: Decimal, per_side: int) -> list[int]:
    """Strike ticks: the multiple of the step nearest spot (halves up), ``per_side`` steps
    either side of it, keeping only positive strikes; ascending."""
    step = Fraction(step_ticks) * Fraction(tick_size)
    center = math.floor(Fraction(spot) / step + Fraction(1, 2))
    first = max(center - per_side, 1)
    return [index * step_ticks for index in range(first, center + per_side + 1)]


def option_chain(
    underlying: str,
    spot: NumberInput,
    now_ns: int,
    *,
    tick_size: NumberInput,
    lot_size: NumberInput,
    contract_size: NumberInput = 1,
    policy: ChainPolicy = DEFAULT_CHAIN_POLICY,
    matching: MatchingMode = MatchingMode.CONTINUOUS,
) -> list[Instrument]:
    """Calls and puts for every listed expiry and strike around ``spot``, as Deribit lists them.

    Expiries come from :func:`listed_expiries`, each expiry's strikes from
    :func:`strike_step_ticks` and :func:`strikes_around`. Sorted by (expiry, strike, call
    before put) by construction. At most :data:`MAX_EXPIRIES` x
    :data:`MAX_STRIKES_PER_EXPIRY` x 2 instruments. Bad arguments raise ``ValueError`` (this
    is an operator's tool, not a transaction); an instrument the venue cannot list (a symbol,
    a tick size, an expiry beyond 2099) raises ``Rejection(INVALID_INSTRUMENT)``.
    """
    spot_value = _positive_parameter(spot, "spot", None)
    tick = grid_size(tick_size, "tick_size")
    chain: list[Instrument] = []
    for expiry in listed_expiries(now_ns, policy):
        step_ticks = strike_step_ticks(spot_value, expiry - now_ns, tick, policy)
        for strike_ticks in strikes_around(spot_value, step_ticks, tick, policy.strikes_per_side):
            strike = ticks_to_price(strike_ticks, tick)
            chain.extend(
                make_option(
                    underlying,
                    expiry,
                    strike,
                    option_type,
                    tick,
                    lot_size,
                    contract_size=contract_size,
                    matching=matching,
                )
                for option_type in (OptionType.CALL, OptionType.PUT)
            )
    return chain


def _day_expiry_ns(days: int) -> int:
    return days * NANOS_PER_DAY + EXPIRY_HOUR_UTC * NANOS_PER_HOUR


def _first_expiry_day(now_ns: int) -> int:
    """The first day whose 08:00 UTC is after ``now_ns``."""
    today = now_ns // NANOS_PER_DAY
    return today if _day_expiry_ns(today) > now_ns else today + 1


def _daily_expiries(now_ns: int, count: int) -> list[int]:
    first = _first_expiry_day(now_ns)
    return [_day_expiry_ns(first + offset) for offset in range(count)]


def _weekly_expiries(now_ns: int, count: int) -> list[int]:
    first = _first_expiry_day(now_ns)
    friday = first + (Weekday.FRIDAY - weekday_from_days(first)) % 7
    return [_day_expiry_ns(friday + 7 * week) for week in range(count)]


def _month_end_expiries(now_ns: int, count: int, months: tuple[int, ...]) -> list[int]:
    """Last Fridays of the given months, from the current month on, after ``now_ns``."""
    year, month, _ = civil_from_days(now_ns // NANOS_PER_DAY)
    expiries: list[int] = []
    while len(expiries) < count:
        if month in months:
            expiry = expiry_ns(year, month, last_friday(year, month))
            if expiry > now_ns:
                expiries.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return expiries


def _nice_at_least(raw_squared: Fraction, tick: Fraction, tick_exponent: int) -> Fraction:
    """The smallest 1/2/2.5/5 x 10^n that is >= ``tick`` and whose square is >= ``raw_squared``.

    Starts at the tick's decade; the number limits of the inputs bound the search.
    """
    for exponent in range(tick_exponent, tick_exponent + 8 * MAX_EXPONENT):
        decade = Fraction(10) ** exponent
        for mantissa in _NICE_MANTISSAS:
            candidate = mantissa * decade
            if candidate >= tick and candidate * candidate >= raw_squared:
                return candidate
    raise ValueError("strike step out of range: spot, vol or horizon too large for the tick")


def _check_policy(policy: ChainPolicy) -> None:
    counts = (policy.dailies, policy.weeklies, policy.monthlies, policy.quarterlies)
    if any(count < 0 for count in counts) or not 1 <= sum(counts) <= MAX_EXPIRIES:
        raise ValueError(f"expiry counts {counts} must be >= 0 and sum to 1..{MAX_EXPIRIES}")
    if not 1 <= policy.strikes_per_side <= MAX_STRIKES_PER_SIDE:
        raise ValueError(f"strikes_per_side must be 1..{MAX_STRIKES_PER_SIDE}")
    _positive_parameter(policy.std_devs, "std_devs", MAX_CHAIN_PARAMETER)
    _positive_parameter(policy.reference_vol, "reference_vol", MAX_CHAIN_PARAMETER)


def _positive_parameter(value: NumberInput, what: str, maximum: Decimal | None) -> Decimal:
    try:
        number = to_decimal(value, what)
    except Rejection as rejection:
        raise ValueError(rejection.message) from rejection
    if number <= 0 or (maximum is not None and number > maximum):
        bound = "" if maximum is None else f" and at most {maximum}"
        raise ValueError(f"{what} {number} must be positive{bound}")
    return number
