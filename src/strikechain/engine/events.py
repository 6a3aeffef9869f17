"""Events: everything that happens in a block, as values, in the order it happens.

The event stream of a block is the engine's whole output: the node streams it to clients, the
lab measures it, and every block's digest hashes it (:func:`strikechain.engine.codec.
chain_digest`). ``tx`` is the position of the causing transaction in the block as submitted (-1
for what the engine does on its own: expiries, auctions), so every event can be traced to its
cause.

Events encode as MessagePack arrays, ``[tag, field, field, ...]`` in declaration order, not as
maps: they are the highest-volume data the venue hashes (a block of 1,000 orders makes about
1,500), and without field names a block's events take less than half the bytes, which halves
the keccak work of the digest. Transactions and blocks stay maps (self-describing, what users
sign and the log shows).
"""

from __future__ import annotations

import msgspec

from strikechain.engine.instruments import Instrument


class Rejected(msgspec.Struct, frozen=True, array_like=True, tag="rejected", gc=False):
    """A transaction was refused; it changed nothing."""

    tx: int
    account: str
    code: str
    message: str
    client_order_id: str = ""


class OrderAccepted(msgspec.Struct, frozen=True, array_like=True, tag="accepted", gc=False):
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


class OrderRepriced(msgspec.Struct, frozen=True, array_like=True, tag="repriced", gc=False):
    """A post-only order that would have crossed was moved one tick behind the touch."""

    tx: int
    order_id: int
    price_ticks: int
    requested_price_ticks: int


class Fill(msgspec.Struct, frozen=True, array_like=True, tag="fill", gc=False):
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
    maker_fee: int = 0
    """USDC minor units the maker paid (negative: a rebate it received)."""
    taker_fee: int = 0


class OrderCancelled(msgspec.Struct, frozen=True, array_like=True, tag="cancelled", gc=False):
    tx: int
    order_id: int
    account: str
    instrument: str
    remaining_lots: int
    reason: str


class OrderExpired(msgspec.Struct, frozen=True, array_like=True, tag="expired", gc=False):
    """A good-till-time order reached its expiry (judged against block time)."""

    tx: int
    order_id: int
    account: str
    instrument: str
    remaining_lots: int


class OrderAmended(msgspec.Struct, frozen=True, array_like=True, tag="amended", gc=False):
    tx: int
    order_id: int
    price_ticks: int
    remaining_lots: int
    priority_kept: bool


class InstrumentListed(msgspec.Struct, frozen=True, array_like=True, tag="listed", gc=False):
    tx: int
    instrument: Instrument


class InstrumentDelisted(msgspec.Struct, frozen=True, array_like=True, tag="delisted", gc=False):
    tx: int
    instrument: str


class InstrumentExpired(
    msgspec.Struct, frozen=True, array_like=True, tag="instrument_expired", gc=False
):
    """An option reached its expiry: its book closed; :class:`InstrumentSettled` follows once
    the settlement price (the average index of the last 30 minutes) is known."""

    tx: int
    instrument: str


class AuctionCleared(msgspec.Struct, frozen=True, array_like=True, tag="auction", gc=False):
    """A batch-auction market cleared at one price (its fills follow)."""

    tx: int
    instrument: str
    price_ticks: int
    volume_lots: int


class Deposited(msgspec.Struct, frozen=True, array_like=True, tag="deposited", gc=False):
    tx: int
    deposit_id: int
    account: str
    underlying: str
    amount: int


class WithdrawalRequested(msgspec.Struct, frozen=True, array_like=True, tag="withdrawal", gc=False):
    """Collateral left the sub-ledger; the settlement layer pays ``withdrawal_id`` out."""

    tx: int
    withdrawal_id: int
    account: str
    underlying: str
    amount: int


class Transferred(msgspec.Struct, frozen=True, array_like=True, tag="transferred", gc=False):
    tx: int
    account: str
    from_underlying: str
    to_underlying: str
    amount: int


class MarginModeSet(msgspec.Struct, frozen=True, array_like=True, tag="margin_mode_set", gc=False):
    """A sub-ledger's margin mode (:class:`~strikechain.engine.txs.MarginMode`) and what it now
    requires."""

    tx: int
    account: str
    underlying: str
    mode: int
    initial: int
    maintenance: int


class MarginCall(msgspec.Struct, frozen=True, array_like=True, tag="margin_call", gc=False):
    """Dynamic margin's ladder: a sub-ledger's equity fell below the search level (``flagged``)
    or rose back above it."""

    tx: int
    account: str
    underlying: str
    equity: int
    maintenance: int
    flagged: bool


class MarginMultiplier(
    msgspec.Struct, frozen=True, array_like=True, tag="margin_multiplier", gc=False
):
    """Dynamic margin moved an underlying's multiplier (ppm of the configured rates), with the
    liquidation horizon and realized vol it was computed from."""

    tx: int
    underlying: str
    multiplier_ppm: int
    target_ppm: int
    horizon_ns: int
    realized_vol_ppm: int


