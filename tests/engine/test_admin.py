"""The operator's actions on a running venue: halting and resuming a market, and parameter
changes that come into force after a timelock, announced in the block's events. Both are
transactions: in the block log, replayed, in snapshots and under the state root. ``Venue.apply``
runs ``Engine.check`` after every block."""

from __future__ import annotations

import msgspec

from strikechain.engine import codec
from strikechain.engine.auction_triggers import AuctionParams
from strikechain.engine.calendar import expiry_ns
from strikechain.engine.codes import RejectCode
from strikechain.engine.engine import Engine
from strikechain.engine.events import (
    BackstopTaken,
    BlockResult,
    Deleveraged,
    Event,
    Fill,
    FundingPaid,
    LiquidationOrder,
    LiquidationQueued,
    MarketAuction,
    MarketStatusChanged,
    OrderCancelled,
    ParameterChangeApplied,
    ParameterChangeCancelled,
    ParameterChangeScheduled,
)
from strikechain.engine.instruments import Instrument, OptionType
from strikechain.engine.limits import Limits
from strikechain.engine.liquidation import LiquidationParams
from strikechain.engine.oracle import OracleParams, VolSlice
from strikechain.engine.params import FeeParams, MarginParams, UnderlyingParams, VenueConfig
from strikechain.engine.snapshot import (
    Snapshot,
    capture,
    decode_snapshot,
    encode_snapshot,
    restore,
)
from strikechain.engine.txs import (
    Amend,
    Block,
    Cancel,
    CancelAll,
    CancelParameterChange,
    PostOnly,
    ScheduleParameterChange,
    SetMarketStatus,
    Transaction,
)
from tests.engine.venue import (
    BTC_PERP,
    BTC_PRICE,
    ETH_PERP,
    HOUR,
    MINUTE,
    OPERATOR,
    REPORTERS,
    SECOND,
    TICKS_AT_100K,
    USDC,
    Venue,
    btc_option,
    btc_perp,
    config,
    eth_perp,
    of_type,
    params,
    rejections,
)

MAKER: dict[str, object] = {"post_only": PostOnly.REJECT}
TIMELOCK = HOUR
NEW_FEES = FeeParams(perp_maker_ppm=0, perp_taker_ppm=1_000)
"""The default perp taker fee is 500 ppm (5 bp); the change doubles it."""
NEW_MARGIN = MarginParams(perp_initial_ppm=100_000, perp_maintenance_ppm=60_000)
"""Twice the default perp rates (5% and 3%)."""


class Recorded(Venue):
    """The harness, keeping every block it applied and its result: the block log."""

    def __init__(
        self,
        venue: VenueConfig,
        limits: Limits | None = None,
        instruments: tuple[Instrument, ...] | None = None,
    ) -> None:
        self.log: list[tuple[Block, BlockResult]] = []
        super().__init__(venue, limits=limits, instruments=instruments)

    def apply(
        self, *transactions: Transaction, dt: int = SECOND, report: bool = True
    ) -> BlockResult:
        block = next_block(self, *(transactions), dt=dt, report=report)
        result = self.engine.apply(block)
        assert not result.rejected, result.reason
        self.engine.check()
        self.log.append((block, result))
        return result


def venue_config(**overrides: object) -> VenueConfig:
    return msgspec.structs.replace(config(**overrides), parameter_timelock_ns=TIMELOCK)


def funded(venue: VenueConfig | None = None, limits: Limits | None = None) -> Recorded:
    recorded = Recorded(venue or venue_config(), limits=limits)
    for who in ("maker", "taker", "other"):
        recorded.deposit(who, 1_000_000 * USDC)
    return recorded


def halt(instrument: str = BTC_PERP, reason: str = "feed incident") -> SetMarketStatus:
    return SetMarketStatus(account=OPERATOR, instrument=instrument, halted=True, reason=reason)


def resume(instrument: str = BTC_PERP) -> SetMarketStatus:
    return SetMarketStatus(account=OPERATOR, instrument=instrument, halted=False)


def schedule(
    effective_at_ns: int, new: UnderlyingParams | None = None, account: str = OPERATOR
) -> ScheduleParameterChange:
    return ScheduleParameterChange(
        account=account,
        underlying="BTC",
        params=new if new is not None else params(fees=NEW_FEES, margin=NEW_MARGIN),
        effective_at_ns=effective_at_ns,
    )


