"""What the API remembers beyond the engine's state: orders after they close, trades, transfers,
funding and deliveries, per account and per instrument, for Deribit's history methods.

:class:`TradeHistory` is a runtime sink (:meth:`strikechain.runtime.runtime.Runtime.add_sink`):
it reads each committed block's transactions and events, in height order, after the log has
them, and keeps

- every order the engine accepted since the history was attached, with what the engine does not
  keep (its type, time in force, label, creation time, fills, commission, why it closed);
- each account's trades, each instrument's public trades, each account's withdrawals and
  deposits, each perpetual's funding payments, each underlying's delivery prices;
- the changes of the last block (:attr:`TradeHistory.last_block`): the orders it touched and the
  trades it made, for the transport's subscription notifications.

Limits (:class:`HistoryLimits`): every collection is bounded; past its bound the oldest entries
go (closed orders first: an open order is never forgotten while the engine holds it).

The history lives in memory and starts when the node starts: it knows what happened since
:func:`attach`, and the orders the engine held then (their fills before it are unknown). Ids are
stable across restarts (a trade's id is ``<height>-<n>``, the n-th fill of its block); sequence
numbers (``trade_seq``) count from the attach.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from strikechain.engine.book import Order
from strikechain.engine.events import (
    Deposited,
    Fill,
    FundingPaid,
    IndexUpdated,
    InstrumentListed,
    InstrumentSettled,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRepriced,
    WithdrawalRequested,
)
from strikechain.engine.instruments import InstrumentKind, parse_instrument_name
from strikechain.engine.invariant import invariant
from strikechain.engine.txs import OrderType, PlaceOrder, TimeInForce
from strikechain.node.api.registry import attached
from strikechain.runtime.runtime import Committed

ORDER_TYPE_NAMES: Final = {int(OrderType.LIMIT): "limit", int(OrderType.MARKET): "market"}
TIME_IN_FORCE_NAMES: Final = {
    int(TimeInForce.GTC): "good_til_cancelled",
    int(TimeInForce.IOC): "immediate_or_cancel",
    int(TimeInForce.FOK): "fill_or_kill",
    int(TimeInForce.GTT): "good_til_day",
}


class HistoryLimits(msgspec.Struct, frozen=True, kw_only=True):
    trades_per_account: int = 10_000
    trades_per_instrument: int = 10_000
    closed_orders: int = 100_000
    """Closed orders kept across accounts; open orders are always kept."""
    transfers_per_account: int = 1_000
    funding_per_instrument: int = 10_000
    deliveries_per_underlying: int = 1_000

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            invariant(getattr(self, name) > 0, f"HistoryLimits.{name} must be positive")


class OrderRecord(msgspec.Struct, kw_only=True, gc=False):
    """One order as Deribit reports it; updated by the blocks' events until it closes.

    Not tracked by the cyclic garbage collector (``gc=False``: its fields are numbers and
    strings, it can be in no cycle): the history keeps up to ``closed_orders`` of them plus
    every open order, and tracked (a slotted dataclass) they were three quarters of what the
    node's scheduled collection walked: 131k of 176k objects after a minute of orders, a
    233 ms pause (:mod:`strikechain.node.heap`)."""

    order_id: int
    account: str
    instrument: str
    side: int
    price_ticks: int
    size_lots: int
    label: str
    order_type: str
    time_in_force: str
    post_only: bool
    reduce_only: bool
    created_ns: int
    updated_ns: int
    filled_lots: int = 0
    filled_value_ticks: int = 0
    """Sum of price x lots over its fills (the average price is this over ``filled_lots``)."""
    commission_minor: int = 0
    state: str = "open"
    """``open``, ``filled`` or ``cancelled`` (Deribit's order states)."""
    cancel_reason: str = ""


class TradeRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One side of one fill: the account's trade."""

    trade_id: str
    trade_seq: int
    instrument: str
    timestamp_ns: int
    price_ticks: int
    size_lots: int
    side: int
    """The account's side (1 buy, -1 sell)."""
    account: str
    order_id: int
    liquidity: str
    """``M`` maker, ``T`` taker."""
    fee_minor: int
    index_minor: int
    mark_minor: int
    order_type: str
    label: str
    post_only: bool
    reduce_only: bool
    order_state: str


class PublicTrade(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    trade_id: str
    trade_seq: int
    instrument: str
    timestamp_ns: int
    price_ticks: int
    size_lots: int
    taker_side: int
    index_minor: int
    mark_minor: int


class TransferRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A withdrawal (``withdrawal_id``) or deposit (``deposit_id``) of USDC minor units."""

    transfer_id: int
    account: str
    underlying: str
    amount_minor: int
    timestamp_ns: int


class FundingRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    timestamp_ns: int
    rate_ppb: int
    index_minor: int
    previous_index_minor: int


class DeliveryRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    expiry_ns: int
    price_minor: int


@dataclass(slots=True)
class BlockChanges:
    """What one block did that subscribers of user and market channels are told."""

    height: int = 0
    timestamp_ns: int = 0
    orders: list[OrderRecord] = field(default_factory=list)
    """Orders accepted, filled, amended or closed in the block, each once, in first-touch
    order."""
    trades: list[TradeRecord] = field(default_factory=list)
    """Both sides of every fill."""
    public_trades: list[PublicTrade] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    """Instruments whose book or trades changed (a ticker or book notification is due)."""


class TradeHistory:
    """The runtime sink that remembers (see the module docstring)."""

    def __init__(self, limits: HistoryLimits | None = None, engine: Any = None) -> None:
        self.limits = limits if limits is not None else HistoryLimits()
        self.engine = engine
        """The engine whose blocks arrive (for the marks trades report; None: marks are 0)."""
        self.orders: dict[int, OrderRecord] = {}
        self._closed: deque[int] = deque()
        self.trades: dict[str, deque[TradeRecord]] = {}
        self.public_trades: dict[str, deque[PublicTrade]] = {}
        self.withdrawals: dict[str, deque[TransferRecord]] = {}
        self.deposits: dict[str, deque[TransferRecord]] = {}
        self.funding: dict[str, deque[FundingRecord]] = {}
        self.deliveries: dict[str, deque[DeliveryRecord]] = {}
        self.listed_ns: dict[str, int] = {}
        self.index_minor: dict[str, int] = {}
        self._trade_seq: dict[str, int] = {}
        self.last_block = BlockChanges()

    # -- reading -----------------------------------------------------------------------------

    def get_order(self, account: str, order_id: int) -> OrderRecord | None:
        """The account's order ``order_id``; None also when it is another account's."""
        record = self.orders.get(order_id)
        return record if record is not None and record.account == account else None

    def account_trades(self, account: str) -> list[TradeRecord]:
        """The account's trades, oldest first."""
        return list(self.trades.get(account, ()))

    def instrument_trades(self, instrument: str) -> list[PublicTrade]:
        return list(self.public_trades.get(instrument, ()))

    # -- the sink ----------------------------------------------------------------------------

    def on_block(self, committed: Committed) -> None:
        block = committed.block
        now = block.timestamp_ns
        changes = self.last_block = BlockChanges(height=block.height, timestamp_ns=now)
        touched: dict[int, OrderRecord] = {}
        fills = 0
        for event in committed.result.events:
            if isinstance(event, Fill):
                self._fill(event, f"{block.height}-{fills}", now, touched, changes)
                fills += 1
            elif isinstance(event, OrderAccepted):
                tx = block.transactions[event.tx] if event.tx >= 0 else None
                record = self._accept(event, tx, now)
                touched[record.order_id] = record
            else:
                self._other(event, now, touched)
        changes.orders = list(touched.values())
        for record in changes.orders:
            if record.state != "open":
                self._close(record.order_id)
        instruments = dict.fromkeys(record.instrument for record in changes.orders)
        instruments.update(dict.fromkeys(trade.instrument for trade in changes.public_trades))
        changes.instruments = list(instruments)

    def _accept(self, event: OrderAccepted, tx: Any, now: int) -> OrderRecord:
        place = tx if isinstance(tx, PlaceOrder) else None
        record = OrderRecord(
            order_id=event.order_id,
            account=event.account,
            instrument=event.instrument,
            side=event.side,
            price_ticks=event.price_ticks,
            size_lots=event.size_lots,
            label=event.client_order_id,
            order_type=ORDER_TYPE_NAMES.get(place.order_type, "limit") if place else "limit",
            time_in_force=(
                TIME_IN_FORCE_NAMES.get(place.time_in_force, "good_til_cancelled")
                if place
                else "good_til_cancelled"
            ),
            post_only=bool(place.post_only) if place else False,
            reduce_only=place.reduce_only if place else False,
            created_ns=now,
            updated_ns=now,
        )
        self.orders[event.order_id] = record
        return record

    def _fill(
        self,
        fill: Fill,
        trade_id: str,
        now: int,
        touched: dict[int, OrderRecord],
        changes: BlockChanges,
    ) -> None:
        name = fill.instrument
        seq = self._trade_seq[name] = self._trade_seq.get(name, 0) + 1
        index = self._index_of(name)
        market = None if self.engine is None else self.engine.markets.get(name)
        mark = 0 if market is None else market.mark_minor
        public = PublicTrade(
            trade_id=trade_id,
            trade_seq=seq,
            instrument=name,
            timestamp_ns=now,
            price_ticks=fill.price_ticks,
            size_lots=fill.size_lots,
            taker_side=fill.taker_side,
            index_minor=index,
            mark_minor=mark,
        )
        _append(self.public_trades, name, public, self.limits.trades_per_instrument)
        changes.public_trades.append(public)
        sides = (
            (fill.maker_account, fill.maker_order_id, -fill.taker_side, "M", fill.maker_fee,
             fill.maker_remaining_lots),
            (fill.taker_account, fill.taker_order_id, fill.taker_side, "T", fill.taker_fee,
             fill.taker_remaining_lots),
        )  # fmt: skip
        for account, order_id, side, liquidity, fee, remaining in sides:
            record = self.orders.get(order_id)
            if record is not None:
                record.filled_lots += fill.size_lots
                record.filled_value_ticks += fill.price_ticks * fill.size_lots
                record.commission_minor += fee
                record.updated_ns = now
                if remaining == 0:
                    record.state = "filled"
                touched[order_id] = record
            trade = TradeRecord(
                trade_id=trade_id,
                trade_seq=seq,
                instrument=name,
                timestamp_ns=now,
                price_ticks=fill.price_ticks,
                size_lots=fill.size_lots,
                side=side,
                account=account,
                order_id=order_id,
                liquidity=liquidity,
                fee_minor=fee,
                index_minor=index,
                mark_minor=mark,
                order_type=record.order_type if record else "liquidation",
                label=record.label if record else "",
                post_only=record.post_only if record else False,
                reduce_only=record.reduce_only if record else False,
                order_state=record.state if record else "filled",
            )
            _append(self.trades, account, trade, self.limits.trades_per_account)
            changes.trades.append(trade)

    def _other(self, event: Any, now: int, touched: dict[int, OrderRecord]) -> None:
        if isinstance(event, OrderCancelled | OrderExpired):
            record = self.orders.get(event.order_id)
            if record is not None:
                record.state = "cancelled"
                record.cancel_reason = (
                    event.reason if isinstance(event, OrderCancelled) else "EXPIRED"
                )
                record.updated_ns = now
                touched[record.order_id] = record
        elif isinstance(event, OrderAmended | OrderRepriced):
            record = self.orders.get(event.order_id)
            if record is not None:
                record.price_ticks = event.price_ticks
                if isinstance(event, OrderAmended):
                    record.size_lots = record.filled_lots + event.remaining_lots
                record.updated_ns = now
                touched[record.order_id] = record
        elif isinstance(event, WithdrawalRequested | Deposited):
            self._transfer(event, now)
        elif isinstance(event, IndexUpdated):
            self.index_minor[event.underlying] = event.index
        elif isinstance(event, FundingPaid):
            self._funding(event, now)
        elif isinstance(event, InstrumentSettled):
            self._delivery(event)
        elif isinstance(event, InstrumentListed):
            self.listed_ns[event.instrument.name] = now

    def _transfer(self, event: WithdrawalRequested | Deposited, now: int) -> None:
        withdrawal = isinstance(event, WithdrawalRequested)
        record = TransferRecord(
            transfer_id=event.withdrawal_id if withdrawal else event.deposit_id,  # type: ignore[union-attr]
            account=event.account,
            underlying=event.underlying,
            amount_minor=event.amount,
            timestamp_ns=now,
        )
        target = self.withdrawals if withdrawal else self.deposits
        _append(target, event.account, record, self.limits.transfers_per_account)

    def _funding(self, event: FundingPaid, now: int) -> None:
        index = self._index_of(event.instrument)
        previous = self.funding.get(event.instrument)
        before = previous[-1].index_minor if previous else index
        record = FundingRecord(
            timestamp_ns=now, rate_ppb=event.rate_ppb, index_minor=index,
            previous_index_minor=before,
        )  # fmt: skip
        _append(self.funding, event.instrument, record, self.limits.funding_per_instrument)

    def _delivery(self, event: InstrumentSettled) -> None:
        parsed = parse_instrument_name(event.instrument)
        if parsed.kind != InstrumentKind.OPTION:
            return
        known = self.deliveries.get(parsed.underlying)
        if known and known[-1].expiry_ns == parsed.expiry_ns:
            return  # one price per expiry: every option of it settles at the same average
        record = DeliveryRecord(expiry_ns=parsed.expiry_ns, price_minor=event.price)
        _append(self.deliveries, parsed.underlying, record, self.limits.deliveries_per_underlying)

    def _index_of(self, instrument: str) -> int:
        underlying = instrument.split("_", 1)[0]
        return self.index_minor.get(underlying, 0)

    def _close(self, order_id: int) -> None:
        self._closed.append(order_id)
        while len(self._closed) > self.limits.closed_orders:
            self.orders.pop(self._closed.popleft(), None)


def _append(target: dict[str, deque[Any]], key: str, value: Any, limit: int) -> None:
    entries = target.get(key)
    if entries is None:
        entries = target[key] = deque(maxlen=limit)
    entries.append(value)


def attach(node: Any) -> TradeHistory:
    """The node's history, added as a runtime sink on first use (the transport calls this
    once the node has started; every method finds the same one)."""

    def make() -> TradeHistory:
        engine = node.engine
        history = TradeHistory(engine=engine)
        for order in engine.orders.values():
            history.orders[order.order_id] = record_of_engine_order(order, 0)
        return history

    return attached(node, TradeHistory, make)


def record_of_engine_order(order: Order, created_ns: int) -> OrderRecord:
    """An open order the history did not see accepted (it predates the history's attach)."""
    return OrderRecord(
        order_id=order.order_id,
        account=order.account,
        instrument=order.instrument,
        side=order.side,
        price_ticks=order.price,
        size_lots=order.size,
        label=order.client_order_id,
        order_type="limit",
        time_in_force="good_til_day" if order.expire_at_ns else "good_til_cancelled",
        post_only=bool(order.post_only),
        reduce_only=order.reduce_only,
        created_ns=created_ns,
        updated_ns=created_ns,
        filled_lots=order.size - order.remaining,
        filled_value_ticks=0,
    )
