"""Property tests of the money rules: clearing, proportional amounts, margin, and a venue.

- :func:`clearing.trade` on one pair of exposures, with fees: cash plus the fee pool is
  conserved, the basis removed by a reduction is truncated towards zero and leaves with the
  position, realized P&L is exact, and the basis stays within the prices paid.
- :func:`clearing.proportional_amounts`: ``FLOOR`` of the exact amounts, dust in ``[0, n)``.
- :meth:`StandardMargin.requirement`: an order on either side never lowers the reserve (so a
  cancel never raises it), closing orders reserve only their loss against the mark (fixed when
  they were placed), the two sides are alternatives, and a flat exposure needs nothing.
- :meth:`StandardMargin.order_bound`: never below what an order adds to initial margin plus
  reserve, one order or several in turn (the engine's fast path holds their sum as pending).
- :class:`MoneyMachine`: a venue with margin on (BTC and ETH perpetuals, signed reports) driven
  by deposits, orders, quotes, cancels, amends, withdrawals, transfers, price moves and time;
  ``Engine.check`` runs after every block, and after every step money is conserved, a model of
  cash, positions, cost basis and realized P&L kept from the events agrees with the sub-ledgers,
  every open order keeps the loss per lot it was placed with, refusals change nothing, and the
  liquidation queue holds exactly the sub-ledgers below maintenance, most under water first.
  The machine never reads a sub-ledger through ``Engine.get_ledger`` (which brings its caches up
  to date): it computes what it needs from the margin policy, so the engine's lazy caches and
  order-bound fast path run across blocks as they would in a node.

The far-bid and taker-loss counterexamples of the older margin (a side's loss against the mark
taken on its aggregate) pass, and so do the two the machine and its variations found next: a
side's loss hidden behind the other side's larger charge
(``test_a_taker_loss_must_not_hide_behind_an_ask_on_the_other_side``) and an ask above the mark
lending margin to a sell below it
(``test_an_ask_above_the_mark_must_not_hide_the_margin_of_a_sell_below_it``). After an accepted
order fills, the machine requires free collateral >= 0 with no allowance.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from fractions import Fraction

import hypothesis
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from strikechain.engine import clearing
from strikechain.engine.accounts import Exposure, Market, SubLedger, UnderlyingState, market_for
from strikechain.engine.calendar import expiry_ns
from strikechain.engine.codes import RejectCode
from strikechain.engine.engine import Engine
from strikechain.engine.events import (
    Deposited,
    Event,
    Fill,
    FundingPaid,
    FundingPayment,
    InsurancePaid,
    LiquidationFee,
    LiquidationOrder,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderRepriced,
    PositionSettled,
    Rejected,
    Transferred,
    WithdrawalRequested,
)
from strikechain.engine.instruments import Instrument, OptionType
from strikechain.engine.margin import STANDARD_MARGIN
from strikechain.engine.marks import set_mark
from strikechain.engine.params import FeeParams, MarginParams, PositionLimits
from strikechain.engine.txs import (
    Amend,
    Cancel,
    Deposit,
    OrderType,
    PlaceOrder,
    PostOnly,
    Side,
    TimeInForce,
    Transaction,
    Transfer,
    Withdraw,
)
from tests.engine.venue import (
    BTC_PERP,
    BTC_PRICE,
    ETH_PERP,
    ETH_PRICE,
    OPERATOR,
    SECOND,
    USDC,
    Venue,
    btc_option,
    btc_perp,
    config,
    params,
    rejections,
)

PPM = 1_000_000

# -- clearing.trade ---------------------------------------------------------------------------


def _market(
    instrument: Instrument, margin: MarginParams | None = None, liquidity_lots: int = 0
) -> Market:
    """A market on its own underlying state; with ``margin`` its requirements are set (and a
    perp's size add-on, with ``liquidity_lots``)."""
    limits = PositionLimits(perp_liquidity_lots=liquidity_lots)
    underlying_params = None if margin is None else params(margin=margin, limits=limits)
    state = UnderlyingState(name=instrument.underlying, params=underlying_params, oracle=None)
    market = market_for(instrument, state)
    state.markets[market.name] = market
    return market


def _exposure(market: Market, account: str) -> Exposure:
    ledger = SubLedger(account=account, underlying=market.underlying, state=market.state)
    return ledger.exposure(market)


class _Life:
    """What a model knows of one side of the pair: its cash flow and fees when it was last flat,
    and the current position's range of fill prices (per lot), reset when it is flat or flips."""

    def __init__(self) -> None:
        self.cheapest = 0
        self.dearest = 0
        self.flat_cash = 0
        self.flat_fees = 0
        self.flat_realized = 0

    def record(self, exposure: Exposure, before: int, side: int, lot_value: int) -> None:
        after = exposure.position
        if after == 0:
            self.cheapest = self.dearest = 0
        elif before == 0 or (before > 0) != (after > 0):  # opened, or flipped: a new position
            self.cheapest = self.dearest = lot_value
        elif (before > 0) == (side > 0):  # grew
            self.cheapest = min(self.cheapest, lot_value)
            self.dearest = max(self.dearest, lot_value)


fill_sequences = st.lists(
    st.tuples(
        st.sampled_from([1, -1, 0]),  # 0: the first side flattens its position at this price
        st.integers(1, 40),
        st.integers(1, 10**9),
        st.integers(-1_000, 5_000),  # the first side's fee rate (negative: a rebate)
        st.integers(0, 5_000),  # the second side's
    ),
    min_size=1,
    max_size=40,
)


def _expected_trade(
    position: int, basis: int, side: int, lots: int, lot_value: int
) -> tuple[int, int]:
    """The rule of :mod:`clearing`, the slow way: ``(basis after, realized)``. A reduction
    removes ``basis x closed / |position|`` truncated towards zero (``int`` of a fraction)."""
    if position == 0 or (position > 0) == (side > 0):
        return basis + side * lots * lot_value, 0
    held = abs(position)
    closed = min(lots, held)
    removed = int(Fraction(basis * closed, held))
    proceeds = closed * lot_value if position > 0 else -closed * lot_value
    opened = max(lots - held, 0) * lot_value * side
    return basis - removed + opened, proceeds - removed


@settings(max_examples=300)
@given(fill_sequences)
@example([(1, 3, 10, 0, 0), (-1, 2, 10, 0, 0), (-1, 1, 10, 0, 0)])  # 30 / 3 lots: no remainder
@example([(1, 3, 10, 0, 0), (1, 1, 11, 0, 0), (-1, 3, 1, 0, 0), (0, 0, 1, 0, 0)])  # truncation
@example([(-1, 3, 10, 0, 0), (-1, 1, 11, 0, 0), (1, 3, 1, 0, 0), (1, 5, 7, -1_000, 5_000)])
def test_trade_conserves_cash_and_realizes_exactly(
    trades: list[tuple[int, int, int, int, int]],
) -> None:
    """Random fills between two exposures, each side paying a fee (or receiving a rebate)."""
    market = _market(btc_perp())
    first, second = _exposure(market, "a"), _exposure(market, "b")
    lives = {id(first): _Life(), id(second): _Life()}
    realized = {id(first): 0, id(second): 0}
    fees = {id(first): 0, id(second): 0}
    for drawn_side, drawn_lots, lot_value, first_rate, second_rate in trades:
        side, lots = drawn_side, drawn_lots
        if side == 0:  # flatten
            if first.position == 0:
                continue
            side, lots = (-1, first.position) if first.position > 0 else (1, -first.position)
        notional = lots * lot_value
        for exposure, exposure_side, rate in (
            (first, side, first_rate),
            (second, -side, second_rate),
        ):
            fee = clearing.fee(notional, rate)
            assert fee == math.ceil(Fraction(notional * rate, PPM))  # CEIL; a rebate FLOOR in size
            before, basis, cash = exposure.position, exposure.basis, exposure.ledger.cash
            expected_basis, expected_realized = _expected_trade(
                before, basis, exposure_side, lots, lot_value
            )
            got = clearing.trade(exposure, exposure_side, lots, lot_value, fee)
            assert got == expected_realized
            assert exposure.basis == expected_basis
            assert exposure.position == before + exposure_side * lots
            assert exposure.ledger.cash == cash - exposure_side * notional - fee
            realized[id(exposure)] += got
            fees[id(exposure)] += fee
            lives[id(exposure)].record(exposure, before, exposure_side, lot_value)
        # What left one side's cash reached the other's or the fee pool.
        assert first.ledger.cash + second.ledger.cash + sum(fees.values()) == 0
        assert first.position + second.position == 0
        assert market.long_lots == market.short_lots == abs(first.position)
        assert set(market.holders) == {e.ledger.account for e in (first, second) if e.position}
        for exposure in (first, second):
            ledger, life = exposure.ledger, lives[id(exposure)]
            assert ledger.basis == exposure.basis
            assert ledger.realized == exposure.realized == realized[id(exposure)]
            assert ledger.fees == fees[id(exposure)]
            assert ledger.positions == (exposure.position != 0)
            # What the position still holds, plus what it realized, is what it paid, less fees.
            assert ledger.cash + exposure.basis == exposure.realized - ledger.fees
            held = abs(exposure.position)
            assert held * life.cheapest <= abs(exposure.basis) <= held * life.dearest
            if exposure.position == 0:
                assert exposure.basis == 0
                # Over a life that ended flat: realized == proceeds - cost, exactly.
                assert exposure.realized - life.flat_realized == (
                    ledger.cash + ledger.fees - life.flat_cash - life.flat_fees
                )
                life.flat_cash, life.flat_fees = ledger.cash, ledger.fees
                life.flat_realized = exposure.realized
            else:
                assert (exposure.basis > 0) == (exposure.position > 0)


# -- clearing.proportional_amounts ------------------------------------------------------------


@st.composite
def open_interest(draw: st.DrawFn) -> list[int]:
    """Positions of one market: longs and shorts holding equal lots, in a random order."""
    longs = draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=6))
    total = sum(longs)
    cuts = draw(
        st.lists(st.integers(1, total - 1), unique=True, max_size=min(5, total - 1))
        if total > 1
        else st.just([])
    )
    edges = [0, *sorted(cuts), total]
    shorts = [edges[i] - edges[i + 1] for i in range(len(edges) - 1)]
    return draw(st.permutations(longs + shorts))


