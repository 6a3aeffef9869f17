"""Events: everything that happens in a block, as values, in the order it happens.

The event stream of a block is the engine's whole output: the node streams it to clients, the
lab measures it, and part 3 hashes it into the block digest. ``tx`` is the position of the
causing transaction in the block as submitted (-1 for what the engine does on its own: expiries,
auctions), so every event can be traced to its cause.
"""

from __future__ import annotations

import msgspec

from strikechain.engine.instruments import Instrument


class Rejected(msgspec.Struct, frozen=True, tag="rejected", gc=False):
    """A transaction was refused; it changed nothing."""

    tx: int
    account: str
    code: str
    message: str
    client_order_id: str = ""


class OrderAccepted(msgspec.Struct, frozen=True, tag="accepted", gc=False):
    """An order entered the engine with the id it is known by from now on.

    Unless fills complete it or an :class:`OrderCancelled` follows for the same transaction, its
    remainder rests at ``price_ticks`` (or at the price of an :class:`OrderRepriced`).
    """

    tx: int
    order_id: int
    account: str
    instrument: str
    side: int
    price_ticks: int
    size_lots: int
    client_order_id: str


class OrderRepriced(msgspec.Struct, frozen=True, tag="repriced", gc=False):
    """A post-only order that would have crossed was moved one tick behind the touch."""

    tx: int
    order_id: int
    price_ticks: int
    requested_price_ticks: int


class Fill(msgspec.Struct, frozen=True, tag="fill", gc=False):
    """A trade between a resting maker order and a taker, at the maker's price.

    In a batch auction both sides trade at the clearing price; the order with the earlier
    priority is reported as the maker.
    """

    tx: int
    instrument: str
    price_ticks: int
    size_lots: int
    taker_side: int
    maker_order_id: int
    taker_order_id: int
    maker_account: str
    taker_account: str
    maker_remaining_lots: int
    taker_remaining_lots: int


class OrderCancelled(msgspec.Struct, frozen=True, tag="cancelled", gc=False):
    tx: int
    order_id: int
    account: str
    instrument: str
    remaining_lots: int
    reason: str


class OrderExpired(msgspec.Struct, frozen=True, tag="expired", gc=False):
    """A good-till-time order reached its expiry (judged against block time)."""

    tx: int
    order_id: int
    account: str
    instrument: str
    remaining_lots: int


class OrderAmended(msgspec.Struct, frozen=True, tag="amended", gc=False):
    tx: int
    order_id: int
    price_ticks: int
    remaining_lots: int
    priority_kept: bool


class InstrumentListed(msgspec.Struct, frozen=True, tag="listed", gc=False):
    tx: int
    instrument: Instrument


class InstrumentDelisted(msgspec.Struct, frozen=True, tag="delisted", gc=False):
    tx: int
    instrument: str


class InstrumentExpired(msgspec.Struct, frozen=True, tag="instrument_expired", gc=False):
    """An option reached its expiry: its book closed (settlement comes with part 2)."""

    tx: int
    instrument: str


class AuctionCleared(msgspec.Struct, frozen=True, tag="auction", gc=False):
    """A batch-auction market cleared at one price (its fills follow)."""

    tx: int
    instrument: str
    price_ticks: int
    volume_lots: int


Event = (
    Rejected
    | OrderAccepted
    | OrderRepriced
    | Fill
    | OrderCancelled
    | OrderExpired
    | OrderAmended
    | InstrumentListed
    | InstrumentDelisted
    | InstrumentExpired
    | AuctionCleared
)


class BlockResult(msgspec.Struct, frozen=True, kw_only=True):
    """What applying a block produced. A rejected block (``rejected`` set) changed nothing."""

    height: int
    timestamp_ns: int
    events: list[Event]
    rejected: str = ""
    """The :class:`~strikechain.engine.codes.RejectCode` of a block refused whole, else ''."""
    reason: str = ""
