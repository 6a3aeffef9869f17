"""Dynamic margin: the documented formula, phase-in, the vol estimator, the ladder."""

from __future__ import annotations

import itertools
import math
import random
from decimal import ROUND_CEILING, Decimal, localcontext

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strikechain.engine.dynamic import (
    MAX_VARIANCE_E18,
    NANOS_PER_YEAR,
    PPM,
    DynamicParams,
    DynamicState,
    LadderLevel,
    ladder_state,
    liquidation_horizon_ns,
    max_horizon_ns,
    new_state,
    observe_block,
    phase_in_step_ppm,
    phased_multiplier_ppm,
    realized_vol_ppm,
    reference_variance_e18,
    releasable,
    scaled_ppm,
    target_multiplier_ppm,
    updated_variance_e18,
)
from strikechain.engine.invariant import InvariantViolation

MS = 1_000_000
SECOND = 1_000 * MS
GENESIS_NS = 1_700_000_000 * SECOND
BTC = 100_000_000_000
"""100,000 USDC in minor units."""
PARAMS = DynamicParams()


def _variance_e18(vol_ppm: int) -> int:
    return (vol_ppm * 1_000) ** 2


def _calm_state(blocks: int = 20, index: int = BTC) -> tuple[DynamicState, int]:
    """A state after ``blocks`` blocks of 250 ms with a flat index; returns it and the time."""
    state = new_state(PARAMS)
    now = GENESIS_NS
    for _ in range(blocks):
        observe_block(state, PARAMS, now, index, 0)
        now += 250 * MS
    return state, now - 250 * MS


# -- worked examples of the docstring ------------------------------------------------------------


def test_calm_market_with_250ms_blocks_has_multiplier_one() -> None:
    state, _ = _calm_state()
    assert state.interval_ns == 250 * MS
    assert state.horizon_ns == 500 * MS
    assert state.target_ppm == state.multiplier_ppm == PPM
    assert realized_vol_ppm(state) == PARAMS.sigma_ref_ppm


def test_a_20s_gap_sets_the_horizon_and_target_by_the_formula() -> None:
    state, now = _calm_state()
    observe_block(state, PARAMS, now + 20 * SECOND, BTC, 0)
    assert state.horizon_ns == 250 * MS + 20 * SECOND
    assert state.target_ppm == 4_500_000  # sqrt(20.25 s / 1 s)
    assert phase_in_step_ppm(4_500_000, PARAMS) == 87_500
    assert state.multiplier_ppm == PPM + 87_500
    # The gap enters the block interval EWMA afterwards, with weight 1/8.
    assert state.interval_ns == 250 * MS + (20 * SECOND - 250 * MS) // 8


def test_a_backlog_of_50_with_capacity_10_lengthens_the_horizon() -> None:
    state, now = _calm_state()
    observe_block(state, PARAMS, now + 250 * MS, BTC, 50)
    assert state.horizon_ns == 1_750 * MS  # 0.25 + 0.25 + 50 / 10 x 0.25
    assert state.target_ppm == 1_322_876  # ceil(1e6 sqrt(1.75))
    assert state.multiplier_ppm == PPM + math.ceil(322_876 / 40)


def test_high_realized_vol_scales_by_sigma_over_sigma_ref() -> None:
    assert target_multiplier_ppm(_variance_e18(1_600_000), 500 * MS, PARAMS) == 2_000_000
    assert target_multiplier_ppm(_variance_e18(1_600_000), 1_750 * MS, PARAMS) == 2_645_752
    # Below the reference, either factor is floored at 1.
    assert target_multiplier_ppm(_variance_e18(400_000), 100 * MS, PARAMS) == PPM
    assert target_multiplier_ppm(_variance_e18(400_000), 4 * SECOND, PARAMS) == 2_000_000
    # Capped at 5x.
    assert target_multiplier_ppm(_variance_e18(4_000_000), 4 * SECOND, PARAMS) == 5 * PPM


def test_high_vol_state_gives_the_vol_factor_through_observe_block() -> None:
    state, now = _calm_state()
    state.variance_e18 = _variance_e18(1_600_000)
    observe_block(state, PARAMS, now + 250 * MS, BTC, 0)
    assert state.target_ppm == 2_000_000
    assert realized_vol_ppm(state) == 1_600_000


