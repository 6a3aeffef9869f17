"""Portfolio margin per sub-ledger (Deribit-style): a scenario grid valued once per mark update,
then exact integer aggregation over any number of sub-ledgers.

Why: standard margin charges each position alone, so a hedged book (a calendar spread with its
delta hedged by the perpetual) pays for risks that cancel. Portfolio margin revalues the whole
sub-ledger under joint spot and vol shocks and charges the worst loss, plus contingencies.

Model (every parameter is data, in :class:`PortfolioParams`, as integers in ppm or ns)

Scenarios, in this order (the index is ``PortfolioResult.worst_scenario``):

- the regular grid: ``spot_steps`` (9) spot shocks evenly spaced over ``+-spot_range`` (16%),
  0 included (-16%, -12%, ..., +16%), each under the vol states UP, SAME, DOWN (spot-major: index
  ``3 * spot_step + state``);
- the extended table: ``extended_moves`` (-66%, -33%, +50%, +100%, +200%, +300%, +400%, +500%),
  with vol UP only.

Vol shocks, per option with time to expiry ``T`` (block time to expiry, in ns)::

    scale = (H / max(T, T_floor)) ** p       H = 30 days, T_floor = 1 day,
                                             p = 0.30 if T <= H else 0.13
    vol_up   = IV * (1 + up_range * scale)                   up_range   = 0.50
    vol_down = IV * max(1 - down_range * scale, down_floor)  down_range = 0.25, down_floor = 0.05

``scale`` is ``detmath.exp(p * detmath.log(H / T))``; IV is the option's current implied vol
(a float input per instrument: the engine takes it from the oracle's surface).

Scenario values, per instrument ``i`` and scenario ``j`` with spot shock ``s_j``: the value of one
lot at spot ``S' = S (1 + s_j)`` and the shocked vol, minus the instrument's current mark per lot
(``mark_per_lot``). ``S`` is the index (minor units per unit of the underlying) and one lot is
``lot_numerator / lot_denominator`` units.

- Perpetuals: linear, exact: ``d = S * s_j * lot`` (a rational), ``long = floor(d)``,
  ``short = floor(-d)``.
- Live options: Black-76 in the DETERMINISTIC pricing mode (never the fast one), forward ``S'``
  (``float(S * (1e6 + s_ppm)) / 1e6``), zero rate, ``T = (expiry - now) / NANOS_PER_YEAR``; the
  per-unit price times ``lot_numerator`` over ``lot_denominator`` in float, then
  ``long = floor(v) - mark_per_lot`` and ``short = mark_per_lot - ceil(v)``.
- Options at or past expiry: the intrinsic value at ``S'``, exact rational, rounded the same way.

So ``long_pnl[i, j]`` is the P&L of one long lot and ``short_pnl[i, j]`` of one short lot, both
rounded against the holder; a position of ``q`` lots makes ``q * long_pnl`` (``q > 0``) or
``|q| * short_pnl`` (``q < 0``), exact integers. All options of the table are priced in one
deterministic call (instruments x scenarios), so the table is bit-identical on every machine.

Requirement of a sub-ledger with positions ``q_i``::

    P_j        = sum_i q_i * (long_pnl[i, j] if q_i > 0 else -short_pnl[i, j])    (exact int64)
    loss_j     = -P_j                              (regular scenarios)
    loss_j     = ceil(-P_j * fraction)             (extended scenarios; fraction = 1/3 -> 333_334)
    worst      = max(0, max_j loss_j),   worst_scenario = the first j reaching max_j loss_j
    short_opt  = sum over live expiries e of ceil(max(0, -N_e) * 0.001)
                 N_e = sum over options of expiry e of q_i * index_per_lot_i   (net, signed)
    perp_basis = ceil(min(L, S) * 0.005)   L, S = long and short perp notional (index per lot)
    confidence = ceil(G * 0.01) if confidence / index > 1% else 0
                 G = sum_i |q_i| * index_per_lot_i  (gross notional, options included)
    maintenance = worst + short_opt + perp_basis + confidence
    initial     = ceil(maintenance * 1.3)

``index_per_lot = floor(S * lot)``, as ``Market.index_per_lot``. Every ``ceil(x * ppm / 1e6)``
is exact integer arithmetic (``x = q 1e6 + r``: ``q * ppm + ceil(r * ppm / 1e6)``), so no
product can overflow beyond the bound below.

Worked examples (BTC index 100,000 USDC, lots of 0.01 BTC, ATM options 30 days from block time
at IV 60% marked at 68.539407 USDC per lot, default parameters unless said; amounts in USDC, the
exact minor-unit integers are pinned by ``tests/engine/test_portfolio.py::test_worked_examples``):

- short 10 ATM calls: the worst scenario is the extended +500% move with vol up (index 34):
  a short lot loses 4,931.460594, ten lose 49,314.605940, a third of it (333,334 ppm, rounded
  up) is 16,438.234857; the net-short charge is 10 lots x 1,000 x 0.1% = 10, so maintenance
  16,448.234857 and initial 1.3 x that = 21,382.705315. Without the extended table the worst is
  +16% with vol up (index 24), a loss of 1,400.361490: maintenance 1,410.361490, initial
  1,833.469937;
- a short ATM straddle (10 calls, 10 puts), without the extended table: worst at a corner,
  +16% with vol up, loss 1,200.722980 (the puts' fall pays for part of the calls' rise), charge
  20: maintenance 1,220.722980;
- the 10 short calls with 5 long perps as a delta hedge, without the extended table: worst still
  +16% with vol up (gamma), loss 1,400.361490 - 5 x 160 = 600.361490: maintenance 610.361490,
  initial 793.469937;
- long 1 perp and short 1 of another perpetual on the same underlying: no scenario loss and a
  basis charge of 0.5% of 1,000 = 5: maintenance 5, initial 6.5.

With the default 1/3 fraction the extended table dominates any naked short call (the +500% move
costs about 1.64 times the notional); a hedged or spread book hardly feels it.

Overflow bound (asserted when a table is built; positions are checked against it)::

    lots     = max_positions_per_subledger * max_lots_per_position
    scenario = lots * max |pnl per lot| over the table              (bounds every |P_j|)
    gross    = lots * max index_per_lot                             (bounds L, S, G, sum |N_e|)
    charges  = ceil(gross * (short_opt + perp_basis + confidence ppm) / 1e6) + positions + 2
    initial  = ceil((scenario + charges) * initial_factor / 1e6)
    max(scenario, gross, initial) < 2**63 - 1

Every partial sum of a product is a sum of terms whose absolute values add up to at most one of
these, and ``initial_factor >= 1e6`` makes ``initial`` the largest, so int64 never wraps. A
table whose instruments break the bound is refused (``InvariantViolation``), and so are
positions beyond ``max_lots_per_position`` or sub-ledgers with more than
``max_positions_per_subledger`` positions: the engine rejects such input before it gets here,
so reaching the check is a bug.

Invariants: the scenario table is a pure function of its inputs (no clock, no randomness, no
set or hash order); every requirement is exact integer arithmetic on it; rows are independent,
so margining a subset of sub-ledgers gives the same integers as margining all of them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import msgspec
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from strikechain.engine.invariant import invariant
from strikechain.engine.oracle import NANOS_PER_YEAR
from strikechain.engine.units import NANOS_PER_DAY
from strikechain.pricing import deterministic, detmath

PPM: Final = 1_000_000
INT64_BOUND: Final = 2**63 - 1
"""Every intermediate integer stays strictly below this in absolute value."""
FLOAT_EXACT_LIMIT: Final = 2**53
"""A scenario value per lot must stay below this to floor and ceil exactly."""
MAX_EXTENDED_MOVES: Final = 32
MAX_SPOT_STEPS: Final = 101
MAX_VOL: Final = 20.0
"""Implied vols above 2,000% are refused (a bad input, not a market)."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class VolState(enum.IntEnum):
    UP = 0
    SAME = 1
    DOWN = 2


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """A spot shock (ppm of the index) under a vol state; ``extended`` losses are dampened."""

    spot_ppm: int
    vol: VolState
    extended: bool


