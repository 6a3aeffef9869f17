"""Sweeps: one scenario over a grid of parameters x designs x seeds, run in parallel, compared.

This module is the sweep up to its numbers: the sweep file and its checks, the runs (a local
process pool or a Dask cluster) and their statistics (:class:`SweepResult`). What a sweep
writes to disk, its tables and its HTML report, is in :mod:`strikechain.sim.sweep_report`, which
imports from here and never the other way: running and comparing needs no plotting library, and
the report changes without touching the runs.

A sweep file is TOML (``scenarios/sweeps/block-interval.toml`` is a worked example)::

    [sweep]
    scenario = "../calm.toml"     # the scenario, relative to this file (or absolute)
    seeds = 3                     # 1, 2, 3; or a list of distinct seeds: [7, 8, 9]
    duration_s = 60.0             # optional: every run's run.duration_s
    metrics = ["slippage_bps_mean", "finality_ms_p99"]   # optional: what is summarized
    baseline = "rollup"           # optional: the design the others are compared with

    [parameters]                  # the grid: the product of every parameter's values
    "agents.noise.latency_ns" = [50_000_000, 200_000_000]
    # a named parameter, setting several keys to each of its values:
    block_interval_ns = { keys = ["consensus.block_interval_ns", "consensus.timeout_commit_ns"],
                          values = [250_000_000, 1_000_000_000] }

    [designs.rollup]              # named variants of the scenario, each a table of overrides
    "consensus.kind" = "sequencer"
    [designs.l1]
    "consensus.kind" = "tendermint"

Fields, and what is refused (a :class:`SweepError` with a stable code, naming the field in the
sweep file as a path: ``$.sweep.seeds``, ``$.designs.l1["consensus.kind"]``):

- ``[sweep]`` ``scenario`` (required): it loads with the scenario's own checks
  (:func:`~strikechain.sim.scenario.load_scenario`; else ``SWEEP_SCENARIO``). ``seeds``
  (required): ``n`` in [1, :data:`MAX_SEEDS`] means 1..n; a list holds distinct integers >= 0.
  Each seed sets ``run.seed``; the designs are compared seed by seed (the same seed gives every
  design the same price path and the same agents' streams). ``duration_s``: sets
  ``run.duration_s`` of every run. ``metrics``: distinct names of metrics the runs report
  (:func:`~strikechain.sim.metrics.compute_metrics`; default :data:`DEFAULT_METRICS`): every
  run keeps every metric, these are the ones summarized, compared and plotted. Which metrics a
  run reports depends on the venue's design, so a name that no run reported is refused after
  the runs (:func:`check_metrics`). ``baseline``: a design's name (default: the first).
- ``[parameters]``: each entry is ``"dotted.key" = [values]`` (the parameter is named by its
  key) or ``name = { keys = [...], values = [...] }`` (every key set to each value). Values are
  scalars (integers, floats, strings or booleans), of one kind per parameter (integers and
  floats mix), distinct, finite. No table means one grid point, the scenario as written.
- ``[designs.NAME]``: a table of ``"dotted.key" = value`` (a value may be a table: it replaces
  the scenario's table there). No ``[designs]`` means one design, ``scenario``, without
  overrides. An empty table is the scenario as written. Designs are only overrides: nothing
  here knows what a design means.

Dotted keys address the scenario as loaded, every field spelled out (defaults included):
``section.field``, ``section.table.field`` at any depth, dictionary keys (``venue.underlyings.
BTC.fees.taker_fee_ppm``). In an array of tables (``agents``, ``market.underlyings``,
``market.instruments``, ``consensus.validators``...) a part picks one table: a number is its
index (from 0); otherwise the table whose ``name`` it is (an agent group without a name
answers to its ``kind``, an instrument entry to its ``underlying``), which must be exactly
one: ``agents.mm.latency_ns``, ``agents.noise.params.rate_per_s``, ``market.underlyings.BTC.
process.vol``. A table missing on the way is created (the scenario's defaults fill it). Keys
must be quoted in TOML (an unquoted ``a.b = 1`` is a nested table): a key without a dot is
refused, and so are ``run.seed`` (the seeds set it), a key set by both a design and a
parameter or by two parameters, or one inside another's table.

When the sweep loads, each design at each grid point is checked as a whole, as it will run,
by the scenario's own checks (the loader's: every field, type and value), and its instruments
and agents are made (the agents' kinds and parameters checked), whatever the venue's design.
A refusal is ``SWEEP_OVERRIDE_REFUSED`` with the scenario's code and field in the message,
naming the narrowest part of the sweep file refused on its own: a design's key, a design, a
parameter's value (with the design), or else the design at that grid point. Overrides are
checked together, never only alone: one may need another (a new underlying and its
reporters). What only a run's world checks (the block producer's own parameters, say) fails
that run, with its note.

Execution (:func:`run_sweep`): every (design, grid point, seed) is one :class:`SweepTask`, run
by :func:`run_task`, a pure function of the task (its scenario, seed included) returning the
run's metrics. Locally the tasks go to a process pool (``spawn``: each worker a fresh
interpreter, whatever threads the caller has); with ``address`` to the Dask scheduler there (a
cluster the user runs, with strikechain installed in the same version on its workers; replayed
price paths are read at the client's absolute paths). The results are ordered by task, never by
completion: local and Dask runs give identical tables. A failing run raises
:class:`SweepRunError` (its error's type, message and traceback) with a note naming the run's
design, grid point and seed, which reproduce it alone; the runs not started are cancelled.

Results (:class:`SweepResult`), pandas DataFrames:

- ``runs``: one row per run in task order (design, grid point, seed): ``design``, one column
  per parameter (named by the parameter), ``seed``, every metric.
- ``summary``: per design, grid point and metric of ``metrics``: ``n`` (runs with a finite
  value; a NaN is a metric with no observation, left out), ``mean``, ``std`` (sample, n - 1)
  and the 95% confidence interval of the mean, ``mean -+ t(0.975, n - 1) std / sqrt(n)``
  (Student's t, ``scipy.stats.t``; NaN below two values), ``ci_low`` and ``ci_high``.
- ``comparisons``: per grid point, metric and design other than the baseline: the difference
  ``design - baseline`` paired by seed (seeds where both are finite), its mean, std and 95%
  interval as above; when the interval excludes 0, ``better`` names the better design for a
  metric with a direction (:data:`DIRECTIONS`: lower slippage, spreads, latency, bad debt and
  index error; higher maker markouts, throughput and insurance fund) and ``verdict`` says so;
  otherwise ``no clear difference`` (or too few paired seeds, or a metric one of the two does
  not report: another venue design measures other things).

The sweep's folder (tables as Parquet and CSV, both TOML files, ``report.html``) is written by
:func:`~strikechain.sim.sweep_report.write_sweep_report`.
"""

