"""Portfolio margin: worked examples, a slow reference, properties, golden integers on any CPU."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from strikechain.engine.accounts import Exposure, Market, SubLedger, UnderlyingState
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.margin import STANDARD_MARGIN
from strikechain.engine.oracle import NANOS_PER_YEAR
from strikechain.engine.params import MarginParams
from strikechain.engine.portfolio import (
    DEFAULT_PORTFOLIO_PARAMS,
    PPM,
    PortfolioInstrument,
    PortfolioParams,
    PortfolioResult,
    ScenarioTable,
    VolState,
    build_scenario_table,
    margin_subledgers,
    portfolio_requirement,
)
from strikechain.engine.units import NANOS_PER_DAY
from strikechain.pricing import deterministic, detmath

ROOT = Path(__file__).resolve().parent.parent.parent
GOLDEN = ROOT / "tests" / "golden" / "portfolio_margin.json"

INDEX = 100_000_000_000
"""BTC at 100,000 USDC, in minor units per BTC."""
NOW = 1_000 * NANOS_PER_DAY
NEAR = NOW + 30 * NANOS_PER_DAY
FAR = NOW + 90 * NANOS_PER_DAY
VOL = 0.6


def _mark_per_lot(strike: int, expiry: int, call: bool, vol: float = VOL) -> int:
    years = (expiry - NOW) / NANOS_PER_YEAR
    price = deterministic.black76(float(INDEX), float(strike), years, vol, call=call)
    return math.floor(price) // 100


def _option(strike: int, expiry: int, call: bool) -> PortfolioInstrument:
    return PortfolioInstrument(
        is_option=True,
        is_call=call,
        strike_minor=strike,
        expiry_ns=expiry,
        lot_numerator=1,
        lot_denominator=100,
        mark_per_lot=_mark_per_lot(strike, expiry, call),
    )


PERP = PortfolioInstrument(
    is_option=False, lot_numerator=1, lot_denominator=100, mark_per_lot=INDEX // 100
)
EXAMPLE = (
    _option(INDEX, NEAR, True),  # 0: ATM call, 30 days
    _option(INDEX, NEAR, False),  # 1: ATM put, 30 days
    PERP,  # 2: the perpetual
    PERP,  # 3: another perpetual on the same underlying
    _option(INDEX, FAR, True),  # 4: ATM call, 90 days
)
EXAMPLE_VOLS = [VOL, VOL, float("nan"), float("nan"), VOL]


def _table(
    params: PortfolioParams = DEFAULT_PORTFOLIO_PARAMS,
    instruments: tuple[PortfolioInstrument, ...] = EXAMPLE,
    vols: list[float] | None = None,
    confidence: int = 0,
) -> ScenarioTable:
    return build_scenario_table(
        params,
        instruments,
        EXAMPLE_VOLS if vols is None else vols,
        index_minor=INDEX,
        confidence_minor=confidence,
        now_ns=NOW,
    )


TABLE = _table()
NO_EXTENDED = msgspec.structs.replace(DEFAULT_PORTFOLIO_PARAMS, extended_moves_ppm=())


# -- worked examples (the module docstring) ---------------------------------------------------


def test_worked_examples() -> None:
    short_call = portfolio_requirement([(0, -10)], TABLE)
    assert EXAMPLE[0].mark_per_lot == 68_539_407
    assert short_call == PortfolioResult(
        maintenance=16_448_234_857,
        initial=21_382_705_315,
        worst_loss=16_438_234_857,
        worst_scenario=34,
        short_option_charge=10_000_000,
        perp_offset_charge=0,
        confidence_charge=0,
    )
    assert TABLE.scenarios[34].spot_ppm == 5_000_000
    assert TABLE.scenarios[34].extended
    regular = portfolio_requirement([(0, -10)], _table(NO_EXTENDED))
    assert (regular.worst_loss, regular.worst_scenario) == (1_400_361_490, 24)
    assert (regular.maintenance, regular.initial) == (1_410_361_490, 1_833_469_937)

    straddle = portfolio_requirement([(0, -10), (1, -10)], _table(NO_EXTENDED))
    assert (straddle.worst_loss, straddle.worst_scenario) == (1_200_722_980, 24)
    assert straddle.short_option_charge == 20_000_000
    assert straddle.maintenance == 1_220_722_980

    offset = portfolio_requirement([(2, 1), (3, -1)], TABLE)
    assert (offset.worst_loss, offset.perp_offset_charge) == (0, 5_000_000)
    assert (offset.maintenance, offset.initial) == (5_000_000, 6_500_000)

    hedged = portfolio_requirement([(0, -10), (2, 5)], _table(NO_EXTENDED))
    assert hedged.worst_loss < regular.worst_loss
    assert (hedged.worst_loss, hedged.worst_scenario) == (600_361_490, 24)
    assert (hedged.maintenance, hedged.initial) == (610_361_490, 793_469_937)


def test_short_straddle_worst_is_a_corner() -> None:
    straddle = [(0, -10), (1, -10)]
    table = _table(NO_EXTENDED)
    result = portfolio_requirement(straddle, table)
    worst = table.scenarios[result.worst_scenario]
    assert worst.vol is VolState.UP
    assert abs(worst.spot_ppm) == NO_EXTENDED.spot_range_ppm
    overall = TABLE.scenarios[portfolio_requirement(straddle, TABLE).worst_scenario]
    assert overall.extended
    assert overall.spot_ppm == max(DEFAULT_PORTFOLIO_PARAMS.extended_moves_ppm)


def _standard_initial(spec: PortfolioInstrument, lots: int) -> int:
    """The engine's own standard margin (:data:`STANDARD_MARGIN`, default parameters) of a
    position of ``lots`` in ``spec`` at the example's index."""
    params = MarginParams()
    per_lot = INDEX * spec.lot_numerator // spec.lot_denominator
    state = UnderlyingState(name="BTC", params=None, oracle=None)
    market = Market(
        name="example",
        underlying="BTC",
        state=state,
        is_option=spec.is_option,
        is_call=spec.is_call,
        expiry_ns=spec.expiry_ns,
        strike_minor=spec.strike_minor,
        tick_minor=1,
        value_per_tick_lot=1,
        lot_numerator=spec.lot_numerator,
        lot_denominator=spec.lot_denominator,
        initial_ppm=params.option_initial_base_ppm if spec.is_option else 100_000,
        maintenance_ppm=params.option_maintenance_ppm if spec.is_option else 50_000,
        initial_floor_ppm=params.option_initial_floor_ppm,
        put_mark_floor_ppm=params.option_put_mark_floor_ppm,
        mark_per_lot=spec.mark_per_lot,
        index_per_lot=per_lot,
        strike_per_lot=spec.strike_minor * spec.lot_numerator // spec.lot_denominator,
    )
    ledger = SubLedger(account="example", underlying="BTC", state=state)
    return STANDARD_MARGIN.requirement(Exposure(ledger=ledger, market=market, position=lots))[0]


