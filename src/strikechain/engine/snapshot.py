"""Engine snapshots: the whole venue state as one value, and an engine rebuilt from it.

:func:`capture` turns an :class:`~strikechain.engine.engine.Engine` (between blocks) into a
:class:`Snapshot`, a tree of frozen msgspec Structs of integers, strings, bytes, booleans and
tuples (and the engine's own value types: instruments, oracle reports, the venue config).
:func:`restore` builds a fresh engine from one; it then behaves exactly as the original would:
the same blocks give the same results, and capturing it again gives the same snapshot.

Three sections, so the state commitment can hash them apart:

- ``ledgers``: each sub-ledger's balances (cash, and per instrument its position and cost
  basis), accounts in the engine's order, each account's sub-ledgers in its order;
- ``system``: the venue's own balances (fee pool, insurance fund, dust);
- ``rest``: everything else: the venue config, counters, books with every resting order in
  priority order, oracles, marks and funding accumulators, the open-order aggregates and
  bookkeeping totals of the sub-ledgers, the liquidation queue and the heaps of timed work,
  halted markets, scheduled parameter changes and the parameters in force where a change
  replaced the config's.
  :func:`rest_bytes` is its canonical encoding.

Invariants
- Every dict of the engine is captured as a tuple in its iteration (insertion) order, and
  restored in that order: iteration order decides later behaviour (the order of funding
  payments over holders, of health checks, of events). No set and no ``hash()`` order reaches a
  snapshot, so the same state gives the same bytes whatever ``PYTHONHASHSEED`` is.
- Objects shared by several indexes stay shared after :func:`restore`: an exposure is one
  object in its sub-ledger, its account, its market's holders and its orders; an order is one
  object in its book level, ``Engine.orders`` and its account.
- Derived caches are not captured (see :data:`DERIVED`): a restored engine recomputes every
  sub-ledger's margin at the current marks, which leaves every cache exact (the original's may
  be upper bounds, which only ever send a decision to the exact path: outcomes are the same).
- Every attribute of the engine's state classes is named in :data:`CAPTURED`, :data:`DERIVED` or
  :data:`CONFIGURATION`; an attribute in none of them makes :func:`capture` raise rather than
  lose it silently (and a test lists every attribute against the tables).

Failures: undecodable or inconsistent snapshot bytes raise :class:`Rejection`
(``MALFORMED_SNAPSHOT``); a restore under another venue config or margin mode raises
``SNAPSHOT_CONFIG_MISMATCH``. Capturing mid-block is a bug (an invariant).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Generator
from typing import Final, cast

import msgspec

from strikechain.engine.accounts import Account, Exposure, Market, SubLedger, UnderlyingState
from strikechain.engine.auction_triggers import (
    AuctionReason,
    AuctionState,
    PriceHistory,
    TradingMode,
)
from strikechain.engine.book import Book, Order, Taking, _Side, order_rows
from strikechain.engine.codec import CodecError, Kind, decode_body, frame, unframe
from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.dynamic import DynamicState
from strikechain.engine.engine import Engine
from strikechain.engine.governance import ParameterChange
from strikechain.engine.instruments import Instrument
from strikechain.engine.invariant import invariant
from strikechain.engine.limits import DEFAULT_LIMITS, Limits
from strikechain.engine.liquidator import KeeperAuction
from strikechain.engine.margin import STANDARD_MARGIN, MarginPolicy
from strikechain.engine.oracle import (
    OracleReport,
    OracleState,
    ReportVerifier,
    VolSlice,
)
from strikechain.engine.ordering import OrderingPolicy
from strikechain.engine.params import UnderlyingParams, VenueConfig
from strikechain.engine.signing import keccak_hasher

# --- attribute coverage -------------------------------------------------------------------------

CAPTURED: Final[dict[str, frozenset[str]]] = {
    "Engine": frozenset(
        {
            "height",
            "timestamp_ns",
            "next_order_id",
            "next_deposit_id",
            "next_withdrawal_id",
            "next_forced_id",
            "deposits_total",
            "withdrawals_total",
            "fee_pool",
            "insurance_fund",
            "dust",
            "instruments",
            "books",
            "markets",
            "expired_instruments",
            "orders",
            "accounts",
            "underlyings",
            "liquidation_queue",
            "awaiting_settlement",
            "_good_till",
            "_market_expiries",
            "digest",
            "next_leaf_index",
            "keeper_auctions",
            "next_auction_id",
            "pending_changes",
            "next_change_id",
        }
    ),
    "UnderlyingState": frozenset(
        {
            "name",
            "stressed",
            "oracle",
            "restricted",
            "marked_ns",
            "vol_nodes",
            "markets",
            "ledgers",
            "holders",
            "epoch_ns",
            "epoch_index",
            "epoch_confidence",
            "margin_multiplier_ppm",
            "dynamic",
            "params",
        }
    ),
    "Market": frozenset(
        {
            "name",
            "underlying",
            "state",
            "is_option",
            "is_call",
            "expiry_ns",
            "strike_minor",
            "strike_per_lot",
            "tick_minor",
            "value_per_tick_lot",
            "lot_numerator",
            "lot_denominator",
            "maker_fee_ppm",
            "taker_fee_ppm",
            "initial_ppm",
            "maintenance_ppm",
            "initial_floor_ppm",
            "put_mark_floor_ppm",
            "liquidity_lots",
            "open_interest_cap_lots",
            "position_cap_lots",
            "mark_minor",
            "mark_per_lot",
            "index_per_lot",
            "holders",
            "basis_ema_minor",
            "basis_updated_ns",
            "premium_weighted",
            "premium_ns",
            "last_funding_ns",
            "next_funding_ns",
            "last_trade_ticks",
            "last_trade_ns",
            "auction",
            "history",
            "halted",
            "halt_reason",
        }
    ),
    "AuctionState": frozenset({"mode", "reason", "ends_ns", "extended"}),
    "PriceHistory": frozenset({"_times", "_prices"}),
    "KeeperAuction": frozenset(
        {
            "auction_id",
            "account",
            "underlying",
            "instrument",
            "side",
            "lots",
            "ends_ns",
            "best_bidder",
            "best_price_ticks",
        }
    ),
    "SubLedger": frozenset(
        {
            "account",
            "underlying",
            "state",
            "cash",
            "exposures",
            "in_liquidation",
            "portfolio",
            "margin_call",
            "realized",
            "fees",
            "funding",
            "settlements",
            "insured",
            "deposited",
            "withdrawn",
            "transferred",
            "leaf_index",
        }
    ),
    "Exposure": frozenset(
        {
            "ledger",
            "market",
            "position",
            "basis",
            "realized",
            "buy_lots",
            "buy_value",
            "sell_lots",
            "sell_value",
            "buy_loss",
            "sell_loss",
        }
    ),
    "Account": frozenset({"orders", "client_ids", "ledgers", "exposures"}),
    "Order": frozenset(
        {
            "order_id",
            "account",
            "instrument",
            "side",
            "price",
            "size",
            "remaining",
            "client_order_id",
            "post_only",
            "self_trade",
            "reduce_only",
            "expire_at_ns",
            "exposure",
            "loss_per_lot",
        }
    ),
    "Book": frozenset({"name", "bids", "asks"}),
    "_Side": frozenset({"levels"}),
    "OracleState": frozenset(
        {
            "underlying",
            "_latest",
            "_vol_nodes",
            "index",
            "confidence",
            "breaker_open",
            "breaker_reason",
            "breaker_opened_ns",
            "history",
        }
    ),
    "IndexHistory": frozenset({"_times", "_values", "complete_from_ns"}),
}
"""State captured in a snapshot (links to other captured objects count: they are rebuilt)."""

DERIVED: Final[dict[str, frozenset[str]]] = {
    # _auctions, _touched, _events: per-block scratch, empty between blocks (capture checks);
    # so are _liquidation_order (0) and _stress_cap (set each block before it is read).
    # _auction_of indexes keeper_auctions; _monitored lists the markets with a trading mode.
    # _ledger_tree, _stale_leaves, _rest_hash: the state commitment's caches; a restored
    # engine has no tree yet, so its first state root is built from every leaf.
    # _liquidating: whether any underlying's parameters in force liquidate.
    "Engine": frozenset(
        {
            "_liquidating",
            "_auctions",
            "_touched",
            "_events",
            "_ledger_tree",
            "_stale_leaves",
            "_rest_hash",
            "health_checked",
            "health_skipped",
            "_auction_of",
            "_liquidation_order",
            "_stress_cap",
            "_monitored",
        }
    ),
    # epoch, checked_epoch: only compared for equality with each other and with the sub-ledgers'
    # epochs; at a block boundary checked_epoch == epoch, so a restore starts both at 0.
    # committed_epoch: the commitment's copy of the epoch, set when a tree is built.
    # options: the count of option markets, recounted.
    # scenario_table, scenario_epoch, scenario_index: the portfolio margin's table of the
    # epoch, a pure function of the captured epoch inputs (epoch_ns, epoch_index,
    # epoch_confidence, the marks, vol nodes and multiplier), rebuilt on first use.
    # mark_path_ppm, path_index: how far the marks travelled, only to skip health checks of
    # sub-ledgers proven safe (which changes no outcome); restarts with nothing proven.
    # mark_interval_ns: read from the parameters in force.
    "UnderlyingState": frozenset(
        {
            "mark_interval_ns",
            "epoch",
            "checked_epoch",
            "committed_epoch",
            "options",
            "scenario_table",
            "scenario_epoch",
            "scenario_index",
            "mark_path_ppm",
            "path_index",
            "stress_takers",
        }
    ),
    # positions and basis are sums over the exposures; epoch, dirty, moved, pending, value,
    # initial, maintenance and reserve are margin caches that restore recomputes exactly
    # (Engine._refresh); touched is False between blocks; leaf_stale marks a leaf to rehash
    # in the commitment's tree, which a restored engine builds afresh from every leaf.
    "SubLedger": frozenset(
        {
            "positions",
            "basis",
            "epoch",
            "dirty",
            "moved",
            "pending",
            "value",
            "initial",
            "maintenance",
            "reserve",
            "touched",
            "leaf_stale",
            "safe_until_path",
        }
    ),
    "Exposure": frozenset(
        {"value", "initial", "maintenance", "reserve", "dirty", "moved", "pending"}
    ),
    "Account": frozenset(),
    # in_auction mirrors the trading mode; the price band is recomputed at every block's start.
    "Market": frozenset({"in_auction", "band_low_ticks", "band_high_ticks"}),
    # _start: where the ring begins; samples are captured oldest first and recorded again.
    # capacity: from the auction rules in force.
    "PriceHistory": frozenset({"_start", "capacity"}),
    "Order": frozenset(),
    # The instrument, its market and its matching mode come from the listing.
    "Book": frozenset({"instrument", "market", "batch"}),
    # The heap of prices (and in_heap, its set) keeps stale prices until a read of the best
    # price drops them, so its layout depends on who looked at the book: only the live prices
    # are state, and a restore heapifies them. The order of matching never depends on it.
    # taking: a state being taken in steps (begin_taking), released before anything restores.
    "_Side": frozenset({"heap", "in_heap", "sign", "taking"}),
    # params (and _position, keep_ns and max_samples read from them): the underlying's oracle
    # parameters in force (OracleState.reconfigure).
    "OracleState": frozenset({"_position", "params"}),
    "IndexHistory": frozenset({"keep_ns", "max_samples"}),
}
"""State recomputed by :func:`restore` from what is captured, and why."""

CONFIGURATION: Final[dict[str, frozenset[str]]] = {
    "Engine": frozenset(
        {
            "limits",
            "policy",
            "venue",
            "margin",
            "verifier",
            "_max_account_length",
            "_max_client_order_id_length",
            "_max_size_lots",
            "_max_price_ticks",
            "_max_open_orders",
            "_max_levels",
            "_handlers",
            "_known_types",
            "_liquidator",
        }
    ),
    "OracleState": frozenset({"domain", "verifier"}),
}
"""Set by :func:`restore`'s arguments (the venue config, limits, policy, margin, verifier)."""