class IndexUpdated(msgspec.Struct, frozen=True, array_like=True, tag="index", gc=False):
    """The oracle's aggregate for an underlying changed (minor units per unit)."""

    tx: int
    underlying: str
    index: int
    confidence: int
    reporters: int


class CircuitBreakerOpened(
    msgspec.Struct, frozen=True, array_like=True, tag="breaker_opened", gc=False
):
    """The underlying's price is not trusted: takers reduce-only, liquidations paused for at
    most the configured pause. ``reason``: NO_PRICE, NO_QUORUM, DISAGREEMENT,
    CONFIDENCE_TOO_WIDE."""

    tx: int
    underlying: str
    reason: str


class CircuitBreakerClosed(
    msgspec.Struct, frozen=True, array_like=True, tag="breaker_closed", gc=False
):
    tx: int
    underlying: str


class FundingPaid(msgspec.Struct, frozen=True, array_like=True, tag="funding", gc=False):
    """One perpetual's funding: longs paid shorts ``rate_ppb`` of value (negative: the reverse).

    ``paid`` left the payers, ``received`` reached the receivers, ``dust = paid - received``
    went to the dust account; one :class:`FundingPayment` per position precedes this event.
    """

    tx: int
    instrument: str
    rate_ppb: int
    mark_per_lot: int
    long_lots: int
    paid: int
    received: int
    dust: int


class FundingPayment(msgspec.Struct, frozen=True, array_like=True, tag="funding_payment", gc=False):
    tx: int
    account: str
    instrument: str
    position_lots: int
    amount: int
    """Received (negative: paid), USDC minor units."""


class PositionSettled(
    msgspec.Struct, frozen=True, array_like=True, tag="position_settled", gc=False
):
    """A position closed by the venue (option expiry, delisting) against a cash amount."""

    tx: int
    account: str
    instrument: str
    position_lots: int
    amount: int
    """Received (negative: paid)."""
    realized: int


class InstrumentSettled(
    msgspec.Struct, frozen=True, array_like=True, tag="instrument_settled", gc=False
):
    """Every position of an instrument closed at ``price`` per unit of the underlying (the
    30-minute average index for an option's expiry, the mark for a delisting)."""

    tx: int
    instrument: str
    price: int
    payout_per_lot: int
    """Per long lot, before rounding each position (``FLOOR``)."""
    lots: int
    paid: int
    received: int
    dust: int


class LiquidationQueued(
    msgspec.Struct, frozen=True, array_like=True, tag="liquidation_queued", gc=False
):
    """A sub-ledger fell below maintenance margin; it may only reduce risk until it leaves."""

    tx: int
    account: str
    underlying: str
    equity: int
    maintenance: int


class LiquidationOrder(
    msgspec.Struct, frozen=True, array_like=True, tag="liquidation_order", gc=False
):
    """The liquidation lane closed part of a queued sub-ledger's position with an IOC order
    against the book, inside the band bounded by the bankruptcy price (its fills are
    :class:`Fill` events with the same ``order_id``)."""

    tx: int
    order_id: int
    account: str
    instrument: str
    side: int
    lots: int
    limit_ticks: int
    filled_lots: int
    notional: int


class LiquidationFee(msgspec.Struct, frozen=True, array_like=True, tag="liquidation_fee", gc=False):
    """The liquidation fee on the notional closed, from the sub-ledger to the insurance fund
    (capped by its remaining positive equity)."""

    tx: int
    account: str
    underlying: str
    amount: int


class InsurancePaid(msgspec.Struct, frozen=True, array_like=True, tag="insurance_paid", gc=False):
    """The insurance fund covered a flat sub-ledger's negative equity; ``uncovered`` is what
    the fund could not (bad debt)."""

    tx: int
    account: str
    underlying: str
    amount: int
    uncovered: int


class LiquidationQueueLeft(
    msgspec.Struct, frozen=True, array_like=True, tag="liquidation_left", gc=False
):
    tx: int
    account: str
    underlying: str
    equity: int
    maintenance: int


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
    | Deposited
    | WithdrawalRequested
    | Transferred
    | MarginModeSet
    | MarginCall
    | MarginMultiplier
    | IndexUpdated
    | CircuitBreakerOpened
    | CircuitBreakerClosed
    | FundingPaid
    | FundingPayment
    | PositionSettled
    | InstrumentSettled
    | LiquidationQueued
    | LiquidationOrder
    | LiquidationFee
    | InsurancePaid
    | LiquidationQueueLeft
)


class BlockResult(msgspec.Struct, frozen=True, kw_only=True):
    """What applying a block produced. A rejected block (``rejected`` set) changed nothing."""

    height: int
    timestamp_ns: int
    events: list[Event]
    rejected: str = ""
    """The :class:`~strikechain.engine.codes.RejectCode` of a block refused whole, else ''."""
    reason: str = ""
    digest: bytes = b""
    """This block's events chained onto all before (:func:`strikechain.engine.codec.chain_digest`);
    a refused block changes nothing, and carries the unchanged digest of the block before."""
    state_root: bytes = b""
    """The state commitment after this block, when the driver asked for one (every N blocks and
    on demand, see ``Engine.state_root``); else empty."""