def test_calendar_spread_needs_less_than_standard_margin() -> None:
    near_call, far_call = EXAMPLE[0], EXAMPLE[4]
    years = [(e - NOW) / NANOS_PER_YEAR for e in (NEAR, FAR)]
    greeks = deterministic.black76_greeks(float(INDEX), float(INDEX), years[1], VOL, call=True)
    near_greeks = deterministic.black76_greeks(float(INDEX), float(INDEX), years[0], VOL)
    lots = 10
    net_delta = lots * (float(greeks.delta) - float(near_greeks.delta))
    hedge = -round(net_delta)
    positions = [(4, lots), (0, -lots)] + ([(2, hedge)] if hedge else [])
    portfolio = portfolio_requirement(positions, TABLE)
    # standard: 15% of the index plus the mark for the short, the premium for the long, and
    # 10% of the hedge's notional (the perp initial rate used here)
    standard = (
        _standard_initial(near_call, -lots)
        + _standard_initial(far_call, lots)
        + _standard_initial(PERP, hedge)
    )
    assert _standard_initial(near_call, -lots) == lots * (INDEX // 100 * 15 // 100) + lots * (
        near_call.mark_per_lot
    )
    assert 0 < portfolio.initial < standard


# -- a slow pure-Python reference -------------------------------------------------------------