from __future__ import annotations

import copy
import enum
import itertools
import math
import multiprocessing
import time
import tomllib
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]
from scipy import stats

from strikechain.engine.invariant import InvariantViolation, invariant
from strikechain.sim.run import instruments, make_agents, run_scenario
from strikechain.sim.scenario import (
    Scenario,
    ScenarioCode,
    ScenarioError,
    load_scenario,
    unknown_field,
)
from strikechain.sim.settings import BUNDLED

FloatArray = npt.NDArray[np.float64]
Scalar = bool | int | float | str
Metrics = dict[str, float | int]
Progress = Callable[[int, int], None]
"""Called with (runs done, runs in all) as each run completes."""

EXAMPLE: Final = BUNDLED / "sweeps" / "block-interval.toml"
"""The bundled example: 3 block intervals x 2 designs x 3 seeds (the lab benchmark's sweep)."""

MAX_SEEDS: Final = 1_000
MAX_PARAMETERS: Final = 8
MAX_VALUES: Final = 1_000
"""Values of one parameter."""
MAX_DESIGNS: Final = 64
MAX_RUNS: Final = 100_000
MAX_WORKERS: Final = 256
CONNECT_TIMEOUT_S: Final = 10
CONFIDENCE: Final = 0.95
invariant(MAX_SEEDS * MAX_DESIGNS <= MAX_RUNS, "a full seed list fits every design")

DEFAULT_METRICS: Final = (
    "slippage_bps_mean",
    "slippage_abs_bps_mean",
    "effective_spread_bps",
    "mm_markout_10s_bps",
    "inclusion_latency_ms_p50",
    "finality_ms_p99",
    "liquidation_delay_ms_p99",
    "bad_debt_usdc",
    "index_error_bps_mean",
    "throughput_tx_per_s",
)
_LOWER: Final = (
    "slippage_bps_mean",
    "slippage_bps_p50",
    "slippage_bps_p99",
    "slippage_abs_bps_mean",
    "effective_spread_bps",
    "ack_latency_ms_p50",
    "ack_latency_ms_p99",
    "inclusion_latency_ms_p50",
    "inclusion_latency_ms_p99",
    "finality_ms_p50",
    "finality_ms_p99",
    "liquidation_delay_ms_p50",
    "liquidation_delay_ms_p99",
    "bad_debt_usdc",
    "insurance_paid_usdc",
    "adl_socialized_usdc",
    "index_error_bps_mean",
    "index_error_bps_max",
    "runtime_rejections_count",
    "engine_rejections_count",
    "mm_hedging_cost_usdc",
)
_HIGHER: Final = (
    "mm_markout_1s_bps",
    "mm_markout_10s_bps",
    "mm_markout_60s_bps",
    "mm_markout_60s_usdc",
    "mm_spread_captured_usdc",
    "mm_adverse_selection_usdc",
    "throughput_tx_per_s",
    "insurance_fund_min_usdc",
    "insurance_fund_end_usdc",
)
DIRECTIONS: Final[Mapping[str, str]] = {
    **dict.fromkeys(_LOWER, "lower"),
    **dict.fromkeys(_HIGHER, "higher"),
}
"""Which way a metric is better, for the people the venue serves: takers pay less, makers lose
less to informed flow, liquidations are prompt and covered, the index is true, transactions are
fast. Counts, volumes, block intervals and state sizes have none."""

