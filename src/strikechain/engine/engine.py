"""The venue as a pure state machine: ``Engine.apply(block) -> BlockResult``.

The engine reads no clock, no environment and no randomness: the driver stamps each block with
its height and time, and the same state plus the same block gives the same events on any
machine (dicts iterate in insertion order, ties break on order ids, which the engine assigns in
sequence). A transaction is validated in full where it enters; a refused one yields a
:class:`~strikechain.engine.events.Rejected` event and changes nothing else. A block that breaks
a block-level rule (height, time, size) is refused whole and changes nothing.

Per block:

1. block checks: the next height, time never backwards, the limits table; then the scheduled
   parameter changes whose time has come (:mod:`strikechain.engine.governance`);
2. the STATE lane (listings, delistings, oracle reports, deposits, withdrawals, transfers, the
   operator's halts and parameter changes) under the default ordering policy;
3. the engine's own work from block time: good-till-time orders expire; each underlying's oracle
   aggregates its fresh reports (index, confidence, circuit breaker) and the marks follow; option
   markets expire and settle against the average index of their last 30 minutes; perpetuals pay
   funding at each interval; then trading modes (:mod:`strikechain.engine.auction_triggers`,
   where an underlying turns auctions on): a long gap since the last block puts its markets
   into a call auction, an auction whose time is up uncrosses (or is extended once), and each
   continuous market gets this block's price-monitoring band;
4. cancels and keepers' bids, then the liquidation slot (:mod:`strikechain.engine.liquidator`:
   the lane, the backstop pool, the insurance fund, auto-deleveraging, or the keeper-auction
   baseline), then stress mode per underlying (a backlog or an open breaker: takers capped and
   reduce-only), then the remaining transactions in the policy's order
   (:mod:`strikechain.engine.ordering`); a continuous fill that would leave the band calls an
   auction instead;
5. one uniform-price auction per batch-auction market that received orders this block; each
   monitored market's last price joins its history;
6. health: every sub-ledger touched this block, or holding positions on an underlying whose
   marks moved, is checked against maintenance margin; those below it enter the liquidation
   queue (their open orders on that underlying are cancelled, and until they leave they may
   only reduce risk), those back above it leave.

Money (:mod:`strikechain.engine.accounts`, :mod:`strikechain.engine.clearing`): every fill moves
cash, positions and cost basis, and fees to the fee pool; with a :class:`MarginPolicy` (the
default, :class:`StandardMargin`), every order, amend, withdrawal and transfer that would add
risk is checked against the sub-ledger's free collateral first. ``margin=None`` turns the checks
off (and with them the oracle's trading rules): the part-1 matching benchmark and the matching
tests run that way; the money is still booked.

Every block ends with 7. the digest of its events chained onto the previous block's
(``BlockResult.digest``, :func:`~strikechain.engine.codec.chain_digest`); the sub-ledgers it moved
get their leaf index (if new) and are marked for rehashing. :meth:`Engine.state_root` commits to
the whole state on demand (the driver asks every N blocks). A block carries the protocol version
it was produced under; the engine applies the rules of that version (only version 1 exists).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Final

from strikechain.engine import auction, clearing
from strikechain.engine.accounts import (
    Account,
    Exposure,
    Market,
    SubLedger,
    UnderlyingState,
    apply_params,
    market_for,
    set_margin_rates,
    with_position,
)
from strikechain.engine.auction_triggers import (
    AuctionState,
    PriceHistory,
    Transition,
    TransitionKind,
    apply_transition,
    auction_due,
    on_auction_end,
    on_block,
    on_trade_attempt,
)
from strikechain.engine.book import BUY, Book, Order
from strikechain.engine.codec import GENESIS_DIGEST, SUPPORTED_VERSIONS, chain_digest
from strikechain.engine.codes import CancelReason, RejectCode, Rejection
from strikechain.engine.commitment import LedgerTree, ledger_leaf, system_leaf
from strikechain.engine.commitment import state_root as commitment_root
from strikechain.engine.dynamic import new_state as new_dynamic_state
from strikechain.engine.dynamic import observe_block, realized_vol_ppm
from strikechain.engine.events import (
    BlockResult,
    CircuitBreakerClosed,
    CircuitBreakerOpened,
    Deposited,
    Event,
    Fill,
    ForcedWithdrawalServed,
    FundingPaid,
    FundingPayment,
    IndexUpdated,
    InstrumentDelisted,
    InstrumentExpired,
    InstrumentListed,
    InstrumentSettled,
    LiquidationBidPlaced,
    LiquidationQueued,
    LiquidationQueueLeft,
    MarginCall,
    MarginModeSet,
    MarginMultiplier,
    MarketAuction,
    MarketStatusChanged,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRepriced,
    ParameterChangeApplied,
    ParameterChangeCancelled,
    ParameterChangeScheduled,
    PositionSettled,
    Rejected,
    StressMode,
    Transferred,
    WithdrawalRequested,
)
from strikechain.engine.governance import ParameterChange, change_problem, due_changes
from strikechain.engine.instruments import Instrument, MatchingMode, validate_instrument
from strikechain.engine.invariant import invariant
from strikechain.engine.limits import DEFAULT_LIMITS, Limits
from strikechain.engine.liquidation import better_bid
from strikechain.engine.liquidator import KeeperAuction, Liquidator
from strikechain.engine.margin import STANDARD_MARGIN, MarginPolicy, StandardMargin
from strikechain.engine.marks import update_option_marks, update_perp_mark
from strikechain.engine.oracle import (
    OracleRejection,
    OracleReport,
    OracleState,
    ReportVerifier,
    option_vols,
)
from strikechain.engine.ordering import OrderingPolicy, sequence
from strikechain.engine.params import PPB, UnderlyingParams, VenueConfig
from strikechain.engine.portfolio import (
    ScenarioTable,
    build_scenario_table,
    portfolio_requirement,
    widened_portfolio,
)
from strikechain.engine.position_limits import check_caps
from strikechain.engine.queries import WhatIfMargin
from strikechain.engine.signing import keccak256
from strikechain.engine.txs import (
    Amend,
    Block,
    Cancel,
    CancelAll,
    CancelParameterChange,
    DelistInstrument,
    Deposit,
    ForcedWithdrawal,
    LiquidationBid,
    ListInstrument,
    MarginMode,
    PlaceOrder,
    ScheduleParameterChange,
    SetMarginMode,
    SetMarketStatus,
    Transaction,
    Transfer,
    Withdraw,
)

# Plain ints on the hot path: an enum attribute lookup costs more than the comparison.
# Final: mypyc compiles each use to the number, not a lookup in the module's globals.
_MARKET: Final = 2
_GTC: Final = 1
_IOC: Final = 2
_FOK: Final = 3
_GTT: Final = 4
_POST_REPRICE: Final = 1
_POST_REJECT: Final = 2
_CANCEL_TAKER: Final = 1
_CANCEL_MAKER: Final = 2
_CANCEL_BOTH: Final = 3
_PPM: Final = 1_000_000
_LIQUIDATION_SLOT = frozenset({Cancel, CancelAll, LiquidationBid})
"""What the lanes apply before the engine's liquidation work: cancels, then keepers' bids."""
_BAND_OPEN: Final = 1 << 62
MAX_SAFE_PATH_PPM: Final = 100_000
"""A sub-ledger is proven safe for at most 10% of path (see ``Engine._prove_safe``)."""
_BATCH = MatchingMode.BATCH


class _Refused(Exception):
    """Internal: a transaction is refused; the dispatcher turns it into a Rejected event."""

    def __init__(self, code: RejectCode, message: str) -> None:
        self.code = code
        self.message = message


def _require_next(
    given: int, expected: int, names: tuple[str, str], codes: tuple[RejectCode, RejectCode]
) -> None:
    """A settlement-layer index (a deposit, a forced withdrawal) must be the next one: a
    repeated one is harmless and refused, a skipped one refused (nothing may be skipped)."""
    what, done = names
    if given < expected:
        raise _Refused(codes[0], f"{what} {given} was already {done}; nothing changed")
    if given > expected:
        raise _Refused(codes[1], f"{what} {given} arrived before {what} {expected}")


class Engine:
    """The venue's state and the only way to change it."""

    def __init__(
        self,
        limits: Limits = DEFAULT_LIMITS,
        policy: OrderingPolicy = OrderingPolicy.LANES,
        *,
        venue: VenueConfig | None = None,
        margin: MarginPolicy | None = STANDARD_MARGIN,
        verifier: ReportVerifier | None = None,
    ) -> None:
        self.limits = limits
        self.policy = policy
        self.venue = venue if venue is not None else VenueConfig()
        self.margin = margin
        self.verifier = verifier if verifier is not None else ReportVerifier(self.venue.signing)
        """Checks reports' signatures; a node shares it with its ingress, which verifies each
        report as it arrives, so the engine's own check is a lookup."""
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
        self.markets: dict[str, Market] = {}
        self.expired_instruments: dict[str, Instrument] = {}
        self.orders: dict[int, Order] = {}
        self.accounts: dict[str, Account] = {}
        self.underlyings: dict[str, UnderlyingState] = {
            name: UnderlyingState(
                name=name,
                restricted=True,
                params=params,
                oracle=OracleState(name, params.oracle, self.venue.signing, self.verifier),
                mark_interval_ns=params.mark.interval_ns,
            )
            for name, params in self.venue.underlyings.items()
        }
        self.next_order_id = 1
        self.next_deposit_id = 1
        self.next_withdrawal_id = 1
        self.next_forced_id = 1
        """The next forced-withdrawal request (the settlement contract's index) to serve."""
        self.deposits_total = 0
        self.withdrawals_total = 0
        self.fee_pool = 0
        self.insurance_fund = 0
        self.dust = 0
        self.liquidation_queue: list[SubLedger] = []
        """Sub-ledgers below maintenance margin, most under water first."""
        self.keeper_auctions: dict[int, KeeperAuction] = {}
        """Open liquidation auctions of the keeper-auction baseline, by id (oldest first)."""
        self.next_auction_id = 1
        self._auction_of: dict[tuple[str, str], int] = {}  # (account, instrument) -> auction
        self._liquidator = Liquidator(self)
        self._liquidation_order = 0  # the lane's order in flight: pays no taker fee
        self._stress_cap = 0  # stress mode: takers admitted per underlying in this block
        self._monitored: list[Market] = []  # markets with a trading mode (auctions on)
        self.awaiting_settlement: list[Market] = []
        """Expired options with positions whose settlement price is not known yet."""
        self._good_till: list[tuple[int, int]] = []  # heap of (expire_at_ns, order_id)
        self._market_expiries: list[tuple[int, str]] = []  # heap of (expiry_ns, name)
        self._auctions: dict[str, list[int]] = {}  # batch markets touched -> their IOC orders
        self._touched: list[SubLedger] = []  # sub-ledgers whose money or positions moved
        self.health_checked = 0
        self.health_skipped = 0
        """End-of-block health checks done, and holders skipped as proven safe (statistics)."""
        self.digest = GENESIS_DIGEST
        """The chained digest of the last block's events (``BlockResult.digest``)."""
        self.next_leaf_index = 1
        self._stale_leaves: list[SubLedger] = []  # moved since the last state root
        self._ledger_tree: LedgerTree | None = None  # built on the first state root
        self._rest_hash = bytes(32)  # of the last state root
        self.pending_changes: dict[int, ParameterChange] = {}
        """Scheduled parameter changes not yet in force, by id (in the order scheduled)."""
        self.next_change_id = 1
        self._events: list[Event] = []
        self._handlers: dict[type, Callable[..., None]] = {
            PlaceOrder: self._place,
            Amend: self._amend,
            Cancel: self._cancel,
            CancelAll: self._cancel_all,
            ListInstrument: self._list,
            DelistInstrument: self._delist,
            Deposit: self._deposit,
            Withdraw: self._withdraw,
            ForcedWithdrawal: self._forced_withdrawal,
            Transfer: self._transfer,
            SetMarginMode: self._set_margin_mode,
            LiquidationBid: self._bid,
            OracleReport: self._report,
            SetMarketStatus: self._set_market_status,
            ScheduleParameterChange: self._schedule_change,
            CancelParameterChange: self._cancel_change,
        }
        self._known_types = frozenset(self._handlers)
        self._liquidating = False
        self._update_liquidating()

    def _update_liquidating(self) -> None:
        """Whether any underlying's parameters in force liquidate (at construction, after a
        parameter change and after a restore)."""
        self._liquidating = any(
            state.params is not None and state.params.liquidation is not None
            for state in self.underlyings.values()
        )

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
                digest=self.digest,
            )
        gap_ns = block.timestamp_ns - self.timestamp_ns if self.height else 0
        self.height = block.height
        self.timestamp_ns = block.timestamp_ns
        events: list[Event] = []
        self._events = events
        transactions = block.transactions
        if self.pending_changes:
            self._apply_due_changes()
        before, after = sequence(transactions, self.policy)
        self._apply_in_order(transactions, before)
        self._engine_work()
        if self._monitored:
            self._trading_modes(gap_ns)
        if self._liquidating and self.margin is not None:
            if self.liquidation_queue or self.keeper_auctions:
                # the liquidation slot: after cancels (and keepers' bids), before new orders
                first = 0
                if self.policy == OrderingPolicy.LANES:
                    slot = _LIQUIDATION_SLOT
                    while first < len(after) and type(transactions[after[first]]) in slot:
                        first += 1
                self._apply_in_order(transactions, after[:first])
                self._liquidator.run()
                after = after[first:]
            self._stress(len(transactions))
        self._apply_in_order(transactions, after)
        if self._auctions:
            self._run_auctions()
        if self._monitored:
            self._record_trades()
        if self.margin is not None:
            self._check_health()
        stale = self._stale_leaves
        for ledger in self._touched:
            ledger.touched = False
            if not ledger.leaf_stale:
                ledger.leaf_stale = True
                stale.append(ledger)
                if not ledger.leaf_index:
                    ledger.leaf_index = self.next_leaf_index
                    self.next_leaf_index += 1
        self._touched = []
        self._events = []
        self.digest = digest = chain_digest(self.digest, block.height, block.timestamp_ns, events)
        return BlockResult(
            height=block.height, timestamp_ns=block.timestamp_ns, events=events, digest=digest
        )

    def _check_block(self, block: Block) -> _Refused | None:
        if block.version not in SUPPORTED_VERSIONS:
            return _Refused(
                RejectCode.UNSUPPORTED_VERSION,
                f"protocol version {block.version}; "
                f"this engine applies {sorted(SUPPORTED_VERSIONS)}",
            )
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
        kinds = set(map(type, block.transactions))
        if OracleReport in kinds:
            reports = sum(type(tx) is OracleReport for tx in block.transactions)
            if reports > self.limits.max_oracle_reports_per_block:
                return _Refused(
                    RejectCode.BLOCK_TOO_LARGE,
                    f"{reports} oracle reports; at most {self.limits.max_oracle_reports_per_block}",
                )
        if not kinds <= self._known_types:
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
        is_market = tx.order_type == _MARKET
        if (
            not 0 < size <= self._max_size_lots
            or not (is_market or 0 < price <= self._max_price_ticks)
            or not 0 < len(account) <= self._max_account_length
            or len(tx.client_order_id) > self._max_client_order_id_length
            or (tif == _GTT and tx.expire_at_ns <= self.timestamp_ns)
        ):
            self._refuse_ranges(tx, is_market)
        book = self.books.get(name)
        if book is None:
            book = self._require_book(name)
        market: Market = book.market  # type: ignore[assignment]
        if market.halted:  # the halt's one test on the order path
            self._refuse_halted(market)
        client_order_id = tx.client_order_id
        mine = self.accounts.get(account)
        exposure = None
        if mine is not None:
            if client_order_id and client_order_id in mine.client_ids:
                raise _Refused(
                    RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                    f"{account} already has an open order with client id {client_order_id!r}",
                )
            exposure = mine.exposures.get(name)
        reduce_only = tx.reduce_only
        if reduce_only or (exposure is not None and exposure.ledger.in_liquidation):
            reduce_only = self._check_reduces(exposure, name, side, size, reduce_only)
        state = market.state
        stressed_taker = not post_only and state.stressed
        if stressed_taker:
            reduce_only = self._check_stress(state, exposure, name, side, size)
        batch = book.batch
        rests = not is_market and tif in (_GTC, _GTT)
        in_auction = market.in_auction
        if in_auction and not rests:
            raise _Refused(
                RejectCode.MARKET_IN_AUCTION,
                f"{name} is in an auction: only orders that rest (GTC, GTT) until it uncrosses",
            )
        margin = self.margin
        if margin is not None and not reduce_only and state.restricted:
            self._check_trading(market, post_only)
        if is_market:
            price = self._market_limit(book, side)
        requested = price
        if post_only and not in_auction:  # after this the order does not cross
            best = (book.asks if side == BUY else book.bids).best()
            if best is not None and (price >= best if side == BUY else price <= best):
                price = self._post_only_reprice(book, side, price, post_only, best)
        if rests or batch:
            if mine is not None and len(mine.orders) >= self._max_open_orders:
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
        if not reduce_only and (market.open_interest_cap_lots or market.position_cap_lots):
            self._check_caps(market, exposure, side, size, 0)
        if not reduce_only and exposure is not None and exposure.ledger.portfolio:
            self._check_portfolio_bounds(exposure, side, size, 0)
        checked: tuple[int, int, int] | int | None = None
        loss_per_lot = 0
        if margin is not None and not reduce_only:
            loss_per_lot = (price * market.value_per_tick_lot - market.mark_per_lot) * side
            loss_per_lot = max(loss_per_lot, 0)
            ledger = (
                exposure.ledger
                if exposure is not None
                else None
                if mine is None
                else mine.ledgers.get(market.underlying)
            )
            checked = self._check_margin(
                ledger, exposure, market, side, size, price, loss_per_lot, not post_only
            )
        if exposure is None:
            exposure = self._exposure(account, market)
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
            reduce_only,
            tx.expire_at_ns,
            exposure,
            loss_per_lot,
        )
        events = self._events
        events.append(
            OrderAccepted(index, order_id, account, name, side, requested, size, client_order_id)
        )
        if stressed_taker:
            state.stress_takers += 1
        if price != requested and not is_market:
            events.append(OrderRepriced(index, order_id, price, requested))
        if batch or in_auction:
            self._rest(book, order, checked)
            if not in_auction:
                pending = self._auctions.setdefault(name, [])
                if not rests:
                    pending.append(order_id)
            return
        crosses = not post_only and book.crosses(side, price)
        if not crosses:
            if rests:
                self._rest(book, order, checked)
                return
            stop = None
        else:
            stop = self._match(book, order, index)
        if not order.remaining:
            return
        if rests and (stop is None or stop is CancelReason.PRICE_MONITORING):
            self._rest(book, order, None)
            return
        if stop is None:
            stop = CancelReason.PRICE_BAND if is_market else CancelReason.IMMEDIATE_OR_CANCEL
        events.append(OrderCancelled(index, order_id, account, name, order.remaining, stop))

    def _check_reduces(
        self,
        exposure: Exposure | None,
        name: str,
        side: int,
        size: int,
        reduce_only: bool,
    ) -> bool:
        """A reduce-only order (or any order of a sub-ledger in the liquidation queue) must be
        on the other side of the position and no larger than it. Returns True: the order is
        reduce-only from here on."""
        position = 0 if exposure is None else exposure.position
        if (position > 0 and side < 0 and size <= position) or (
            position < 0 and side > 0 and size <= -position
        ):
            return True
        if not reduce_only:
            ledger = None if exposure is None else exposure.ledger
            invariant(ledger is not None and ledger.in_liquidation, "only members are forced")
            raise _Refused(
                RejectCode.IN_LIQUIDATION_QUEUE,
                f"{ledger.account if ledger else ''} is in the liquidation queue on "
                f"{ledger.underlying if ledger else ''}: only orders that reduce a position "
                f"(here {position} lots of {name}) are accepted",
            )
        raise _Refused(
            RejectCode.REDUCE_ONLY_WOULD_INCREASE,
            f"reduce-only {'buy' if side > 0 else 'sell'} of {size} lots against a position "
            f"of {position} lots in {name} would increase it",
        )

    def _check_stress(
        self,
        state: UnderlyingState,
        exposure: Exposure | None,
        name: str,
        side: int,
        size: int,
    ) -> bool:
        """Stress mode's rule for a taker: within the block's taker share, and reducing a
        position (it then stays reduce-only). Returns True."""
        if state.stress_takers >= self._stress_cap:
            raise _Refused(
                RejectCode.STRESS_TAKER_CAP,
                f"{state.name} is in stress mode: this block's {self._stress_cap} taker slots "
                "are used; post-only orders, cancels and liquidations go on",
            )
        position = 0 if exposure is None else exposure.position
        if (position > 0 and side < 0 and size <= position) or (
            position < 0 and side > 0 and size <= -position
        ):
            return True
        oracle = state.oracle
        if oracle is not None and oracle.breaker_open:
            raise _Refused(
                RejectCode.CIRCUIT_BREAKER_OPEN,
                f"the {state.name} circuit breaker is open ({oracle.breaker_reason}): "
                "takers may only reduce positions",
            )
        raise _Refused(
            RejectCode.STRESS_REDUCE_ONLY,
            f"{state.name} is in stress mode (a liquidation backlog): takers may only reduce "
            f"positions (here {position} lots of {name}); post-only orders are admitted",
        )

    def _check_caps(
        self, market: Market, exposure: Exposure | None, side: int, lots: int, replaced: int
    ) -> None:
        """Refuse an order that, filled with the account's other open orders on its side
        (less ``replaced``, the lots of the order an amend replaces), would take the account's
        position or the market's long open interest past their caps
        (:func:`~strikechain.engine.position_limits.check_caps`)."""
        position = side_open = 0
        if exposure is not None:
            position = exposure.position
            side_open = (exposure.buy_lots if side > 0 else exposure.sell_lots) - replaced
        code = check_caps(
            open_interest_cap_lots=market.open_interest_cap_lots,
            position_cap_lots=market.position_cap_lots,
            long_open_interest_lots=market.long_lots if market.open_interest_cap_lots else 0,
            position_lots=position,
            side=side,
            lots=lots,
            side_open_lots=side_open,
        )
        if code == RejectCode.POSITION_CAP:
            raise _Refused(
                code,
                f"{market.name}: the order with the account's open orders on its side could "
                f"take the position past its cap of {market.position_cap_lots} lots",
            )
        if code is not None:
            raise _Refused(
                RejectCode.OPEN_INTEREST_CAP,
                f"{market.name}: the order could take open interest past its cap of "
                f"{market.open_interest_cap_lots} lots",
            )

    def _check_portfolio_bounds(
        self, exposure: Exposure, side: int, lots: int, replaced: int
    ) -> None:
        """A sub-ledger on portfolio margin stays within the model's proven bounds (at most
        ``max_lots_per_position`` lots a position, ``max_positions_per_subledger`` positions: the
        limits under which its integer sums provably fit in 64 bits): an order that could take
        it past them, filled with the account's other orders on its side, is refused."""
        ledger = exposure.ledger
        params = ledger.state.params
        if params is None:
            return
        bounds = params.portfolio
        side_open = (exposure.buy_lots if side > 0 else exposure.sell_lots) - replaced
        code = check_caps(
            open_interest_cap_lots=0,
            position_cap_lots=bounds.max_lots_per_position,
            long_open_interest_lots=0,
            position_lots=exposure.position,
            side=side,
            lots=lots,
            side_open_lots=side_open,
        )
        opens = not exposure.position and ledger.positions >= bounds.max_positions_per_subledger
        if code is not None or opens:
            raise _Refused(
                RejectCode.POSITION_CAP,
                f"portfolio margin covers at most {bounds.max_positions_per_subledger} positions "
                f"of at most {bounds.max_lots_per_position} lots in a sub-ledger",
            )

    def _check_trading(self, market: Market, post_only: int) -> None:
        """The oracle's rules: no risk without an index; while the circuit breaker is open,
        only makers (post-only) may add risk."""
        oracle = market.state.oracle
        if oracle is None or not oracle.breaker_open:
            return
        if oracle.index is None:
            raise _Refused(
                RejectCode.NO_INDEX_PRICE,
                f"{market.underlying} has no index price yet: only reduce-only orders",
            )
        if not post_only:
            raise _Refused(
                RejectCode.CIRCUIT_BREAKER_OPEN,
                f"the {market.underlying} circuit breaker is open ({oracle.breaker_reason}): "
                "takers may only reduce positions",
            )

    def _check_margin(
        self,
        ledger: SubLedger | None,
        exposure: Exposure | None,
        market: Market,
        side: int,
        size: int,
        price: int,
        loss_per_lot: int,
        takes: bool,
    ) -> tuple[int, int, int] | int:
        """Refuse an order unless the sub-ledger's free collateral, with the order's reserve
        (and loss against the mark) and, for a possible taker, its fee, stays non-negative, or
        the order only reduces the position.

        Fast path: when the cached totals are an upper bound (no position moved since they were
        computed) and free collateral covers the policy's bound on what the order can add, the
        order is accepted without computing anything; the bound is returned, to be held as
        pending. Otherwise the exact requirement with the order is computed and returned, so an
        order that rests at once needs no second computation.
        """
        if ledger is not None and exposure is not None:
            value = price * size * market.value_per_tick_lot
            if ledger.epoch == ledger.state.epoch and not ledger.moved:
                bound = self._order_bound(exposure, side, size, value, loss_per_lot * size)
                fee = -(-value * market.taker_fee_ppm // _PPM) if takes else 0
                free = (
                    ledger.cash
                    + ledger.value
                    - ledger.initial
                    - ledger.reserve
                    - ledger.pending
                    - fee
                )
                if free >= bound:
                    return bound
        return self._exact_margin(
            ledger,
            exposure,
            market,
            side,
            size,
            price * size * market.value_per_tick_lot,
            loss_per_lot,
            takes,
        )

    def _exact_margin(
        self,
        ledger: SubLedger | None,
        exposure: Exposure | None,
        market: Market,
        side: int,
        size: int,
        value: int,
        loss_per_lot: int,
        takes: bool,
    ) -> tuple[int, int, int]:
        """The slow path of :meth:`_check_margin`: bring the sub-ledger's totals up to date and
        compute the exposure's exact requirement with the order (``value`` its notional)."""
        if ledger is None:
            raise _Refused(
                RejectCode.INSUFFICIENT_MARGIN,
                f"no collateral in the {market.underlying} sub-ledger",
            )
        fee = -(-value * market.taker_fee_ppm // _PPM) if takes else 0
        if exposure is None:
            exposure = Exposure(ledger=ledger, market=market)
        self._current(ledger, exposure)
        required = self._requirement(exposure, side, size, value, loss_per_lot * size)
        initial, _, reserve = required
        position = exposure.position
        free = (
            ledger.cash
            + ledger.value
            - exposure.value
            + position * market.mark_per_lot
            - ledger.initial
            + exposure.initial
            - initial
            - ledger.reserve
            + exposure.reserve
            - reserve
            - ledger.pending
            + exposure.pending
            - fee
        )
        if free < 0 and not (
            (position > 0 and side < 0 and size <= position)
            or (position < 0 and side > 0 and size <= -position)
        ):
            raise _Refused(
                RejectCode.INSUFFICIENT_MARGIN,
                f"the order would leave the {market.underlying} sub-ledger's free collateral "
                f"at {free} USDC minor units (its margin, reserve and fee exceed what is free)",
            )
        return required

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
        """The worst price a market order may trade at: the band around the best opposite
        price and, once the instrument has a mark, the same band around the mark."""
        best = book.best_ask() if side == BUY else book.best_bid()
        if best is None:
            raise _Refused(RejectCode.NO_LIQUIDITY, f"no opposite orders in {book.name}")
        band_ppm = self.limits.market_order_band_ppm
        band = best * band_ppm // _PPM
        limit = best + band if side == BUY else max(best - band, 1)
        market = self.markets[book.name]
        mark = market.mark_minor // market.tick_minor
        if mark > 0:
            band = mark * band_ppm // _PPM
            limit = min(limit, mark + band) if side == BUY else max(limit, mark - band, 1)
        return limit

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
        market = self.markets[book.name]
        for level_price in opposite.prices():
            if (level_price > price) if side == BUY else (level_price < price):
                break
            if level_price < market.band_low_ticks or level_price > market.band_high_ticks:
                break  # price monitoring would stop the fill there
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
        stopped early (self-trade prevention or the fill limit), or None. A reduce-only maker
        fills no more than its owner's position, and is cancelled when nothing is left of it.
        """
        side = taker.side
        opposite = book.opposite(side)
        levels = opposite.levels
        limit, account = taker.price, taker.account
        fills = 0
        max_fills = self.limits.max_fills_per_order
        market = self.markets[book.name]
        while taker.remaining:
            best = opposite.best()
            if best is None or (best > limit if side == BUY else best < limit):
                break
            if best < market.band_low_ticks or best > market.band_high_ticks:
                self._price_monitoring_auction(market, best)
                return CancelReason.PRICE_MONITORING
            level = levels[best]
            maker = next(iter(level.values()))
            if maker.account == account:
                stop = self._prevent_self_trade(book, taker, maker, index)
                if stop is not None:
                    return stop
                continue
            if fills == max_fills:
                return CancelReason.FILL_LIMIT
            lots = taker.remaining if taker.remaining < maker.remaining else maker.remaining
            if maker.reduce_only:
                lots = self._reducible(maker, lots)
                if not lots:
                    self._cancel_order(book, maker, index, CancelReason.REDUCE_ONLY)
                    continue
            fills += 1
            taker.remaining -= lots
            if lots == maker.remaining:
                opposite.remove(maker)
                maker.remaining = 0
                self._forget(maker)
            else:
                opposite.reduce(maker, lots)
            self._fill(market, maker, taker, best, lots, index, False)
        return None

    def _reducible(self, order: Order, lots: int) -> int:
        """How many of ``lots`` a reduce-only order may fill: what is left of the position."""
        position = order.exposure.position
        held = -position if order.side == BUY else position
        return 0 if held <= 0 else (lots if lots < held else held)

    def _fill(
        self,
        market: Market,
        maker: Order,
        taker: Order,
        price: int,
        lots: int,
        index: int,
        both_rested: bool,
    ) -> None:
        """Book one fill: open-order aggregates, positions, cash, fees, the event.

        ``both_rested``: an auction fill, where the taker's order was resting too (its
        aggregates fall as well); a continuous taker never rested. Requirements are only
        flagged stale here (see :meth:`_current`).
        """
        maker_exposure = maker.exposure
        taker_exposure = taker.exposure
        margin_on = self.margin is not None
        if margin_on and not maker.reduce_only:
            self._unreserve(maker, lots)
        if both_rested and margin_on and not taker.reduce_only:
            self._unreserve(taker, lots)
        lot_value = price * market.value_per_tick_lot
        notional = lot_value * lots
        maker_fee = -(-notional * market.maker_fee_ppm // _PPM)
        taker_fee = -(-notional * market.taker_fee_ppm // _PPM)
        if taker.order_id == self._liquidation_order:
            taker_fee = 0  # the liquidation fee replaces it
        market.last_trade_ticks = price
        market.last_trade_ns = self.timestamp_ns
        trade = clearing.trade
        trade(maker_exposure, maker.side, lots, lot_value, maker_fee)
        trade(taker_exposure, taker.side, lots, lot_value, taker_fee)
        self.fee_pool += maker_fee + taker_fee
        if margin_on:
            for exposure in (maker_exposure, taker_exposure):
                self._moved(exposure)
                self._touch(exposure.ledger)
        self._events.append(
            Fill(
                index,
                market.name,
                price,
                lots,
                taker.side,
                maker.order_id,
                taker.order_id,
                maker.account,
                taker.account,
                maker.remaining,
                taker.remaining,
                maker_fee,
                taker_fee,
            )
        )

    def _unreserve(self, order: Order, lots: int) -> None:
        """Take ``lots`` of a resting order out of its exposure's open-order aggregates."""
        exposure = order.exposure
        value = order.price * lots * exposure.market.value_per_tick_lot
        if order.side == BUY:
            exposure.buy_lots -= lots
            exposure.buy_value -= value
            exposure.buy_loss -= order.loss_per_lot * lots
        else:
            exposure.sell_lots -= lots
            exposure.sell_value -= value
            exposure.sell_loss -= order.loss_per_lot * lots

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

    def _rest(self, book: Book, order: Order, required: tuple[int, int, int] | int | None) -> None:
        """Put ``order`` on the book, in the indexes and in its exposure's reserve.

        ``required``: what the margin check just found, if nothing has changed since: the
        exposure's exact requirement with this order, or the bound the fast path accepted it
        on (held as pending); None when the exposure must be recomputed.
        """
        (book.bids if order.side == BUY else book.asks).add(order)
        order_id = order.order_id
        self.orders[order_id] = order
        mine = self.accounts[order.account]  # created when the order was placed
        mine.orders[order_id] = order
        if order.client_order_id:
            mine.client_ids[order.client_order_id] = order_id
        if order.expire_at_ns:
            heapq.heappush(self._good_till, (order.expire_at_ns, order_id))
        if self.margin is not None and not order.reduce_only:
            exposure = order.exposure
            remaining = order.remaining
            value = order.price * remaining * exposure.market.value_per_tick_lot
            if order.side == BUY:
                exposure.buy_lots += remaining
                exposure.buy_value += value
                exposure.buy_loss += order.loss_per_lot * remaining
            else:
                exposure.sell_lots += remaining
                exposure.sell_value += value
                exposure.sell_loss += order.loss_per_lot * remaining
            if required is None:
                self._moved(exposure)
            elif type(required) is int:
                exposure.pending += required
                ledger = exposure.ledger
                ledger.pending += required
                if not exposure.dirty:
                    exposure.dirty = True
                    ledger.dirty.append(exposure)
            else:
                self._restate(exposure, required)  # type: ignore[arg-type]

    def _forget(self, order: Order) -> None:
        """Drop a finished order (filled, cancelled, expired) from the indexes; what it had
        left leaves its exposure's reserve (a filled order's lots left as they filled)."""
        order_id = order.order_id
        del self.orders[order_id]
        mine = self.accounts[order.account]
        del mine.orders[order_id]
        if order.client_order_id:
            del mine.client_ids[order.client_order_id]
        if order.remaining and not order.reduce_only and self.margin is not None:
            self._unreserve(order, order.remaining)
            self._stale(order.exposure)

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
        if self.markets[book.name].halted:
            self._refuse_halted(self.markets[book.name])
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
        if post_only and not self.markets[book.name].in_auction:
            price = self._post_only_price(book, order.side, price, post_only)
        if price == order.price and remaining <= order.remaining:
            if self.margin is not None and not order.reduce_only:
                self._unreserve(order, order.remaining - remaining)
                self._stale(order.exposure)
            book.reduce(order, order.remaining - remaining)
            order.size = size
            self._events.append(OrderAmended(index, order.order_id, price, remaining, True))
            return
        if price != order.price:
            self._check_levels(book, order.side, price)
        market = self.markets[book.name]
        if (
            not order.reduce_only
            and remaining > order.remaining
            and (market.open_interest_cap_lots or market.position_cap_lots)
        ):
            self._check_caps(market, order.exposure, order.side, remaining, order.remaining)
        if (
            not order.reduce_only
            and remaining > order.remaining
            and order.exposure.ledger.portfolio
        ):
            self._check_portfolio_bounds(order.exposure, order.side, remaining, order.remaining)
        if order.reduce_only:
            self._check_reduces(order.exposure, book.name, order.side, remaining, True)
        elif self.margin is not None:
            order_loss = self._check_amend(book, order, price, remaining, post_only)
            self._requeue(book, order, price, size, remaining, index, order_loss)
            return
        self._requeue(book, order, price, size, remaining, index, order.loss_per_lot)

    def _check_amend(
        self, book: Book, order: Order, price: int, remaining: int, post_only: int
    ) -> int:
        """An amend that moves or grows an order adds risk like a new order: the circuit
        breaker's rule for takers and the margin check apply to the order as amended. Returns
        its loss per lot against the mark at the new price."""
        market = self.markets[book.name]
        loss_per_lot = (price * market.value_per_tick_lot - market.mark_per_lot) * order.side
        loss_per_lot = max(loss_per_lot, 0)
        takes = not post_only and not market.in_auction and book.crosses(order.side, price)
        if takes:
            self._check_trading(market, 0)
            if market.state.stressed:
                raise _Refused(
                    RejectCode.STRESS_REDUCE_ONLY,
                    f"{market.underlying} is in stress mode: an amend may not take liquidity; "
                    "amend to a price that rests, or send a reduce-only order",
                )
        exposure = order.exposure
        ledger = exposure.ledger
        self._current(ledger)  # before the aggregates change for the comparison
        self._unreserve(order, order.remaining)
        try:
            self._check_margin(
                exposure.ledger,
                exposure,
                market,
                order.side,
                remaining,
                price,
                loss_per_lot,
                takes,
            )
        finally:
            self._unreserve(order, -order.remaining)
        return loss_per_lot

    def _requeue(
        self,
        book: Book,
        order: Order,
        price: int,
        size: int,
        remaining: int,
        index: int,
        loss_per_lot: int,
    ) -> None:
        """Move an amended order to the back of its (new) level, matching it if it crosses."""
        book.remove(order)
        self._forget(order)
        order.price, order.size, order.remaining = price, size, remaining
        order.loss_per_lot = loss_per_lot
        self._events.append(OrderAmended(index, order.order_id, price, remaining, False))
        if self.markets[book.name].in_auction:
            self._rest(book, order, None)
            return
        if book.batch:
            self._rest(book, order, None)
            self._auctions.setdefault(book.name, [])
            return
        stop = self._match(book, order, index)
        if not order.remaining:
            return
        if stop is None or stop is CancelReason.PRICE_MONITORING:
            self._rest(book, order, None)
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
        state = self.underlyings.get(instrument.underlying)
        if state is None:
            if self.margin is not None:
                raise _Refused(
                    RejectCode.UNKNOWN_UNDERLYING,
                    f"{instrument.underlying} has no fees, margin or oracle configured",
                )
            state = UnderlyingState(name=instrument.underlying, params=None, oracle=None)
        try:
            market = market_for(instrument, state)
        except Rejection as rejection:
            raise _Refused(rejection.code, rejection.message) from None
        self.underlyings.setdefault(state.name, state)
        state.markets[name] = market
        state.options += instrument.is_option
        self.markets[name] = market
        self.instruments[name] = instrument
        self.books[name] = Book(instrument, market)
        if state.params is not None and state.params.auctions is not None:
            market.auction = AuctionState()
            market.history = PriceHistory(state.params.auctions.price_history_samples)
            self._monitored.append(market)
        now = self.timestamp_ns
        if instrument.is_option:
            heapq.heappush(self._market_expiries, (instrument.expiry_ns, name))
        elif state.params is not None:
            interval = state.params.funding.interval_ns
            market.basis_updated_ns = market.last_funding_ns = now
            market.next_funding_ns = (now // interval + 1) * interval
        self._events.append(InstrumentListed(index, instrument))
        if state.oracle is not None and state.oracle.index is not None:
            self._mark(state)  # a new market is marked at once, so it can be margined

    def _delist(self, tx: DelistInstrument, index: int) -> None:
        """Remove an instrument: its open orders are cancelled and its positions closed at the
        mark (refused if it has positions but no mark)."""
        self._require_operator(tx.account)
        book = self._require_book(tx.instrument)
        market = self.markets[book.name]
        if market.holders and not market.mark_minor:
            raise _Refused(
                RejectCode.INSTRUMENT_HAS_POSITIONS,
                f"{book.name} has open positions and no mark to close them at",
            )
        self._close_book(book, index, CancelReason.DELISTED)
        del self.instruments[book.name]
        if market.holders:
            self._settle(market, market.mark_minor, market.mark_per_lot, 1, index)
        self._drop_market(market)
        self._events.append(InstrumentDelisted(index, book.name))

    def _require_operator(self, account: str) -> None:
        self._check_account(account)
        if account != self.limits.operator:
            raise _Refused(
                RejectCode.NOT_AUTHORIZED, f"{account} may not do what only the operator may"
            )

    def _close_book(self, book: Book, index: int, reason: CancelReason) -> None:
        for order in list(book.orders()):
            self._cancel_order(book, order, index, reason)
        del self.books[book.name]
        self._auctions.pop(book.name, None)

    def _drop_market(self, market: Market) -> None:
        """Forget a market whose book is closed and whose positions are settled."""
        invariant(not market.holders, f"{market.name} dropped with positions")
        del self.markets[market.name]
        if market.auction is not None:
            self._monitored.remove(market)
        state = market.state
        del state.markets[market.name]
        state.options -= market.is_option
        for ledger in state.ledgers.values():
            exposure = ledger.exposures.pop(market.name, None)
            if exposure is not None:
                del self.accounts[ledger.account].exposures[market.name]
                invariant(
                    not (exposure.buy_lots or exposure.sell_lots or exposure.position),
                    f"{market.name} dropped with orders or a position in {ledger.account}",
                )
                if self.margin is not None:
                    self._refresh(ledger)  # drops the market's cached share

    # -- operations: halts and parameter changes (see strikechain.engine.governance) ---------

    def _set_market_status(self, tx: SetMarketStatus, index: int) -> None:
        """Halt or resume a market. Asking for the status it has is accepted: the reason is
        replaced and the status announced again."""
        self._require_operator(tx.account)
        if len(tx.reason) > self.limits.max_reason_length:
            raise _Refused(
                RejectCode.MESSAGE_TOO_LARGE,
                f"a reason of {len(tx.reason)} characters; at most {self.limits.max_reason_length}",
            )
        book = self._require_book(tx.instrument)
        market = self.markets[book.name]
        market.halted = tx.halted
        market.halt_reason = tx.reason if tx.halted else ""
        self._events.append(MarketStatusChanged(index, book.name, tx.halted, tx.reason))

    @staticmethod
    def _refuse_halted(market: Market) -> None:
        reason = f" ({market.halt_reason})" if market.halt_reason else ""
        raise _Refused(
            RejectCode.MARKET_HALTED,
            f"{market.name} is halted{reason}: only cancels are accepted until it resumes",
        )

    def _schedule_change(self, tx: ScheduleParameterChange, index: int) -> None:
        """Announce a parameter change, in force from ``tx.effective_at_ns``, which must leave
        users the venue's timelock from this block's time."""
        self._require_operator(tx.account)
        state = self.underlyings.get(tx.underlying)
        if state is None or state.params is None:
            raise _Refused(
                RejectCode.UNKNOWN_UNDERLYING, f"{tx.underlying!r} has no parameters to change"
            )
        timelock = self.venue.parameter_timelock_ns
        earliest = self.timestamp_ns + timelock
        if tx.effective_at_ns < earliest:
            raise _Refused(
                RejectCode.TIMELOCK_TOO_SHORT,
                f"a change may take effect at {earliest} ns at the earliest (block time "
                f"{self.timestamp_ns} ns plus the timelock of {timelock} ns), "
                f"not at {tx.effective_at_ns} ns",
            )
        problem = change_problem(state.params, tx.params)
        if problem is not None:
            raise _Refused(RejectCode.INVALID_PARAMETER_CHANGE, problem)
        limit = self.limits.max_pending_parameter_changes
        if len(self.pending_changes) >= limit:
            raise _Refused(
                RejectCode.TOO_MANY_PENDING_CHANGES,
                f"{limit} parameter changes are scheduled, the most allowed: cancel one or "
                "wait for one to apply",
            )
        change_id = self.next_change_id
        self.next_change_id += 1
        self.pending_changes[change_id] = ParameterChange(
            change_id=change_id,
            underlying=state.name,
            effective_at_ns=tx.effective_at_ns,
            params=tx.params,
        )
        self._events.append(
            ParameterChangeScheduled(index, change_id, state.name, tx.effective_at_ns, tx.params)
        )

    def _cancel_change(self, tx: CancelParameterChange, index: int) -> None:
        self._require_operator(tx.account)
        change = self.pending_changes.pop(tx.change_id, None)
        if change is None:
            raise _Refused(
                RejectCode.UNKNOWN_CHANGE,
                f"no parameter change {tx.change_id} is scheduled (unknown, applied or cancelled)",
            )
        self._events.append(ParameterChangeCancelled(index, change.change_id, change.underlying))

    def _apply_due_changes(self) -> None:
        """At a block's start, before its transactions: every scheduled change whose time has
        come, by time, then by id."""
        for change in due_changes(self.pending_changes, self.timestamp_ns):
            del self.pending_changes[change.change_id]
            self._change_parameters(self.underlyings[change.underlying], change.params)
            self._events.append(ParameterChangeApplied(-1, change.change_id, change.underlying))

    def _change_parameters(self, state: UnderlyingState, params: UnderlyingParams) -> None:
        """Put ``params`` in force on ``state``: every market's rates, the oracle's rules, dynamic
        margin, liquidation and auction rules; then a new margin epoch with nothing proven safe,
        every sub-ledger re-margined at once, and those that can be below maintenance (or the
        ladder's search level) health-checked at the end of the block."""
        previous = state.params
        grid_changed = (
            previous is not None
            and previous.oracle.log_moneyness_ppm != params.oracle.log_moneyness_ppm
        )
        self._configure_underlying(state, params)
        if params.dynamic is None:
            state.dynamic = None
            state.margin_multiplier_ppm = _PPM  # a decrease: applies at once
            for ledger in state.ledgers.values():
                ledger.margin_call = False
        auctions = params.auctions
        for market in state.markets.values():
            apply_params(market, params, state.margin_multiplier_ppm)
            history = market.history
            if (
                history is not None
                and auctions is not None
                and history.capacity != auctions.price_history_samples
            ):
                market.history = history.resized(auctions.price_history_samples)
        self._update_liquidating()
        oracle = state.oracle
        if grid_changed:  # the option marks' vol nodes were on the old grid: intrinsic now
            state.vol_nodes = {}
            if oracle is not None and oracle.index is not None and state.options:
                self._mark(state)
        state.mark_path_ppm += MAX_SAFE_PATH_PPM + 1  # new rates: nothing is proven
        self._new_epoch(state, self.timestamp_ns)
        if self.margin is not None:
            for ledger in state.ledgers.values():
                self._refresh(ledger)
                if ledger.positions or ledger.cash < 0:
                    self._touch(ledger)

    @staticmethod
    def _configure_underlying(state: UnderlyingState, params: UnderlyingParams) -> None:
        """The parameters in force on ``state`` and what is read from them directly (the mark
        interval, the oracle's rules); also used by a restore."""
        state.params = params
        state.mark_interval_ns = params.mark.interval_ns
        if state.oracle is not None:
            state.oracle.reconfigure(params.oracle)

    # -- money: deposits, withdrawals, transfers ---------------------------------------------

    def _deposit(self, tx: Deposit, index: int) -> None:
        """Credit a settlement-layer deposit to its beneficiary's sub-ledger; a deposit to the
        venue's insurance-fund account seeds the fund itself (one fund for the venue)."""
        self._require_operator(tx.account)
        self._check_account(tx.beneficiary)
        state = self._require_underlying(tx.underlying)
        self._check_amount(tx.amount)
        _require_next(
            tx.deposit_id,
            self.next_deposit_id,
            ("deposit", "credited"),
            (RejectCode.DUPLICATE_DEPOSIT, RejectCode.DEPOSIT_OUT_OF_ORDER),
        )
        self.deposits_total += tx.amount
        self.next_deposit_id += 1
        if tx.beneficiary == self.venue.insurance_fund:
            self.insurance_fund += tx.amount
        else:
            ledger = self._ledger(tx.beneficiary, state)
            ledger.cash += tx.amount
            ledger.deposited += tx.amount
            self._touch(ledger)
        self._events.append(
            Deposited(index, tx.deposit_id, tx.beneficiary, tx.underlying, tx.amount)
        )

    def _withdraw(self, tx: Withdraw, index: int) -> None:
        self._check_account(tx.account)
        state = self._require_underlying(tx.underlying)
        self._check_amount(tx.amount)
        ledger = self._require_withdrawable(tx.account, state, tx.amount)
        self._pay_out(ledger, tx.amount, index)

    def _pay_out(self, ledger: SubLedger, amount: int, index: int) -> int:
        """Take ``amount`` out of ``ledger`` as the next withdrawal; its id."""
        ledger.cash -= amount
        ledger.withdrawn += amount
        self.withdrawals_total += amount
        withdrawal_id = self.next_withdrawal_id
        self.next_withdrawal_id += 1
        self._touch(ledger)
        self._events.append(
            WithdrawalRequested(index, withdrawal_id, ledger.account, ledger.underlying, amount)
        )
        return withdrawal_id

    def _forced_withdrawal(self, tx: ForcedWithdrawal, index: int) -> None:
        """Serve request ``tx.request_id`` (in order, once): pay out what may leave, up to the
        amount asked; an account with nothing that may leave is served with 0."""
        self._require_operator(tx.account)
        self._check_account(tx.owner)
        state = self._require_underlying(tx.underlying)
        self._check_amount(tx.amount)
        _require_next(
            tx.request_id,
            self.next_forced_id,
            ("forced withdrawal", "served"),
            (RejectCode.DUPLICATE_FORCED_WITHDRAWAL, RejectCode.FORCED_WITHDRAWAL_OUT_OF_ORDER),
        )
        self.next_forced_id += 1
        amount, withdrawal_id = 0, 0
        mine = self.accounts.get(tx.owner)
        ledger = None if mine is None else mine.ledgers.get(state.name)
        if ledger is not None and not ledger.in_liquidation:
            amount = min(tx.amount, max(0, self._withdrawable(ledger, state)))
            if amount:
                withdrawal_id = self._pay_out(ledger, amount, index)
        self._events.append(
            ForcedWithdrawalServed(
                index, tx.request_id, tx.owner, tx.underlying, tx.amount, amount, withdrawal_id
            )
        )

    def _transfer(self, tx: Transfer, index: int) -> None:
        self._check_account(tx.account)
        source_state = self._require_underlying(tx.from_underlying)
        target_state = self._require_underlying(tx.to_underlying)
        self._check_amount(tx.amount)
        source = self._require_withdrawable(tx.account, source_state, tx.amount)
        target = self._ledger(tx.account, target_state)
        source.cash -= tx.amount
        source.transferred -= tx.amount
        target.cash += tx.amount
        target.transferred += tx.amount
        self._touch(source)
        self._touch(target)
        self._events.append(
            Transferred(index, tx.account, tx.from_underlying, tx.to_underlying, tx.amount)
        )

    def _set_margin_mode(self, tx: SetMarginMode, index: int) -> None:
        """Standard or portfolio margin for one sub-ledger; refused (changing nothing) if the
        sub-ledger would not cover the new mode's initial margin with its open orders' reserve."""
        self._check_account(tx.account)
        state = self._require_underlying(tx.underlying)
        if self.margin is None:
            raise _Refused(RejectCode.INVALID_ORDER, "this venue runs without margin")
        ledger = self._ledger(tx.account, state)
        self._current(ledger)
        portfolio = tx.mode == MarginMode.PORTFOLIO
        bounds = state.params.portfolio if state.params is not None else None
        if portfolio and bounds is not None:
            held = [e.position for e in ledger.exposures.values() if e.position]
            if len(held) > bounds.max_positions_per_subledger or any(
                abs(lots) > bounds.max_lots_per_position for lots in held
            ):
                raise _Refused(
                    RejectCode.POSITION_CAP,
                    f"portfolio margin covers at most {bounds.max_positions_per_subledger} "
                    f"positions of at most {bounds.max_lots_per_position} lots",
                )
        if ledger.portfolio != portfolio:
            ledger.portfolio = portfolio
            self._refresh(ledger)
            if ledger.cash + ledger.value - ledger.initial - ledger.reserve - ledger.pending < 0:
                ledger.portfolio = not portfolio
                self._refresh(ledger)
                raise _Refused(
                    RejectCode.INSUFFICIENT_MARGIN,
                    f"the {tx.underlying} sub-ledger does not cover the initial margin of "
                    f"{'portfolio' if portfolio else 'standard'} margin",
                )
        self._events.append(
            MarginModeSet(
                index,
                tx.account,
                tx.underlying,
                tx.mode,
                ledger.initial,
                ledger.maintenance,
            )
        )

    def _require_underlying(self, name: str) -> UnderlyingState:
        state = self.underlyings.get(name)
        if state is None:
            raise _Refused(RejectCode.UNKNOWN_UNDERLYING, f"no sub-ledgers on {name!r}")
        return state

    def _check_amount(self, amount: int) -> None:
        if amount > self.limits.max_amount_minor:
            raise _Refused(
                RejectCode.AMOUNT_OUT_OF_RANGE,
                f"amount {amount}; at most {self.limits.max_amount_minor} minor units",
            )

    def _require_withdrawable(self, account: str, state: UnderlyingState, amount: int) -> SubLedger:
        """The sub-ledger, if ``amount`` may leave it: free collateral without unrealized gains,
        and never from a sub-ledger in the liquidation queue."""
        mine = self.accounts.get(account)
        ledger = None if mine is None else mine.ledgers.get(state.name)
        if ledger is None:
            raise _Refused(
                RejectCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL,
                f"{account} has no collateral on {state.name}",
            )
        if ledger.in_liquidation:
            raise _Refused(
                RejectCode.IN_LIQUIDATION_QUEUE,
                f"{account} is in the liquidation queue on {state.name}: nothing may leave",
            )
        available = self._withdrawable(ledger, state)
        if amount > available:
            raise _Refused(
                RejectCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL,
                f"{amount} minor units requested; {available} may leave the {state.name} "
                "sub-ledger (free collateral, not counting unrealized gains)",
            )
        return ledger

    def _withdrawable(self, ledger: SubLedger, state: UnderlyingState) -> int:
        """What may leave ``ledger`` now: free collateral without unrealized gains, and under
        dynamic margin no more than keeps it above the ladder's release level."""
        if self.margin is not None:
            self._current(ledger)
        available = ledger.withdrawable
        params = state.params
        if params is not None and params.dynamic is not None:  # the ladder's release level
            available = min(
                available,
                ledger.cash
                + ledger.value
                - (-(-params.dynamic.release_level_ppm * ledger.maintenance // _PPM)),
            )
        return available

    # -- oracle ------------------------------------------------------------------------------

    def _report(self, tx: OracleReport, index: int) -> None:
        self._check_account(tx.account)
        state = self._require_underlying(tx.underlying)
        if state.oracle is None:
            raise _Refused(RejectCode.UNKNOWN_UNDERLYING, f"{tx.underlying} has no oracle")
        try:
            state.oracle.submit(tx, self.timestamp_ns)
        except OracleRejection as rejection:
            raise _Refused(RejectCode(rejection.code), rejection.message) from None

    def _update_oracles(self) -> None:
        """Aggregate each oracle's fresh reports; move the marks when anything moved."""
        now = self.timestamp_ns
        events = self._events
        for state in self.underlyings.values():
            oracle = state.oracle
            if oracle is None:
                continue
            update = oracle.aggregate(now)
            state.restricted = oracle.breaker_open
            if update.opened:
                events.append(CircuitBreakerOpened(-1, state.name, update.reason))
            if update.index_changed and update.index is not None:
                events.append(
                    IndexUpdated(
                        -1, state.name, update.index, update.confidence, len(update.reporters)
                    )
                )
            if update.closed:
                events.append(CircuitBreakerClosed(-1, state.name))
            if oracle.index is None or not state.markets:
                continue
            due = update.index_changed or now - state.marked_ns >= state.mark_interval_ns
            if not due and state.options:
                due = oracle.vol_nodes != state.vol_nodes
            if due:
                self._mark(state)

    def _mark(self, state: UnderlyingState) -> None:
        """Mark every market of ``state`` at block time; if a per-lot value moved, every cached
        requirement on the underlying goes stale (the epoch)."""
        oracle, params = state.oracle, state.params
        if oracle is None or params is None or oracle.index is None:
            invariant(False, f"{state.name}: only configured markets with an index are marked")
            return
        index = oracle.index
        now = self.timestamp_ns
        options = []
        changed = False
        before = [market.mark_per_lot for market in state.markets.values()]
        for market in state.markets.values():
            if market.is_option:
                options.append(market)
            else:
                changed |= update_perp_mark(
                    market, self.books[market.name], index, now, params.mark
                )
        if options:
            state.vol_nodes = oracle.vol_nodes
            changed |= update_option_marks(
                options, index, state.vol_nodes, params.oracle.log_moneyness_ppm, now
            )
        state.marked_ns = now
        if changed:
            self._extend_path(state, index, before)
            self._new_epoch(state, now)

    @staticmethod
    def _extend_path(state: UnderlyingState, index: int, before: list[int]) -> None:
        """Add this mark update's step to the marks' path: the largest move of any mark, or of
        the index, in ppm of the (smaller) index per lot, rounded up."""
        step = 0
        previous = state.path_index
        if previous:
            low = previous if previous < index else index
            move = index - previous if index > previous else previous - index
            step = -(-move * _PPM // low)
        for market, old in zip(state.markets.values(), before, strict=True):
            base = market.index_per_lot
            if base > 0:
                move = market.mark_per_lot - old
                move = move if move > 0 else -move
                step = max(step, -(-move * _PPM // base))
            else:
                step = max(step, MAX_SAFE_PATH_PPM + 1)
        state.path_index = index
        state.mark_path_ppm += step

    def _new_epoch(self, state: UnderlyingState, now: int) -> None:
        """The marks or the margin rates moved: every cached requirement on the underlying is
        stale; the portfolio table's inputs are those of this moment."""
        state.epoch += 1
        state.epoch_ns = now
        oracle = state.oracle
        if oracle is not None and oracle.index is not None:
            state.epoch_index = oracle.index
            state.epoch_confidence = oracle.confidence

    # -- the engine's own work ---------------------------------------------------------------

    def _engine_work(self) -> None:
        """What block time triggers: expiries, the oracle and marks, settlement, funding."""
        self._expire_orders()
        if self.venue.underlyings:
            self._update_oracles()
            self._dynamic_margin()
        if self._market_expiries and self._market_expiries[0][0] <= self.timestamp_ns:
            self._expire_markets()
        if self.awaiting_settlement:
            self._settle_expired()
        if self.venue.underlyings:
            self._pay_funding()

    def _dynamic_margin(self) -> None:
        """Dynamic margin (:mod:`strikechain.engine.dynamic`): each underlying that turns it on
        observes this block (its time, the index, its liquidation backlog); when the multiplier
        moves, every market's rates move with it and the epoch turns, so every holder is
        re-margined and health-checked at the end of the block."""
        now = self.timestamp_ns
        for state in self.underlyings.values():
            params = state.params
            if params is None or params.dynamic is None:
                continue
            dynamic = state.dynamic
            if dynamic is None:
                dynamic = state.dynamic = new_dynamic_state(params.dynamic)
            oracle = state.oracle
            backlog = 0
            for ledger in self.liquidation_queue:
                if ledger.state is state and ledger.positions:  # a flat deficit waits, no work
                    backlog += 1
            observe_block(
                dynamic,
                params.dynamic,
                now,
                oracle.index if oracle is not None else None,
                backlog,
            )
            multiplier = dynamic.multiplier_ppm
            if multiplier == state.margin_multiplier_ppm:
                continue
            state.margin_multiplier_ppm = multiplier
            for market in state.markets.values():
                set_margin_rates(market, params, multiplier)
            state.mark_path_ppm += MAX_SAFE_PATH_PPM + 1  # new rates: nothing is proven
            self._new_epoch(state, now)
            self._events.append(
                MarginMultiplier(
                    -1,
                    state.name,
                    multiplier,
                    dynamic.target_ppm,
                    dynamic.horizon_ns,
                    realized_vol_ppm(dynamic),
                )
            )

    def _expire_orders(self) -> None:
        """Good-till-time orders whose time has come, by block time."""
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

    def _expire_markets(self) -> None:
        """Option markets whose expiry has come: books close, positions await settlement."""
        now = self.timestamp_ns
        markets = self._market_expiries
        while markets and markets[0][0] <= now:
            _, name = heapq.heappop(markets)
            book = self.books.get(name)
            if book is None:
                continue  # delisted before expiry
            self._close_book(book, -1, CancelReason.MARKET_EXPIRED)
            self.expired_instruments[name] = self.instruments.pop(name)
            self._events.append(InstrumentExpired(-1, name))
            market = self.markets[name]
            if market.holders:
                self.awaiting_settlement.append(market)
            else:
                self._drop_market(market)

    def _settle_expired(self) -> None:
        """Settle expired options in cash against the average index of their last window
        (30 minutes by default); one whose window saw no index waits for a later block."""
        waiting = []
        for market in self.awaiting_settlement:
            state = market.state
            oracle, params = state.oracle, state.params
            price = None
            if oracle is not None and params is not None:
                window = params.oracle.settlement_window_ns
                price = oracle.average_index(market.expiry_ns - window, market.expiry_ns)
            if price is None:
                waiting.append(market)
                continue
            strike = market.strike_minor
            payoff = max(price - strike, 0) if market.is_call else max(strike - price, 0)
            self._settle(market, price, payoff * market.lot_numerator, market.lot_denominator, -1)
            self._drop_market(market)
        self.awaiting_settlement = waiting

    def _settle(
        self, market: Market, price: int, numerator: int, denominator: int, index: int
    ) -> None:
        """Close every position of ``market`` at ``numerator / denominator`` per long lot."""
        amounts, dust = clearing.proportional_amounts(market, numerator, denominator)
        lots = market.long_lots
        paid = received = 0
        events = self._events
        for exposure, amount in amounts:
            position = exposure.position
            realized = clearing.close_position(exposure, amount)
            exposure.ledger.settlements += amount
            if amount > 0:
                received += amount
            else:
                paid -= amount
            self._touch(exposure.ledger)
            self._moved(exposure)
            events.append(
                PositionSettled(
                    index, exposure.ledger.account, market.name, position, amount, realized
                )
            )
        self.dust += dust
        events.append(
            InstrumentSettled(
                index, market.name, price, numerator // denominator, lots, paid, received, dust
            )
        )

    def _pay_funding(self) -> None:
        """Each perpetual whose funding time has come: longs pay shorts the interval's rate
        of their position's value at the mark (shorts pay longs when it is negative)."""
        now = self.timestamp_ns
        for state in self.underlyings.values():
            params = state.params
            if params is None:
                continue
            funding = params.funding
            for market in state.markets.values():
                if market.is_option or now < market.next_funding_ns:
                    continue
                elapsed = now - market.last_funding_ns
                average = market.premium_weighted // market.premium_ns if market.premium_ns else 0
                rate = average * elapsed // funding.premium_horizon_ns
                cap = funding.max_rate_ppb * elapsed // funding.interval_ns
                rate = min(max(rate, -cap), cap)
                if market.holders and market.mark_per_lot and rate:
                    self._fund(market, rate)
                market.premium_weighted = market.premium_ns = 0
                market.last_funding_ns = now
                market.next_funding_ns = (now // funding.interval_ns + 1) * funding.interval_ns

    def _fund(self, market: Market, rate_ppb: int) -> None:
        amounts, dust = clearing.proportional_amounts(market, -market.mark_per_lot * rate_ppb, PPB)
        paid = received = 0
        events = self._events
        for exposure, amount in amounts:
            clearing.credit(exposure, amount)
            exposure.ledger.funding += amount
            if amount > 0:
                received += amount
            else:
                paid -= amount
            self._touch(exposure.ledger)
            events.append(
                FundingPayment(-1, exposure.ledger.account, market.name, exposure.position, amount)
            )
        self.dust += dust
        events.append(
            FundingPaid(
                -1,
                market.name,
                rate_ppb,
                market.mark_per_lot,
                market.long_lots,
                paid,
                received,
                dust,
            )
        )

    def _run_auctions(self) -> None:
        """Clear every batch market touched this block, then cancel its IOC remainders."""
        for name, immediate in self._auctions.items():
            book = self.books[name]
            market = self.markets[name]
            invariant(not market.in_auction, f"{name}: a batch market in a call auction")
            if not market.halted:  # halted after its orders came in (arrival or fee policy)
                auction.run(book, self._events, _AuctionHooks(self, market))
            for order_id in immediate:
                order = self.orders.get(order_id)
                if order is not None:
                    self._cancel_order(book, order, -1, CancelReason.IMMEDIATE_OR_CANCEL)
        self._auctions = {}

    # -- sub-ledgers and health --------------------------------------------------------------

    def _ledger(self, account: str, state: UnderlyingState) -> SubLedger:
        """The account's sub-ledger on ``state``, created (with the account) on first use."""
        mine = self.accounts.get(account)
        if mine is None:
            mine = self.accounts[account] = Account({}, {}, {}, {})
        ledger = mine.ledgers.get(state.name)
        if ledger is None:
            ledger = SubLedger(account=account, underlying=state.name, state=state)
            mine.ledgers[state.name] = ledger
            state.ledgers[account] = ledger
        return ledger

    def _exposure(self, account: str, market: Market) -> Exposure:
        exposure = self._ledger(account, market.state).exposure(market)
        self.accounts[account].exposures[market.name] = exposure
        return exposure

    def _touch(self, ledger: SubLedger) -> None:
        """Its money or positions moved: the end-of-block health check will look at it."""
        if not ledger.touched:
            ledger.touched = True
            self._touched.append(ledger)

    @staticmethod
    def _stale(exposure: Exposure) -> None:
        """Flag an exposure whose requirement can only have fallen (a cancel, an amend down):
        its cached values stay an upper bound until it is recomputed."""
        if not exposure.dirty:
            exposure.dirty = True
            exposure.ledger.dirty.append(exposure)

    @staticmethod
    def _moved(exposure: Exposure) -> None:
        """Flag an exposure whose position moved: recomputed before the next decision."""
        ledger = exposure.ledger
        if not exposure.moved:
            exposure.moved = True
            ledger.moved += 1
        if not exposure.dirty:
            exposure.dirty = True
            ledger.dirty.append(exposure)

    def _current(self, ledger: SubLedger, skip: Exposure | None = None) -> None:
        """Make the sub-ledger's cached totals exact: everything if the marks moved since,
        else the flagged exposures (but ``skip``, which the caller recomputes itself)."""
        if ledger.epoch != ledger.state.epoch:
            self._refresh(ledger)
            return
        dirty = ledger.dirty
        if dirty:
            moved = ledger.moved
            ledger.dirty = [skip] if skip is not None and skip.dirty else []
            for exposure in dirty:
                if exposure.dirty and exposure is not skip:
                    self._restate(exposure)
            if moved and ledger.portfolio:
                self._portfolio(ledger)

    def _current_positions(self, ledger: SubLedger) -> None:
        """Make value and maintenance exact (what health needs): recompute moved exposures."""
        if ledger.epoch != ledger.state.epoch:
            self._refresh(ledger)
            return
        if ledger.moved:
            dirty = ledger.dirty
            for exposure in dirty:
                if exposure.moved:
                    self._restate(exposure)
            ledger.dirty = [exposure for exposure in dirty if exposure.dirty]
            if ledger.portfolio:
                self._portfolio(ledger)

    def _restate(self, exposure: Exposure, required: tuple[int, int, int] | None = None) -> None:
        """Recompute one exposure's value and requirement (or take ``required``) and carry the
        change to its sub-ledger's totals."""
        ledger = exposure.ledger
        if required is None:
            required = self._requirement(exposure)
        initial, maintenance, reserve = required
        value = exposure.position * exposure.market.mark_per_lot
        ledger.value += value - exposure.value
        if not ledger.portfolio:  # a portfolio's requirement is not a sum (see _portfolio)
            ledger.initial += initial - exposure.initial
            ledger.maintenance += maintenance - exposure.maintenance
        ledger.reserve += reserve - exposure.reserve
        exposure.value, exposure.initial = value, initial
        exposure.maintenance, exposure.reserve = maintenance, reserve
        exposure.dirty = False
        if exposure.pending:
            ledger.pending -= exposure.pending
            exposure.pending = 0
        if exposure.moved:
            exposure.moved = False
            ledger.moved -= 1

    def _requirement(
        self, exposure: Exposure, side: int = 0, lots: int = 0, value: int = 0, loss: int = 0
    ) -> tuple[int, int, int]:
        """``self.margin.requirement(...)`` (a margin policy is set): a direct call for the
        standard policy (compiled, its result stays unboxed), through the protocol otherwise."""
        margin = self.margin
        if isinstance(margin, StandardMargin):
            return margin.requirement(exposure, side, lots, value, loss)
        assert margin is not None
        return margin.requirement(exposure, side, lots, value, loss)

    def _order_bound(self, exposure: Exposure, side: int, lots: int, value: int, loss: int) -> int:
        """``self.margin.order_bound(...)`` (a margin policy is set), as :meth:`_requirement`."""
        margin = self.margin
        if isinstance(margin, StandardMargin):
            return margin.order_bound(exposure, side, lots, value, loss)
        assert margin is not None
        return margin.order_bound(exposure, side, lots, value, loss)

    def _refresh(self, ledger: SubLedger) -> None:
        """Recompute every exposure of ``ledger`` at the current marks."""
        margin = self.margin
        assert margin is not None
        total_value = total_initial = total_maintenance = total_reserve = 0
        for exposure in ledger.exposures.values():
            initial, maintenance, reserve = self._requirement(exposure)
            value = exposure.position * exposure.market.mark_per_lot
            exposure.value, exposure.initial = value, initial
            exposure.maintenance, exposure.reserve = maintenance, reserve
            exposure.dirty = exposure.moved = False
            exposure.pending = 0
            total_value += value
            total_initial += initial
            total_maintenance += maintenance
            total_reserve += reserve
        ledger.value, ledger.initial = total_value, total_initial
        ledger.maintenance, ledger.reserve = total_maintenance, total_reserve
        ledger.dirty = []
        ledger.moved = ledger.pending = 0
        ledger.epoch = ledger.state.epoch
        if ledger.portfolio:
            self._portfolio(ledger)

    def _portfolio(self, ledger: SubLedger) -> None:
        """Portfolio mode: the sub-ledger's initial and maintenance margin from the portfolio
        model over its positions (:func:`portfolio_requirement`) at this epoch's scenario table;
        called whenever a position or the epoch moved."""
        ledger.initial, ledger.maintenance = self._portfolio_requirement(ledger)

    def _portfolio_requirement(self, ledger: SubLedger) -> tuple[int, int]:
        """``(initial, maintenance)`` of the sub-ledger's positions under portfolio margin.

        Before the underlying has an index there is no table, and the standard requirement of
        the positions applies (as it would for a portfolio beyond the model's overflow proof,
        which the order path and the mode switch never let happen)."""
        state = ledger.state
        positions = [
            (name, exposure.position)
            for name, exposure in ledger.exposures.items()
            if exposure.position
        ]
        if not positions:
            return 0, 0
        table = self._scenario_table(state)
        params = table.params if table is not None else None
        if (
            table is None
            or params is None
            or len(positions) > params.max_positions_per_subledger
            or any(abs(lots) > params.max_lots_per_position for _, lots in positions)
        ):
            initial = maintenance = 0
            for exposure in ledger.exposures.values():
                if exposure.position:
                    required = self.margin.requirement(exposure)  # type: ignore[union-attr]
                    initial += required[0]
                    maintenance += required[1]
            return initial, maintenance
        rows = state.scenario_index
        result = portfolio_requirement([(rows[name], lots) for name, lots in positions], table)
        return result.initial, result.maintenance

    def _scenario_table(self, state: UnderlyingState) -> ScenarioTable | None:
        """This epoch's scenario table of ``state``'s markets, built on first use; a pure
        function of the state at the epoch (its time, index, confidence, marks and vol nodes,
        and the dynamic margin multiplier), so a replica builds the same one whenever it does."""
        if state.scenario_epoch == state.epoch and state.scenario_table is not None:
            return state.scenario_table
        params = state.params
        if params is None or not state.epoch_index or not state.markets:
            return None
        markets = list(state.markets.values())
        options = [market for market in markets if market.is_option]
        vols = [float("nan")] * len(markets)
        if options:
            found = option_vols(
                state.epoch_index,
                state.vol_nodes,
                params.oracle.log_moneyness_ppm,
                state.epoch_ns,
                [market.strike_minor for market in options],
                [market.expiry_ns for market in options],
            )
            by_name = {market.name: vol for market, vol in zip(options, found, strict=True)}
            vols = [by_name.get(market.name, float("nan")) for market in markets]
        portfolio = params.portfolio
        multiplier = state.margin_multiplier_ppm
        if multiplier != _PPM:
            portfolio = widened_portfolio(portfolio, multiplier)
        state.scenario_table = build_scenario_table(
            portfolio,
            markets,
            vols,
            index_minor=state.epoch_index,
            confidence_minor=state.epoch_confidence,
            now_ns=state.epoch_ns,
        )
        state.scenario_index = {market.name: row for row, market in enumerate(markets)}
        state.scenario_epoch = state.epoch
        return state.scenario_table

    def _check_health(self) -> None:
        """End of block: sub-ledgers below maintenance join the liquidation queue (their
        orders on that underlying cancelled), those back above leave it; the queue is sorted."""
        candidates = list(self._touched)
        touched = len(candidates)  # proven safe only in a marks pass: touched ones are re-checked
        for state in self.underlyings.values():
            if state.epoch != state.checked_epoch:  # marks moved: every holder not proven safe
                path = state.mark_path_ppm
                for ledger in state.holders.values():
                    if ledger.touched:
                        continue  # a candidate already
                    if ledger.safe_until_path >= path:
                        self.health_skipped += 1
                    else:
                        candidates.append(ledger)
                state.checked_epoch = state.epoch
        self.health_checked += len(candidates)
        changed = False
        for position, ledger in enumerate(candidates):
            self._current_positions(ledger)
            equity = ledger.cash + ledger.value
            below = equity < ledger.maintenance
            params = ledger.state.params
            ladder = params.dynamic if params is not None else None
            search_ppm = _PPM
            if ladder is not None:
                search_ppm = ladder.search_level_ppm
                called = equity * _PPM < search_ppm * ledger.maintenance
                if called != ledger.margin_call:
                    ledger.margin_call = called
                    self._events.append(
                        MarginCall(
                            -1,
                            ledger.account,
                            ledger.underlying,
                            equity,
                            ledger.maintenance,
                            called,
                        )
                    )
            if position >= touched and not below and ledger.positions and not ledger.portfolio:
                self._prove_safe(ledger, search_ppm)
            else:
                ledger.safe_until_path = -1
            if below == ledger.in_liquidation:
                continue
            changed = True
            ledger.in_liquidation = below
            if below:
                self._cancel_ledger_orders(ledger)
                self.liquidation_queue.append(ledger)
                self._events.append(
                    LiquidationQueued(
                        -1, ledger.account, ledger.underlying, ledger.equity, ledger.maintenance
                    )
                )
            else:
                self.liquidation_queue.remove(ledger)
                self._events.append(
                    LiquidationQueueLeft(
                        -1, ledger.account, ledger.underlying, ledger.equity, ledger.maintenance
                    )
                )
        if changed or self.liquidation_queue:
            self.liquidation_queue.sort(key=_under_water)

    def _stress(self, transactions: int) -> None:
        """Stress mode per underlying, decided after the liquidation slot: on while it has a
        backlog (queued sub-ledgers holding positions) or an open breaker on a known index;
        then its takers share ``stress_taker_share_ppm`` of this block's transactions
        (``CEIL``) and may only reduce risk. A change is a :class:`StressMode` event."""
        backlog: dict[str, int] = {}
        for ledger in self.liquidation_queue:
            if ledger.positions:
                backlog[ledger.underlying] = backlog.get(ledger.underlying, 0) + 1
        for state in self.underlyings.values():
            params = state.params
            lane = params.liquidation if params is not None else None
            if lane is None:
                continue
            oracle = state.oracle
            breaker = oracle is not None and oracle.breaker_open and oracle.index is not None
            count = backlog.get(state.name, 0)
            active = breaker or count > 0
            state.stress_takers = 0
            if active:
                self._stress_cap = -(-transactions * lane.stress_taker_share_ppm // _PPM)
            if active != state.stressed:
                state.stressed = active
                self._events.append(
                    StressMode(-1, state.name, active, count, breaker, lane.stress_taker_share_ppm)
                )

    def _bid(self, tx: LiquidationBid, index: int) -> None:
        """A keeper's bid in an open liquidation auction: any price that beats the best."""
        self._check_account(tx.account)
        auction = self.keeper_auctions.get(tx.auction_id)
        if auction is None or auction.ends_ns <= self.timestamp_ns:
            raise _Refused(
                RejectCode.AUCTION_NOT_FOUND, f"no liquidation auction {tx.auction_id} is open"
            )
        if tx.account == auction.account:
            raise _Refused(
                RejectCode.NOT_AUTHORIZED, "a sub-ledger may not bid for its own position"
            )
        if not 0 < tx.price_ticks <= self._max_price_ticks:
            raise _Refused(
                RejectCode.PRICE_OUT_OF_RANGE,
                f"price {tx.price_ticks} ticks; from 1 to {self._max_price_ticks}",
            )
        if not better_bid(auction.side, tx.price_ticks, auction.best_price_ticks):
            raise _Refused(
                RejectCode.BID_NOT_BETTER,
                f"auction {tx.auction_id}'s best is {auction.best_price_ticks} ticks",
            )
        auction.best_bidder = tx.account
        auction.best_price_ticks = tx.price_ticks
        self._events.append(LiquidationBidPlaced(index, tx.auction_id, tx.account, tx.price_ticks))

    # -- trading modes: long-block and price-monitoring auctions -----------------------------

    def _trading_modes(self, gap_ns: int) -> None:
        """At the start of a block, for every market with auctions on: a long gap since the
        last block starts (or lengthens) a call auction; an auction whose time is up ends,
        uncrossing at one price, or (price monitoring, once) is extended; then this block's
        price-monitoring band of each continuous market, from its trade history."""
        now = self.timestamp_ns
        for market in self._monitored:
            mode = market.auction
            params = market.state.params
            book = self.books.get(market.name)
            if mode is None or params is None or params.auctions is None or book is None:
                continue  # an expired option awaiting settlement has no book
            if market.halted:
                continue  # no uncrossing; its mode and band wait for the resume
            rules = params.auctions
            transition = on_block(mode, now, gap_ns, rules)
            if transition is not None:
                self._transition(market, transition)
            history = market.history
            if market.in_auction and auction_due(mode, now) and history is not None:
                clearing = auction.clearing_price(book)
                indicative = None if clearing is None else clearing.price
                self._transition(market, on_auction_end(mode, indicative, history, now, rules))
            self._price_band(market)

    def _transition(self, market: Market, transition: Transition) -> None:
        """Apply a trading-mode change, say why (market data), and uncross an ending auction."""
        mode = market.auction
        invariant(mode is not None, f"{market.name} has no trading mode")
        if mode is None:
            return
        apply_transition(mode, transition)
        ended = transition.kind is TransitionKind.AUCTION_ENDED
        self._events.append(
            MarketAuction(
                -1,
                market.name,
                transition.kind.value,
                transition.reason.value,
                transition.ends_ns,
                transition.extended,
                transition.gap_ns,
                transition.horizon_ns,
                transition.band_ppm,
                transition.reference_ticks,
                transition.price_ticks,
            )
        )
        market.in_auction = not ended
        if not ended:
            market.band_low_ticks, market.band_high_ticks = 0, _BAND_OPEN
            return
        now = self.timestamp_ns
        before = market.last_trade_ns
        auction.run(self.books[market.name], self._events, _AuctionHooks(self, market))
        history = market.history
        if history is not None and before != now and market.last_trade_ns == now:
            history.reset(now, market.last_trade_ticks)  # the bands restart from the uncross

    def _price_band(self, market: Market) -> None:
        """This block's band: inside every (horizon, band) pair around the price of that
        horizon ago; wide open during an auction, for batch markets and without history."""
        market.band_low_ticks, market.band_high_ticks = 0, _BAND_OPEN
        params = market.state.params
        history = market.history
        if (
            market.in_auction
            or self.books[market.name].batch
            or history is None
            or not len(history)
            or params is None
            or params.auctions is None
        ):
            return
        now = self.timestamp_ns
        low, high = 0, _BAND_OPEN
        for horizon_ns, band_ppm in params.auctions.price_monitoring_bands:
            reference = history.reference(now, horizon_ns)
            if reference is None:
                return
            low = max(low, -(-reference * (_PPM - band_ppm) // _PPM))
            high = min(high, reference * (_PPM + band_ppm) // _PPM)
        market.band_low_ticks, market.band_high_ticks = low, high

    def _price_monitoring_auction(self, market: Market, price: int) -> None:
        """A continuous fill at ``price`` would leave the band: the market calls an auction."""
        mode, history, params = market.auction, market.history, market.state.params
        invariant(
            mode is not None and history is not None and params is not None,
            f"{market.name}: only a monitored market has a band",
        )
        if mode is None or history is None or params is None or params.auctions is None:
            return
        transition = on_trade_attempt(mode, price, history, self.timestamp_ns, params.auctions)
        invariant(transition is not None, f"{market.name}: {price} is outside its band")
        if transition is not None:
            self._transition(market, transition)

    def _record_trades(self) -> None:
        """End of block: the last price of every monitored market that traded joins its
        history (one sample per block)."""
        now = self.timestamp_ns
        for market in self._monitored:
            history = market.history
            if history is not None and market.last_trade_ns == now:
                history.record(now, market.last_trade_ticks)

    def _prove_safe(self, ledger: SubLedger, level_ppm: int) -> None:
        """How far its underlying's marks may travel before a healthy standard-margin sub-ledger
        must be looked at again: how long it stays above ``level_ppm`` of its maintenance (the
        ladder's search level, or maintenance itself). Per lot and per unit of path (ppm of the
        index per lot, which a step bounds for the index and every mark), equity moves by at
        most the mark's move, and maintenance by at most the index's (7.5% of it, or a perp's
        rate) plus the mark's: ``1 + 2 x level`` times the path on ``|position| x index per
        lot``, and 10% more for the index per lot itself drifting over a band of at most
        :data:`MAX_SAFE_PATH_PPM`. Within the band the sub-ledger cannot cross the level, so
        skipping it changes nothing; touched sub-ledgers, those in the queue and portfolio
        margin are always checked."""
        lots_value = 0
        for exposure in ledger.exposures.values():
            position = exposure.position
            if position:
                lots = position if position > 0 else -position
                lots_value += lots * exposure.market.index_per_lot
        sensitivity = -(-lots_value * (_PPM + 2 * level_ppm) * 11 // (10 * _PPM))
        excess = ledger.cash + ledger.value - (-(-level_ppm * ledger.maintenance // _PPM))
        if sensitivity <= 0 or excess < 0:
            ledger.safe_until_path = -1
            return
        band = excess * _PPM // sensitivity
        ledger.safe_until_path = ledger.state.mark_path_ppm + min(band, MAX_SAFE_PATH_PPM)

    def _cancel_ledger_orders(self, ledger: SubLedger) -> None:
        mine = self.accounts[ledger.account]
        for order in list(mine.orders.values()):
            if order.exposure.ledger is ledger:
                self._cancel_order(
                    self.books[order.instrument], order, -1, CancelReason.LIQUIDATION
                )

    # -- views -------------------------------------------------------------------------------

    def open_orders(self, account: str) -> list[Order]:
        """The account's open orders, oldest first."""
        mine = self.accounts.get(account)
        return [] if mine is None else list(mine.orders.values())

    # -- queries -----------------------------------------------------------------------------

    def what_if(self, tx: PlaceOrder) -> WhatIfMargin:
        """The initial and maintenance margin (and reserve and free collateral) an order would
        leave its sub-ledger with, resting or filled, before it is placed; changes no state (it
        brings cached margin up to date, which is not state). Raises :class:`Rejection` for an
        unknown instrument or a venue without margin."""
        market = self.markets.get(tx.instrument)
        if market is None:
            raise Rejection(RejectCode.UNKNOWN_INSTRUMENT, f"{tx.instrument} is not listed")
        margin = self.margin
        if margin is None:
            raise Rejection(RejectCode.INVALID_ORDER, "this venue runs without margin")
        side, size = tx.side, tx.size_lots
        price = tx.price_ticks
        if tx.order_type == _MARKET:
            price = self._market_limit(self.books[tx.instrument], side)
        value = price * size * market.value_per_tick_lot
        loss = max((price * market.value_per_tick_lot - market.mark_per_lot) * side, 0) * size
        fee = -(-value * market.taker_fee_ppm // _PPM) if not tx.post_only else 0
        ledger = self.get_ledger(tx.account, market.underlying)
        if ledger is None:
            ledger = SubLedger(account=tx.account, underlying=market.underlying, state=market.state)
        else:
            self._current(ledger)
        exposure = ledger.exposures.get(market.name)
        if exposure is None:
            exposure = Exposure(ledger=ledger, market=market)
        equity = ledger.cash + ledger.value
        initial, maintenance, reserve = ledger.initial, ledger.maintenance, ledger.reserve
        resting = margin.requirement(exposure, side, size, value, loss)
        resting_initial = initial - exposure.initial + resting[0]
        resting_maintenance = maintenance - exposure.maintenance + resting[1]
        resting_reserve = reserve - exposure.reserve + resting[2]
        resting_free = equity - resting_initial - resting_reserve - fee
        filled = with_position(exposure, exposure.position + side * size)
        after = margin.requirement(filled)
        filled_equity = (
            equity
            - side * value
            - fee
            + (filled.position - exposure.position) * market.mark_per_lot
        )
        filled_initial = initial - exposure.initial + after[0]
        filled_reserve = reserve - exposure.reserve + after[2]
        position = exposure.position
        reduces = (position > 0 and side < 0 and size <= position) or (
            position < 0 and side > 0 and size <= -position
        )
        return WhatIfMargin(
            instrument=market.name,
            underlying=market.underlying,
            equity=equity,
            initial=initial,
            maintenance=maintenance,
            reserve=reserve,
            resting_initial=resting_initial,
            resting_maintenance=resting_maintenance,
            resting_reserve=resting_reserve,
            resting_free_collateral=resting_free,
            filled_equity=filled_equity,
            filled_initial=filled_initial,
            filled_maintenance=maintenance - exposure.maintenance + after[1],
            filled_reserve=filled_reserve,
            filled_free_collateral=filled_equity - filled_initial - filled_reserve,
            accepted=resting_free >= 0 or reduces or tx.reduce_only,
        )

    # -- the state commitment ----------------------------------------------------------------

    def state_root(self, rest_hash: bytes | None = None) -> bytes:
        """The commitment to the whole state as of the last block (layout in
        :mod:`~strikechain.engine.commitment`): the ledger tree over the system accounts' leaf
        and every sub-ledger that ever moved money or positions (:meth:`ledger_root`), hashed
        with the digest of everything else (:func:`~strikechain.engine.snapshot.rest_bytes`).

        Asked for every N blocks by the driver, and on demand.

        ``rest_hash``: the Keccak-256 of :func:`~strikechain.engine.snapshot.rest_bytes` of
        this very state, taken by the caller."""
        from strikechain.engine.snapshot import rest_bytes  # snapshot imports this module

        tree_root = self.ledger_root()
        if rest_hash is None:
            rest_hash = keccak256(rest_bytes(self))
        return self.combine_root(tree_root, rest_hash)

    def ledger_root(self) -> bytes:
        """The ledger tree's root as of the last block: the first half of :meth:`state_root`,
        for a caller that takes the rest's digest later (the live node: it takes the rest
        between two blocks and encodes and hashes it while later blocks go on, then
        :meth:`combine_root`).

        Only leaves that changed since the last call are rehashed: sub-ledgers whose money or
        positions moved, and every holder on an underlying whose marks moved (their exit
        values moved with the marks). The first call (and the first after a restore) builds
        the tree from every leaf."""
        tree = self._ledger_tree
        stale: list[SubLedger]
        if tree is None:
            tree = self._ledger_tree = LedgerTree()
            stale = sorted(
                (
                    ledger
                    for mine in self.accounts.values()
                    for ledger in mine.ledgers.values()
                    if ledger.leaf_index
                ),
                key=_leaf_index,
            )
            for state in self.underlyings.values():
                state.committed_epoch = state.epoch
        else:
            stale = self._stale_leaves
            for state in self.underlyings.values():
                if state.committed_epoch != state.epoch:
                    state.committed_epoch = state.epoch
                    for ledger in state.holders.values():
                        if not ledger.leaf_stale:
                            ledger.leaf_stale = True
                            stale.append(ledger)
        items = [(0, system_leaf(self.fee_pool, self.insurance_fund, 0, self.dust))]
        for ledger in stale:
            ledger.leaf_stale = False
            items.append((ledger.leaf_index, ledger_leaf(ledger)))
        self._stale_leaves = []
        tree.update(items)
        return tree.tree_root()

    def combine_root(self, tree_root: bytes, rest_hash: bytes) -> bytes:
        """The state root of a :meth:`ledger_root` and the rest's digest taken with it (the
        same state). :meth:`ledger_proof` answers against it from here on, unless the tree has
        moved on since that :meth:`ledger_root` (a later root's digest is then the one)."""
        tree = self._ledger_tree
        if tree is not None and tree.tree_root() == tree_root:
            self._rest_hash = rest_hash
        return commitment_root(tree_root, rest_hash)

    def ledger_proof(self, account: str, underlying: str) -> tuple[int, list[bytes], bytes]:
        """``(leaf index, sibling hashes from the leaf up, rest hash)`` for a sub-ledger
        against the last :meth:`state_root` (call it right after; its leaf data is
        :func:`~strikechain.engine.commitment.ledger_leaf` of the sub-ledger then)."""
        ledger = self.get_ledger(account, underlying)
        tree = self._ledger_tree
        if ledger is None or not ledger.leaf_index or tree is None:
            raise Rejection(
                RejectCode.UNKNOWN_UNDERLYING, f"{account} has no committed {underlying} leaf"
            )
        return ledger.leaf_index, tree.proof(ledger.leaf_index), self._rest_hash

    def get_ledger(self, account: str, underlying: str) -> SubLedger | None:
        """The account's sub-ledger on ``underlying`` (values current as of the last block)."""
        mine = self.accounts.get(account)
        ledger = None if mine is None else mine.ledgers.get(underlying)
        if ledger is not None and self.margin is not None:
            self._current(ledger)
        return ledger

    def position(self, account: str, instrument: str) -> int:
        """Lots held (negative: short); 0 if none."""
        market = self.markets.get(instrument)
        if market is None:
            return 0
        exposure = market.holders.get(account)
        return 0 if exposure is None else exposure.position

    def total_cash(self) -> int:
        return sum(
            ledger.cash for mine in self.accounts.values() for ledger in mine.ledgers.values()
        )

    def check(self) -> None:
        """Verify every invariant of the books, the indexes and the money.

        Tests and seeded runs call this after every block; a failure is a bug.
        """
        self._check_books()
        self._check_money()
        for market in self.markets.values():
            self._check_market(market)
        for mine in self.accounts.values():
            for ledger in mine.ledgers.values():
                self._check_ledger(mine, ledger)
        queued = [ledger for ledger in self.liquidation_queue if ledger.in_liquidation]
        invariant(len(queued) == len(self.liquidation_queue), "a queue member is not flagged")
        flagged = sum(
            ledger.in_liquidation
            for mine in self.accounts.values()
            for ledger in mine.ledgers.values()
        )
        invariant(flagged == len(self.liquidation_queue), "a flagged sub-ledger is not queued")
        invariant(
            self.liquidation_queue == sorted(self.liquidation_queue, key=_under_water),
            "the liquidation queue is out of order",
        )
        auctioned = {(a.account, a.instrument): i for i, a in self.keeper_auctions.items()}
        invariant(auctioned == self._auction_of, "the keeper auctions' index is off")
        for market in self.markets.values():
            mode = market.auction
            invariant(
                (mode is not None and mode.mode.value == "AUCTION") == market.in_auction,
                f"{market.name}: the trading mode and its mirror disagree",
            )
        invariant(
            self._monitored == [m for m in self.markets.values() if m.auction is not None],
            "the monitored markets are off",
        )
        invariant(
            len(self.pending_changes) <= self.limits.max_pending_parameter_changes
            and all(
                change_id == change.change_id and change_id < self.next_change_id
                for change_id, change in self.pending_changes.items()
            ),
            "the pending parameter changes are off",
        )
        for market in self.markets.values():
            invariant(market.halted or not market.halt_reason, f"{market.name}: a stray reason")

    def _check_books(self) -> None:
        indexed = 0
        for book in self.books.values():
            book.check(uncrossed=not self.markets[book.name].in_auction)
            for book_side in (book.bids, book.asks):
                orders = [order for level in book_side.levels.values() for order in level.values()]
                indexed += len(orders)
                self._check_indexed(orders)
        invariant(indexed == len(self.orders), "the order index holds orders off the books")
        by_account = sum(len(mine.orders) for mine in self.accounts.values())
        invariant(by_account == indexed, "the per-account index disagrees with the books")
        client_ids = sum(len(mine.client_ids) for mine in self.accounts.values())
        invariant(client_ids <= indexed, "client ids outnumber open orders")

    def _check_money(self) -> None:
        """Money is conserved: all cash, the fee pool, the insurance fund and the dust account
        add up to deposits minus withdrawals."""
        held = self.total_cash() + self.fee_pool + self.insurance_fund + self.dust
        invariant(
            held == self.deposits_total - self.withdrawals_total,
            f"money not conserved: {held} held, "
            f"{self.deposits_total - self.withdrawals_total} deposited net",
        )
        invariant(self.dust >= 0 and self.fee_pool >= 0, "the dust account and fee pool are >= 0")

    def _check_market(self, market: Market) -> None:
        invariant(
            market.long_lots == market.short_lots,
            f"{market.name}: long open interest {market.long_lots} != short {market.short_lots}",
        )
        longs = sum(e.position for e in market.holders.values() if e.position > 0)
        shorts = -sum(e.position for e in market.holders.values() if e.position < 0)
        invariant(
            longs == market.long_lots and shorts == market.short_lots,
            f"{market.name}: open interest disagrees with the positions",
        )
        for account, exposure in market.holders.items():
            invariant(
                exposure.position != 0 and exposure.ledger.account == account,
                f"{market.name}: holder {account} is flat or misfiled",
            )

    def _check_ledger(self, mine: Account, ledger: SubLedger) -> None:
        """Aggregates equal the open orders; totals equal their exposures; at the current marks,
        cached requirements equal a fresh computation; below maintenance iff queued."""
        orders: dict[str, list[int]] = {}
        for order in mine.orders.values():
            if order.exposure.ledger is ledger and not order.reduce_only:
                sums = orders.setdefault(order.instrument, [0, 0, 0, 0, 0, 0])
                value = order.price * order.remaining * order.exposure.market.value_per_tick_lot
                offset = 0 if order.side == BUY else 3
                sums[offset] += order.remaining
                sums[offset + 1] += value
                sums[offset + 2] += order.loss_per_lot * order.remaining
        positions = 0
        for name, exposure in ledger.exposures.items():
            expected = orders.get(name, [0, 0, 0, 0, 0, 0])
            actual = [
                exposure.buy_lots,
                exposure.buy_value,
                exposure.buy_loss,
                exposure.sell_lots,
                exposure.sell_value,
                exposure.sell_loss,
            ]
            if self.margin is not None:  # without margin there is nothing to reserve
                invariant(
                    actual == expected, f"{ledger.account} {name}: reserved {actual} != {expected}"
                )
            positions += exposure.position != 0
            invariant(
                (exposure.market.holders.get(ledger.account) is exposure)
                == bool(exposure.position),
                f"{ledger.account} {name}: holder index disagrees with the position",
            )
        invariant(positions == ledger.positions, f"{ledger.account}: position count is off")
        invariant(
            ledger.basis == sum(e.basis for e in ledger.exposures.values()),
            f"{ledger.account} {ledger.underlying}: basis total is off",
        )
        margin = self.margin
        if margin is None:
            return
        cached_totals = [0, 0, 0, 0]
        fresh_value = fresh_maintenance = pending = moved = 0
        current = ledger.epoch == ledger.state.epoch
        flagged = {id(e) for e in ledger.dirty if e.dirty}
        for exposure in ledger.exposures.values():
            initial, maintenance, reserve = margin.requirement(exposure)
            value = exposure.position * exposure.market.mark_per_lot
            cached = [exposure.value, exposure.initial, exposure.maintenance, exposure.reserve]
            name = f"{ledger.account} {exposure.market.name}"
            invariant(not exposure.dirty or id(exposure) in flagged, f"{name}: flag not listed")
            invariant(exposure.dirty or not (exposure.moved or exposure.pending), f"{name}: flags")
            if current and not exposure.moved:
                invariant(
                    [value, maintenance] == [exposure.value, exposure.maintenance],
                    f"{name}: cached value or maintenance is stale without a moved flag",
                )
                invariant(
                    initial + reserve <= exposure.initial + exposure.reserve + exposure.pending,
                    f"{name}: cached requirement {exposure.initial + exposure.reserve} plus "
                    f"pending {exposure.pending} is below the fresh {initial + reserve}",
                )
                if not exposure.dirty:
                    invariant(
                        [initial, reserve] == [exposure.initial, exposure.reserve],
                        f"{name}: cached requirement is stale without a dirty flag",
                    )
            cached_totals = [a + b for a, b in zip(cached_totals, cached, strict=True)]
            fresh_value += value
            fresh_maintenance += maintenance
            pending += exposure.pending
            moved += exposure.moved
        if ledger.portfolio:  # initial and maintenance are the portfolio model's, not sums
            fresh_initial, fresh_maintenance = self._portfolio_requirement(ledger)
            cached_totals[1:3] = [fresh_initial, fresh_maintenance]
            if current and not moved:
                invariant(
                    [ledger.initial, ledger.maintenance] == [fresh_initial, fresh_maintenance],
                    f"{ledger.account} {ledger.underlying}: portfolio margin is stale",
                )
        if current:
            if not (ledger.portfolio and moved):  # a portfolio is recomputed when it is read
                invariant(
                    cached_totals
                    == [ledger.value, ledger.initial, ledger.maintenance, ledger.reserve],
                    f"{ledger.account} {ledger.underlying}: totals disagree with their exposures",
                )
            invariant(
                [pending, moved] == [ledger.pending, ledger.moved],
                f"{ledger.account} {ledger.underlying}: pending or moved totals are off",
            )
        below = ledger.cash + fresh_value < fresh_maintenance
        invariant(
            below == ledger.in_liquidation,
            f"{ledger.account} {ledger.underlying}: below maintenance is "
            f"{below} but queued is {ledger.in_liquidation}",
        )
        params = ledger.state.params
        if params is not None and params.dynamic is not None:
            called = (ledger.cash + fresh_value) * _PPM < (
                params.dynamic.search_level_ppm * fresh_maintenance
            )
            invariant(
                called == ledger.margin_call,
                f"{ledger.account} {ledger.underlying}: below the search level is {called} but "
                f"flagged is {ledger.margin_call}",
            )

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


def _leaf_index(ledger: SubLedger) -> int:
    return ledger.leaf_index


_RATIO_SHIFT = 192
"""``equity / maintenance`` is compared as ``FLOOR(equity x 2**192 / maintenance)``: for
maintenance below 2**96 minor units, two different ratios differ by more than 2**-192, so the
integer keys order exactly as the fractions do (and equal ratios give equal keys), without a
``Fraction`` per sub-ledger in the sort of a large queue."""


def _under_water(ledger: SubLedger) -> tuple[int, int, str, str]:
    """Queue order: most under water first (equity over maintenance, lowest first; a sub-ledger
    with no maintenance requirement but negative equity first of all), then by name."""
    equity, maintenance = ledger.cash + ledger.value, ledger.maintenance
    if maintenance <= 0:
        return (0, equity, ledger.account, ledger.underlying)
    invariant(maintenance >> 96 == 0, "maintenance margin below 2**96 minor units")
    return (1, (equity << _RATIO_SHIFT) // maintenance, ledger.account, ledger.underlying)


class _AuctionHooks:
    """What a batch auction needs of the engine (see :class:`auction.Hooks`)."""

    __slots__ = ("engine", "market")

    def __init__(self, engine: Engine, market: Market) -> None:
        self.engine = engine
        self.market = market

    def allowed(self, order: Order, lots: int) -> int:
        return self.engine._reducible(order, lots) if order.reduce_only else lots

    def fill(self, maker: Order, taker: Order, price: int, lots: int) -> None:
        self.engine._fill(self.market, maker, taker, price, lots, -1, True)

    def forget(self, order: Order) -> None:
        self.engine._forget(order)

    def cancel(self, book: Book, order: Order, reason: CancelReason) -> None:
        self.engine._cancel_order(book, order, -1, reason)
