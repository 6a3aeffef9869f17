"""A lab run's metrics, from the recorder's tables (:mod:`strikechain.sim.recorder`).

:func:`compute_metrics` returns one flat dict, keys named with their units (``_bps``, ``_usdc``,
``_ms``, ``_per_s``; counts are ints). The same tables give the same dict, bit for bit (every
sum runs over arrays in the tables' order), and :func:`metrics_json` writes it as JSON.

Conventions
- ``ref(u, t)``: the reference price of underlying ``u`` at ``t``, linear between the samples
  of the ``reference`` table (exact when the table is on the path's grid, the recorder's
  default), unknown outside the samples (so a markout whose horizon passes the run's end is
  left out, never extrapolated). Prices are per unit of the underlying, money in USDC.
- A fill's time ``t`` is its block's commit time (when it is final and known); ``side`` is the
  maker's (``-taker_side``); weights are notionals. Every fill-based metric is over perpetual
  fills only (an option's price is a premium, not comparable to the reference); liquidations,
  blocks and latencies count everything.
- Percentiles: ``numpy.percentile``'s default ``linear`` method (Hyndman and Fan's type 7) over
  the observations, unweighted. Means of bps are notional-weighted where stated.
- Missing data: every key is always present (a sweep's rows line up); a mean or percentile of
  no observation is ``NaN`` (``null`` in :func:`metrics_json`); a sum of none is 0.
- ``since_ns`` (e.g. the end of a warm-up) keeps blocks, fills and index rows committed at or
  after it, submissions sent at or after it, and liquidation events in blocks committed at or
  after it. Hedging costs are the hedging venue's totals over the whole run, and the state
  metrics are the end state, whatever ``since_ns`` says.

Definitions (``makers``: the market makers' agent names; ``takers``: the agents whose taker
fills count for slippage, by default every recorded agent that is not a maker)
- ``slippage_bps_mean/p50/p99``: per taker fill, ``taker_side x (price - ref(u, sent)) /
  ref(u, sent) x 10^4``, ``sent`` the taker's send time: positive means it paid worse than the
  reference it decided on. The mean is notional-weighted. ``slippage_fills`` counts them.
  ``slippage_abs_bps_mean``: the notional-weighted mean of its magnitude, the execution risk
  (how far the price moved between decision and execution, either way). Both matter: in a fast
  market the signed mean can fall as blocks lengthen (takers fill against quotes older than
  their decision: the makers pay, see their markouts) while the magnitude grows.
- ``effective_spread_bps``: over all perpetual fills, ``2 |price - ref(u, t)| / ref(u, t) x
  10^4``, notional-weighted.
- ``mm_markout_{1,10,60}s_bps``: makers' fills, ``side x (ref(u, t + h) - price) / price x
  10^4``, notional-weighted.
- ``mm_spread_captured_usdc = sum side x (ref(u, t) - price) x units`` and
  ``mm_adverse_selection_usdc = sum side x (ref(u, t + 60 s) - ref(u, t)) x units`` over the
  makers' fills whose 60 s reference is known; their sum is ``mm_markout_60s_usdc``, the fills'
  P&L marked to the reference 60 s later. ``mm_fees_usdc``: the makers' venue fees (negative:
  rebates), ``mm_volume_usdc`` and ``mm_fills`` over all their fills.
- ``mm_hedging_cost_usdc``: the makers' fees at the hedging venue plus the half spread they paid
  there against the reference (the recorder's ``hedges`` table).
- Liquidations, per **episode**: a sub-ledger from its ``queued`` event to its ``left`` event
  (or the run's end). A **step** closes something: a lane order that filled, a backstop take,
  an ADL, a keeper auction won. ``liquidations_count``: episodes with a step;
  ``liquidations_queued``: queue entries; ``liquidated_notional_usdc``: the steps' notional;
  ``liquidation_delay_ms_p50/p99``: from the block time of the block where the sub-ledger
  entered the queue (the breach) to the block time of its first step, over episodes with both.
- ``bad_debt_usdc``: what the insurance fund paid for bankrupt sub-ledgers
  (``insurance_paid_usdc``, the sum of ``InsurancePaid.amount``) plus, per episode, the
  ``uncovered`` of its last ``InsurancePaid`` (socialized by ADL or left unpaid). Per episode
  that equals the first report's ``amount + uncovered``; summing ``amount + uncovered`` over
  every report would count a deficit again each time the fund pays towards one that waits.
  ``liquidation_fees_usdc`` and ``adl_socialized_usdc`` (what ADL cost the counterparties
  against the mark) are sums of their events.
- ``insurance_fund_start/min/end_usdc``: the fund after each block, from the first block where
  it is not zero (its seeding) on; 0 if it never is.
- ``throughput_tx_per_s``: transactions in the kept blocks over the kept time (the run's end
  minus ``max(start, since_ns)``).
- ``ack_latency_ms``: send to the receipt's arrival (answers that are receipts);
  ``inclusion_latency_ms``: send to the commit of the block that included the transaction;
  both over trading transactions (:data:`ORDER_KINDS`: orders, amends, cancels; a reporter's
  latency is the oracle's, not a trader's). ``submissions_count``,
  ``runtime_rejections_count`` and ``engine_rejections_count`` count every submission.
  ``finality_ms``: a block's proposal to its commit; ``block_interval_ms``: between consecutive
  commits; ``block_utilization_mean``: mean of transactions / capacity.
- ``index_error_bps_mean/max``: ``|index - ref(u, block time)| / ref x 10^4`` per block and
  underlying with an index.
- ``state_subledgers``, ``state_open_orders`` (after the last block), ``state_accounts``,
  ``state_snapshot_bytes`` (the engine's encoded snapshot at the end).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
TextArray = npt.NDArray[np.object_]
Metrics = dict[str, float | int]

NAN: Final = math.nan
BPS: Final = 10_000.0
NANOS_PER_MS: Final = 1_000_000
NANOS_PER_SECOND: Final = 1_000_000_000
MARKOUT_HORIZONS_S: Final = (1, 10, 60)
PNL_HORIZON_S: Final = 60
_STEP_KINDS: Final = frozenset({"order", "backstop", "deleveraged", "auction_ended"})
ORDER_KINDS: Final = frozenset({"PlaceOrder", "Amend", "Cancel", "CancelAll"})
"""The trading transactions whose latencies are measured (not oracle reports, deposits...)."""


# -- reading the tables: the one place that touches pandas -------------------------------------


def _floats(frame: Any, name: str) -> FloatArray:
    values: FloatArray = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return values


def _ints(frame: Any, name: str) -> IntArray:
    """A column without missing values, as int64 (times stay exact)."""
    values: IntArray = frame[name].to_numpy(dtype=np.int64)
    return values


def _nullable(frame: Any, name: str) -> tuple[IntArray, BoolArray]:
    """A nullable int column: values (0 where missing) and where they are present."""
    column = frame[name]
    present: BoolArray = column.notna().to_numpy(dtype=np.bool_)
    values: IntArray = column.fillna(0).to_numpy(dtype=np.int64)
    return values, present


def _texts(frame: Any, name: str) -> TextArray:
    values: TextArray = frame[name].to_numpy(dtype=object)
    return values


def _flags(frame: Any, name: str) -> BoolArray:
    values: BoolArray = frame[name].to_numpy(dtype=np.bool_)
    return values


def _member(values: TextArray, names: frozenset[str]) -> BoolArray:
    return np.fromiter((value in names for value in values), dtype=np.bool_, count=len(values))


# -- statistics ----------------------------------------------------------------------------------


def _percentile(values: FloatArray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else NAN


def _mean(values: FloatArray) -> float:
    return float(values.mean()) if values.size else NAN


def _weighted_mean(values: FloatArray, weights: FloatArray) -> float:
    total = float(weights.sum())
    return float((values * weights).sum()) / total if values.size and total > 0 else NAN


def _spread(prefix: str, values: FloatArray) -> Metrics:
    return {f"{prefix}_p50": _percentile(values, 50.0), f"{prefix}_p99": _percentile(values, 99.0)}


class Reference:
    """``ref(u, t)`` from the ``reference`` table: linear between samples, NaN outside them."""

    def __init__(self, frame: Any) -> None:
        names, times, prices = (
            _texts(frame, "underlying"),
            _ints(frame, "time_ns"),
            _floats(frame, "price_usdc"),
        )
        self._paths: dict[str, tuple[IntArray, FloatArray]] = {}
        for name in dict.fromkeys(names.tolist()):
            mask = names == name
            order = np.argsort(times[mask], kind="stable")
            self._paths[str(name)] = (times[mask][order], prices[mask][order])

    def at(self, underlyings: TextArray, times: IntArray) -> FloatArray:
        out = np.full(len(times), NAN)
        for name, (grid, prices) in self._paths.items():
            mask = underlyings == name
            if not grid.size or not mask.any():
                continue
            base = grid[0]  # interpolate on offsets: exact in float64 for 100 days of ns
            offsets = (times[mask] - base).astype(np.float64)
            out[mask] = np.interp(offsets, (grid - base).astype(np.float64), prices, NAN, NAN)
        return out


# -- the metrics -------------------------------------------------------------------------------


def compute_metrics(
    frames: Mapping[str, Any],
    *,
    makers: Iterable[str] = (),
    takers: Iterable[str] | None = None,
    since_ns: int | None = None,
) -> Metrics:
    """Every metric of the module's list, from :meth:`Recorder.frames`' tables."""
    maker_names = frozenset(makers)
    taker_names = None if takers is None else frozenset(takers)
    since = -(1 << 62) if since_ns is None else since_ns
    reference = Reference(frames["reference"])
    metrics: Metrics = {}
    metrics.update(_execution(frames["fills"], reference, maker_names, taker_names, since))
    metrics.update(_makers(frames["fills"], frames["hedges"], reference, maker_names, since))
    metrics.update(_liquidations(frames["liquidations"], since))
    metrics.update(_blocks(frames["blocks"], frames["run"], since))
    metrics.update(_submissions(frames["orders"], since))
    metrics.update(_oracle(frames["index"], since))
    metrics.update(_state(frames["blocks"], frames["run"]))
    return metrics


def metrics_json(metrics: Mapping[str, float | int]) -> str:
    """``metrics`` as JSON, keys sorted, ``NaN`` as ``null`` (strict JSON has no NaN)."""
    clean = {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in sorted(metrics.items())
    }
    return json.dumps(clean, indent=2, allow_nan=False) + "\n"


class _Fills:
    """The ``fills`` columns the metrics use, kept to perpetual fills committed since ``since``."""

    def __init__(self, frame: Any, since: int) -> None:
        keep = (_ints(frame, "commit_ns") >= since) & ~_flags(frame, "is_option")
        self.commit_ns = _ints(frame, "commit_ns")[keep]
        self.underlying = _texts(frame, "underlying")[keep]
        self.price = _floats(frame, "price_usdc")[keep]
        self.units = _floats(frame, "size_units")[keep]
        self.notional = _floats(frame, "notional_usdc")[keep]
        self.taker_side = _ints(frame, "taker_side")[keep].astype(np.float64)
        self.maker_agent = _texts(frame, "maker_agent")[keep]
        self.taker_agent = _texts(frame, "taker_agent")[keep]
        self.taker_reference = _floats(frame, "taker_reference_usdc")[keep]
        self.reference = _floats(frame, "reference_usdc")[keep]
        self.maker_fee = _floats(frame, "maker_fee_usdc")[keep]


def _execution(
    frame: Any,
    reference: Reference,
    makers: frozenset[str],
    takers: frozenset[str] | None,
    since: int,
) -> Metrics:
    fills = _Fills(frame, since)
    if takers is None:
        chosen = (fills.taker_agent != "") & ~_member(fills.taker_agent, makers)
    else:
        chosen = _member(fills.taker_agent, takers)
    chosen &= np.isfinite(fills.taker_reference) & np.isfinite(fills.price)
    sent = fills.taker_reference[chosen]
    slippage = fills.taker_side[chosen] * (fills.price[chosen] - sent) / sent * BPS
    weights = fills.notional[chosen]
    metrics: Metrics = {
        "slippage_bps_mean": _weighted_mean(slippage, weights),
        **_spread("slippage_bps", slippage),
        "slippage_abs_bps_mean": _weighted_mean(np.abs(slippage), weights),
        "slippage_fills": int(chosen.sum()),
    }
    known = np.isfinite(fills.reference) & np.isfinite(fills.price)
    at_fill = fills.reference[known]
    spread = 2.0 * np.abs(fills.price[known] - at_fill) / at_fill * BPS
    metrics["effective_spread_bps"] = _weighted_mean(spread, fills.notional[known])
    return metrics


def _makers(
    frame: Any, hedges: Any, reference: Reference, makers: frozenset[str], since: int
) -> Metrics:
    fills = _Fills(frame, since)
    mine = _member(fills.maker_agent, makers) & np.isfinite(fills.price)
    side = -fills.taker_side[mine]
    price, units, notional = fills.price[mine], fills.units[mine], fills.notional[mine]
    underlying, commit = fills.underlying[mine], fills.commit_ns[mine]
    metrics: Metrics = {}
    for seconds in MARKOUT_HORIZONS_S:
        later = reference.at(underlying, commit + seconds * NANOS_PER_SECOND)
        known = np.isfinite(later)
        markout = side[known] * (later[known] - price[known]) / price[known] * BPS
        metrics[f"mm_markout_{seconds}s_bps"] = _weighted_mean(markout, notional[known])
    now = fills.reference[mine]
    later = reference.at(underlying, commit + PNL_HORIZON_S * NANOS_PER_SECOND)
    known = np.isfinite(now) & np.isfinite(later)
    captured = float((side[known] * (now[known] - price[known]) * units[known]).sum())
    adverse = float((side[known] * (later[known] - now[known]) * units[known]).sum())
    hedged = _member(_texts(hedges, "agent"), makers)
    metrics.update(
        {
            "mm_spread_captured_usdc": captured,
            "mm_adverse_selection_usdc": adverse,
            "mm_markout_60s_usdc": captured + adverse,
            "mm_hedging_cost_usdc": float(_floats(hedges, "cost_usdc")[hedged].sum()),
            "mm_fees_usdc": float(fills.maker_fee[mine].sum()),
            "mm_volume_usdc": float(notional.sum()),
            "mm_fills": int(mine.sum()),
        }
    )
    return metrics


class _Episode:
    """One sub-ledger's stay in the liquidation queue (see the module)."""

    __slots__ = ("first_step_ns", "queued_ns", "steps", "uncovered")

    def __init__(self, queued_ns: int | None) -> None:
        self.queued_ns = queued_ns
        self.first_step_ns: int | None = None
        self.steps = 0
        self.uncovered = 0.0
        """The ``uncovered`` of its last InsurancePaid: what the fund did not pay."""


