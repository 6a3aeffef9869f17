"""A sweep's folder on disk: its tables, both TOML files and a self-contained HTML report.

:mod:`strikechain.sim.sweep` loads a sweep, runs it and computes its statistics
(:class:`~strikechain.sim.sweep.SweepResult`); this module only writes what a result holds. It
imports from there and never the other way, so running a sweep needs no plotting library.

:func:`write_sweep_report` writes the sweep's folder: ``runs``, ``summary`` and ``comparisons``
as Parquet and CSV, ``sweep.toml`` and ``scenario.toml`` (both files verbatim), and
``report.html`` (:func:`render_sweep_report`): self-contained (plotly.js inline), each metric
against each parameter with one line per design and its 95% interval (with more than one
parameter, each plot pools the others' values: main effects; the summary table has every
point), the A/B table and the summary. The same result gives the same bytes.

The page looks like a single run's report (:mod:`strikechain.sim.report`) and takes from it the
number format, the plot colours, the plotly config and the plot template, with two changes: the
x axis is a parameter, not time, so hover picks the closest point; the legend sits lower.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import plotly  # type: ignore[import-untyped]
import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from strikechain import __version__
from strikechain.sim.report import PLOTLY_CONFIG, SERIES, Figure, format_metric
from strikechain.sim.report import TEMPLATE as _RUN_TEMPLATE
from strikechain.sim.sweep import (
    Interval,
    Parameter,
    Scalar,
    SweepResult,
    SweepSpec,
    describe_point,
    is_scalar,
    mean_interval,
    scalar_kind,
    value_text,
)

LOG_AXIS_RATIO: Final = 20.0
"""A positive numeric parameter spanning this ratio or more is plotted on a log axis."""
_TEMPLATE: Final = {
    "layout": {
        **_RUN_TEMPLATE["layout"],
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.2},
    }
}
_STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 0 24px;
       color: #222; }
h1 { margin-top: 28px; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
nav a { margin-right: 14px; } p.note { color: #555; }
table.sweep { border-collapse: collapse; font-size: 13px; }
table.sweep td, table.sweep th { padding: 3px 14px 3px 0; text-align: left; }
table.sweep td.value { text-align: right; font-variant-numeric: tabular-nums; }
td.better { color: #1a7f37; font-weight: 600; } td.worse { color: #c62828; font-weight: 600; }
pre { background: #f6f6f6; padding: 12px; overflow-x: auto; font-size: 12px; }
footer { color: #888; margin: 32px 0; font-size: 12px; }
"""
SECTIONS: Final = (
    ("plots", "Metrics against parameters"),
    ("comparisons", "A/B comparisons"),
    ("summary", "Summary"),
    ("sweep-file", "Sweep file"),
    ("scenario", "Scenario"),
)


def write_sweep_report(result: SweepResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``result``'s folder (see the module) into ``out_dir`` (made if missing; files
    already there are replaced). Returns every file written by name: ``runs``, ``summary``,
    ``comparisons`` (Parquet), the same with ``_csv``, ``sweep``, ``scenario``, ``report``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name in ("runs", "summary", "comparisons"):
        frame = getattr(result, name)
        written[name] = out / f"{name}.parquet"
        frame.to_parquet(written[name], index=False)
        written[f"{name}_csv"] = out / f"{name}.csv"
        frame.to_csv(written[f"{name}_csv"], index=False)
    written["sweep"] = _write(out / "sweep.toml", result.spec.text)
    written["scenario"] = _write(out / "scenario.toml", result.spec.scenario_text)
    written["report"] = _write(out / "report.html", render_sweep_report(result))
    return written


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


