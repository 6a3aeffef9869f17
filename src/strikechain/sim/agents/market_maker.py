"""Market makers: quote perpetuals and options around their own fair value, skew for inventory,
hedge delta on the external venue, requote when their reference moves, and withdraw when their
fills keep marking out badly.

What a market maker does (:class:`MarketMaker`, parameters :class:`MarketMakerParams`)
- **Fair value.** A perpetual: the reference times ``1 + basis_bps``. An option: Black-76 on the
  reference with the maker's own smile (``vol_atm``, ``vol_skew``, ``vol_curvature``;
  :mod:`.fair`), all of an underlying's options in one vectorized call when they are requoted.
  The reference is the maker's :class:`~strikechain.sim.agents.base.ReferenceFeed`: the price as
  it stood the feed's latency ago (the scenario sets it per agent group). That latency is what
  an arbitrageur with a shorter one picks off.
- **Quotes.** ``levels`` bids and asks, post-only (a crossing quote is repriced one tick behind
  the touch, never taken), good till cancelled, each with a client order id. Perpetuals: level
  ``l`` at ``half_spread_bps + l * level_step_bps`` from fair, ``perp_size_lots`` each. Options:
  ``option_half_spread_vol_points + l * option_level_step_vol_points`` of vol (times the
  option's vega) from fair, at least ``option_min_half_spread_ticks``, ``option_size_lots``
  each; an option within ``option_min_expiry_ns`` of expiry is no longer quoted. Bids are
  floored to the tick and asks ceiled.
- **Inventory.** Positions come from the maker's own ``Fill`` events (it subscribes to its
  account's events only). Its net delta per underlying (units of the underlying: perps one unit
  per unit, options their Black-76 delta, plus the hedge) shifts its quotes' centre by
  ``-skew_bps_per_delta_unit * delta`` bps (clamped to ``max_skew_bps``): long, it quotes lower
  and sells more readily. For options the shift is applied to the forward, so each option moves
  by its own delta. Its net vega per underlying (:meth:`MarketMaker.net_vega`: option lots times
  their vega per lot at their last quote, USDC per vol point) lowers the vol of its option quotes
  by ``vega_skew_points_per_unit * vega`` vol points (clamped to ``max_vega_skew_points``), both
  sides, as a price shift of that many points times each option's vega (like the half spread):
  long vega, it quotes lower vols and sells vega. A side that would take ``|delta|`` beyond
  ``max_delta_units`` (if set) is not quoted.
- **Requoting.** Every ``poll_ns`` the maker reads its reference; an instrument is requoted when
  the reference moved more than ``requote_bps`` since its quotes were made, when ``refresh_ns``
  passed, after one of its quotes filled, or when one was cancelled by someone else (the
  venue: liquidation, or its own cancel-all arriving after the new quotes it was meant to
  precede). ``cancel_mode`` ``"cancel_all"`` sends one ``CancelAll`` for the instrument before
  the new quotes (the venue applies cancels before new orders in a block); ``"client_id"``
  cancels each previous quote by its client id.
- **Hedging.** With ``hedge_delta_units > 0`` (and a hedging venue in the context) the net delta
  is brought back to zero on the hedging venue whenever it exceeds that threshold, checked at
  every poll (:class:`~strikechain.sim.agents.hedging.DeltaHedger`).
- **Withdrawal.** Each fill is marked out ``markout_horizon_ns`` after the maker heard of it (at
  the first poll from then): its fair value moved by its delta times the reference's change,
  minus what it paid, over the notional, in bps. With ``withdraw_after_ns > 0``: when the
  notional-weighted average over the fills marked out in the last ``markout_window_ns`` (at
  least ``markout_min_fills`` of them) stays below ``withdraw_markout_bps`` for
  ``withdraw_after_ns``, the maker cancels everything and stops quoting for ``cooldown_ns``,
  then resumes with a fresh window.

Cost: a market-data message is a few dictionary operations (no allocation beyond a tuple per
fill); the work is in the poll, and an option requote costs one vectorized valuation (about
0.5 ms for a maker's whole chain). Every transaction carries ``context.fee(tip)``.
"""

from __future__ import annotations

import collections
import math
from typing import Final

