"""An order's modes: side, order type, time in force, post-only and self-trade, as enumerations
of plain ints, and the combinations of them that are valid.

Their own module (re-exported by :mod:`strikechain.engine.txs`) so that the compiled checks of
:mod:`strikechain.engine.wellformed`, which ``txs`` imports, can read the valid combinations
without an import cycle.
"""

from __future__ import annotations

import enum
from typing import Final


class Side(enum.IntEnum):
    BUY = 1
    SELL = -1


class OrderType(enum.IntEnum):
    LIMIT = 1
    MARKET = 2
    """Fills against the book up to the protection band, the rest is cancelled."""


class TimeInForce(enum.IntEnum):
    GTC = 1
    """Good till cancelled: the remainder rests."""
    IOC = 2
    """Immediate or cancel: the remainder is cancelled."""
    FOK = 3
    """Fill or kill: all of it at once, or nothing."""
    GTT = 4
    """Good till time: rests until ``expire_at_ns`` (block time), then expires."""


class PostOnly(enum.IntEnum):
    NONE = 0
    REPRICE = 1
    """Deribit's ``post_only``: an order that would cross is repriced one tick behind the touch."""
    REJECT = 2
    """Deribit's ``reject_post_only``: an order that would cross is rejected."""


class SelfTrade(enum.IntEnum):
    """What happens when an order would trade against the same account (the taker's mode)."""

    CANCEL_TAKER = 1
    CANCEL_MAKER = 2
    CANCEL_BOTH = 3


def _valid_modes() -> frozenset[tuple[int, int, int, int, int]]:
    """Every allowed (side, order type, time in force, post-only, self-trade) combination.

    A market order is immediate (GTC, IOC or FOK, never good-till-time) and never post-only; a
    post-only order is a limit order that may rest (GTC or GTT).
    """
    modes = set()
    for side in Side:
        for order_type in OrderType:
            for tif in TimeInForce:
                for post_only in PostOnly:
                    for self_trade in SelfTrade:
                        if order_type == OrderType.MARKET and (tif == TimeInForce.GTT or post_only):
                            continue
                        if post_only and tif in (TimeInForce.IOC, TimeInForce.FOK):
                            continue
                        modes.add(
                            (int(side), int(order_type), int(tif), int(post_only), int(self_trade))
                        )
    return frozenset(modes)


VALID_ORDER_MODES: Final = _valid_modes()
POST_ONLY_VALUES: Final = frozenset(int(mode) for mode in PostOnly)
MARKET: Final = int(OrderType.MARKET)
GTT: Final = int(TimeInForce.GTT)
