"""Checks for agents' parameter structs: each raises a ``ValueError`` naming the struct and the
field, ``MarketMakerParams.half_spread_bps must be > 0, got -1.0``, so a scenario file's mistake
is found where it is loaded (``msgspec.convert`` reports it as a validation error with the same
message).

Instrument names are checked against the venue's listings when an agent starts
(:func:`require_instruments`, :func:`require_instrument`): only then are they known.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from strikechain.engine.instruments import Instrument


def refuse(struct: str, field: str, requirement: str, value: object) -> ValueError:
    return ValueError(f"{struct}.{field} {requirement}, got {value!r}")


def require_positive(struct: str, field: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise refuse(struct, field, "must be > 0", value)


def require_non_negative(struct: str, field: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise refuse(struct, field, "must be >= 0", value)


def require_finite(struct: str, field: str, value: float) -> None:
    if not math.isfinite(value):
        raise refuse(struct, field, "must be finite", value)


def require_between(struct: str, field: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise refuse(struct, field, f"must be between {low} and {high}", value)


def require_instruments(
    struct: str,
    field: str,
    names: tuple[str, ...],
    listed: Mapping[str, Instrument],
    *,
    perpetual_only: bool = False,
) -> list[Instrument]:
    """The named instruments, in order; refuses an empty list, a name listed twice, one the venue
    does not list, and (``perpetual_only``) an option."""
    if not names:
        raise refuse(struct, field, "must name at least one instrument", names)
    if len(set(names)) != len(names):
        raise refuse(struct, field, "must not name an instrument twice", names)
    out = []
    for name in names:
        instrument = listed.get(name)
        if instrument is None:
            raise refuse(struct, field, "must name listed instruments", name)
        if perpetual_only and instrument.is_option:
            raise refuse(struct, field, "must name perpetuals only", name)
        out.append(instrument)
    return out


def require_instrument(
    struct: str,
    field: str,
    name: str,
    listed: Mapping[str, Instrument],
    *,
    perpetual_only: bool = False,
) -> Instrument:
    """The one instrument named by ``field`` (:func:`require_instruments`' checks)."""
    (instrument,) = require_instruments(
        struct, field, (name,), listed, perpetual_only=perpetual_only
    )
    return instrument
