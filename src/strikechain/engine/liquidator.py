"""The liquidation path through the engine: the lane, the backstop pool, the insurance fund,
auto-deleveraging, and the keeper-auction baseline.

:class:`Liquidator` runs once per block in the liquidation slot (after cancels and keepers'
bids, before any new order; :mod:`strikechain.engine.ordering`), on the sub-ledgers in the
engine's liquidation queue, most under water first. The arithmetic is
:mod:`strikechain.engine.liquidation`'s; this module decides what happens, in what order, and
books it through the engine. Nothing runs on a price the oracle distrusts: an underlying whose
circuit breaker is open waits up to the oracle's ``max_pause_ns``, then liquidates on the last
trusted price with the wider ``stale_price_band_ppm``.

The lane (``LiquidationPolicy.LANE``, the default), per sub-ledger, at most
``subledgers_per_block_max`` per underlying and block:

1. **Bankrupt beyond the fund** (``equity + insurance fund < 0``): the fund pays all it has and
   every position is auto-deleveraged at once against the opposite positions of its market, at
   the bankruptcy price of the sub-ledger's equity after that draw (pro rata by size, or by
   profit x leverage), so the sub-ledger ends at or just above zero and the counterparties
   absorb exactly the rest (:class:`~strikechain.engine.events.Deleveraged`).
2. Otherwise each position is reduced by a step (a share of it, within the notional cap per
   sub-ledger and block) with an IOC order against the book (no taker fee: the liquidation fee
   replaces it), limited by the band around the mark and by the bankruptcy price of the
   position's share of the **loss budget** (:func:`~strikechain.engine.liquidation.loss_budget`:
   its equity while solvent, what the insurance fund can still cover once bankrupt), so the book
   never takes a solvent sub-ledger below zero and never leaves a deficit the fund cannot pay.
3. What the book did not take of the step goes to the **backstop pool** (the venue's
   ``backstop`` account, an ordinary, funded, margined sub-ledger) at the penalty price bounded
   by the bankruptcy price and the mark, as far as the pool's own margin allows.
4. The **liquidation fee** on the notional closed goes to the insurance fund, capped by the
   equity left.
5. A sub-ledger left with negative equity: flat, the insurance fund pays the deficit (what it
   cannot pay stays as bad debt on the flat sub-ledger, which stays queued until the fund or its
   owner covers it: such a sub-ledger takes no slot of the per-block bound); still holding
   positions and beyond the fund, auto-deleveraging (1).

Who pays: the liquidated sub-ledger, then the insurance fund, then (ADL) holders of opposite
positions in the same market. A sub-ledger without positions never pays anything here.

The keeper-auction baseline (``LiquidationPolicy.KEEPER_AUCTION``, the lab's model of 2020's
lending protocols): each position of a queued sub-ledger is announced in an auction of
``keeper_auction_ns``; keepers bid with :class:`~strikechain.engine.txs.LiquidationBid`
transactions (any price that beats the best so far); when time is up the best bidder whose
margin can carry the position takes all of it at its bid, however bad, the fee and the insurance
fund follow as in the lane, and no ADL: what the fund cannot pay is bad debt. With no usable bid
the sub-ledger is announced again. Under the fee-priority ordering keepers' bids compete for
block space with everything else, which is how congestion turned into zero-price auctions on
12 March 2020.

Halted markets (:mod:`strikechain.engine.governance`): nothing here trades on one. A position
in a halted market is left out of the lane's IOC orders, the backstop pool and ADL; a
sub-ledger whose only positions are in halted markets waits in the queue (taking no slot) until
one resumes; a keeper auction on a halted market is not announced, and one whose time is up
waits for the resume to end.

Bounds: at most ``subledgers_per_block_max`` sub-ledgers with positions per underlying and
block, one step per position; ADL closes a bankrupt position in full (it is the last resort,
and a bankrupt position left open loses the counterparties more); at most
:data:`~strikechain.engine.liquidation.KEEPER_AUCTIONS_LIMIT` keeper auctions open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from strikechain.engine import clearing
from strikechain.engine.accounts import Exposure, Market, SubLedger, with_position
from strikechain.engine.book import Order
from strikechain.engine.events import (
    BackstopTaken,
    Deleveraged,
    Fill,
    InsurancePaid,
    LiquidationAuctionEnded,
    LiquidationAuctionStarted,
    LiquidationFee,
    LiquidationOrder,
)
from strikechain.engine.invariant import invariant
from strikechain.engine.liquidation import (
    KEEPER_AUCTIONS_LIMIT,
    SELL,
    AdlCandidate,
    AdlMode,
    LiquidationParams,
    LiquidationPolicy,
    adl_allocation,
    adl_price_per_lot,
    attribute,
    backstop_take_price_per_lot,
    bankruptcy_price_per_lot,
    closing_side,
    insurance_draw,
    ioc_limit_per_lot,
    limit_ticks,
    liquidation_fee,
    loss_budget,
    socialized_loss,
    step_lots,
)

if TYPE_CHECKING:
    from strikechain.engine.engine import Engine

_CANCEL_TAKER: Final = 1


class KeeperAuction:
    """One announced position of a queued sub-ledger (the keeper-auction baseline)."""

    __slots__ = (
        "account",
        "auction_id",
        "best_bidder",
        "best_price_ticks",
        "ends_ns",
        "instrument",
        "lots",
        "side",
        "underlying",
    )

    def __init__(
        self,
        auction_id: int,
        account: str,
        underlying: str,
        instrument: str,
        side: int,
        lots: int,
        ends_ns: int,
        best_bidder: str = "",
        best_price_ticks: int = 0,
    ) -> None:
        self.auction_id = auction_id
        self.account = account
        self.underlying = underlying
        self.instrument = instrument
        self.side = side
        """The position's closing side (SELL a long to the highest bid)."""
        self.lots = lots
        self.ends_ns = ends_ns
        self.best_bidder = best_bidder
        self.best_price_ticks = best_price_ticks