@pytest.mark.parametrize(
    ("vol_ppm", "horizon_ns"),
    [(800_000, 1), (900_000, 3 * SECOND), (1_234_567, 7_654 * MS), (3_000_000, 2 * SECOND)],
)
def test_target_is_the_ceiling_of_the_exact_formula(vol_ppm: int, horizon_ns: int) -> None:
    with localcontext() as context:
        context.prec = 60
        vol_factor = max(Decimal(1), Decimal(vol_ppm) / PARAMS.sigma_ref_ppm)
        horizon_factor = max(Decimal(1), Decimal(horizon_ns) / PARAMS.horizon_ref_ns).sqrt()
        exact = (vol_factor * horizon_factor * PPM).to_integral_value(rounding=ROUND_CEILING)
    target = target_multiplier_ppm(_variance_e18(vol_ppm), horizon_ns, PARAMS)
    assert target == min(int(exact), PARAMS.multiplier_cap_ppm)


def test_horizon_is_capped_where_the_multiplier_caps() -> None:
    assert max_horizon_ns(PARAMS) == 25 * SECOND
    assert liquidation_horizon_ns(SECOND, 10**15, 0, PARAMS) == 25 * SECOND
    assert target_multiplier_ppm(PARAMS.sigma_ref_ppm, 25 * SECOND, PARAMS) == 5 * PPM


# -- a scripted slow-block period ---------------------------------------------------------------


def test_slow_blocks_widen_phase_in_and_relax() -> None:
    state = new_state(PARAMS)
    now = GENESIS_NS
    n = PARAMS.phase_in_blocks
    schedule = [250 * MS] * 40 + [10 * SECOND] * 80 + [250 * MS] * 60
    targets: list[int] = []
    multipliers: list[int] = []
    for i, gap in enumerate(schedule):
        now += gap
        interval_before = state.interval_ns
        before = state.multiplier_ppm
        observe_block(state, PARAMS, now, BTC, 0)
        if i > 0:
            horizon = interval_before + gap
            assert state.horizon_ns == horizon
            assert state.target_ppm == target_multiplier_ppm(state.variance_e18, horizon, PARAMS)
        rise = state.multiplier_ppm - before
        assert rise <= phase_in_step_ppm(state.target_ppm, PARAMS)
        assert rise <= math.ceil((PARAMS.multiplier_cap_ppm - PPM) / n)
        assert PPM <= state.multiplier_ppm <= state.target_ppm
        targets.append(state.target_ppm)
        multipliers.append(state.multiplier_ppm)

    fast, slow = multipliers[:40], multipliers[40:120]
    assert set(fast) == {PPM}
    # Widens towards sqrt(10 s EWMA + 10 s gap) = sqrt(20).
    assert 4_460_000 < targets[119] <= 4_472_136
    assert slow[0] == PPM + phase_in_step_ppm(targets[40], PARAMS)  # no jump in one block
    # Whenever the target stays at or above T for n blocks, the multiplier is at least T.
    for end in range(n - 1, len(targets)):
        assert multipliers[end] >= min(targets[end - n + 1 : end + 1])
    # The target itself climbs for ~20 blocks as the interval EWMA learns the slow blocks, so
    # the multiplier catches it a few blocks after n (here the 43rd slow block), then tracks it.
    caught = next(i for i in range(40, 120) if multipliers[i] == targets[i])
    assert caught - 40 == n + 2
    assert multipliers[caught:120] == targets[caught:120]
    # Relaxes at once with the target, down to 1x within 30 fast blocks.
    relax = multipliers[120:]
    assert relax == targets[120:]
    assert all(a >= b for a, b in itertools.pairwise(relax))
    assert relax[30] == PPM
    assert relax[0] < multipliers[119]


@settings(max_examples=200, deadline=None)
@given(
    current=st.integers(PPM, 5 * PPM),
    target=st.integers(PPM, 5 * PPM),
    phase_in_blocks=st.integers(1, 200),
)
def test_a_constant_target_is_reached_within_phase_in_blocks(
    current: int, target: int, phase_in_blocks: int
) -> None:
    params = DynamicParams(phase_in_blocks=phase_in_blocks)
    step = phase_in_step_ppm(target, params)
    value = current
    for _ in range(phase_in_blocks):
        new = phased_multiplier_ppm(value, target, params)
        assert new - value <= step
        value = new
    assert value == target
    if target < current:
        assert phased_multiplier_ppm(current, target, params) == target


# -- the realized vol estimator -----------------------------------------------------------------


