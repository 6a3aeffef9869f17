"""A lab run on disk: its tables, its metrics, its scenario and a self-contained HTML report.

:func:`write_run` writes one folder per run (keys of the returned dict in brackets)::

    <out>/
      metrics.json      [metrics]   the metrics (metrics_json: keys sorted, NaN as null)
      scenario.toml     [scenario]  the scenario that ran (below)
      report.html       [report]    the report (below): one file, works offline
      blocks.parquet    [blocks]    one Parquet file per recorder table (recorder.SCHEMA):
      markets.parquet   [markets]   blocks, markets, index, fills, orders, liquidations,
      ...                           hedges, reference, run; pandas.read_parquet gives the
                                    frames back, dtypes included

``scenario.toml`` is the source file, byte for byte, when it loads to exactly the scenario that
ran; otherwise (no source, a ``--seed`` override, a struct changed in Python) it is a
re-encoding of the run's :class:`~strikechain.sim.scenario.Scenario` with every field spelled
out (:func:`scenario_toml`), which loads back to the same scenario. TOML has no null: a field
set to ``None`` where its default is not (``liquidation``, say) cannot be written, and the file
then says so in its header.

The report's sections (:data:`SECTIONS`; figure div ids in :data:`FIGURE_IDS`): a header (the
scenario's name, seed, start, duration, consensus, agents, size of the run); reference, index
and perpetual mark over time; best bid and ask around the reference and the quoted spread;
the makers' markouts by horizon and their per-fill distribution; liquidations over time and the
insurance fund; ack and inclusion latency of trading transactions; block intervals, utilization
and base fee; every metric, grouped as the CLI groups them (:data:`METRIC_GROUPS`); the
scenario's text. Times are virtual, from the run's start; the warm-up's end is marked, and the
distributions (markouts, latencies, intervals) count what the metrics count: from the warm-up's
end, trading transactions, perpetual fills.

Determinism and size: the same result gives the same bytes. Figure div ids are fixed, plotly
encodes arrays as base64, nothing reads a clock or draws an id. plotly.js is embedded once
(about 4.7 MB, most of the file). A time series longer than :data:`MAX_POINTS` keeps each
bucket's lowest and highest point (spikes survive a reduction); histograms are binned here,
so a trace holds bin counts, never every observation.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import plotly  # type: ignore[import-untyped]
import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from strikechain import __version__
from strikechain.engine.instruments import InstrumentKind, parse_instrument_name
from strikechain.sim.metrics import MARKOUT_HORIZONS_S, ORDER_KINDS, Reference, metrics_json
from strikechain.sim.run import RunResult
from strikechain.sim.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
TextArray = npt.NDArray[np.object_]
Figure = Any
"""A ``plotly.graph_objects.Figure`` (plotly has no type hints)."""

NANOS_PER_SECOND: Final = 1_000_000_000
NANOS_PER_MS: Final = 1_000_000
BPS: Final = 10_000.0
MAX_POINTS: Final = 2_000
"""Points per time-series trace at most (a bucket's min and max are kept)."""
HISTOGRAM_BINS: Final = 50
LIQUIDATION_BARS: Final = 120
"""Liquidation buckets over the run, about (the bucket is a round duration)."""
_STEP_KINDS: Final = ("order", "backstop", "deleveraged", "auction_ended")

SECTIONS: Final = (
    ("prices", "Reference, index and mark"),
    ("spreads", "Spreads around the reference"),
    ("markouts", "Market makers' markouts"),
    ("liquidations", "Liquidations and the insurance fund"),
    ("latency", "Latency"),
    ("blocks", "Blocks"),
    ("metrics", "All metrics"),
    ("scenario", "Scenario"),
)
FIGURE_IDS: Final = (
    "fig-prices",
    "fig-spreads",
    "fig-markouts",
    "fig-markout-distribution",
    "fig-liquidations",
    "fig-latency",
    "fig-block-intervals",
    "fig-blocks",
)
METRIC_GROUPS: Final = (
    ("trading", ("slippage_", "effective_spread_")),
    ("market makers", ("mm_",)),
    ("liquidations", ("liquidat", "insurance_", "bad_debt_", "adl_")),
    (
        "blocks & latency",
        (
            "blocks_",
            "block_",
            "transactions_",
            "throughput_",
            "finality_",
            "submissions_",
            "runtime_rejections_",
            "engine_rejections_",
            "ack_",
            "inclusion_",
        ),
    ),
    ("oracle", ("index_",)),
    ("state", ("state_",)),
)
"""Metric groups by key prefix, in display order; a key no prefix claims goes to ``other``."""

_COLORS: Final = {
    "reference": "#222222",
    "index": "#1f77b4",
    "mark": "#ff7f0e",
    "bid": "#2ca02c",
    "ask": "#d62728",
    "spread": "#9467bd",
}
SERIES: Final = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
TEMPLATE: Final = {
    "layout": {
        "colorway": list(SERIES),
        "font": {"family": "system-ui, sans-serif", "size": 12},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {"gridcolor": "#e8e8e8", "zeroline": False, "linecolor": "#999"},
        "yaxis": {"gridcolor": "#e8e8e8", "zeroline": False, "linecolor": "#999"},
        "margin": {"l": 70, "r": 30, "t": 50, "b": 50},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.15},
    }
}
PLOTLY_CONFIG: Final = {"displaylogo": False, "responsive": True}