def _episodes(
    kinds: TextArray,
    keys: list[tuple[str, str]],
    times: IntArray,
    steps: BoolArray,
    uncovered: FloatArray,
) -> list[_Episode]:
    """Rows in event order -> episodes; a row before its sub-ledger's ``queued`` (it entered
    the queue before the recording or the window) opens one with no breach time."""
    current: dict[tuple[str, str], _Episode] = {}
    episodes: list[_Episode] = []
    for row, kind in enumerate(kinds.tolist()):
        key = keys[row]
        if kind == "left":
            current.pop(key, None)
            continue
        episode = current.get(key)
        if episode is None:
            queued_ns = int(times[row]) if kind == "queued" else None
            episode = current[key] = _Episode(queued_ns)
            episodes.append(episode)
        if steps[row]:
            episode.steps += 1
            if episode.first_step_ns is None:
                episode.first_step_ns = int(times[row])
        elif kind == "insurance":
            episode.uncovered = float(uncovered[row])
    return episodes


def _liquidations(frame: Any, since: int) -> Metrics:
    keep = _ints(frame, "commit_ns") >= since
    kinds, amounts = _texts(frame, "kind")[keep], _floats(frame, "amount_usdc")[keep]
    keys = list(zip(_texts(frame, "account")[keep], _texts(frame, "underlying")[keep], strict=True))
    steps = _member(kinds, _STEP_KINDS) & (_ints(frame, "lots")[keep] > 0)
    episodes = _episodes(
        kinds,
        keys,
        _ints(frame, "timestamp_ns")[keep],
        steps,
        _floats(frame, "uncovered_usdc")[keep],
    )
    delays = np.array(
        [
            (episode.first_step_ns - episode.queued_ns) / NANOS_PER_MS
            for episode in episodes
            if episode.first_step_ns is not None and episode.queued_ns is not None
        ],
        dtype=np.float64,
    )
    paid = float(amounts[kinds == "insurance"].sum())
    return {
        "liquidations_count": sum(1 for episode in episodes if episode.steps),
        "liquidations_queued": int((kinds == "queued").sum()),
        "liquidated_notional_usdc": float(_floats(frame, "notional_usdc")[keep][steps].sum()),
        **_spread("liquidation_delay_ms", delays),
        "liquidation_fees_usdc": float(amounts[kinds == "fee"].sum()),
        "insurance_paid_usdc": paid,
        "bad_debt_usdc": paid + math.fsum(episode.uncovered for episode in episodes),
        "adl_socialized_usdc": float(amounts[kinds == "deleveraged"].sum()),
    }


