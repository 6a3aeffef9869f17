"""Position limits: caps on open interest and on one account's position, and initial margin that
grows with a position's size relative to what its market can absorb.

Pure functions of integers, for the engine's order path and its margin policy; the parameters
are data (:class:`strikechain.engine.params.PositionLimits`, copied onto each
:class:`~strikechain.engine.accounts.Market` when it is listed), in the instrument's lots, with 0
meaning no limit.

- :func:`check_caps` judges an order **as if all of it filled, together with the account's
  other open orders on the same side** (the worst case the order can lead to), against the
  market's long open interest and the account's ``|position|``. Orders that only reduce the
  position are never refused, even when the position is already above a cap (lowered since):
  limits may stop risk from growing, never stop it from shrinking.
- :func:`size_scaled_ppm` is the initial margin rate of a position of a given size:
  ``base x (1 + |position| / liquidity)``, ``CEIL``, at most 100%. Linear rather than
  square-root, because (a) under a linear price-impact model, unwinding ``n`` lots from a market
  that absorbs ``L`` costs about ``n^2 / L``, and ``n x base x (1 + n / L)`` has that shape; (b)
  beyond ``L``, where a liquidation really cannot find the other side, it is the more
  conservative of the two (a square root charges more for small positions, which the base rate
  already covers, and less for the large ones that matter); (c) it is exact in integers and its
  reach is easy to state: the rate reaches 100% (no leverage at all) at
  ``L x (1 / base - 1)`` lots, 19 L at a 5% base.

Limits: the size add-on looks at one account's position, so splitting a position across
accounts avoids it; the per-account and open-interest caps bound what that can achieve. The
liquidity parameter is set by a (timelocked) parameter change and never read from the live book,
which anyone can spoof for a block.
"""

from __future__ import annotations

from typing import Final

from strikechain.engine.codes import RejectCode

PPM: Final = 1_000_000


def growing_lots(position_lots: int, side: int, lots: int) -> int:
    """How many of ``lots`` on ``side`` (+1 buy, -1 sell) would grow ``|position|``: all of
    them on the position's side (or from flat), those beyond closing it on the other."""
    if side * position_lots >= 0:
        return lots
    held = position_lots if position_lots > 0 else -position_lots
    return lots - held if lots > held else 0


def check_caps(
    *,
    open_interest_cap_lots: int,
    position_cap_lots: int,
    long_open_interest_lots: int,
    position_lots: int,
    side: int,
    lots: int,
    side_open_lots: int,
) -> RejectCode | None:
    """``None`` if an order may rest, else the cap it would break.

    The order (``side``, ``lots``) is judged as if it and the account's other open orders on
    the same side (``side_open_lots``: the exposure's ``buy_lots`` or ``sell_lots``, which leave
    reduce-only orders out; for an amend, without the order being replaced) all filled:

    - ``POSITION_CAP`` if ``|position after|`` would exceed ``position_cap_lots``;
    - ``OPEN_INTEREST_CAP`` if the long open interest plus the lots that would grow the
      position would exceed ``open_interest_cap_lots``. A fill raises long open interest by at
      most the lots that grow one side's position (the other side may be closing), so this is
      the worst case.

    Orders none of whose lots grow the position pass whatever the caps; 0 caps are no caps.
    Cheap enough for every order: a few integer operations, and the open interest is read only
    when its cap is set (callers may pass 0 otherwise).
    """
    total = side_open_lots + lots
    growing = growing_lots(position_lots, side, total)
    if growing <= 0:
        return None
    if position_cap_lots:
        after = position_lots + side * total
        if (after if after > 0 else -after) > position_cap_lots:
            return RejectCode.POSITION_CAP
    if open_interest_cap_lots and long_open_interest_lots + growing > open_interest_cap_lots:
        return RejectCode.OPEN_INTEREST_CAP
    return None


def size_scaled_ppm(base_ppm: int, position_lots: int, liquidity_lots: int) -> int:
    """The initial margin rate of a position of ``position_lots`` (either sign):
    ``CEIL(base x (1 + |position| / liquidity))``, at most 100% (or ``base_ppm`` if that is
    higher). ``base_ppm`` at zero size, and always when ``liquidity_lots`` is 0 (no add-on);
    never decreasing in ``|position|``."""
    if liquidity_lots <= 0 or position_lots == 0:
        return base_ppm
    size = position_lots if position_lots > 0 else -position_lots
    scaled = -(-base_ppm * (liquidity_lots + size) // liquidity_lots)
    ceiling = base_ppm if base_ppm > PPM else PPM
    return scaled if scaled < ceiling else ceiling