_RESERVED: Final = frozenset(
    {
        "design",
        "seed",
        "metric",
        "n",
        "mean",
        "std",
        "ci_low",
        "ci_high",
        "baseline",
        "difference_mean",
        "difference_std",
        "better",
        "verdict",
    }
)
"""Column names of the result tables: no parameter may take one."""
_NO_DESIGNS: Final = "scenario"
_SCENARIO_TYPE: Final = msgspec.inspect.type_info(Scenario)


# -- errors --------------------------------------------------------------------------------------


class SweepCode(enum.StrEnum):
    UNREADABLE = "SWEEP_UNREADABLE"
    NOT_TOML = "SWEEP_NOT_TOML"
    UNKNOWN_FIELD = "SWEEP_UNKNOWN_FIELD"
    INVALID = "SWEEP_INVALID"
    SCENARIO = "SWEEP_SCENARIO"
    """The scenario the sweep names does not load."""
    OVERRIDE = "SWEEP_OVERRIDE_REFUSED"
    """The scenario refuses an override (its own code and field are in the message)."""
    CLUSTER = "SWEEP_CLUSTER_UNREACHABLE"


class SweepError(ValueError):
    """A sweep that cannot run, and which field of the sweep file is why."""

    def __init__(self, code: SweepCode, field: str, detail: str, source: str = "") -> None:
        message = f"{source}: {field}: {detail}" if source else f"{field}: {detail}"
        super().__init__(f"{code}: {message}")
        self.code = code
        self.field = field
        self.message = message


class SweepRunError(RuntimeError):
    """A run of a sweep failed, in whichever process ran it: the error's type and message and
    the traceback where it was raised, as plain text (every process can carry it back; not
    every error type can be rebuilt from its arguments)."""

    def __init__(self, index: int, error: str, trace: str) -> None:
        super().__init__(index, error, trace)
        self.index = index
        self.error = error
        self.trace = trace

    def __str__(self) -> str:
        return f"sweep run {self.index} failed: {self.error}\n{self.trace}"


class _PathError(ValueError):
    """A dotted key that addresses nothing in the scenario."""


# -- the sweep file ------------------------------------------------------------------------------


class SweepSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[sweep]`` (see the module)."""

    scenario: str
    seeds: int | list[int]
    duration_s: float | None = None
    metrics: list[str] | None = None
    baseline: str | None = None


class SweepFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sweep: SweepSection
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    designs: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)


_FILE_TYPE: Final = msgspec.inspect.type_info(SweepFile)


@dataclass(frozen=True)
class Parameter:
    """One axis of the grid: ``keys`` all set to each of ``values``."""

    name: str
    keys: tuple[str, ...]
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Design:
    """A named variant of the scenario: dotted keys and their values."""

    name: str
    overrides: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Cell:
    """One design at one grid point, its scenario checked (the seed is set per run)."""

    design: str
    point: tuple[Scalar, ...]
    scenario: Scenario


@dataclass(frozen=True)
class SweepTask:
    """One run of a sweep: its place in the grid and the scenario it runs (seed included)."""

    index: int
    design: str
    point: tuple[Scalar, ...]
    seed: int
    scenario: Scenario


@dataclass(frozen=True)
class SweepSpec:
    """A loaded, checked sweep (see the module): everything it runs is in ``cells``."""

    source: str
    text: str
    scenario_path: Path
    scenario_text: str
    seeds: tuple[int, ...]
    duration_s: float | None
    metrics: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    designs: tuple[Design, ...]
    baseline: str
    cells: tuple[Cell, ...]
    """Design-major, then grid points in the order of :meth:`points`."""

    @property
    def name(self) -> str:
        return Path(self.source).stem

    def points(self) -> list[tuple[Scalar, ...]]:
        """The grid: the product of the parameters' values, the last varying fastest."""
        return list(itertools.product(*(parameter.values for parameter in self.parameters)))

    def tasks(self) -> list[SweepTask]:
        """Every run, design-major, then grid point, then seed."""
        tasks: list[SweepTask] = []
        for cell in self.cells:
            for seed in self.seeds:
                run = msgspec.structs.replace(cell.scenario.run, seed=seed)
                scenario = msgspec.structs.replace(cell.scenario, run=run)
                tasks.append(SweepTask(len(tasks), cell.design, cell.point, seed, scenario))
        return tasks


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check the sweep file at ``path`` (its scenario is found from its folder)."""
    source = Path(path)
    try:
        text = source.read_text()
    except OSError as error:
        raise SweepError(SweepCode.UNREADABLE, "$", str(error.strerror), str(source)) from None
    return parse_sweep(text, folder=source.resolve().parent, source=str(source))


def parse_sweep(text: str, *, folder: Path, source: str = "<sweep>") -> SweepSpec:
    """Check a sweep file's ``text``; its scenario's relative path is taken from ``folder``."""
    file = _sweep_file(text, source)
    section = file.sweep
    scenario_path = folder / section.scenario
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as error:
        raise SweepError(SweepCode.SCENARIO, "$.sweep.scenario", str(error), source) from None
    seeds = _seeds(section.seeds, source)
    parameters = tuple(_parameter(name, value, source) for name, value in file.parameters.items())
    designs = tuple(_design(name, table, source) for name, table in file.designs.items())
    designs = designs or (Design(_NO_DESIGNS, ()),)
    _check_limits(seeds, parameters, designs, source)
    _check_keys(parameters, designs, source)
    _check_names(parameters, source)
    metrics = _metrics(section.metrics, source)
    baseline = _baseline(section.baseline, designs, source)
    base = builtins_of(scenario)
    if section.duration_s is not None:
        base["run"]["duration_s"] = section.duration_s
        refused = _problem(base, ())
        if refused is not None:
            raise SweepError(SweepCode.INVALID, "$.sweep.duration_s", refused, source)
    return SweepSpec(
        source=source,
        text=text,
        scenario_path=scenario_path,
        scenario_text=scenario_path.read_text(),
        seeds=seeds,
        duration_s=section.duration_s,
        metrics=metrics,
        parameters=parameters,
        designs=designs,
        baseline=baseline,
        cells=_cells(base, parameters, designs, source),
    )


def _sweep_file(text: str, source: str) -> SweepFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SweepError(SweepCode.NOT_TOML, "$", str(error), source) from None
    unknown = unknown_field(data, _FILE_TYPE, "$")
    if unknown is not None:
        raise SweepError(SweepCode.UNKNOWN_FIELD, unknown, "unknown field", source)
    try:
        return msgspec.convert(data, SweepFile)
    except msgspec.ValidationError as error:
        message = str(error)
        where = message.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in message else "$"
        raise SweepError(
            SweepCode.INVALID, where, message.split(" - at `", maxsplit=1)[0], source
        ) from None


def _seeds(seeds: int | list[int], source: str) -> tuple[int, ...]:
    if isinstance(seeds, int):
        if not 1 <= seeds <= MAX_SEEDS:
            detail = f"a count of seeds must be in [1, {MAX_SEEDS}], got {seeds}"
            raise SweepError(SweepCode.INVALID, "$.sweep.seeds", detail, source)
        return tuple(range(1, seeds + 1))
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        detail = f"a list of seeds must be distinct integers >= 0, got {seeds}"
        raise SweepError(SweepCode.INVALID, "$.sweep.seeds", detail, source)
    return tuple(seeds)


def is_scalar(value: object) -> bool:
    """A parameter's value may be ``value``: a finite number, a string or a boolean."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, bool | int | str)


def scalar_kind(value: Scalar) -> str:
    """``number``, ``string`` or ``boolean``: one kind per parameter (integers and floats mix)."""
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else "string"


def _parameter(name: str, value: Any, source: str) -> Parameter:
    field = f"$.parameters[{name!r}]"
    if isinstance(value, dict) and set(value) == {"keys", "values"}:
        keys, values = value["keys"], value["values"]
        if not (isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys)):
            detail = f"keys must be a list of dotted keys, got {keys!r}"
            raise SweepError(SweepCode.INVALID, f"{field}.keys", detail, source)
        field = f"{field}.values"
    elif isinstance(value, list):
        keys, values = [name], value
    else:
        detail = (
            'a parameter is "dotted.key" = [values] or name = { keys = [...], values = [...] } '
            f"(quote a dotted key: unquoted, a.b = ... is a nested table), got {value!r}"
        )
        raise SweepError(SweepCode.INVALID, field, detail, source)
    if not values or len(values) > MAX_VALUES:
        detail = f"must list 1 to {MAX_VALUES} values, got {len(values)}"
        raise SweepError(SweepCode.INVALID, field, detail, source)
    for number, item in enumerate(values):
        if not is_scalar(item) or scalar_kind(item) != scalar_kind(values[0]):
            detail = f"values are finite numbers, strings or booleans of one kind, got {item!r}"
            raise SweepError(SweepCode.INVALID, f"{field}[{number}]", detail, source)
    if len({(scalar_kind(v), v) for v in values}) != len(values):
        raise SweepError(SweepCode.INVALID, field, f"values repeat: {values}", source)
    return Parameter(name, tuple(keys), tuple(values))