def attribute_names(obj: object) -> frozenset[str]:
    """The instance attributes of ``obj``: its ``__dict__``, slots and dataclass fields (and a
    mypyc native class's attribute table)."""
    names = set(getattr(obj, "__dict__", ()))
    for klass in type(obj).__mro__:
        for table in ("__slots__", "__dataclass_fields__", "__mypyc_attrs__"):
            found = getattr(klass, table, ())
            names.update((found,) if isinstance(found, str) else found)
    return frozenset(names - {"__dict__", "__weakref__"})


def known_attributes(class_name: str) -> frozenset[str]:
    """Every attribute of ``class_name`` the snapshot handles (captured, derived or config)."""
    return (
        CAPTURED[class_name]
        | DERIVED.get(class_name, frozenset())
        | CONFIGURATION.get(class_name, frozenset())
    )


# --- the snapshot -------------------------------------------------------------------------------


class OrderSnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """A resting order; its exposure is its account's exposure to its instrument."""

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
    loss_per_lot: int


class LevelSnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    price: int
    order_ids: tuple[int, ...]
    """Oldest first (time priority)."""


class SideSnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    levels: tuple[LevelSnapshot, ...]
    """In the side's dict order."""


class BookSnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    name: str
    bids: SideSnapshot
    asks: SideSnapshot


class HistorySnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    times: tuple[int, ...]
    values: tuple[int, ...]
    trimmed: bool
    """Something was trimmed: exact only from ``complete_from_ns``."""
    complete_from_ns: int


class OracleSnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    underlying: str
    latest: tuple[OracleReport, ...]
    """Each reporter's latest report, in the order reporters were first kept."""
    vol_nodes: tuple[VolSlice, ...]
    has_index: bool
    index: int
    """0 while ``has_index`` is False."""
    confidence: int
    breaker_open: bool
    breaker_reason: str
    breaker_opened_ns: int
    history: HistorySnapshot


class DynamicSnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """Dynamic margin's estimator (:class:`~strikechain.engine.dynamic.DynamicState`), field
    for field (a test keeps the two in step)."""

    variance_e18: int
    index: int
    index_ns: int
    interval_ns: int
    block_ns: int
    blocks: int
    horizon_ns: int
    target_ppm: int
    multiplier_ppm: int


class UnderlyingSnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    name: str
    restricted: bool
    stressed: bool
    marked_ns: int
    epoch_ns: int
    epoch_index: int
    epoch_confidence: int
    """The portfolio table's inputs, as of the last epoch."""
    margin_multiplier_ppm: int
    dynamic: DynamicSnapshot | None
    vol_nodes: tuple[VolSlice, ...]
    """The vol nodes the option marks were last computed from."""
    markets: tuple[str, ...]
    ledgers: tuple[str, ...]
    """Accounts with a sub-ledger here, in the underlying's order."""
    holders: tuple[str, ...]
    """Accounts with a position here, in the order they opened."""


class TradingModeSnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """A market's :class:`~strikechain.engine.auction_triggers.AuctionState`."""

    mode: str
    reason: str
    ends_ns: int
    extended: bool


class KeeperAuctionSnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    auction_id: int
    account: str
    underlying: str
    instrument: str
    side: int
    lots: int
    ends_ns: int
    best_bidder: str
    best_price_ticks: int


class MarketSnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    name: str
    underlying: str
    is_option: bool
    is_call: bool
    expiry_ns: int
    strike_minor: int
    strike_per_lot: int
    tick_minor: int
    value_per_tick_lot: int
    lot_numerator: int
    lot_denominator: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    initial_ppm: int
    maintenance_ppm: int
    initial_floor_ppm: int
    put_mark_floor_ppm: int
    liquidity_lots: int
    open_interest_cap_lots: int
    position_cap_lots: int
    mark_minor: int
    mark_per_lot: int
    index_per_lot: int
    basis_ema_minor: int
    basis_updated_ns: int
    premium_weighted: int
    premium_ns: int
    last_funding_ns: int
    next_funding_ns: int
    holders: tuple[str, ...]
    """Accounts with a position, in the order they opened."""
    last_trade_ticks: int
    last_trade_ns: int
    trading: TradingModeSnapshot | None
    """None when the underlying's params have no auctions."""
    price_history: tuple[tuple[int, int], ...]
    """Price monitoring's samples (time, price), oldest first."""
    halted: bool = False
    halt_reason: str = ""
    """Last with defaults, so snapshots written before halts existed still decode."""


