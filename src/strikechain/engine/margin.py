"""Margin policies: what a sub-ledger must hold for its positions and its open orders.

The engine asks a :class:`MarginPolicy` for each exposure's requirement (initial, maintenance,
and the reserve its open orders hold) at the market's current marks, caches the answers per
sub-ledger, and uses them for the pre-trade check (an order is accepted if it does not raise the
requirement, or if the sub-ledger's free collateral covers the raise, the taker fee and any loss
against the mark), for withdrawals, and for health (below maintenance is liquidatable). The risk
issues plug portfolio margin in behind the same interface.

:class:`StandardMargin` (this part):

- **Perpetuals**: initial and maintenance are fractions of the position's notional at the mark.
- **Options**: a short needs a fraction of the underlying's notional (by default all of it at
  initial, half at maintenance: conservative, never free); a long needs nothing beyond its
  premium, which it paid when it filled.
- **Open orders** reserve initial margin for the risk they could add. Per instrument, only the
  lots that would grow the position count (a sell against a long first closes it), and the buy
  side and the sell side are alternatives, so the reserve is the larger of the two:

  * perps: initial margin on ``max(order value, lots x mark)``, plus what the orders would lose
    at once against the mark (buying above it, selling below it);
  * options: buys reserve their whole premium; sells reserve a short's initial margin plus any
    loss against the mark.

  Orders on the increasing side are taken at their average price (their value in proportion to
  the lots counted). Reduce-only orders never add risk; the engine keeps them out of the sums.

Rounding: every requirement is ``CEIL`` (the venue asks for whole minor units in its favour);
the value of a proportion of sell orders is ``FLOOR`` (what they would bring in), of buy orders
``CEIL`` (what they would cost).
"""

from __future__ import annotations

from typing import Protocol

from strikechain.engine.accounts import Exposure

PPM = 1_000_000


class MarginPolicy(Protocol):
    """What the engine needs of a margin model."""

    def requirement(
        self, exposure: Exposure, side: int = 0, lots: int = 0, value: int = 0
    ) -> tuple[int, int, int]:
        """``(initial, maintenance, reserve)`` of one exposure at its market's marks.

        ``side``, ``lots`` and ``value`` add one more open order (for the pre-trade check)
        without changing the exposure.
        """
        ...


class StandardMargin:
    """Per-position margin: perps by notional at the mark, short options by the underlying."""

    def requirement(
        self, exposure: Exposure, side: int = 0, lots: int = 0, value: int = 0
    ) -> tuple[int, int, int]:
        market = exposure.market
        position = exposure.position
        buy_lots, buy_value = exposure.buy_lots, exposure.buy_value
        sell_lots, sell_value = exposure.sell_lots, exposure.sell_value
        if side > 0:
            buy_lots += lots
            buy_value += value
        elif side < 0:
            sell_lots += lots
            sell_value += value
        mark = market.mark_per_lot
        # Lots of each side that would grow the position, and their value.
        buy_growth = buy_lots + position if position < 0 else buy_lots
        sell_growth = sell_lots - position if position > 0 else sell_lots
        if buy_growth > 0 and buy_growth < buy_lots:
            buy_value = -(-buy_value * buy_growth // buy_lots)
        if sell_growth > 0 and sell_growth < sell_lots:
            sell_value = sell_value * sell_growth // sell_lots
        initial_ppm = market.initial_ppm
        if market.is_option:
            underlying = market.index_per_lot
            if position < 0:
                initial = -(position * underlying * initial_ppm // PPM)
                maintenance = -(position * underlying * market.maintenance_ppm // PPM)
            else:
                initial = maintenance = 0
            buys = buy_value if buy_growth > 0 else 0
            sells = 0
            if sell_growth > 0:
                sells = -(-sell_growth * underlying * initial_ppm // PPM)
                loss = sell_growth * mark - sell_value
                if loss > 0:
                    sells += loss
            return initial, maintenance, buys if buys > sells else sells
        gross = (position if position > 0 else -position) * mark
        initial = -(-gross * initial_ppm // PPM)
        maintenance = -(-gross * market.maintenance_ppm // PPM)
        buys = sells = 0
        if buy_growth > 0:
            at_mark = buy_growth * mark
            buys = -(-(buy_value if buy_value > at_mark else at_mark) * initial_ppm // PPM)
            if buy_value > at_mark:
                buys += buy_value - at_mark
        if sell_growth > 0:
            at_mark = sell_growth * mark
            sells = -(-(sell_value if sell_value > at_mark else at_mark) * initial_ppm // PPM)
            if at_mark > sell_value:
                sells += at_mark - sell_value
        return initial, maintenance, buys if buys > sells else sells


STANDARD_MARGIN = StandardMargin()
