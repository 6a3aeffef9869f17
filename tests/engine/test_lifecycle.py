"""What block time triggers: funding, option expiry and settlement, the liquidation queue."""

from __future__ import annotations

from strikechain.engine.calendar import expiry_ns
from strikechain.engine.codes import RejectCode
from strikechain.engine.events import (
    Fill,
    FundingPaid,
    FundingPayment,
    InstrumentExpired,
    InstrumentSettled,
    LiquidationQueued,
    LiquidationQueueLeft,
    OrderCancelled,
    PositionSettled,
)
from strikechain.engine.instruments import OptionType
from strikechain.engine.params import FeeParams, FundingParams
from strikechain.engine.txs import PostOnly, Withdraw
from tests.engine.venue import (
    BTC_PERP,
    BTC_PRICE,
    HOUR,
    MINUTE,
    SECOND,
    TICKS_AT_100K,
    USDC,
    Venue,
    btc_option,
    btc_perp,
    config,
    eth_perp,
    of_type,
    rejections,
)

MAKER = {"post_only": PostOnly.REJECT}
NO_FEES = FeeParams(perp_maker_ppm=0, perp_taker_ppm=0, option_maker_ppm=0, option_taker_ppm=0)


def money_held(venue: Venue) -> int:
    engine = venue.engine
    return engine.total_cash() + engine.fee_pool + engine.insurance_fund + engine.dust


def premium_venue(funding: FundingParams | None = None) -> Venue:
    """Three longs of 1, 1 and 5 lots against one short of 7; the book sits above the index."""
    venue = Venue(config(fees=NO_FEES, funding=funding))
    for name in ("l1", "l2", "l3", "short", "mm"):
        venue.deposit(name, 100_000 * USDC)
    venue.place("short", -1, TICKS_AT_100K, 7, **MAKER)
    for name, lots in (("l1", 1), ("l2", 1), ("l3", 5)):
        venue.place(name, 1, TICKS_AT_100K, lots)
    # A two-sided book 0.2% above the index (100,200): the mark's basis drifts up to it.
    venue.place("mm", 1, 200_390, 1, **MAKER)
    venue.place("mm", -1, 200_410, 1, **MAKER)
    return venue


def run_to_funding(venue: Venue) -> list:  # type: ignore[type-arg]
    """Blocks every 5 minutes until the first funding of the hour."""
    events: list = []  # type: ignore[type-arg]
    while not of_type(events, FundingPaid):
        events = venue.events(dt=5 * MINUTE)
    return events


def test_funding_longs_pay_shorts_when_the_mark_is_above_the_index() -> None:
    venue = premium_venue()
    before = {n: venue.ledger(n).cash for n in ("l1", "l2", "l3", "short")}
    events = run_to_funding(venue)
    (paid,) = of_type(events, FundingPaid)
    assert paid.rate_ppb > 0
    payments = {p.account: p.amount for p in of_type(events, FundingPayment)}
    assert set(payments) == {"l1", "l2", "l3", "short"}
    assert all(payments[n] < 0 for n in ("l1", "l2", "l3"))
    assert payments["short"] > 0
    exact = paid.mark_per_lot * paid.rate_ppb  # per lot, in 1e-9 minor units
    assert payments["l3"] == (-5 * exact) // 10**9  # FLOOR of a payment: the payer pays CEIL
    assert payments["short"] == 7 * exact // 10**9
    assert paid.paid - paid.received == paid.dust == venue.engine.dust >= 0
    for name, amount in payments.items():
        assert venue.ledger(name).cash - before[name] == amount
        assert venue.ledger(name).funding == amount
    assert money_held(venue) == 500_000 * USDC