class PortfolioParams(msgspec.Struct, frozen=True, kw_only=True):
    """The portfolio margin model's parameters (see the module docstring for the formulas)."""

    spot_range_ppm: int = 160_000
    spot_steps: int = 9
    """Odd: the grid is symmetric and includes 0. ``spot_range_ppm`` must be a multiple of
    ``(spot_steps - 1) / 2`` so that every shock is a whole ppm."""
    vol_up_range_ppm: int = 500_000
    vol_down_range_ppm: int = 250_000
    vol_horizon_ns: int = 30 * NANOS_PER_DAY
    vol_time_floor_ns: int = NANOS_PER_DAY
    vol_power_near_ppm: int = 300_000
    """The exponent ``p`` for expiries within the horizon."""
    vol_power_far_ppm: int = 130_000
    vol_down_floor_ppm: int = 50_000
    """The vol-down multiplier never falls below this (a vol never reaches zero)."""
    extended_moves_ppm: tuple[int, ...] = (
        -660_000,
        -330_000,
        500_000,
        1_000_000,
        2_000_000,
        3_000_000,
        4_000_000,
        5_000_000,
    )
    extended_loss_fraction_ppm: int = 333_334
    """Extended scenarios' losses count at this fraction (1/3, rounded up to a ppm)."""
    short_option_charge_ppm: int = 1_000
    """Per live expiry: of the index notional of the net short option lots."""
    perp_offset_charge_ppm: int = 5_000
    """Of the perp notional that offsets (long one perpetual, short another): basis risk."""
    confidence_threshold_ppm: int = 10_000
    """The oracle's confidence over the index above which the confidence charge applies."""
    confidence_charge_ppm: int = 10_000
    """Of the gross notional (all positions at the index) while the confidence is poor."""
    initial_factor_ppm: int = 1_300_000
    max_lots_per_position: int = 10**6
    max_positions_per_subledger: int = 128

    def __post_init__(self) -> None:
        invariant(
            self.spot_steps % 2 == 1 and 3 <= self.spot_steps <= MAX_SPOT_STEPS,
            f"spot_steps must be odd in 3..{MAX_SPOT_STEPS}",
        )
        half = (self.spot_steps - 1) // 2
        invariant(
            0 < self.spot_range_ppm < PPM and self.spot_range_ppm % half == 0,
            "spot_range_ppm must be in (0, 1e6) and a multiple of (spot_steps - 1) / 2",
        )
        invariant(
            0 <= self.vol_up_range_ppm <= 10 * PPM and 0 <= self.vol_down_range_ppm <= 10 * PPM,
            "vol shock ranges must be in [0, 10e6] ppm",
        )
        invariant(
            0 < self.vol_time_floor_ns <= self.vol_horizon_ns <= 10 * 365 * NANOS_PER_DAY,
            "0 < vol_time_floor_ns <= vol_horizon_ns <= ten years",
        )
        invariant(
            0 < self.vol_power_near_ppm <= PPM and 0 < self.vol_power_far_ppm <= PPM,
            "vol powers must be in (0, 1e6] ppm",
        )
        invariant(0 < self.vol_down_floor_ppm <= PPM, "the vol-down floor must be in (0, 1e6]")
        moves = self.extended_moves_ppm
        invariant(len(moves) <= MAX_EXTENDED_MOVES, f"at most {MAX_EXTENDED_MOVES} moves")
        invariant(
            all(type(m) is int and -PPM < m <= 100 * PPM and m != 0 for m in moves),
            "extended moves must be non-zero ppm in (-1e6, 100e6]",
        )
        invariant(len(set(moves)) == len(moves), "extended moves must be distinct")
        invariant(0 <= self.extended_loss_fraction_ppm <= PPM, "the fraction must be in [0, 1]")
        charges = (
            self.short_option_charge_ppm,
            self.perp_offset_charge_ppm,
            self.confidence_charge_ppm,
        )
        invariant(all(0 <= c <= PPM for c in charges), "charges must be in [0, 1e6] ppm")
        invariant(self.confidence_threshold_ppm >= 0, "the confidence threshold is >= 0")
        invariant(
            PPM <= self.initial_factor_ppm <= 10 * PPM, "initial_factor_ppm must be in [1e6, 1e7]"
        )
        invariant(
            0 < self.max_lots_per_position < 2**62
            and 0 < self.max_positions_per_subledger <= 100_000,
            "max_lots_per_position and max_positions_per_subledger must be positive and bounded",
        )

    def scenarios(self) -> tuple[Scenario, ...]:
        """The regular grid (spot-major, vol UP, SAME, DOWN), then the extended moves."""
        half = (self.spot_steps - 1) // 2
        step = self.spot_range_ppm // half
        regular = [
            Scenario(spot_ppm=step * k, vol=vol, extended=False)
            for k in range(-half, half + 1)
            for vol in (VolState.UP, VolState.SAME, VolState.DOWN)
        ]
        extended = [
            Scenario(spot_ppm=move, vol=VolState.UP, extended=True)
            for move in self.extended_moves_ppm
        ]
        return (*regular, *extended)