# -- the folder ----------------------------------------------------------------------------------


def write_run(
    result: RunResult, out_dir: str | Path, *, source: str | Path | None = None
) -> dict[str, Path]:
    """Write ``result``'s run folder (see the module) into ``out_dir`` (made if missing; files
    already there are replaced); ``source`` is the scenario file it was loaded from, if any.
    Returns every file written by name: ``metrics``, ``scenario``, ``report`` and each table's."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    written["metrics"] = _write(out / "metrics.json", metrics_json(result.metrics).encode())
    scenario_bytes = _scenario_bytes(result.scenario, None if source is None else Path(source))
    written["scenario"] = _write(out / "scenario.toml", scenario_bytes)
    for table, frame in result.frames.items():
        path = out / f"{table}.parquet"
        frame.to_parquet(path, index=False)
        written[table] = path
    name = "scenario" if source is None else Path(source).stem
    page = render_report(result, name=name, scenario_text=scenario_bytes.decode())
    written["report"] = _write(out / "report.html", page.encode())
    return written


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _scenario_bytes(scenario: Scenario, source: Path | None) -> bytes:
    """The source file verbatim if it loads to ``scenario``, else a re-encoding."""
    note = "no source file"
    if source is not None:
        try:
            if load_scenario(source) == scenario:
                return source.read_bytes()
            note = (
                f"the run differs from {source.name} (its seed or fields were changed, or the file)"
            )
        except ScenarioError as error:
            note = f"{source.name} no longer loads: {error.code}"
    return scenario_toml(scenario, note=note).encode()


# -- the scenario as TOML ------------------------------------------------------------------------

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


def scenario_toml(scenario: Scenario, *, note: str = "") -> str:
    """``scenario`` as a TOML scenario file, every field spelled out (defaults included), that
    :func:`~strikechain.sim.scenario.parse_scenario` loads back to an equal scenario, unless a
    field is ``None`` where its default is not (TOML has no null; the header then says so)."""
    body = "\n".join(_toml_table([], _without_none(msgspec.to_builtins(scenario)), array=False))
    lines = [
        "# The scenario of a lab run, re-encoded by strikechain" + (f": {note}" if note else "")
    ]
    if parse_scenario(body) != scenario:
        lines.append("# warning: a field is None where its default is not; this file leaves it")
        lines.append("# out, so it loads to a different scenario than the run's")
    return "\n".join(lines) + "\n" + body + "\n"


def _without_none(value: Any) -> Any:
    """Builtins (``msgspec.to_builtins``) without ``None`` values, tuples as lists."""
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_without_none(item) for item in value]
    return value


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_table(path: list[str], table: dict[str, Any], *, array: bool) -> list[str]:
    """``[path]`` (or ``[[path]]``): scalars and inline values first, then sub-tables."""
    lines: list[str] = []
    if path:
        dotted = ".".join(_toml_key(part) for part in path)
        lines.extend(["", f"[[{dotted}]]" if array else f"[{dotted}]"])
    nested = {k: v for k, v in table.items() if (isinstance(v, dict) and v) or _is_table_array(v)}
    lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if k not in nested)
    for key, value in nested.items():
        if isinstance(value, dict):
            lines.extend(_toml_table([*path, key], value, array=False))
        else:
            for item in value:
                lines.extend(_toml_table([*path, key], item, array=True))
    return lines


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    return json.dumps(text).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"no TOML for {type(value).__name__}: {value!r}")


# -- metrics for people --------------------------------------------------------------------------


def group_metrics(metrics: Mapping[str, float | int]) -> dict[str, list[str]]:
    """``metrics``' keys by :data:`METRIC_GROUPS` (in that order, keys in the metrics' order),
    then ``other``; empty groups left out."""
    groups: dict[str, list[str]] = {name: [] for name, _ in METRIC_GROUPS}
    groups["other"] = []
    for key in metrics:
        group = next((g for g, prefixes in METRIC_GROUPS if key.startswith(prefixes)), "other")
        groups[group].append(key)
    return {name: keys for name, keys in groups.items() if keys}


def format_metric(value: float | int | None) -> str:
    """A metric for a table: thousands separated, a few significant digits, ``n/a`` for NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(value)
    if magnitude >= 1_000:
        return f"{value:,.0f}"
    if magnitude >= 1 or magnitude == 0:
        return f"{value:,.2f}"
    return f"{value:.3g}"


