"""Keepers: bid in the venue's liquidation auctions, for a margin, within a gas cap and a
reaction time.

The venue runs auctions only under the keeper-auction baseline
(``LiquidationPolicy.KEEPER_AUCTION``, :mod:`strikechain.engine.liquidator`, the lab's model of
2020's lending protocols): each position of a sub-ledger in the liquidation queue is announced
(``LiquidationAuctionStarted``) and sold to the best :class:`~strikechain.engine.txs.
LiquidationBid` when ``keeper_auction_ns`` is up, at that bid, however bad, if the bidder's margin
carries the position (``LiquidationAuctionEnded`` names the winner). Under the lane (the default)
there are no auctions and a keeper does nothing.

What a keeper does (:class:`Keeper`, parameters :class:`KeeperParams`)
- It subscribes to its perpetuals' events (an account-less topic: the announcements and results
  name the liquidated account, not the keeper) and to its own account's.
- ``reaction_ns`` after it hears of an auction (a keeper's bot is not instant; the notice itself
  comes after the block, over the network) it bids once: a long is bought at
  ``reference x (1 - margin_bps)`` (floored to the tick), a short sold back at ``reference x
  (1 + margin_bps)`` (ceiled), its reference as its feed shows it then. That is its reservation
  price: it does not outbid anyone beyond it. The engine accepts any bid that beats the best so
  far; a worse or equal one is refused ``BID_NOT_BETTER`` (so at an equal price the bid applied
  first keeps it: under fee priority, the higher ``tip``), one after the end
  ``AUCTION_NOT_FOUND``, one for its own position ``NOT_AUTHORIZED``; each refusal is counted by
  code (:attr:`Keeper.rejections`).
- Gas: the bid carries ``context.fee(tip)``, capped by the agent's ``max_fee``. Capped below the
  base fee it waits in the mempool, and lands late or never (congestion turning auctions into
  zero-bid ones is the 2020 lesson). It skips an auction it has heard of too late (the end has
  passed when it would bid, :attr:`Keeper.missed`) and one that would take its position beyond
  ``max_position_lots`` (:attr:`Keeper.skipped`): the winner must have the margin, or nobody
  wins.
- When it wins it holds the position at its bid (no fill: the engine transfers it), and counts
  the win and its profit against its reference at the time it hears of it
  (:attr:`Keeper.profit_usdc`, USDC: ``lots x units x (reference - price)`` for a long bought,
  the other way for a short). With ``unwind`` it then closes the position with one
  immediate-or-cancel order ``unwind_slippage_bps`` through its reference; what the book does not
  take stays.

Perpetuals only (an option's reference is not its price; an option's auction is ignored).
"""

from __future__ import annotations

from typing import Final

import msgspec

from strikechain.engine.events import (
    Fill,
    LiquidationAuctionEnded,
    LiquidationAuctionStarted,
    Rejected,
)
from strikechain.engine.liquidation import KEEPER_AUCTIONS_LIMIT
from strikechain.engine.txs import LiquidationBid, Side
from strikechain.engine.units import NANOS_PER_MILLISECOND
from strikechain.runtime.gateway import Notice, Topic
from strikechain.sim.agents.base import AgentContext
from strikechain.sim.agents.grid import BPS, InstrumentGrid, fill_side
from strikechain.sim.agents.orders import ioc_order
from strikechain.sim.agents.registry import KINDS, AgentKind
from strikechain.sim.agents.validation import (
    refuse,
    require_between,
    require_instruments,
    require_non_negative,
)

MAX_MARGIN_BPS: Final = 5_000.0
MAX_AUCTIONS_TRACKED: Final = KEEPER_AUCTIONS_LIMIT
"""Auctions a keeper follows at once: no more than the engine keeps open."""
_SELL: Final = int(Side.SELL)
_STRUCT: Final = "KeeperParams"


class KeeperParams(msgspec.Struct, frozen=True, kw_only=True):
    """A keeper's parameters (see the module)."""

    instruments: tuple[str, ...]
    """Perpetuals whose auctions it bids in."""
    margin_bps: float = 50.0
    """Its profit margin: how far from its reference it bids."""
    reaction_ns: int = 200 * NANOS_PER_MILLISECOND
    """From hearing of an auction to sending its bid."""
    tip: int = 0
    """Priority fee over the base fee (fee units)."""
    max_position_lots: int = 1_000
    """It skips an auction that would take its position beyond this (per instrument)."""
    unwind: bool = False
    """Close a won position at once with an immediate-or-cancel order."""
    unwind_slippage_bps: float = 50.0

    def __post_init__(self) -> None:
        require_between(_STRUCT, "margin_bps", self.margin_bps, 0.0, MAX_MARGIN_BPS)
        for field in ("reaction_ns", "tip", "unwind_slippage_bps"):
            require_non_negative(_STRUCT, field, getattr(self, field))
        if self.max_position_lots < 1:
            raise refuse(_STRUCT, "max_position_lots", "must be >= 1", self.max_position_lots)


class _Auction:
    """An announced auction the keeper follows."""

    __slots__ = ("auction_id", "ends_ns", "grid", "lots", "side")

    def __init__(self, event: LiquidationAuctionStarted, grid: InstrumentGrid) -> None:
        self.auction_id = event.auction_id
        self.grid = grid
        self.side = event.side
        """The liquidated position's closing side; the keeper trades the other way."""
        self.lots = event.lots
        self.ends_ns = event.ends_ns