def test_funding_rounding_dust_goes_to_the_dust_account() -> None:
    venue = premium_venue()
    events = run_to_funding(venue)
    (paid,) = of_type(events, FundingPaid)
    exact_per_lot = paid.mark_per_lot * paid.rate_ppb
    payers = [p for p in of_type(events, FundingPayment) if p.amount < 0]
    # Each payer pays the ceiling of its exact amount, the receiver gets the floor.
    for payment in payers:
        owed = payment.position_lots * exact_per_lot
        assert -payment.amount == -(-owed // 10**9)  # CEIL of what is owed
    assert paid.dust == -sum(p.amount for p in of_type(events, FundingPayment))
    if exact_per_lot % 10**9:
        assert paid.dust > 0  # three payers round up, one receiver rounds down


def test_funding_is_clamped() -> None:
    venue = premium_venue(FundingParams(max_rate_ppb=1_000))
    (paid,) = of_type(run_to_funding(venue), FundingPaid)
    # The hour's clamp scales with the time since the last funding.
    assert 0 < paid.rate_ppb <= 1_000 * (HOUR + 5 * MINUTE) // HOUR


def test_funding_sign_reverses_below_the_index() -> None:
    venue = Venue(config(fees=NO_FEES))
    for name in ("long", "short", "mm"):
        venue.deposit(name, 100_000 * USDC)
    venue.place("short", -1, TICKS_AT_100K, 3, **MAKER)
    venue.place("long", 1, TICKS_AT_100K, 3)
    venue.place("mm", 1, 199_590, 1, **MAKER)
    venue.place("mm", -1, 199_610, 1, **MAKER)
    events = run_to_funding(venue)
    (paid,) = of_type(events, FundingPaid)
    assert paid.rate_ppb < 0
    payments = {p.account: p.amount for p in of_type(events, FundingPayment)}
    assert payments["long"] > 0 > payments["short"]


def option_venue() -> tuple[Venue, int, str]:
    expiry = expiry_ns(2026, 11, 26)  # 08:00 UTC the next day
    call = btc_option(100_000, OptionType.CALL, expiry)
    put = btc_option(100_000, OptionType.PUT, expiry)
    venue = Venue(config(fees=NO_FEES), instruments=(btc_perp(), eth_perp(), call, put))
    for name in ("long", "short", "short2"):
        venue.deposit(name, 10_000 * USDC)
    return venue, expiry, call.name


def test_options_settle_against_the_average_index_of_the_last_30_minutes() -> None:
    venue, expiry, call = option_venue()
    # Option: tick 5 USDC, lot 0.01 BTC. Premium 2,000 USDC per BTC = 400 ticks.
    venue.place("short", -1, 400, 3, instrument=call, **MAKER)
    venue.place("short2", -1, 400, 4, instrument=call, **MAKER)
    assert of_type(venue.place("long", 1, 400, 7, instrument=call), Fill)
    short = venue.ledger("short")
    # A short call at the money needs 15% of the index per lot at initial margin, plus its
    # mark, which is 0 here (no vol nodes: the intrinsic value of an at-the-money call):
    # 3 lots x 15% x 1,000 USDC (a lot is 0.01 BTC) = 450 USDC.
    assert venue.engine.markets[call].mark_per_lot == 0
    assert short.initial == 3 * (BTC_PRICE // 100) * 15 // 100 == 450 * USDC
    venue.now = expiry - 40 * MINUTE
    venue.events(dt=0)
    venue.now = expiry - 30 * MINUTE - SECOND
    venue.prices["BTC"] = 103_000 * USDC
    venue.events(dt=SECOND)  # at expiry - 30 min
    venue.prices["BTC"] = 105_001 * USDC
    venue.events(dt=15 * MINUTE)  # at expiry - 15 min
    venue.prices["BTC"] = 200_000 * USDC  # at expiry itself: does not count
    events = venue.events(dt=15 * MINUTE)
    assert of_type(events, InstrumentExpired)
    settled = {e.instrument: e for e in of_type(events, InstrumentSettled)}
    average = (103_000 * USDC + 105_001 * USDC) // 2
    assert settled[call].price == average
    payoff_per_lot = (average - 100_000 * USDC) // 100  # lot = 0.01 BTC
    assert settled[call].payout_per_lot == payoff_per_lot
    positions = {e.account: e for e in of_type(events, PositionSettled) if e.instrument == call}
    exact = (average - 100_000 * USDC) * 7  # per unit x lots, then / 100
    assert positions["long"].amount == exact // 100
    assert positions["short"].amount == (-3 * (average - 100_000 * USDC)) // 100
    assert positions["short2"].amount == (-4 * (average - 100_000 * USDC)) // 100
    assert settled[call].dust == -sum(p.amount for p in positions.values()) >= 0
    assert positions["long"].realized == positions["long"].amount - 7 * 20 * USDC
    assert venue.engine.position("long", call) == 0
    assert call not in venue.engine.markets
    assert venue.engine.get_ledger("long", "BTC").exposures.get(call) is None  # type: ignore[union-attr]
    assert money_held(venue) == 30_000 * USDC


def test_an_expiry_without_positions_just_closes_the_book() -> None:
    venue, expiry, call = option_venue()
    venue.place("short", -1, 400, 3, instrument=call, **MAKER)
    venue.now = expiry - SECOND
    events = venue.events()
    cancelled = of_type(events, OrderCancelled)
    assert [c.reason for c in cancelled] == ["MARKET_EXPIRED"]
    assert not of_type(events, InstrumentSettled)
    assert call not in venue.engine.markets
    assert venue.ledger("short").reserve == 0


def test_below_maintenance_enters_the_queue_and_may_only_reduce() -> None:
    venue = Venue(config(fees=NO_FEES))
    venue.deposit("whale", 1_000_000 * USDC)
    for name, amount in (("thin", 52 * USDC), ("thinner", 51 * USDC)):
        venue.deposit(name, amount)
        venue.place("whale", -1, TICKS_AT_100K, 10, **MAKER)
        venue.place(name, 1, TICKS_AT_100K, 10)  # 1,000 USDC long on ~5% margin
    assert not rejections(venue.place("thin", -1, 210_000, 1, **MAKER))  # cancelled on entry
    # -2.5%: equity 27 / 26 USDC against maintenance 3% of 975 = 29.25 USDC.
    venue.prices["BTC"] = 97_500 * USDC
    events = venue.events()
    queued = of_type(events, LiquidationQueued)
    assert {q.account for q in queued} == {"thin", "thinner"}
    assert [c.reason for c in of_type(events, OrderCancelled)] == ["LIQUIDATION"]
    queue = [(ledger.account, ledger.underlying) for ledger in venue.engine.liquidation_queue]
    assert queue == [("thinner", "BTC"), ("thin", "BTC")]  # most under water first
    # Members may only reduce risk; nothing may leave.
    grow = venue.place("thin", 1, 190_000, 1, **MAKER)
    assert rejections(grow) == [RejectCode.IN_LIQUIDATION_QUEUE]
    out = venue.events(Withdraw(account="thin", underlying="BTC", amount=1))
    assert rejections(out) == [RejectCode.IN_LIQUIDATION_QUEUE]
    assert not rejections(venue.place("thin", -1, 210_000, 5, **MAKER))
    # A deposit that restores maintenance takes the sub-ledger out of the queue.
    events = venue.deposit("thin", 100 * USDC)
    assert [q.account for q in of_type(events, LiquidationQueueLeft)] == ["thin"]
    assert [ledger.account for ledger in venue.engine.liquidation_queue] == ["thinner"]


def test_delisting_closes_positions_at_the_mark() -> None:
    from strikechain.engine.events import InstrumentDelisted
    from strikechain.engine.txs import DelistInstrument

    venue = Venue(config(fees=NO_FEES))
    for name in ("a", "b"):
        venue.deposit(name, 10_000 * USDC)
    venue.place("a", -1, TICKS_AT_100K, 4, **MAKER)
    venue.place("b", 1, TICKS_AT_100K, 4)
    venue.prices["BTC"] = 101_000 * USDC
    venue.events()
    mark = venue.engine.markets[BTC_PERP].mark_per_lot
    events = venue.events(DelistInstrument(account="operator", instrument=BTC_PERP))
    assert of_type(events, InstrumentDelisted)
    settled = {e.account: e.amount for e in of_type(events, PositionSettled)}
    assert settled == {"a": -4 * mark, "b": 4 * mark}
    assert venue.ledger("b").cash == 10_000 * USDC - 400 * USDC + 4 * mark
    assert money_held(venue) == 20_000 * USDC
