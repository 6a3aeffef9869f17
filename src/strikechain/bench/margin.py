"""``strikechain bench margin``: portfolio margin over many sub-ledgers (exact, deterministic).

The workload (seeded, generated before timing): one underlying (BTC at 100,000 USDC, lots of
0.01 BTC) with :data:`INSTRUMENTS` instruments, two perpetuals and calls and puts over nine
expiries (12 hours to a year) and eleven strikes, each option with its own implied vol; and
:data:`SUBLEDGERS` sub-ledgers of about :data:`POSITIONS` positions each (distinct instruments,
signed lots up to 1,000), a CSR int64 matrix. The grid is the default one: 9 spot shocks x 3 vol
states plus the 8 extended moves, 35 scenarios.

- ``pm_full_recompute_ms``: :func:`~strikechain.engine.portfolio.build_scenario_table` (every
  option priced under every scenario in the deterministic mode, in one call) and then
  :func:`~strikechain.engine.portfolio.margin_subledgers` over every sub-ledger. Target <= 50.
  ``pm_table_build_ms`` and ``pm_margin_all_ms`` are its two parts.
- ``pm_touched_accounts_ms``: re-margining only :data:`TOUCHED` random sub-ledgers (those one
  block of 1,000 orders touches), the table already built. Target <= 2.
- ``float_dense_reference_ms`` (the reference): a plain dense float64 matrix product,
  positions (sub-ledgers x instruments) @ P&L (instruments x scenarios), no rounding, no checks.
- ``subledgers_per_100ms_block``: sub-ledgers a full re-margin (table included) gets through in
  100 ms, from the measured ``pm_full_recompute_ms``.
- ``remargined_share_calm`` and ``remargined_share_crash``: in a seeded scripted session run
  through the engine (:class:`~strikechain.sim.scripted.ScriptedSession`, 1,000 blocks), the
  share of an underlying's position holders the end-of-block health check re-margines when an
  oracle update moves the marks (the rest are proven safe for the path the marks travelled, see
  ``Engine._prove_safe``), outside and inside the session's sell-off and recovery.

Each time is the best of :data:`REPEATS` runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from strikechain.engine.engine import Engine
from strikechain.engine.oracle import NANOS_PER_YEAR
from strikechain.engine.portfolio import (
    DEFAULT_PORTFOLIO_PARAMS,
    PortfolioInstrument,
    ScenarioTable,
    build_scenario_table,
    margin_subledgers,
)
from strikechain.engine.units import NANOS_PER_DAY, NANOS_PER_HOUR
from strikechain.pricing import deterministic
from strikechain.sim.scripted import ScriptedSession, SessionParams

SEED = 20261127
INDEX_MINOR = 100_000_000_000
NOW_NS = 1_780_000_000 * 10**9
SUBLEDGERS = 10_000
POSITIONS = 10
TOUCHED = 1_000
REPEATS = 15
EXPIRIES_NS = (
    12 * NANOS_PER_HOUR,
    2 * NANOS_PER_DAY,
    7 * NANOS_PER_DAY,
    14 * NANOS_PER_DAY,
    30 * NANOS_PER_DAY,
    60 * NANOS_PER_DAY,
    91 * NANOS_PER_DAY,
    182 * NANOS_PER_DAY,
    365 * NANOS_PER_DAY,
)
MONEYNESS_PCT = (60, 70, 80, 90, 95, 100, 105, 110, 120, 140, 170)
INSTRUMENTS = 2 + 2 * len(EXPIRIES_NS) * len(MONEYNESS_PCT)


def _best(repeats: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs of ``work``, in milliseconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _chain(rng: np.random.Generator) -> tuple[list[PortfolioInstrument], np.ndarray]:
    perp = PortfolioInstrument(
        is_option=False, lot_numerator=1, lot_denominator=100, mark_per_lot=INDEX_MINOR // 100
    )
    instruments = [perp, perp]
    vols = [float("nan"), float("nan")]
    for to_expiry in EXPIRIES_NS:
        for pct in MONEYNESS_PCT:
            strike = INDEX_MINOR * pct // 100
            for call in (True, False):
                vol = float(rng.uniform(0.4, 1.0))
                price = deterministic.black76(
                    float(INDEX_MINOR), float(strike), to_expiry / NANOS_PER_YEAR, vol, call=call
                )
                instruments.append(
                    PortfolioInstrument(
                        is_option=True,
                        is_call=call,
                        strike_minor=strike,
                        expiry_ns=NOW_NS + to_expiry,
                        lot_numerator=1,
                        lot_denominator=100,
                        mark_per_lot=int(np.floor(price)) // 100,
                    )
                )
                vols.append(vol)
    return instruments, np.array(vols)


def _positions(rng: np.random.Generator) -> sp.csr_array:
    """``SUBLEDGERS`` rows of ``POSITIONS`` distinct instruments each, signed lots."""
    keys = rng.random((SUBLEDGERS, INSTRUMENTS))
    columns = np.sort(np.argpartition(keys, POSITIONS, axis=1)[:, :POSITIONS], axis=1)
    lots = rng.integers(1, 1_001, size=(SUBLEDGERS, POSITIONS))
    lots *= rng.choice(np.array([-1, 1]), size=(SUBLEDGERS, POSITIONS))
    indptr = np.arange(0, SUBLEDGERS * POSITIONS + 1, POSITIONS, dtype=np.int64)
    return sp.csr_array(
        (lots.ravel().astype(np.int64), columns.ravel(), indptr), shape=(SUBLEDGERS, INSTRUMENTS)
    )


def run() -> dict[str, float]:
    rng = np.random.default_rng(SEED)
    instruments, vols = _chain(rng)
    positions = _positions(rng)
    touched = np.sort(rng.choice(SUBLEDGERS, size=TOUCHED, replace=False))

    def table() -> ScenarioTable:
        return build_scenario_table(
            DEFAULT_PORTFOLIO_PARAMS,
            instruments,
            vols,
            index_minor=INDEX_MINOR,
            confidence_minor=INDEX_MINOR // 1000,
            now_ns=NOW_NS,
        )

    built = table()
    full_ms = _best(REPEATS, lambda: margin_subledgers(table(), positions))
    table_ms = _best(REPEATS, table)
    margin_ms = _best(REPEATS, lambda: margin_subledgers(built, positions))
    touched_ms = _best(REPEATS * 4, lambda: margin_subledgers(built, positions, touched))
    dense = positions.toarray().astype(np.float64)
    pnl = built.long_pnl.astype(np.float64)
    dense_ms = _best(REPEATS, lambda: dense @ pnl)
    return {
        "pm_full_recompute_ms": full_ms,
        "pm_table_build_ms": table_ms,
        "pm_margin_all_ms": margin_ms,
        "pm_touched_accounts_ms": touched_ms,
        "float_dense_reference_ms": dense_ms,
        "subledgers_per_100ms_block": SUBLEDGERS * 100.0 / full_ms,
        "instruments": float(INSTRUMENTS),
        "scenarios": float(built.scenario_count),
        "subledgers": float(SUBLEDGERS),
        **_remargined_shares(),
    }


def _remargined_shares() -> dict[str, float]:
    """Holders re-margined over holders, summed over the oracle updates that moved the marks,
    in calm blocks and in the sell-off and recovery (see the module docstring)."""
    session = ScriptedSession(SessionParams(seed=SEED, blocks=1_000))
    crash = set(session.episodes.shock) | set(session.episodes.recovery)
    engine = Engine(venue=session.venue)
    holders = {"calm": 0, "crash": 0}
    skipped = {"calm": 0, "crash": 0}
    for index, block in enumerate(session.blocks()):
        epochs = {name: state.epoch for name, state in engine.underlyings.items()}
        counts = [len(state.holders) for state in engine.underlyings.values()]
        before = engine.health_skipped
        engine.apply(block)
        kind = "crash" if index in crash else "calm"
        for (name, state), count in zip(engine.underlyings.items(), counts, strict=True):
            if state.epoch != epochs[name]:
                holders[kind] += max(count, len(state.holders))
        skipped[kind] += engine.health_skipped - before
    return {
        f"remargined_share_{kind}": (holders[kind] - skipped[kind]) / holders[kind]
        if holders[kind]
        else 0.0
        for kind in ("calm", "crash")
    }
