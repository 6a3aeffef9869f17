"""Through the engine: portfolio margin chosen per sub-ledger, and dynamic margin widening every
rate along its formula when blocks slow down, phased in."""

from __future__ import annotations

from strikechain.engine.codes import RejectCode
from strikechain.engine.dynamic import (
    DynamicParams,
    liquidation_horizon_ns,
    phase_in_step_ppm,
    scaled_ppm,
)
from strikechain.engine.events import LiquidationQueued, MarginModeSet, MarginMultiplier
from strikechain.engine.params import MarginParams
from strikechain.engine.portfolio import build_scenario_table, portfolio_requirement
from strikechain.engine.snapshot import capture, restore
from strikechain.engine.txs import MarginMode, PostOnly, SetMarginMode
from tests.engine.venue import (
    BTC_PRICE,
    SECOND,
    TICKS_AT_100K,
    USDC,
    Venue,
    config,
    of_type,
    rejections,
)

MAKER = {"post_only": PostOnly.REJECT}
BTC_PERP = "BTC_USDC-PERPETUAL"


def long_perp(cash: int) -> Venue:
    """alice long 100 lots (10,000 USDC at 100,000) of the BTC perpetual with ``cash``."""
    venue = Venue()
    venue.deposit("alice", cash)
    venue.deposit("bob", 1_000_000 * USDC)
    venue.place("bob", -1, TICKS_AT_100K, 100, **MAKER)
    assert not rejections(venue.place("alice", 1, TICKS_AT_100K, 100))
    return venue


def portfolio_of(venue: Venue, account: str) -> tuple[int, int]:
    """The portfolio model's (initial, maintenance) for ``account``'s BTC positions, computed
    here from the engine's markets (not through the engine's own cache)."""
    engine = venue.engine
    state = engine.underlyings["BTC"]
    markets = list(state.markets.values())
    table = build_scenario_table(
        state.params.portfolio,  # type: ignore[union-attr]
        markets,
        [float("nan")] * len(markets),
        index_minor=state.epoch_index,
        confidence_minor=state.epoch_confidence,
        now_ns=state.epoch_ns,
    )
    rows = {market.name: row for row, market in enumerate(markets)}
    positions = [
        (rows[name], exposure.position)
        for name, exposure in engine.accounts[account].exposures.items()
        if exposure.position
    ]
    result = portfolio_requirement(positions, table)
    return result.initial, result.maintenance


def test_a_naked_perp_needs_more_under_portfolio_margin_and_the_switch_is_checked() -> None:
    # standard: 5% initial of 10,000 USDC = 500 USDC; the portfolio prices a crash
    venue = long_perp(700 * USDC)
    standard = venue.ledger("alice")
    assert (standard.initial, standard.maintenance) == (500 * USDC, 300 * USDC)
    switch = SetMarginMode(account="alice", underlying="BTC", mode=MarginMode.PORTFOLIO)
    assert rejections(venue.events(switch)) == [RejectCode.INSUFFICIENT_MARGIN]
    assert not venue.ledger("alice").portfolio
    assert venue.ledger("alice").initial == 500 * USDC

    venue.deposit("alice", 5_000 * USDC)
    events = venue.events(switch)
    [chosen] = of_type(events, MarginModeSet)
    ledger = venue.ledger("alice")
    assert ledger.portfolio
    initial, maintenance = portfolio_of(venue, "alice")
    assert (chosen.initial, chosen.maintenance) == (ledger.initial, ledger.maintenance)
    assert (ledger.initial, ledger.maintenance) == (initial, maintenance)
    # the worst loss of a long is the extended table's -66% move, dampened to a third
    # (6,600 USDC x 333,334 ppm = 2,200.0044 USDC), beyond the regular grid's -16% (1,600 USDC)
    assert maintenance == 2_200_004_400
    assert initial == 2_860_005_720  # x 1.3

    # back to standard
    venue.events(SetMarginMode(account="alice", underlying="BTC", mode=MarginMode.STANDARD))
    assert (venue.ledger("alice").initial, venue.ledger("alice").maintenance) == (
        500 * USDC,
        300 * USDC,
    )


