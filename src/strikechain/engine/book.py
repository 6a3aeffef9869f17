"""The order book of one instrument: price levels in price-time priority.

Structure, per side:

- ``levels``: price (ticks) -> ``OrderedDict`` of resting orders by order id, oldest first. An
  ``OrderedDict`` gives O(1) append, O(1) removal of any order (cancel by id) and O(1) access to
  the oldest (the next maker), all in C.
- a binary heap of prices (negated for bids) for the best price in O(log n). Empty levels leave
  the heap lazily: a price is skipped and dropped when it reaches the top; a set of the prices in
  the heap keeps a price from being pushed twice, and the heap is rebuilt when stale entries
  outnumber live ones, so it stays O(levels) in size.

Invariants (checked by :meth:`Book.check` in tests): every level is non-empty; every order's
side and price match its level and it has a positive remainder; after
continuous matching the book is never crossed (best bid < best ask). The book holds no clock and
emits nothing: the matching code that changes it returns events to the engine.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING, Final

from strikechain.engine.instruments import Instrument, MatchingMode
from strikechain.engine.invariant import invariant

if TYPE_CHECKING:
    from strikechain.engine.accounts import Account, Exposure, Market

BUY: Final = 1
SELL: Final = -1


class Order:
    """A resting order. Mutable only by the engine: ``remaining`` falls as it fills.

    A plain slotted class, which mypyc compiles to a native class (see ``tools/build_native.py``):
    compiled code reads and writes its fields as C struct members. Compared by identity (two
    orders are never the same value).
    """

    __slots__ = (
        "account",
        "client_order_id",
        "expire_at_ns",
        "exposure",
        "instrument",
        "loss_per_lot",
        "order_id",
        "post_only",
        "price",
        "reduce_only",
        "remaining",
        "self_trade",
        "side",
        "size",
    )

    order_id: int
    account: str
    instrument: str
    side: int
    price: int
    size: int
    remaining: int
    client_order_id: str
    post_only: int
    self_trade: int
    reduce_only: bool
    expire_at_ns: int
    exposure: Exposure
    """The owner's exposure to this instrument, so fills and cancels reach the sub-ledger
    without a lookup."""
    loss_per_lot: int
    """What each lot would lose at once against the mark if it filled at its price (buying
    above the mark, selling below it), fixed when the order is placed or amended; its open
    lots reserve it (:mod:`strikechain.engine.margin`)."""

    def __init__(
        self,
        order_id: int,
        account: str,
        instrument: str,
        side: int,
        price: int,
        size: int,
        remaining: int,
        client_order_id: str,
        post_only: int,
        self_trade: int,
        reduce_only: bool,
        expire_at_ns: int,
        exposure: Exposure,
        loss_per_lot: int = 0,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.instrument = instrument
        self.side = side
        self.price = price
        self.size = size
        self.remaining = remaining
        self.client_order_id = client_order_id
        self.post_only = post_only
        self.self_trade = self_trade
        self.reduce_only = reduce_only
        self.expire_at_ns = expire_at_ns
        self.exposure = exposure
        self.loss_per_lot = loss_per_lot

    def __repr__(self) -> str:
        """Every field but the exposure (whose own repr reaches the whole sub-ledger)."""
        return (
            f"Order(order_id={self.order_id}, account={self.account!r}, "
            f"instrument={self.instrument!r}, side={self.side}, price={self.price}, "
            f"size={self.size}, remaining={self.remaining}, "
            f"client_order_id={self.client_order_id!r}, post_only={self.post_only}, "
            f"self_trade={self.self_trade}, reduce_only={self.reduce_only}, "
            f"expire_at_ns={self.expire_at_ns}, loss_per_lot={self.loss_per_lot})"
        )

    @property
    def filled(self) -> int:
        return self.size - self.remaining


Level = OrderedDict[int, Order]


class _Side:
    """One side of a book. ``sign`` is +1 for asks (low price first), -1 for bids."""

    __slots__ = ("heap", "in_heap", "levels", "sign", "taking")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[int, Level] = {}
        self.heap: list[int] = []
        self.in_heap: set[int] = set()
        self.taking: Taking | None = None
        """A state being taken (:class:`Taking`): what this side changes is noted first."""

    def best(self) -> int | None:
        heap, levels = self.heap, self.levels
        while heap:
            price = heap[0] * self.sign
            if price in levels:
                return price
            heappop(heap)
            self.in_heap.discard(price)
        return None

    def add(self, order: Order) -> None:
        price = order.price
        level = self.levels.get(price)
        taking = self.taking
        if taking is not None:
            taking.note_level(self, price, level)
        if level is None:
            level = self.levels[price] = OrderedDict()
            if price not in self.in_heap:
                self.in_heap.add(price)
                heappush(self.heap, price * self.sign)
                if len(self.heap) > 2 * len(self.levels) + 64:
                    self._rebuild()
        level[order.order_id] = order

    def remove(self, order: Order) -> None:
        """Take ``order`` off its level (cancel, or a maker filled completely)."""
        price = order.price
        level = self.levels[price]
        taking = self.taking
        if taking is not None:
            taking.note_order(order)
            taking.note_level(self, price, level)
        del level[order.order_id]
        if not level:
            del self.levels[price]

    def reduce(self, order: Order, lots: int) -> None:
        """``order`` filled ``lots`` (or was amended down, or only its size changes next, with
        ``lots`` 0) and stays on its level, in place."""
        taking = self.taking
        if taking is not None:
            taking.note_order(order)
        order.remaining -= lots

    def size(self, price: int) -> int:
        """Total remaining lots at ``price`` (summed when asked: the hot path never needs it)."""
        level = self.levels.get(price)
        return 0 if level is None else sum(order.remaining for order in level.values())

    def prices(self) -> Iterator[int]:
        """Live prices, best first, by walking the heap in order without changing it."""
        heap = self.heap
        if not heap:
            return
        frontier = [(heap[0], 0)]
        size = len(heap)
        while frontier:
            key, index = heappop(frontier)
            price = key * self.sign
            if price in self.levels:
                yield price
            child = 2 * index + 1
            if child < size:
                heappush(frontier, (heap[child], child))
                if child + 1 < size:
                    heappush(frontier, (heap[child + 1], child + 1))

    def _rebuild(self) -> None:
        self.heap = [price * self.sign for price in self.levels]
        heapify(self.heap)
        self.in_heap = set(self.levels)


OrderRow = tuple[int, str, str, int, int, int, int, str, int, int, bool, int, int]
"""A resting order's fields in the order of the snapshot's array-like ``OrderSnapshot``."""


def order_row(order: Order) -> OrderRow:
    """``order``'s :data:`OrderRow`."""
    return (
        order.order_id,
        order.account,
        order.instrument,
        order.side,
        order.price,
        order.size,
        order.remaining,
        order.client_order_id,
        order.post_only,
        order.self_trade,
        order.reduce_only,
        order.expire_at_ns,
        order.loss_per_lot,
    )