class ExposureRest(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """An exposure's realized P&L and open-order aggregates."""

    instrument: str
    realized: int
    buy_lots: int
    buy_value: int
    buy_loss: int
    sell_lots: int
    sell_value: int
    sell_loss: int


class LedgerRest(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """A sub-ledger's bookkeeping totals and flags; its exposures in its order."""

    underlying: str
    in_liquidation: bool
    portfolio: bool
    margin_call: bool
    realized: int
    fees: int
    funding: int
    settlements: int
    insured: int
    deposited: int
    withdrawn: int
    transferred: int
    exposures: tuple[ExposureRest, ...]
    leaf_index: int
    """Its leaf in the state commitment (0: none yet)."""


class AccountSnapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    account: str
    ledgers: tuple[LedgerRest, ...]
    """In the account's order of underlyings."""
    exposures: tuple[str, ...]
    """The account's exposures by instrument, in its order."""
    orders: tuple[int, ...]
    """Open order ids, in the account's order."""
    client_ids: tuple[tuple[str, int], ...]


class ExposureLeaf(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    instrument: str
    position: int
    basis: int


class LedgerLeaf(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """A sub-ledger's balances: cash, and each exposure's position and cost basis."""

    account: str
    underlying: str
    cash: int
    exposures: tuple[ExposureLeaf, ...]


class SystemBalances(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    fee_pool: int
    insurance_fund: int
    dust: int


class RestState(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """Everything but the balances."""

    venue: VenueConfig
    margin_checks: bool
    """Whether the engine ran with a margin policy (the open-order aggregates exist only then)."""
    height: int
    timestamp_ns: int
    next_order_id: int
    next_deposit_id: int
    next_withdrawal_id: int
    deposits_total: int
    withdrawals_total: int
    underlyings: tuple[UnderlyingSnapshot, ...]
    oracles: tuple[OracleSnapshot, ...]
    """One per configured underlying, in the engine's order of underlyings."""
    instruments: tuple[Instrument, ...]
    expired_instruments: tuple[Instrument, ...]
    markets: tuple[MarketSnapshot, ...]
    books: tuple[BookSnapshot, ...]
    orders: tuple[OrderSnapshot, ...]
    """Every open order, in the order of ``Engine.orders``."""
    accounts: tuple[AccountSnapshot, ...]
    liquidation_queue: tuple[tuple[str, str], ...]
    """(account, underlying) of each queued sub-ledger, in queue order."""
    awaiting_settlement: tuple[str, ...]
    good_till: tuple[tuple[int, int], ...]
    """The heap of (expire_at_ns, order_id), as the list it is."""
    market_expiries: tuple[tuple[int, str], ...]
    """The heap of (expiry_ns, instrument), as the list it is."""
    digest: bytes
    """The chained digest of the last block."""
    next_leaf_index: int
    keeper_auctions: tuple[KeeperAuctionSnapshot, ...]
    """Open keeper auctions, oldest first."""
    next_auction_id: int
    next_forced_id: int = 1
    """Last so that snapshots written before forced withdrawals existed still decode."""
    pending_changes: tuple[ParameterChange, ...] = ()
    """Scheduled parameter changes, in the order scheduled (these three last, with defaults,
    so that snapshots written before parameter changes existed still decode)."""
    next_change_id: int = 1
    underlying_params: tuple[tuple[str, UnderlyingParams], ...] = ()
    """The parameters in force on each underlying where a change replaced the venue config's
    (in the engine's order of underlyings)."""


class Snapshot(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """The engine's state: balances of sub-ledgers, the venue's balances, everything else."""

    ledgers: tuple[LedgerLeaf, ...]
    system: SystemBalances
    rest: RestState


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(Snapshot)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """The canonical encoding (one state, one encoding), in a ``SNAPSHOT`` frame of the codec."""
    return frame(Kind.SNAPSHOT, _ENCODER.encode(snapshot))


def decode_snapshot(data: bytes) -> Snapshot:
    """A snapshot from :func:`encode_snapshot`'s bytes; raises ``MALFORMED_SNAPSHOT`` for
    anything else (not a snapshot frame, undecodable, or not canonical)."""
    try:
        _, body = unframe(data, Kind.SNAPSHOT)
        snapshot: Snapshot = decode_body(body, _DECODER, "snapshot")
    except CodecError as error:
        raise Rejection(RejectCode.MALFORMED_SNAPSHOT, error.message) from None
    return snapshot


def rest_bytes(engine: Engine) -> bytes:
    """The canonical encoding of everything but the balances (:class:`RestState`)."""
    _check_between_blocks(engine)
    return _ENCODER.encode(_capture_rest(engine))


ORDERS_PER_STEP: Final = 4_096
"""Resting orders :func:`finish_taking_in_steps` reads and encodes a step (~1.5 ms)."""
HASHED_BYTES_PER_STEP: Final = 1 << 19
"""Bytes :func:`rest_hash_in_steps` feeds Keccak a step (~1.5 ms)."""


class TakenRest:
    """Everything but the balances of one state, as values no later block changes
    (:func:`take_rest_in_steps`): the resting orders already encoded, the books' levels, the
    rest of :class:`RestState` with its orders left out. Its encoding
    (:func:`encode_rest_in_steps`) is the state's :func:`rest_bytes` whenever it is done."""

    __slots__ = ("count", "encoded", "height", "rest")

    def __init__(
        self, height: int, encoded: list[bytes | memoryview], count: int, rest: RestState
    ) -> None:
        self.height = height
        self.encoded = encoded
        """The resting orders' encodings (as their rows: :class:`OrderSnapshot` is
        ``array_like``), :data:`ORDERS_PER_STEP` to a piece, each without its array header.
        Encoded as they are read, so that tens of thousands of row tuples never wait together
        for the young-generation collector (a 9 ms collection in the middle of a block)."""
        self.count = count
        self.rest = rest


def rest_bytes_in_steps(engine: Engine) -> Generator[None, None, bytes]:
    """:func:`rest_bytes` in steps (:func:`take_rest_in_steps`, then
    :func:`encode_rest_in_steps`), a ``yield`` apart, so that a caller runs other work in
    between; blocks may be applied meanwhile (the bytes are the state's when it started)."""
    taken = yield from take_rest_in_steps(engine)
    return (yield from encode_rest_in_steps(taken))


class RestTaking:
    """A state's rest being taken (:func:`begin_taking`): what was read of it at once, and
    the resting orders and levels still to read (copy on write, :class:`Taking`)."""

    __slots__ = ("height", "journal", "order_ids", "rest", "sides")

    def __init__(
        self,
        height: int,
        journal: Taking,
        order_ids: list[int],
        sides: list[tuple[str, _Side, list[int], _Side, list[int]]],
        rest: RestState,
    ) -> None:
        self.height = height
        self.journal = journal
        self.order_ids = order_ids
        """The resting orders' ids, in the state's order."""
        self.sides = sides
        """Per book: its name, then each side with its prices, in the state's order."""
        self.rest = rest
        """Everything else, read at once (its books and orders left out)."""

    def release(self) -> None:
        """Stop noting changes (the taking is done or abandoned)."""
        for _, bids, _, asks, _ in self.sides:
            for side in (bids, asks):
                if side.taking is self.journal:
                    side.taking = None


def begin_taking(engine: Engine) -> RestTaking:
    """Start taking the state's rest, between blocks: the order ids and the books' prices, and
    everything but the orders and levels (~2 ms with 33k orders resting), at once; from here
    on each side of each book notes an order or level of this state before a block changes it
    (:class:`Taking`), and :func:`finish_taking_in_steps` reads them while blocks go on. One
    state at a time; the caller finishes it or closes its steps (which releases it)."""
    _check_between_blocks(engine)
    journal = Taking(engine.next_order_id)
    sides: list[tuple[str, _Side, list[int], _Side, list[int]]] = []
    for book in engine.books.values():
        for side in (book.bids, book.asks):
            invariant(side.taking is None, "another state is being taken")
        bids, asks = book.bids, book.asks
        sides.append((book.name, bids, list(bids.levels), asks, list(asks.levels)))
    for _, bids, _, asks, _ in sides:
        bids.taking = asks.taking = journal
    rest = _capture_rest(engine, (), msgspec.Raw(b""))
    return RestTaking(engine.height, journal, list(engine.orders), sides, rest)


def take_rest_in_steps(engine: Engine) -> Generator[None, None, TakenRest]:
    """Take the state's rest (:class:`TakenRest`): :func:`begin_taking` at once, then
    :func:`finish_taking_in_steps`."""
    return (yield from finish_taking_in_steps(engine, begin_taking(engine)))


def finish_taking_in_steps(engine: Engine, taking: RestTaking) -> Generator[None, None, TakenRest]:
    """The rest of :func:`begin_taking`'s state: its resting orders :data:`ORDERS_PER_STEP`
    at a time, then each side of each book, each a ``yield`` apart, so that a caller runs
    other work in between (the live node serves its sockets: with tens of thousands of orders
    resting, a state root in one piece paused its event loop for 40-70 ms every
    ``root_every`` blocks). Blocks may be applied meanwhile: what they change was noted as it
    was. Closing the steps releases the taking."""
    journal = taking.journal
    try:
        encoded: list[bytes | memoryview] = []
        ids = taking.order_ids
        for start in range(0, len(ids), ORDERS_PER_STEP):
            yield
            rows = journal.rows(
                ids[start : start + ORDERS_PER_STEP], engine.orders, engine.accounts
            )
            chunk = _ENCODER.encode(rows)
            encoded.append(memoryview(chunk)[len(msgpack_array_header(len(rows))) :])
        books = []
        for name, bids, bid_prices, asks, ask_prices in taking.sides:
            yield
            bid_levels = _taken_side(journal, bids, bid_prices)
            yield
            asks_levels = _taken_side(journal, asks, ask_prices)
            books.append(BookSnapshot(name=name, bids=bid_levels, asks=asks_levels))
        rest = msgspec.structs.replace(taking.rest, books=tuple(books))
        return TakenRest(taking.height, encoded, len(ids), rest)
    finally:
        taking.release()


def _taken_side(journal: Taking, side: _Side, prices: list[int]) -> SideSnapshot:
    return SideSnapshot(
        levels=tuple(
            LevelSnapshot(price=price, order_ids=journal.level(side, price)) for price in prices
        )
    )


def encode_rest_in_steps(taken: TakenRest) -> Generator[None, None, bytes]:
    """:func:`rest_bytes` of the state ``taken`` was taken from: it reads nothing of the
    engine, so blocks may be applied meanwhile. The orders' encoding goes into the state's as
    it is (``msgspec.Raw``)."""
    yield  # (each of the two copies megabytes: ~2-3 ms apiece on a busy node)
    orders = msgspec.Raw(b"".join([msgpack_array_header(taken.count), *taken.encoded]))
    yield
    return _ENCODER.encode(msgspec.structs.replace(taken.rest, orders=orders))


def rest_hash_in_steps(engine: Engine) -> Generator[None, None, bytes]:
    """The Keccak-256 of :func:`rest_bytes` (what ``Engine.state_root`` takes as
    ``rest_hash``), in steps: :func:`rest_bytes_in_steps`, then :func:`keccak_in_steps`."""
    rest = yield from rest_bytes_in_steps(engine)
    return (yield from keccak_in_steps(rest))


def keccak_in_steps(data: bytes) -> Generator[None, None, bytes]:
    """The Keccak-256 of ``data``, :data:`HASHED_BYTES_PER_STEP` at a time (a state's rest is
    a few megabytes with tens of thousands of orders resting: ~9 ms in one piece)."""
    hasher = keccak_hasher()
    view = memoryview(data)
    for start in range(0, len(data), HASHED_BYTES_PER_STEP):
        yield
        hasher.update(view[start : start + HASHED_BYTES_PER_STEP])
    digest: bytes = hasher.digest()
    return digest


def msgpack_array_header(length: int) -> bytes:
    """The MessagePack header of an array of ``length`` items (fixarray, array 16, array 32):
    what precedes the items' own encodings."""
    if length < 16:
        return bytes((0x90 | length,))
    if length < 1 << 16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


# --- capture ------------------------------------------------------------------------------------


def capture(engine: Engine) -> Snapshot:
    """The engine's complete state, between blocks."""
    _check_between_blocks(engine)
    return _capture(engine, _capture_rest(engine))


def take_balances(engine: Engine) -> Snapshot:
    """The state's balances (the sub-ledgers' leaves, the venue's own), between blocks, as a
    :class:`Snapshot` whose rest is still to come (:func:`encode_snapshot_with_rest`)."""
    return _capture(engine, cast(RestState, msgspec.Raw(b"")))


def encode_snapshot_with_rest(balances: Snapshot, rest: bytes) -> bytes:
    """:func:`encode_snapshot` of a state, from its :func:`take_balances` and its
    :func:`rest_bytes` (taken and encoded in steps), the rest's bytes put in as they are."""
    return encode_snapshot(
        msgspec.structs.replace(balances, rest=cast(RestState, msgspec.Raw(rest)))
    )


def _capture(engine: Engine, rest: RestState) -> Snapshot:
    _check_between_blocks(engine)
    unknown = attribute_names(engine) - known_attributes("Engine")
    invariant(not unknown, f"Engine attributes {sorted(unknown)} are not handled by the snapshot")
    return Snapshot(
        ledgers=tuple(
            _ledger_leaf(ledger)
            for mine in engine.accounts.values()
            for ledger in mine.ledgers.values()
        ),
        system=SystemBalances(
            fee_pool=engine.fee_pool, insurance_fund=engine.insurance_fund, dust=engine.dust
        ),
        rest=rest,
    )


def _check_between_blocks(engine: Engine) -> None:
    invariant(
        not (engine._auctions or engine._touched or engine._events),
        "a snapshot is taken between blocks, not while one is applied",
    )


def _capture_rest(
    engine: Engine,
    books: tuple[BookSnapshot, ...] | None = None,
    orders: tuple[OrderSnapshot, ...] | msgspec.Raw | None = None,
) -> RestState:
    """``books`` and ``orders``: already captured (:func:`rest_bytes_in_steps`; ``orders``
    may be their encoding, as ``msgspec.Raw``)."""
    if books is None:
        books = tuple(_book(book) for book in engine.books.values())
    if orders is None:
        orders = msgspec.convert(
            order_rows(engine.orders.values(), engine.accounts), tuple[OrderSnapshot, ...]
        )
    return RestState(
        venue=engine.venue,
        margin_checks=engine.margin is not None,
        height=engine.height,
        timestamp_ns=engine.timestamp_ns,
        next_order_id=engine.next_order_id,
        next_deposit_id=engine.next_deposit_id,
        next_withdrawal_id=engine.next_withdrawal_id,
        next_forced_id=engine.next_forced_id,
        deposits_total=engine.deposits_total,
        withdrawals_total=engine.withdrawals_total,
        underlyings=tuple(_underlying(state) for state in engine.underlyings.values()),
        oracles=tuple(
            _oracle(state.oracle) for state in engine.underlyings.values() if state.oracle
        ),
        instruments=tuple(engine.instruments.values()),
        expired_instruments=tuple(engine.expired_instruments.values()),
        markets=tuple(_market(market) for market in engine.markets.values()),
        books=books,
        # (a Raw is written as it is: the same bytes as the orders it encodes)
        orders=cast(tuple[OrderSnapshot, ...], orders),
        accounts=tuple(_account(name, mine) for name, mine in engine.accounts.items()),
        liquidation_queue=tuple(
            (ledger.account, ledger.underlying) for ledger in engine.liquidation_queue
        ),
        awaiting_settlement=tuple(market.name for market in engine.awaiting_settlement),
        good_till=tuple(engine._good_till),
        market_expiries=tuple(engine._market_expiries),
        digest=engine.digest,
        next_leaf_index=engine.next_leaf_index,
        keeper_auctions=tuple(
            KeeperAuctionSnapshot(**{name: getattr(auction, name) for name in _KEEPER_FIELDS})
            for auction in engine.keeper_auctions.values()
        ),
        next_auction_id=engine.next_auction_id,
        pending_changes=tuple(engine.pending_changes.values()),
        next_change_id=engine.next_change_id,
        underlying_params=tuple(
            (state.name, state.params)
            for state in engine.underlyings.values()
            if state.params is not None and state.params != engine.venue.underlyings.get(state.name)
        ),
    )


_KEEPER_FIELDS: Final = KeeperAuctionSnapshot.__struct_fields__


def _underlying(state: UnderlyingState) -> UnderlyingSnapshot:
    return UnderlyingSnapshot(
        name=state.name,
        restricted=state.restricted,
        stressed=state.stressed,
        marked_ns=state.marked_ns,
        epoch_ns=state.epoch_ns,
        epoch_index=state.epoch_index,
        epoch_confidence=state.epoch_confidence,
        margin_multiplier_ppm=state.margin_multiplier_ppm,
        dynamic=None
        if state.dynamic is None
        else DynamicSnapshot(
            **{name: getattr(state.dynamic, name) for name in DynamicSnapshot.__struct_fields__}
        ),
        vol_nodes=_vol_nodes(state.vol_nodes),
        markets=tuple(state.markets),
        ledgers=tuple(state.ledgers),
        holders=tuple(state.holders),
    )


def _vol_nodes(nodes: dict[int, tuple[int, ...]]) -> tuple[VolSlice, ...]:
    return tuple(VolSlice(expiry_ns=expiry, vols_ppm=vols) for expiry, vols in nodes.items())


def _oracle(oracle: OracleState) -> OracleSnapshot:
    history = oracle.history
    invariant(
        list(oracle._latest) == [report.account for report in oracle._latest.values()],
        f"{oracle.underlying}: a kept report is filed under another reporter",
    )
    return OracleSnapshot(
        underlying=oracle.underlying,
        latest=tuple(oracle._latest.values()),
        vol_nodes=_vol_nodes(oracle._vol_nodes),
        has_index=oracle.index is not None,
        index=oracle.index or 0,
        confidence=oracle.confidence,
        breaker_open=oracle.breaker_open,
        breaker_reason=oracle.breaker_reason,
        breaker_opened_ns=oracle.breaker_opened_ns,
        history=HistorySnapshot(
            times=tuple(history._times),
            values=tuple(history._values),
            trimmed=history.complete_from_ns is not None,
            complete_from_ns=history.complete_from_ns or 0,
        ),
    )


def _market(market: Market) -> MarketSnapshot:
    for account, exposure in market.holders.items():
        invariant(
            exposure.market is market and exposure.ledger.account == account,
            f"{market.name}: holder {account} is misfiled",
        )
    return MarketSnapshot(
        name=market.name,
        underlying=market.underlying,
        is_option=market.is_option,
        is_call=market.is_call,
        expiry_ns=market.expiry_ns,
        strike_minor=market.strike_minor,
        strike_per_lot=market.strike_per_lot,
        tick_minor=market.tick_minor,
        value_per_tick_lot=market.value_per_tick_lot,
        lot_numerator=market.lot_numerator,
        lot_denominator=market.lot_denominator,
        maker_fee_ppm=market.maker_fee_ppm,
        taker_fee_ppm=market.taker_fee_ppm,
        initial_ppm=market.initial_ppm,
        maintenance_ppm=market.maintenance_ppm,
        initial_floor_ppm=market.initial_floor_ppm,
        put_mark_floor_ppm=market.put_mark_floor_ppm,
        liquidity_lots=market.liquidity_lots,
        open_interest_cap_lots=market.open_interest_cap_lots,
        position_cap_lots=market.position_cap_lots,
        mark_minor=market.mark_minor,
        mark_per_lot=market.mark_per_lot,
        index_per_lot=market.index_per_lot,
        basis_ema_minor=market.basis_ema_minor,
        basis_updated_ns=market.basis_updated_ns,
        premium_weighted=market.premium_weighted,
        premium_ns=market.premium_ns,
        last_funding_ns=market.last_funding_ns,
        next_funding_ns=market.next_funding_ns,
        holders=tuple(market.holders),
        last_trade_ticks=market.last_trade_ticks,
        last_trade_ns=market.last_trade_ns,
        trading=None
        if market.auction is None
        else TradingModeSnapshot(
            mode=market.auction.mode.value,
            reason=market.auction.reason.value,
            ends_ns=market.auction.ends_ns,
            extended=market.auction.extended,
        ),
        price_history=() if market.history is None else market.history.samples(),
        halted=market.halted,
        halt_reason=market.halt_reason,
    )


def _book(book: Book) -> BookSnapshot:
    return BookSnapshot(name=book.name, bids=_side(book.bids), asks=_side(book.asks))


def _side(side: _Side) -> SideSnapshot:
    return SideSnapshot(
        levels=tuple(
            LevelSnapshot(price=price, order_ids=tuple(level))
            for price, level in side.levels.items()
        ),
    )


def _account(name: str, mine: Account) -> AccountSnapshot:
    return AccountSnapshot(
        account=name,
        ledgers=tuple(_ledger_rest(ledger) for ledger in mine.ledgers.values()),
        exposures=tuple(mine.exposures),
        orders=tuple(mine.orders),
        client_ids=tuple(mine.client_ids.items()),
    )


def _ledger_rest(ledger: SubLedger) -> LedgerRest:
    return LedgerRest(
        underlying=ledger.underlying,
        in_liquidation=ledger.in_liquidation,
        portfolio=ledger.portfolio,
        margin_call=ledger.margin_call,
        realized=ledger.realized,
        fees=ledger.fees,
        funding=ledger.funding,
        settlements=ledger.settlements,
        insured=ledger.insured,
        deposited=ledger.deposited,
        withdrawn=ledger.withdrawn,
        transferred=ledger.transferred,
        exposures=tuple(
            ExposureRest(
                instrument=name,
                realized=exposure.realized,
                buy_lots=exposure.buy_lots,
                buy_value=exposure.buy_value,
                buy_loss=exposure.buy_loss,
                sell_lots=exposure.sell_lots,
                sell_value=exposure.sell_value,
                sell_loss=exposure.sell_loss,
            )
            for name, exposure in ledger.exposures.items()
        ),
        leaf_index=ledger.leaf_index,
    )


def _ledger_leaf(ledger: SubLedger) -> LedgerLeaf:
    return LedgerLeaf(
        account=ledger.account,
        underlying=ledger.underlying,
        cash=ledger.cash,
        exposures=tuple(
            ExposureLeaf(instrument=name, position=exposure.position, basis=exposure.basis)
            for name, exposure in ledger.exposures.items()
        ),
    )


# --- restore ------------------------------------------------------------------------------------


def _require(condition: bool, message: str) -> None:
    """A snapshot that decodes but does not describe a consistent state is malformed input."""
    if not condition:
        raise Rejection(RejectCode.MALFORMED_SNAPSHOT, message)


def restore(
    snapshot: Snapshot,
    *,
    limits: Limits = DEFAULT_LIMITS,
    policy: OrderingPolicy = OrderingPolicy.LANES,
    venue: VenueConfig,
    margin: MarginPolicy | None = STANDARD_MARGIN,
    verifier: ReportVerifier | None = None,
) -> Engine:
    """A fresh engine with the given configuration and the snapshot's state.

    Refused (``SNAPSHOT_CONFIG_MISMATCH``) unless ``venue`` is the captured venue config (same
    encoding: the order of its underlyings is state order too) and margin checks are on or off
    as they were; ``MALFORMED_SNAPSHOT`` if the snapshot is inconsistent.
    """
    rest = snapshot.rest
    if _ENCODER.encode(venue) != _ENCODER.encode(rest.venue):
        raise Rejection(
            RejectCode.SNAPSHOT_CONFIG_MISMATCH,
            "the snapshot was taken under another venue config; restore it under its own",
        )
    if (margin is not None) != rest.margin_checks:
        raise Rejection(
            RejectCode.SNAPSHOT_CONFIG_MISMATCH,
            f"the snapshot was taken with margin checks {'on' if rest.margin_checks else 'off'}",
        )
    engine = Engine(limits, policy, venue=venue, margin=margin, verifier=verifier)
    try:
        _restore_into(engine, snapshot)
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise Rejection(
            RejectCode.MALFORMED_SNAPSHOT, f"inconsistent snapshot: {error!r}"
        ) from None
    if margin is not None:
        for mine in engine.accounts.values():
            for ledger in mine.ledgers.values():
                engine._refresh(ledger)
    return engine


def _restore_into(engine: Engine, snapshot: Snapshot) -> None:
    rest = snapshot.rest
    engine.height = rest.height
    engine.timestamp_ns = rest.timestamp_ns
    engine.next_order_id = rest.next_order_id
    engine.next_deposit_id = rest.next_deposit_id
    engine.next_withdrawal_id = rest.next_withdrawal_id
    engine.next_forced_id = rest.next_forced_id
    engine.deposits_total = rest.deposits_total
    engine.withdrawals_total = rest.withdrawals_total
    engine.fee_pool = snapshot.system.fee_pool
    engine.insurance_fund = snapshot.system.insurance_fund
    engine.dust = snapshot.system.dust
    _restore_underlyings(engine, rest)
    engine.instruments = {i.name: i for i in rest.instruments}
    engine.expired_instruments = {i.name: i for i in rest.expired_instruments}
    _require(len(engine.instruments) == len(rest.instruments), "an instrument is listed twice")
    engine.markets = {m.name: _restore_market(engine, m) for m in rest.markets}
    _restore_accounts(engine, snapshot)
    _restore_orders(engine, rest)
    _restore_indexes(engine, rest)
    engine.digest = rest.digest
    engine.next_leaf_index = rest.next_leaf_index
    engine.keeper_auctions = {
        a.auction_id: KeeperAuction(**msgspec.structs.asdict(a)) for a in rest.keeper_auctions
    }
    _require(len(engine.keeper_auctions) == len(rest.keeper_auctions), "an auction id twice")
    engine._auction_of = {(a.account, a.instrument): i for i, a in engine.keeper_auctions.items()}
    engine.next_auction_id = rest.next_auction_id
    engine.pending_changes = {change.change_id: change for change in rest.pending_changes}
    engine.next_change_id = rest.next_change_id
    _require(
        len(engine.pending_changes) == len(rest.pending_changes)
        and all(
            0 < change.change_id < rest.next_change_id
            and engine.underlyings[change.underlying].params is not None
            for change in rest.pending_changes
        ),
        "the scheduled parameter changes are inconsistent",
    )


def _restore_underlyings(engine: Engine, rest: RestState) -> None:
    configured = engine.underlyings
    names = [u.name for u in rest.underlyings]
    _require(
        [n for n in names if n in configured] == list(configured),
        "the snapshot's underlyings are not the venue's",
    )
    oracles = {o.underlying: o for o in rest.oracles}
    _require(list(oracles) == list(configured), "one oracle per configured underlying")
    in_force = dict(rest.underlying_params)
    _require(
        len(in_force) == len(rest.underlying_params)
        and list(in_force) == [name for name in configured if name in in_force],
        "parameters in force for an underlying the venue does not configure",
    )
    underlyings: dict[str, UnderlyingState] = {}
    for captured in rest.underlyings:
        state = configured.get(captured.name)
        if state is None:
            state = UnderlyingState(name=captured.name, params=None, oracle=None)
        params = in_force.get(captured.name)
        if params is not None:
            Engine._configure_underlying(state, params)  # before the oracle's kept reports
        state.restricted = captured.restricted
        state.stressed = captured.stressed
        state.marked_ns = captured.marked_ns
        state.epoch_ns = captured.epoch_ns
        state.epoch_index = captured.epoch_index
        state.epoch_confidence = captured.epoch_confidence
        state.margin_multiplier_ppm = captured.margin_multiplier_ppm
        state.dynamic = (
            None
            if captured.dynamic is None
            else DynamicState(**msgspec.structs.asdict(captured.dynamic))
        )
        state.vol_nodes = {s.expiry_ns: s.vols_ppm for s in captured.vol_nodes}
        if state.oracle is not None:
            _restore_oracle(state.oracle, oracles[captured.name])
        underlyings[captured.name] = state
    _require(len(underlyings) == len(names), "an underlying is listed twice")
    engine.underlyings = underlyings
    engine._update_liquidating()


def _restore_oracle(oracle: OracleState, captured: OracleSnapshot) -> None:
    oracle._latest = {report.account: report for report in captured.latest}
    oracle._vol_nodes = {s.expiry_ns: s.vols_ppm for s in captured.vol_nodes}
    oracle.index = captured.index if captured.has_index else None
    oracle.confidence = captured.confidence
    oracle.breaker_open = captured.breaker_open
    oracle.breaker_reason = captured.breaker_reason
    oracle.breaker_opened_ns = captured.breaker_opened_ns
    history = oracle.history
    _require(len(captured.history.times) == len(captured.history.values), "index history is ragged")
    history._times = list(captured.history.times)
    history._values = list(captured.history.values)
    history.complete_from_ns = (
        captured.history.complete_from_ns if captured.history.trimmed else None
    )


def _restore_market(engine: Engine, m: MarketSnapshot) -> Market:
    state = engine.underlyings[m.underlying]
    market = _market_from(m, state)
    rules = state.params.auctions if state.params is not None else None
    _require((m.trading is None) == (rules is None), f"{m.name}: trading mode and params differ")
    if m.trading is not None and rules is not None:
        mode = market.auction = AuctionState()
        mode.mode = TradingMode(m.trading.mode)
        mode.reason = AuctionReason(m.trading.reason)
        mode.ends_ns = m.trading.ends_ns
        mode.extended = m.trading.extended
        market.in_auction = mode.mode is TradingMode.AUCTION
        history = market.history = PriceHistory(rules.price_history_samples)
        for time_ns, price_ticks in m.price_history:
            history.record(time_ns, price_ticks)
        engine._monitored.append(market)
    return market


def _market_from(m: MarketSnapshot, state: UnderlyingState) -> Market:
    return Market(
        name=m.name,
        underlying=m.underlying,
        state=state,
        is_option=m.is_option,
        is_call=m.is_call,
        expiry_ns=m.expiry_ns,
        strike_minor=m.strike_minor,
        strike_per_lot=m.strike_per_lot,
        tick_minor=m.tick_minor,
        value_per_tick_lot=m.value_per_tick_lot,
        lot_numerator=m.lot_numerator,
        lot_denominator=m.lot_denominator,
        maker_fee_ppm=m.maker_fee_ppm,
        taker_fee_ppm=m.taker_fee_ppm,
        initial_ppm=m.initial_ppm,
        maintenance_ppm=m.maintenance_ppm,
        initial_floor_ppm=m.initial_floor_ppm,
        put_mark_floor_ppm=m.put_mark_floor_ppm,
        liquidity_lots=m.liquidity_lots,
        open_interest_cap_lots=m.open_interest_cap_lots,
        position_cap_lots=m.position_cap_lots,
        mark_minor=m.mark_minor,
        mark_per_lot=m.mark_per_lot,
        index_per_lot=m.index_per_lot,
        basis_ema_minor=m.basis_ema_minor,
        basis_updated_ns=m.basis_updated_ns,
        premium_weighted=m.premium_weighted,
        premium_ns=m.premium_ns,
        last_funding_ns=m.last_funding_ns,
        next_funding_ns=m.next_funding_ns,
        last_trade_ticks=m.last_trade_ticks,
        last_trade_ns=m.last_trade_ns,
        halted=m.halted,
        halt_reason=m.halt_reason,
    )


def _restore_accounts(engine: Engine, snapshot: Snapshot) -> None:
    """Accounts, their sub-ledgers and exposures: balances from the leaves, the rest from the
    account records, paired in order."""
    leaves = iter(snapshot.ledgers)
    accounts: dict[str, Account] = {}
    for captured in snapshot.rest.accounts:
        mine = accounts[captured.account] = Account({}, {}, {}, {})
        exposures: dict[str, Exposure] = {}
        for ledger_rest in captured.ledgers:
            leaf = next(leaves, None)
            if leaf is None or not _pairs(leaf, captured.account, ledger_rest):
                raise Rejection(
                    RejectCode.MALFORMED_SNAPSHOT,
                    f"the balances of {captured.account} {ledger_rest.underlying} are missing",
                )
            ledger = _restore_ledger(engine, captured.account, ledger_rest, leaf)
            mine.ledgers[ledger.underlying] = ledger
            exposures.update(ledger.exposures)
        _require(
            sorted(captured.exposures) == sorted(exposures),
            f"{captured.account}: exposures disagree with its sub-ledgers",
        )
        mine.exposures = {name: exposures[name] for name in captured.exposures}
    _require(next(leaves, None) is None, "balances of a sub-ledger no account holds")
    engine.accounts = accounts


def _pairs(leaf: LedgerLeaf, account: str, captured: LedgerRest) -> bool:
    """Whether ``leaf`` holds the balances of the sub-ledger ``captured`` describes."""
    return (leaf.account, leaf.underlying) == (account, captured.underlying) and [
        e.instrument for e in leaf.exposures
    ] == [e.instrument for e in captured.exposures]


def _restore_ledger(
    engine: Engine, account: str, captured: LedgerRest, leaf: LedgerLeaf
) -> SubLedger:
    ledger = SubLedger(
        account=account,
        underlying=captured.underlying,
        state=engine.underlyings[captured.underlying],
        cash=leaf.cash,
        in_liquidation=captured.in_liquidation,
        portfolio=captured.portfolio,
        margin_call=captured.margin_call,
        realized=captured.realized,
        fees=captured.fees,
        funding=captured.funding,
        settlements=captured.settlements,
        insured=captured.insured,
        deposited=captured.deposited,
        withdrawn=captured.withdrawn,
        transferred=captured.transferred,
    )
    for balances, other in zip(leaf.exposures, captured.exposures, strict=True):
        ledger.exposures[other.instrument] = Exposure(
            ledger=ledger,
            market=engine.markets[other.instrument],
            position=balances.position,
            basis=balances.basis,
            realized=other.realized,
            buy_lots=other.buy_lots,
            buy_value=other.buy_value,
            buy_loss=other.buy_loss,
            sell_lots=other.sell_lots,
            sell_value=other.sell_value,
            sell_loss=other.sell_loss,
        )
    ledger.positions = sum(e.position != 0 for e in ledger.exposures.values())
    ledger.basis = sum(e.basis for e in ledger.exposures.values())
    ledger.leaf_index = captured.leaf_index
    return ledger


def _restore_orders(engine: Engine, rest: RestState) -> None:
    """Orders, then the indexes that share them: books, ``Engine.orders``, accounts."""
    accounts = engine.accounts
    orders = {
        o.order_id: Order(
            o.order_id,
            o.account,
            o.instrument,
            o.side,
            o.price,
            o.size,
            o.remaining,
            o.client_order_id,
            o.post_only,
            o.self_trade,
            o.reduce_only,
            o.expire_at_ns,
            accounts[o.account].exposures[o.instrument],
            o.loss_per_lot,
        )
        for o in rest.orders
    }
    _require(len(orders) == len(rest.orders), "an order id is used twice")
    engine.orders = orders
    for captured in rest.accounts:
        mine = accounts[captured.account]
        mine.orders = {order_id: orders[order_id] for order_id in captured.orders}
        mine.client_ids = dict(captured.client_ids)
    books: dict[str, Book] = {}
    for book_snapshot in rest.books:
        book = Book(engine.instruments[book_snapshot.name], engine.markets[book_snapshot.name])
        _restore_side(book.bids, book_snapshot.bids, orders)
        _restore_side(book.asks, book_snapshot.asks, orders)
        books[book.name] = book
    _require(list(books) == list(engine.instruments), "books and instruments disagree")
    engine.books = books


def _restore_side(side: _Side, captured: SideSnapshot, orders: dict[int, Order]) -> None:
    side.levels = {
        level.price: OrderedDict((order_id, orders[order_id]) for order_id in level.order_ids)
        for level in captured.levels
    }
    side.heap = sorted(price * side.sign for price in side.levels)  # sorted: a heap
    side.in_heap = set(side.levels)
    _require(len(side.levels) == len(captured.levels), "a price level is listed twice")


def _restore_indexes(engine: Engine, rest: RestState) -> None:
    """The per-underlying and per-market orders of accounts, the queue and the timed heaps."""
    accounts, markets = engine.accounts, engine.markets
    for captured in rest.underlyings:
        state = engine.underlyings[captured.name]
        state.markets = {name: markets[name] for name in captured.markets}
        state.options = sum(market.is_option for market in state.markets.values())
        state.ledgers = {a: accounts[a].ledgers[state.name] for a in captured.ledgers}
        state.holders = {a: accounts[a].ledgers[state.name] for a in captured.holders}
    for m in rest.markets:
        markets[m.name].holders = {a: accounts[a].exposures[m.name] for a in m.holders}
    engine.liquidation_queue = [
        accounts[account].ledgers[underlying] for account, underlying in rest.liquidation_queue
    ]
    engine.awaiting_settlement = [markets[name] for name in rest.awaiting_settlement]
    engine._good_till = list(rest.good_till)
    engine._market_expiries = list(rest.market_expiries)
    _require(
        _is_heap(engine._good_till) and _is_heap(engine._market_expiries),
        "a timed heap is no heap",
    )


def _is_heap(items: list[tuple[int, int]] | list[tuple[int, str]]) -> bool:
    """Whether ``items`` keeps the heap property of :mod:`heapq` (a parent is never larger)."""
    return all(items[(i - 1) // 2] <= items[i] for i in range(1, len(items)))


__all__ = [
    "CAPTURED",
    "CONFIGURATION",
    "DERIVED",
    "Snapshot",
    "attribute_names",
    "capture",
    "decode_snapshot",
    "encode_snapshot",
    "known_attributes",
    "rest_bytes",
    "restore",
]