def _ceil(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _reference(table: ScenarioTable, positions: list[tuple[int, int]]) -> PortfolioResult:
    params = table.params
    long_pnl, short_pnl = table.long_pnl.tolist(), table.short_pnl.tolist()
    losses = []
    for j, scenario in enumerate(table.scenarios):
        pnl = sum(q * long_pnl[i][j] if q > 0 else -q * short_pnl[i][j] for i, q in positions)
        loss = _ceil(-pnl * params.extended_loss_fraction_ppm, PPM) if scenario.extended else -pnl
        losses.append(loss)
    worst = max(losses)
    ipl = table.index_per_lot.tolist()
    net: dict[int, int] = {}
    perp_long = perp_short = gross = 0
    for i, q in positions:
        gross += abs(q) * ipl[i]
        column = int(table.expiry_column[i])
        if column >= 0:
            net[column] = net.get(column, 0) + q * ipl[i]
        elif not table.is_option[i]:
            perp_long += max(q, 0) * ipl[i]
            perp_short += max(-q, 0) * ipl[i]
    short_option = sum(
        _ceil(max(-n, 0) * params.short_option_charge_ppm, PPM) for n in net.values()
    )
    perp = _ceil(min(perp_long, perp_short) * params.perp_offset_charge_ppm, PPM)
    confidence = _ceil(gross * params.confidence_charge_ppm, PPM) if table.confidence_charged else 0
    maintenance = max(worst, 0) + short_option + perp + confidence
    return PortfolioResult(
        maintenance=maintenance,
        initial=_ceil(maintenance * params.initial_factor_ppm, PPM),
        worst_loss=max(worst, 0),
        worst_scenario=losses.index(worst),
        short_option_charge=short_option,
        perp_offset_charge=perp,
        confidence_charge=confidence,
    )


def _reference_entry(
    table: ScenarioTable, spec: PortfolioInstrument, vol: float, j: int
) -> tuple[int, int]:
    """One table entry with scalar calls, outside any batch."""
    params, scenario = table.params, table.scenarios[j]
    shock = scenario.spot_ppm
    if not spec.is_option:
        change = INDEX * shock * spec.lot_numerator
        return change // (PPM * spec.lot_denominator), -change // (PPM * spec.lot_denominator)
    to_expiry = spec.expiry_ns - NOW
    power = (
        params.vol_power_near_ppm
        if to_expiry <= params.vol_horizon_ns
        else params.vol_power_far_ppm
    ) / PPM
    ratio = float(params.vol_horizon_ns) / float(max(to_expiry, params.vol_time_floor_ns))
    scale = float(detmath.exp(power * float(detmath.log(ratio))))
    if scenario.vol is VolState.UP:
        vol = vol * (1.0 + params.vol_up_range_ppm / PPM * scale)
    elif scenario.vol is VolState.DOWN:
        vol = vol * max(
            1.0 - params.vol_down_range_ppm / PPM * scale, params.vol_down_floor_ppm / PPM
        )
    forward = float(INDEX * (PPM + shock)) / float(PPM)
    price = deterministic.black76(
        forward, float(spec.strike_minor), to_expiry / NANOS_PER_YEAR, vol, call=spec.is_call
    )
    value = price * float(spec.lot_numerator) / float(spec.lot_denominator)
    return math.floor(value) - spec.mark_per_lot, spec.mark_per_lot - math.ceil(value)


def test_table_equals_scalar_reference() -> None:
    for i, spec in enumerate(EXAMPLE):
        for j in range(TABLE.scenario_count):
            expected = _reference_entry(TABLE, spec, EXAMPLE_VOLS[i], j)
            assert (int(TABLE.long_pnl[i, j]), int(TABLE.short_pnl[i, j])) == expected, (i, j)


CHAIN = (
    *tuple(
        _option(INDEX * k // 100, expiry, call)
        for expiry in (NOW + NANOS_PER_DAY // 2, NEAR, FAR, NOW + 400 * NANOS_PER_DAY)
        for k in (70, 90, 100, 110, 140)
        for call in (True, False)
    ),
    PERP,
    PortfolioInstrument(
        is_option=False, lot_numerator=1, lot_denominator=1000, mark_per_lot=INDEX // 1000
    ),
)
CHAIN_VOLS = [0.4 + 0.01 * i for i in range(len(CHAIN) - 2)] + [float("nan")] * 2
CHAIN_TABLE = _table(instruments=CHAIN, vols=CHAIN_VOLS)
POOR_TABLE = _table(instruments=CHAIN, vols=CHAIN_VOLS, confidence=INDEX // 20)

portfolios = st.lists(
    st.tuples(
        st.integers(0, len(CHAIN) - 1),
        st.integers(-5_000, 5_000).filter(lambda q: q != 0),
    ),
    unique_by=lambda p: p[0],
    max_size=DEFAULT_PORTFOLIO_PARAMS.max_positions_per_subledger // 8,
)


@settings(max_examples=150)
@given(portfolios, st.booleans())
def test_single_equals_reference(positions: list[tuple[int, int]], poor: bool) -> None:
    table = POOR_TABLE if poor else CHAIN_TABLE
    assert portfolio_requirement(positions, table) == _reference(table, positions)


@settings(max_examples=40)
@given(st.lists(portfolios, min_size=1, max_size=20), st.data())
def test_batch_and_subset_equal_reference(
    books: list[list[tuple[int, int]]], data: st.DataObject
) -> None:
    matrix = _matrix(books, len(CHAIN))
    batch = margin_subledgers(POOR_TABLE, matrix)
    for k, positions in enumerate(books):
        assert batch.result(k) == _reference(POOR_TABLE, positions)
    rows = data.draw(st.lists(st.integers(0, len(books) - 1), max_size=10))
    subset = margin_subledgers(POOR_TABLE, matrix, rows)
    assert subset.rows.tolist() == rows
    for k, row in enumerate(rows):
        assert subset.result(k) == batch.result(row)


def _matrix(books: list[list[tuple[int, int]]], columns: int) -> sp.csr_array:
    dense = np.zeros((len(books), columns), dtype=np.int64)
    for row, positions in enumerate(books):
        for i, q in positions:
            dense[row, i] = q
    return sp.csr_array(dense)


def test_confidence_and_expired_options() -> None:
    assert POOR_TABLE.confidence_charged
    assert not CHAIN_TABLE.confidence_charged
    result = portfolio_requirement([(len(CHAIN) - 2, 3)], POOR_TABLE)
    assert result.confidence_charge == _ceil(3 * (INDEX // 100) * 10_000, PPM)
    expired = PortfolioInstrument(
        is_option=True,
        is_call=False,
        strike_minor=INDEX,
        expiry_ns=NOW,
        lot_numerator=1,
        lot_denominator=100,
        mark_per_lot=0,
    )
    table = _table(instruments=(expired,), vols=[float("nan")])
    for j, scenario in enumerate(table.scenarios):
        value = max(-INDEX * scenario.spot_ppm, 0)  # put intrinsic x 1e6, per BTC
        assert int(table.long_pnl[0, j]) == value // (PPM * 100)
        assert int(table.short_pnl[0, j]) == -_ceil(value, PPM * 100)
    assert table.expiries_ns == ()


# -- monotonicity in the shock parameters -------------------------------------------------------

OPTIONS = [
    i
    for i, spec in enumerate(CHAIN)
    if spec.is_option and 75 <= spec.strike_minor * 100 // INDEX <= 125
]
short_books = st.tuples(
    st.lists(
        st.tuples(st.sampled_from(OPTIONS), st.integers(1, 100)),
        min_size=1,
        max_size=6,
        unique_by=lambda p: p[0],
    ),
    st.integers(-100, 100),
).map(lambda b: [(i, -q) for i, q in b[0]] + ([(len(CHAIN) - 2, b[1])] if b[1] else []))


def _maintenance(params: PortfolioParams, positions: list[tuple[int, int]]) -> int:
    return portfolio_requirement(positions, _table(params, CHAIN, CHAIN_VOLS)).maintenance


@settings(max_examples=25)
@given(
    short_books,
    st.integers(5, 60),
    st.integers(1, 40),
    st.integers(0, 1_000),
    st.integers(1, 1_000),
)
def test_raising_spot_or_vol_range_never_lowers_margin(
    positions: list[tuple[int, int]], spot: int, spot_raise: int, vol: int, vol_raise: int
) -> None:
    base = msgspec.structs.replace(
        DEFAULT_PORTFOLIO_PARAMS, spot_range_ppm=spot * 4_000, vol_up_range_ppm=vol * 1_000
    )
    wider = msgspec.structs.replace(base, spot_range_ppm=min(spot + spot_raise, 249) * 4_000)
    higher = msgspec.structs.replace(base, vol_up_range_ppm=(vol + vol_raise) * 1_000)
    margin = _maintenance(base, positions)
    assert _maintenance(wider, positions) >= margin
    assert _maintenance(higher, positions) >= margin


@settings(max_examples=25)
@given(short_books, st.integers(0, 7), st.integers(10_000, 3_000_000), st.integers(0, PPM))
def test_raising_extended_moves_or_fraction_never_lowers_margin(
    positions: list[tuple[int, int]], which: int, push: int, fraction: int
) -> None:
    base = msgspec.structs.replace(DEFAULT_PORTFOLIO_PARAMS, extended_loss_fraction_ppm=fraction)
    moves = list(base.extended_moves_ppm)
    move = moves[which]
    moves[which] = max(move - push, -999_999) if move < 0 else move + push
    if moves[which] in base.extended_moves_ppm:
        moves[which] = move
    further = msgspec.structs.replace(base, extended_moves_ppm=tuple(moves))
    larger = msgspec.structs.replace(
        base, extended_loss_fraction_ppm=min(fraction + push // 10, PPM)
    )
    added = msgspec.structs.replace(base, extended_moves_ppm=(*base.extended_moves_ppm, 7_000_000))
    margin = _maintenance(base, positions)
    assert _maintenance(further, positions) >= margin
    assert _maintenance(larger, positions) >= margin
    assert _maintenance(added, positions) >= margin


# -- bounds and validation ---------------------------------------------------------------------


def test_overflow_bound_refuses_parameters_and_inputs() -> None:
    assert TABLE.bound < 2**63 - 1
    huge = msgspec.structs.replace(DEFAULT_PORTFOLIO_PARAMS, max_lots_per_position=2**40)
    with pytest.raises(InvariantViolation, match="overflow"):
        _table(huge)
    limit = DEFAULT_PORTFOLIO_PARAMS.max_lots_per_position
    with pytest.raises(InvariantViolation, match="max_lots_per_position"):
        portfolio_requirement([(0, -limit - 1)], TABLE)
    with pytest.raises(InvariantViolation, match="max_lots_per_position"):
        margin_subledgers(TABLE, sp.csr_array(np.array([[limit + 1, 0, 0, 0, 0]], dtype=np.int64)))
    few = msgspec.structs.replace(DEFAULT_PORTFOLIO_PARAMS, max_positions_per_subledger=2)
    table = _table(few)
    with pytest.raises(InvariantViolation, match="max_positions_per_subledger"):
        portfolio_requirement([(0, 1), (1, 1), (2, 1)], table)
    with pytest.raises(InvariantViolation, match="max_positions_per_subledger"):
        margin_subledgers(table, sp.csr_array(np.array([[1, 1, 1, 0, 0]], dtype=np.int64)))
    with pytest.raises(InvariantViolation, match="one entry per instrument"):
        portfolio_requirement([(0, 1), (0, 1)], TABLE)


@pytest.mark.parametrize(
    "change",
    [
        {"spot_steps": 8},
        {"spot_range_ppm": 160_001},
        {"vol_down_floor_ppm": 0},
        {"extended_moves_ppm": (-1_000_000,)},
        {"extended_moves_ppm": (500_000, 500_000)},
        {"initial_factor_ppm": 999_999},
        {"extended_loss_fraction_ppm": PPM + 1},
        {"max_positions_per_subledger": 0},
    ],
)
def test_bad_parameters_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(InvariantViolation):
        PortfolioParams(**change)


def test_bad_vols_are_refused() -> None:
    with pytest.raises(InvariantViolation, match="vols"):
        _table(vols=[VOL, 0.0, float("nan"), float("nan"), VOL])


# -- golden integers, on this CPU and with fewer SIMD features -----------------------------------


def _golden_tool() -> Any:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_portfolio_golden
    finally:
        sys.path.pop(0)
    return make_portfolio_golden


def test_golden_margins() -> None:
    document = json.loads(GOLDEN.read_text())
    assert _golden_tool().compute(document["inputs"]) == document["outputs"]


def _canary() -> str:
    """A digest of NumPy's CPU-dispatched exp and log (float32 and float64) on fixed inputs."""
    x = np.linspace(-20.0, 20.0, 100_001)
    y = np.linspace(1e-3, 1e3, 100_001)
    digest = hashlib.sha256()
    for values in (x, x.astype(np.float32)):
        digest.update(np.exp(values).tobytes())
    for values in (y, y.astype(np.float32)):
        digest.update(np.log(values).tobytes())
    return digest.hexdigest()


def test_golden_margins_with_fewer_cpu_features() -> None:
    """The golden integers with NumPy's SIMD targets above the baseline disabled, while NumPy's
    own exp/log give other bits there (so this check can fail)."""
    from numpy._core import _multiarray_umath as umath

    wide = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    if not wide:
        pytest.skip("this CPU has no SIMD target above the baseline to disable")
    code = (
        "from tests.engine.test_portfolio import test_golden_margins, _canary;"
        "test_golden_margins(); print(_canary())"
    )
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(wide), "STRIKECHAIN_NATIVE": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    if result.stdout.split()[-1] == _canary():
        pytest.skip(f"disabling {wide} does not change NumPy's exp/log bits on this CPU")
