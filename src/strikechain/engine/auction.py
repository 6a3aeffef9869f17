"""Frequent batch auctions: one uniform clearing price per market per block.

In a batch-auction market orders do not match on arrival; they rest, crossed or not, and at the
end of the block the crossed part of the book clears at a single price (Budish, Cramton and
Shim's frequent batch auction; Injective's end-block auction). Speed inside a block buys
nothing: every crossing order trades at the same price.

Clearing price, among the limit prices in the crossed region (documented tie-breaks):

1. the price that maximizes matched volume ``min(demand(p), supply(p))``, where demand counts
   bids at ``p`` or higher and supply asks at ``p`` or lower;
2. then the smallest imbalance ``|demand(p) - supply(p)|``;
3. then, if every remaining candidate leaves excess demand, the highest of them (buyers press
   the price up); if every one leaves excess supply, the lowest; otherwise the middle one (the
   lower of the two middles).

Allocation is by price, then time: bids from the highest, asks from the lowest, each level
oldest first, paired until one side is exhausted, every pair at the clearing price. The order
with the earlier priority (the smaller order id) is reported as the maker. Two orders of the
same account are never paired: the newer one's self-trade mode cancels the newer (cancel
taker), the older (cancel maker) or both, which can leave the executed volume below the
maximum. Afterwards the book is uncrossed and the rest rests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

from strikechain.engine.book import Book, Order
from strikechain.engine.codes import CancelReason
from strikechain.engine.events import AuctionCleared, Event

_CANCEL_TAKER, _CANCEL_MAKER = 1, 2


class Clearing(NamedTuple):
    price: int
    volume: int
    """Matched volume at ``price`` before self-trade prevention."""


def clearing_price(book: Book) -> Clearing | None:
    """The uniform price of the module docstring, or None if the book is not crossed."""
    best_bid, best_ask = book.best_bid(), book.best_ask()
    if best_bid is None or best_ask is None or best_bid < best_ask:
        return None
    bids = _crossing(book.bids.prices(), lambda p: p >= best_ask)
    asks = _crossing(book.asks.prices(), lambda p: p <= best_bid)
    candidates = sorted(set(bids) | set(asks))
    bid_sizes = {price: book.bids.size(price) for price in bids}
    ask_sizes = {price: book.asks.size(price) for price in asks}
    supply = 0
    ask_index = 0
    demand = sum(bid_sizes[p] for p in bids)
    bid_index = len(bids) - 1  # bids are best (highest) first; walk them from the lowest
    scored: list[tuple[int, int, int, int]] = []  # (volume, -imbalance, excess sign, price)
    for price in candidates:
        while ask_index < len(asks) and asks[ask_index] <= price:
            supply += ask_sizes[asks[ask_index]]
            ask_index += 1
        while bid_index >= 0 and bids[bid_index] < price:
            demand -= bid_sizes[bids[bid_index]]
            bid_index -= 1
        excess = demand - supply
        scored.append((min(demand, supply), -abs(excess), (excess > 0) - (excess < 0), price))
    best_volume, best_balance = max((v, b) for v, b, _, _ in scored)
    tied = [(sign, p) for v, b, sign, p in scored if v == best_volume and b == best_balance]
    signs = {sign for sign, _ in tied}
    prices = [p for _, p in tied]
    if signs == {1}:
        price = prices[-1]
    elif signs == {-1}:
        price = prices[0]
    else:
        price = prices[(len(prices) - 1) // 2]
    return Clearing(price, best_volume)


def _crossing(prices: object, crosses: Callable[[int], bool]) -> list[int]:
    out: list[int] = []
    for price in prices:  # type: ignore[attr-defined]
        if not crosses(price):
            break
        out.append(price)
    return out


class Hooks(Protocol):
    """What an auction needs of the engine: it books fills and cancels through these."""

    def allowed(self, order: Order, lots: int) -> int:
        """How many of ``lots`` the order may fill (less for a reduce-only order)."""
        ...

    def fill(self, maker: Order, taker: Order, price: int, lots: int) -> None:
        """Book a fill (money, positions, the event); both orders' remainders are updated."""
        ...

    def forget(self, order: Order) -> None:
        """Drop a filled order from the engine's indexes."""
        ...

    def cancel(self, book: Book, order: Order, reason: CancelReason) -> None:
        """Cancel an order (self-trade prevention, a spent reduce-only order) with its event."""
        ...


def run(book: Book, events: list[Event], hooks: Hooks) -> None:
    """Clear ``book`` if it is crossed: fills at one price, booked through ``hooks``.

    A reduce-only order fills at most what is left of its owner's position; one with nothing
    left is cancelled (``REDUCE_ONLY``) and the pairing moves on.
    """
    clearing = clearing_price(book)
    if clearing is None:
        return
    price = clearing.price
    bids = [
        o
        for p in _crossing(book.bids.prices(), lambda q: q >= price)
        for o in book.bids.levels[p].values()
    ]
    asks = [
        o
        for p in _crossing(book.asks.prices(), lambda q: q <= price)
        for o in book.asks.levels[p].values()
    ]
    header = len(events)
    volume = 0
    b = a = 0
    while b < len(bids) and a < len(asks):
        bid, ask = bids[b], asks[a]
        if bid.account == ask.account:
            drop_bid, drop_ask = _self_trade(bid, ask)
            if drop_bid:
                hooks.cancel(book, bid, CancelReason.SELF_TRADE)
                b += 1
            if drop_ask:
                hooks.cancel(book, ask, CancelReason.SELF_TRADE)
                a += 1
            continue
        lots = min(bid.remaining, ask.remaining)
        if bid.reduce_only or ask.reduce_only:
            lots = hooks.allowed(ask, hooks.allowed(bid, lots))
            if not lots:  # one of them has nothing left to reduce
                if bid.reduce_only and not hooks.allowed(bid, 1):
                    hooks.cancel(book, bid, CancelReason.REDUCE_ONLY)
                    b += 1
                if ask.reduce_only and not hooks.allowed(ask, 1):
                    hooks.cancel(book, ask, CancelReason.REDUCE_ONLY)
                    a += 1
                continue
        volume += lots
        maker, taker = (bid, ask) if bid.order_id < ask.order_id else (ask, bid)
        for order in (bid, ask):
            if order.remaining == lots:
                book.remove(order)
                order.remaining = 0
                hooks.forget(order)
            else:
                book.reduce(order, lots)
        b += bid.remaining == 0
        a += ask.remaining == 0
        hooks.fill(maker, taker, price, lots)
    if volume:
        events.insert(header, AuctionCleared(-1, book.name, price, volume))


def _self_trade(bid: Order, ask: Order) -> tuple[bool, bool]:
    """Which of two same-account orders to cancel, by the newer order's mode."""
    newer_is_bid = bid.order_id > ask.order_id
    mode = (bid if newer_is_bid else ask).self_trade
    cancel_newer = mode != _CANCEL_MAKER
    cancel_older = mode != _CANCEL_TAKER
    if newer_is_bid:
        return cancel_newer, cancel_older
    return cancel_older, cancel_newer