@settings(max_examples=200)
@given(
    open_interest(),
    st.integers(-(10**15), 10**15),
    st.integers(1, 10**12),
)
def test_proportional_amounts_are_floors_and_dust_is_small(
    positions: list[int], numerator: int, denominator: int
) -> None:
    market = _market(btc_perp())
    for i, lots in enumerate(positions):
        clearing.move_position(_exposure(market, f"h{i}"), lots)
    assert market.long_lots == market.short_lots == sum(p for p in positions if p > 0)
    amounts, dust = clearing.proportional_amounts(market, numerator, denominator)
    assert [e.position for e, _ in amounts] == positions  # every holder, in opening order
    for exposure, amount in amounts:
        assert amount == math.floor(Fraction(exposure.position * numerator, denominator))
    assert dust == -sum(amount for _, amount in amounts)
    assert 0 <= dust < len(positions)
    exact_remainders = sum(
        Fraction(e.position * numerator, denominator) - amount for e, amount in amounts
    )
    assert dust == exact_remainders  # the exact amounts net to zero: dust is all rounding


# -- StandardMargin.requirement and order_bound -----------------------------------------------

EXPIRY = expiry_ns(2026, 12, 25)
"""08:00 UTC, a month after the venue's start."""

Order = tuple[int, int, int]
"""An open order as ``(price ticks, lots, mark when placed)``; the mark (minor units per unit of
the underlying) fixes the order's loss per lot, as the engine fixes it at placement."""
Orders = tuple[Order, ...]


@dataclasses.dataclass(frozen=True)
class MarginCase:
    """An exposure in plain numbers, so that a failing example reads as one: the market (a
    BTC perp, or a call or put), its margin rates and marks, the position and the open orders.

    For options, ``initial_ppm`` is a short's initial base rate (15% by default),
    ``maintenance_ppm`` its maintenance rate and the put floor's rate, and the initial floor
    lies halfway between them. ``liquidity_lots`` turns on a perp's size add-on (0: off)."""

    option: OptionType | None
    initial_ppm: int
    maintenance_ppm: int
    index_minor: int
    mark_minor: int
    position: int
    buys: Orders
    sells: Orders
    liquidity_lots: int = 0

    def exposure(self, buys: Orders | None = None, sells: Orders | None = None) -> Exposure:
        """The exposure, on a sub-ledger of its own; ``buys``/``sells`` replace the orders."""
        margin = MarginParams(
            perp_initial_ppm=self.initial_ppm,
            perp_maintenance_ppm=self.maintenance_ppm,
            option_initial_base_ppm=self.initial_ppm,
            option_initial_floor_ppm=(self.initial_ppm + self.maintenance_ppm) // 2,
            option_maintenance_ppm=self.maintenance_ppm,
            option_put_mark_floor_ppm=self.maintenance_ppm,
        )
        instrument = btc_perp() if self.option is None else btc_option(100_000, self.option, EXPIRY)
        market = _market(instrument, margin, self.liquidity_lots)
        set_mark(market, self.index_minor, self.mark_minor)
        exposure = _exposure(market, "a")
        exposure.position = self.position
        chosen = (
            (1, self.buys if buys is None else buys),
            (-1, self.sells if sells is None else sells),
        )
        for side, orders in chosen:
            _add(exposure, side, *_aggregate(market, side, orders))
        return exposure

    def adding(self, side: int, order: Order) -> MarginCase:
        """The same case with one more open order on ``side``."""
        if side > 0:
            return dataclasses.replace(self, buys=(*self.buys, order))
        return dataclasses.replace(self, sells=(*self.sells, order))


def _loss_per_lot(market: Market, side: int, price: int, placed_mark_minor: int) -> int:
    """What one lot of an order loses at once against the mark it was placed at if it fills at
    its price (buying above the mark, selling below it); never negative."""
    return max((price * market.value_per_tick_lot - market.per_lot(placed_mark_minor)) * side, 0)


def _terms(market: Market, side: int, order: Order) -> tuple[int, int, int]:
    """One order's ``(lots, value, loss)``: what it adds to its side's aggregates."""
    price, lots, placed = order
    value = price * lots * market.value_per_tick_lot
    return lots, value, lots * _loss_per_lot(market, side, price, placed)


def _aggregate(market: Market, side: int, orders: Orders) -> tuple[int, int, int]:
    """A side's open-order aggregates: lots, value at the orders' prices, loss."""
    terms = [_terms(market, side, order) for order in orders]
    return (
        sum(lots for lots, _, _ in terms),
        sum(value for _, value, _ in terms),
        sum(loss for _, _, loss in terms),
    )


def _add(exposure: Exposure, side: int, lots: int, value: int, loss: int) -> None:
    """Put an order's terms into (negative: take them out of) the exposure's aggregates."""
    if side > 0:
        exposure.buy_lots += lots
        exposure.buy_value += value
        exposure.buy_loss += loss
    else:
        exposure.sell_lots += lots
        exposure.sell_value += value
        exposure.sell_loss += loss


def _tick_minor(option: OptionType | None) -> int:
    """The tick of :func:`btc_option` or :func:`btc_perp`, in minor units per BTC."""
    return 5 * USDC if option else USDC // 2