class Liquidator:
    """Runs the liquidation slot of a block for its engine (see the module docstring). Holds
    no state of its own: everything it changes is the engine's."""

    __slots__ = ("engine",)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- the slot -----------------------------------------------------------------------------

    def run(self) -> None:
        """Due keeper auctions; then queued sub-ledgers in queue order, bounded per
        underlying."""
        engine = self.engine
        now = engine.timestamp_ns
        if engine.keeper_auctions:
            self._settle_keeper_auctions()
        taken: dict[str, int] = {}
        for ledger in list(engine.liquidation_queue):
            state = ledger.state
            params = state.params
            oracle = state.oracle
            if params is None or params.liquidation is None or oracle is None:
                continue
            if oracle.liquidations_paused(now):
                continue  # never on a price the oracle distrusts
            lane = params.liquidation
            if not ledger.positions:
                self._cover(ledger, quiet=True)  # a flat deficit takes no slot
                continue
            count = taken.get(state.name, 0)
            if count >= lane.subledgers_per_block_max:
                continue
            if self._halted_only(ledger):
                continue  # nothing to trade until one of its markets resumes
            if lane.policy == LiquidationPolicy.LANE:
                taken[state.name] = count + 1
                band = lane.stale_price_band_ppm if oracle.breaker_open else lane.price_band_ppm
                self._liquidate(ledger, lane, band)
            elif self._announce(ledger, lane):  # one whose auctions run takes no slot
                taken[state.name] = count + 1

    # -- the lane -----------------------------------------------------------------------------

    def _liquidate(self, ledger: SubLedger, lane: LiquidationParams, band_ppm: int) -> None:
        engine = self.engine
        engine._current_positions(ledger)
        equity = ledger.cash + ledger.value
        if equity + engine.insurance_fund < 0:
            self._deleverage(ledger, lane)
            return
        held = self._live_positions(ledger)
        if held:
            weights = [_notional(exposure) for exposure in held]
            budgets = attribute(loss_budget(equity, engine.insurance_fund), weights)
            owned = attribute(equity if equity > 0 else 0, weights)
            closed = 0
            for exposure, budget, own in zip(held, budgets, owned, strict=True):
                closed += self._step(ledger, exposure, lane, band_ppm, budget, own, closed)
            if closed:
                self._charge_fee(ledger, lane, closed)
        equity = ledger.cash + ledger.value
        if equity < 0:
            if not ledger.positions:
                self._cover(ledger)
            elif equity + engine.insurance_fund < 0:
                self._deleverage(ledger, lane)

    def _charge_fee(self, ledger: SubLedger, lane: LiquidationParams, closed: int) -> None:
        """The liquidation fee on ``closed`` notional, to the insurance fund, capped by the
        equity left."""
        engine = self.engine
        engine._current_positions(ledger)
        fee = liquidation_fee(closed, lane.fee_ppm, ledger.cash + ledger.value)
        if fee:
            ledger.cash -= fee
            ledger.fees += fee
            engine.insurance_fund += fee
            engine._touch(ledger)
            engine._events.append(LiquidationFee(-1, ledger.account, ledger.underlying, fee))

    def _live_positions(self, ledger: SubLedger) -> list[Exposure]:
        """The sub-ledger's positions in listed markets with a mark (an expired option awaits
        its settlement instead) that are not halted."""
        books = self.engine.books
        return [
            exposure
            for exposure in ledger.exposures.values()
            if exposure.position
            and exposure.market.mark_per_lot > 0
            and exposure.market.name in books
            and not exposure.market.halted
        ]

    def _halted_only(self, ledger: SubLedger) -> bool:
        """Whether every position the lane could close is in a halted market (and there is
        one): the sub-ledger waits for a resume."""
        books = self.engine.books
        halted = False
        for exposure in ledger.exposures.values():
            market = exposure.market
            if exposure.position and market.mark_per_lot > 0 and market.name in books:
                if not market.halted:
                    return False
                halted = True
        return halted

    def _step(
        self,
        ledger: SubLedger,
        exposure: Exposure,
        lane: LiquidationParams,
        band_ppm: int,
        budget: int,
        own: int,
        already: int,
    ) -> int:
        """One step on one position: the book within its limit, the backstop for the rest.
        Returns the notional closed.

        The limit is the band's edge bounded by the bankruptcy price of the position's loss
        budget. A budget is never negative, so that price is never beyond the mark; it is the
        mark itself when the budget is under a minor unit a lot (then nothing sells below the
        mark)."""
        market = exposure.market
        position = exposure.position
        mark = market.mark_per_lot
        lots = step_lots(
            position,
            lane.step_share_ppm_max,
            lane.notional_per_block_quote_max,
            mark,
            already,
            lane.step_notional_quote_min,
        )
        if lots <= 0:
            return 0
        side = closing_side(position)
        filled = notional = 0
        if not market.in_auction:
            bankruptcy = bankruptcy_price_per_lot(budget, position, mark)
            limit = limit_ticks(
                side, ioc_limit_per_lot(side, mark, band_ppm, bankruptcy), market.value_per_tick_lot
            )
            if limit > 0:
                filled, notional = self._ioc(ledger, exposure, side, lots, limit)
        rest = lots - filled
        if rest and exposure.position:
            lost = (filled * mark - notional) if side == SELL else (notional - filled * mark)
            remaining = exposure.position
            price = backstop_take_price_per_lot(
                side,
                mark,
                lane.backstop_penalty_ppm,
                bankruptcy_price_per_lot(own - lost, remaining, mark),
            )
            taken = self._backstop(ledger, exposure, side, rest, price)
            notional += taken * price
        return notional

    def _ioc(
        self, ledger: SubLedger, exposure: Exposure, side: int, lots: int, limit: int
    ) -> tuple[int, int]:
        """The liquidation order against the book; ``(lots filled, notional)``."""
        engine = self.engine
        market = exposure.market
        order_id = engine.next_order_id
        engine.next_order_id = order_id + 1
        order = Order(
            order_id,
            ledger.account,
            market.name,
            side,
            limit,
            lots,
            lots,
            "",
            0,
            _CANCEL_TAKER,
            True,
            0,
            exposure,
            0,
        )
        events = engine._events
        first = len(events)
        engine._liquidation_order = order_id  # no taker fee: the liquidation fee replaces it
        try:
            engine._match(engine.books[market.name], order, -1)
        finally:
            engine._liquidation_order = 0
        filled = lots - order.remaining
        notional = 0
        for event in events[first:]:
            if type(event) is Fill and event.taker_order_id == order_id:
                notional += event.price_ticks * event.size_lots * market.value_per_tick_lot
        events.append(
            LiquidationOrder(
                -1, order_id, ledger.account, market.name, side, lots, limit, filled, notional
            )
        )
        return filled, notional

    # -- the backstop pool --------------------------------------------------------------------

    def _backstop(
        self, ledger: SubLedger, exposure: Exposure, side: int, lots: int, price: int
    ) -> int:
        """The backstop pool takes up to ``lots`` at ``price`` per lot, as many as its own
        margin allows; returns how many it took."""
        engine = self.engine
        name = engine.venue.backstop
        if ledger.account == name or engine.margin is None:
            return 0
        pool = engine.accounts.get(name)
        pool_ledger = None if pool is None else pool.ledgers.get(ledger.underlying)
        if pool_ledger is None or pool_ledger.in_liquidation or pool_ledger.portfolio:
            return 0
        market = exposure.market
        lots = self._affordable(pool_ledger, market, -side, lots, price)
        if lots <= 0:
            return 0
        pool_exposure = engine._exposure(name, market)
        self._transfer(exposure, pool_exposure, side, lots, price)
        engine._events.append(
            BackstopTaken(-1, ledger.account, market.name, side, lots, price, name)
        )
        return lots

    def _affordable(
        self, ledger: SubLedger, market: Market, side: int, lots: int, price: int
    ) -> int:
        """How many of ``lots`` bought (``side`` +1) or sold at ``price`` per lot the sub-ledger
        can take and keep its free collateral (initial margin and order reserves) at or above
        zero: all of them, or the most a bisection finds (0 if none)."""
        engine = self.engine
        margin = engine.margin
        invariant(margin is not None, "only a margined venue takes positions on margin")
        engine._current(ledger)
        current = ledger.exposures.get(market.name)
        base = current if current is not None else Exposure(ledger=ledger, market=market)
        mark = market.mark_per_lot

        def free(count: int) -> int:
            trial = with_position(base, base.position + side * count)
            initial, _, reserve = margin.requirement(trial)  # type: ignore[union-attr]
            return (
                ledger.cash
                - side * count * price
                + ledger.value
                - base.value
                + trial.position * mark
                - (ledger.initial - base.initial + initial)
                - (ledger.reserve - base.reserve + reserve)
                - ledger.pending
            )

        if free(lots) >= 0:
            return lots
        low, high = 0, lots  # free(low) >= 0 is kept once found; free(high) < 0
        if free(0) < 0:
            return 0
        while high - low > 1:
            middle = (low + high) // 2
            if free(middle) >= 0:
                low = middle
            else:
                high = middle
        return low

    def _transfer(
        self, exposure: Exposure, counterparty: Exposure, side: int, lots: int, price: int
    ) -> None:
        """``lots`` change hands at ``price`` per lot, no fees: ``exposure`` trades ``side``,
        ``counterparty`` the other way."""
        engine = self.engine
        clearing.trade(exposure, side, lots, price, 0)
        clearing.trade(counterparty, -side, lots, price, 0)
        for moved in (exposure, counterparty):
            engine._moved(moved)
            engine._touch(moved.ledger)

    # -- insurance and auto-deleveraging -------------------------------------------------------

    def _cover(self, ledger: SubLedger, quiet: bool = False) -> None:
        """The insurance fund pays a flat sub-ledger's negative equity as far as it can.
        ``quiet``: a deficit still waiting in the queue, reported again only when the fund
        pays something towards it."""
        engine = self.engine
        engine._current_positions(ledger)
        equity = ledger.cash + ledger.value
        if equity >= 0 or ledger.positions:
            return
        paid = self._draw(ledger, -equity)
        if quiet and not paid:
            return
        engine._events.append(
            InsurancePaid(-1, ledger.account, ledger.underlying, paid, -equity - paid)
        )

    def _draw(self, ledger: SubLedger, deficit: int) -> int:
        engine = self.engine
        paid, _ = insurance_draw(deficit, engine.insurance_fund)
        if paid:
            engine.insurance_fund -= paid
            ledger.cash += paid
            ledger.insured += paid
            engine._touch(ledger)
        return paid

    def _deleverage(self, ledger: SubLedger, lane: LiquidationParams) -> None:
        """The fund pays what it has; every live position closes against opposite positions
        at the bankruptcy price of its share of what is still missing."""
        engine = self.engine
        engine._current_positions(ledger)
        equity = ledger.cash + ledger.value
        paid = self._draw(ledger, -equity) if equity < 0 else 0
        engine._events.append(
            InsurancePaid(-1, ledger.account, ledger.underlying, paid, max(-equity - paid, 0))
        )
        equity += paid
        held = self._live_positions(ledger)
        if not held:
            return
        shares = attribute(equity, [_notional(exposure) for exposure in held])
        for exposure, share in zip(held, shares, strict=True):
            self._deleverage_position(ledger, exposure, share, lane.adl_mode)

    def _deleverage_position(
        self, ledger: SubLedger, exposure: Exposure, share: int, mode: AdlMode
    ) -> None:
        engine = self.engine
        market = exposure.market
        position = exposure.position
        side = closing_side(position)
        mark = market.mark_per_lot
        price = adl_price_per_lot(share, position, mark)
        price = max(price, 0)  # nobody pays to be handed a position: the rest stays bad debt
        candidates = []
        for account, opposite in market.holders.items():
            if opposite.position * position >= 0:
                continue
            equity = 0
            if mode == AdlMode.PROFIT_LEVERAGE:
                engine._current_positions(opposite.ledger)
                equity = opposite.ledger.cash + opposite.ledger.value
            value = opposite.position * mark
            candidates.append(
                AdlCandidate(
                    account,
                    opposite.position,
                    value - opposite.basis,
                    equity,
                    value if value > 0 else -value,
                )
            )
        held = position if position > 0 else -position
        for account, lots in adl_allocation(held, candidates, mode):
            counterparty = market.holders[account]
            self._transfer(exposure, counterparty, side, lots, price)
            engine._events.append(
                Deleveraged(
                    -1,
                    ledger.account,
                    account,
                    market.name,
                    side,
                    lots,
                    price,
                    socialized_loss(side, lots, price, mark),
                )
            )

    # -- the keeper-auction baseline -----------------------------------------------------------

    def _announce(self, ledger: SubLedger, lane: LiquidationParams) -> bool:
        """Announce each live position of a queued sub-ledger not already in an auction;
        whether any was."""
        engine = self.engine
        announced = False
        for exposure in self._live_positions(ledger):
            key = (ledger.account, exposure.market.name)
            if key in engine._auction_of or len(engine.keeper_auctions) >= KEEPER_AUCTIONS_LIMIT:
                continue
            auction_id = engine.next_auction_id
            engine.next_auction_id = auction_id + 1
            position = exposure.position
            auction = KeeperAuction(
                auction_id,
                ledger.account,
                ledger.underlying,
                exposure.market.name,
                closing_side(position),
                position if position > 0 else -position,
                engine.timestamp_ns + lane.keeper_auction_ns,
            )
            engine.keeper_auctions[auction_id] = auction
            engine._auction_of[key] = auction_id
            announced = True
            engine._events.append(
                LiquidationAuctionStarted(
                    -1,
                    auction_id,
                    auction.account,
                    auction.instrument,
                    auction.side,
                    auction.lots,
                    auction.ends_ns,
                )
            )
        return announced

    def _settle_keeper_auctions(self) -> None:
        """Every auction whose time is up, oldest first, unless its oracle pauses it."""
        engine = self.engine
        now = engine.timestamp_ns
        for auction in list(engine.keeper_auctions.values()):
            if auction.ends_ns > now:
                continue
            state = engine.underlyings[auction.underlying]
            if state.oracle is not None and state.oracle.liquidations_paused(now):
                continue
            market = engine.markets.get(auction.instrument)
            if market is not None and market.halted:
                continue  # ends once its market resumes
            del engine.keeper_auctions[auction.auction_id]
            del engine._auction_of[auction.account, auction.instrument]
            self._settle(auction)

    def _settle(self, auction: KeeperAuction) -> None:
        """The best bidder takes the position at its bid if its margin can carry it; the
        fee and the insurance fund follow."""
        engine = self.engine
        winner, lots, price_ticks = "", 0, 0
        mine = engine.accounts[auction.account]
        ledger = mine.ledgers[auction.underlying]
        exposure = mine.exposures.get(auction.instrument)
        market = exposure.market if exposure is not None else None
        if (
            exposure is not None
            and market is not None
            and exposure.position
            and closing_side(exposure.position) == auction.side
            and ledger.in_liquidation
            and auction.instrument in engine.books
            and auction.best_bidder
        ):
            held = exposure.position if exposure.position > 0 else -exposure.position
            wanted = auction.lots if auction.lots < held else held
            price = auction.best_price_ticks * market.value_per_tick_lot
            bidder_account = engine.accounts.get(auction.best_bidder)
            bidder = (
                None if bidder_account is None else bidder_account.ledgers.get(auction.underlying)
            )
            if (
                bidder is not None
                and not bidder.in_liquidation
                and self._affordable(bidder, market, -auction.side, wanted, price) == wanted
            ):
                winner, lots, price_ticks = auction.best_bidder, wanted, auction.best_price_ticks
                self._transfer(
                    exposure, engine._exposure(winner, market), auction.side, lots, price
                )
        engine._events.append(
            LiquidationAuctionEnded(
                -1,
                auction.auction_id,
                auction.account,
                auction.instrument,
                winner,
                lots,
                price_ticks,
            )
        )
        if not winner or market is None:
            return
        params = ledger.state.params
        lane = params.liquidation if params is not None else None
        if lane is not None:
            self._charge_fee(ledger, lane, lots * price_ticks * market.value_per_tick_lot)
        self._cover(ledger)


def _notional(exposure: Exposure) -> int:
    position = exposure.position
    return (position if position > 0 else -position) * exposure.market.mark_per_lot