def test_portfolio_margin_follows_fills_marks_and_a_restore() -> None:
    venue = long_perp(10_000 * USDC)
    venue.events(SetMarginMode(account="alice", underlying="BTC", mode=MarginMode.PORTFOLIO))
    venue.place("bob", -1, TICKS_AT_100K, 50, **MAKER)
    venue.place("alice", 1, TICKS_AT_100K, 50)  # a fill: the position moves
    venue.prices["BTC"] = 104_000 * USDC  # the marks move
    venue.events()
    ledger = venue.ledger("alice")
    assert ledger.maintenance == portfolio_of(venue, "alice")[1]
    restored = restore(capture(venue.engine), venue=venue.engine.venue)
    copy = restored.get_ledger("alice", "BTC")
    assert copy is not None
    assert copy.portfolio
    assert (copy.initial, copy.maintenance) == (ledger.initial, ledger.maintenance)


def test_slow_blocks_widen_margin_along_the_formula_and_phase_in() -> None:
    dynamic = DynamicParams(phase_in_blocks=10)
    venue = Venue(config(dynamic=dynamic))
    venue.deposit("alice", 100_000 * USDC)
    venue.deposit("bob", 1_000_000 * USDC)
    venue.place("bob", -1, TICKS_AT_100K, 100, **MAKER)
    venue.place("alice", 1, TICKS_AT_100K, 100)
    for _ in range(20):  # calm: a block every 250 ms
        venue.events(dt=SECOND // 4)
    state = venue.engine.underlyings["BTC"]
    assert state.margin_multiplier_ppm == 1_000_000
    # blocks stall: 20 s gaps. The horizon is the recent interval plus the gap
    multipliers = []
    for _ in range(12):
        interval = state.dynamic.interval_ns  # type: ignore[union-attr]
        events = venue.events(dt=20 * SECOND)
        horizon = liquidation_horizon_ns(interval, 20 * SECOND, 0, dynamic)
        assert state.dynamic.horizon_ns == horizon  # type: ignore[union-attr]
        multiplier = state.margin_multiplier_ppm
        multipliers.append(multiplier)
        if len(multipliers) > 1 and multipliers[-1] != multipliers[-2]:
            assert of_type(events, MarginMultiplier)[0].multiplier_ppm == multiplier
        market = venue.engine.markets[BTC_PERP]
        margin = MarginParams()
        assert market.maintenance_ppm == scaled_ppm(margin.perp_maintenance_ppm, multiplier)
        assert market.initial_ppm == scaled_ppm(margin.perp_initial_ppm, multiplier)
        # alice's maintenance follows: 100 lots at the mark x the scaled rate
        ledger = venue.ledger("alice")
        notional = 100 * market.mark_per_lot
        assert ledger.maintenance == -(-notional * market.maintenance_ppm // 1_000_000)
    step = phase_in_step_ppm(state.dynamic.target_ppm, dynamic)  # type: ignore[union-attr]
    rises = [b - a for a, b in zip([1_000_000, *multipliers], multipliers, strict=False)]
    assert all(0 <= rise <= max(step, 1) for rise in rises), rises  # never a jump
    assert multipliers[-1] == state.dynamic.target_ppm > 1_000_000  # type: ignore[union-attr]
    # blocks are fast again: the multiplier falls back at once
    for _ in range(40):
        venue.events(dt=SECOND // 4)
    assert state.margin_multiplier_ppm < multipliers[-1]


def test_holders_proven_safe_are_skipped_until_the_marks_travel_past_their_band() -> None:
    """alice (10,000 USDC) and carol (700 USDC) are long 100 lots at 100,000; every block
    the index falls 0.05%. Every block ``Venue.apply`` runs ``Engine.check``, which asserts
    that whoever is below maintenance, and only they, are queued: skipping is never wrong."""
    venue = Venue()
    venue.deposit("alice", 10_000 * USDC)
    venue.deposit("carol", 700 * USDC)
    venue.deposit("bob", 1_000_000 * USDC)
    venue.place("bob", -1, TICKS_AT_100K, 200, **MAKER)
    venue.place("alice", 1, TICKS_AT_100K, 100)
    venue.place("carol", 1, TICKS_AT_100K, 100)
    engine = venue.engine
    skipped_before = engine.health_skipped
    queued_at = None
    for step in range(1, 200):
        venue.prices["BTC"] = BTC_PRICE * (10_000 - 5 * step) // 10_000
        events = venue.events()
        if of_type(events, LiquidationQueued):
            [entry] = of_type(events, LiquidationQueued)
            assert entry.account == "carol"
            queued_at = step
            break
    assert queued_at is not None
    carol = venue.ledger("carol")
    assert carol.cash + carol.value < carol.maintenance
    # alice, far from maintenance, was skipped on most of those oracle updates
    assert engine.health_skipped - skipped_before >= queued_at // 2


def test_the_ladder_flags_below_search_and_withdrawals_stop_at_the_release_level() -> None:
    """With dynamic margin on, the Vega-style ladder applies (defaults: search 1.1x, release
    1.4x of maintenance). carol is long 100 lots at 100,000 (maintenance 300 USDC at 3%)."""
    from strikechain.engine.events import MarginCall
    from strikechain.engine.txs import Withdraw

    thin = MarginParams(perp_initial_ppm=35_000, perp_maintenance_ppm=30_000)
    venue = Venue(config(margin=thin, dynamic=DynamicParams(horizon_ref_ns=60 * SECOND)))
    venue.deposit("carol", 1_000 * USDC)
    venue.deposit("bob", 1_000_000 * USDC)
    venue.place("bob", -1, TICKS_AT_100K, 100, **MAKER)
    venue.place("carol", 1, TICKS_AT_100K, 100)
    carol = venue.ledger("carol")
    assert (carol.initial, carol.maintenance) == (350 * USDC, 300 * USDC)
    # initial margin would let all but 350 USDC leave; the release level keeps 1.4 x 300
    equity = carol.cash + carol.value
    too_much = Withdraw(account="carol", underlying="BTC", amount=equity - 400 * USDC)
    assert rejections(venue.events(too_much)) == [RejectCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL]
    release = Withdraw(account="carol", underlying="BTC", amount=equity - 420 * USDC)
    assert not rejections(venue.events(release))
    # the index falls until carol's equity (420 USDC at 100,000) drops below 1.1 x maintenance
    flagged_at = None
    for step in range(1, 100):
        venue.prices["BTC"] = BTC_PRICE * (10_000 - 2 * step) // 10_000
        calls = of_type(venue.events(), MarginCall)
        if calls:
            assert [(c.account, c.flagged) for c in calls] == [("carol", True)]
            flagged_at = step
            break
    assert flagged_at is not None
    ledger = venue.ledger("carol")
    assert not ledger.in_liquidation  # flagged, not yet below maintenance
    assert (ledger.cash + ledger.value) * 10 < 11 * ledger.maintenance


def test_portfolio_margin_keeps_a_sub_ledger_inside_the_models_proven_bounds() -> None:
    from strikechain.engine.portfolio import PortfolioParams

    bounded = PortfolioParams(max_lots_per_position=150)
    venue = Venue(config(portfolio=bounded))
    venue.deposit("alice", 100_000 * USDC)
    venue.deposit("bob", 1_000_000 * USDC)
    venue.place("bob", -1, TICKS_AT_100K, 300, **MAKER)
    venue.place("alice", 1, TICKS_AT_100K, 100)
    switch = SetMarginMode(account="alice", underlying="BTC", mode=MarginMode.PORTFOLIO)
    assert not rejections(venue.events(switch))
    # 100 held, a bid of 60 could take it to 160 > 150 lots
    assert rejections(venue.place("alice", 1, TICKS_AT_100K - 10, 60, **MAKER)) == [
        RejectCode.POSITION_CAP
    ]
    assert not rejections(venue.place("alice", 1, TICKS_AT_100K - 10, 50, **MAKER))
    # carol holds 200 on standard margin: she may not switch
    venue.deposit("carol", 100_000 * USDC)
    venue.place("carol", 1, TICKS_AT_100K, 200)
    assert venue.engine.position("carol", BTC_PERP) == 200
    carol_switch = SetMarginMode(account="carol", underlying="BTC", mode=MarginMode.PORTFOLIO)
    assert rejections(venue.events(carol_switch)) == [RejectCode.POSITION_CAP]
    assert not venue.ledger("carol").portfolio


def test_a_bad_margin_mode_is_a_typed_error_and_an_unknown_underlying_is_refused() -> None:
    import pytest

    from strikechain.engine.codes import Rejection

    for mode in (0, 3, True, "2"):
        with pytest.raises(Rejection) as refused:
            SetMarginMode(account="alice", underlying="BTC", mode=mode)  # type: ignore[arg-type]
        assert refused.value.code == RejectCode.INVALID_ORDER
    venue = Venue()
    venue.deposit("alice", 1_000 * USDC)
    unknown = SetMarginMode(account="alice", underlying="DOGE", mode=MarginMode.PORTFOLIO)
    assert rejections(venue.events(unknown)) == [RejectCode.UNKNOWN_UNDERLYING]
    assert not venue.ledger("alice").portfolio
