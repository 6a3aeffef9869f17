"""Manipulators: push a thin market's last trade with orders that cross other people's
liquidity, and measure how little of it reaches the mark.

What a manipulator does (:class:`Manipulator`, parameters :class:`ManipulatorParams`)
- ``after_ns`` after it starts, then every ``every_ns``, ``pushes`` times, it sends an
  immediate-or-cancel order in its ``direction`` (``up``: a buy) for ``size_lots`` (less what
  ``max_position_lots`` leaves), limited ``push_bps`` through its reference: it takes every level
  up to ``reference x (1 + push_bps)`` (down: ``1 - push_bps``), so in a thin book the last trade
  prints near that limit. ``every_ns`` after the last push, with ``unwind``, it closes its
  position with one reduce-only immediate-or-cancel order the other way, the same distance
  through its reference.
- It measures from its ticker, from just before the first push until the unwind: the last
  trade, the mark and the index before (0, and no move, if no ticker came before the first
  push), and their furthest values in its direction
  (:meth:`Manipulator.last_trade_move_bps`, :meth:`~Manipulator.mark_move_bps`,
  :meth:`~Manipulator.index_move_bps`), and what its prints cost it against its reference
  (:attr:`Manipulator.cost_usdc`: bought above the reference, sold below).

What the venue does to it
- **No self-trades.** Every order carries a self-trade mode (cancel the taker by default, or the
  maker, or both) and none lets an account trade with itself: crossing its own resting order
  prints nothing. It needs other participants' orders, and pays for every print.
- **The mark ignores the tape.** A perpetual's mark is the oracle's index plus an exponential
  average (``basis_tau_ns``, 60 s by default) of the book's mid over the index, clamped to
  ``basis_clamp_ppm`` (0.5%) of the index (:mod:`strikechain.engine.marks`). The last trade is
  not in it; lifting the asks moves the mid, hence the mark, only by that average's weight while
  the book stays lifted, and never beyond the clamp; a book it empties on one side samples zero
  basis. Margin and liquidations run on the mark, so a push alone liquidates nobody.
- **The index is the reporters'.** Pushing the oracle is a ``reporter`` agent's work
  (``behaviour = "manipulating"``, :mod:`.reporter`): run one beside the manipulator over the
  same window (a reporter starts at the run's start, other agents after the warm-up: offset its
  ``push_after_ns`` by the warm-up). A minority is not the median, and one beyond the oracle's
  ``outlier_ppm`` is dropped; one that widens the aggregate confidence beyond
  ``max_confidence_ppm`` (one of three reporters 150 bp away does) opens the circuit breaker, and
  then takers, the manipulator too, may only reduce their positions (its pushes are refused,
  :attr:`Manipulator.rejections`).
- With price monitoring (``[risk] auctions``) a fill outside the band calls an auction instead.

Wash trades (``wash_account``): the venue refuses a trade of an account with itself, so a real
manipulator wash-trades between two accounts it controls. With ``wash_account`` set, each push is
a wash trade instead of taking others' liquidity: the wash account rests a post-only limit
(GTC) of ``wash_lots`` (0: ``size_lots``) on the other side at the push's target
(``reference x (1 +- push_bps)``, the limit the push would otherwise take up to) and the
manipulator's own account crosses it with an immediate-or-cancel limit at that price, both sent
at the same instant. Under the engine's default ordering (``LANES``,
:mod:`strikechain.engine.ordering`) post-only orders run before takers in a block, so the resting
one is applied first and the trade prints at the target; under ``FEE_PRIORITY`` the resting one
pays one fee unit more to go first; under ``ARRIVAL`` it is sent first. In a thin market (a wide
spread, nothing of others' between the last trade and the target) the last trade prints at the
target and the two accounts' positions net to zero: what it costs is the fees. Others' orders
better than the target are taken first (price priority), and network jitter may split the two
into different blocks (the taker first takes others' liquidity, or nothing; the wash order rests
on): both are the venue's, not the agent's, to prevent. The unwind, with ``unwind``, is a wash
trade the other way at the reference (the wash account rests, the manipulator's reduce-only
immediate-or-cancel crosses it), so both accounts end flat.

The manipulator holds both keys: in the lab an agent's gateway sends transactions for any account
they name (:class:`~strikechain.sim.gateway.LabGateway` hands them to the
:class:`~strikechain.sim.consensus.Mempool`, which hands them to the runtime's inbox; no
signature is checked on that path, signing and nonces are the edges'). The scenario must fund the
wash account: the lab funds agents' accounts only (each ``[[agents]]`` group's ``deposit_usdc``,
per member ``<name>-<n>``), so name it after a member of another funded group (in the tests'
worlds: a key of ``deposits_usdc``). An unfunded wash account's resting order is refused
(:attr:`Manipulator.wash_rejections`) and the push prints nothing of its own.

Measured (besides the above): :attr:`Manipulator.wash_trades` and
:attr:`~Manipulator.wash_prices_ticks` (trades between the two accounts),
:attr:`~Manipulator.wash_position_lots` and :meth:`~Manipulator.net_position_lots` (0 after a
wash push: the two net to zero), :attr:`~Manipulator.wash_cost_usdc` (the wash account's prints
against the reference, the mirror of :attr:`~Manipulator.cost_usdc`) and
:attr:`~Manipulator.fees_usdc` (fees both accounts paid).

Perpetuals only.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from strikechain.engine.events import Fill, Rejected
from strikechain.engine.txs import OrderType, PlaceOrder, PostOnly, TimeInForce
from strikechain.engine.units import NANOS_PER_SECOND, QUOTE_SCALE
from strikechain.runtime.gateway import Notice, Ticker, Topic
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.grid import BPS, InstrumentGrid, fill_side
from strikechain.sim.agents.orders import ioc_order, take_order
from strikechain.sim.agents.registry import KINDS, AgentKind
from strikechain.sim.agents.validation import (
    refuse,
    require_between,
    require_instrument,
    require_non_negative,
    require_positive,
)

MAX_PUSHES: Final = 10_000
MAX_PUSH_BPS: Final = 5_000.0
_STRUCT: Final = "ManipulatorParams"


class ManipulatorParams(msgspec.Struct, frozen=True, kw_only=True):
    """A manipulator's parameters (see the module)."""

    instrument: str
    """The perpetual it pushes."""
    direction: Literal["up", "down"] = "up"
    push_bps: float = 100.0
    """How far through its reference its orders take."""
    size_lots: int = 10
    """Lots per push."""
    after_ns: int = NANOS_PER_SECOND
    """The first push, after it starts (a ticker first gives it the values before)."""
    every_ns: int = NANOS_PER_SECOND
    pushes: int = 10
    max_position_lots: int = 1_000
    unwind: bool = True
    tip: int = 0
    wash_account: str = ""
    """Another account it controls: each push is a wash trade with it ("": none, it takes
    others' liquidity)."""
    wash_lots: int = 0
    """Lots per wash trade (0: ``size_lots``)."""

    def __post_init__(self) -> None:
        if self.direction not in ("up", "down"):
            raise refuse(_STRUCT, "direction", "must be 'up' or 'down'", self.direction)
        require_positive(_STRUCT, "push_bps", self.push_bps)
        if self.push_bps > MAX_PUSH_BPS:
            raise refuse(_STRUCT, "push_bps", f"must be <= {MAX_PUSH_BPS}", self.push_bps)
        for field in ("size_lots", "max_position_lots"):
            if getattr(self, field) < 1:
                raise refuse(_STRUCT, field, "must be >= 1", getattr(self, field))
        require_between(_STRUCT, "pushes", self.pushes, 1, MAX_PUSHES)
        require_positive(_STRUCT, "every_ns", self.every_ns)
        for field in ("after_ns", "tip", "wash_lots"):
            require_non_negative(_STRUCT, field, getattr(self, field))
        if self.wash_account != self.wash_account.strip():
            raise refuse(_STRUCT, "wash_account", "must not be padded", self.wash_account)


