"""Dynamic margin: one multiplier per underlying, from realized volatility and the liquidation
horizon the engine observes, phased in so that an increase never lands in one block.

The engine feeds :func:`observe_block` once per block and per underlying (block time, the index,
the liquidation backlog) and reads back :attr:`DynamicState.multiplier_ppm`, by which it scales
every market's initial and maintenance ppm on that underlying (:func:`scaled_ppm`). The margin
ladder (:func:`ladder_state`, :func:`releasable`) grades a sub-ledger's equity against its
(scaled) maintenance requirement, Vega-style.

The formula
-----------
::

    H      = I + G + ceil(B * I / C)                         liquidation horizon, ns
    target = min(cap, max(1, sigma / sigma_ref) * sqrt(max(1, H / H_ref)))
    step   = ceil((target - 1x) / phase_in_blocks)           largest rise in one block
    m      = target                 if target <= m           (a decrease applies at once)
           = min(target, m + step)  otherwise

- ``I``: the recent block interval, an EWMA over blocks (each new gap weighs
  ``interval_weight_ppm``), as it stood before this block; ``G``: the gap since the previous
  block; ``B``: sub-ledgers waiting in the liquidation queue; ``C``: sub-ledgers the engine
  liquidates per block (``liquidation_capacity_per_block``).
- ``sigma``: the realized annualized volatility of the index (below); ``sigma_ref`` and
  ``H_ref``: the volatility and horizon the base margin table (``Market.initial_ppm`` and
  ``maintenance_ppm``) is taken to cover.

Why. Margin must cover the price move over the time it takes to liquidate. A position that
was healthy at the previous block can be acted on at the earliest in the next one: the price
has already moved for ``G`` unobserved, will move for about ``I`` more until the next block, and
for ``B / C`` further blocks while the queue ahead of it drains. Under a random walk the move
over a time ``H`` scales with ``sigma * sqrt(H)``, so a requirement sized for ``sigma_ref`` over
``H_ref`` is scaled by ``sigma / sigma_ref`` and by ``sqrt(H / H_ref)``. Each factor is floored at
1 (a calm market or a fast chain never lowers the base table) and the product is capped.

The phase-in keeps a margin increase from liquidating, in one block, every account between
the old and the new maintenance level: the multiplier rises by at most ``step`` per block (at
most ``ceil((cap - 1x) / phase_in_blocks)``), and if the target stays at or above a level ``T``
for ``phase_in_blocks`` consecutive blocks, the multiplier is at least ``T`` at the end of them
(each block it either reaches that block's target, or rises by ``ceil((target - 1x) / N)``,
which is at least ``(T - 1x) / N``). A fall of the target applies at once: lowering margin
never liquidates anyone. Long-block auctions (Vega: a gap over 10 s opens an auction) are the
matching layer's business, not this module's; here a gap only lengthens ``H``.

Realized volatility. Variance per unit time, estimated from the index's returns between index
changes, with a time-based EWMA so irregular sampling does not bias it. A return ``r`` over
``dt`` nanoseconds is one sample ``r^2 / dt`` of the variance rate, weighted
``dt / (dt + variance_tau_ns)`` (the rational weight the perp mark's basis average uses,
exact in integers; about ``1 - exp(-dt / tau)`` for small steps, so the half-life is about
``0.69 tau``)::

    V' = V + (r^2 / dt - V) * dt / (dt + tau) = (V * tau + r^2) / (dt + tau)

The ``dt`` of the sample cancels: a long interval carries one large squared return and a large
weight, many short ones carry small returns and small weights, and both add up to the same
variance rate. The index is sampled only when it changes, so a stale oracle (which keeps its
last good index) holds the estimate instead of reading calm into it. The log return is the
midpoint form ``r = 2 (p1 - p0) / (p1 + p0)`` (that is ``2 atanh(u) ~ 2u`` with
``u = (p1 - p0) / (p1 + p0)``): exact rationals, symmetric in up and down moves, within
0.08% of ``ln(p1 / p0)`` for a 10% move. The estimate starts at ``sigma_ref^2``
(:func:`new_state`).

Worked examples (defaults: ``sigma_ref`` 80%, ``H_ref`` 1 s, ``C`` 10, cap 5x, 40 blocks)
- Calm, 250 ms blocks, sigma <= 80%: ``H = 250 + 250 = 500 ms < H_ref``, multiplier 1x
  (``1_000_000``).
- A 20 s gap after 250 ms blocks: ``H = 0.25 + 20 = 20.25 s``, ``sqrt(20.25) = 4.5``: target
  ``4_500_000``, reached at ``ceil(3.5x / 40) = 87_500`` ppm per block while it holds.
- A backlog of 50 with capacity 10, 250 ms blocks: ``H = 0.25 + 0.25 + 5 * 0.25 = 1.75 s``,
  ``sqrt(1.75) = 1.3228757``: target ``1_322_876`` (rounded up).
- Realized vol 160%, calm blocks: target ``2_000_000``; with the backlog above,
  ``2 * sqrt(1.75) = sqrt(7)``: ``2_645_752``.
- A slow period (10 s blocks for long): ``I`` tends to 10 s, ``H`` to 20 s, the target to
  ``sqrt(20) = 4.472136`` (``4_472_136``); back on 250 ms blocks the interval EWMA decays by
  1/8 per block and the multiplier follows it down at once, to 1x after about 25 blocks.

Integers and rounding. Everything here is exact integer arithmetic (``math.isqrt`` included):
no float reaches state, so the same inputs give the same integers on every machine. Each
result is rounded once, up, in the venue's favour: the variance, the interval EWMA, the
horizon, the multiplier (``ceil(1e6 * sqrt(.))``, computed as the ceiling integer square root of
the ceiling of an exact ratio, which is the ceiling of the exact value) and scaled margins.

Units. ``*_ppm``: parts per million (``1_000_000`` is 1x or 100%); times: integer nanoseconds
of block time; the index: USDC minor units per unit of the underlying, as the oracle's;
variance: annualized, times ``1e18`` (``sigma`` in parts per billion, squared), with a year of
365 days. ``equity`` and ``maintenance``: USDC minor units.

Limits. The variance is capped at :data:`MAX_VARIANCE_E18` (1000% a year) and the horizon at
``H_ref * cap^2`` (beyond which the multiplier is capped anyway), so every integer stays small.
Parameters are bounded by the ``MAX_*`` constants below.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final

import msgspec

from strikechain.engine.invariant import invariant
from strikechain.engine.units import INT64_MAX, NANOS_PER_DAY, NANOS_PER_MILLISECOND

PPM: Final = 1_000_000
VARIANCE_SCALE: Final = 10**18
"""Variance is stored annualized times this: ``sigma`` in ppb, squared."""
NANOS_PER_YEAR: Final = 365 * NANOS_PER_DAY
"""The oracle's year (365 days), here without importing the oracle."""
MAX_VOL_PPM: Final = 10_000_000
"""1000% a year, as the oracle's vol limit."""
MAX_VARIANCE_E18: Final = (MAX_VOL_PPM * 1_000) ** 2
MAX_MULTIPLIER_PPM: Final = 100 * PPM
MAX_LEVEL_PPM: Final = 10 * PPM
MAX_TAU_NS: Final = 365 * NANOS_PER_DAY
MAX_HORIZON_REF_NS: Final = NANOS_PER_DAY
MAX_PHASE_IN_BLOCKS: Final = 1_000_000
MAX_CAPACITY_PER_BLOCK: Final = 1_000_000


