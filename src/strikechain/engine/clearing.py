"""Clearing: what fills, funding and settlement do to cash, positions and cost basis.

Pure integer bookkeeping on :mod:`~strikechain.engine.accounts` structures, called by the
engine; nothing here decides whether something may happen (the engine and its margin policy
do), only what it does, exactly.

Conservation, by construction
- A fill moves the same notional from the buyer's cash to the seller's, and the same lots from
  one position to the other, so cash and open interest are conserved at every fill. Fees move
  from the two sides' cash to the fee pool.
- Funding and option settlement pay amounts proportional to positions. Long and short open
  interest are equal, so the exact (rational) amounts net to zero; each position's amount is
  rounded ``FLOOR`` (a receiver gets at most its exact amount, a payer pays at least its exact
  amount), and the difference, never negative, goes to the venue's dust account. Money is
  neither created nor lost: ``sum(cash) + fee pool + insurance fund + dust`` stays equal to
  deposits minus withdrawals.

Cost basis: growing a position adds the fill's notional (signed); a reduction removes the share
``basis x closed / |position|`` truncated towards zero and realizes ``closed x price - removed``
(signed by the position); a flip opens the rest at the fill price.
"""

from __future__ import annotations

from typing import Final

from strikechain.engine.accounts import Exposure, Market

PPM: Final = 1_000_000


def trade(exposure: Exposure, side: int, lots: int, lot_value: int, fee: int) -> int:
    """Book ``lots`` bought (``side`` 1) or sold (-1) at ``lot_value`` per lot, and ``fee``;
    returns the realized P&L. Cash, basis, position and the holder indexes all move.

    The engine's hottest function after matching itself: the common case (a position grows)
    runs a dozen bytecodes.
    """
    ledger = exposure.ledger
    position = exposure.position
    notional = lot_value * lots
    if side > 0:
        ledger.cash -= notional + fee
        new = position + lots
    else:
        ledger.cash += notional - fee
        new = position - lots
        notional = -notional
    if fee:
        ledger.fees += fee
    realized = 0
    if position == 0 or (position > 0) == (side > 0):
        exposure.basis += notional
        ledger.basis += notional
    else:
        basis = exposure.basis
        held = position if position > 0 else -position
        closed = lots if lots < held else held
        removed = basis * closed // held if basis >= 0 else -(-basis * closed // held)
        closing_value = closed * lot_value
        realized = (closing_value if position > 0 else -closing_value) - removed
        new_basis = basis - removed
        if lots > held:
            opened = (lots - held) * lot_value
            new_basis += opened if side > 0 else -opened
        exposure.basis = new_basis
        ledger.basis += new_basis - basis
        exposure.realized += realized
        ledger.realized += realized
    exposure.position = new
    if not (position and new):
        holders(exposure, position, new)
    return realized


def move_position(exposure: Exposure, new: int) -> None:
    """Set the position to ``new`` lots, keeping the holder indexes current."""
    old = exposure.position
    exposure.position = new
    if not (old and new):
        holders(exposure, old, new)


def holders(exposure: Exposure, old: int, new: int) -> None:
    """A position opened (``old`` 0) or closed (``new`` 0): update the holder indexes."""
    if old == new:
        return
    market = exposure.market
    ledger = exposure.ledger
    state = market.state
    if new:
        market.holders[ledger.account] = exposure
        ledger.positions += 1
        if ledger.positions == 1:
            state.holders[ledger.account] = ledger
    else:
        del market.holders[ledger.account]
        ledger.positions -= 1
        if not ledger.positions:
            del state.holders[ledger.account]


def fee(notional: int, rate_ppm: int) -> int:
    """A fee on ``notional``: ``CEIL`` when charged, a rebate (negative rate) ``FLOOR`` in size."""
    return -(-notional * rate_ppm // PPM)


def proportional_amounts(
    market: Market, numerator: int, denominator: int
) -> tuple[list[tuple[Exposure, int]], int]:
    """Each holder's amount ``position x numerator / denominator`` (``FLOOR``), and the dust.

    A positive amount is received, a negative one paid. Longs and shorts hold equal lots, so
    the exact amounts sum to zero and the floors leave ``dust >= 0`` with the venue.
    """
    amounts = [
        (exposure, exposure.position * numerator // denominator)
        for exposure in market.holders.values()
    ]
    dust = -sum(amount for _, amount in amounts)
    return amounts, dust


def credit(exposure: Exposure, amount: int) -> None:
    """Move ``amount`` into (or, negative, out of) the exposure's sub-ledger cash."""
    exposure.ledger.cash += amount


def close_position(exposure: Exposure, amount: int) -> int:
    """Close the whole position against a cash ``amount`` received (negative: paid); returns
    the realized P&L (the amount less the position's basis)."""
    ledger = exposure.ledger
    realized = amount - exposure.basis
    ledger.cash += amount
    ledger.basis -= exposure.basis
    exposure.basis = 0
    exposure.realized += realized
    ledger.realized += realized
    move_position(exposure, 0)
    return realized