# -- reading the tables --------------------------------------------------------------------------


def _floats(frame: Any, name: str) -> FloatArray:
    values: FloatArray = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return values


def _ints(frame: Any, name: str) -> IntArray:
    values: IntArray = frame[name].to_numpy(dtype=np.int64)
    return values


def _nullable(frame: Any, name: str) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    column = frame[name]
    present: npt.NDArray[np.bool_] = column.notna().to_numpy(dtype=np.bool_)
    values: IntArray = column.fillna(0).to_numpy(dtype=np.int64)
    return values, present


def _texts(frame: Any, name: str) -> TextArray:
    values: TextArray = frame[name].to_numpy(dtype=object)
    return values


@dataclass(frozen=True)
class _Run:
    """What every figure needs: the time axis, the warm-up's end, the reference, the makers."""

    start_ns: int
    since_ns: int
    end_ns: int
    scale_ns: int
    unit: str
    reference: Reference
    makers: frozenset[str]
    underlyings: tuple[str, ...]

    @classmethod
    def of(cls, result: RunResult) -> _Run:
        scenario, run = result.scenario, result.frames["run"]
        start, end = int(_ints(run, "start_ns")[0]), int(_ints(run, "end_ns")[0])
        scale, unit = _time_unit(end - start)
        makers = frozenset(
            f"{group.prefix}-{number}"
            for group in scenario.agents
            if group.kind == "market_maker"
            for number in range(group.count)
        )
        return cls(
            start_ns=start,
            since_ns=start + int(scenario.run.warmup_s * NANOS_PER_SECOND),
            end_ns=end,
            scale_ns=scale,
            unit=unit,
            reference=Reference(result.frames["reference"]),
            makers=makers,
            underlyings=tuple(u.name for u in scenario.market.underlyings),
        )

    def x(self, times_ns: IntArray) -> FloatArray:
        offsets: FloatArray = (times_ns - self.start_ns).astype(np.float64) / self.scale_ns
        return offsets

    @property
    def x_title(self) -> str:
        return f"virtual time since the start ({self.unit})"

    @property
    def warmup_x(self) -> float:
        return (self.since_ns - self.start_ns) / self.scale_ns


def _time_unit(span_ns: int) -> tuple[int, str]:
    """Seconds up to two hours, minutes up to two days, then hours."""
    if span_ns <= 2 * 3_600 * NANOS_PER_SECOND:
        return NANOS_PER_SECOND, "s"
    if span_ns <= 2 * 86_400 * NANOS_PER_SECOND:
        return 60 * NANOS_PER_SECOND, "min"
    return 3_600 * NANOS_PER_SECOND, "h"


# -- series and histograms -----------------------------------------------------------------------