def _orders_near(
    option: OptionType | None, mark_minor: int, max_lots: int = 40, reach: int = 3
) -> st.SearchStrategy[Order]:
    """One order: from one tick to ``reach`` times the mark, so far below and far through it;
    most placed at the current mark, some at a mark since moved (up to half or twice it)."""
    mark_ticks = mark_minor // _tick_minor(option)
    placed = st.one_of(st.just(mark_minor), st.integers(mark_minor // 2, 2 * mark_minor + 1))
    prices = st.integers(1, reach * max(mark_ticks, 1) + 10)
    return st.tuples(prices, st.integers(1, max_lots), placed)


@st.composite
def margin_cases(draw: st.DrawFn, reach: int = 3) -> MarginCase:
    """An exposure of a perp or an option, with up to four open orders a side (see
    :func:`_orders_near`) and a position that they may close, grow or flip."""
    initial_ppm = draw(st.integers(2, 1_000_000))
    option = draw(st.sampled_from([None, OptionType.CALL, OptionType.PUT]))
    index = draw(st.integers(1_000, 300_000)) * USDC
    mark = draw(st.integers(0, index // 5)) if option else draw(st.integers(index // 2, 2 * index))
    orders = st.lists(_orders_near(option, mark, reach=reach), max_size=4).map(tuple)
    return MarginCase(
        option=option,
        initial_ppm=initial_ppm,
        maintenance_ppm=draw(st.integers(1, initial_ppm - 1)),
        index_minor=index,
        mark_minor=mark,
        position=draw(st.integers(-60, 60)),
        buys=draw(orders),
        sells=draw(orders),
        liquidity_lots=draw(st.sampled_from([0, 0, 1, 7, 50, 1_000])),
    )


def _committed(requirement: tuple[int, int, int]) -> int:
    """What a requirement takes from free collateral: initial margin plus reserve."""
    initial, _, reserve = requirement
    return initial + reserve


@settings(max_examples=200)
@given(margin_cases(), st.data())
def test_an_order_never_lowers_the_reserve(case: MarginCase, data: st.DataObject) -> None:
    """An order on either side never lowers the reserve, wherever it sits against the mark and
    whatever the other orders lose or gain: on the growing side it adds lots, value and loss;
    on the closing side its loss, and growing lots taken at the side's average price. So a
    cancel or an amend down can only lower it, which lets the engine keep a cached requirement
    as an upper bound until it is next needed.

    Also: the hypothetical order of the pre-trade check (``side, lots, value, loss``) is the
    same as that order in the aggregates, and orders move the reserve only.
    """
    side = data.draw(st.sampled_from([1, -1]))
    order = data.draw(_orders_near(case.option, case.mark_minor))
    exposure = case.exposure()
    before = STANDARD_MARGIN.requirement(exposure)
    after = STANDARD_MARGIN.requirement(exposure, side, *_terms(exposure.market, side, order))
    assert STANDARD_MARGIN.requirement(case.adding(side, order).exposure()) == after
    initial, maintenance, reserve = before
    assert initial >= maintenance >= 0
    assert reserve >= 0
    assert after[:2] == before[:2]
    assert after[2] >= reserve


def test_a_far_bid_must_not_lower_the_reserve() -> None:
    """The older margin's counterexample, now a plain computation: the loss against the mark is
    fixed per order, so a bid at one tick cannot cancel the loss of a bid above the mark.

    100 lots bid 0.5% above a 100,000 USDC mark reserve 5% of 10,050 USDC plus the 50 USDC
    they lose at once, 552.5 USDC. One more lot bid at one tick adds no loss, and is margined
    at the mark (each order on ``lots x max(price, mark)``, nothing netted between them):
    5% of 10,150 USDC plus 50, 557.5 USDC.
    """
    near = ((201_000, 100, BTC_PRICE),)  # 200,000 ticks is the mark; a lot is 100 USDC
    case = MarginCase(
        option=None,
        initial_ppm=50_000,
        maintenance_ppm=30_000,
        index_minor=BTC_PRICE,
        mark_minor=BTC_PRICE,
        position=0,
        buys=near,
        sells=(),
    )
    assert STANDARD_MARGIN.requirement(case.exposure()) == (0, 0, 552_500_000)
    far = case.adding(1, (1, 1, BTC_PRICE))
    assert STANDARD_MARGIN.requirement(far.exposure()) == (0, 0, 557_500_000)
    # Placed when the mark was 0.5% higher, the near bid loses nothing: 5% of 10,050 USDC.
    higher = dataclasses.replace(case, buys=((201_000, 100, 100_500 * USDC),))
    assert STANDARD_MARGIN.requirement(higher.exposure()) == (0, 0, 502_500_000)


@settings(max_examples=200)
@given(margin_cases(), st.data())
def test_orders_that_only_close_reserve_only_their_loss(
    case: MarginCase, data: st.DataObject
) -> None:
    """Opposite-side orders that together do not exceed the position reserve nothing but what
    they lose against the mark: one more adds exactly its own loss to the reserve, and closing
    at or through the mark changes nothing."""
    held = abs(case.position) or 1
    side = -1 if case.position >= 0 else 1
    closing: list[Order] = []  # the opposite orders that fit, with room for one more
    for order in case.sells if side < 0 else case.buys:
        if sum(lots for _, lots, _ in closing) + order[1] < held:
            closing.append(order)
    if side < 0:
        case = dataclasses.replace(case, position=held, sells=tuple(closing))
    else:
        case = dataclasses.replace(case, buys=tuple(closing))
    exposure = case.exposure()
    market = exposure.market
    lots = data.draw(st.integers(1, held - sum(lots for _, lots, _ in closing)))
    price, _, placed = data.draw(_orders_near(case.option, case.mark_minor))
    terms = _terms(market, side, (price, lots, placed))
    before = STANDARD_MARGIN.requirement(exposure)
    after = STANDARD_MARGIN.requirement(exposure, side, *terms)
    assert after[:2] == before[:2]
    assert after[2] == before[2] + terms[2]
    if terms[2] == 0:
        assert after == before


@settings(max_examples=200)
@given(margin_cases())
def test_buy_and_sell_sides_are_alternatives(case: MarginCase) -> None:
    """For margin the two sides are alternatives: the reserve is the larger of each side's
    margin alone, plus both sides' losses against the mark (either side's fill realizes its own
    while the other side stays open); flat and idle needs 0."""
    exposure = case.exposure()
    initial, maintenance, reserve = STANDARD_MARGIN.requirement(exposure)
    alone = [
        STANDARD_MARGIN.requirement(case.exposure(sells=())),
        STANDARD_MARGIN.requirement(case.exposure(buys=())),
    ]
    losses = (exposure.buy_loss, exposure.sell_loss)
    margins = [r - loss for (_, _, r), loss in zip(alone, losses, strict=True)]
    assert reserve == max(margins) + sum(losses)
    assert all(r[:2] == (initial, maintenance) for r in alone)
    idle = case.exposure(buys=(), sells=())
    assert STANDARD_MARGIN.requirement(idle) == (initial, maintenance, 0)
    idle.position = 0
    assert STANDARD_MARGIN.requirement(idle) == (0, 0, 0)
    if case.position == 0:
        assert (initial, maintenance) == (0, 0)


SideOrders = list[tuple[int, Order]]
"""Orders to add in turn, each with its side."""


@st.composite
def bound_cases(draw: st.DrawFn) -> tuple[MarginCase, SideOrders]:
    """An exposure whose orders reach 20 times the mark, so a side's average can lie far above
    both the mark and a new order, and up to five orders of up to 10,000 lots to add to it."""
    case = draw(margin_cases(reach=20))
    order = _orders_near(case.option, case.mark_minor, max_lots=10_000, reach=20)
    orders = draw(st.lists(st.tuples(st.sampled_from([1, -1]), order), min_size=1, max_size=5))
    return case, orders


_HIGH_BIDS_AGAINST_A_SHORT = (
    MarginCase(
        option=None,
        initial_ppm=50_000,
        maintenance_ppm=30_000,
        index_minor=BTC_PRICE,
        mark_minor=BTC_PRICE,
        position=-60,
        buys=((2_000_000, 80, BTC_PRICE),),  # ten times the mark: 60 close, 20 grow
        sells=(),
    ),
    [(1, (1, 1, BTC_PRICE))],
)
"""One lot bid at one tick adds 37 USDC: the growing lots are taken at the bids' average price
(1,000 USDC a lot), 5% of 81 lots' 80,000 USDC x 21/81 less 5% of 20 lots' 20,000 USDC. Bounds
that forget the side's average (5% of the order's or the mark's value) fall far short."""


@settings(max_examples=300)
@given(bound_cases())
@example(_HIGH_BIDS_AGAINST_A_SHORT)
def test_order_bound_covers_what_an_order_adds(drawn: tuple[MarginCase, SideOrders]) -> None:
    """``order_bound`` is never below the exact increase of initial margin plus reserve that an
    order causes; for orders added in turn (the engine's fast path adds each one's bound to
    ``pending``), every bound covers its own step, so their sum covers the whole."""
    case, orders = drawn
    exposure = case.exposure()
    market = exposure.market
    start = _committed(STANDARD_MARGIN.requirement(exposure))
    bounds = 0
    tightest = 0.0
    for side, order in orders:
        terms = _terms(market, side, order)
        before = _committed(STANDARD_MARGIN.requirement(exposure))
        bound = STANDARD_MARGIN.order_bound(exposure, side, *terms)
        exact = _committed(STANDARD_MARGIN.requirement(exposure, side, *terms)) - before
        assert bound >= exact, (side, order, bound, exact)
        assert bound > terms[2]  # the order's own loss, and a unit for rounding
        tightest = max(tightest, exact / bound)
        bounds += bound
        _add(exposure, side, *terms)
    assert start + bounds >= _committed(STANDARD_MARGIN.requirement(exposure))
    hypothesis.target(tightest, label="exact increase / bound")  # seek the bound's edge


# -- the same rules in a venue ----------------------------------------------------------------

NO_FEES = FeeParams(perp_maker_ppm=0, perp_taker_ppm=0)


def _at_once(venue: Venue, tx: Transaction) -> list[Event]:
    """``tx`` in a block at the same time without reports: the marks stay where they are (the
    perp at 100,000 USDC, 200,000 ticks, in the tests below)."""
    return venue.events(tx, dt=0, report=False)


def _post(venue: Venue, account: str, side: int, price: int, lots: int) -> list[Event]:
    """A post-only order (refused if it would cross), in a block of its own."""
    return _at_once(venue, venue.order(account, side, price, lots, post_only=PostOnly.REJECT))


def test_a_far_bid_must_not_release_the_reserve_of_a_near_one() -> None:
    """The older margin let a far bid release the loss reserved by a near one, to be withdrawn
    before the near bid filled. Now the far bid needs margin of its own (one lot at the mark),
    and after the near bid fills as a maker the sub-ledger still covers the far bid, with the
    2.5 USDC the near bid was margined above the mark (on its price) to spare."""
    venue = Venue(config(fees=NO_FEES))
    venue.deposit("bob", 100_000 * USDC)
    venue.deposit("carol", 100_000 * USDC)
    _post(venue, "bob", -1, 202_000, 1)
    _at_once(venue, venue.deposit_tx("alice", 552_500_000))
    # 100 lots bid 0.5% above the mark: 5% of 10,050 USDC plus the 50 USDC it loses at once.
    assert not rejections(_post(venue, "alice", 1, 201_000, 100))
    assert venue.ledger("alice").free_collateral == 0
    # One lot bid at one tick adds 5 USDC: 5% of the lot at the mark.
    refused = rejections(_post(venue, "alice", 1, 1, 1))
    assert refused == [RejectCode.INSUFFICIENT_MARGIN]
    assert venue.ledger("alice").withdrawable == 0
    _at_once(venue, venue.deposit_tx("alice", 5 * USDC))
    assert not rejections(_post(venue, "alice", 1, 1, 1))
    assert venue.ledger("alice").withdrawable == venue.ledger("alice").free_collateral == 0
    # Carol sells into the near bid at its price: alice loses 50 USDC against the mark, and
    # holds 5% of 10,000 USDC for the position plus 5 USDC for the far bid.
    _at_once(venue, venue.order("carol", -1, 201_000, 100))
    assert venue.engine.position("alice", BTC_PERP) == 100
    ledger = venue.ledger("alice")
    assert (ledger.equity, ledger.initial, ledger.reserve) == (
        507_500_000,
        500 * USDC,
        5 * USDC,
    )
    assert ledger.free_collateral == 2_500_000


def test_a_taker_loss_must_not_hide_behind_a_far_ask() -> None:
    """Found by :class:`MoneyMachine` against the older margin. Alice's ask 1% above the mark
    gains against it; her sell 1% below the mark loses 100 USDC at once. The reserve of the
    two together now holds that loss: 100 USDC plus 5% of 20,000 USDC, more than her 1,000."""
    venue = Venue(config(fees=NO_FEES))
    venue.deposit("carol", 100_000 * USDC)
    venue.deposit("alice", 1_000 * USDC)
    _post(venue, "carol", 1, 198_000, 100)
    # An ask for 100 lots at 101,000 USDC: 5% of 10,100 USDC reserved, 495 USDC free.
    _post(venue, "alice", -1, 202_000, 100)
    assert venue.ledger("alice").free_collateral == 495 * USDC
    refused = rejections(_at_once(venue, venue.order("alice", -1, 198_000, 100)))
    assert refused == [RejectCode.INSUFFICIENT_MARGIN]
    assert venue.engine.position("alice", BTC_PERP) == 0
    assert venue.ledger("alice").free_collateral == 495 * USDC


def test_an_ask_above_the_mark_must_not_hide_the_margin_of_a_sell_below_it() -> None:
    """Found by giving Alice of the test below 1,100 USDC (against a margin on
    ``max(value, lots x mark)`` of a side's aggregate, where the ask above the mark lent its
    excess to the sell below it). She has an ask for 100 lots 1% above the mark; selling 100
    lots 1% below it as a taker: the side's base is ``sum(lots x max(price, mark))``, 20,100
    USDC, so 5% of it plus the 100 USDC loss is 1,105 and the sell is refused. With 5 USDC more
    it is accepted and fills: equity 1,005, the short needs 500, the ask 505: free collateral
    exactly 0."""
    venue = Venue(config(fees=NO_FEES))
    venue.deposit("carol", 100_000 * USDC)
    venue.deposit("alice", 1_100 * USDC)
    _post(venue, "carol", 1, 198_000, 100)
    _post(venue, "alice", -1, 202_000, 100)
    sell = venue.order("alice", -1, 198_000, 100)
    assert rejections(_at_once(venue, sell)) == [RejectCode.INSUFFICIENT_MARGIN]
    venue.deposit("alice", 5 * USDC)
    assert not rejections(_at_once(venue, sell))
    assert venue.engine.position("alice", BTC_PERP) == -100
    assert venue.ledger("alice").free_collateral == 0


def test_a_taker_loss_must_not_hide_behind_an_ask_on_the_other_side() -> None:
    """Found by :class:`MoneyMachine` (against a reserve that took the larger of the two sides'
    charges, each a side's margin plus its loss). Alice has 505 USDC and an ask for 100 lots 1%
    above the mark: 5% of 10,100 USDC, all she has. Buying 10 lots 0.5% above the mark as a
    taker loses 5 USDC at once, and the ask stays open: the reserve is the larger margin plus
    both losses, 510 USDC, so the order is refused; with 5 USDC more it is accepted, fills, and
    leaves free collateral at 0.5 USDC (equity 505, the long needs 50, the ask, 90 lots now
    growing a short, 454.5)."""
    venue = Venue(config(fees=NO_FEES))
    venue.deposit("bob", 100_000 * USDC)
    venue.deposit("alice", 505 * USDC)
    _post(venue, "bob", -1, 201_000, 10)
    _post(venue, "alice", -1, 202_000, 100)
    assert venue.ledger("alice").free_collateral == 0
    buy = venue.order("alice", 1, 201_000, 10)
    assert rejections(_at_once(venue, buy)) == [RejectCode.INSUFFICIENT_MARGIN]
    assert venue.engine.position("alice", BTC_PERP) == 0
    venue.deposit("alice", 5 * USDC)
    assert not rejections(_at_once(venue, buy))
    assert venue.engine.position("alice", BTC_PERP) == 10
    assert venue.ledger("alice").free_collateral == USDC // 2


# -- the venue as a state machine -------------------------------------------------------------

ACCOUNTS = ("alice", "bob", "carol", "dave")
UNDERLYINGS = ("BTC", "ETH")
PERPS = {"BTC": BTC_PERP, "ETH": ETH_PERP}
START_PRICES = {"BTC": BTC_PRICE, "ETH": ETH_PRICE}
ORDER_KINDS = ("limit", "limit", "ioc", "fok", "market", "post", "post_reject")


@dataclasses.dataclass(frozen=True)
class Standing:
    """A sub-ledger's money at the current marks, computed afresh from its exposures by the
    margin policy: never read from the engine's caches, and without touching them."""

    cash: int
    value: int
    basis: int
    initial: int
    maintenance: int
    reserve: int

    @property
    def equity(self) -> int:
        return self.cash + self.value

    @property
    def free(self) -> int:
        return self.equity - self.initial - self.reserve

    @property
    def withdrawable(self) -> int:
        return self.cash + min(self.value, self.basis) - self.initial - self.reserve


def _standing(ledger: SubLedger) -> Standing:
    value = initial = maintenance = reserve = 0
    for exposure in ledger.exposures.values():
        required = STANDARD_MARGIN.requirement(exposure)
        value += exposure.position * exposure.market.mark_per_lot
        initial += required[0]
        maintenance += required[1]
        reserve += required[2]
    return Standing(ledger.cash, value, ledger.basis, initial, maintenance, reserve)


def _ledger(engine: Engine, account: str, underlying: str) -> SubLedger | None:
    """The sub-ledger as it stands; unlike ``Engine.get_ledger``, its caches are left alone."""
    mine = engine.accounts.get(account)
    return None if mine is None else mine.ledgers.get(underlying)


def _place_tx(
    account: str,
    instrument: str,
    side: int,
    price: int,
    size: int,
    kind: str,
    reduce_only: bool,
    client_order_id: str,
) -> PlaceOrder:
    market = kind == "market"
    return PlaceOrder(
        account=account,
        instrument=instrument,
        side=Side(side),
        price_ticks=0 if market else price,
        size_lots=size,
        order_type=OrderType.MARKET if market else OrderType.LIMIT,
        time_in_force={
            "ioc": TimeInForce.IOC,
            "fok": TimeInForce.FOK,
            "market": TimeInForce.IOC,
        }.get(kind, TimeInForce.GTC),
        post_only={"post": PostOnly.REPRICE, "post_reject": PostOnly.REJECT}.get(
            kind, PostOnly.NONE
        ),
        reduce_only=reduce_only,
        client_order_id=client_order_id,
    )


def _aggregates(exposure: Exposure) -> tuple[int, ...]:
    return (
        exposure.buy_lots,
        exposure.buy_value,
        exposure.buy_loss,
        exposure.sell_lots,
        exposure.sell_value,
        exposure.sell_loss,
    )


def _snapshot(engine: Engine) -> tuple[object, ...]:
    """Everything a transaction could change: sub-ledgers (their standing at the marks, not
    their caches, which a refused order may bring up to date), exposures, orders, books, totals."""
    accounts: list[tuple[object, ...]] = []
    for account, mine in engine.accounts.items():
        for underlying, ledger in mine.ledgers.items():
            exposures = tuple(
                (name, e.position, e.basis, e.realized, _aggregates(e))
                for name, e in ledger.exposures.items()
            )
            money = (ledger.cash, ledger.realized, ledger.fees, ledger.funding, ledger.settlements)
            moved = (ledger.deposited, ledger.withdrawn, ledger.transferred)
            state = (ledger.in_liquidation, _standing(ledger), exposures)
            accounts.append((account, underlying, money, moved, state))
        orders = tuple(
            (o.order_id, o.price, o.size, o.remaining, o.loss_per_lot, o.reduce_only)
            for o in mine.orders.values()
        )
        accounts.append((account, orders, tuple(mine.client_ids.items())))
    books = tuple(
        (
            name,
            side.sign,
            tuple((price, tuple(level)) for price, level in sorted(side.levels.items())),
        )
        for name, book in engine.books.items()
        for side in (book.bids, book.asks)
    )
    totals = (
        engine.deposits_total,
        engine.withdrawals_total,
        engine.fee_pool,
        engine.insurance_fund,
        engine.dust,
        engine.next_order_id,
        engine.next_deposit_id,
        engine.next_withdrawal_id,
        tuple((ledger.account, ledger.underlying) for ledger in engine.liquidation_queue),
        tuple((m.long_lots, m.short_lots, m.mark_minor) for m in engine.markets.values()),
    )
    return tuple(accounts), books, totals


def _standalone(engine: Engine, account: str, instrument: str) -> Exposure | None:
    """A copy of the account's exposure (position and open-order aggregates), detached from
    the engine, to ask the margin policy what an order would add; None without a sub-ledger."""
    market = engine.markets[instrument]
    ledger = _ledger(engine, account, market.underlying)
    if ledger is None:
        return None
    exposure = ledger.exposures.get(instrument)
    return _detached(exposure if exposure is not None else Exposure(ledger=ledger, market=market))


def _detached(exposure: Exposure) -> Exposure:
    copy = Exposure(ledger=exposure.ledger, market=exposure.market, position=exposure.position)
    copy.buy_lots, copy.buy_value, copy.buy_loss = (
        exposure.buy_lots,
        exposure.buy_value,
        exposure.buy_loss,
    )
    copy.sell_lots, copy.sell_value, copy.sell_loss = (
        exposure.sell_lots,
        exposure.sell_value,
        exposure.sell_loss,
    )
    return copy


OpenOrder = tuple[int, int, int]
"""An order as the margin sees it: ``(price ticks, lots, loss per lot)``; (0, 0, 0) for none."""


def _without(exposure: Exposure, side: int, replaced: OpenOrder) -> Exposure:
    """A detached copy of ``exposure`` without the open order ``replaced`` on ``side``."""
    copy = _detached(exposure)
    price, lots, loss_per_lot = replaced
    value = price * lots * exposure.market.value_per_tick_lot
    _add(copy, side, -lots, -value, -lots * loss_per_lot)
    return copy


def _order_loss(market: Market, side: int, price: int) -> int:
    """The loss per lot the engine fixes for an order placed (or moved) now at ``price``."""
    return max((price * market.value_per_tick_lot - market.mark_per_lot) * side, 0)


def _added(exposure: Exposure, side: int, order: OpenOrder, replaced: OpenOrder) -> int:
    """What ``order`` adds to the exposure's initial margin plus reserve, the pre-trade check's
    measure of new risk; for an amend, ``replaced`` is the order as it was."""
    before = _committed(STANDARD_MARGIN.requirement(exposure))
    price, lots, loss_per_lot = order
    value = price * lots * exposure.market.value_per_tick_lot
    without = _without(exposure, side, replaced)
    return (
        _committed(STANDARD_MARGIN.requirement(without, side, lots, value, lots * loss_per_lot))
        - before
    )


def _side_orders(
    engine: Engine, account: str, instrument: str, side: int, excluding: int = 0
) -> list[OpenOrder]:
    """The account's open orders on one side of one instrument that margin counts (but the
    order ``excluding``)."""
    return [
        (order.price, order.remaining, order.loss_per_lot)
        for order in engine.open_orders(account)
        if order.instrument == instrument
        and order.side == side
        and not order.reduce_only
        and order.order_id != excluding
    ]


def _grows(position: int, side: int) -> bool:
    return position == 0 or (position > 0) == (side > 0)


def _no_more_under_water(first: Standing, second: Standing) -> bool:
    """``first`` may come before ``second`` in the liquidation queue: sub-ledgers without a
    maintenance requirement first (by equity), then by equity over maintenance, lowest first."""
    if (first.maintenance <= 0) != (second.maintenance <= 0):
        return first.maintenance <= 0
    if first.maintenance <= 0:
        return first.equity <= second.equity
    return first.equity * second.maintenance <= second.equity * first.maintenance


accounts = st.sampled_from(ACCOUNTS)
underlyings = st.sampled_from(UNDERLYINGS)


_AMOUNTS = {
    "how": st.sampled_from(["part", "part", "all", "over", "any", "huge"]),
    "eighths": st.integers(1, 8),
    "amount": st.integers(1, 30_000 * USDC),
}
"""A withdrawal or transfer amount: a part of, all of, just over, or regardless of what is
available (see ``MoneyMachine._amount``)."""
ACTIONS: dict[str, dict[str, st.SearchStrategy[object]]] = {
    "deposit": {
        "account": accounts,
        "underlying": underlyings,
        "amount": st.integers(1, 20_000 * USDC),
        "kind": st.sampled_from(["new", "new", "new", "repeat", "gap", "huge"]),
    },
    "withdraw": {"account": accounts, "underlying": underlyings, **_AMOUNTS},
    "transfer": {"account": accounts, "source": underlyings, **_AMOUNTS},
    "place": {
        "account": accounts,
        "underlying": underlyings,
        "side": st.sampled_from([1, -1]),
        "offset_bps": st.integers(-150, 150),
        "at_touch": st.sampled_from([True, False]),
        "size": st.integers(1, 400),
        "sizing": st.sampled_from(["small", "small", "all_in", "drawn", "largest", "largest"]),
        "kind": st.sampled_from(ORDER_KINDS),
        "reduce_only": st.sampled_from([False, False, False, False, True]),
        "fit": st.booleans(),
        "client_order_id": st.sampled_from(["", "", "", "q1", "q2"]),
    },
    "quote": {
        "account": accounts,
        "underlying": underlyings,
        "half_spread_bps": st.integers(0, 120),
        "skew_bps": st.integers(-60, 60),
        "size": st.integers(1, 200),
        "sizing": st.sampled_from(["drawn", "drawn", "all_in", "largest"]),
    },
    "cancel": {
        "pick": st.integers(0, 10**6),
        "whose": st.sampled_from(["owner", "owner", "owner", "other", "missing"]),
    },
    "amend": {
        "pick": st.integers(0, 10**6),
        "offset_bps": st.integers(-150, 150),
        "keep_price": st.booleans(),
        "size_change": st.integers(-30, 30),
        "post_only": st.sampled_from([0, 0, 0, PostOnly.REPRICE, PostOnly.REJECT]),
    },
    "tick": {
        "seconds": st.integers(1, 70 * 60),
        "btc_bps": st.one_of(st.just(0), st.integers(-800, 800)),
        "eth_bps": st.one_of(st.just(0), st.integers(-800, 800)),
        "fresh": st.sampled_from([True] * 9 + [False]),
    },
}
"""The machine's actions (methods of :class:`MoneyMachine`) and their arguments."""
_ACTION_ARGUMENTS = {name: st.fixed_dictionaries(args) for name, args in ACTIONS.items()}
STEPS: tuple[str, ...] = (
    ("place",) * 4 + ("quote",) * 2 + ("cancel", "amend", "deposit", "withdraw", "transfer")
)
STEPS += ("tick",) * 2
"""Actions by weight. One rule draws the action, then its arguments: with a rule per action,
swarm testing would switch most of them off in most runs, and runs would seldom trade."""


class MoneyMachine(RuleBasedStateMachine):
    """A margin-on venue driven at random, with a model of the money kept from its events.

    Each transaction goes alone into a same-time block without reports, so the state before
    and after it differ only by what it did: a refusal must leave everything as it was, and an
    acceptance is judged against the state just before. Time and prices move in blocks of their
    own (with fresh reports), which also pay funding when they cross the hour. ``Venue.apply``
    runs ``Engine.check`` after every block.
    """

    def __init__(self) -> None:
        super().__init__()
        # The liquidation lane off: each rule predicts a transaction's effect from the state
        # just before its own block, which the lane would change in the same block.
        # tests/engine/test_liquidation_properties.py drives the lane.
        self.venue = Venue(config(liquidation=None))
        self.deposited = 0
        self.withdrawn = 0
        self.fees = 0
        self.dust = 0
        self.insurance = 0
        self.cash: dict[tuple[str, str], int] = {}
        self.positions: dict[tuple[str, str], int] = {}
        self.basis: dict[tuple[str, str], int] = {}
        self.realized: dict[tuple[str, str], int] = {}
        self.placed: dict[int, tuple[str, int]] = {}  # order id -> instrument, side
        self.losses: dict[int, int] = {}  # order id -> loss per lot fixed when placed or moved
        self.funding: dict[str, int] = {}  # per instrument, the payments of this block so far

    # -- driving --------------------------------------------------------------------------

    def _block(self, *transactions: Transaction, dt: int = 0, report: bool = False) -> list[Event]:
        """Apply a block and record its events. By default at the same time and without reports:
        the marks and funding stay where they are, so what changes is what ``transactions`` did.
        """
        marks = [(m.mark_per_lot, m.index_per_lot) for m in self.venue.engine.markets.values()]
        events = self.venue.events(*transactions, dt=dt, report=report)
        if not (dt or report):
            after = [(m.mark_per_lot, m.index_per_lot) for m in self.venue.engine.markets.values()]
            assert after == marks
        for event in events:
            self._record(event)
        return events

    def _single(self, tx: Transaction) -> tuple[list[Event], Rejected | None]:
        """Apply ``tx`` alone; if it is refused, check that nothing changed."""
        before = _snapshot(self.venue.engine)
        events = self._block(tx)
        refused = [e for e in events if isinstance(e, Rejected)]
        if not refused:
            return events, None
        hypothesis.event(f"refused {refused[0].code}")
        assert events == refused[:1], events
        assert _snapshot(self.venue.engine) == before, refused[0]
        return events, refused[0]

    def _cash(self, account: str, underlying: str, amount: int) -> None:
        key = (account, underlying)
        self.cash[key] = self.cash.get(key, 0) + amount

    def _trade(self, account: str, instrument: str, side: int, lots: int, lot_value: int) -> None:
        """The model's cost basis and realized P&L of one side of a fill."""
        key = (account, instrument)
        position = self.positions.get(key, 0)
        basis, realized = _expected_trade(position, self.basis.get(key, 0), side, lots, lot_value)
        self.basis[key] = basis
        self.realized[key] = self.realized.get(key, 0) + realized
        self.positions[key] = position + side * lots

    def _record(self, event: Event) -> None:
        """The model: money, positions, basis and the orders' losses, from the events alone."""
        engine = self.venue.engine
        if isinstance(event, Deposited):
            self.deposited += event.amount
            self._cash(event.account, event.underlying, event.amount)
        elif isinstance(event, WithdrawalRequested):
            self.withdrawn += event.amount
            self._cash(event.account, event.underlying, -event.amount)
        elif isinstance(event, Transferred):
            self._cash(event.account, event.from_underlying, -event.amount)
            self._cash(event.account, event.to_underlying, event.amount)
        elif isinstance(event, OrderAccepted):
            self.placed[event.order_id] = (event.instrument, event.side)
            market = engine.markets[event.instrument]
            self.losses[event.order_id] = _order_loss(market, event.side, event.price_ticks)
        elif isinstance(event, OrderRepriced | OrderAmended):
            instrument, side = self.placed[event.order_id]
            if not (isinstance(event, OrderAmended) and event.priority_kept):  # a new price
                market = engine.markets[instrument]
                self.losses[event.order_id] = _order_loss(market, side, event.price_ticks)
        elif isinstance(event, Fill):
            hypothesis.event("fill")
            market = engine.markets[event.instrument]
            side = event.taker_side
            lot_value = event.price_ticks * market.value_per_tick_lot
            paid = side * lot_value * event.size_lots
            self._cash(event.taker_account, market.underlying, -paid - event.taker_fee)
            self._cash(event.maker_account, market.underlying, paid - event.maker_fee)
            self._trade(event.taker_account, event.instrument, side, event.size_lots, lot_value)
            self._trade(event.maker_account, event.instrument, -side, event.size_lots, lot_value)
            self.fees += event.maker_fee + event.taker_fee
        elif isinstance(event, FundingPayment):
            market = engine.markets[event.instrument]
            self._cash(event.account, market.underlying, event.amount)
            assert event.position_lots == self.positions.get((event.account, event.instrument))
            self.funding[event.instrument] = self.funding.get(event.instrument, 0) + event.amount
        elif isinstance(event, FundingPaid):
            hypothesis.event("funding paid")
            assert event.paid - event.received == event.dust >= 0
            assert -self.funding.pop(event.instrument, 0) == event.dust
            self.dust += event.dust
        elif isinstance(event, LiquidationFee):
            hypothesis.event("liquidation fee")
            self._cash(event.account, event.underlying, -event.amount)
            self.insurance += event.amount
        elif isinstance(event, InsurancePaid):
            hypothesis.event("insurance paid")
            self._cash(event.account, event.underlying, event.amount)
            self.insurance -= event.amount
            assert not any(
                lots
                for (account, name), lots in self.positions.items()
                if account == event.account and engine.markets[name].underlying == event.underlying
            ), "only flat sub-ledgers are made whole"
        elif isinstance(event, LiquidationOrder):
            hypothesis.event("liquidation order")
            assert event.filled_lots <= event.lots
        elif isinstance(event, OrderCancelled) and event.reason == "LIQUIDATION":
            hypothesis.event("orders cancelled on entering the liquidation queue")
        else:
            assert not isinstance(event, PositionSettled), event  # perpetuals only

    # -- rules ----------------------------------------------------------------------------

    @initialize(amounts=st.lists(st.integers(200, 10_000), min_size=8, max_size=8))
    def fund(self, amounts: list[int]) -> None:
        pairs = [(a, u) for a in ACCOUNTS for u in UNDERLYINGS]
        deposits = [
            self.venue.deposit_tx(account, amount * USDC, underlying)
            for (account, underlying), amount in zip(pairs, amounts, strict=True)
            if amount
        ]
        self._block(*deposits)

    @rule(action=st.sampled_from(STEPS), data=st.data())
    def step(self, action: str, data: st.DataObject) -> None:
        """One action of :data:`ACTIONS`, with its arguments."""
        arguments = data.draw(_ACTION_ARGUMENTS[action], label=action)
        getattr(self, action)(**arguments)

    def deposit(self, account: str, underlying: str, amount: int, kind: str) -> None:
        venue = self.venue
        if kind == "new":
            tx = venue.deposit_tx(account, amount, underlying)
        else:
            deposit_id = {"repeat": venue.deposit_id, "gap": venue.deposit_id + 2}.get(
                kind, venue.deposit_id + 1
            )
            if kind == "huge":
                amount = venue.engine.limits.max_amount_minor + 1
            tx = Deposit(
                account=OPERATOR,
                deposit_id=deposit_id,
                beneficiary=account,
                underlying=underlying,
                amount=amount,
            )
        ledger = _ledger(venue.engine, account, underlying)
        cash = 0 if ledger is None else ledger.cash
        _, refused = self._single(tx)
        assert (refused is None) == (kind == "new")
        if refused is None:
            after = _ledger(venue.engine, account, underlying)
            assert after is not None
            assert after.cash == cash + amount

    def _amount(self, available: int, how: str, eighths: int, amount: int) -> int:
        """A withdrawal or transfer amount, as a part of, all of, or beyond what is available."""
        chosen = {
            "part": available * eighths // 8,
            "all": available,
            "over": available + 1,
            "huge": self.venue.engine.limits.max_amount_minor + 1,
        }.get(how, amount)
        return max(chosen, 1)

    def _may_leave(self, ledger: SubLedger | None, amount: int) -> bool:
        """The withdrawal rule: from an existing sub-ledger, not in the liquidation queue, no
        more than it may withdraw just before (and within the amount limit)."""
        return (
            ledger is not None
            and not ledger.in_liquidation
            and amount <= _standing(ledger).withdrawable
            and amount <= self.venue.engine.limits.max_amount_minor
        )

    def _available(self, ledger: SubLedger | None) -> int:
        return 0 if ledger is None else _standing(ledger).withdrawable

    def withdraw(self, account: str, underlying: str, how: str, eighths: int, amount: int) -> None:
        engine = self.venue.engine
        ledger = _ledger(engine, account, underlying)
        amount = self._amount(self._available(ledger), how, eighths, amount)
        allowed = self._may_leave(ledger, amount)
        cash = 0 if ledger is None else ledger.cash
        _, refused = self._single(Withdraw(account=account, underlying=underlying, amount=amount))
        assert (refused is None) == allowed, (refused, amount)
        if allowed:
            assert ledger is not None
            assert ledger.cash == cash - amount
            assert _standing(ledger).free >= 0

    def transfer(self, account: str, source: str, how: str, eighths: int, amount: int) -> None:
        engine = self.venue.engine
        target = "ETH" if source == "BTC" else "BTC"
        ledger = _ledger(engine, account, source)
        amount = self._amount(self._available(ledger), how, eighths, amount)
        allowed = self._may_leave(ledger, amount)
        cash = 0 if ledger is None else ledger.cash
        into = _ledger(engine, account, target)
        target_cash = 0 if into is None else into.cash
        tx = Transfer(account=account, from_underlying=source, to_underlying=target, amount=amount)
        _, refused = self._single(tx)
        assert (refused is None) == allowed, (refused, amount)
        if allowed:
            into = _ledger(engine, account, target)
            assert ledger is not None
            assert into is not None
            assert ledger.cash == cash - amount
            assert into.cash == target_cash + amount
            assert _standing(ledger).free >= 0

    def _price_near_mark(self, instrument: str, offset_bps: int) -> int:
        market = self.venue.engine.markets[instrument]
        mark_ticks = market.mark_minor // market.tick_minor
        return max(1, mark_ticks + mark_ticks * offset_bps // 10_000)

    def _check_new_risk_was_covered(
        self,
        before: Exposure | None,
        side: int,
        order: OpenOrder,
        replaced: OpenOrder,
        others: list[OpenOrder],
        events: list[Event],
    ) -> None:
        """An accepted ``order`` (or amend, of ``replaced``) that passed the margin check on the
        side that grows the position leaves free collateral >= 0, whether it rests or fills (the
        marks do not move inside a block). ``others``: the side's other open orders."""
        if before is None or not _grows(before.position, side):
            return
        if _added(before, side, order, replaced) > 0:
            hypothesis.event("accepted order that adds requirement")
        if any(isinstance(e, Fill) for e in events):
            hypothesis.event("accepted growing order filled")
        free = _standing(before.ledger).free
        assert free >= 0, (free, order, others)

    def _price(self, instrument: str, side: int, offset_bps: int, at_touch: bool) -> int:
        """Near the mark, or (``at_touch``) at up to 0.5% through the best opposite order."""
        book = self.venue.engine.books[instrument]
        best = book.best_ask() if side > 0 else book.best_bid()
        if not at_touch or best is None:
            return self._price_near_mark(instrument, offset_bps)
        return max(1, best + side * best * abs(offset_bps) // 30_000)

    def _largest(self, account: str, instrument: str, side: int, price: int, takes: bool) -> int:
        """The largest order at ``price`` the pre-trade check accepts (1 if none): free
        collateral covers what it adds to initial margin plus reserve, and a taker's fee."""
        engine = self.venue.engine
        market = engine.markets[instrument]
        ledger = _ledger(engine, account, market.underlying)
        before = _standalone(engine, account, instrument)
        if ledger is None or before is None:
            return 1
        free = _standing(ledger).free
        loss = _order_loss(market, side, price)
        fee_ppm = market.taker_fee_ppm if takes else 0

        def fits(lots: int) -> bool:
            fee = clearing.fee(price * lots * market.value_per_tick_lot, fee_ppm)
            return free - _added(before, side, (price, lots, loss), (0, 0, 0)) - fee >= 0

        low, high = 0, 1
        while fits(high) and high < 10**9:
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if fits(middle) else (low, middle)
        return max(low, 1)

    def _size(self, account: str, underlying: str, size: int, sizing: str) -> int:
        """As drawn, small, or (``all_in``) up to what the free collateral carries at the mark."""
        if sizing == "small":
            return 1 + size % 20
        if sizing != "all_in":
            return size
        engine = self.venue.engine
        ledger = _ledger(engine, account, underlying)
        market = engine.markets[PERPS[underlying]]
        per_lot = market.mark_per_lot * (market.initial_ppm + market.taker_fee_ppm) // PPM
        free = 0 if ledger is None else _standing(ledger).free
        return max(1, free * (50 + size % 50) // 100 // max(per_lot, 1))

    def _placed(
        self,
        account: str,
        instrument: str,
        side: int,
        tx: PlaceOrder,
    ) -> tuple[list[Event], Rejected | None]:
        """Apply an order; if it was accepted (and is not reduce-only), check its risk."""
        engine = self.venue.engine
        before = _standalone(engine, account, instrument)
        others = _side_orders(engine, account, instrument, side)
        events, refused = self._single(tx)
        if refused is not None or tx.reduce_only:
            return events, refused
        (accepted,) = [e for e in events if isinstance(e, OrderAccepted)]
        repriced = [e.price_ticks for e in events if isinstance(e, OrderRepriced)]
        price = repriced[0] if repriced else accepted.price_ticks  # a market order: its band
        loss = _order_loss(engine.markets[instrument], side, price)
        order = (price, tx.size_lots, loss)
        self._check_new_risk_was_covered(before, side, order, (0, 0, 0), others, events)
        return events, refused

    def place(
        self,
        account: str,
        underlying: str,
        side: int,
        offset_bps: int,
        at_touch: bool,
        size: int,
        sizing: str,
        kind: str,
        reduce_only: bool,
        fit: bool,
        client_order_id: str,
    ) -> None:
        """Any order type, near the mark or at the touch, of any size; some reduce-only (those
        with ``fit`` on the side and within the size of the position)."""
        engine = self.venue.engine
        name = PERPS[underlying]
        position = engine.position(account, name)
        size = self._size(account, underlying, size, sizing)
        if reduce_only and fit and position:
            side, size = (-1, min(size, position)) if position > 0 else (1, min(size, -position))
        price = self._price(name, side, offset_bps, at_touch)
        if sizing == "largest" and kind != "market":
            takes = kind not in ("post", "post_reject")
            size = self._largest(account, name, side, price, takes)
        tx = _place_tx(account, name, side, price, size, kind, reduce_only, client_order_id)
        self._placed(account, name, side, tx)

    def quote(
        self,
        account: str,
        underlying: str,
        half_spread_bps: int,
        skew_bps: int,
        size: int,
        sizing: str,
    ) -> None:
        """A market maker's bid and ask around the mark (post-only, repriced if they cross):
        resting liquidity for takers, and a book whose mid moves the mark off the index."""
        size = self._size(account, underlying, size, sizing)
        name = PERPS[underlying]
        for side in (1, -1):
            price = self._price_near_mark(name, skew_bps - side * half_spread_bps)
            if sizing == "largest":
                size = self._largest(account, name, side, price, False)
            events, refused = self._placed(
                account, name, side, _place_tx(account, name, side, price, size, "post", False, "")
            )
            assert refused is not None or not any(isinstance(e, Fill) for e in events)

    def cancel(self, pick: int, whose: str) -> None:
        """Cancel an open order as its owner, as another account, or one that is not open."""
        engine = self.venue.engine
        orders = list(engine.orders.values())
        if not orders:
            whose = "missing"
        order = orders[pick % len(orders)] if orders else None
        account = ACCOUNTS[pick % len(ACCOUNTS)] if order is None else order.account
        order_id = engine.next_order_id + pick % 5 if order is None else order.order_id
        if whose == "other":
            account = ACCOUNTS[(ACCOUNTS.index(account) + 1) % len(ACCOUNTS)]
        elif whose == "missing":
            order_id = engine.next_order_id + pick % 5
        events, refused = self._single(Cancel(account=account, order_id=order_id))
        assert (refused is None) == (whose == "owner")
        if refused is None:
            (cancelled,) = [e for e in events if isinstance(e, OrderCancelled)]
            assert cancelled.order_id == order_id
            assert order_id not in engine.orders

    def amend(
        self, pick: int, offset_bps: int, keep_price: bool, size_change: int, post_only: int
    ) -> None:
        """Amend an open order's price and/or size as its owner (no open order: a missing one)."""
        engine = self.venue.engine
        orders = list(engine.orders.values())
        if not orders:
            missing = Amend(account="alice", order_id=pick + 1, price_ticks=1, size_lots=1)
            _, refused = self._single(missing)
            assert refused is not None
            assert refused.code == RejectCode.ORDER_NOT_FOUND
            return
        order = orders[pick % len(orders)]
        price = order.price if keep_price else self._price_near_mark(order.instrument, offset_bps)
        size = max(order.size + size_change, 0)
        tx = Amend(
            account=order.account,
            order_id=order.order_id,
            price_ticks=price,
            size_lots=size,
            post_only=post_only,
        )
        before = _standalone(engine, order.account, order.instrument)
        side = order.side
        replaced = (order.price, order.remaining, order.loss_per_lot)
        others = _side_orders(engine, order.account, order.instrument, side, order.order_id)
        events, refused = self._single(tx)
        if refused is not None or order.reduce_only:
            return
        (amended,) = [e for e in events if isinstance(e, OrderAmended)]
        if amended.priority_kept:  # smaller, at the same price: no margin check, no new loss
            assert amended.price_ticks == replaced[0]
            assert amended.remaining_lots <= replaced[1]
            return
        market = engine.markets[order.instrument]
        loss = _order_loss(market, side, amended.price_ticks)
        new = (amended.price_ticks, amended.remaining_lots, loss)
        self._check_new_risk_was_covered(before, side, new, replaced, others, events)

    def tick(self, seconds: int, btc_bps: int, eth_bps: int, fresh: bool) -> None:
        """Time passes and prices move (within half and twice the start); without fresh
        reports for over 10 s the circuit breaker opens until the next tick with them."""
        prices = self.venue.prices
        for underlying, bps in (("BTC", btc_bps), ("ETH", eth_bps)):
            moved = prices[underlying] * (10_000 + bps) // 10_000
            start = START_PRICES[underlying]
            prices[underlying] = min(max(moved, start // 2), start * 2)
        self._block(dt=seconds * SECOND, report=fresh)

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def money_is_conserved(self) -> None:
        engine = self.venue.engine
        held = engine.total_cash() + engine.fee_pool + engine.insurance_fund + engine.dust
        assert held == engine.deposits_total - engine.withdrawals_total
        assert (engine.deposits_total, engine.withdrawals_total) == (self.deposited, self.withdrawn)
        assert (engine.fee_pool, engine.dust) == (self.fees, self.dust)
        assert engine.insurance_fund == self.insurance
        assert not self.funding  # every block's payments were summed up by FundingPaid

    @invariant()
    def ledgers_agree_with_the_events(self) -> None:
        """Cash, and each exposure's position, cost basis and realized P&L, as the model kept
        them from the fills; what is settled is what came in, less fees, plus realized P&L."""
        engine = self.venue.engine
        for account, mine in engine.accounts.items():
            for underlying, ledger in mine.ledgers.items():
                assert ledger.cash == self.cash.get((account, underlying), 0)
                settled = ledger.deposited - ledger.withdrawn + ledger.transferred
                settled += ledger.realized - ledger.fees + ledger.funding + ledger.settlements
                settled += ledger.insured
                assert ledger.cash + ledger.basis == settled
                assert ledger.realized == sum(e.realized for e in ledger.exposures.values())
                for name, exposure in ledger.exposures.items():
                    key = (account, name)
                    assert exposure.position == self.positions.get(key, 0)
                    assert exposure.basis == self.basis.get(key, 0)
                    assert exposure.realized == self.realized.get(key, 0)

    @invariant()
    def positions_net_to_zero(self) -> None:
        engine = self.venue.engine
        for name in PERPS.values():
            assert sum(engine.position(account, name) for account in engine.accounts) == 0
            market = engine.markets[name]
            assert market.long_lots == market.short_lots
            for account in ACCOUNTS:
                assert engine.position(account, name) == self.positions.get((account, name), 0)

    @invariant()
    def open_orders_keep_the_loss_they_were_placed_with(self) -> None:
        """Fixed at placement (or when an amend moved or grew the order), whatever the marks
        did since; reduce-only orders, kept out of margin, carry none."""
        for order_id, order in self.venue.engine.orders.items():
            assert order.loss_per_lot == (0 if order.reduce_only else self.losses[order_id])

    @invariant()
    def the_queue_is_the_sub_ledgers_below_maintenance(self) -> None:
        engine = self.venue.engine
        below = []
        for account, mine in engine.accounts.items():
            for underlying, ledger in mine.ledgers.items():
                standing = _standing(ledger)
                if standing.equity < standing.maintenance:
                    below.append((account, underlying))
        queue = engine.liquidation_queue
        assert sorted((q.account, q.underlying) for q in queue) == sorted(below)
        if queue:
            hypothesis.event("liquidation queue not empty")
        for first, second in itertools.pairwise(queue):
            assert _no_more_under_water(_standing(first), _standing(second))


MoneyMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50)
test_money_machine = MoneyMachine.TestCase


class ThinMarketMachine(MoneyMachine):
    """The same machine on perps with a size add-on (a market that absorbs 50 lots), so
    initial margin, reserves and the fast path's bounds grow with each position's size."""

    def __init__(self) -> None:
        super().__init__()
        self.venue = Venue(config(limits=PositionLimits(perp_liquidity_lots=50), liquidation=None))


ThinMarketMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=50)
test_thin_market_machine = ThinMarketMachine.TestCase
