"""Answers to read-only questions about the engine's state (values, not events).

Kept apart from the engine's compiled modules: msgspec Structs are defined in interpreted
modules only.
"""

from __future__ import annotations

import msgspec


class WhatIfMargin(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What one order would do to its sub-ledger's margin, before it is placed
    (``Engine.what_if``): as it stands, with the order resting, and with the order filled in
    full at its price. Amounts in USDC minor units; equity is ``cash + value`` at the marks.

    ``accepted`` is whether the margin check would let the order in now (the rest of the
    order's checks, such as the book's limits and position caps, are not part of the question).
    """

    instrument: str
    underlying: str
    equity: int
    initial: int
    maintenance: int
    reserve: int
    """Now, before the order."""
    resting_initial: int
    resting_maintenance: int
    resting_reserve: int
    resting_free_collateral: int
    """With the order resting: ``equity - initial - reserve``, less a taker's fee."""
    filled_equity: int
    filled_initial: int
    filled_maintenance: int
    filled_reserve: int
    filled_free_collateral: int
    """With the order filled in full at its price (its fee paid, its lots in the position)."""
    accepted: bool