from strikechain.engine.events import Fill, OrderAccepted, OrderCancelled, Rejected
from strikechain.engine.txs import Amend, Cancel, CancelAll, PlaceOrder, PostOnly, Side
from strikechain.engine.units import NANOS_PER_SECOND
from strikechain.runtime.gateway import Notice, Topic
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.fair import OptionSet
from strikechain.sim.agents.grid import BPS, Draws, InstrumentGrid, fill_side
from strikechain.sim.agents.hedging import DeltaHedger
from strikechain.sim.agents.params import MarketMakerParams
from strikechain.sim.agents.registry import KINDS, AgentKind
from strikechain.sim.agents.validation import (
    refuse,
    require_instruments,
)

VOL_POINT: Final = 0.01
_BUY: Final = int(Side.BUY)
_SELL: Final = int(Side.SELL)
_REPRICE: Final = int(PostOnly.REPRICE)
_STRUCT: Final = "MarketMakerParams"


class _Quoting:
    """One instrument: position, the fair value and reference of its last quotes, live quotes."""

    __slots__ = (
        "delta_per_lot",
        "dirty",
        "fair_usdc",
        "grid",
        "live",
        "position_lots",
        "quoted_ns",
        "reference_usdc",
        "slots",
        "vega_per_lot",
    )

    def __init__(self, grid: InstrumentGrid) -> None:
        self.grid = grid
        self.position_lots = 0
        self.delta_per_lot = 0.0 if grid.is_option else grid.units_per_lot
        """Units of the underlying per lot: the lot for a perp, Black-76 delta for an option."""
        self.vega_per_lot = 0.0
        """USDC per vol point per lot at the last quote (0 for a perp)."""
        self.fair_usdc = 0.0
        self.reference_usdc = 0.0
        self.quoted_ns = -1
        self.dirty = True
        self.live: dict[str, None] = {}
        """Client ids of the current quotes not known to be gone."""
        self.slots: dict[tuple[int, int], str] = {}
        """``amend`` mode: (side, level) -> the client id of the order quoting there."""


class _Group:
    """An underlying's perps and options (the options valued together)."""

    __slots__ = ("option_set", "options", "perps", "states")

    def __init__(self, states: list[_Quoting], min_expiry_ns: int) -> None:
        self.states = states
        self.perps = [s for s in states if not s.grid.is_option]
        self.options = [s for s in states if s.grid.is_option]
        self.option_set = OptionSet([s.grid for s in self.options], min_expiry_ns)