def _plain(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _axis(parameter: Parameter) -> list[Scalar]:
    """The parameter's values in plotting order: numbers ascending, others as written."""
    if scalar_kind(parameter.values[0]) == "number":
        return sorted(parameter.values, key=float)
    return list(parameter.values)


def _is_log(values: Sequence[Scalar]) -> bool:
    numbers = [float(v) for v in values if not isinstance(v, bool | str)]
    if len(numbers) != len(values) or min(numbers) <= 0:
        return False
    return max(numbers) / min(numbers) >= LOG_AXIS_RATIO


def _trace(xs: Sequence[Any], intervals: Sequence[Interval], name: str, color: str) -> Any:
    means = [_plain(i.mean) for i in intervals]
    above = [_plain(i.high - i.mean) for i in intervals]
    below = [_plain(i.mean - i.low) for i in intervals]
    return go.Scatter(
        x=list(xs),
        y=means,
        error_y={"type": "data", "symmetric": False, "array": above, "arrayminus": below},
        mode="lines+markers",
        name=name,
        legendgroup=name,
        line={"color": color},
        customdata=[[i.n] for i in intervals],
        hovertemplate=f"{html.escape(name)}: %{{y:.4g}} (n %{{customdata[0]}})<extra></extra>",
    )


def metric_figure(result: SweepResult, metric: str) -> Figure:
    """``metric`` against each parameter (one subplot each; the others' values pooled), one
    line per design with its 95% interval; against the designs when there is no parameter."""
    spec, runs = result.spec, result.runs
    designs = [design.name for design in spec.designs]
    if not spec.parameters:
        figure = go.Figure(layout={"template": _TEMPLATE})
        intervals = [mean_interval(runs.loc[runs["design"] == d, metric]) for d in designs]
        figure.add_trace(_trace(designs, intervals, metric, SERIES[0]))
        figure.update_traces(mode="markers")
        figure.update_layout(height=360, showlegend=False, title_text=metric)
        figure.update_yaxes(title_text=metric)
        return figure
    figure = make_subplots(rows=1, cols=len(spec.parameters), shared_yaxes=True)
    figure.update_layout(template=_TEMPLATE, height=400, title_text=metric)
    for column, parameter in enumerate(spec.parameters, start=1):
        xs = _axis(parameter)
        for number, design in enumerate(designs):
            mine = runs[runs["design"] == design]
            intervals = [mean_interval(mine.loc[mine[parameter.name] == x, metric]) for x in xs]
            trace = _trace(xs, intervals, design, SERIES[number % len(SERIES)])
            trace.showlegend = column == 1
            figure.add_trace(trace, row=1, col=column)
        axis_type = "log" if _is_log(xs) else "category" if scalar_kind(xs[0]) != "number" else None
        figure.update_xaxes(
            title_text=parameter.name,
            type=axis_type,
            tickvals=xs,
            ticktext=[value_text(x) for x in xs],
            row=1,
            col=column,
        )
    figure.update_yaxes(title_text=metric, row=1, col=1)
    return figure


def _cell(value: float) -> str:
    return html.escape(format_metric(value))


def _point_text(spec: SweepSpec, row: Any) -> str:
    return describe_point(spec.parameters, [row[p.name] for p in spec.parameters])


def comparisons_table(result: SweepResult) -> str:
    """The A/B table: each design against the baseline, per metric and grid point."""
    spec = result.spec
    head = ("grid point", "metric", "comparison", "n", "mean difference", "95% interval")
    rows = ['<table class="sweep">', "<tr>" + "".join(f"<th>{h}</th>" for h in head)]
    rows[-1] += "<th>verdict</th></tr>"
    order = {metric: number for number, metric in enumerate(spec.metrics)}
    records = result.comparisons.to_dict("records")
    for row in sorted(records, key=lambda record: order[record["metric"]]):  # stable
        better = row["better"]
        css = "" if not better else "better" if better == row["design"] else "worse"
        interval = f"[{format_metric(row['ci_low'])}, {format_metric(row['ci_high'])}]"
        cells = (
            f"<td>{html.escape(_point_text(spec, row))}</td>",
            f"<td>{html.escape(row['metric'])}</td>",
            f"<td>{html.escape(row['design'])} - {html.escape(row['baseline'])}</td>",
            f'<td class="value">{row["n"]}</td>',
            f'<td class="value">{_cell(row["difference_mean"])}</td>',
            f'<td class="value">{html.escape(interval)}</td>',
            f'<td class="{css}">{html.escape(row["verdict"])}</td>',
        )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def summary_table(result: SweepResult) -> str:
    """Per metric and grid point, each design's mean, 95% interval and n."""
    spec = result.spec
    designs = [design.name for design in spec.designs]
    head = ["metric", "grid point", *designs]
    rows = ['<table class="sweep">', "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)]
    rows[-1] += "</tr>"
    summary = result.summary
    for metric in spec.metrics:
        mine = summary[summary["metric"] == metric]
        for point in spec.points():
            chosen = mine
            for parameter, value in zip(spec.parameters, point, strict=True):
                chosen = chosen[chosen[parameter.name] == value]
            cells = [html.escape(metric), html.escape(describe_point(spec.parameters, point))]
            for design in designs:
                record = chosen[chosen["design"] == design].to_dict("records")[0]
                cells.append(
                    f"{format_metric(record['mean'])} [{format_metric(record['ci_low'])}, "
                    f"{format_metric(record['ci_high'])}] n {record['n']}"
                )
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _override_text(value: Any) -> str:
    return value_text(value) if is_scalar(value) else repr(value)


def _header(spec: SweepSpec, runs: int) -> str:
    grid = "; ".join(
        f"{p.name}"
        + (f" (sets {', '.join(p.keys)})" if p.keys != (p.name,) else "")
        + f": {', '.join(value_text(v) for v in p.values)}"
        for p in spec.parameters
    )
    designs = "; ".join(
        f"{d.name}: "
        + (", ".join(f"{k} = {_override_text(v)}" for k, v in d.overrides) or "as written")
        for d in spec.designs
    )
    duration = "as written" if spec.duration_s is None else f"{spec.duration_s:g} s per run"
    points = len(spec.points())
    facts = {
        "sweep": spec.name,
        "scenario": spec.scenario_path.name,
        "runs": f"{runs:,}: {len(spec.designs)} designs x {points} grid points x "
        f"{len(spec.seeds)} seeds",
        "grid": grid or "one point: the scenario's values",
        "designs": designs,
        "baseline": spec.baseline,
        "seeds": ", ".join(str(seed) for seed in spec.seeds),
        "duration": duration,
    }
    items = "\n".join(
        f"<dt>{html.escape(key)}</dt><dd>{html.escape(value)}</dd>" for key, value in facts.items()
    )
    links = " ".join(f'<a href="#{section}">{html.escape(t)}</a>' for section, t in SECTIONS)
    heading = html.escape(f"Lab sweep: {spec.name}")
    facts_list = f'<dl class="facts">\n{items}\n</dl>'
    return f"<header>\n<h1>{heading}</h1>\n{facts_list}\n<nav>{links}</nav>\n</header>"


_EXPLAINED: Final = {
    "plots": "Each metric's mean over seeds against each parameter, one line per design, with "
    "its 95% confidence interval (Student's t). With several parameters, each plot pools the "
    "other parameters' values (main effects); the summary has every grid point.",
    "comparisons": "Each design against the baseline at each grid point, paired by seed: the "
    "mean of design - baseline and its 95% interval. Where the interval excludes 0, the verdict "
    "names the better design for metrics with a direction (lower slippage, spreads, latency, "
    "bad debt, index error; higher maker markouts, throughput, insurance fund).",
    "summary": "Per metric and grid point, each design's mean, [95% interval] and runs with a "
    "value (n/a: too few).",
    "sweep-file": "The sweep file (sweep.toml).",
    "scenario": "The scenario it varies, as written (scenario.toml).",
}


def render_sweep_report(result: SweepResult) -> str:
    """The report page (see the module), one self-contained HTML document."""
    spec = result.spec
    body = [_header(spec, len(result.runs))]
    for section, title in SECTIONS:
        parts = [f'<section id="{section}">', f"<h2>{html.escape(title)}</h2>"]
        parts.append(f'<p class="note">{html.escape(_EXPLAINED[section])}</p>')
        if section == "plots":
            parts.extend(
                metric_figure(result, metric).to_html(
                    full_html=False,
                    include_plotlyjs=False,
                    div_id=f"fig-{metric}",
                    config=PLOTLY_CONFIG,
                )
                for metric in spec.metrics
            )
        elif section == "comparisons":
            parts.append(comparisons_table(result) if len(spec.designs) > 1 else "One design.")
        elif section == "summary":
            parts.append(summary_table(result))
        else:
            text = spec.text if section == "sweep-file" else spec.scenario_text
            parts.append(f"<pre>{html.escape(text)}</pre>")
        parts.append("</section>")
        body.append("\n".join(parts))
    footer = f"strikechain {__version__}, plotly {plotly.__version__}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{html.escape(f'strikechain sweep: {spec.name}')}</title>",
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