class DynamicParams(msgspec.Struct, frozen=True, kw_only=True):
    """Dynamic margin and ladder parameters of one underlying (see the module's formula)."""

    sigma_ref_ppm: int = 800_000
    """The annualized volatility the base margin table covers (80%)."""
    variance_tau_ns: int = 60 * 60 * 1_000 * NANOS_PER_MILLISECOND
    """Time constant of the realized variance EWMA (1 hour; half-life about 42 minutes)."""
    horizon_ref_ns: int = 1_000 * NANOS_PER_MILLISECOND
    """The liquidation horizon the base margin table covers (1 s)."""
    interval_weight_ppm: int = 125_000
    """Weight of each new block gap in the block interval EWMA (1/8)."""
    liquidation_capacity_per_block: int = 10
    """Sub-ledgers the engine liquidates per block."""
    phase_in_blocks: int = 40
    """An increase to target ``T`` takes at most this many blocks, in steps of ``(T - 1x) / N``."""
    multiplier_cap_ppm: int = 5 * PPM
    search_level_ppm: int = 1_100_000
    """Below this multiple of maintenance: flagged, collateral searched for (Vega: 1.1x)."""
    initial_level_ppm: int = 1_200_000
    """Vega's initial level (1.2x of maintenance)."""
    release_level_ppm: int = 1_400_000
    """Above this multiple of maintenance collateral may be withdrawn (Vega: 1.4x)."""

    def __post_init__(self) -> None:
        invariant(0 < self.sigma_ref_ppm <= MAX_VOL_PPM, "0 < sigma_ref <= 1000%")
        invariant(0 < self.variance_tau_ns <= MAX_TAU_NS, "0 < variance tau <= 1 year")
        invariant(0 < self.horizon_ref_ns <= MAX_HORIZON_REF_NS, "0 < H_ref <= 1 day")
        invariant(0 < self.interval_weight_ppm <= PPM, "0 < interval weight <= 100%")
        invariant(
            0 < self.liquidation_capacity_per_block <= MAX_CAPACITY_PER_BLOCK,
            "the liquidation capacity per block is positive and bounded",
        )
        invariant(
            0 < self.phase_in_blocks <= MAX_PHASE_IN_BLOCKS, "the phase-in is positive and bounded"
        )
        invariant(PPM <= self.multiplier_cap_ppm <= MAX_MULTIPLIER_PPM, "1x <= cap <= 100x")
        invariant(
            PPM
            <= self.search_level_ppm
            <= self.initial_level_ppm
            <= self.release_level_ppm
            <= MAX_LEVEL_PPM,
            "ladder: 1x <= search <= initial <= release <= 10x of maintenance",
        )


