"""Snipers: pay for a place at the front of the block to take a quote the reference has left
behind.

What a sniper does (:class:`Sniper`, parameters :class:`SniperParams`)
- It watches its perpetuals' tickers (the top of book after every block) and reads its
  reference every ``poll_ns`` as well (its feed's latency is the scenario's, usually short): a
  quote goes stale between blocks, when the reference moves and the maker has not yet requoted.
- When the best ask is below ``reference x (1 - edge_bps)`` it buys, when the best bid is above
  ``reference x (1 + edge_bps)`` it sells: an immediate-or-cancel limit at that threshold (every
  level stale by the edge, nothing else), for at most the top level's size, ``max_take_lots``
  and what ``max_position_lots`` leaves.
- It pays for its place: each order carries ``context.fee(tip)``, the base fee plus ``tip``,
  capped by the agent's ``max_fee``. Under the engine's ``FEE_PRIORITY`` ordering that puts its
  order ahead of the maker's requote (an ``Amend`` or a ``Cancel`` at a lower fee) in the same
  block and it fills at the stale price; under ``LANES`` cancels and post-only amends run before
  any taker whatever the fee, so the same order finds the new quote and misses. When the cap
  leaves less than the base fee it does not send (:attr:`Sniper.priced_out`): the order would
  wait in the mempool and land after the quote is gone.
- One order per instrument is in flight: the next waits for its outcome (filled, cancelled
  remainder, refused) or ``retry_ns`` if it was lost. What it takes, and how it follows its
  orders, is the arbitrageur's (:class:`~strikechain.sim.agents.orders.StaleQuotes`,
  :class:`~strikechain.sim.agents.orders.OrdersInFlight`).

Counters: orders sent (:attr:`~Sniper.attempts`), orders that filled (:attr:`~Sniper.hits`) and
that found nothing (:attr:`~Sniper.misses`: the race lost), lots filled, the priority fees it
declared (:attr:`~Sniper.priority_fees_paid`, fee units: what it pays when included), the venue's
taker fees (:attr:`~Sniper.taker_fees_paid`, USDC minor units), and the edge taken against its
reference at the time of sending (:attr:`~Sniper.edge_usdc`).

Perpetuals only (an option's reference is not its price). No hedging: the arbitrageur
(:mod:`.arbitrageur`) does that; a sniper is the same trade made a race for block space.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

from strikechain.engine.events import Fill, Rejected
from strikechain.engine.units import NANOS_PER_MILLISECOND, NANOS_PER_SECOND
from strikechain.runtime.gateway import Notice, Ticker, Topic
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.grid import BPS, Draws, InstrumentGrid
from strikechain.sim.agents.orders import OrdersInFlight, StaleQuotes
from strikechain.sim.agents.registry import KINDS, AgentKind
from strikechain.sim.agents.validation import (
    refuse,
    require_instruments,
    require_non_negative,
    require_positive,
)

MAX_EDGE_BPS: Final = 10_000.0
_STRUCT: Final = "SniperParams"


class SniperParams(msgspec.Struct, frozen=True, kw_only=True):
    """A sniper's parameters (see the module)."""

    instruments: tuple[str, ...]
    """Perpetuals it watches."""
    edge_bps: float = 10.0
    """How stale a quote must be against the reference to take it."""
    tip: int = 1_000
    """Priority fee over the base fee (fee units): its bid for a place in the block."""
    max_take_lots: int = 10
    max_position_lots: int = 100
    poll_ns: int = 10 * NANOS_PER_MILLISECOND
    """How often it checks the last ticker against a fresh reference (0: on tickers only)."""
    retry_ns: int = NANOS_PER_SECOND

    def __post_init__(self) -> None:
        require_positive(_STRUCT, "edge_bps", self.edge_bps)
        if self.edge_bps >= MAX_EDGE_BPS:
            raise refuse(_STRUCT, "edge_bps", f"must be < {MAX_EDGE_BPS}", self.edge_bps)
        require_non_negative(_STRUCT, "tip", self.tip)
        require_non_negative(_STRUCT, "poll_ns", self.poll_ns)
        require_positive(_STRUCT, "retry_ns", self.retry_ns)
        for field in ("max_take_lots", "max_position_lots"):
            if getattr(self, field) < 1:
                raise refuse(_STRUCT, field, "must be >= 1", getattr(self, field))


