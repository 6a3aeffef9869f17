"""Liquidation arithmetic: the module docstring's worked examples and properties of each rule."""

from __future__ import annotations

from fractions import Fraction

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.liquidation import (
    BUY,
    DEFAULT_LIQUIDATION_PARAMS,
    PPM,
    SELL,
    AdlCandidate,
    AdlMode,
    LiquidationParams,
    adl_allocation,
    adl_price_per_lot,
    attribute,
    backstop_price_per_lot,
    backstop_take_price_per_lot,
    band_edge_per_lot,
    bankruptcy_price_per_lot,
    better_bid,
    closing_side,
    insurance_draw,
    ioc_limit_per_lot,
    limit_ticks,
    liquidation_fee,
    loss_budget,
    per_lot_at_ticks,
    socialized_loss,
    step_lots,
)

USDC = 10**6
MARK = 100_000_000  # BTC at 100,000 USDC, lot 0.001 BTC
VALUE_PER_TICK_LOT = 1_000  # a tick of 1 USDC
BAND = 50_000
CAP = 100_000 * USDC

marks = st.integers(min_value=1, max_value=10**12)
positions = st.integers(min_value=-(10**9), max_value=10**9).filter(lambda p: p != 0)
equities = st.integers(min_value=-(10**15), max_value=10**15)
ppms = st.integers(min_value=0, max_value=PPM - 1)
sides = st.sampled_from([BUY, SELL])


# -- parameters ----------------------------------------------------------------------------------


def test_params_defaults() -> None:
    params = DEFAULT_LIQUIDATION_PARAMS
    assert params.subledgers_per_block_max == 50
    assert params.step_share_ppm_max == 100_000
    assert params.notional_per_block_quote_max == 10**11
    assert params.price_band_ppm == 50_000
    assert params.fee_ppm == 10_000
    assert params.backstop_penalty_ppm == 20_000
    assert params.adl_mode is AdlMode.PRO_RATA_RISK


def test_params_round_trip() -> None:
    params = LiquidationParams(adl_mode=AdlMode.PROFIT_LEVERAGE, fee_ppm=15_000)
    decoded = msgspec.json.decode(msgspec.json.encode(params), type=LiquidationParams)
    assert decoded == params


@pytest.mark.parametrize(
    "changes",
    [
        {"subledgers_per_block_max": 0},
        {"subledgers_per_block_max": 10_001},
        {"step_share_ppm_max": 0},
        {"step_share_ppm_max": PPM + 1},
        {"notional_per_block_quote_max": 0},
        {"price_band_ppm": PPM},
        {"price_band_ppm": -1},
        {"fee_ppm": 15_001},
        {"fee_ppm": -1},
        {"backstop_penalty_ppm": PPM},
    ],
)
def test_params_refused(changes: dict[str, int]) -> None:
    with pytest.raises(InvariantViolation):
        LiquidationParams(**changes)  # type: ignore[arg-type]


# -- worked examples -----------------------------------------------------------------------------


def test_bankruptcy_examples() -> None:
    assert bankruptcy_price_per_lot(2_000 * USDC, 1_000, MARK) == 98_000_000
    assert bankruptcy_price_per_lot(10_000 * USDC, 1_000, MARK) == 90_000_000
    assert bankruptcy_price_per_lot(-500 * USDC, 1_000, MARK) == 100_500_000
    assert bankruptcy_price_per_lot(2_000 * USDC, -1_000, MARK) == 102_000_000
    assert bankruptcy_price_per_lot(10, 3, MARK) == 99_999_997
    assert bankruptcy_price_per_lot(10, -3, MARK) == 100_000_003
    assert bankruptcy_price_per_lot(-10, 3, MARK) == 100_000_004  # CEIL of 100_000_003.33
    assert bankruptcy_price_per_lot(-10, -3, MARK) == 99_999_996  # FLOOR of 99_999_996.67
    with pytest.raises(InvariantViolation):
        bankruptcy_price_per_lot(10, 0, MARK)