def _blocks(frame: Any, run: Any, since: int) -> Metrics:
    commit = _ints(frame, "commit_ns")
    keep = commit >= since
    commit = commit[keep]
    fund = _floats(frame, "insurance_fund_usdc")[keep]
    seeded = np.flatnonzero(fund != 0.0)
    path = fund[seeded[0] :] if seeded.size else np.zeros(1 if fund.size else 0)
    propose, proposed = _nullable(frame, "propose_ns")
    finality = (commit - propose[keep])[proposed[keep]] / NANOS_PER_MS
    intervals = np.diff(commit) / NANOS_PER_MS
    utilization = _floats(frame, "utilization")[keep]
    start = max(int(_ints(run, "start_ns")[0]), since)
    span_s = (int(_ints(run, "end_ns")[0]) - start) / NANOS_PER_SECOND
    transactions = int(_ints(frame, "transactions")[keep].sum())
    return {
        "blocks_count": int(keep.sum()),
        "transactions_count": transactions,
        "throughput_tx_per_s": transactions / span_s if span_s > 0 else NAN,
        **_spread("finality_ms", finality.astype(np.float64)),
        **_spread("block_interval_ms", intervals.astype(np.float64)),
        "block_interval_ms_mean": _mean(intervals.astype(np.float64)),
        "block_utilization_mean": _mean(utilization[np.isfinite(utilization)]),
        "insurance_fund_start_usdc": float(path[0]) if path.size else NAN,
        "insurance_fund_min_usdc": float(path.min()) if path.size else NAN,
        "insurance_fund_end_usdc": float(path[-1]) if path.size else NAN,
    }


