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
from strikechain.engine.params import UnderlyingParams


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


class ForcedWithdrawalServed(
    msgspec.Struct, frozen=True, array_like=True, tag="forced_withdrawal_served", gc=False
):
    """A forced-withdrawal request was served: ``amount`` (0 to the requested amount) left the
    sub-ledger as withdrawal ``withdrawal_id`` (0 when nothing could leave)."""

    tx: int
    request_id: int
    account: str
    underlying: str
    requested: int
    amount: int
    withdrawal_id: int


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


class BackstopTaken(msgspec.Struct, frozen=True, array_like=True, tag="backstop", gc=False):
    """The backstop pool took what the book could not absorb of a liquidation step, at
    ``price_per_lot`` (minor units per lot: the penalty price, bounded by the bankruptcy price
    and the mark; see :func:`~strikechain.engine.liquidation.backstop_take_price_per_lot`)."""

    tx: int
    account: str
    instrument: str
    side: int
    """The liquidated position's closing side (the backstop trades the other way)."""
    lots: int
    price_per_lot: int
    backstop: str


class Deleveraged(msgspec.Struct, frozen=True, array_like=True, tag="deleveraged", gc=False):
    """Auto-deleveraging: a bankrupt sub-ledger the insurance fund could not make whole closed
    ``lots`` against an opposite position at its bankruptcy price; ``socialized`` is what that
    cost the counterparty against the mark."""

    tx: int
    account: str
    counterparty: str
    instrument: str
    side: int
    """The bankrupt position's closing side (the counterparty trades the other way)."""
    lots: int
    price_per_lot: int
    socialized: int


class StressMode(msgspec.Struct, frozen=True, array_like=True, tag="stress_mode", gc=False):
    """An underlying entered or left stress mode (a liquidation backlog or an open breaker):
    while ``active``, its takers may only reduce risk and take at most ``taker_share_ppm`` of
    a block's transactions; makers, cancels and liquidations go on."""

    tx: int
    underlying: str
    active: bool
    backlog: int
    """Sub-ledgers in the liquidation queue on the underlying."""
    breaker_open: bool
    taker_share_ppm: int


class MarketAuction(msgspec.Struct, frozen=True, array_like=True, tag="market_auction", gc=False):
    """A market's trading mode changed, and why (market data): ``kind`` is AUCTION_STARTED,
    AUCTION_EXTENDED or AUCTION_ENDED (:mod:`strikechain.engine.auction_triggers`); ``reason``
    LONG_BLOCK (``gap_ns`` between blocks) or PRICE_MONITORING (``price_ticks`` would have left
    ``band_ppm`` around ``reference_ticks``, the price ``horizon_ns`` ago), NONE once ended.
    While in an auction orders rest without matching; at ``ends_ns`` the book uncrosses at one
    price (an :class:`AuctionCleared` follows) and continuous trading resumes."""

    tx: int
    instrument: str
    kind: str
    reason: str
    ends_ns: int
    extended: bool
    gap_ns: int
    horizon_ns: int
    band_ppm: int
    reference_ticks: int
    price_ticks: int


class LiquidationAuctionStarted(
    msgspec.Struct, frozen=True, array_like=True, tag="liquidation_auction", gc=False
):
    """The keeper-auction baseline announced a queued sub-ledger's position: keepers bid with
    :class:`~strikechain.engine.txs.LiquidationBid` until ``ends_ns`` (block time)."""

    tx: int
    auction_id: int
    account: str
    instrument: str
    side: int
    """The position's closing side: SELL (-1) a long to the highest bid, BUY (+1) a short back
    from the lowest."""
    lots: int
    ends_ns: int


class LiquidationBidPlaced(
    msgspec.Struct, frozen=True, array_like=True, tag="liquidation_bid", gc=False
):
    tx: int
    auction_id: int
    bidder: str
    price_ticks: int


class LiquidationAuctionEnded(
    msgspec.Struct, frozen=True, array_like=True, tag="liquidation_auction_ended", gc=False
):
    """A keeper auction's time was up: ``winner`` bought (or sold) ``lots`` at ``price_ticks``,
    whatever the price; no winner ("" and 0 lots) when no bid came or none could be margined, or
    when the sub-ledger left the queue first."""

    tx: int
    auction_id: int
    account: str
    instrument: str
    winner: str
    lots: int
    price_ticks: int


class LiquidationQueueLeft(
    msgspec.Struct, frozen=True, array_like=True, tag="liquidation_left", gc=False
):
    tx: int
    account: str
    underlying: str
    equity: int
    maintenance: int


class MarketStatusChanged(
    msgspec.Struct, frozen=True, array_like=True, tag="market_status", gc=False
):
    """The operator halted (``halted``) or resumed a market, and why (market data). While
    halted it takes cancels only and does no matching (:mod:`strikechain.engine.governance`)."""

    tx: int
    instrument: str
    halted: bool
    reason: str


class ParameterChangeScheduled(
    msgspec.Struct, frozen=True, array_like=True, tag="parameters_scheduled", gc=False
):
    """The operator announced that ``params`` replace the underlying's parameters from block
    time ``effective_at_ns`` (a :class:`ParameterChangeApplied` follows then, unless a
    :class:`ParameterChangeCancelled` comes first)."""

    tx: int
    change_id: int
    underlying: str
    effective_at_ns: int
    params: UnderlyingParams


class ParameterChangeApplied(
    msgspec.Struct, frozen=True, array_like=True, tag="parameters_applied", gc=False
):
    """A scheduled change came into force at the start of this block (``tx`` -1), before its
    transactions."""

    tx: int
    change_id: int
    underlying: str


class ParameterChangeCancelled(
    msgspec.Struct, frozen=True, array_like=True, tag="parameters_cancelled", gc=False
):
    tx: int
    change_id: int
    underlying: str


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
    | ForcedWithdrawalServed
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
    | BackstopTaken
    | Deleveraged
    | StressMode
    | MarketAuction
    | LiquidationAuctionStarted
    | LiquidationBidPlaced
    | LiquidationAuctionEnded
    | MarketStatusChanged
    | ParameterChangeScheduled
    | ParameterChangeApplied
    | ParameterChangeCancelled
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