def test_ioc_limit_examples() -> None:
    assert band_edge_per_lot(SELL, MARK, BAND) == 95_000_000
    assert band_edge_per_lot(BUY, MARK, BAND) == 105_000_000
    assert ioc_limit_per_lot(SELL, MARK, BAND, 98_000_000) == 98_000_000
    assert limit_ticks(SELL, 98_000_000, VALUE_PER_TICK_LOT) == 98_000
    assert ioc_limit_per_lot(SELL, MARK, BAND, 90_000_000) == 95_000_000
    assert ioc_limit_per_lot(SELL, MARK, BAND, 100_500_000) == 95_000_000
    assert ioc_limit_per_lot(SELL, MARK, BAND, MARK) == MARK  # nothing to lose: not below it
    assert ioc_limit_per_lot(BUY, MARK, BAND, MARK) == MARK
    assert ioc_limit_per_lot(BUY, MARK, BAND, 102_000_000) == 102_000_000
    assert ioc_limit_per_lot(BUY, MARK, BAND, 110_000_000) == 105_000_000
    assert ioc_limit_per_lot(BUY, MARK, BAND, 99_000_000) == 105_000_000


def test_band_edges_round_inwards() -> None:
    assert band_edge_per_lot(SELL, 999, 1) == 999  # 998.999 -> 999
    assert band_edge_per_lot(BUY, 999, 1) == 999  # 999.000999 -> 999


def test_limit_ticks_examples() -> None:
    assert limit_ticks(SELL, 98_000_001, VALUE_PER_TICK_LOT) == 98_001
    assert limit_ticks(BUY, 98_000_999, VALUE_PER_TICK_LOT) == 98_000
    assert limit_ticks(SELL, 0, VALUE_PER_TICK_LOT) == 1
    assert limit_ticks(SELL, -5_000, VALUE_PER_TICK_LOT) == 1
    assert limit_ticks(BUY, 999, VALUE_PER_TICK_LOT) == 0
    assert per_lot_at_ticks(98_000, VALUE_PER_TICK_LOT) == 98_000_000


def test_step_examples() -> None:
    assert step_lots(1_000, 100_000, CAP, MARK, 0) == 100
    assert step_lots(-1_000, 100_000, CAP, MARK, 0) == 100
    assert step_lots(30_000, 100_000, CAP, MARK, 0) == 1_000
    assert step_lots(5, 100_000, CAP, MARK, 0) == 1
    assert step_lots(1_000, 100_000, CAP, MARK, 99_950 * USDC) == 0
    assert step_lots(1_000, 100_000, CAP, MARK, CAP + 1) == 0
    assert step_lots(0, 100_000, CAP, MARK, 0) == 0
    assert step_lots(7, PPM, CAP, 0, CAP) == 7  # a zero mark: no notional limit
    # One lot worth more than the cap: the first step of the block still closes one lot.
    assert step_lots(10, 100_000, CAP, CAP * 2, 0) == 1
    assert step_lots(10, 100_000, CAP, CAP * 2, 1) == 0
    # The minimum notional: 1,000 USDC is 10 lots at 100 USDC a lot, more than 10% of 50
    assert step_lots(50, 100_000, CAP, MARK, 0, 1_000 * USDC) == 10
    assert step_lots(8, 100_000, CAP, MARK, 0, 1_000 * USDC) == 8  # all of it
    assert step_lots(1_000, 100_000, CAP, MARK, 0, 1_000 * USDC) == 100  # the share


def test_fee_examples() -> None:
    assert liquidation_fee(9_800 * USDC, 10_000, 1_900 * USDC) == 98 * USDC
    assert liquidation_fee(9_800 * USDC, 10_000, 50 * USDC) == 50 * USDC
    assert liquidation_fee(9_800 * USDC, 10_000, -50 * USDC) == 0
    assert liquidation_fee(0, 10_000, 1_000 * USDC) == 0
    assert liquidation_fee(1, 10_000, 1_000 * USDC) == 1  # CEIL


def test_backstop_examples() -> None:
    assert backstop_price_per_lot(SELL, MARK, 20_000) == 98_000_000
    assert backstop_price_per_lot(BUY, MARK, 20_000) == 102_000_000
    assert backstop_price_per_lot(SELL, 999, 1) == 998  # FLOOR of 998.999
    assert backstop_price_per_lot(BUY, 999, 1) == 1_000  # CEIL of 999.000999


def test_insurance_examples() -> None:
    assert insurance_draw(500 * USDC, 300 * USDC) == (300 * USDC, 200 * USDC)
    assert insurance_draw(500 * USDC, 800 * USDC) == (500 * USDC, 0)
    assert insurance_draw(0, 800 * USDC) == (0, 0)
    with pytest.raises(InvariantViolation):
        insurance_draw(-1, 0)