def _submissions(frame: Any, since: int) -> Metrics:
    sent = _ints(frame, "sent_ns")
    window = sent >= since
    refused = _texts(frame, "runtime_rejection") != ""
    keep = window & _member(_texts(frame, "kind"), ORDER_KINDS)
    sent = sent[keep]
    answer, answered = _nullable(frame, "answer_ns")
    receipts = (answered & ~refused)[keep]
    acknowledged = (answer[keep] - sent)[receipts] / NANOS_PER_MS
    commit, committed = _nullable(frame, "commit_ns")
    included = (commit[keep] - sent)[committed[keep]] / NANOS_PER_MS
    return {
        "submissions_count": int(window.sum()),
        "runtime_rejections_count": int((refused & window).sum()),
        "engine_rejections_count": int((_texts(frame, "engine_rejection")[window] != "").sum()),
        **_spread("ack_latency_ms", acknowledged.astype(np.float64)),
        **_spread("inclusion_latency_ms", included.astype(np.float64)),
    }


def _oracle(frame: Any, since: int) -> Metrics:
    keep = _ints(frame, "commit_ns") >= since
    index, reference = _floats(frame, "index_usdc")[keep], _floats(frame, "reference_usdc")[keep]
    known = np.isfinite(index) & np.isfinite(reference)
    error = np.abs(index[known] - reference[known]) / reference[known] * BPS
    return {
        "index_error_bps_mean": _mean(error),
        "index_error_bps_max": float(error.max()) if error.size else NAN,
    }


def _state(blocks: Any, run: Any) -> Metrics:
    ledgers, orders = _ints(blocks, "subledgers"), _ints(blocks, "open_orders")
    return {
        "state_subledgers": int(ledgers[-1]) if ledgers.size else 0,
        "state_open_orders": int(orders[-1]) if orders.size else 0,
        "state_accounts": int(_ints(run, "accounts")[0]),
        "state_snapshot_bytes": int(_ints(run, "state_snapshot_bytes")[0]),
    }