class _Watch:
    """One instrument: last ticker, position, what the order in flight was sent against."""

    __slots__ = ("filled", "grid", "position_lots", "reference", "ticker")

    def __init__(self, grid: InstrumentGrid) -> None:
        self.grid = grid
        self.ticker: Ticker | None = None
        self.position_lots = 0
        self.reference = 0.0
        """The reference when the order in flight was sent (USDC per unit)."""
        self.filled = False
        """Whether the order in flight filled anything."""


class Sniper:
    """A sniper (see the module)."""

    _context: AgentContext

    def __init__(self, name: str, params: SniperParams) -> None:
        self.name = name
        self.params = params
        self.attempts = 0
        self.hits = 0
        self.misses = 0
        self.rejections = 0
        self.priced_out = 0
        """Checks that found a stale quote and sent nothing: ``max_fee`` was below the base
        fee."""
        self.filled_lots = 0
        self.priority_fees_paid = 0
        self.taker_fees_paid = 0
        self.edge_usdc = 0.0
        self._watches: dict[str, _Watch] = {}
        self._orders = OrdersInFlight(name, params.retry_ns)
        self._stale = StaleQuotes(
            1.0 - params.edge_bps * BPS,
            1.0 + params.edge_bps * BPS,
            params.max_take_lots,
            params.max_position_lots,
        )

    def start(self, context: AgentContext) -> None:
        params = self.params
        self._context = context
        instruments = require_instruments(
            _STRUCT, "instruments", params.instruments, context.instruments, perpetual_only=True
        )
        gateway = context.gateway
        gateway.subscribe(Topic(account=self.name), self._on_event)
        for instrument in instruments:
            self._watches[instrument.name] = _Watch(InstrumentGrid(instrument))
            gateway.subscribe(Topic(instrument=instrument.name, channel="ticker"), self._on_ticker)
        if params.poll_ns:
            offset = math.floor(Draws(context.rng).uniform() * params.poll_ns)
            context.scheduler.call_later(offset, self._poll)

    def position_lots(self, instrument: str) -> int:
        watch = self._watches.get(instrument)
        return 0 if watch is None else watch.position_lots

    # -- market data ---------------------------------------------------------------------------

    def _on_ticker(self, notice: Notice) -> None:
        ticker = notice.event
        if isinstance(ticker, Ticker):
            watch = self._watches[ticker.instrument]
            watch.ticker = ticker
            self._check(watch, ticker)

    def _poll(self) -> None:
        self._context.scheduler.call_later(self.params.poll_ns, self._poll)
        for watch in self._watches.values():
            if watch.ticker is not None:
                self._check(watch, watch.ticker)

    def _check(self, watch: _Watch, ticker: Ticker) -> None:
        context = self._context
        grid = watch.grid
        if not self._orders.free(grid.name, context.scheduler.now_ns()):
            return  # (one lost is forgotten, neither a hit nor a miss)
        reference = context.reference.price(grid.underlying)
        side, limit_ticks, lots = self._stale.take(grid, ticker, reference, watch.position_lots)
        if lots > 0:
            self._take(watch, side, limit_ticks, lots, reference)

    def _take(
        self, watch: _Watch, side: int, limit_ticks: int, lots: int, reference: float
    ) -> None:
        context = self._context
        fee = context.fee(self.params.tip)
        if context.max_fee and fee < context.base_fee():
            self.priced_out += 1
            return
        self._orders.send(context, watch.grid.name, side, limit_ticks, lots, fee)
        self.attempts += 1
        self.priority_fees_paid += fee
        watch.reference = reference
        watch.filled = False

    # -- own events ----------------------------------------------------------------------------

    def _on_event(self, notice: Notice) -> None:
        event = notice.event
        if isinstance(event, Fill):
            self._on_fill(event)
        ended = self._orders.follow(event)
        if not ended:
            return
        if isinstance(event, Rejected):
            self.rejections += 1  # refused, not outraced: neither a hit nor a miss
        elif self._watches[ended].filled:
            self.hits += 1
        else:
            self.misses += 1

    def _on_fill(self, fill: Fill) -> None:
        instrument = self._orders.instrument_of(fill.taker_order_id)
        if not instrument or fill.taker_account != self.name:
            return
        watch = self._watches[instrument]
        side = fill.taker_side
        grid = watch.grid
        watch.position_lots += side * fill.size_lots
        watch.filled = True
        self.filled_lots += fill.size_lots
        self.taker_fees_paid += fill.taker_fee
        price = fill.price_ticks * grid.tick_usdc
        self.edge_usdc += side * (watch.reference - price) * fill.size_lots * grid.units_per_lot


KINDS["sniper"] = AgentKind(
    params=SniperParams, make=lambda name, params, seed: Sniper(name, params)
)