def _design(name: str, table: dict[str, Any], source: str) -> Design:
    if not name:
        raise SweepError(SweepCode.INVALID, "$.designs", "a design needs a name", source)
    return Design(name, tuple(table.items()))


def _check_limits(
    seeds: tuple[int, ...],
    parameters: tuple[Parameter, ...],
    designs: tuple[Design, ...],
    source: str,
) -> None:
    if len(parameters) > MAX_PARAMETERS:
        detail = f"at most {MAX_PARAMETERS} parameters, got {len(parameters)}"
        raise SweepError(SweepCode.INVALID, "$.parameters", detail, source)
    if len(designs) > MAX_DESIGNS:
        detail = f"at most {MAX_DESIGNS} designs, got {len(designs)}"
        raise SweepError(SweepCode.INVALID, "$.designs", detail, source)
    runs = len(seeds) * len(designs) * math.prod(len(p.values) for p in parameters)
    if runs > MAX_RUNS:
        detail = f"designs x grid points x seeds is {runs:,} runs, more than {MAX_RUNS:,}"
        raise SweepError(SweepCode.INVALID, "$", detail, source)


def _overlap(first: str, second: str) -> bool:
    return first == second or first.startswith(second + ".") or second.startswith(first + ".")


def _check_keys(
    parameters: tuple[Parameter, ...], designs: tuple[Design, ...], source: str
) -> None:
    """Every key is dotted and not ``run.seed``; no two parameters, nor a design and a
    parameter, set the same key (or one inside the other's table)."""
    owned: list[tuple[str, str]] = []
    for parameter in parameters:
        field = f"$.parameters[{parameter.name!r}]"
        for key in parameter.keys:
            _check_key(key, field, source)
            for other, where in owned:
                if _overlap(key, other):
                    detail = f"{key!r} is also set by {where}"
                    raise SweepError(SweepCode.INVALID, field, detail, source)
        owned.extend((key, field) for key in parameter.keys)
    for design in designs:
        for key, _ in design.overrides:
            field = f"$.designs.{design.name}[{key!r}]"
            _check_key(key, field, source)
            for other, where in owned:
                if _overlap(key, other):
                    detail = f"{key!r} is also set by {where}: a parameter varies it"
                    raise SweepError(SweepCode.INVALID, field, detail, source)


def _check_key(key: str, field: str, source: str) -> None:
    parts = key.split(".")
    if len(parts) < 2 or not all(parts):
        detail = (
            f"{key!r} is not a dotted key like 'section.field' (quote it in TOML: an unquoted "
            "a.b = ... is a nested table)"
        )
        raise SweepError(SweepCode.INVALID, field, detail, source)
    if key == "run.seed":
        raise SweepError(SweepCode.INVALID, field, "[sweep] seeds sets run.seed", source)


# -- overrides -----------------------------------------------------------------------------------