@dataclass(slots=True, kw_only=True)
class DynamicState:
    """Dynamic margin state of one underlying: integers only, mutated by :func:`observe_block`.

    Make it with :func:`new_state`. Zero in ``index`` and ``interval_ns`` means "none yet".
    """

    variance_e18: int = 0
    """Realized variance, annualized, times 1e18."""
    index: int = 0
    """The index at the last change seen (the end of the last variance sample)."""
    index_ns: int = 0
    interval_ns: int = 0
    """EWMA of the block interval."""
    block_ns: int = 0
    """Time of the last block observed."""
    blocks: int = 0
    """Blocks observed."""
    horizon_ns: int = 0
    """The liquidation horizon ``H`` of the last block (capped)."""
    target_ppm: int = PPM
    multiplier_ppm: int = PPM
    """The multiplier in force: scales every market's initial and maintenance ppm."""


class LadderLevel(enum.IntEnum):
    """Where equity stands against maintenance margin; ordered, higher is healthier."""

    LIQUIDATE = 0
    """Below maintenance."""
    SEARCH = 1
    """Below the search level: flagged (collateral search, Vega)."""
    BELOW_INITIAL = 2
    """At or above the search level, below the initial level."""
    ABOVE_INITIAL = 3
    """At or above the initial level, below the release level."""
    HEALTHY = 4
    """At or above the release level: collateral above it may be withdrawn."""


def new_state(params: DynamicParams) -> DynamicState:
    """A fresh state: variance at ``sigma_ref^2``, multiplier 1x, nothing observed yet."""
    return DynamicState(variance_e18=reference_variance_e18(params))


def observe_block(
    state: DynamicState, params: DynamicParams, timestamp_ns: int, index: int | None, backlog: int
) -> None:
    """Fold one block into ``state``: the index (``None`` while there is none), the backlog of
    sub-ledgers awaiting liquidation; update the target and the multiplier in force."""
    invariant(0 <= timestamp_ns <= INT64_MAX, "block time is a non-negative int64")
    invariant(state.blocks == 0 or timestamp_ns >= state.block_ns, "block time never goes back")
    invariant(index is None or 0 < index <= INT64_MAX, "the index is a positive int64")
    invariant(backlog >= 0, "the liquidation backlog is not negative")
    gap_ns = timestamp_ns - state.block_ns if state.blocks > 0 else 0
    if index is not None and index != state.index:
        if state.index > 0:
            state.variance_e18 = updated_variance_e18(
                state.variance_e18, state.index, index, timestamp_ns - state.index_ns, params
            )
        state.index = index
        state.index_ns = timestamp_ns
    state.horizon_ns = liquidation_horizon_ns(state.interval_ns, gap_ns, backlog, params)
    state.target_ppm = target_multiplier_ppm(state.variance_e18, state.horizon_ns, params)
    state.multiplier_ppm = phased_multiplier_ppm(state.multiplier_ppm, state.target_ppm, params)
    if state.blocks > 0:
        state.interval_ns = updated_interval_ns(state.interval_ns, gap_ns, params)
    state.block_ns = timestamp_ns
    state.blocks += 1


def reference_variance_e18(params: DynamicParams) -> int:
    """``sigma_ref^2``, annualized, times 1e18."""
    sigma_ppb = params.sigma_ref_ppm * 1_000
    return sigma_ppb * sigma_ppb


def updated_variance_e18(
    variance_e18: int, index_from: int, index_to: int, elapsed_ns: int, params: DynamicParams
) -> int:
    """``ceil((V tau + r^2) / (dt + tau))`` with ``r = 2 (p1 - p0) / (p1 + p0)`` annualized,
    capped at :data:`MAX_VARIANCE_E18`."""
    invariant(index_from > 0 and index_to > 0, "index prices are positive")
    invariant(elapsed_ns >= 0, "a return spans non-negative time")
    tau = params.variance_tau_ns
    move = index_to - index_from
    total_squared = (index_from + index_to) ** 2
    numerator = variance_e18 * tau * total_squared + 4 * move * move * NANOS_PER_YEAR * (
        VARIANCE_SCALE
    )
    variance = _ceil_div(numerator, (elapsed_ns + tau) * total_squared)
    return min(variance, MAX_VARIANCE_E18)