class MarketMaker:
    """A market maker (see the module)."""

    _context: AgentContext

    def __init__(self, name: str, params: MarketMakerParams) -> None:
        self.name = name
        self.params = params
        self.quotes_sent = 0
        self.requotes = 0
        self.fills = 0
        self.rejections = 0
        self.withdrawals: list[int] = []
        """When it withdrew (virtual ns)."""
        self.resumes: list[int] = []
        self.hedger: DeltaHedger | None = None
        self._states: dict[str, _Quoting] = {}
        self._groups: dict[str, _Group] = {}
        self._quotes: dict[str, _Quoting] = {}
        """Client id -> its instrument's state, for the current quotes."""
        self._orders: dict[int, str] = {}
        """Order id -> client id, for accepted current quotes."""
        self._order_ids: dict[str, int] = {}
        """Client id -> order id, for accepted current quotes (``amend`` mode)."""
        self._pending_markouts: collections.deque[
            tuple[int, str, float, float, float, float, float]
        ] = collections.deque()
        self._window: collections.deque[tuple[int, float, float]] = collections.deque()
        self._markout_usdc = 0.0
        self._notional_usdc = 0.0
        self._negative_since = -1
        self._withdrawn = False
        self._resume_ns = 0
        half, step = params.half_spread_bps, params.level_step_bps
        self._bid_factors = [1.0 - (half + level * step) * BPS for level in range(params.levels)]
        self._ask_factors = [1.0 + (half + level * step) * BPS for level in range(params.levels)]
        self._basis = 1.0 + params.basis_bps * BPS
        self._seen: dict[str, tuple[int, float]] = {}
        """Underlying -> (time, reference) at the last poll: the volatility estimate's input."""
        self._variance_per_s: dict[str, float] = {}
        """Underlying -> EWMA of squared log returns of its reference, per second."""
        self._block: tuple[int, int] = (0, 0)
        """(height, block time) of the latest notice: the block interval estimate's input."""
        self.block_interval_ns = 0.0
        """The venue's block interval as this maker sees it (EWMA)."""

    # -- start -----------------------------------------------------------------------------

    def start(self, context: AgentContext) -> None:
        params = self.params
        self._context = context
        instruments = require_instruments(
            _STRUCT, "instruments", params.instruments, context.instruments
        )
        by_underlying: dict[str, list[_Quoting]] = {}
        for instrument in instruments:
            state = _Quoting(InstrumentGrid(instrument))
            self._states[instrument.name] = state
            by_underlying.setdefault(instrument.underlying, []).append(state)
        self._groups = {
            underlying: _Group(states, params.option_min_expiry_ns)
            for underlying, states in by_underlying.items()
        }
        if params.hedge_delta_units > 0:
            if context.hedge is None:
                requirement = "needs a hedging venue in the agent's context"
                raise refuse(_STRUCT, "hedge_delta_units", requirement, params.hedge_delta_units)
            self.hedger = DeltaHedger(
                context.hedge,
                self.name,
                params.hedge_delta_units,
                context.hedge.params.max_quantity,
            )
        context.gateway.subscribe(Topic(account=self.name), self._on_notice)
        offset = math.floor(Draws(context.rng).uniform() * params.poll_ns)
        context.scheduler.call_later(offset, self._poll)

    # -- market data: cheap bookkeeping only -----------------------------------------------

    def _on_notice(self, notice: Notice) -> None:
        height, time_ns = self._block
        if notice.height > height:
            if height:
                gap = (notice.timestamp_ns - time_ns) / (notice.height - height)
                estimate = self.block_interval_ns
                self.block_interval_ns = gap if not estimate else estimate + 0.2 * (gap - estimate)
            self._block = (notice.height, notice.timestamp_ns)
        event = notice.event
        if isinstance(event, Fill):
            self._on_fill(event)
        elif isinstance(event, OrderAccepted):
            if event.client_order_id in self._quotes:
                self._orders[event.order_id] = event.client_order_id
                self._order_ids[event.client_order_id] = event.order_id
        elif isinstance(event, OrderCancelled):
            client_id = self._orders.pop(event.order_id, None)
            if client_id is not None:
                self._forget(client_id)
        elif isinstance(event, Rejected) and event.client_order_id in self._quotes:
            self._forget(event.client_order_id)
            self.rejections += 1

    def _on_fill(self, fill: Fill) -> None:
        side = fill_side(fill, self.name)
        state = self._states.get(fill.instrument)
        if side == 0 or state is None:
            return
        self.fills += 1
        state.position_lots += side * fill.size_lots
        state.dirty = True
        if fill.maker_account == self.name and fill.maker_remaining_lots == 0:
            client_id = self._orders.pop(fill.maker_order_id, None)
            if client_id is not None:
                self._forget(client_id, requote=False)
        grid = state.grid
        if self.params.withdraw_after_ns and state.reference_usdc > 0:
            units = side * fill.size_lots * grid.units_per_lot
            delta_per_unit = state.delta_per_lot / grid.units_per_lot
            due = self._context.scheduler.now_ns() + self.params.markout_horizon_ns
            self._pending_markouts.append(
                (
                    due,
                    grid.underlying,
                    units,
                    fill.price_ticks * grid.tick_usdc,
                    state.fair_usdc,
                    state.reference_usdc,
                    delta_per_unit,
                )
            )

    def _forget(self, client_id: str, *, requote: bool = True) -> None:
        """A quote is gone (cancelled, refused or filled)."""
        self._order_ids.pop(client_id, None)
        state = self._quotes.pop(client_id, None)
        if state is None:
            return
        state.live.pop(client_id, None)
        for slot, held in list(state.slots.items()):
            if held == client_id:
                del state.slots[slot]
        if requote:
            state.dirty = True

    # -- the loop ----------------------------------------------------------------------------

    def _poll(self) -> None:
        context = self._context
        now = context.scheduler.now_ns()
        context.scheduler.call_later(self.params.poll_ns, self._poll)
        if self._pending_markouts or self._window:
            self._mark_out(now)
        if self._withdrawn:
            if now < self._resume_ns:
                self._hedge_all()
                return
            self._resume(now)
        elif self._should_withdraw(now):
            self._withdraw(now)
            return
        feed = context.reference
        for underlying, group in self._groups.items():
            reference = feed.price(underlying)
            if self.params.spread_risk_multiple:
                self._observe(underlying, reference, now)
            for state in group.perps:
                if self._due(state, reference, now):
                    self._quote_perp(state, reference, now)
            if group.options and any(self._due(s, reference, now) for s in group.options):
                self._quote_options(group, reference, now)
        self._hedge_all()

    def _observe(self, underlying: str, reference: float, now: int) -> None:
        seen = self._seen.get(underlying)
        self._seen[underlying] = (now, reference)
        if seen is None or now <= seen[0] or reference <= 0 or seen[1] <= 0:
            return
        ratio = reference / seen[1]
        sample = (2.0 * (ratio - 1.0) / (ratio + 1.0)) ** 2 / ((now - seen[0]) / NANOS_PER_SECOND)
        previous = self._variance_per_s.get(underlying)
        self._variance_per_s[underlying] = (
            sample if previous is None else previous + 0.05 * (sample - previous)
        )

    def _risk_half_spread_bps(self, underlying: str) -> float:
        """The half spread the quote's exposure calls for (0 without the adaptive spread)."""
        multiple = self.params.spread_risk_multiple
        variance = self._variance_per_s.get(underlying)
        if not multiple or variance is None:
            return 0.0
        exposed_s = (self.block_interval_ns + self._context.reference.latency_ns) / NANOS_PER_SECOND
        return multiple * math.sqrt(variance * exposed_s) / BPS

    def _due(self, state: _Quoting, reference: float, now: int) -> bool:
        return (
            state.dirty
            or now - state.quoted_ns >= self.params.refresh_ns
            or abs(reference - state.reference_usdc)
            > self.params.requote_bps * BPS * state.reference_usdc
        )

    def net_delta_units(self, underlying: str) -> float:
        """Venue delta (from its fills, options at their last quoted delta) plus the hedge."""
        group = self._groups.get(underlying)
        venue = 0.0
        if group is not None:
            venue = sum(s.position_lots * s.delta_per_lot for s in group.states)
        return venue + (0.0 if self.hedger is None else self.hedger.position(underlying))

    def net_vega(self, underlying: str) -> float:
        """Option lots times their vega per lot at their last quote: USDC per vol point."""
        group = self._groups.get(underlying)
        if group is None:
            return 0.0
        return sum((s.position_lots * s.vega_per_lot for s in group.options), 0.0)

    def _vega_skew_points(self, underlying: str) -> float:
        """Vol points off the option quotes' vol for the net vega (0 without the vega skew)."""
        per_unit = self.params.vega_skew_points_per_unit
        if not per_unit:
            return 0.0
        limit = self.params.max_vega_skew_points
        skew = per_unit * self.net_vega(underlying)
        return limit if skew > limit else -limit if skew < -limit else skew

    def _skew_bps(self, delta: float) -> float:
        limit = self.params.max_skew_bps
        skew = self.params.skew_bps_per_delta_unit * delta
        return limit if skew > limit else -limit if skew < -limit else skew

    def _quote_perp(self, state: _Quoting, reference: float, now: int) -> None:
        grid = state.grid
        delta = self.net_delta_units(grid.underlying)
        fair = reference * self._basis
        center = fair * (1.0 - self._skew_bps(delta) * BPS)
        bid_factors, ask_factors = self._bid_factors, self._ask_factors
        risk = self._risk_half_spread_bps(grid.underlying)
        if risk > self.params.half_spread_bps:
            step = self.params.level_step_bps
            levels = range(self.params.levels)
            bid_factors = [1.0 - (risk + level * step) * BPS for level in levels]
            ask_factors = [1.0 + (risk + level * step) * BPS for level in levels]
        bids = [grid.bid_ticks(center * factor) for factor in bid_factors]
        asks = [grid.ask_ticks(center * factor) for factor in ask_factors]
        state.fair_usdc = fair
        self._replace(state, bids, asks, self.params.perp_size_lots, delta, reference, now)

    def _quote_options(self, group: _Group, reference: float, now: int) -> None:
        params = self.params
        underlying = group.options[0].grid.underlying
        delta = self.net_delta_units(underlying)
        vega_skew = self._vega_skew_points(underlying) * VOL_POINT
        forward = reference * (1.0 - self._skew_bps(delta) * BPS)
        values = group.option_set.values(
            forward, now, params.vol_atm, params.vol_skew, params.vol_curvature
        )
        half = params.option_half_spread_vol_points * VOL_POINT
        step = params.option_level_step_vol_points * VOL_POINT
        for index, state in enumerate(group.options):
            grid = state.grid
            price = values.price[index]
            if math.isnan(price):  # too close to expiry: no more quotes
                if state.live:
                    self._replace(state, [], [], 0, delta, reference, now)
                state.quoted_ns, state.reference_usdc, state.dirty = now, reference, False
                continue
            vega = values.vega[index]
            center = price - vega_skew * vega if vega_skew else price
            floor_usdc = params.option_min_half_spread_ticks * grid.tick_usdc
            halves = [
                max((half + level * step) * vega, floor_usdc) for level in range(params.levels)
            ]
            bids = [grid.bid_ticks(center - h) for h in halves]
            asks = [grid.ask_ticks(center + h) for h in halves]
            state.delta_per_lot = values.delta[index] * grid.units_per_lot
            state.vega_per_lot = vega * VOL_POINT * grid.units_per_lot
            state.fair_usdc = price + values.delta[index] * (reference - forward)
            self._replace(state, bids, asks, params.option_size_lots, delta, reference, now)

    def _replace(
        self,
        state: _Quoting,
        bids: list[int],
        asks: list[int],
        size_lots: int,
        delta: float,
        reference: float,
        now: int,
    ) -> None:
        """Cancel ``state``'s quotes and send the new ones (sides beyond the delta limit left
        out)."""
        context = self._context
        gateway, account, fee = context.gateway, self.name, context.fee(self.params.tip)
        name = state.grid.name
        if self.params.cancel_mode == "amend":
            self._amend(state, bids, asks, size_lots, delta, fee)
            self.requotes += 1
            state.quoted_ns, state.reference_usdc, state.dirty = now, reference, False
            return
        if self.params.cancel_mode == "cancel_all":
            if state.live or state.quoted_ns >= 0:
                gateway.submit(CancelAll(account=account, instrument=name, priority_fee=fee))
        else:
            for client_id in state.live:
                gateway.submit(Cancel(account=account, client_order_id=client_id, priority_fee=fee))
        quotes = self._quotes
        for client_id in state.live:
            quotes.pop(client_id, None)
        live: dict[str, None] = {}
        bid_ok, ask_ok = self._sides(delta, state.delta_per_lot * size_lots)
        for side, prices, ok in ((_BUY, bids, bid_ok), (_SELL, asks, ask_ok)):
            if not ok:
                continue
            for price in prices:
                if price < 1:
                    continue
                client_id = self._place(state, side, price, size_lots, fee)
                live[client_id] = None
                quotes[client_id] = state
        self.quotes_sent += len(live)
        self.requotes += 1
        state.live = live
        state.quoted_ns = now
        state.reference_usdc = reference
        state.dirty = False

    def _amend(
        self,
        state: _Quoting,
        bids: list[int],
        asks: list[int],
        size_lots: int,
        delta: float,
        fee: int,
    ) -> None:
        """``amend`` mode: move each level's resting order to its new price (the last amend of a
        block wins, so the book holds the freshest quotes however many were sent), place a new
        order where a level has none, and cancel a level the delta limit closes. A level whose
        order is not accepted yet waits for it."""
        context, account = self._context, self.name
        gateway = context.gateway
        bid_ok, ask_ok = self._sides(delta, state.delta_per_lot * size_lots)
        for side, prices, ok in ((_BUY, bids, bid_ok), (_SELL, asks, ask_ok)):
            for level, price in enumerate(prices):
                slot = (side, level)
                client_id = state.slots.get(slot)
                order_id = None if client_id is None else self._order_ids.get(client_id)
                if client_id is not None and order_id is None:
                    continue  # placed, not yet accepted
                if order_id is not None:
                    if not ok or price < 1:
                        gateway.submit(Cancel(account=account, order_id=order_id, priority_fee=fee))
                    else:
                        gateway.submit(
                            Amend(
                                account=account,
                                order_id=order_id,
                                price_ticks=price,
                                size_lots=size_lots,
                                post_only=_REPRICE,
                                priority_fee=fee,
                            )
                        )
                    continue
                if not ok or price < 1:
                    continue
                client_id = self._place(state, side, price, size_lots, fee)
                state.slots[slot] = client_id
                state.live[client_id] = None
                self._quotes[client_id] = state
                self.quotes_sent += 1

    def _place(self, state: _Quoting, side: int, price: int, size_lots: int, fee: int) -> str:
        """Send one post-only quote; its client id."""
        context = self._context
        client_id = context.client_order_id()
        context.gateway.submit(
            PlaceOrder(
                account=self.name,
                instrument=state.grid.name,
                side=side,
                price_ticks=price,
                size_lots=size_lots,
                post_only=_REPRICE,
                client_order_id=client_id,
                priority_fee=fee,
            )
        )
        return client_id

    def _sides(self, delta: float, change: float) -> tuple[bool, bool]:
        """Whether a bid and an ask (each moving delta by ``+-change``) stay within the limit."""
        limit = self.params.max_delta_units
        if not limit:
            return True, True
        after_bid, after_ask = abs(delta + change), abs(delta - change)
        size = abs(delta)
        return after_bid <= limit or after_bid < size, after_ask <= limit or after_ask < size

    def _hedge_all(self) -> None:
        hedger = self.hedger
        if hedger is None:
            return
        for underlying, group in self._groups.items():
            venue = sum(s.position_lots * s.delta_per_lot for s in group.states)
            hedger.rebalance(underlying, venue)

    # -- markouts and withdrawal -------------------------------------------------------------

    @property
    def markout_bps(self) -> float | None:
        """The notional-weighted average markout of the fills in the window (None: none)."""
        if not self._window or self._notional_usdc <= 0:
            return None
        return self._markout_usdc / self._notional_usdc / BPS

    def _mark_out(self, now: int) -> None:
        context = self._context
        pending, window, feed = self._pending_markouts, self._window, context.reference
        while pending and pending[0][0] <= now:
            _, underlying, units, price, fair, reference, delta_per_unit = pending.popleft()
            theoretical = fair + delta_per_unit * (feed.price(underlying) - reference)
            markout = units * (theoretical - price)
            notional = abs(units) * price
            window.append((now, markout, notional))
            self._markout_usdc += markout
            self._notional_usdc += notional
        horizon = now - self.params.markout_window_ns
        while window and window[0][0] < horizon:
            _, markout, notional = window.popleft()
            self._markout_usdc -= markout
            self._notional_usdc -= notional

    def _should_withdraw(self, now: int) -> bool:
        params = self.params
        if not params.withdraw_after_ns:
            return False
        average = self.markout_bps
        if (
            average is not None
            and len(self._window) >= params.markout_min_fills
            and average < params.withdraw_markout_bps
        ):
            if self._negative_since < 0:
                self._negative_since = now
            return now - self._negative_since >= params.withdraw_after_ns
        self._negative_since = -1
        return False

    def _withdraw(self, now: int) -> None:
        context = self._context
        fee = context.fee(self.params.tip)
        context.gateway.submit(CancelAll(account=self.name, priority_fee=fee))
        for state in self._states.values():
            state.live = {}
        self._quotes.clear()
        self._withdrawn = True
        self._resume_ns = now + self.params.cooldown_ns
        self.withdrawals.append(now)

    def _resume(self, now: int) -> None:
        """Quote again, after cancelling whatever rests (quotes that were in flight when it
        withdrew; the venue applies the cancel before the new quotes of the same block)."""
        context = self._context
        fee = context.fee(self.params.tip)
        context.gateway.submit(CancelAll(account=self.name, priority_fee=fee))
        self._withdrawn = False
        self._negative_since = -1
        self._window.clear()
        self._markout_usdc = self._notional_usdc = 0.0
        for state in self._states.values():
            state.dirty = True
        self.resumes.append(now)

    @property
    def withdrawn(self) -> bool:
        return self._withdrawn

    def position_lots(self, instrument: str) -> int:
        state = self._states.get(instrument)
        return 0 if state is None else state.position_lots


KINDS["market_maker"] = AgentKind(
    params=MarketMakerParams, make=lambda name, params, seed: MarketMaker(name, params)
)
