"""The venue as a pure state machine: ``Engine.apply(block) -> BlockResult``.

The engine reads no clock, no environment and no randomness: the driver stamps each block with
its height and time, and the same state plus the same block gives the same events on any
machine (dicts iterate in insertion order, ties break on order ids, which the engine assigns in
sequence). A transaction is validated in full where it enters; a refused one yields a
:class:`~strikechain.engine.events.Rejected` event and changes nothing else. A block that breaks
a block-level rule (height, time, size) is refused whole and changes nothing.

Per block:

1. block checks: the next height, time never backwards, the limits table;
2. the STATE lane (listings, delistings) under the default ordering policy;
3. the engine's own work from block time: good-till-time orders and option markets expire;
4. the remaining transactions in the policy's order (:mod:`strikechain.engine.ordering`);
5. one uniform-price auction per batch-auction market that received orders this block.

Part 2 adds accounts, margin and marks to the order path; part 3 adds the block digest and the
state root to :class:`~strikechain.engine.events.BlockResult`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import msgspec

from strikechain.engine import auction
from strikechain.engine.book import BUY, Book, Order
from strikechain.engine.codes import CancelReason, RejectCode, Rejection
from strikechain.engine.events import (
    BlockResult,
    Event,
    Fill,
    InstrumentDelisted,
    InstrumentExpired,
    InstrumentListed,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRepriced,
    Rejected,
)
from strikechain.engine.instruments import Instrument, MatchingMode, validate_instrument
from strikechain.engine.invariant import invariant
from strikechain.engine.limits import DEFAULT_LIMITS, Limits
from strikechain.engine.ordering import OrderingPolicy, sequence
from strikechain.engine.txs import (
    Amend,
    Block,
    Cancel,
    CancelAll,
    DelistInstrument,
    ListInstrument,
    PlaceOrder,
    Transaction,
)

# Plain ints on the hot path: an enum attribute lookup costs more than the comparison.
_MARKET = 2
_GTC, _IOC, _FOK, _GTT = 1, 2, 3, 4
_POST_REPRICE, _POST_REJECT = 1, 2
_CANCEL_TAKER, _CANCEL_MAKER, _CANCEL_BOTH = 1, 2, 3
_PPM = 1_000_000
_BATCH = MatchingMode.BATCH


class OpenOrders(msgspec.Struct, gc=False):
    """One account's open orders, oldest first, and its client order ids.

    Kept for every account that has placed an order (part 2 adds its collateral and positions
    beside them), so the hot path never rebuilds it.
    """

    orders: dict[int, Order]
    client_ids: dict[str, int]


class _Refused(Exception):
    """Internal: a transaction is refused; the dispatcher turns it into a Rejected event."""

    def __init__(self, code: RejectCode, message: str) -> None:
        self.code = code
        self.message = message


class Engine:
    """The venue's state and the only way to change it."""

    def __init__(
        self, limits: Limits = DEFAULT_LIMITS, policy: OrderingPolicy = OrderingPolicy.LANES
    ) -> None:
        self.limits = limits
        self.policy = policy
        self._max_account_length = limits.max_account_length
        self._max_client_order_id_length = limits.max_client_order_id_length
        self._max_size_lots = limits.max_size_lots
        self._max_price_ticks = limits.max_price_ticks
        self._max_open_orders = limits.max_open_orders_per_account
        self._max_levels = limits.max_price_levels_per_side
        self.height = 0
        self.timestamp_ns = 0
        self.instruments: dict[str, Instrument] = {}
        self.books: dict[str, Book] = {}
        self.expired_instruments: dict[str, Instrument] = {}
        self.orders: dict[int, Order] = {}
        self.accounts: dict[str, OpenOrders] = {}
        self.next_order_id = 1
        self._good_till: list[tuple[int, int]] = []  # heap of (expire_at_ns, order_id)
        self._market_expiries: list[tuple[int, str]] = []  # heap of (expiry_ns, name)
        self._auctions: dict[str, list[int]] = {}  # batch markets touched -> their IOC orders
        self._events: list[Event] = []
        self._handlers: dict[type, Callable[..., None]] = {
            PlaceOrder: self._place,
            Amend: self._amend,
            Cancel: self._cancel,
            CancelAll: self._cancel_all,
            ListInstrument: self._list,
            DelistInstrument: self._delist,
        }
        self._known_types = frozenset(self._handlers)

    # -- blocks ------------------------------------------------------------------------------

    def apply(self, block: Block) -> BlockResult:
        """Apply one block; the only way the venue's state changes."""
        refusal = self._check_block(block)
        if refusal is not None:
            return BlockResult(
                height=block.height,
                timestamp_ns=block.timestamp_ns,
                events=[],
                rejected=refusal.code,
                reason=refusal.message,
            )
        self.height = block.height
        self.timestamp_ns = block.timestamp_ns
        events: list[Event] = []
        self._events = events
        transactions = block.transactions
        before, after = sequence(transactions, self.policy)
        self._apply_in_order(transactions, before)
        self._expire()
        self._apply_in_order(transactions, after)
        if self._auctions:
            self._run_auctions()
        self._events = []
        return BlockResult(height=block.height, timestamp_ns=block.timestamp_ns, events=events)

    def _check_block(self, block: Block) -> _Refused | None:
        if block.height != self.height + 1:
            return _Refused(
                RejectCode.BLOCK_OUT_OF_SEQUENCE,
                f"block height {block.height} does not follow {self.height}",
            )
        if block.timestamp_ns < self.timestamp_ns:
            return _Refused(
                RejectCode.TIMESTAMP_BACKWARDS,
                f"block time {block.timestamp_ns} ns is before {self.timestamp_ns} ns",
            )
        count = len(block.transactions)
        if count > self.limits.max_transactions_per_block:
            return _Refused(
                RejectCode.BLOCK_TOO_LARGE,
                f"{count} transactions; at most {self.limits.max_transactions_per_block}",
            )
        if not set(map(type, block.transactions)) <= self._known_types:
            handlers = self._handlers
            index, tx = next(
                (i, t) for i, t in enumerate(block.transactions) if type(t) not in handlers
            )
            return _Refused(
                RejectCode.UNKNOWN_TRANSACTION, f"transaction {index} is a {type(tx).__name__}"
            )
        return None

    def _apply_in_order(self, transactions: list[Transaction], order: list[int]) -> None:
        """Apply ``transactions[i]`` for ``i`` in ``order``; refusals become Rejected events."""
        handlers = self._handlers
        for index in order:
            tx = transactions[index]
            try:
                handlers[type(tx)](tx, index)
            except _Refused as refused:
                self._reject(tx, index, refused)

    def _reject(self, tx: Transaction, index: int, refused: _Refused) -> None:
        client_order_id = getattr(tx, "client_order_id", "")
        self._events.append(
            Rejected(index, tx.account, refused.code, refused.message, client_order_id)
        )

    # -- placing orders ----------------------------------------------------------------------

    def _place(self, tx: PlaceOrder, index: int) -> None:
        account, name, side = tx.account, tx.instrument, tx.side
        size, price, tif, post_only = tx.size_lots, tx.price_ticks, tx.time_in_force, tx.post_only
        market = tx.order_type == _MARKET
        if (
            not 0 < size <= self._max_size_lots
            or not (market or 0 < price <= self._max_price_ticks)
            or not 0 < len(account) <= self._max_account_length
            or len(tx.client_order_id) > self._max_client_order_id_length
            or (tif == _GTT and tx.expire_at_ns <= self.timestamp_ns)
        ):
            self._refuse_ranges(tx, market)
        book = self.books.get(name)
        if book is None:
            book = self._require_book(name)
        client_order_id = tx.client_order_id
        mine = self.accounts.get(account)
        if mine is None:
            mine = self.accounts[account] = OpenOrders({}, {})
        if client_order_id and client_order_id in mine.client_ids:
            raise _Refused(
                RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                f"{account} already has an open order with client id {client_order_id!r}",
            )
        batch = book.batch
        if market:
            price = self._market_limit(book, side)
        requested = price
        if post_only:  # after this the order does not cross
            best = (book.asks if side == BUY else book.bids).best()
            if best is not None and (price >= best if side == BUY else price <= best):
                price = self._post_only_reprice(book, side, price, post_only, best)
        rests = not market and tif in (_GTC, _GTT)
        if rests or batch:
            if len(mine.orders) >= self._max_open_orders:
                raise _Refused(
                    RejectCode.TOO_MANY_OPEN_ORDERS,
                    f"{account} has {len(mine.orders)} open orders, the most allowed",
                )
            levels = (book.bids if side == BUY else book.asks).levels
            if price not in levels and len(levels) >= self._max_levels:
                self._check_levels(book, side, price)
        if tif == _FOK:
            if batch:
                raise _Refused(RejectCode.INVALID_ORDER, "fill-or-kill is not offered in auctions")
            self._check_fillable(book, account, side, price, size, tx.self_trade)
        order_id = self.next_order_id
        self.next_order_id = order_id + 1
        order = Order(
            order_id,
            account,
            name,
            side,
            price,
            size,
            size,
            client_order_id,
            post_only,
            tx.self_trade,
            tx.reduce_only,
            tx.expire_at_ns,
        )
        events = self._events
        events.append(
            OrderAccepted(index, order_id, account, name, side, requested, size, client_order_id)
        )
        if price != requested and not market:
            events.append(OrderRepriced(index, order_id, price, requested))
        if batch:
            self._rest(book, order)
            pending = self._auctions.setdefault(name, [])
            if not rests:
                pending.append(order_id)
            return
        crosses = not post_only and book.crosses(side, price)
        stop = self._match(book, order, index) if crosses else None
        if not order.remaining:
            return
        if rests and stop is None:
            self._rest(book, order)
            return
        if stop is None:
            stop = CancelReason.PRICE_BAND if market else CancelReason.IMMEDIATE_OR_CANCEL
        events.append(OrderCancelled(index, order_id, account, name, order.remaining, stop))

    def _refuse_ranges(self, tx: PlaceOrder, market: bool) -> None:
        """Say which limit (or the block time) a well-formed order breaks, and refuse it.

        Types, enumerations and their combinations were checked when the transaction value was
        made (:mod:`strikechain.engine.txs`); :meth:`_place` checks the ranges in one test and
        calls this only when one fails.
        """
        account, size, price = tx.account, tx.size_lots, tx.price_ticks
        if not 0 < len(account) <= self._max_account_length:
            raise _Refused(
                RejectCode.MESSAGE_TOO_LARGE,
                f"account must be 1 to {self._max_account_length} characters",
            )
        if len(tx.client_order_id) > self._max_client_order_id_length:
            raise _Refused(
                RejectCode.CLIENT_ORDER_ID_TOO_LONG,
                f"client order id of {len(tx.client_order_id)} characters; "
                f"at most {self._max_client_order_id_length}",
            )
        if not 0 < size <= self._max_size_lots:
            raise _Refused(
                RejectCode.SIZE_OUT_OF_RANGE, f"size {size} lots; from 1 to {self._max_size_lots}"
            )
        if not market and not 0 < price <= self._max_price_ticks:
            raise _Refused(
                RejectCode.PRICE_OUT_OF_RANGE,
                f"price {price} ticks; from 1 to {self._max_price_ticks}",
            )
        if tx.time_in_force == _GTT and tx.expire_at_ns <= self.timestamp_ns:
            raise _Refused(
                RejectCode.ALREADY_EXPIRED,
                f"good-till-time {tx.expire_at_ns} ns is not after block time "
                f"{self.timestamp_ns} ns",
            )
        invariant(False, "the range checks of _place and _refuse_ranges disagree")

    def _require_book(self, name: str) -> Book:
        book = self.books.get(name)
        if book is not None:
            return book
        if name in self.expired_instruments:
            raise _Refused(RejectCode.MARKET_EXPIRED, f"{name} has expired")
        raise _Refused(RejectCode.UNKNOWN_INSTRUMENT, f"no instrument named {name!r}")

    def _check_account(self, account: str) -> None:
        if not 0 < len(account) <= self._max_account_length:
            raise _Refused(
                RejectCode.MESSAGE_TOO_LARGE,
                f"account must be 1 to {self._max_account_length} characters",
            )

    def _market_limit(self, book: Book, side: int) -> int:
        """The worst price a market order may trade at: the band around the best opposite."""
        best = book.best_ask() if side == BUY else book.best_bid()
        if best is None:
            raise _Refused(RejectCode.NO_LIQUIDITY, f"no opposite orders in {book.name}")
        band = best * self.limits.market_order_band_ppm // _PPM
        return best + band if side == BUY else max(best - band, 1)

    def _post_only_price(self, book: Book, side: int, price: int, mode: int) -> int:
        """The price a post-only order rests at: its own, unless it would cross."""
        best = (book.asks if side == BUY else book.bids).best()
        if best is None or (price < best if side == BUY else price > best):
            return price
        return self._post_only_reprice(book, side, price, mode, best)

    def _post_only_reprice(self, book: Book, side: int, price: int, mode: int, best: int) -> int:
        """A crossing post-only order: rejected, or one tick behind the touch ``best``."""
        if mode == _POST_REJECT:
            raise _Refused(
                RejectCode.POST_ONLY_WOULD_CROSS,
                f"post-only at {price} would cross the best opposite {best}",
            )
        repriced = best - 1 if side == BUY else best + 1
        if repriced < 1:
            raise _Refused(RejectCode.POST_ONLY_WOULD_CROSS, "no price one tick behind the touch")
        return repriced

    def _check_levels(self, book: Book, side: int, price: int) -> None:
        """Refuse a new price level on a side that has the most allowed."""
        levels = (book.bids if side == BUY else book.asks).levels
        if price not in levels and len(levels) >= self._max_levels:
            raise _Refused(
                RejectCode.TOO_MANY_PRICE_LEVELS,
                f"{book.name} has {len(levels)} price levels on that side, the most allowed",
            )

    def _check_fillable(
        self, book: Book, account: str, side: int, price: int, size: int, self_trade: int
    ) -> None:
        """Fill-or-kill: walk the book as matching would, without changing it."""
        opposite = book.opposite(side)
        available, fills = 0, 0
        limit = self.limits.max_fills_per_order
        for level_price in opposite.prices():
            if (level_price > price) if side == BUY else (level_price < price):
                break
            for maker in opposite.levels[level_price].values():
                if maker.account == account:
                    if self_trade != _CANCEL_MAKER:
                        break  # the taker would be cancelled here
                    continue
                available += maker.remaining
                fills += 1
                if available >= size:
                    return
                if fills >= limit:
                    break
            else:
                continue
            break
        raise _Refused(
            RejectCode.FOK_NOT_FILLABLE,
            f"fill-or-kill for {size} lots cannot be filled completely at {price} or better",
        )

    # -- matching ----------------------------------------------------------------------------

    def _match(self, book: Book, taker: Order, index: int) -> CancelReason | None:
        """Continuous price-time matching of ``taker`` against the opposite side.

        Fills at each maker's price while the taker's price crosses. Returns why matching
        stopped early (self-trade prevention or the fill limit), or None.
        """
        side = taker.side
        opposite = book.opposite(side)
        levels = opposite.levels
        limit, account = taker.price, taker.account
        events = self._events
        fills = 0
        max_fills = self.limits.max_fills_per_order
        while taker.remaining:
            best = opposite.best()
            if best is None or (best > limit if side == BUY else best < limit):
                return None
            level = levels[best]
            maker = next(iter(level.values()))
            if maker.account == account:
                stop = self._prevent_self_trade(book, taker, maker, index)
                if stop is not None:
                    return stop
                continue
            if fills == max_fills:
                return CancelReason.FILL_LIMIT
            fills += 1
            lots = taker.remaining if taker.remaining < maker.remaining else maker.remaining
            taker.remaining -= lots
            if lots == maker.remaining:
                opposite.remove(maker)
                maker.remaining = 0
                self._forget(maker)
            else:
                maker.remaining -= lots
            events.append(
                Fill(
                    index,
                    book.name,
                    best,
                    lots,
                    side,
                    maker.order_id,
                    taker.order_id,
                    maker.account,
                    account,
                    maker.remaining,
                    taker.remaining,
                )
            )
        return None

    def _prevent_self_trade(
        self, book: Book, taker: Order, maker: Order, index: int
    ) -> CancelReason | None:
        """Apply the taker's self-trade mode; returns a reason if the taker stops."""
        mode = taker.self_trade
        if mode != _CANCEL_TAKER:
            self._cancel_order(book, maker, index, CancelReason.SELF_TRADE)
        if mode != _CANCEL_MAKER:
            return CancelReason.SELF_TRADE
        return None

    def _rest(self, book: Book, order: Order) -> None:
        """Put ``order`` on the book and in the indexes."""
        (book.bids if order.side == BUY else book.asks).add(order)
        order_id = order.order_id
        self.orders[order_id] = order
        mine = self.accounts[order.account]  # created when the order was placed
        mine.orders[order_id] = order
        if order.client_order_id:
            mine.client_ids[order.client_order_id] = order_id
        if order.expire_at_ns:
            heapq.heappush(self._good_till, (order.expire_at_ns, order_id))

    def _forget(self, order: Order) -> None:
        """Drop a finished order (filled, cancelled, expired) from the indexes."""
        order_id = order.order_id
        del self.orders[order_id]
        mine = self.accounts[order.account]
        del mine.orders[order_id]
        if order.client_order_id:
            del mine.client_ids[order.client_order_id]

    def _cancel_order(self, book: Book, order: Order, index: int, reason: CancelReason) -> None:
        (book.bids if order.side == BUY else book.asks).remove(order)
        self._forget(order)
        self._events.append(
            OrderCancelled(index, order.order_id, order.account, book.name, order.remaining, reason)
        )

    # -- cancels and amends ------------------------------------------------------------------

    def _cancel(self, tx: Cancel, index: int) -> None:
        if not 0 < len(tx.account) <= self._max_account_length:
            self._check_account(tx.account)
        order = self._owned_order(tx.account, tx.order_id, tx.client_order_id)
        self._cancel_order(self.books[order.instrument], order, index, CancelReason.REQUESTED)

    def _owned_order(self, account: str, order_id: int, client_order_id: str) -> Order:
        if client_order_id:
            mine = self.accounts.get(account)
            order_id = 0 if mine is None else mine.client_ids.get(client_order_id, 0)
            if not order_id:
                raise _Refused(
                    RejectCode.ORDER_NOT_FOUND,
                    f"{account} has no open order with client id {client_order_id!r}",
                )
        order = self.orders.get(order_id)
        if order is None:
            raise _Refused(RejectCode.ORDER_NOT_FOUND, f"no open order {order_id}")
        if order.account != account:
            raise _Refused(
                RejectCode.NOT_YOUR_ORDER, f"order {order_id} belongs to another account"
            )
        return order

    def _cancel_all(self, tx: CancelAll, index: int) -> None:
        self._check_account(tx.account)
        if tx.instrument and tx.instrument not in self.books:
            self._require_book(tx.instrument)
        mine = self.accounts.get(tx.account)
        if mine is None:
            return
        for order in list(mine.orders.values()):
            if not tx.instrument or order.instrument == tx.instrument:
                self._cancel_order(
                    self.books[order.instrument], order, index, CancelReason.REQUESTED
                )

    def _amend(self, tx: Amend, index: int) -> None:
        """New price and/or total size; priority is kept only for a pure size decrease."""
        self._check_account(tx.account)
        order = self._owned_order(tx.account, tx.order_id, "")
        book = self.books[order.instrument]
        price, size = tx.price_ticks, tx.size_lots
        limits = self.limits
        if not 0 < price <= limits.max_price_ticks:
            raise _Refused(
                RejectCode.PRICE_OUT_OF_RANGE,
                f"price {price!r}; from 1 to {limits.max_price_ticks}",
            )
        if not 0 < size <= limits.max_size_lots:
            raise _Refused(
                RejectCode.SIZE_OUT_OF_RANGE, f"size {size!r}; from 1 to {limits.max_size_lots}"
            )
        remaining = size - order.filled
        if remaining <= 0:
            raise _Refused(
                RejectCode.AMEND_BELOW_FILLED,
                f"new size {size} does not exceed the {order.filled} lots already filled",
            )
        post_only = tx.post_only or order.post_only
        if post_only:
            price = self._post_only_price(book, order.side, price, post_only)
        if price == order.price and remaining <= order.remaining:
            book.reduce(order, order.remaining - remaining)
            order.size = size
            self._events.append(OrderAmended(index, order.order_id, price, remaining, True))
            return
        if price != order.price:
            self._check_levels(book, order.side, price)
        self._requeue(book, order, price, size, remaining, index)

    def _requeue(
        self, book: Book, order: Order, price: int, size: int, remaining: int, index: int
    ) -> None:
        """Move an amended order to the back of its (new) level, matching it if it crosses."""
        book.remove(order)
        self._forget(order)
        order.price, order.size, order.remaining = price, size, remaining
        self._events.append(OrderAmended(index, order.order_id, price, remaining, False))
        if book.batch:
            self._rest(book, order)
            self._auctions.setdefault(book.name, [])
            return
        stop = self._match(book, order, index)
        if not order.remaining:
            return
        if stop is None:
            self._rest(book, order)
            return
        self._events.append(
            OrderCancelled(index, order.order_id, order.account, book.name, order.remaining, stop)
        )

    # -- instruments -------------------------------------------------------------------------

    def _list(self, tx: ListInstrument, index: int) -> None:
        self._require_operator(tx.account)
        instrument = tx.instrument
        try:
            validate_instrument(instrument)
        except Rejection as rejection:
            raise _Refused(rejection.code, rejection.message) from None
        name = instrument.name
        if len(name) > self.limits.max_instrument_name_length:
            raise _Refused(RejectCode.MESSAGE_TOO_LARGE, f"instrument name {name[:16]}... too long")
        if name in self.books or name in self.expired_instruments:
            raise _Refused(RejectCode.INSTRUMENT_EXISTS, f"{name} is already listed")
        if len(self.books) >= self.limits.max_instruments:
            raise _Refused(
                RejectCode.TOO_MANY_INSTRUMENTS, f"{len(self.books)} instruments listed, the most"
            )
        if instrument.is_option and instrument.expiry_ns <= self.timestamp_ns:
            raise _Refused(RejectCode.MARKET_EXPIRED, f"{name} expires before block time")
        self.instruments[name] = instrument
        self.books[name] = Book(instrument)
        if instrument.is_option:
            heapq.heappush(self._market_expiries, (instrument.expiry_ns, name))
        self._events.append(InstrumentListed(index, instrument))

    def _delist(self, tx: DelistInstrument, index: int) -> None:
        self._require_operator(tx.account)
        book = self._require_book(tx.instrument)
        self._close_book(book, index, CancelReason.DELISTED)
        del self.instruments[book.name]
        self._events.append(InstrumentDelisted(index, book.name))

    def _require_operator(self, account: str) -> None:
        self._check_account(account)
        if account != self.limits.operator:
            raise _Refused(RejectCode.NOT_AUTHORIZED, f"{account} may not list or delist")

    def _close_book(self, book: Book, index: int, reason: CancelReason) -> None:
        for order in list(book.orders()):
            self._cancel_order(book, order, index, reason)
        del self.books[book.name]
        self._auctions.pop(book.name, None)

    # -- the engine's own work ---------------------------------------------------------------

    def _expire(self) -> None:
        """Good-till-time orders and option markets whose time has come, by block time."""
        now = self.timestamp_ns
        heap = self._good_till
        while heap and heap[0][0] <= now:
            expire_at, order_id = heapq.heappop(heap)
            order = self.orders.get(order_id)
            if order is None or order.expire_at_ns != expire_at:
                continue  # already gone
            book = self.books[order.instrument]
            book.remove(order)
            self._forget(order)
            self._events.append(
                OrderExpired(-1, order_id, order.account, book.name, order.remaining)
            )
        markets = self._market_expiries
        while markets and markets[0][0] <= now:
            _, name = heapq.heappop(markets)
            market = self.books.get(name)
            if market is None:
                continue  # delisted before expiry
            self._close_book(market, -1, CancelReason.MARKET_EXPIRED)
            self.expired_instruments[name] = self.instruments.pop(name)
            self._events.append(InstrumentExpired(-1, name))

    def _run_auctions(self) -> None:
        """Clear every batch market touched this block, then cancel its IOC remainders."""
        for name, immediate in self._auctions.items():
            book = self.books[name]
            auction.run(book, self._events, self._forget, self._cancel_self_trade)
            for order_id in immediate:
                order = self.orders.get(order_id)
                if order is not None:
                    self._cancel_order(book, order, -1, CancelReason.IMMEDIATE_OR_CANCEL)
        self._auctions = {}

    def _cancel_self_trade(self, book: Book, order: Order) -> None:
        self._cancel_order(book, order, -1, CancelReason.SELF_TRADE)

    # -- views -------------------------------------------------------------------------------

    def open_orders(self, account: str) -> list[Order]:
        """The account's open orders, oldest first."""
        mine = self.accounts.get(account)
        return [] if mine is None else list(mine.orders.values())

    def check(self) -> None:
        """Verify every book's invariants and that the indexes agree with the books.

        Tests and seeded runs call this after every block; a failure is a bug.
        """
        indexed = 0
        for book in self.books.values():
            book.check(uncrossed=True)
            for book_side in (book.bids, book.asks):
                orders = [order for level in book_side.levels.values() for order in level.values()]
                indexed += len(orders)
                self._check_indexed(orders)
        invariant(indexed == len(self.orders), "the order index holds orders off the books")
        by_account = sum(len(mine.orders) for mine in self.accounts.values())
        invariant(by_account == indexed, "the per-account index disagrees with the books")
        client_ids = sum(len(mine.client_ids) for mine in self.accounts.values())
        invariant(client_ids <= indexed, "client ids outnumber open orders")

    def _check_indexed(self, orders: list[Order]) -> None:
        """Every resting order is in the order, account and client-id indexes."""
        for order in orders:
            account = order.account
            indexed = (
                self.orders.get(order.order_id) is order
                and self.accounts[account].orders.get(order.order_id) is order
                and (
                    not order.client_order_id
                    or self.accounts[account].client_ids.get(order.client_order_id)
                    == order.order_id
                )
            )
            if not indexed:
                invariant(False, f"{order} is missing from an index")