def updated_interval_ns(interval_ns: int, gap_ns: int, params: DynamicParams) -> int:
    """The block interval EWMA after one more gap (the first gap is taken whole), rounded up."""
    if interval_ns == 0:
        return gap_ns
    weight = params.interval_weight_ppm
    return _ceil_div(interval_ns * (PPM - weight) + gap_ns * weight, PPM)


def liquidation_horizon_ns(
    interval_ns: int, gap_ns: int, backlog: int, params: DynamicParams
) -> int:
    """``H = I + G + ceil(B I / C)``, capped at ``H_ref cap^2`` (where the multiplier caps)."""
    queue_ns = _ceil_div(backlog * interval_ns, params.liquidation_capacity_per_block)
    return min(interval_ns + gap_ns + queue_ns, max_horizon_ns(params))


def max_horizon_ns(params: DynamicParams) -> int:
    """The horizon at which ``sqrt(H / H_ref)`` alone reaches the cap."""
    cap = params.multiplier_cap_ppm
    return _ceil_div(params.horizon_ref_ns * cap * cap, PPM * PPM)


def target_multiplier_ppm(variance_e18: int, horizon_ns: int, params: DynamicParams) -> int:
    """``min(cap, ceil(1e6 max(1, sigma / sigma_ref) sqrt(max(1, H / H_ref))))``, exactly."""
    invariant(variance_e18 >= 0 and horizon_ns >= 0, "variance and horizon are not negative")
    reference_variance = reference_variance_e18(params)
    squared_ppm = _ceil_div(
        PPM * PPM * max(variance_e18, reference_variance) * max(horizon_ns, params.horizon_ref_ns),
        reference_variance * params.horizon_ref_ns,
    )
    return min(_ceil_isqrt(squared_ppm), params.multiplier_cap_ppm)


def phase_in_step_ppm(target_ppm: int, params: DynamicParams) -> int:
    """The largest rise of the multiplier in one block towards ``target_ppm``."""
    return _ceil_div(max(target_ppm - PPM, 0), params.phase_in_blocks)


def phased_multiplier_ppm(current_ppm: int, target_ppm: int, params: DynamicParams) -> int:
    """The multiplier after one block: down to the target at once, up by one step at most."""
    if target_ppm <= current_ppm:
        return target_ppm
    return min(target_ppm, current_ppm + phase_in_step_ppm(target_ppm, params))


def realized_vol_ppm(state: DynamicState) -> int:
    """The realized annualized volatility estimate, in ppm, rounded up."""
    return _ceil_div(_ceil_isqrt(state.variance_e18), 1_000)


def scaled_ppm(base_ppm: int, multiplier_ppm: int) -> int:
    """A margin rate scaled by a multiplier, rounded up (CEIL). It may exceed 100%: the
    caller decides what a requirement above the notional means for its product."""
    invariant(base_ppm >= 0 and multiplier_ppm >= PPM, "a non-negative rate, a multiplier >= 1x")
    return _ceil_div(base_ppm * multiplier_ppm, PPM)


def ladder_state(equity: int, maintenance: int, params: DynamicParams) -> LadderLevel:
    """Grade ``equity`` against the (already scaled) ``maintenance`` requirement.

    Exact comparisons of ``equity * 1e6`` with ``level_ppm * maintenance``. With no
    requirement, non-negative equity is healthy and negative equity is below maintenance.
    """
    invariant(maintenance >= 0, "the maintenance requirement is not negative")
    scaled_equity = equity * PPM
    if scaled_equity >= params.release_level_ppm * maintenance:
        return LadderLevel.HEALTHY
    if scaled_equity >= params.initial_level_ppm * maintenance:
        return LadderLevel.ABOVE_INITIAL
    if scaled_equity >= params.search_level_ppm * maintenance:
        return LadderLevel.BELOW_INITIAL
    if equity >= maintenance:
        return LadderLevel.SEARCH
    return LadderLevel.LIQUIDATE


def releasable(equity: int, maintenance: int, params: DynamicParams) -> int:
    """``max(0, equity - ceil(release x maintenance))``: collateral that may be withdrawn."""
    invariant(maintenance >= 0, "the maintenance requirement is not negative")
    return max(0, equity - _ceil_div(params.release_level_ppm * maintenance, PPM))


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _ceil_isqrt(value: int) -> int:
    root = math.isqrt(value)
    return root if root * root == value else root + 1