class Taking:
    """The resting orders and book levels of one state (a height), kept while that state is
    taken a chunk at a time across later blocks (the live node's state roots and snapshots:
    :func:`strikechain.engine.snapshot.begin_taking`): copy on write.

    Every side of every book holds it meanwhile (``_Side.taking``) and notes here, before it
    changes them, an order of the state as it was (:meth:`note_order`: the side removes it,
    reduces it, or the engine amends it in place after a reduce of 0) and a level as it was
    (:meth:`note_level`: an order joins or leaves it). What no later block changed is read
    from the book itself. Orders from ``first_new`` on came after the state."""

    __slots__ = ("first_new", "levels", "orders")

    def __init__(self, first_new: int) -> None:
        self.first_new = first_new
        self.orders: dict[int, OrderRow] = {}
        """Orders of the state changed since: their rows as they were."""
        self.levels: dict[_Side, dict[int, tuple[int, ...] | None]] = {}
        """Per side, levels changed since: their order ids as they were (None: no level)."""

    def note_order(self, order: Order) -> None:
        order_id = order.order_id
        if order_id < self.first_new and order_id not in self.orders:
            self.orders[order_id] = order_row(order)

    def note_level(self, side: _Side, price: int, level: Level | None) -> None:
        noted = self.levels.get(side)
        if noted is None:
            noted = self.levels[side] = {}
        if price not in noted:
            noted[price] = None if level is None else tuple(level)

    def rows(
        self, order_ids: list[int], orders: dict[int, Order], accounts: dict[str, Account]
    ) -> list[OrderRow]:
        """The state's rows of ``order_ids`` (orders of the state): as noted, or as they are
        (unchanged since), each current one's exposure checked to be its account's."""
        noted = self.orders
        rows: list[OrderRow] = []
        for order_id in order_ids:
            row = noted.get(order_id)
            rows.append(checked_row(orders[order_id], accounts) if row is None else row)
        return rows

    def level(self, side: _Side, price: int) -> tuple[int, ...]:
        """The order ids of the state's level at ``price`` on ``side`` (one it had)."""
        noted = self.levels.get(side)
        if noted is not None and price in noted:
            ids = noted[price]
            invariant(ids is not None, f"no level at {price} in the state taken")
            assert ids is not None
            return ids
        return tuple(side.levels[price])