def _random_walk_vol_ppm(vol: float, seed: int, irregular: bool) -> int:
    rng = random.Random(seed)
    state = new_state(PARAMS)
    now = GENESIS_NS
    price = float(BTC)
    for _ in range(8 * 3_600):
        gap = rng.randint(100 * MS, 2 * SECOND) if irregular else SECOND
        now += gap
        price *= math.exp(rng.gauss(0.0, vol * math.sqrt(gap / NANOS_PER_YEAR)))
        observe_block(state, PARAMS, now, round(price), 0)
    return realized_vol_ppm(state)


@pytest.mark.parametrize(
    ("vol", "seed", "irregular"),
    [(1.0, 1, False), (0.5, 2, False), (2.0, 3, False), (1.0, 4, True), (0.3, 5, True)],
)
def test_vol_estimator_tracks_a_random_walk(vol: float, seed: int, irregular: bool) -> None:
    estimate = _random_walk_vol_ppm(vol, seed, irregular) / PPM
    assert abs(estimate - vol) < 0.05 * vol, f"seed {seed}: {estimate} vs {vol}"


def test_an_unchanged_index_holds_the_estimate() -> None:
    state, now = _calm_state(blocks=3)
    state.variance_e18 = _variance_e18(1_500_000)
    for _ in range(1_000):
        now += SECOND
        observe_block(state, PARAMS, now, BTC, 0)
        observe_block(state, PARAMS, now, None, 0)
    assert state.variance_e18 == _variance_e18(1_500_000)
    assert state.index_ns == GENESIS_NS