def next_block(
    venue: Venue, *transactions: Transaction, dt: int = SECOND, report: bool = True
) -> Block:
    """The harness's next block (fresh reports first), not applied."""
    venue.now += dt
    return Block(
        height=venue.engine.height + 1,
        timestamp_ns=venue.now,
        transactions=[*(venue.reports() if report else []), *transactions],
    )


def book_orders(venue: Venue, instrument: str = BTC_PERP) -> list[tuple[int, int, int]]:
    return sorted(
        (order.order_id, order.price, order.remaining)
        for order in venue.engine.books[instrument].orders()
    )


def maintenance_at(venue: Venue, lots: int) -> int:
    """The perp rule: the market's maintenance rate of the notional at the mark, CEIL."""
    market = venue.engine.markets[BTC_PERP]
    return -(-lots * market.mark_per_lot * market.maintenance_ppm // 1_000_000)


# --- halts --------------------------------------------------------------------------------------


def test_a_halted_market_takes_cancels_only_keeps_its_book_and_resumes() -> None:
    venue = funded()
    venue.place("maker", -1, TICKS_AT_100K, 10, **MAKER)
    venue.place("maker", 1, TICKS_AT_100K - 10, 10, **MAKER)
    ask, bid = (order.order_id for order in venue.engine.open_orders("maker"))
    before = book_orders(venue)

    events = venue.events(halt())
    assert of_type(events, MarketStatusChanged) == [
        MarketStatusChanged(0 + len(venue.reports()), BTC_PERP, True, "feed incident")
    ]
    market = venue.engine.markets[BTC_PERP]
    assert (market.halted, market.halt_reason) == (True, "feed incident")

    refused = venue.events(
        venue.order("taker", 1, TICKS_AT_100K, 5),  # would cross
        venue.order("maker", -1, TICKS_AT_100K + 2, 5, post_only=PostOnly.REJECT),
        Amend(account="maker", order_id=ask, price_ticks=TICKS_AT_100K + 4, size_lots=10),
        Amend(account="maker", order_id=bid, price_ticks=TICKS_AT_100K - 10, size_lots=5),
    )
    assert rejections(refused) == [RejectCode.MARKET_HALTED] * 4
    assert "feed incident" in next(e.message for e in refused if hasattr(e, "message"))
    assert not of_type(refused, Fill)
    assert book_orders(venue) == before  # resting orders stay, untouched

    # another market trades on; cancels are accepted on the halted one
    venue.deposit("maker", 100_000 * USDC, "ETH")
    assert not rejections(venue.place("maker", -1, 80_000, 1, instrument=ETH_PERP, **MAKER))
    cancelled = venue.events(Cancel(account="maker", order_id=bid))
    assert [(c.order_id, c.reason) for c in of_type(cancelled, OrderCancelled)] == [
        (bid, "REQUESTED")
    ]
    assert book_orders(venue) == [entry for entry in before if entry[0] != bid]

    events = venue.events(resume())
    assert of_type(events, MarketStatusChanged)[0].halted is False
    assert (market.halted, market.halt_reason) == (False, "")
    fills = of_type(venue.place("taker", 1, TICKS_AT_100K, 4), Fill)
    assert [(f.maker_order_id, f.size_lots) for f in fills] == [(ask, 4)]


def test_cancel_all_works_on_a_halted_market() -> None:
    venue = funded()
    venue.place("maker", -1, TICKS_AT_100K, 10, **MAKER)
    venue.place("maker", -1, TICKS_AT_100K + 2, 10, **MAKER)
    venue.events(halt())
    events = venue.events(CancelAll(account="maker", instrument=BTC_PERP))
    assert len(of_type(events, OrderCancelled)) == 2
    assert not list(venue.engine.books[BTC_PERP].orders())
    assert venue.engine.markets[BTC_PERP].halted


def test_a_halt_in_the_state_lane_comes_before_the_blocks_orders() -> None:
    venue = funded()
    venue.place("maker", -1, TICKS_AT_100K, 10, **MAKER)
    # the order is first in the block, the halt last: the STATE lane still goes first
    events = venue.events(venue.order("taker", 1, TICKS_AT_100K, 5), halt())
    assert rejections(events) == [RejectCode.MARKET_HALTED]
    assert not of_type(events, Fill)


def test_only_the_operator_halts_schedules_and_cancels() -> None:
    venue = funded()
    venue.events(schedule(venue.now + SECOND + TIMELOCK))
    engine = venue.engine
    pending = dict(engine.pending_changes)
    events = venue.events(
        SetMarketStatus(account="maker", instrument=BTC_PERP, halted=True),
        schedule(venue.now + SECOND + TIMELOCK, account="maker"),
        CancelParameterChange(account="maker", change_id=1),
    )
    assert rejections(events) == [RejectCode.NOT_AUTHORIZED] * 3
    assert not engine.markets[BTC_PERP].halted
    assert engine.pending_changes == pending
    assert engine.next_change_id == 2
    assert not [e for e in events if isinstance(e, MarketStatusChanged | ParameterChangeCancelled)]


def test_halting_an_unknown_market_or_with_an_overlong_reason_is_refused() -> None:
    venue = funded(limits=Limits(max_reason_length=8))
    events = venue.events(
        halt("BTC_USDC-NOPE", reason="nope"),
        halt(reason="far too long a reason"),
        halt(reason="short"),
    )
    assert rejections(events) == [RejectCode.UNKNOWN_INSTRUMENT, RejectCode.MESSAGE_TOO_LARGE]
    assert venue.engine.markets[BTC_PERP].halt_reason == "short"


def test_funding_still_runs_on_a_halted_market() -> None:
    venue = funded()
    above = TICKS_AT_100K * 101 // 100  # the book trades 1% over the index: longs pay
    venue.place("maker", -1, above, 10, **MAKER)
    venue.place("taker", 1, above, 10)
    venue.events(
        venue.order("maker", 1, above - 100, 5, post_only=PostOnly.REJECT),
        venue.order("maker", -1, above + 100, 5, post_only=PostOnly.REJECT),
    )
    venue.events(halt())
    events = venue.events(dt=HOUR)
    [paid] = [e for e in of_type(events, FundingPaid) if e.instrument == BTC_PERP]
    assert paid.rate_ppb > 0
    assert venue.engine.markets[BTC_PERP].halted


def test_the_liquidation_lane_does_not_trade_on_a_halted_market() -> None:
    venue = Venue(venue_config(liquidation=LiquidationParams(step_share_ppm_max=1_000_000)))
    venue.deposit("carol", 700 * USDC)
    venue.deposit("bob", 1_000_000 * USDC)
    venue.deposit(venue.engine.venue.backstop, 1_000_000 * USDC)
    venue.place("bob", -1, TICKS_AT_100K, 100, **MAKER)
    venue.place("carol", 1, TICKS_AT_100K, 100)
    venue.place("bob", 1, 189_800, 100, **MAKER)
    venue.prices["BTC"] = BTC_PRICE * 95 // 100
    assert of_type(venue.events(halt()), LiquidationQueued)
    for _ in range(3):
        events = venue.events()
        traded = LiquidationOrder | BackstopTaken | Deleveraged | Fill
        assert not [e for e in events if isinstance(e, traded)]
        assert venue.engine.position("carol", BTC_PERP) == 100
        assert venue.ledger("carol").in_liquidation
    events = venue.events(resume())
    [order] = of_type(events, LiquidationOrder)
    assert (order.account, order.filled_lots) == ("carol", 100)
    assert venue.engine.position("carol", BTC_PERP) == 0


# --- parameter changes --------------------------------------------------------------------------


def trade(venue: Venue, lots: int = 1) -> list[Event]:
    """The maker rests an ask, the taker lifts it: one fill (the events of both blocks)."""
    rested = venue.place("maker", -1, TICKS_AT_100K, lots, **MAKER)
    return rested + venue.place("taker", 1, TICKS_AT_100K, lots)


def test_a_timelocked_change_applies_exactly_at_its_block_and_not_before() -> None:
    venue = funded()
    trade(venue, 10)  # the taker holds 10 lots: its maintenance margin shows the rates
    effective = venue.now + SECOND + TIMELOCK  # the scheduling block's time plus the timelock
    events = venue.events(schedule(effective))
    [scheduled] = of_type(events, ParameterChangeScheduled)
    assert (scheduled.change_id, scheduled.underlying, scheduled.effective_at_ns) == (
        1,
        "BTC",
        effective,
    )
    assert (scheduled.params.fees, scheduled.params.margin) == (NEW_FEES, NEW_MARGIN)
    assert list(venue.engine.pending_changes) == [1]

    # the block at effective - 1 ns: the old parameters
    venue.place("maker", -1, TICKS_AT_100K, 2, **MAKER)
    taker = venue.order("taker", 1, TICKS_AT_100K, 1)
    events = venue.events(taker, dt=effective - 1 - venue.now)
    assert venue.now == effective - 1
    assert not of_type(events, ParameterChangeApplied)
    [fill] = of_type(events, Fill)
    assert (fill.taker_fee, fill.maker_fee) == (50_000, -10_000)  # 5 bp, 1 bp rebate of 100 USDC
    assert venue.engine.markets[BTC_PERP].maintenance_ppm == 30_000
    assert venue.ledger("taker").maintenance == maintenance_at(venue, 11)

    # the block at effective: the change applies first, before the block's transactions
    events = venue.events(taker, dt=1)
    assert venue.now == effective
    assert events[0] == ParameterChangeApplied(-1, 1, "BTC")
    [fill] = of_type(events, Fill)
    assert (fill.taker_fee, fill.maker_fee) == (100_000, 0)  # the new fees
    market = venue.engine.markets[BTC_PERP]
    assert (market.initial_ppm, market.maintenance_ppm) == (100_000, 60_000)
    assert venue.ledger("taker").maintenance == maintenance_at(venue, 12)
    assert not venue.engine.pending_changes
    assert venue.engine.underlyings["BTC"].params == scheduled.params
    assert venue.engine.markets[ETH_PERP].taker_fee_ppm == 500  # another underlying


def test_the_default_timelock_is_a_day_and_a_shorter_one_is_refused() -> None:
    assert VenueConfig().parameter_timelock_ns == 86_400 * 10**9
    venue = funded()
    events = venue.events(schedule(venue.now + SECOND + TIMELOCK - 1))
    assert rejections(events) == [RejectCode.TIMELOCK_TOO_SHORT]
    assert not venue.engine.pending_changes
    assert venue.engine.next_change_id == 1
    assert not rejections(venue.events(schedule(venue.now + SECOND + TIMELOCK)))


def test_a_cancelled_change_never_applies() -> None:
    venue = funded()
    venue.events(schedule(venue.now + SECOND + TIMELOCK))
    events = venue.events(CancelParameterChange(account=OPERATOR, change_id=1))
    assert of_type(events, ParameterChangeCancelled) == [
        ParameterChangeCancelled(len(venue.reports()), 1, "BTC")
    ]
    again = venue.events(CancelParameterChange(account=OPERATOR, change_id=1))
    assert rejections(again) == [RejectCode.UNKNOWN_CHANGE]
    venue.events(dt=TIMELOCK)
    events = trade(venue)
    assert not of_type(events, ParameterChangeApplied)
    assert of_type(events, Fill)[0].taker_fee == 50_000
    assert venue.engine.underlyings["BTC"].params == venue.engine.venue.underlyings["BTC"]


def test_pending_changes_are_bounded_and_the_underlying_must_exist() -> None:
    venue = funded(limits=Limits(max_pending_parameter_changes=2))
    later = venue.now + 10 * TIMELOCK
    events = venue.events(
        schedule(later),
        schedule(later + 1),
        schedule(later + 2),
        ScheduleParameterChange(
            account=OPERATOR, underlying="DOGE", params=params(), effective_at_ns=later
        ),
    )
    assert rejections(events) == [
        RejectCode.TOO_MANY_PENDING_CHANGES,
        RejectCode.UNKNOWN_UNDERLYING,
    ]
    assert list(venue.engine.pending_changes) == [1, 2]
    venue.events(CancelParameterChange(account=OPERATOR, change_id=1))
    assert not rejections(venue.events(schedule(later + 3)))
    assert list(venue.engine.pending_changes) == [2, 3]


def test_trading_mode_auctions_cannot_be_turned_on_or_off() -> None:
    venue = funded()
    events = venue.events(schedule(venue.now + 10 * TIMELOCK, params(auctions=AuctionParams())))
    assert rejections(events) == [RejectCode.INVALID_PARAMETER_CHANGE]
    venue = funded(venue_config(auctions=AuctionParams()))
    events = venue.events(schedule(venue.now + 10 * TIMELOCK, params(auctions=None)))
    assert rejections(events) == [RejectCode.INVALID_PARAMETER_CHANGE]
    smaller = AuctionParams(price_history_samples=2)  # their rules may change
    venue.events(schedule(venue.now + SECOND + TIMELOCK, params(auctions=smaller)))
    for _ in range(3):
        trade(venue)
    venue.events(dt=TIMELOCK)
    history = venue.engine.markets[BTC_PERP].history
    assert history is not None
    assert (history.capacity, len(history)) == (2, 2)


def test_changes_due_in_one_block_apply_by_time_then_id() -> None:
    venue = funded()
    base = venue.now + SECOND + TIMELOCK
    venue.events(
        schedule(base + 2, params(fees=FeeParams(perp_taker_ppm=900))),
        schedule(base + 1, params(fees=FeeParams(perp_taker_ppm=800))),
        schedule(base + 1, params(fees=NEW_FEES)),
    )
    events = venue.events(dt=base + 5 - venue.now)
    assert [e.change_id for e in of_type(events, ParameterChangeApplied)] == [2, 3, 1]
    assert venue.engine.markets[BTC_PERP].taker_fee_ppm == 900


def test_a_new_reporter_registry_applies_at_its_block() -> None:
    venue = funded()
    effective = venue.now + SECOND + TIMELOCK
    registry = OracleParams(reporters=REPORTERS[:2], quorum=2)
    venue.events(schedule(effective, msgspec.structs.replace(params(), oracle=registry)))
    events = venue.events(dt=effective - venue.now)  # reporter 2's report in this block too
    oracle = venue.engine.underlyings["BTC"].oracle
    assert oracle is not None
    assert oracle.params.reporters == REPORTERS[:2]
    assert oracle.get_report(REPORTERS[2]) is None
    assert rejections(events) == [RejectCode.UNKNOWN_REPORTER]
    assert not oracle.breaker_open  # the other two make the quorum of 2


def test_a_new_surface_grid_forgets_the_vol_nodes_of_the_old_one() -> None:
    expiry = expiry_ns(2026, 12, 25)
    call = btc_option(100_000, OptionType.CALL, expiry)  # at the money
    venue = Recorded(venue_config(), instruments=(btc_perp(), eth_perp(), call))
    venue.vols["BTC"] = (VolSlice(expiry_ns=expiry, vols_ppm=(600_000,) * 7),)
    venue.events()
    market = venue.engine.markets[call.name]
    assert market.mark_per_lot > 0  # time value, from the vol nodes
    grid = (-200_000, 0, 200_000)
    registry = OracleParams(reporters=REPORTERS, quorum=2, log_moneyness_ppm=grid)
    effective = venue.now + SECOND + TIMELOCK
    venue.events(schedule(effective, msgspec.structs.replace(params(), oracle=registry)))
    events = venue.events(dt=effective - venue.now)  # reports still on the old grid
    assert set(rejections(events)) == {RejectCode.INVALID_ORACLE_REPORT}
    oracle = venue.engine.underlyings["BTC"].oracle
    assert oracle is not None
    assert oracle.breaker_open  # no report kept: no quorum
    assert not oracle.vol_nodes
    assert market.mark_per_lot == 0  # intrinsic value
    venue.vols["BTC"] = (VolSlice(expiry_ns=expiry, vols_ppm=(600_000,) * 3),)
    assert not rejections(venue.events())
    assert not oracle.breaker_open
    assert market.mark_per_lot > 0


# --- snapshots and replay -----------------------------------------------------------------------


def operated(venue: Venue) -> None:
    """Every operator action, with trades around them: a change applied, one cancelled, one
    still pending, and a halted market at the end."""
    venue.events(
        venue.order("maker", 1, TICKS_AT_100K - 10, 5, post_only=PostOnly.REJECT),
        venue.order("maker", -1, TICKS_AT_100K, 5, post_only=PostOnly.REJECT),
    )
    venue.events(schedule(venue.now + SECOND + TIMELOCK, params(fees=NEW_FEES)))
    venue.events(schedule(venue.now + SECOND + TIMELOCK, params(margin=NEW_MARGIN)))
    venue.events(CancelParameterChange(account=OPERATOR, change_id=2))
    assert of_type(venue.events(dt=TIMELOCK), ParameterChangeApplied)
    venue.events(venue.order("taker", 1, TICKS_AT_100K, 2))
    venue.events(
        schedule(venue.now + SECOND + TIMELOCK, params(fees=NEW_FEES, margin=NEW_MARGIN)), halt()
    )


def test_snapshot_round_trip_with_pending_changes_and_a_halted_market() -> None:
    venue = funded()
    operated(venue)
    engine = venue.engine
    assert list(engine.pending_changes) == [3]
    assert engine.markets[BTC_PERP].halted
    assert engine.underlyings["BTC"].params != engine.venue.underlyings["BTC"]
    snapshot = capture(engine)
    assert [name for name, _ in snapshot.rest.underlying_params] == ["BTC"]
    data = encode_snapshot(snapshot)
    copy = restore(decode_snapshot(data), venue=engine.venue)
    copy.check()
    assert encode_snapshot(capture(copy)) == data
    assert copy.state_root() == engine.state_root()
    assert copy.underlyings["BTC"].params == engine.underlyings["BTC"].params
    assert copy.markets[BTC_PERP].halt_reason == "feed incident"
    assert copy.pending_changes == engine.pending_changes
    # the same blocks from here on: refused while halted, the pending change, the resume
    taker = venue.order("taker", 1, TICKS_AT_100K, 1)
    outcomes = []
    for transactions, dt in (((taker,), SECOND), ((), TIMELOCK), ((resume(), taker), SECOND)):
        block = next_block(venue, *transactions, dt=dt)
        result = engine.apply(block)
        assert copy.apply(block) == result
        engine.check()
        copy.check()
        assert copy.state_root() == engine.state_root()
        outcomes.append(result.events)
    assert rejections(outcomes[0]) == [RejectCode.MARKET_HALTED]
    assert of_type(outcomes[1], ParameterChangeApplied)
    assert of_type(outcomes[2], Fill)[0].taker_fee == 100_000  # the fees of change 1
    assert not engine.pending_changes
    assert engine.markets[BTC_PERP].maintenance_ppm == 60_000


def test_a_snapshot_from_before_operations_decodes_with_nothing_halted_or_pending() -> None:
    venue = funded()
    snapshot = capture(venue.engine)
    body = msgspec.msgpack.decode(encode_snapshot(snapshot)[4:])
    del body[2][-3:]  # RestState without pending_changes, next_change_id, underlying_params
    for market in body[2][13]:
        del market[-2:]  # MarketSnapshot without halted and halt_reason
    old = msgspec.msgpack.decode(msgspec.msgpack.encode(body), type=Snapshot)
    assert old == snapshot


def test_replaying_the_log_reproduces_every_event_and_root() -> None:
    venue = funded()
    operated(venue)
    venue.events(venue.order("taker", 1, TICKS_AT_100K, 1), dt=TIMELOCK)  # change 3 applies
    venue.events(resume())
    replica = Engine(Limits(), venue=venue.engine.venue)
    for block, result in venue.log:
        replayed = replica.apply(codec.decode_block(codec.encode_block(block)))
        assert replayed == result, f"block {block.height}"
    replica.check()
    assert replica.digest == venue.engine.digest
    assert replica.state_root() == venue.engine.state_root()
    assert capture(replica) == capture(venue.engine)


def test_a_halted_market_in_a_call_auction_uncrosses_only_after_the_resume() -> None:
    venue = funded(venue_config(auctions=AuctionParams(price_monitoring_bands=())))
    venue.place("maker", -1, TICKS_AT_100K, 5, **MAKER)
    started = of_type(venue.events(dt=11 * SECOND), MarketAuction)  # a long block
    assert {a.kind for a in started} == {"AUCTION_STARTED"}
    venue.place("taker", 1, TICKS_AT_100K, 5)  # rests: the book is crossed in the auction
    venue.events(halt())
    events = venue.events(dt=2 * MINUTE)  # the auction's minute is up, but the market is halted
    assert BTC_PERP not in {a.instrument for a in of_type(events, MarketAuction)}
    assert not of_type(events, Fill)
    assert venue.engine.markets[BTC_PERP].in_auction
    events = venue.events(resume())
    [ended] = [a for a in of_type(events, MarketAuction) if a.instrument == BTC_PERP]
    assert ended.kind == "AUCTION_ENDED"
    assert sum(f.size_lots for f in of_type(events, Fill)) == 5