class Manipulator:
    """A manipulator (see the module)."""

    _context: AgentContext
    _grid: InstrumentGrid

    def __init__(self, name: str, params: ManipulatorParams) -> None:
        if params.wash_account == name:
            raise refuse(
                _STRUCT, "wash_account", "must be another account than the agent's own", name
            )
        self.name = name
        self.params = params
        self.side = 1 if params.direction == "up" else -1
        self.pushes_sent = 0
        self.filled_lots = 0
        self.position_lots = 0
        self.cost_usdc = 0.0
        self.measuring = False
        self.last_trade_before_ticks = 0
        self.mark_before_minor = 0
        self.index_before_minor = 0
        self.last_trade_extreme_ticks = 0
        """The furthest last trade in its direction while it pushed (0: none)."""
        self.mark_extreme_minor = 0
        self.index_extreme_minor = 0
        self.rejections: dict[str, int] = {}
        """Refused orders by reject code."""
        self.wash = params.wash_account
        self.wash_lots = params.wash_lots or params.size_lots
        self.wash_trades = 0
        """Trades between its two accounts."""
        self.wash_prices_ticks: list[int] = []
        self.wash_position_lots = 0
        self.wash_cost_usdc = 0.0
        self.fees_usdc = 0.0
        """Fees both its accounts paid (negative: rebates)."""
        self.wash_rejections: dict[str, int] = {}
        """The wash account's refused orders by reject code."""
        self._ticker: Ticker | None = None

    def net_position_lots(self) -> int:
        """Its two accounts' position together (its own alone without a wash account)."""
        return self.position_lots + self.wash_position_lots

    def start(self, context: AgentContext) -> None:
        self._context = context
        instrument = require_instrument(
            _STRUCT, "instrument", self.params.instrument, context.instruments, perpetual_only=True
        )
        self._grid = InstrumentGrid(instrument)
        gateway = context.gateway
        gateway.subscribe(Topic(account=self.name), self._on_event)
        if self.wash:
            gateway.subscribe(Topic(account=self.wash), self._on_wash_event)
        gateway.subscribe(Topic(instrument=instrument.name, channel="ticker"), self._on_ticker)
        context.scheduler.call_later(self.params.after_ns, self._push)

    # -- measuring -----------------------------------------------------------------------------

    def last_trade_move_bps(self) -> float:
        """How far the last trade went in its direction (bps of the last trade before)."""
        return self._move(self.last_trade_before_ticks, self.last_trade_extreme_ticks)

    def mark_move_bps(self) -> float:
        return self._move(self.mark_before_minor, self.mark_extreme_minor)

    def index_move_bps(self) -> float:
        return self._move(self.index_before_minor, self.index_extreme_minor)

    def _move(self, before: int, extreme: int) -> float:
        if not before or not extreme:
            return 0.0
        return self.side * (extreme - before) / before / BPS

    def _on_ticker(self, notice: Notice) -> None:
        ticker = notice.event
        if not isinstance(ticker, Ticker):
            return
        self._ticker = ticker
        if self.measuring:
            self._record(ticker)

    def _record(self, ticker: Ticker) -> None:
        side = self.side
        self.last_trade_extreme_ticks = _further(
            side, self.last_trade_extreme_ticks, ticker.last_trade_ticks
        )
        self.mark_extreme_minor = _further(side, self.mark_extreme_minor, ticker.mark_minor)
        self.index_extreme_minor = _further(side, self.index_extreme_minor, ticker.index_minor)

    # -- pushing -------------------------------------------------------------------------------

    def _push(self) -> None:
        context, params = self._context, self.params
        if not self.pushes_sent:
            self.measuring = True
            ticker = self._ticker
            if ticker is not None:
                self.last_trade_before_ticks = ticker.last_trade_ticks
                self.mark_before_minor = ticker.mark_minor
                self.index_before_minor = ticker.index_minor
                self._record(ticker)
        self.pushes_sent += 1
        later = self._push if self.pushes_sent < params.pushes else self._finish
        context.scheduler.call_later(params.every_ns, later)
        lots = min(params.size_lots, params.max_position_lots - self.side * self.position_lots)
        if self.wash:
            lots = min(self.wash_lots, lots)
            if lots > 0:
                target = self._grid.through_ticks(self._reference(), self.side, params.push_bps)
                self._wash(self.side, lots, target, reduce_only=False)
        elif lots > 0:
            self._send(self.side, lots, reduce_only=False)

    def _finish(self) -> None:
        self.measuring = False
        if self.params.unwind and self.position_lots:
            side = -1 if self.position_lots > 0 else 1
            if self.wash:
                at = self._grid.through_ticks(self._reference(), side, 0.0)
                self._wash(side, abs(self.position_lots), at, reduce_only=True)
            else:
                self._send(side, abs(self.position_lots), reduce_only=True)

    def _reference(self) -> float:
        return self._context.reference.price(self._grid.underlying)

    def _wash(self, side: int, lots: int, price_ticks: int, *, reduce_only: bool) -> None:
        """The wash account rests ``lots`` on the other side at ``price_ticks`` (post-only, so
        applied first in the block), and its own account crosses it (immediate-or-cancel)."""
        context, grid = self._context, self._grid
        fee = context.fee(self.params.tip)
        price_ticks = max(price_ticks, 1)
        resting = PlaceOrder(
            account=self.wash,
            instrument=grid.name,
            side=-side,
            size_lots=lots,
            price_ticks=price_ticks,
            order_type=int(OrderType.LIMIT),
            time_in_force=int(TimeInForce.GTC),
            post_only=int(PostOnly.REJECT),
            reduce_only=reduce_only and self.wash_position_lots * side > 0,
            priority_fee=fee + 1,
        )
        taking = ioc_order(
            self.name, grid.name, side, lots, fee, price_ticks=price_ticks, reduce_only=reduce_only
        )
        context.gateway.submit(resting)
        context.gateway.submit(taking)

    def _send(self, side: int, lots: int, *, reduce_only: bool) -> None:
        context, params = self._context, self.params
        order = take_order(
            context,
            self.name,
            self._grid,
            side,
            lots,
            tip=params.tip,
            market=False,
            slippage_bps=params.push_bps,
            reduce_only=reduce_only,
        )
        context.gateway.submit(order)

    def _on_event(self, notice: Notice) -> None:
        event = notice.event
        if isinstance(event, Rejected):
            self.rejections[event.code] = self.rejections.get(event.code, 0) + 1
        if isinstance(event, Fill) and event.instrument == self._grid.name:
            self._on_fill(event)

    def _on_fill(self, fill: Fill) -> None:
        side = fill_side(fill, self.name)
        self.position_lots += side * fill.size_lots
        self.filled_lots += fill.size_lots
        self.cost_usdc += self._cost(side, fill)
        self.fees_usdc += _fee(fill, self.name)
        if self.wash and self.wash in (fill.maker_account, fill.taker_account):
            self.wash_trades += 1
            self.wash_prices_ticks.append(fill.price_ticks)

    def _on_wash_event(self, notice: Notice) -> None:
        event = notice.event
        if isinstance(event, Rejected):
            self.wash_rejections[event.code] = self.wash_rejections.get(event.code, 0) + 1
        if isinstance(event, Fill) and event.instrument == self._grid.name:
            side = fill_side(event, self.wash)
            self.wash_position_lots += side * event.size_lots
            self.wash_cost_usdc += self._cost(side, event)
            self.fees_usdc += _fee(event, self.wash)

    def _cost(self, side: int, fill: Fill) -> float:
        """What ``fill`` cost the side that ``side`` is against the reference."""
        grid = self._grid
        price = fill.price_ticks * grid.tick_usdc
        return side * (price - self._reference()) * fill.size_lots * grid.units_per_lot


def _fee(fill: Fill, account: str) -> float:
    """USDC ``account`` paid in ``fill`` (negative: a rebate)."""
    fee = 0
    if fill.maker_account == account:
        fee += fill.maker_fee
    if fill.taker_account == account:
        fee += fill.taker_fee
    return fee / QUOTE_SCALE


def _further(side: int, current: int, value: int) -> int:
    """The further of two values in direction ``side`` (a 0 is no value)."""
    if not value:
        return current
    if not current:
        return value
    return max(current, value) if side > 0 else min(current, value)


KINDS["manipulator"] = AgentKind(
    params=ManipulatorParams, make=lambda name, params, seed: Manipulator(name, params)
)