def test_closing_side() -> None:
    assert closing_side(5) == SELL
    assert closing_side(-5) == BUY
    with pytest.raises(InvariantViolation):
        closing_side(0)


def _candidate(account: str, lots: int, pnl: int = 0, equity: int = 1) -> AdlCandidate:
    return AdlCandidate(
        account=account,
        position_lots=lots,
        unrealized_pnl_quote=pnl,
        equity_quote=equity,
        notional_quote=abs(lots) * MARK,
    )


def test_adl_examples() -> None:
    shorts = [_candidate("C", -3, 50, 100), _candidate("A", -7, 100, 1_000)]
    shorts.append(_candidate("B", -5, 300, 1_000))
    assert adl_allocation(10, shorts, AdlMode.PRO_RATA_RISK) == [("A", 5), ("B", 3), ("C", 2)]
    assert adl_allocation(10, shorts, AdlMode.PROFIT_LEVERAGE) == [("C", 3), ("B", 5), ("A", 2)]
    assert adl_allocation(15, shorts, AdlMode.PRO_RATA_RISK) == [("A", 7), ("B", 5), ("C", 3)]
    assert adl_allocation(0, shorts, AdlMode.PRO_RATA_RISK) == []
    ties = [_candidate("B", 1), _candidate("A", 1)]
    assert adl_allocation(1, ties, AdlMode.PRO_RATA_RISK) == [("A", 1)]
    assert adl_allocation(1, ties, AdlMode.PROFIT_LEVERAGE) == [("A", 1)]


def test_adl_profit_leverage_puts_no_equity_first() -> None:
    candidates = [
        _candidate("A", 5, pnl=1_000, equity=1),
        _candidate("B", 5, pnl=-10, equity=0),
        _candidate("C", 5, pnl=20, equity=-5),
    ]
    allocation = adl_allocation(12, candidates, AdlMode.PROFIT_LEVERAGE)
    assert allocation == [("C", 5), ("B", 5), ("A", 2)]


def test_adl_refusals() -> None:
    with pytest.raises(InvariantViolation):
        adl_allocation(16, [_candidate("A", -7), _candidate("B", -8)], AdlMode.PRO_RATA_RISK)
    with pytest.raises(InvariantViolation):
        adl_allocation(1, [_candidate("A", -7), _candidate("B", 8)], AdlMode.PRO_RATA_RISK)
    with pytest.raises(InvariantViolation):
        adl_allocation(1, [_candidate("A", 7), _candidate("A", 8)], AdlMode.PRO_RATA_RISK)
    with pytest.raises(InvariantViolation):
        adl_allocation(1, [_candidate("A", 7), _candidate("B", 0)], AdlMode.PRO_RATA_RISK)
    with pytest.raises(InvariantViolation):
        adl_allocation(-1, [_candidate("A", 7)], AdlMode.PRO_RATA_RISK)


def test_adl_price_is_the_bankruptcy_price() -> None:
    # A long of 1_000 lots 500 USDC under water after the fund: the shorts buy it at 100,500.
    assert adl_price_per_lot(-500 * USDC, 1_000, MARK) == 100_500_000
    assert adl_price_per_lot(-500 * USDC, -1_000, MARK) == 99_500_000


# -- properties ----------------------------------------------------------------------------------


@given(equity=equities, position=positions, mark=marks)
def test_bankruptcy_price_zeroes_equity(equity: int, position: int, mark: int) -> None:
    price = bankruptcy_price_per_lot(equity, position, mark)
    after = equity + position * (price - mark)
    assert 0 <= after < abs(position)  # within a minor unit per lot, never below zero
    assert adl_price_per_lot(equity, position, mark) == price


@given(side=sides, mark=marks, band=ppms, bankruptcy=st.integers(-(10**13), 10**13))
def test_ioc_limit_within_band_and_bankruptcy(
    side: int, mark: int, band: int, bankruptcy: int
) -> None:
    limit = ioc_limit_per_lot(side, mark, band, bankruptcy)
    exact_edge = Fraction(mark * (PPM + side * band), PPM)
    if side == SELL:
        assert exact_edge <= limit <= max(Fraction(mark), exact_edge)  # never beyond the band
        if exact_edge <= bankruptcy <= mark:
            assert limit >= bankruptcy
    else:
        assert min(Fraction(mark), exact_edge) <= limit <= exact_edge
        if mark <= bankruptcy <= exact_edge:
            assert limit <= bankruptcy


