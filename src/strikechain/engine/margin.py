"""Margin policies: what a sub-ledger must hold for its positions and its open orders.

The engine asks a :class:`MarginPolicy` for each exposure's requirement (initial, maintenance,
and the reserve its open orders hold) at the market's current marks, caches the answers per
sub-ledger, and uses them for the pre-trade check (an order is accepted if the sub-ledger's free
collateral, with the order's reserve and, for a possible taker, its fee, stays non-negative, or
if the order only reduces the position), for withdrawals, and for health (below maintenance is
liquidatable). The risk issues plug portfolio margin in behind the same interface.

:class:`StandardMargin` (this part):

- **Perpetuals**: initial and maintenance are fractions of the position's notional at the mark.
  When the market has a liquidity parameter, the initial rate grows with the position's size
  (:func:`strikechain.engine.position_limits.size_scaled_ppm`: ``base x (1 + |position| / L)``).
- **Options** (Deribit's standard margin in USDC-linear terms, per lot; ``S`` the index per lot,
  ``K`` the strike per lot, ``m`` the option's mark per lot, all Market fields): a short needs
  at initial ``max(base x S - OTM, floor x S) + m`` (15% of the index less how far out of the
  money the strike is, ``OTM = max(0, K - S)`` for calls and ``max(0, S - K)`` for puts, never
  below 10%), and at maintenance ``7.5% x S + m``; a short put's maintenance is at least
  ``7.5% x m + m`` (Deribit's coin-terms put floor times the index: see
  :class:`~strikechain.engine.params.MarginParams`), and initial margin is never below
  maintenance. A long is paid in full: its initial and maintenance requirement is its own value
  at the mark, so a long option never backs other risk (no leverage on premium) and can never
  by itself make a sub-ledger liquidatable.
  *Not done*: spreads within an expiry (a short call covered by a long call, and so on) could
  be margined at their maximum loss; that needs a view of the whole sub-ledger, which this
  per-exposure interface does not have, so every short is margined alone.
- **Open orders** reserve what filling them would take from free collateral. Per instrument,
  only the lots that would grow the position count for margin (a sell against a long first
  closes it), and the buy side and the sell side are alternatives, so the reserve is the larger
  of the two sides' charges:

  * perps: initial margin on the growing lots' share of ``sum(lots x max(price, mark))`` over
    the side's orders: an order through the mark is margined at the mark, one beyond it at its
    price, whichever fills first (kept as aggregates: a side's value, lots and loss against the
    mark give the sum exactly at the marks the orders were placed at). With the size add-on,
    at the rate of the position the whole side would leave, plus what that higher rate adds
    to the position already held on that side;
  * options: buys, the growing lots at the mark (they will need their full value); sells, a
    short's initial margin (with its mark) on the growing lots;
  * plus every open order's **loss against the mark**, on both sides: what its lots lose at
    once when they fill (buying above the mark, selling below it). It is fixed per lot when the
    order is placed or amended (``Order.loss_per_lot``) and summed over the open lots, so one
    order's loss is never offset by another order's distance from the mark, nor hidden behind
    the other side's larger margin (the sides are alternatives for margin, not for losses: a
    fill on one side realizes its loss while the other side's orders stay open).

  Growing lots are taken at the side's average price (the value in proportion to the lots
  counted). Reduce-only orders never add risk; the engine keeps them out of the sums.

Rounding: every requirement, and every proportion of a side's margin base, is ``CEIL`` (the
venue asks for whole minor units in its favour). Option margin is computed per lot in
millionths of a minor unit and rounded once for all the lots, from the per-lot marks the engine
keeps (``FLOOR`` per lot, see :mod:`strikechain.engine.marks`); the strike per lot is exact.
"""

from __future__ import annotations

from typing import Final, Protocol

from strikechain.engine.accounts import Exposure, Market
from strikechain.engine.position_limits import size_scaled_ppm

PPM: Final = 1_000_000