def downsample(
    x: FloatArray, y: FloatArray, max_points: int = MAX_POINTS
) -> tuple[FloatArray, FloatArray]:
    """At most ``max_points`` of ``(x, y)``: the lowest and highest ``y`` of each of
    ``max_points // 2`` equal runs of points, in order (a run without a finite ``y`` keeps its
    first point, so gaps stay gaps)."""
    count = len(x)
    if count <= max_points:
        return x, y
    bounds = np.linspace(0, count, max_points // 2 + 1).astype(np.int64).tolist()
    keep: list[int] = []
    for low, high in itertools.pairwise(bounds):
        part = y[low:high]
        finite = np.isfinite(part)
        if not finite.any():
            keep.append(low)
            continue
        first = low + int(np.argmin(np.where(finite, part, np.inf)))
        second = low + int(np.argmax(np.where(finite, part, -np.inf)))
        keep.extend((first,) if first == second else (min(first, second), max(first, second)))
    index = np.asarray(keep, dtype=np.int64)
    return x[index], y[index]


def histogram(
    values: FloatArray, bins: int = HISTOGRAM_BINS, *, log: bool = False
) -> tuple[FloatArray, FloatArray]:
    """Bin centres and counts over the 0.5th to 99.5th percentile; values beyond fall into the
    end bins (so a long tail does not flatten the picture). ``log``: bins of equal ratio, over
    the positive values (for latencies spanning orders of magnitude)."""
    keep = np.isfinite(values)
    if log:
        keep &= values > 0
    finite = values[keep]
    if not finite.size:
        return np.zeros(0), np.zeros(0)
    low, high = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
    if high <= low:
        low, high = (low / 1.5, high * 1.5) if log else (low - 0.5, high + 0.5)
    edges = np.geomspace(low, high, bins + 1) if log else np.linspace(low, high, bins + 1)
    counts, _ = np.histogram(np.clip(finite, low, high), bins=edges)
    centres: FloatArray = np.sqrt(edges[:-1] * edges[1:]) if log else (edges[:-1] + edges[1:]) / 2
    return centres, counts.astype(np.float64)


def _line(x: FloatArray, y: FloatArray, name: str, color: str | None = None, **extra: Any) -> Any:
    x, y = downsample(x, y)
    line = {"width": 1.2} if color is None else {"width": 1.2, "color": color}
    return go.Scatter(x=x, y=y, mode="lines", name=name, line=line, **extra)


def _steps(centres: FloatArray, counts: FloatArray, name: str, **extra: Any) -> Any:
    return go.Scatter(
        x=centres, y=counts, mode="lines", line={"shape": "hvh", "width": 1.5}, name=name, **extra
    )


def _figure(rows: int, cols: int = 1, *, titles: Iterable[str] = (), **options: Any) -> Figure:
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=tuple(titles), **options)
    figure.layout.template = TEMPLATE  # replaces plotly's default (merging would keep it)
    return figure


def _mark_warmup(figure: Figure, run: _Run) -> None:
    if run.since_ns > run.start_ns:
        figure.add_vline(
            x=run.warmup_x, line={"dash": "dot", "color": "#999999", "width": 1}, row="all", col=1
        )


# -- the figures ---------------------------------------------------------------------------------


def _perpetuals(markets: Any) -> list[str]:
    names = dict.fromkeys(_texts(markets, "instrument").tolist())
    return [n for n in names if parse_instrument_name(n).kind is InstrumentKind.PERPETUAL]


def prices_figure(frames: Mapping[str, Any], run: _Run) -> Figure:
    """Per underlying: the reference path, the oracle index and its perpetuals' marks."""
    rows = max(len(run.underlyings), 1)
    figure = _figure(rows, titles=run.underlyings, shared_xaxes=True, vertical_spacing=0.08)
    reference, index, markets = frames["reference"], frames["index"], frames["markets"]
    perpetuals = _perpetuals(markets)
    for row, underlying in enumerate(run.underlyings, start=1):
        mine = _texts(reference, "underlying") == underlying
        times = _ints(reference, "time_ns")[mine]
        order = np.argsort(times, kind="stable")
        series = [
            ("reference", times[order], _floats(reference, "price_usdc")[mine][order]),
        ]
        mine = _texts(index, "underlying") == underlying
        series.append(
            ("index", _ints(index, "commit_ns")[mine], _floats(index, "index_usdc")[mine])
        )
        for name in perpetuals:
            if parse_instrument_name(name).underlying == underlying:
                mine = _texts(markets, "instrument") == name
                commit, marks = (
                    _ints(markets, "commit_ns")[mine],
                    _floats(markets, "mark_usdc")[mine],
                )
                series.append((f"mark {name}", commit, marks))
        for label, times, prices in series:
            group = label.split(" ")[0]
            trace = _line(
                run.x(times), prices, label, _COLORS[group], legendgroup=group, showlegend=row == 1
            )
            figure.add_trace(trace, row=row, col=1)
        figure.update_yaxes(title_text="USDC", row=row, col=1)
    figure.update_xaxes(title_text=run.x_title, row=rows, col=1)
    figure.update_layout(height=160 + 300 * rows)
    _mark_warmup(figure, run)
    return figure