DEFAULT_PORTFOLIO_PARAMS: Final = PortfolioParams()

WIDEST_SPOT_RANGE_PPM: Final = 900_000
"""Dynamic margin never widens the regular grid beyond -90% .. +90%."""


def widened_portfolio(params: PortfolioParams, multiplier_ppm: int) -> PortfolioParams:
    """``params`` with the regular spot range and the vol-up range scaled by dynamic margin's
    multiplier (:mod:`strikechain.engine.dynamic`), rounded up to the grid (a whole ppm per
    step), the spot range at most :data:`WIDEST_SPOT_RANGE_PPM`. The extended table already
    holds large moves and keeps them."""
    if multiplier_ppm <= PPM:
        return params
    half = (params.spot_steps - 1) // 2
    widest = WIDEST_SPOT_RANGE_PPM - WIDEST_SPOT_RANGE_PPM % half
    spot = -(-params.spot_range_ppm * multiplier_ppm // PPM)
    spot = min(-(-spot // half) * half, max(widest, params.spot_range_ppm))
    vol_up = min(-(-params.vol_up_range_ppm * multiplier_ppm // PPM), 10 * PPM)
    return msgspec.structs.replace(params, spot_range_ppm=spot, vol_up_range_ppm=vol_up)


class InstrumentSpec(Protocol):
    """What the scenario table needs of an instrument (``accounts.Market`` has it)."""

    @property
    def is_option(self) -> bool: ...
    @property
    def is_call(self) -> bool: ...
    @property
    def strike_minor(self) -> int: ...
    @property
    def expiry_ns(self) -> int: ...
    @property
    def lot_numerator(self) -> int: ...
    @property
    def lot_denominator(self) -> int: ...
    @property
    def mark_per_lot(self) -> int: ...


class PortfolioInstrument(msgspec.Struct, frozen=True, kw_only=True):
    """A plain :class:`InstrumentSpec` (tests, benchmarks, tools)."""

    is_option: bool
    is_call: bool = False
    strike_minor: int = 0
    expiry_ns: int = 0
    lot_numerator: int = 1
    lot_denominator: int = 1
    mark_per_lot: int = 0


class PortfolioResult(msgspec.Struct, frozen=True, kw_only=True):
    """One sub-ledger's requirement, in USDC minor units."""

    maintenance: int
    initial: int
    worst_loss: int
    worst_scenario: int
    """Index into ``ScenarioTable.scenarios`` of the largest (dampened) loss, first on ties."""
    short_option_charge: int
    perp_offset_charge: int
    confidence_charge: int


@dataclass(frozen=True, slots=True)
class PortfolioBatch:
    """Requirements of many sub-ledgers (one entry per requested row, in request order)."""

    rows: IntArray
    maintenance: IntArray
    initial: IntArray
    worst_loss: IntArray
    worst_scenario: IntArray
    short_option_charge: IntArray
    perp_offset_charge: IntArray
    confidence_charge: IntArray

    def result(self, k: int) -> PortfolioResult:
        """The ``k``-th entry as a :class:`PortfolioResult` of Python ints."""
        return PortfolioResult(
            maintenance=int(self.maintenance[k]),
            initial=int(self.initial[k]),
            worst_loss=int(self.worst_loss[k]),
            worst_scenario=int(self.worst_scenario[k]),
            short_option_charge=int(self.short_option_charge[k]),
            perp_offset_charge=int(self.perp_offset_charge[k]),
            confidence_charge=int(self.confidence_charge[k]),
        )


@dataclass(frozen=True, slots=True)
class ScenarioTable:
    """Per-lot scenario P&L of every instrument of one underlying, at one set of marks.

    Built once per mark update by :func:`build_scenario_table`; read-only afterwards.
    ``combined`` stacks, for signed lots, the long table (rows ``0..n``) over the negated short
    table (rows ``n..2n``, so ``q * row`` with ``q < 0`` is ``|q| * short_pnl``), followed by the
    contingency columns: long perp notional, short perp notional, gross notional, then one net
    option notional column per live expiry.
    """

    params: PortfolioParams
    scenarios: tuple[Scenario, ...]
    long_pnl: IntArray
    short_pnl: IntArray
    index_per_lot: IntArray
    is_option: npt.NDArray[np.bool_]
    expiries_ns: tuple[int, ...]
    expiry_column: IntArray
    """Per instrument: the index of its live expiry in ``expiries_ns``, or -1."""
    confidence_charged: bool
    combined: IntArray
    extended_mask: npt.NDArray[np.bool_]
    bound: int
    """The overflow bound of the module docstring for this table (< 2**63 - 1)."""

    @property
    def instrument_count(self) -> int:
        return int(self.long_pnl.shape[0])

    @property
    def scenario_count(self) -> int:
        return len(self.scenarios)


def build_scenario_table(
    params: PortfolioParams,
    instruments: Sequence[InstrumentSpec],
    vols: npt.ArrayLike,
    *,
    index_minor: int,
    confidence_minor: int,
    now_ns: int,
) -> ScenarioTable:
    """The scenario table of ``instruments`` (one underlying) at the index ``index_minor``.

    ``vols`` gives each instrument's current implied vol (float; ignored for perpetuals and
    expired options, which may hold NaN). Raises ``InvariantViolation`` for bad inputs or when
    the overflow bound fails.
    """
    count = len(instruments)
    invariant(type(index_minor) is int and 0 < index_minor < 2**62, "the index is positive")
    invariant(type(confidence_minor) is int and confidence_minor >= 0, "confidence is >= 0")
    vol = np.asarray(vols, dtype=np.float64).reshape(-1)
    invariant(vol.shape == (count,), "one vol per instrument")
    for spec in instruments:
        invariant(
            0 < spec.lot_numerator < 2**62 and 0 < spec.lot_denominator < 2**62,
            "lot ratios are positive",
        )
        invariant(abs(spec.mark_per_lot) < FLOAT_EXACT_LIMIT, "marks per lot are bounded")
        invariant(
            not spec.is_option or 0 < spec.strike_minor < 2**62, "option strikes are positive"
        )
    scenarios = params.scenarios()
    long_pnl, short_pnl = _pnl_tables(params, scenarios, instruments, vol, index_minor, now_ns)
    index_per_lot = [index_minor * s.lot_numerator // s.lot_denominator for s in instruments]
    invariant(all(v < 2**62 for v in index_per_lot), "index per lot fits int64")
    is_option = np.array([s.is_option for s in instruments], dtype=np.bool_)
    live = [s.is_option and s.expiry_ns > now_ns for s in instruments]
    expiries = tuple(sorted({s.expiry_ns for s, on in zip(instruments, live, strict=True) if on}))
    position = {expiry: k for k, expiry in enumerate(expiries)}
    expiry_column = np.array(
        [position[s.expiry_ns] if on else -1 for s, on in zip(instruments, live, strict=True)],
        dtype=np.int64,
    )
    charged = confidence_minor * PPM > params.confidence_threshold_ppm * index_minor
    largest = max((int(np.abs(t).max()) for t in (long_pnl, short_pnl) if t.size), default=0)
    bound = overflow_bound(params, largest, max(index_per_lot, default=0))
    invariant(
        bound < INT64_BOUND,
        f"portfolio margin may overflow int64: bound {bound} with {largest} per lot; lower "
        "max_lots_per_position or max_positions_per_subledger",
    )
    ipl = np.array(index_per_lot, dtype=np.int64).reshape(count)
    combined = _combined(long_pnl, short_pnl, ipl, is_option, expiry_column, len(expiries))
    return ScenarioTable(
        params=params,
        scenarios=scenarios,
        long_pnl=long_pnl,
        short_pnl=short_pnl,
        index_per_lot=ipl,
        is_option=is_option,
        expiries_ns=expiries,
        expiry_column=expiry_column,
        confidence_charged=charged,
        combined=combined,
        extended_mask=np.array([s.extended for s in scenarios], dtype=np.bool_),
        bound=bound,
    )


def overflow_bound(params: PortfolioParams, pnl_per_lot_max: int, index_per_lot_max: int) -> int:
    """The largest absolute integer any requirement computation can reach (module docstring)."""
    lots = params.max_positions_per_subledger * params.max_lots_per_position
    scenario = lots * pnl_per_lot_max
    gross = lots * index_per_lot_max
    ppm = params.short_option_charge_ppm + params.perp_offset_charge_ppm
    ppm += params.confidence_charge_ppm
    charges = -(-gross * ppm // PPM) + params.max_positions_per_subledger + 2
    initial = -(-(scenario + charges) * params.initial_factor_ppm // PPM)
    return max(scenario, gross, initial)


def _pnl_tables(
    params: PortfolioParams,
    scenarios: tuple[Scenario, ...],
    instruments: Sequence[InstrumentSpec],
    vol: FloatArray,
    index_minor: int,
    now_ns: int,
) -> tuple[IntArray, IntArray]:
    """``long_pnl`` and ``short_pnl`` (instruments x scenarios), rounded against the holder."""
    shape = (len(instruments), len(scenarios))
    long_pnl = np.zeros(shape, dtype=np.int64)
    short_pnl = np.zeros(shape, dtype=np.int64)
    priced = [i for i, s in enumerate(instruments) if s.is_option and s.expiry_ns > now_ns]
    for i, spec in enumerate(instruments):
        if not (spec.is_option and spec.expiry_ns > now_ns):
            rows = [_exact_pnl(spec, index_minor, sc.spot_ppm) for sc in scenarios]
            long_pnl[i] = [row[0] for row in rows]
            short_pnl[i] = [row[1] for row in rows]
    if priced:
        options = [instruments[i] for i in priced]
        value = _option_values(params, scenarios, options, vol[priced], index_minor, now_ns)
        invariant(
            bool(np.all(np.isfinite(value)) and np.all(np.abs(value) < FLOAT_EXACT_LIMIT)),
            "option scenario values must be finite and below 2**53 per lot",
        )
        mark = np.array([s.mark_per_lot for s in options], dtype=np.int64)[:, None]
        long_pnl[priced] = np.floor(value).astype(np.int64) - mark
        short_pnl[priced] = mark - np.ceil(value).astype(np.int64)
    return long_pnl, short_pnl


def _exact_pnl(spec: InstrumentSpec, index_minor: int, spot_ppm: int) -> tuple[int, int]:
    """(long, short) P&L of one lot of a perpetual or an expired option, exact then rounded."""
    denominator = PPM * spec.lot_denominator
    if not spec.is_option:
        change = index_minor * spot_ppm * spec.lot_numerator
        return change // denominator, -change // denominator
    shocked = index_minor * (PPM + spot_ppm)
    strike = spec.strike_minor * PPM
    intrinsic = max(shocked - strike, 0) if spec.is_call else max(strike - shocked, 0)
    value = intrinsic * spec.lot_numerator
    low, high = value // denominator, -(-value // denominator)
    result = (low - spec.mark_per_lot, spec.mark_per_lot - high)
    invariant(all(abs(v) < FLOAT_EXACT_LIMIT for v in result), "scenario P&L per lot bounded")
    return result


def _option_values(
    params: PortfolioParams,
    scenarios: tuple[Scenario, ...],
    options: Sequence[InstrumentSpec],
    vol: FloatArray,
    index_minor: int,
    now_ns: int,
) -> FloatArray:
    """Values per lot (options x scenarios), one deterministic Black-76 call for all of them."""
    invariant(
        bool(np.all(np.isfinite(vol)) and np.all(vol > 0.0) and np.all(vol <= MAX_VOL)),
        f"option vols must be finite and in (0, {MAX_VOL}]",
    )
    to_expiry = [s.expiry_ns - now_ns for s in options]
    floored = np.array([max(t, params.vol_time_floor_ns) for t in to_expiry], dtype=np.int64)
    near = np.array([t <= params.vol_horizon_ns for t in to_expiry], dtype=np.bool_)
    power = np.where(near, params.vol_power_near_ppm / PPM, params.vol_power_far_ppm / PPM).astype(
        np.float64
    )
    ratio = float(params.vol_horizon_ns) / floored.astype(np.float64)
    scale = detmath.exp(power * detmath.log(ratio))
    up = vol * (1.0 + (params.vol_up_range_ppm / PPM) * scale)
    down_multiplier = np.maximum(
        1.0 - (params.vol_down_range_ppm / PPM) * scale, params.vol_down_floor_ppm / PPM
    )
    by_state = np.stack([up, vol, vol * down_multiplier])  # VolState order: UP, SAME, DOWN
    states = np.array([int(sc.vol) for sc in scenarios], dtype=np.intp)
    shocked_vol = by_state[states].T  # options x scenarios
    forward = np.array(
        [float(index_minor * (PPM + sc.spot_ppm)) for sc in scenarios], dtype=np.float64
    ) / float(PPM)
    shape = shocked_vol.shape
    strike = np.array([float(s.strike_minor) for s in options], dtype=np.float64)[:, None]
    expiry = (np.array(to_expiry, dtype=np.int64).astype(np.float64) / float(NANOS_PER_YEAR))[
        :, None
    ]
    call = np.array([s.is_call for s in options], dtype=np.bool_)[:, None]
    price = deterministic.black76(
        np.broadcast_to(forward[None, :], shape).ravel(),
        np.broadcast_to(strike, shape).ravel(),
        np.broadcast_to(expiry, shape).ravel(),
        shocked_vol.ravel(),
        call=np.broadcast_to(call, shape).ravel(),
    ).reshape(shape)
    numerator = np.array([float(s.lot_numerator) for s in options], dtype=np.float64)[:, None]
    denominator = np.array([float(s.lot_denominator) for s in options], dtype=np.float64)
    values: FloatArray = price * numerator / denominator[:, None]
    return values


def _combined(
    long_pnl: IntArray,
    short_pnl: IntArray,
    index_per_lot: IntArray,
    is_option: npt.NDArray[np.bool_],
    expiry_column: IntArray,
    expiry_count: int,
) -> IntArray:
    """The signed-lot table: scenario P&L, then the contingency notionals (class docstring)."""
    count, scenario_count = long_pnl.shape
    width = scenario_count + _FIXED_COLUMNS + expiry_count
    combined = np.zeros((2 * count, width), dtype=np.int64)
    combined[:count, :scenario_count] = long_pnl
    combined[count:, :scenario_count] = -short_pnl
    perp = ~is_option
    base = scenario_count
    combined[:count, base + _PERP_LONG] = np.where(perp, index_per_lot, 0)
    combined[count:, base + _PERP_SHORT] = np.where(perp, -index_per_lot, 0)
    combined[:count, base + _GROSS] = index_per_lot
    combined[count:, base + _GROSS] = -index_per_lot
    rows = np.flatnonzero(expiry_column >= 0)
    columns = base + _FIXED_COLUMNS + expiry_column[rows]
    combined[rows, columns] = index_per_lot[rows]
    combined[rows + count, columns] = index_per_lot[rows]
    return combined


_PERP_LONG: Final = 0
_PERP_SHORT: Final = 1
_GROSS: Final = 2
_FIXED_COLUMNS: Final = 3


def margin_subledgers(
    table: ScenarioTable,
    positions: sp.csr_array | sp.csr_matrix,
    rows: npt.ArrayLike | None = None,
) -> PortfolioBatch:
    """Requirements of the sub-ledgers in ``rows`` (all when None) of ``positions``.

    ``positions`` is a CSR int64 matrix, sub-ledgers x instruments of the table, of signed lots,
    in canonical form (no duplicate entries). Only the requested rows are read: re-margining
    the sub-ledgers touched by a block costs in proportion to them.
    """
    invariant(positions.dtype == np.int64, "positions are int64 lots")
    invariant(positions.shape[1] == table.instrument_count, "one column per instrument")
    if rows is None:
        selected = sp.csr_array(positions)
        row_ids = np.arange(positions.shape[0], dtype=np.int64)
    else:
        row_ids = np.asarray(rows, dtype=np.int64).reshape(-1)
        selected = sp.csr_array(positions[row_ids])
    invariant(selected.has_canonical_format, "positions must be in canonical CSR form")
    lots = selected.data
    params = table.params
    invariant(
        lots.size == 0 or int(np.abs(lots).max()) <= params.max_lots_per_position,
        "a position exceeds max_lots_per_position",
    )
    invariant(
        int(np.diff(selected.indptr).max(initial=0)) <= params.max_positions_per_subledger,
        "a sub-ledger exceeds max_positions_per_subledger",
    )
    count = table.instrument_count
    columns = selected.indices.astype(np.int64) + count * (lots < 0)
    signed = sp.csr_array((lots, columns, selected.indptr), shape=(selected.shape[0], 2 * count))
    totals = np.asarray(signed @ table.combined, dtype=np.int64)
    return _reduce(table, totals, row_ids)


def portfolio_requirement(
    positions: Sequence[tuple[int, int]], table: ScenarioTable
) -> PortfolioResult:
    """The requirement of one sub-ledger holding ``(instrument index, signed lots)`` pairs."""
    params = table.params
    invariant(
        len(positions) <= params.max_positions_per_subledger,
        "a sub-ledger exceeds max_positions_per_subledger",
    )
    indexes = [index for index, _ in positions]
    invariant(len(set(indexes)) == len(indexes), "one entry per instrument")
    invariant(
        all(0 <= i < table.instrument_count for i in indexes), "instrument index out of range"
    )
    invariant(
        all(abs(q) <= params.max_lots_per_position for _, q in positions),
        "a position exceeds max_lots_per_position",
    )
    count = table.instrument_count
    columns = np.array([i + count * (q < 0) for i, q in positions], dtype=np.int64)
    lots = np.array([q for _, q in positions], dtype=np.int64)
    totals = (lots @ table.combined[columns]).reshape(1, -1).astype(np.int64)
    return _reduce(table, totals, np.zeros(1, dtype=np.int64)).result(0)


def _reduce(table: ScenarioTable, totals: IntArray, row_ids: IntArray) -> PortfolioBatch:
    """From the aggregated columns to requirements, in exact int64 (bounded by ``table.bound``)."""
    params = table.params
    scenario_count = table.scenario_count
    loss = -totals[:, :scenario_count]
    extended = table.extended_mask
    if extended.any():
        loss[:, extended] = _ceil_ppm(loss[:, extended], params.extended_loss_fraction_ppm)
    worst_scenario = np.argmax(loss, axis=1).astype(np.int64) if scenario_count else None
    if worst_scenario is None:
        worst_scenario = np.full(totals.shape[0], -1, dtype=np.int64)
        worst = np.zeros(totals.shape[0], dtype=np.int64)
    else:
        worst = np.maximum(loss[np.arange(totals.shape[0]), worst_scenario], 0)
    base = scenario_count
    net = totals[:, base + _FIXED_COLUMNS :]
    short_option = _ceil_ppm(np.maximum(-net, 0), params.short_option_charge_ppm).sum(
        axis=1, dtype=np.int64
    )
    offset = np.minimum(totals[:, base + _PERP_LONG], totals[:, base + _PERP_SHORT])
    perp_offset = _ceil_ppm(offset, params.perp_offset_charge_ppm)
    confidence_ppm = params.confidence_charge_ppm if table.confidence_charged else 0
    confidence = _ceil_ppm(totals[:, base + _GROSS], confidence_ppm)
    maintenance = worst + short_option + perp_offset + confidence
    initial = _ceil_ppm(maintenance, params.initial_factor_ppm)
    return PortfolioBatch(
        rows=row_ids,
        maintenance=maintenance,
        initial=initial,
        worst_loss=worst,
        worst_scenario=worst_scenario,
        short_option_charge=short_option,
        perp_offset_charge=perp_offset,
        confidence_charge=confidence,
    )


def _ceil_ppm(amount: IntArray, ppm: int) -> IntArray:
    """``ceil(amount * ppm / 1e6)`` exactly, without forming ``amount * ppm``."""
    quotient = amount // PPM
    remainder = amount - quotient * PPM
    result: IntArray = quotient * ppm - ((-remainder * ppm) // PPM)
    return result