class MarginPolicy(Protocol):
    """What the engine needs of a margin model."""

    def requirement(
        self, exposure: Exposure, side: int = 0, lots: int = 0, value: int = 0, loss: int = 0
    ) -> tuple[int, int, int]:
        """``(initial, maintenance, reserve)`` of one exposure at its market's marks.

        ``side``, ``lots``, ``value`` and ``loss`` add one more open order (for the pre-trade
        check) without changing the exposure.
        """
        ...

    def order_bound(self, exposure: Exposure, side: int, lots: int, value: int, loss: int) -> int:
        """An upper bound of what one more order can add to the exposure's requirement, cheaper
        than :meth:`requirement`: a sub-ledger whose free collateral covers it with room takes
        the order on the fast path, without recomputing anything."""
        ...


class StandardMargin:
    """Per-position margin: perps by notional at the mark (with a size add-on where the market
    sets one), short options by Deribit's standard rule, long options by their value."""

    def requirement(
        self, exposure: Exposure, side: int = 0, lots: int = 0, value: int = 0, loss: int = 0
    ) -> tuple[int, int, int]:
        market = exposure.market
        position = exposure.position
        mark = market.mark_per_lot
        buy_lots = exposure.buy_lots
        sell_lots = exposure.sell_lots
        if not (buy_lots or sell_lots or lots):
            return self._positions(market, position, mark)
        buy_value, buy_loss = exposure.buy_value, exposure.buy_loss
        sell_value, sell_loss = exposure.sell_value, exposure.sell_loss
        if side > 0:
            buy_lots += lots
            buy_value += value
            buy_loss += loss
        elif side < 0:
            sell_lots += lots
            sell_value += value
            sell_loss += loss
        # Lots of each side that would grow the position, and their value.
        buy_growth = buy_lots + position if position < 0 else buy_lots
        sell_growth = sell_lots - position if position > 0 else sell_lots
        initial, maintenance, _ = self._positions(market, position, mark)
        buys = sells = 0
        losses = buy_loss + sell_loss  # both sides' losses: either side's fill realizes its own
        if market.is_option:
            if buy_growth > 0:
                buys += buy_growth * mark
            if sell_growth > 0:
                short_initial, _ = _short_option_units(market)
                sells += -(-sell_growth * short_initial // PPM) + sell_growth * mark
            return initial, maintenance, (buys if buys > sells else sells) + losses
        initial_ppm = market.initial_ppm
        liquidity = market.liquidity_lots
        if buy_growth > 0:
            base = buy_lots * mark + buy_loss  # sum of lots x max(price, mark) over the bids
            base = max(base, buy_value)
            if buy_growth < buy_lots:
                base = -(-base * buy_growth // buy_lots)
            if liquidity:
                buys += self._scaled(market, base, position, position + buy_lots, initial)
            else:
                buys += -(-base * initial_ppm // PPM)
        if sell_growth > 0:
            base = sell_value + sell_loss  # sum of lots x max(price, mark) over the asks
            base = max(base, sell_lots * mark)
            if sell_growth < sell_lots:
                base = -(-base * sell_growth // sell_lots)
            if liquidity:
                sells += self._scaled(market, base, -position, sell_lots - position, initial)
            else:
                sells += -(-base * initial_ppm // PPM)
        return initial, maintenance, (buys if buys > sells else sells) + losses

    def order_bound(self, exposure: Exposure, side: int, lots: int, value: int, loss: int) -> int:
        """Perps: a side's margin base is the sum of ``lots x max(price, mark)`` over its orders
        (``B`` over ``L`` lots); adding ``l`` lots with base ``b`` moves the growing lots' share
        of it by at most ``l max(b / l, B / L) + b``, so initial margin on three times the
        largest of ``b``, ``l x mark`` and ``l B / L`` bounds the change. With the size add-on,
        at the rate of the largest size the side can reach (``|position| + L + l``), plus what
        the rate's rise (at most ``CEIL(base x l / liquidity)``) adds on the side's base and on
        the position held. Options: buys grow by at most ``l m``, sells by a short's initial
        margin on ``l`` lots. Plus the order's loss against the mark, plus one minor unit for
        each rounding."""
        market = exposure.market
        mark = market.mark_per_lot
        if market.is_option:
            if side > 0:
                return lots * mark + loss + 1
            short_initial, _ = _short_option_units(market)
            return -(-lots * short_initial // PPM) + lots * mark + loss + 1
        at_mark = lots * mark
        if side > 0:
            side_lots = exposure.buy_lots
            side_base = max(exposure.buy_value, side_lots * mark + exposure.buy_loss)
            largest = max(value, at_mark + loss)
        else:
            side_lots = exposure.sell_lots
            side_base = max(exposure.sell_value + exposure.sell_loss, side_lots * mark)
            largest = max(value + loss, at_mark)
        if side_lots:
            largest = max(largest, -(-side_base * lots // side_lots))
        initial_ppm = market.initial_ppm
        liquidity = market.liquidity_lots
        if not liquidity:
            return -(-3 * largest * initial_ppm // PPM) + loss + 2
        position = exposure.position
        held = position if position > 0 else -position
        reached_ppm = size_scaled_ppm(initial_ppm, held + side_lots + lots, liquidity)
        rise_ppm = -(-initial_ppm * lots // liquidity)
        rise = -(-(side_base + held * mark) * rise_ppm // PPM)
        return -(-3 * largest * reached_ppm // PPM) + rise + loss + 4

    @staticmethod
    def _scaled(market: Market, base: int, held: int, size: int, initial: int) -> int:
        """A perp side's margin with the size add-on: ``base`` (its growing lots' value) at the
        rate of the ``size`` the position reaches when the whole side fills, plus, when the
        position is on that side (``held > 0`` lots), what that rate adds to its initial."""
        ppm = size_scaled_ppm(market.initial_ppm, size, market.liquidity_lots)
        charge = -(-base * ppm // PPM)
        if held > 0:
            charge += -(-held * market.mark_per_lot * ppm // PPM) - initial
        return charge

    @staticmethod
    def _positions(market: Market, position: int, mark: int) -> tuple[int, int, int]:
        """The position's own requirement, with no open orders."""
        if market.is_option:
            if position >= 0:
                held = position * mark
                return held, held, 0
            short_initial, short_maintenance = _short_option_units(market)
            premium = -position * mark
            return (
                -(position * short_initial // PPM) + premium,
                -(position * short_maintenance // PPM) + premium,
                0,
            )
        gross = (position if position > 0 else -position) * mark
        initial_ppm = market.initial_ppm
        if market.liquidity_lots:
            initial_ppm = size_scaled_ppm(initial_ppm, position, market.liquidity_lots)
        return (
            -(-gross * initial_ppm // PPM),
            -(-gross * market.maintenance_ppm // PPM),
            0,
        )


def _short_option_units(market: Market) -> tuple[int, int]:
    """A short option's initial and maintenance margin for one lot, without its mark, in
    millionths of a minor unit (rounded once, for all the lots, by the caller):
    initial ``max(base S - OTM, floor S, maintenance)``, maintenance ``maintenance S`` (puts:
    at least ``put floor x m``)."""
    index = market.index_per_lot
    strike = market.strike_per_lot
    maintenance = index * market.maintenance_ppm
    if market.is_call:
        out_of_money = strike - index if strike > index else 0
    else:
        out_of_money = index - strike if index > strike else 0
        maintenance = max(maintenance, market.mark_per_lot * market.put_mark_floor_ppm)
    initial = max(
        index * market.initial_ppm - out_of_money * PPM,
        index * market.initial_floor_ppm,
        maintenance,
    )
    return initial, maintenance


STANDARD_MARGIN = StandardMargin()