def test_variance_update_is_the_documented_rational() -> None:
    tau = PARAMS.variance_tau_ns
    variance = reference_variance_e18(PARAMS)
    p0, p1, dt = BTC, BTC + 50_000_000, 3 * SECOND
    numerator = variance * tau * (p0 + p1) ** 2 + 4 * (p1 - p0) ** 2 * NANOS_PER_YEAR * 10**18
    expected = -(-numerator // ((dt + tau) * (p0 + p1) ** 2))
    assert updated_variance_e18(variance, p0, p1, dt, PARAMS) == expected
    # Symmetric in up and down moves, and close to the log return.
    assert updated_variance_e18(variance, p1, p0, dt, PARAMS) == expected
    midpoint = 2 * (p1 - p0) / (p1 + p0)
    assert abs(midpoint - math.log(p1 / p0)) < 1e-9
    # Capped.
    assert updated_variance_e18(MAX_VARIANCE_E18, 1, 10**12, 0, PARAMS) == MAX_VARIANCE_E18


def test_the_first_index_is_recorded_without_a_sample() -> None:
    state = new_state(PARAMS)
    observe_block(state, PARAMS, GENESIS_NS, None, 0)
    observe_block(state, PARAMS, GENESIS_NS + SECOND, BTC, 0)
    assert state.variance_e18 == reference_variance_e18(PARAMS)
    assert (state.index, state.index_ns) == (BTC, GENESIS_NS + SECOND)


# -- bounds and determinism ---------------------------------------------------------------------

_block = st.tuples(
    st.integers(0, 120 * SECOND),
    st.one_of(st.none(), st.integers(-2_000, 2_000)),
    st.integers(0, 10_000),
)


@settings(max_examples=200, deadline=None)
@given(
    blocks=st.lists(_block, min_size=1, max_size=60),
    cap=st.integers(PPM, 8 * PPM),
    phase_in_blocks=st.integers(1, 50),
)
def test_multiplier_stays_between_one_and_the_cap(
    blocks: list[tuple[int, int | None, int]], cap: int, phase_in_blocks: int
) -> None:
    params = DynamicParams(multiplier_cap_ppm=cap, phase_in_blocks=phase_in_blocks)
    state = new_state(params)
    replay = new_state(params)
    now, price = GENESIS_NS, BTC
    for gap, move_bp, backlog in blocks:
        now += gap
        index = None
        if move_bp is not None:
            price = max(1, price + price * move_bp // 10_000)
            index = price
        before = state.multiplier_ppm
        observe_block(state, params, now, index, backlog)
        observe_block(replay, params, now, index, backlog)
        assert PPM <= state.multiplier_ppm <= state.target_ppm <= cap
        assert state.multiplier_ppm - before <= math.ceil((cap - PPM) / phase_in_blocks)
        assert 0 <= state.variance_e18 <= MAX_VARIANCE_E18
    assert state == replay


def test_observe_block_rejects_broken_inputs() -> None:
    state, now = _calm_state(blocks=2)
    with pytest.raises(InvariantViolation, match="never goes back"):
        observe_block(state, PARAMS, now - 1, BTC, 0)
    with pytest.raises(InvariantViolation, match="backlog"):
        observe_block(state, PARAMS, now, BTC, -1)
    with pytest.raises(InvariantViolation, match="index"):
        observe_block(state, PARAMS, now, 0, 0)


@pytest.mark.parametrize(
    "changes",
    [
        {"sigma_ref_ppm": 0},
        {"variance_tau_ns": 0},
        {"horizon_ref_ns": 0},
        {"interval_weight_ppm": 0},
        {"interval_weight_ppm": PPM + 1},
        {"liquidation_capacity_per_block": 0},
        {"phase_in_blocks": 0},
        {"multiplier_cap_ppm": PPM - 1},
        {"search_level_ppm": 999_999},
        {"search_level_ppm": 1_300_000},
        {"release_level_ppm": 1_100_000},
    ],
)
def test_params_are_validated(changes: dict[str, int]) -> None:
    with pytest.raises(InvariantViolation):
        DynamicParams(**changes)


def test_params_decode_validated() -> None:
    assert msgspec.json.decode(msgspec.json.encode(PARAMS), type=DynamicParams) == PARAMS
    with pytest.raises(InvariantViolation):
        msgspec.json.decode(b'{"phase_in_blocks": 0}', type=DynamicParams)


# -- scaling and the ladder ---------------------------------------------------------------------


def test_scaled_ppm_rounds_up() -> None:
    assert scaled_ppm(30_000, PPM) == 30_000
    assert scaled_ppm(30_000, 1_322_876) == 39_687  # 39,686.28
    assert scaled_ppm(50_000, 4_500_000) == 225_000
    assert scaled_ppm(1, 1_000_001) == 2


@given(base=st.integers(0, PPM), multiplier=st.integers(PPM, 100 * PPM))
def test_scaled_ppm_is_the_ceiling(base: int, multiplier: int) -> None:
    scaled = scaled_ppm(base, multiplier)
    assert scaled >= base
    assert (scaled - 1) * PPM < base * multiplier <= scaled * PPM


@pytest.mark.parametrize(
    ("equity", "level"),
    [
        (2_000, LadderLevel.HEALTHY),
        (1_400, LadderLevel.HEALTHY),
        (1_399, LadderLevel.ABOVE_INITIAL),
        (1_200, LadderLevel.ABOVE_INITIAL),
        (1_199, LadderLevel.BELOW_INITIAL),
        (1_100, LadderLevel.BELOW_INITIAL),
        (1_099, LadderLevel.SEARCH),
        (1_000, LadderLevel.SEARCH),
        (999, LadderLevel.LIQUIDATE),
        (-5, LadderLevel.LIQUIDATE),
    ],
)
def test_ladder_levels(equity: int, level: LadderLevel) -> None:
    assert ladder_state(equity, 1_000, PARAMS) is level


def test_releasable_examples() -> None:
    assert releasable(2_000, 1_000, PARAMS) == 600
    assert releasable(1_400, 1_000, PARAMS) == 0
    assert releasable(1_300, 1_000, PARAMS) == 0
    assert releasable(10, 3, PARAMS) == 5  # the release level 4.2 is rounded up to 5
    assert releasable(7, 0, PARAMS) == 7
    assert releasable(-7, 0, PARAMS) == 0
    assert ladder_state(0, 0, PARAMS) is LadderLevel.HEALTHY
    assert ladder_state(-1, 0, PARAMS) is LadderLevel.LIQUIDATE


@given(
    equity=st.integers(-(10**15), 10**15),
    more=st.integers(0, 10**15),
    maintenance=st.integers(0, 10**15),
    extra_maintenance=st.integers(0, 10**15),
)
def test_ladder_and_releasable_are_monotone(
    equity: int, more: int, maintenance: int, extra_maintenance: int
) -> None:
    richer = equity + more
    assert ladder_state(richer, maintenance, PARAMS) >= ladder_state(equity, maintenance, PARAMS)
    assert releasable(richer, maintenance, PARAMS) >= releasable(equity, maintenance, PARAMS)
    stricter = maintenance + extra_maintenance
    assert releasable(equity, stricter, PARAMS) <= releasable(equity, maintenance, PARAMS)
    assert ladder_state(equity, stricter, PARAMS) <= ladder_state(equity, maintenance, PARAMS)
    assert 0 <= releasable(equity, maintenance, PARAMS) <= max(equity, 0)
    level = ladder_state(equity, maintenance, PARAMS)
    assert (level is LadderLevel.LIQUIDATE) == (equity < maintenance)
    if releasable(equity, maintenance, PARAMS) > 0:
        assert level is LadderLevel.HEALTHY