@given(
    side=sides,
    limit=st.integers(-(10**13), 10**13),
    value=st.integers(min_value=1, max_value=10**6),
)
def test_limit_ticks_never_worse(side: int, limit: int, value: int) -> None:
    ticks = limit_ticks(side, limit, value)
    price = per_lot_at_ticks(ticks, value)
    if side == SELL:
        assert ticks >= 1
        assert price >= limit
        assert ticks == 1 or price - value < limit  # the nearest tick that is not worse
    else:
        assert ticks >= 0
        assert price <= limit or ticks == 0
        assert ticks == 0 or price + value > limit


@given(
    position=st.integers(-(10**9), 10**9),
    share=st.integers(min_value=1, max_value=PPM),
    cap=st.integers(min_value=1, max_value=10**15),
    mark=st.integers(min_value=0, max_value=10**12),
    already=st.integers(min_value=0, max_value=10**15),
)
def test_step_lots_respects_every_cap(
    position: int, share: int, cap: int, mark: int, already: int
) -> None:
    lots = step_lots(position, share, cap, mark, already)
    held = abs(position)
    assert 0 <= lots <= held
    assert lots * PPM <= held * share + PPM - 1  # at most CEIL(share x |position|)
    first_lot_exception = already == 0 and lots == 1
    assert lots * mark <= max(0, cap - already) or first_lot_exception
    caps_allow = already + mark <= cap or already == 0 or mark == 0
    if held and caps_allow:
        assert lots >= 1
    # Maximal: one more lot would break a cap.
    if 0 < lots < held and lots * PPM < held * share:
        assert already + (lots + 1) * mark > cap


@given(
    notional=st.integers(min_value=0, max_value=10**15),
    fee=st.integers(min_value=0, max_value=15_000),
    equity_after=equities,
)
def test_fee_never_exceeds_positive_equity(notional: int, fee: int, equity_after: int) -> None:
    paid = liquidation_fee(notional, fee, equity_after)
    assert 0 <= paid <= max(0, equity_after)
    assert paid * PPM >= min(notional * fee, max(0, equity_after) * PPM)
    assert liquidation_fee(0, fee, equity_after) == 0


@given(side=sides, mark=marks, penalty=ppms)
def test_backstop_price_charges_the_penalty(side: int, mark: int, penalty: int) -> None:
    price = backstop_price_per_lot(side, mark, penalty)
    exact = Fraction(mark * (PPM + side * penalty), PPM)
    if side == SELL:
        assert exact - 1 < price <= exact <= mark
    else:
        assert mark <= exact <= price < exact + 1


@given(deficit=st.integers(0, 10**15), fund=st.integers(0, 10**15))
def test_insurance_draw_conserves(deficit: int, fund: int) -> None:
    paid, uncovered = insurance_draw(deficit, fund)
    assert paid + uncovered == deficit
    assert 0 <= paid <= fund
    assert uncovered == 0 or paid == fund


@st.composite
def adl_cases(draw: st.DrawFn) -> tuple[int, list[AdlCandidate]]:
    sign = draw(st.sampled_from([1, -1]))
    names = draw(st.lists(st.text("abcdef", min_size=1, max_size=3), min_size=1, unique=True))
    candidates = [
        AdlCandidate(
            account=name,
            position_lots=sign * draw(st.integers(1, 10**6)),
            unrealized_pnl_quote=draw(st.integers(-(10**9), 10**9)),
            equity_quote=draw(st.integers(-(10**3), 10**9)),
            notional_quote=draw(st.integers(0, 10**12)),
        )
        for name in names
    ]
    total = sum(abs(candidate.position_lots) for candidate in candidates)
    return draw(st.integers(0, total)), candidates


@given(case=adl_cases(), mode=st.sampled_from(list(AdlMode)), data=st.data())
def test_adl_allocation_properties(
    case: tuple[int, list[AdlCandidate]], mode: AdlMode, data: st.DataObject
) -> None:
    lots, candidates = case
    allocation = adl_allocation(lots, candidates, mode)
    held = {candidate.account: abs(candidate.position_lots) for candidate in candidates}
    assert sum(closed for _, closed in allocation) == lots
    assert len({account for account, _ in allocation}) == len(allocation)
    for account, closed in allocation:
        assert 0 < closed <= held[account]
    shuffled = data.draw(st.permutations(candidates))
    assert adl_allocation(lots, shuffled, mode) == allocation
    if mode == AdlMode.PRO_RATA_RISK:
        total = sum(held.values())
        closed_by = dict(allocation)
        for account, holding in held.items():
            exact = Fraction(lots * holding, total)
            assert abs(closed_by.get(account, 0) - exact) < 1
    else:
        # Everyone but the last one closed closes in full.
        for account, closed in allocation[:-1]:
            assert closed == held[account]


