"""Leveraged traders: open a position at a multiple of their collateral, then hold it whatever
happens, so a crash liquidates them.

What a leveraged trader does (:class:`LeveragedTrader`, parameters :class:`LeveragedParams`)
- ``open_after_ns`` after it starts it aims at ``|position| = leverage x collateral_usdc /
  reference`` (in lots, floored) on ``side`` of one perpetual, and sends an immediate-or-cancel
  limit ``slippage_bps`` through the reference (or a market order, ``market_orders``) for what
  is missing.
- Every ``retry_after_ns`` it looks again: while the position falls short of the target by a lot
  or more, it sends another order for the rest, at most ``max_attempts`` orders per target. An
  order the venue refuses (``Rejected``: margin, breaker, queue) makes the next ones smaller by
  the factor ``shrink``; a book too thin for the whole size leaves the rest for the next try.
- With ``add_after_ns > 0`` it aims again then, at ``add_leverage`` (of the same collateral, at
  the reference of that moment), with a fresh count of attempts.
- Then it holds: no stop, no margin top-up, no reduction. When the venue queues it for
  liquidation (``LiquidationQueued`` on its account) it notes the time
  (:attr:`LeveragedTrader.liquidated_ns`) and sends nothing more.

The collateral is a parameter, not read from the venue: the scenario deposits it (the agent's
size is relative to what it was given, as a trader sizes on the balance it funded).
"""

from __future__ import annotations

import math
from typing import Final, Literal

import msgspec

from strikechain.engine.events import Fill, LiquidationQueued, Rejected
from strikechain.engine.txs import PlaceOrder, Side
from strikechain.engine.units import NANOS_PER_SECOND
from strikechain.runtime.gateway import Notice, Topic
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.grid import InstrumentGrid, fill_side
from strikechain.sim.agents.orders import take_order
from strikechain.sim.agents.registry import KINDS, AgentKind
from strikechain.sim.agents.validation import (
    refuse,
    require_between,
    require_instrument,
    require_non_negative,
    require_positive,
)

MAX_LEVERAGE: Final = 100.0
MAX_ATTEMPTS: Final = 100
_STRUCT: Final = "LeveragedParams"


class LeveragedParams(msgspec.Struct, frozen=True, kw_only=True):
    """A leveraged trader's parameters (see the module)."""

    instrument: str
    """The perpetual it trades."""
    collateral_usdc: float
    """What its size is based on (the scenario deposits it)."""
    side: Literal["long", "short"] = "long"
    leverage: float = 10.0
    open_after_ns: int = 0
    slippage_bps: float = 50.0
    market_orders: bool = False
    retry_after_ns: int = NANOS_PER_SECOND
    max_attempts: int = 5
    shrink: float = 0.7
    add_after_ns: int = 0
    """0: never adds."""
    add_leverage: float = 0.0
    tip: int = 0

    def __post_init__(self) -> None:
        require_positive(_STRUCT, "collateral_usdc", self.collateral_usdc)
        require_between(_STRUCT, "leverage", self.leverage, 0.0, MAX_LEVERAGE)
        if self.leverage <= 0:
            raise refuse(_STRUCT, "leverage", "must be > 0", self.leverage)
        if self.side not in ("long", "short"):
            raise refuse(_STRUCT, "side", "must be 'long' or 'short'", self.side)
        for field in ("open_after_ns", "slippage_bps", "add_after_ns", "tip"):
            require_non_negative(_STRUCT, field, getattr(self, field))
        require_positive(_STRUCT, "retry_after_ns", self.retry_after_ns)
        require_between(_STRUCT, "max_attempts", self.max_attempts, 1, MAX_ATTEMPTS)
        if not 0.0 < self.shrink < 1.0:
            raise refuse(_STRUCT, "shrink", "must be between 0 and 1 (exclusive)", self.shrink)
        require_between(_STRUCT, "add_leverage", self.add_leverage, 0.0, MAX_LEVERAGE)
        if self.add_after_ns and self.add_leverage <= 0:
            raise refuse(_STRUCT, "add_leverage", "must be > 0 when add_after_ns is set", 0.0)


class LeveragedTrader:
    """A leveraged trader (see the module)."""

    _context: AgentContext
    _grid: InstrumentGrid

    def __init__(self, name: str, params: LeveragedParams) -> None:
        self.name = name
        self.params = params
        self.side = int(Side.BUY) if params.side == "long" else int(Side.SELL)
        self.position_lots = 0
        self.target_lots = 0
        """The size it aims at now (unsigned lots)."""
        self.orders_sent = 0
        self.rejections = 0
        self.reached_ns = -1
        """When the position first reached the current target (-1: not yet)."""
        self.liquidated_ns = -1
        """When the venue queued it for liquidation (-1: never)."""
        self._attempts = 0
        self._scale = 1.0

    def start(self, context: AgentContext) -> None:
        self._context = context
        instrument = require_instrument(
            _STRUCT, "instrument", self.params.instrument, context.instruments, perpetual_only=True
        )
        self._grid = InstrumentGrid(instrument)
        context.gateway.subscribe(Topic(account=self.name), self._on_event)
        context.scheduler.call_later(self.params.open_after_ns, self._open)
        if self.params.add_after_ns:
            context.scheduler.call_later(self.params.add_after_ns, self._add)

    def _open(self) -> None:
        self._aim(self.params.leverage)

    def _add(self) -> None:
        self._aim(self.params.add_leverage)

    def _aim(self, leverage: float) -> None:
        context, grid = self._context, self._grid
        if self.liquidated_ns >= 0:
            return
        reference = context.reference.price(grid.underlying)
        self.target_lots = grid.lots(leverage * self.params.collateral_usdc / reference)
        self.reached_ns = -1
        self._attempts = 0
        self._attempt()

    def _attempt(self) -> None:
        context, grid = self._context, self._grid
        held = self.side * self.position_lots
        missing = self.target_lots - held
        if missing < 1:
            if self.reached_ns < 0:
                self.reached_ns = context.scheduler.now_ns()
            return
        if self.liquidated_ns >= 0 or self._attempts >= self.params.max_attempts:
            return
        self._attempts += 1
        lots = max(1, math.floor(missing * self._scale))
        context.gateway.submit(self._order(context, grid, lots))
        self.orders_sent += 1
        context.scheduler.call_later(self.params.retry_after_ns, self._attempt)

    def _order(self, context: AgentContext, grid: InstrumentGrid, lots: int) -> PlaceOrder:
        params = self.params
        return take_order(
            context,
            self.name,
            grid,
            self.side,
            lots,
            tip=params.tip,
            market=params.market_orders,
            slippage_bps=params.slippage_bps,
        )

    def _on_event(self, notice: Notice) -> None:
        event = notice.event
        if isinstance(event, Fill):
            if event.instrument == self._grid.name:
                self.position_lots += fill_side(event, self.name) * event.size_lots
        elif isinstance(event, Rejected):
            if event.account == self.name:
                self.rejections += 1
                self._scale *= self.params.shrink
        elif (
            isinstance(event, LiquidationQueued)
            and event.account == self.name
            and self.liquidated_ns < 0
        ):
            self.liquidated_ns = self._context.scheduler.now_ns()

    def leverage(self, mark_usdc: float, equity_usdc: float) -> float:
        """Its position's notional at ``mark_usdc`` over ``equity_usdc``."""
        grid = self._grid
        return abs(self.position_lots) * grid.units_per_lot * mark_usdc / equity_usdc


KINDS["leveraged"] = AgentKind(
    params=LeveragedParams, make=lambda name, params, seed: LeveragedTrader(name, params)
)
