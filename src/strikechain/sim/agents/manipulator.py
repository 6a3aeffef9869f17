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

Perpetuals only.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from strikechain.engine.events import Fill, Rejected
from strikechain.engine.units import NANOS_PER_SECOND
from strikechain.runtime.gateway import Notice, Ticker, Topic
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.grid import BPS, InstrumentGrid, fill_side
from strikechain.sim.agents.orders import take_order
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
        for field in ("after_ns", "tip"):
            require_non_negative(_STRUCT, field, getattr(self, field))


class Manipulator:
    """A manipulator (see the module)."""

    _context: AgentContext
    _grid: InstrumentGrid

    def __init__(self, name: str, params: ManipulatorParams) -> None:
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
        self._ticker: Ticker | None = None

    def start(self, context: AgentContext) -> None:
        self._context = context
        instrument = require_instrument(
            _STRUCT, "instrument", self.params.instrument, context.instruments, perpetual_only=True
        )
        self._grid = InstrumentGrid(instrument)
        gateway = context.gateway
        gateway.subscribe(Topic(account=self.name), self._on_event)
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
        if lots > 0:
            self._send(self.side, lots, reduce_only=False)

    def _finish(self) -> None:
        self.measuring = False
        if self.params.unwind and self.position_lots:
            side = -1 if self.position_lots > 0 else 1
            self._send(side, abs(self.position_lots), reduce_only=True)

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
        grid = self._grid
        self.position_lots += side * fill.size_lots
        self.filled_lots += fill.size_lots
        reference = self._context.reference.price(grid.underlying)
        price = fill.price_ticks * grid.tick_usdc
        self.cost_usdc += side * (price - reference) * fill.size_lots * grid.units_per_lot


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
