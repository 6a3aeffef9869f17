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
  remainder, refused) or ``retry_ns`` if it was lost.

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

from strikechain.engine.events import Fill, OrderAccepted, OrderCancelled, Rejected
from strikechain.engine.txs import PlaceOrder, Side, TimeInForce
from strikechain.engine.units import NANOS_PER_MILLISECOND, NANOS_PER_SECOND
from strikechain.runtime.gateway import Notice, Ticker, Topic
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.grid import Draws, InstrumentGrid
from strikechain.sim.agents.registry import KINDS, AgentKind
from strikechain.sim.agents.validation import (
    refuse,
    require_instruments,
    require_non_negative,
    require_positive,
)

BPS: Final = 1e-4
MAX_EDGE_BPS: Final = 10_000.0
_IOC: Final = int(TimeInForce.IOC)
_BUY: Final = int(Side.BUY)
_SELL: Final = int(Side.SELL)
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
    """One instrument: last ticker, position, the order in flight."""

    __slots__ = (
        "filled",
        "grid",
        "order_id",
        "pending_client_id",
        "position_lots",
        "reference",
        "sent_ns",
        "ticker",
    )

    def __init__(self, grid: InstrumentGrid) -> None:
        self.grid = grid
        self.ticker: Ticker | None = None
        self.position_lots = 0
        self.pending_client_id = ""
        """The order in flight ('': none)."""
        self.order_id = 0
        self.sent_ns = 0
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
        self._by_client_id: dict[str, _Watch] = {}
        self._by_order_id: dict[int, _Watch] = {}
        self._buy_below = 1.0 - params.edge_bps * BPS
        self._sell_above = 1.0 + params.edge_bps * BPS

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
        context, params = self._context, self.params
        if watch.pending_client_id:
            if context.scheduler.now_ns() - watch.sent_ns < params.retry_ns:
                return
            self._settle(watch, counted=False)  # lost: forget it
        grid = watch.grid
        reference = context.reference.price(grid.underlying)
        ask, bid = ticker.best_ask_ticks, ticker.best_bid_ticks
        if ask and ask * grid.tick_usdc < reference * self._buy_below:
            room = params.max_position_lots - watch.position_lots
            lots = min(ticker.best_ask_lots, params.max_take_lots, room)
            if lots > 0:
                limit = grid.bid_ticks(reference * self._buy_below)
                self._take(watch, _BUY, limit, lots, reference)
        elif bid and bid * grid.tick_usdc > reference * self._sell_above:
            room = params.max_position_lots + watch.position_lots
            lots = min(ticker.best_bid_lots, params.max_take_lots, room)
            if lots > 0:
                limit = grid.ask_ticks(reference * self._sell_above)
                self._take(watch, _SELL, limit, lots, reference)

    def _take(
        self, watch: _Watch, side: int, limit_ticks: int, lots: int, reference: float
    ) -> None:
        context = self._context
        fee = context.fee(self.params.tip)
        if context.max_fee and fee < context.base_fee():
            self.priced_out += 1
            return
        client_id = context.client_order_id()
        context.gateway.submit(
            PlaceOrder(
                account=self.name,
                instrument=watch.grid.name,
                side=side,
                price_ticks=max(limit_ticks, 1),
                size_lots=lots,
                time_in_force=_IOC,
                client_order_id=client_id,
                priority_fee=fee,
            )
        )
        self.attempts += 1
        self.priority_fees_paid += fee
        watch.pending_client_id = client_id
        watch.sent_ns = context.scheduler.now_ns()
        watch.reference = reference
        watch.filled = False
        self._by_client_id[client_id] = watch

    # -- own events ----------------------------------------------------------------------------

    def _on_event(self, notice: Notice) -> None:
        event = notice.event
        if isinstance(event, Fill):
            self._on_fill(event)
        elif isinstance(event, OrderAccepted):
            watch = self._by_client_id.get(event.client_order_id)
            if watch is not None:
                watch.order_id = event.order_id
                self._by_order_id[event.order_id] = watch
        elif isinstance(event, OrderCancelled):
            watch = self._by_order_id.get(event.order_id)
            if watch is not None:
                self._settle(watch)
        elif isinstance(event, Rejected):
            watch = self._by_client_id.get(event.client_order_id)
            if watch is not None:
                self.rejections += 1  # refused, not outraced: neither a hit nor a miss
                self._settle(watch, counted=False)

    def _on_fill(self, fill: Fill) -> None:
        watch = self._by_order_id.get(fill.taker_order_id)
        if watch is None or fill.taker_account != self.name:
            return
        side = fill.taker_side
        grid = watch.grid
        watch.position_lots += side * fill.size_lots
        watch.filled = True
        self.filled_lots += fill.size_lots
        self.taker_fees_paid += fill.taker_fee
        price = fill.price_ticks * grid.tick_usdc
        self.edge_usdc += side * (watch.reference - price) * fill.size_lots * grid.units_per_lot
        if fill.taker_remaining_lots == 0:
            self._settle(watch)

    def _settle(self, watch: _Watch, *, counted: bool = True) -> None:
        """The order in flight is done (or given up): ``counted``, a hit if it filled, else a
        miss."""
        if counted:
            if watch.filled:
                self.hits += 1
            else:
                self.misses += 1
        self._by_client_id.pop(watch.pending_client_id, None)
        self._by_order_id.pop(watch.order_id, None)
        watch.pending_client_id = ""
        watch.order_id = 0


KINDS["sniper"] = AgentKind(
    params=SniperParams, make=lambda name, params, seed: Sniper(name, params)
)