@given(case=adl_cases(), extra=st.integers(1, 10))
def test_adl_refuses_too_few_lots(case: tuple[int, list[AdlCandidate]], extra: int) -> None:
    _, candidates = case
    total = sum(abs(candidate.position_lots) for candidate in candidates)
    with pytest.raises(InvariantViolation):
        adl_allocation(total + extra, candidates, AdlMode.PRO_RATA_RISK)


# -- the backstop's price, the loss budget, attribution, ADL's cost, keepers' bids ---------------


def test_backstop_take_price_examples() -> None:
    # well collateralized: the penalty; thin equity: all of it; bankrupt: the mark
    assert backstop_take_price_per_lot(SELL, MARK, 20_000, 90_000_000) == 98_000_000
    assert backstop_take_price_per_lot(SELL, MARK, 20_000, 99_000_000) == 99_000_000
    assert backstop_take_price_per_lot(SELL, MARK, 20_000, 100_500_000) == MARK
    assert backstop_take_price_per_lot(BUY, MARK, 20_000, 110_000_000) == 102_000_000
    assert backstop_take_price_per_lot(BUY, MARK, 20_000, 101_000_000) == 101_000_000
    assert backstop_take_price_per_lot(BUY, MARK, 20_000, 99_000_000) == MARK


@given(side=sides, mark=marks, penalty=ppms, equity=equities, position=positions)
def test_the_backstop_never_deepens_a_deficit_nor_takes_more_than_the_penalty(
    side: int, mark: int, penalty: int, equity: int, position: int
) -> None:
    position = abs(position) * (1 if side == SELL else -1)  # the side closes the position
    bankruptcy = bankruptcy_price_per_lot(equity, position, mark)
    price = backstop_take_price_per_lot(side, mark, penalty, bankruptcy)
    penalty_price = backstop_price_per_lot(side, mark, penalty)
    left = equity + position * (price - mark)  # the sub-ledger's equity after the take
    if side == SELL:
        assert penalty_price <= price <= mark  # never worse than the penalty, never a gift
    else:
        assert mark <= price <= penalty_price
    if equity >= 0:
        assert left >= 0  # a solvent position is never taken below zero
    else:
        assert left == equity  # a bankrupt one changes hands at the mark


def test_loss_budget() -> None:
    assert loss_budget(500, 10_000) == 500  # solvent: its own equity, no subsidy
    assert loss_budget(-500, 10_000) == 9_500  # bankrupt: what the fund can still cover
    assert loss_budget(-500, 300) == 0
    with pytest.raises(InvariantViolation):
        loss_budget(0, -1)


@given(
    amount=equities,
    weights=st.lists(st.integers(0, 10**12), min_size=1, max_size=8),
)
def test_attribution_is_exact_and_proportional(amount: int, weights: list[int]) -> None:
    shares = attribute(amount, weights)
    assert sum(shares) == amount
    total = sum(weights)
    if total:
        for share, weight in zip(shares, weights, strict=True):
            exact = Fraction(amount * weight, total)
            if weight != max(weights):
                assert exact - 1 < share <= exact


def test_socialized_loss_and_better_bids() -> None:
    assert socialized_loss(SELL, 10, 100_500_000, MARK) == 5_000_000
    assert socialized_loss(BUY, 10, 99_500_000, MARK) == 5_000_000
    assert better_bid(SELL, 5, 0)
    assert better_bid(SELL, 6, 5)
    assert not better_bid(SELL, 5, 5)
    assert better_bid(BUY, 4, 5)
    assert not better_bid(BUY, 6, 5)


@pytest.mark.parametrize(
    "changes",
    [
        {"stale_price_band_ppm": 40_000},
        {"stale_price_band_ppm": PPM},
        {"stress_taker_share_ppm": 0},
        {"stress_taker_share_ppm": PPM + 1},
        {"keeper_auction_ns": 0},
    ],
)
def test_new_params_refused(changes: dict[str, int]) -> None:
    with pytest.raises(InvariantViolation):
        LiquidationParams(**changes)  # type: ignore[arg-type]