def order_rows(orders: Iterable[Order], accounts: dict[str, Account]) -> list[OrderRow]:
    """Resting orders as :data:`OrderRow` (``msgspec.convert`` makes the snapshot's structs of
    them), each order's exposure checked to be its account's.

    Here because this module is compiled: the fields are C struct reads. Read one by one from
    the interpreted snapshot code they cost about 2.5 us an order, most of a state root's time
    with tens of thousands of orders resting (73 ms of 80 for 27k), a pause of the live node's
    event loop every ``root_every`` blocks."""
    return [checked_row(order, accounts) for order in orders]


def checked_row(order: Order, accounts: dict[str, Account]) -> OrderRow:
    """:func:`order_row`, the order's exposure checked to be its account's."""
    if order.exposure is not accounts[order.account].exposures.get(order.instrument):
        invariant(False, f"order {order.order_id}'s exposure is not its account's")
    return order_row(order)


class Book:
    """Both sides of one instrument's book."""

    __slots__ = ("asks", "batch", "bids", "instrument", "market", "name")

    def __init__(self, instrument: Instrument, market: Market | None = None) -> None:
        self.instrument = instrument
        self.market = market
        """The instrument's economics (:class:`~strikechain.engine.accounts.Market`), which the
        engine attaches at listing; a book on its own (tests, the auction) needs none."""
        self.name = instrument.name
        self.batch = instrument.matching == MatchingMode.BATCH
        self.bids = _Side(-1)
        self.asks = _Side(1)

    def side(self, side: int) -> _Side:
        return self.bids if side == BUY else self.asks

    def opposite(self, side: int) -> _Side:
        return self.asks if side == BUY else self.bids

    def crosses(self, side: int, price: int) -> bool:
        """Whether an order at ``price`` on ``side`` would trade against the book now."""
        if side == BUY:
            best = self.asks.best()
            return best is not None and price >= best
        best = self.bids.best()
        return best is not None and price <= best

    def best_bid(self) -> int | None:
        return self.bids.best()

    def best_ask(self) -> int | None:
        return self.asks.best()

    def add(self, order: Order) -> None:
        (self.bids if order.side == BUY else self.asks).add(order)

    def remove(self, order: Order) -> None:
        (self.bids if order.side == BUY else self.asks).remove(order)

    def reduce(self, order: Order, lots: int) -> None:
        """``order`` filled ``lots`` (or was amended down, or only its size changes next, with
        ``lots`` 0) and stays on the book, in place."""
        (self.bids if order.side == BUY else self.asks).reduce(order, lots)

    def depth(self, side: int, levels: int) -> list[tuple[int, int]]:
        """The best ``levels`` (price, total lots) of one side, best first."""
        book_side = self.side(side)
        out: list[tuple[int, int]] = []
        for price in book_side.prices():
            out.append((price, book_side.size(price)))
            if len(out) == levels:
                break
        return out

    def level_count(self, side: int) -> int:
        return len(self.side(side).levels)

    def order_count(self) -> int:
        return sum(len(level) for level in self.bids.levels.values()) + sum(
            len(level) for level in self.asks.levels.values()
        )

    def orders(self) -> Iterator[Order]:
        """Every resting order: bids best first, then asks best first, each level oldest first."""
        for book_side in (self.bids, self.asks):
            for price in book_side.prices():
                yield from book_side.levels[price].values()

    def check(self, *, uncrossed: bool = True) -> None:
        """Verify the invariants of the module docstring (for tests and seeded runs)."""
        for sign, book_side in ((BUY, self.bids), (SELL, self.asks)):
            levels = book_side.levels
            invariant(levels.keys() <= book_side.in_heap, "a live price left the heap")
            for price, level in levels.items():
                invariant(bool(level), f"empty level {price} in {self.name}")
                for order in level.values():
                    if (
                        order.side != sign
                        or order.price != price
                        or not 0 < order.remaining <= order.size
                    ):
                        invariant(False, f"misfiled or bad order {order} at {price}")
        bid, ask = self.best_bid(), self.best_ask()
        if uncrossed and bid is not None and ask is not None:
            invariant(bid < ask, f"{self.name} is crossed: bid {bid} >= ask {ask}")