def spreads_figure(frames: Mapping[str, Any], run: _Run) -> Figure:
    """Per perpetual: best bid and ask after each block, in bps from the reference at the block's
    commit; and the quoted spread, in bps of the mid."""
    titles = ("best bid and ask, bps from the reference", "quoted spread, bps of the mid")
    figure = _figure(2, titles=titles, shared_xaxes=True, vertical_spacing=0.1)
    markets = frames["markets"]
    instruments = _texts(markets, "instrument")
    for number, name in enumerate(_perpetuals(markets)):
        mine = instruments == name
        commit = _ints(markets, "commit_ns")[mine]
        underlyings = _texts(markets, "underlying")[mine]
        reference = run.reference.at(underlyings, commit)
        bid, ask = _floats(markets, "best_bid_usdc")[mine], _floats(markets, "best_ask_usdc")[mine]
        x = run.x(commit)
        suffix = f" {name}" if number else ""
        color = SERIES[number % len(SERIES)]
        for label, values, tint in (("bid", bid, _COLORS["bid"]), ("ask", ask, _COLORS["ask"])):
            points = (values - reference) / reference * BPS
            figure.add_trace(
                _line(x, points, label + suffix, tint if not number else color), row=1, col=1
            )
        spread = (ask - bid) / ((ask + bid) / 2) * BPS
        figure.add_trace(_line(x, spread, "spread" + suffix, _COLORS["spread"]), row=2, col=1)
    figure.update_yaxes(title_text="bps", row=1, col=1)
    figure.update_yaxes(title_text="bps", row=2, col=1)
    figure.update_xaxes(title_text=run.x_title, row=2, col=1)
    figure.update_layout(height=620)
    _mark_warmup(figure, run)
    return figure


def markouts_figure(metrics: Mapping[str, float | int]) -> Figure:
    """The makers' notional-weighted markouts by horizon (the metrics)."""
    labels = [f"{seconds} s" for seconds in MARKOUT_HORIZONS_S]
    values = [float(metrics.get(f"mm_markout_{s}s_bps", math.nan)) for s in MARKOUT_HORIZONS_S]
    figure = _figure(1)
    figure.add_trace(
        go.Bar(
            x=labels,
            y=[v if math.isfinite(v) else None for v in values],
            text=[f"{v:.2f} bps" if math.isfinite(v) else "n/a" for v in values],
            textposition="outside",
            marker={"color": ["#2ca02c" if v >= 0 else "#d62728" for v in values]},
            name="markout",
        )
    )
    figure.update_layout(height=360, showlegend=False, hovermode="closest")
    figure.update_xaxes(title_text="horizon after the fill")
    figure.update_yaxes(title_text="bps (positive: the maker gained)")
    return figure


def maker_markouts(frames: Mapping[str, Any], run: _Run) -> dict[int, FloatArray]:
    """Per horizon (s), every maker perpetual fill's markout in bps (as the metric defines it,
    unweighted: one value per fill whose later reference is known)."""
    fills = frames["fills"]
    keep = (
        (_ints(fills, "commit_ns") >= run.since_ns)
        & ~fills["is_option"].to_numpy(dtype=np.bool_)
        & np.fromiter((a in run.makers for a in _texts(fills, "maker_agent")), dtype=np.bool_)
    )
    price = _floats(fills, "price_usdc")[keep]
    side = -_ints(fills, "taker_side")[keep].astype(np.float64)
    underlying, commit = _texts(fills, "underlying")[keep], _ints(fills, "commit_ns")[keep]
    out: dict[int, FloatArray] = {}
    for seconds in MARKOUT_HORIZONS_S:
        later = run.reference.at(underlying, commit + seconds * NANOS_PER_SECOND)
        known = np.isfinite(later) & np.isfinite(price)
        out[seconds] = side[known] * (later[known] - price[known]) / price[known] * BPS
    return out