class Keeper:
    """A keeper (see the module)."""

    _context: AgentContext

    def __init__(self, name: str, params: KeeperParams) -> None:
        self.name = name
        self.params = params
        self.auctions_seen = 0
        self.bids_sent = 0
        self.priority_fees_paid = 0
        """Declared on the transactions it sent, bids and unwinds (fee units)."""
        self.missed = 0
        self.skipped = 0
        self.wins = 0
        self.won_lots = 0
        self.losses = 0
        """Auctions it bid in that someone else won."""
        self.profit_usdc = 0.0
        self.unwound_lots = 0
        self.rejections: dict[str, int] = {}
        """Refused transactions by reject code."""
        self._grids: dict[str, InstrumentGrid] = {}
        self._positions: dict[str, int] = {}
        self._auctions: dict[int, _Auction] = {}
        self._bid_on: set[int] = set()

    def start(self, context: AgentContext) -> None:
        self._context = context
        instruments = require_instruments(
            _STRUCT,
            "instruments",
            self.params.instruments,
            context.instruments,
            perpetual_only=True,
        )
        gateway = context.gateway
        gateway.subscribe(Topic(account=self.name), self._on_own_event)
        for instrument in instruments:
            self._grids[instrument.name] = InstrumentGrid(instrument)
            self._positions[instrument.name] = 0
            gateway.subscribe(Topic(instrument=instrument.name), self._on_market_event)

    def position_lots(self, instrument: str) -> int:
        return self._positions.get(instrument, 0)

    # -- auctions ------------------------------------------------------------------------------

    def _on_market_event(self, notice: Notice) -> None:
        event = notice.event
        if isinstance(event, LiquidationAuctionStarted):
            self._on_started(event)
        elif isinstance(event, LiquidationAuctionEnded):
            self._on_ended(event)

    def _on_started(self, event: LiquidationAuctionStarted) -> None:
        grid = self._grids.get(event.instrument)
        if (
            grid is None
            or event.account == self.name
            or event.auction_id in self._auctions
            or len(self._auctions) >= MAX_AUCTIONS_TRACKED
        ):
            return
        self.auctions_seen += 1
        auction = _Auction(event, grid)
        self._auctions[auction.auction_id] = auction
        self._context.scheduler.call_later(self.params.reaction_ns, lambda: self._bid(auction))

    def _bid(self, auction: _Auction) -> None:
        context, params = self._context, self.params
        if (
            auction.auction_id not in self._auctions
            or context.scheduler.now_ns() >= auction.ends_ns
        ):
            self.missed += 1  # over (or as good as) before the keeper got to it
            return
        grid = auction.grid
        buys = -auction.side
        after = self._positions[grid.name] + buys * auction.lots
        if abs(after) > params.max_position_lots:
            self.skipped += 1
            return
        reference = context.reference.price(grid.underlying)
        if auction.side == _SELL:  # a long for sale: buy it below the reference
            price = grid.bid_ticks(reference * (1.0 - params.margin_bps * BPS))
        else:
            price = grid.ask_ticks(reference * (1.0 + params.margin_bps * BPS))
        fee = context.fee(params.tip)
        bid = LiquidationBid(
            account=self.name,
            auction_id=auction.auction_id,
            price_ticks=max(price, 1),
            priority_fee=fee,
        )
        context.gateway.submit(bid)
        self.bids_sent += 1
        self.priority_fees_paid += fee
        self._bid_on.add(auction.auction_id)

    def _on_ended(self, event: LiquidationAuctionEnded) -> None:
        auction = self._auctions.pop(event.auction_id, None)
        if auction is None:
            return
        bid = event.auction_id in self._bid_on
        self._bid_on.discard(event.auction_id)
        if event.winner != self.name:
            if bid and event.winner:
                self.losses += 1
            return
        grid = auction.grid
        buys = -auction.side
        self._positions[grid.name] += buys * event.lots
        self.wins += 1
        self.won_lots += event.lots
        reference = self._context.reference.price(grid.underlying)
        price = event.price_ticks * grid.tick_usdc
        self.profit_usdc += buys * (reference - price) * event.lots * grid.units_per_lot
        if self.params.unwind:
            self._unwind(grid, -buys, event.lots, reference)

    def _unwind(self, grid: InstrumentGrid, side: int, lots: int, reference: float) -> None:
        context = self._context
        price = grid.through_ticks(reference, side, self.params.unwind_slippage_bps)
        fee = context.fee(self.params.tip)
        self.priority_fees_paid += fee
        client_id = context.client_order_id()
        order = ioc_order(
            self.name,
            grid.name,
            side,
            lots,
            fee,
            price_ticks=price,
            client_order_id=client_id,
            reduce_only=True,
        )
        context.gateway.submit(order)

    # -- own events ----------------------------------------------------------------------------

    def _on_own_event(self, notice: Notice) -> None:
        event = notice.event
        if isinstance(event, Fill):
            if event.instrument in self._positions:
                moved = fill_side(event, self.name) * event.size_lots
                self._positions[event.instrument] += moved
                self.unwound_lots += abs(moved)
        elif isinstance(event, Rejected):
            self.rejections[event.code] = self.rejections.get(event.code, 0) + 1


KINDS["keeper"] = AgentKind(
    params=KeeperParams, make=lambda name, params, seed: Keeper(name, params)
)