def set_key(data: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted ``key`` in a scenario's builtins ``data`` (rules in the module); raises a
    ``ValueError`` naming the part that addresses nothing."""
    parts = key.split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the scenario"
        last = depth == len(parts) - 1
        if isinstance(node, list):
            index = _element(node, part, where)
            if last:
                node[index] = copy.deepcopy(value)
            node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = copy.deepcopy(value)
            elif node.get(part) is None:
                node[part] = {}
            node = node[part]
        else:
            raise _PathError(f"`{where}` is {node!r}, not a table")


def builtins_of(scenario: Scenario) -> dict[str, Any]:
    """``scenario`` as builtins that :func:`set_key` can change: every field, tables as dicts
    and arrays as lists (:func:`scenario_of` gives the scenario back)."""

    def mutable(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: mutable(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [mutable(item) for item in value]
        return value

    data: dict[str, Any] = mutable(msgspec.to_builtins(scenario))
    return data


def _label(item: object) -> object:
    if not isinstance(item, dict):
        return None
    return item.get("name") or item.get("underlying") or item.get("kind")


def _element(items: list[Any], part: str, where: str) -> int:
    """The index of the one table of ``items`` that ``part`` names (see the module)."""
    if part.isdigit() and int(part) < len(items):
        return int(part)
    matches = [number for number, item in enumerate(items) if _label(item) == part]
    if len(matches) == 1:
        return matches[0]
    labels = [_label(item) for item in items]
    found = "several tables" if matches else "no table"
    raise _PathError(
        f"`{where}` has {found} named {part!r} (names: {labels}; or an index from 0 to "
        f"{len(items) - 1})"
    )


def scenario_of(data: dict[str, Any]) -> Scenario:
    """A scenario's builtins as a :class:`Scenario`, by the scenario loader's own checks."""
    unknown = unknown_field(data, _SCENARIO_TYPE, "$")
    if unknown is not None:
        raise ScenarioError(ScenarioCode.UNKNOWN_FIELD, f"unknown field `{unknown}`")
    try:
        return msgspec.convert(data, Scenario)
    except InvariantViolation as violation:  # the engine's tables check themselves this way
        raise ScenarioError(ScenarioCode.INVALID, str(violation)) from None
    except msgspec.ValidationError as error:
        message = str(error)
        code = (
            ScenarioCode.UNKNOWN_FIELD
            if "unknown field" in message.lower()
            else ScenarioCode.INVALID
        )
        raise ScenarioError(code, message) from None


Overrides = Sequence[tuple[str, Any]]


def _build(base: dict[str, Any], overrides: Overrides) -> Scenario:
    """``base`` with ``overrides`` set, as a scenario, its instruments and agents made (their
    kinds and parameters checked, as a run makes them, whatever the venue's design). Raises
    ``ValueError`` saying what is refused."""
    data = copy.deepcopy(base)
    for key, value in overrides:
        try:
            set_key(data, key, value)
        except _PathError as error:
            raise ValueError(f"{key!r}: {error}") from None
    try:
        scenario = scenario_of(data)
        instruments(scenario)
        make_agents(scenario)
    except ScenarioError as error:
        raise ValueError(str(error)) from None
    return scenario


def _problem(base: dict[str, Any], overrides: Overrides) -> str | None:
    try:
        _build(base, overrides)
    except ValueError as error:
        return str(error)
    return None


def _cells(
    base: dict[str, Any],
    parameters: tuple[Parameter, ...],
    designs: tuple[Design, ...],
    source: str,
) -> tuple[Cell, ...]:
    """Every design at every grid point, checked as a whole (instruments and agents made
    once): design-major, then grid point. Overrides are checked together, as they run (one
    may need another: a new underlying and its reporters); a refusal names the narrowest part
    of the sweep file that is refused on its own (:func:`_blame`)."""
    cells: list[Cell] = []
    points = list(itertools.product(*(parameter.values for parameter in parameters)))
    for design in designs:
        for point in points:
            overrides = list(design.overrides)
            for parameter, value in zip(parameters, point, strict=True):
                overrides.extend((key, value) for key in parameter.keys)
            try:
                scenario = _build(base, overrides)
            except ValueError as error:
                raise _blame(base, design, parameters, point, str(error), source) from None
            cells.append(Cell(design.name, point, scenario))
    return tuple(cells)


def _blame(
    base: dict[str, Any],
    design: Design,
    parameters: tuple[Parameter, ...],
    point: tuple[Scalar, ...],
    problem: str,
    source: str,
) -> SweepError:
    """The refusal of a cell, naming what is refused on its own: the design (one of its keys
    if that key alone is), else a parameter's value with the design, else the cell."""
    field = f"$.designs.{design.name}"
    own = _problem(base, design.overrides)
    if own is not None:
        for key, value in design.overrides:
            alone = _problem(base, [(key, value)])
            if alone is not None:
                return SweepError(SweepCode.OVERRIDE, f"{field}[{key!r}]", alone, source)
        return SweepError(SweepCode.OVERRIDE, field, own, source)
    for parameter, value in zip(parameters, point, strict=True):
        overrides = [*design.overrides, *((key, value) for key in parameter.keys)]
        refused = _problem(base, overrides)
        if refused is not None:
            number = parameter.values.index(value)
            where = f"$.parameters[{parameter.name!r}][{number}]"
            return SweepError(
                SweepCode.OVERRIDE, where, f"{refused} (design {design.name})", source
            )
    where = f"{field} at {describe_point(parameters, point)}"
    return SweepError(SweepCode.OVERRIDE, where, problem, source)


def value_text(value: Scalar) -> str:
    """A parameter's value as TOML writes it (``1_000_000_000``, ``0.5``, ``"batch"``)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:_}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if not isinstance(value, str) else f'"{value}"'


def describe_point(parameters: Sequence[Parameter], point: Sequence[Scalar]) -> str:
    """``name = value, ...`` (``the scenario's values`` for a grid without parameters)."""
    pairs = zip(parameters, point, strict=True)
    text = ", ".join(f"{p.name} = {value_text(value)}" for p, value in pairs)
    return text or "the scenario's values"


def _metrics(chosen: list[str] | None, source: str) -> tuple[str, ...]:
    """The metrics to summarize: their names are checked against what the runs report
    (:func:`check_metrics`), which depends on the venue's design."""
    metrics = tuple(DEFAULT_METRICS if chosen is None else chosen)
    if not metrics or len(set(metrics)) != len(metrics) or not all(metrics):
        detail = f"must name distinct metrics, got {list(metrics)}"
        raise SweepError(SweepCode.INVALID, "$.sweep.metrics", detail, source)
    return metrics


def _check_names(parameters: tuple[Parameter, ...], source: str) -> None:
    for parameter in parameters:
        if parameter.name in _RESERVED:
            detail = f"{parameter.name!r} names a column of the results; rename the parameter"
            raise SweepError(SweepCode.INVALID, f"$.parameters[{parameter.name!r}]", detail, source)


def _baseline(chosen: str | None, designs: tuple[Design, ...], source: str) -> str:
    names = [design.name for design in designs]
    if chosen is None:
        return names[0]
    if chosen not in names:
        detail = f"{chosen!r} is not a design; designs: {names}"
        raise SweepError(SweepCode.INVALID, "$.sweep.baseline", detail, source)
    return chosen


# -- running -------------------------------------------------------------------------------------


def run_task(task: SweepTask) -> Metrics:
    """One run of a sweep, in whichever process gets it: a pure function of ``task``. A run
    that fails raises :class:`SweepRunError` with its error's text."""
    try:
        return run_scenario(task.scenario).metrics
    except Exception as error:
        trace = traceback.format_exc()
        raise SweepRunError(task.index, f"{type(error).__name__}: {error}", trace) from None


def describe_task(spec: SweepSpec, task: SweepTask) -> str:
    point = describe_point(spec.parameters, task.point)
    return f"sweep run {task.index}: design {task.design}, {point}, seed {task.seed}"


@dataclass(frozen=True)
class SweepResult:
    """A sweep's runs and what they say (see the module)."""

    spec: SweepSpec
    runs: Any
    """``pandas.DataFrame``: one row per run."""
    summary: Any
    """``pandas.DataFrame``: per design, grid point and metric."""
    comparisons: Any
    """``pandas.DataFrame``: per grid point, metric and design against the baseline."""
    wall_s: float


def run_sweep(
    spec: SweepSpec,
    *,
    workers: int = 2,
    address: str | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Run every task of ``spec``: in ``workers`` local processes, or on the Dask scheduler at
    ``address`` (the cluster's workers decide how many at once). Same results either way."""
    if not 1 <= workers <= MAX_WORKERS:
        raise SweepError(SweepCode.INVALID, "workers", f"must be in [1, {MAX_WORKERS}]")
    tasks = spec.tasks()
    started = time.perf_counter()
    if address is None:
        results = _run_local(spec, tasks, workers, progress)
    else:
        results = _run_dask(spec, tasks, address, progress)
    wall_s = time.perf_counter() - started
    check_metrics(spec, results)
    names = [parameter.name for parameter in spec.parameters]
    runs = runs_frame(tasks, results, names)
    return SweepResult(
        spec=spec,
        runs=runs,
        summary=summarize(runs, names, spec.metrics),
        comparisons=compare(runs, names, spec.metrics, spec.baseline),
        wall_s=wall_s,
    )


def check_metrics(spec: SweepSpec, results: Sequence[Metrics]) -> None:
    """Every metric of ``spec.metrics`` is reported by some run (which metrics a run reports
    depends on the venue's design), and none is named like a column of the runs table."""
    reported = dict.fromkeys(name for metrics in results for name in metrics)
    for number, name in enumerate(spec.metrics):
        if name not in reported:
            detail = f"no run reported {name!r}; they reported: {', '.join(reported)}"
            raise SweepError(SweepCode.INVALID, f"$.sweep.metrics[{number}]", detail, spec.source)
    for parameter in spec.parameters:
        if parameter.name in reported:
            detail = f"{parameter.name!r} is also a metric's name; rename the parameter"
            field = f"$.parameters[{parameter.name!r}]"
            raise SweepError(SweepCode.INVALID, field, detail, spec.source)


def _outcome(spec: SweepSpec, task: SweepTask, future: Any) -> Metrics:
    """A finished run's metrics; a run that failed raises its error, noting which run it was."""
    try:
        metrics: Metrics = future.result()
    except Exception as error:
        error.add_note(describe_task(spec, task))
        raise
    return metrics


def _run_local(
    spec: SweepSpec, tasks: list[SweepTask], workers: int, progress: Progress | None
) -> list[Metrics]:
    results: list[Metrics] = [{} for _ in tasks]
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context)
    try:
        futures: dict[Future[Metrics], SweepTask] = {
            pool.submit(run_task, task): task for task in tasks
        }
        for done, future in enumerate(as_completed(futures), start=1):
            task = futures[future]
            results[task.index] = _outcome(spec, task, future)
            if progress is not None:
                progress(done, len(tasks))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def _run_dask(
    spec: SweepSpec, tasks: list[SweepTask], address: str, progress: Progress | None
) -> list[Metrics]:
    from distributed import Client
    from distributed import as_completed as dask_completed

    try:
        client = Client(  # type: ignore[no-untyped-call]
            address, timeout=CONNECT_TIMEOUT_S, set_as_default=False
        )
    except (OSError, ValueError) as error:
        detail = f"no Dask scheduler answers at {address!r}: {error}"
        raise SweepError(SweepCode.CLUSTER, "address", detail) from None
    results: list[Metrics] = [{} for _ in tasks]
    with client:
        futures = client.map(run_task, tasks, pure=False)
        by_key = {future.key: task for future, task in zip(futures, tasks, strict=True)}
        try:
            completed = dask_completed(futures, loop=client.loop)  # type: ignore[no-untyped-call]
            for done, future in enumerate(completed, start=1):
                task = by_key[future.key]
                results[task.index] = _outcome(spec, task, future)
                if progress is not None:
                    progress(done, len(tasks))
        finally:
            client.cancel(futures)  # type: ignore[no-untyped-call]
    return results


# -- statistics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """The mean of the finite values, their sample std and the mean's confidence interval."""

    n: int
    mean: float
    std: float
    low: float
    high: float


def mean_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> Interval:
    """Student's t interval of the mean of ``values``' finite entries (NaN parts when there are
    too few: no mean without a value, no std or interval below two)."""
    array = np.asarray(list(values), dtype=np.float64)
    finite: FloatArray = array[np.isfinite(array)]
    n = int(finite.size)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(finite.mean())
    if n < 2:
        return Interval(n, mean, math.nan, math.nan, math.nan)
    std = float(finite.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Interval(n, mean, std, mean - half, mean + half)


def runs_frame(
    tasks: Sequence[SweepTask], results: Sequence[Metrics], parameters: Sequence[str]
) -> Any:
    """One row per run, in task order: design, each parameter, seed, every metric."""
    rows: list[dict[str, Any]] = []
    for task, metrics in zip(tasks, results, strict=True):
        row: dict[str, Any] = {"design": task.design}
        row.update(zip(parameters, task.point, strict=True))
        row["seed"] = task.seed
        row.update(metrics)
        rows.append(row)
    return pd.DataFrame(rows)


def _groups(frame: Any, keys: Sequence[str]) -> Iterable[tuple[tuple[Any, ...], Any]]:
    """``frame``'s rows by ``keys`` in order of first appearance (one group without keys)."""
    if not keys:
        return [((), frame)]
    groups: Iterable[tuple[tuple[Any, ...], Any]] = frame.groupby(list(keys), sort=False)
    return groups


def summarize(runs: Any, parameters: Sequence[str], metrics: Sequence[str]) -> Any:
    """Per design, grid point and metric: n, mean, std and the 95% interval of the mean."""
    keys = ["design", *parameters]
    rows = []
    for key, group in _groups(runs, keys):
        for metric in metrics:
            interval = mean_interval(group[metric].to_numpy(dtype=np.float64))
            rows.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "metric": metric,
                    "n": interval.n,
                    "mean": interval.mean,
                    "std": interval.std,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                }
            )
    columns = [*keys, "metric", "n", "mean", "std", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns)


def compare(runs: Any, parameters: Sequence[str], metrics: Sequence[str], baseline: str) -> Any:
    """Per grid point, metric and design other than ``baseline``: ``design - baseline`` paired
    by seed, its mean and 95% interval, and which design is better when it excludes 0."""
    designs = list(dict.fromkeys(runs["design"]))
    rows = []
    for point, group in _groups(runs, parameters):
        by_design = {
            design: rows_of.set_index("seed") for (design,), rows_of in _groups(group, ["design"])
        }
        base = by_design[baseline]
        for design in (d for d in designs if d != baseline):
            other = by_design[design]
            seeds = [seed for seed in base.index if seed in other.index]
            for metric in metrics:
                difference = other.loc[seeds, metric].to_numpy(dtype=np.float64) - base.loc[
                    seeds, metric
                ].to_numpy(dtype=np.float64)
                interval = mean_interval(difference)
                better, verdict = _verdict(metric, baseline, design, interval)
                rows.append(
                    {
                        **dict(zip(parameters, point, strict=True)),
                        "metric": metric,
                        "baseline": baseline,
                        "design": design,
                        "n": interval.n,
                        "difference_mean": interval.mean,
                        "difference_std": interval.std,
                        "ci_low": interval.low,
                        "ci_high": interval.high,
                        "better": better,
                        "verdict": verdict,
                    }
                )
    columns = [*parameters, "metric", "baseline", "design", "n", "difference_mean"]
    columns += ["difference_std", "ci_low", "ci_high", "better", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def _verdict(metric: str, baseline: str, design: str, interval: Interval) -> tuple[str, str]:
    """(the better design or "", the verdict in words) for ``design - baseline``."""
    if interval.n == 0:
        return "", "not measured in both"
    if interval.n < 2:
        return "", "too few paired seeds"
    if not (interval.low > 0 or interval.high < 0):
        return "", "no clear difference"
    higher, lower = (design, baseline) if interval.low > 0 else (baseline, design)
    direction = DIRECTIONS.get(metric)
    if direction == "lower":
        return lower, f"{lower} better (lower)"
    if direction == "higher":
        return higher, f"{higher} better (higher)"
    return "", f"{higher} higher"