def markout_distribution_figure(frames: Mapping[str, Any], run: _Run) -> Figure:
    figure = _figure(1)
    for seconds, values in maker_markouts(frames, run).items():
        centres, counts = histogram(values)
        figure.add_trace(_steps(centres, counts, f"{seconds} s ({values.size:,} fills)"))
    figure.update_layout(height=380, hovermode="closest")
    figure.update_xaxes(title_text="markout, bps (tails folded into the end bins)")
    figure.update_yaxes(title_text="fills")
    return figure


def _bucket_ns(span_ns: int) -> int:
    """A round bucket length giving at most about :data:`LIQUIDATION_BARS` buckets."""
    for seconds in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 21_600):
        if span_ns / (seconds * NANOS_PER_SECOND) <= LIQUIDATION_BARS:
            return seconds * NANOS_PER_SECOND
    return 86_400 * NANOS_PER_SECOND


def liquidations_figure(frames: Mapping[str, Any], run: _Run) -> Figure:
    """Liquidation steps and queue entries per time bucket, and the insurance fund after each
    block."""
    bucket = _bucket_ns(max(run.end_ns - run.start_ns, 1))
    seconds = bucket // NANOS_PER_SECOND
    titles = (f"liquidation events per {seconds:,} s", "insurance fund after each block")
    figure = _figure(2, titles=titles, shared_xaxes=True, vertical_spacing=0.12)
    events = frames["liquidations"]
    kinds, times = _texts(events, "kind"), _ints(events, "commit_ns")
    buckets = (run.end_ns - run.start_ns) // bucket + 1
    centres = run.x(run.start_ns + np.arange(buckets, dtype=np.int64) * bucket + bucket // 2)
    stepped = _ints(events, "lots") > 0
    for kind in ("queued", *_STEP_KINDS):
        mine = kinds == kind
        if kind != "queued":
            mine &= stepped
        if not mine.any():
            continue
        counts = np.bincount((times[mine] - run.start_ns) // bucket, minlength=buckets)
        label = "queued (entries)" if kind == "queued" else f"step: {kind}"
        figure.add_trace(go.Bar(x=centres, y=counts[:buckets], name=label), row=1, col=1)
    if not len(kinds):
        figure.layout.annotations[0].text = titles[0] + ": none in this run"
    blocks = frames["blocks"]
    fund = _floats(blocks, "insurance_fund_usdc")
    figure.add_trace(
        _line(run.x(_ints(blocks, "commit_ns")), fund, "insurance fund", _COLORS["index"]), 2, 1
    )
    figure.update_yaxes(title_text="events", row=1, col=1)
    figure.update_yaxes(title_text="USDC", row=2, col=1)
    figure.update_xaxes(title_text=run.x_title, row=2, col=1)
    figure.update_layout(height=620, barmode="stack", hovermode="closest")
    _mark_warmup(figure, run)
    return figure


def latencies_ms(frames: Mapping[str, Any], run: _Run) -> dict[str, FloatArray]:
    """Ack (send to receipt) and inclusion (send to commit) latency in ms of the trading
    transactions sent after the warm-up, as the metrics count them."""
    orders = frames["orders"]
    sent = _ints(orders, "sent_ns")
    trading = np.fromiter((k in ORDER_KINDS for k in _texts(orders, "kind")), dtype=np.bool_)
    keep = (sent >= run.since_ns) & trading
    answer, answered = _nullable(orders, "answer_ns")
    receipts = keep & answered & (_texts(orders, "runtime_rejection") == "")
    commit, committed = _nullable(orders, "commit_ns")
    included = keep & committed
    return {
        "ack": ((answer - sent)[receipts] / NANOS_PER_MS).astype(np.float64),
        "inclusion": ((commit - sent)[included] / NANOS_PER_MS).astype(np.float64),
    }


def _described(label: str, values: FloatArray, unit: str) -> str:
    if not values.size:
        return f"{label}: no observation"
    p50, p99 = (float(v) for v in np.percentile(values, [50.0, 99.0]))
    count = f"{values.size:,}"
    return f"{label} ({count}; p50 {format_metric(p50)} {unit}, p99 {format_metric(p99)} {unit})"


def latency_figure(frames: Mapping[str, Any], run: _Run) -> Figure:
    latencies = latencies_ms(frames, run)
    titles = [_described(f"{name} latency", values, "ms") for name, values in latencies.items()]
    figure = _figure(1, 2, titles=titles, horizontal_spacing=0.1)
    for col, (name, values) in enumerate(latencies.items(), start=1):
        centres, counts = histogram(values, log=True)
        figure.add_trace(_steps(centres, counts, name, showlegend=False), row=1, col=col)
        figure.update_xaxes(title_text="ms (log scale)", type="log", row=1, col=col)
        figure.update_yaxes(title_text="transactions", row=1, col=col)
    figure.update_layout(height=400, hovermode="closest")
    return figure


def block_intervals_figure(frames: Mapping[str, Any], run: _Run) -> Figure:
    commit = _ints(frames["blocks"], "commit_ns")
    intervals = (np.diff(commit[commit >= run.since_ns]) / NANOS_PER_MS).astype(np.float64)
    figure = _figure(1, titles=[_described("block interval", intervals, "ms")])
    centres, counts = histogram(intervals)
    figure.add_trace(go.Bar(x=centres, y=counts, name="blocks", marker={"color": SERIES[0]}))
    figure.update_xaxes(title_text="ms between consecutive commits")
    figure.update_yaxes(title_text="blocks")
    figure.update_layout(height=360, showlegend=False, hovermode="closest", bargap=0.05)
    return figure


def blocks_figure(frames: Mapping[str, Any], run: _Run) -> Figure:
    """Per block: the interval since the previous commit, utilization and the base fee."""
    blocks = frames["blocks"]
    commit = _ints(blocks, "commit_ns")
    x = run.x(commit)
    intervals = np.concatenate(([np.nan], np.diff(commit) / NANOS_PER_MS)).astype(np.float64)
    base_fee, has_fee = _nullable(blocks, "base_fee")
    fees = np.where(has_fee, base_fee.astype(np.float64), np.nan)
    titles = ("interval since the previous block (ms)", "utilization", "base fee")
    figure = _figure(3, titles=titles, shared_xaxes=True, vertical_spacing=0.08)
    figure.add_trace(_line(x, intervals, "interval", SERIES[0]), row=1, col=1)
    figure.add_trace(
        _line(x, _floats(blocks, "utilization"), "utilization", SERIES[1]), row=2, col=1
    )
    figure.add_trace(_line(x, fees, "base fee", SERIES[2]), row=3, col=1)
    figure.update_xaxes(title_text=run.x_title, row=3, col=1)
    figure.update_layout(height=720, showlegend=False)
    _mark_warmup(figure, run)
    return figure


# -- the page ------------------------------------------------------------------------------------

_EXPLAINED: Final = {
    "prices": "The world's reference price, the oracle's index after each block and each "
    "perpetual's mark. The dotted line is the warm-up's end (agents start there).",
    "spreads": "The top of each perpetual's book after each block, against the reference at "
    "the block's commit; gaps are blocks where a side was empty.",
    "markouts": "How the reference moved after the makers' perpetual fills, notional-weighted "
    "(the metrics), and per fill.",
    "liquidations": "Queue entries and the steps that closed positions (lane orders, backstop "
    "takes, deleveraging, auctions won), and the insurance fund.",
    "latency": "Trading transactions (orders, amends, cancels) sent after the warm-up: send to "
    "receipt (only when an agent asked for one), and send to the commit of the block that "
    "included it. Bins of equal ratio; tails beyond the 99.5th percentile fall into the end bins.",
    "blocks": "Block production: intervals between commits (after the warm-up), and per block "
    "the interval, the utilization and the base fee the mempool asked.",
    "metrics": "Every metric of the run (metrics.json), grouped; n/a: no observation.",
    "scenario": "The scenario file of the run (scenario.toml).",
}
_FIGURES_OF: Final = {
    "prices": ("fig-prices",),
    "spreads": ("fig-spreads",),
    "markouts": ("fig-markouts", "fig-markout-distribution"),
    "liquidations": ("fig-liquidations",),
    "latency": ("fig-latency",),
    "blocks": ("fig-block-intervals", "fig-blocks"),
}
_STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 0 24px;
       color: #222; }
h1 { margin-top: 28px; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
nav a { margin-right: 14px; } p.note { color: #555; }
table.metrics { border-collapse: collapse; } table.metrics td, table.metrics th {
  padding: 3px 14px 3px 0; text-align: left; } table.metrics td.value { text-align: right;
  font-variant-numeric: tabular-nums; } table.metrics th.group { padding-top: 12px; }
pre { background: #f6f6f6; padding: 12px; overflow-x: auto; font-size: 12px; }
footer { color: #888; margin: 32px 0; font-size: 12px; }
"""


def render_report(result: RunResult, *, name: str = "scenario", scenario_text: str = "") -> str:
    """The report page (see the module), one self-contained HTML document."""
    run = _Run.of(result)
    frames, metrics = result.frames, result.metrics
    figures = {
        "fig-prices": prices_figure(frames, run),
        "fig-spreads": spreads_figure(frames, run),
        "fig-markouts": markouts_figure(metrics),
        "fig-markout-distribution": markout_distribution_figure(frames, run),
        "fig-liquidations": liquidations_figure(frames, run),
        "fig-latency": latency_figure(frames, run),
        "fig-block-intervals": block_intervals_figure(frames, run),
        "fig-blocks": blocks_figure(frames, run),
    }
    body = [_header(result, name)]
    for section, title in SECTIONS:
        parts = [f'<section id="{section}">', f"<h2>{html.escape(title)}</h2>"]
        parts.append(f'<p class="note">{html.escape(_EXPLAINED[section])}</p>')
        parts.extend(
            figures[figure_id].to_html(
                full_html=False, include_plotlyjs=False, div_id=figure_id, config=PLOTLY_CONFIG
            )
            for figure_id in _FIGURES_OF.get(section, ())
        )
        if section == "metrics":
            parts.append(_metrics_table(metrics))
        if section == "scenario":
            parts.append(f"<pre>{html.escape(scenario_text)}</pre>")
        parts.append("</section>")
        body.append("\n".join(parts))
    title = html.escape(f"strikechain run: {name} (seed {result.scenario.run.seed})")
    footer = f"strikechain {__version__}, plotly {plotly.__version__}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{title}</title>",
            f"<style>{_STYLE}</style>",
            "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>",
            f"<script>{get_plotlyjs()}</script>",
            "</head>",
            "<body>",
            *body,
            f"<footer>{html.escape(footer)}</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _header(result: RunResult, name: str) -> str:
    scenario = result.scenario
    consensus = scenario.consensus
    if consensus.kind == "sequencer":
        production = f"a sequencer, a block every {consensus.block_interval_ns / 1e6:g} ms"
    else:
        production = f"Tendermint, {len(scenario.tendermint().validators)} validators"
    agents: dict[str, int] = {}
    for group in scenario.agents:
        agents[group.kind] = agents.get(group.kind, 0) + group.count
    facts = {
        "scenario": name,
        "seed": str(scenario.run.seed),
        "start": scenario.run.start,
        "duration": f"{scenario.run.duration_s:g} s after a {scenario.run.warmup_s:g} s warm-up",
        "block production": production,
        "underlyings": ", ".join(u.name for u in scenario.market.underlyings),
        "agents": ", ".join(f"{count:,} {kind}" for kind, count in agents.items()) or "none",
        "recorded": (
            f"{len(result.frames['blocks']):,} blocks, {len(result.frames['fills']):,} fills, "
            f"{len(result.frames['orders']):,} submissions, {result.events:,} kernel events"
        ),
    }
    rows = "\n".join(
        f"<dt>{html.escape(key)}</dt><dd>{html.escape(value)}</dd>" for key, value in facts.items()
    )
    links = " ".join(f'<a href="#{section}">{html.escape(t)}</a>' for section, t in SECTIONS)
    heading = html.escape(f"Lab run: {name}")
    facts_list = f'<dl class="facts">\n{rows}\n</dl>'
    return f"<header>\n<h1>{heading}</h1>\n{facts_list}\n<nav>{links}</nav>\n</header>"


def _metrics_table(metrics: Mapping[str, float | int]) -> str:
    rows = ['<table class="metrics">']
    for group, keys in group_metrics(metrics).items():
        rows.append(f'<tr><th class="group" colspan="2">{html.escape(group)}</th></tr>')
        rows.extend(
            f'<tr><td>{html.escape(key)}</td><td class="value">'
            f"{html.escape(format_metric(metrics[key]))}</td></tr>"
            for key in keys
        )
    rows.append("</table>")
    return "\n".join(rows)
