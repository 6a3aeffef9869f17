"""The lab's reference prices: one price process per underlying, advancing in virtual time.

A scenario names, per underlying, a process (:class:`GbmParams`, :class:`MertonParams`,
:class:`HestonParams`, piecewise :class:`RegimeParams`, or a replayed file,
:class:`ReplayParams`) and optionally correlation groups (:class:`CorrelationGroup`). The
parameter types are plain frozen msgspec Structs of floats, ints, strings and tuples, so a TOML
scenario decodes straight into :class:`PricesSpec` (``msgspec.convert(table, PricesSpec)``; the
process union is tagged by ``kind``). Each validates itself when made; a bad value raises
:class:`PriceSpecError` naming the field (inside ``msgspec.convert`` it surfaces as a
``msgspec.ValidationError`` carrying the same message).

:class:`PricePaths` turns a spec into prices at any virtual time. These are the world's truth,
floats in USDC per unit of the underlying, not venue state; :func:`price_to_minor` is the named
boundary where one becomes USDC minor units.

Model conventions (``t`` in years of :data:`~strikechain.engine.oracle.NANOS_PER_YEAR`, 365
days; ``drift`` is the expected simple return ``mu``, so ``E[S_t] = S_0 e^{mu t}`` for every
process)
- GBM: ``dS/S = mu dt + vol dW``, stepped exactly in log space.
- Merton: the same diffusion plus compound-Poisson jumps, ``jump_intensity_per_year`` of them a
  year, each multiplying the price by ``e^J``, ``J ~ N(jump_mean, jump_std^2)``; the drift is
  compensated by ``lambda (E[e^J] - 1)`` so the expected return stays ``mu``. A step of ``n``
  jumps adds ``n jump_mean + jump_std sqrt(n) Z`` (one normal per step that has jumps).
- Heston: ``dS/S = mu dt + sqrt(v) dW1``, ``dv = kappa (theta - v) dt + xi sqrt(v) dW2``,
  ``corr(dW1, dW2) = rho``. Full-truncation Euler (Lord, Koekkoek and van Dijk 2010): the drift
  and diffusion use ``v+ = max(v, 0)``, ``v`` itself may dip below zero and is pulled back; no
  Feller condition is needed. The log price steps as a GBM with variance ``v+`` over the step.
- Regimes: segments of the above, each from its ``start_offset_ns`` (after the path's start) to
  the next; a switch takes effect at the first grid step starting at or after it. The price is
  continuous across a switch; a Heston segment starts its variance at its own ``v0``.
- Replay: a CSV file of ``time_ns,price`` rows (integer nanoseconds since the Unix epoch,
  strictly increasing; a ``time_ns,price`` header, blank lines and ``#`` comments are allowed),
  shifted by ``shift_ns``; between rows ``"linear"`` (in price) or ``"previous"`` (the last row
  at or before the time, no look-ahead); outside the rows ``"error"`` (raise
  ``OUT_OF_RANGE``) or ``"hold"`` (the first or last price).

Grid and interpolation: generated processes live on a grid of ``step_ns`` (default 100 ms) from
the path's start; between grid points the price is linear in price. That differs from log-linear
interpolation by at most ``r^2 / 8`` relatively for a step's log return ``r`` (about 4e-10 for a
typical 100 ms step at 100% vol), and needs only correctly rounded operations. A jump thus
spreads over one step.

Determinism and streams: every draw comes from ``rng(f"{prefix}/{underlying}/{purpose}")``
(``purpose``: ``brownian``, ``variance``, ``jumps``, ``jump_sizes``), so adding an underlying
never changes another's path. Draws are consumed step by step in time order, so the path does
not depend on ``chunk_steps`` either. Correlation mixes the members' own Brownian draws through
the lower-triangular Cholesky factor ``L`` of the group's matrix, in member order: member ``i``'s
shock is ``sum_{j <= i} L[i][j] Z_j``. So the first member's path is the one it has alone, and
appending a member (with the existing block of the matrix unchanged) leaves every earlier
member's path unchanged; inserting one or changing the matrix changes the members after it, as
it must. A Heston member's variance shock is ``rho`` times its (correlated) price shock plus
``sqrt(1 - rho^2)`` times its own ``variance`` draw. Exponentials go through the pricing
library's deterministic :mod:`~strikechain.pricing.detmath`; everything else is ``+ - * /
sqrt`` in a fixed order, so a path is bit-identical wherever NumPy's generator gives the same
draws.

Limits: :data:`MAX_UNDERLYINGS`, :data:`MAX_GROUP_SIZE`, :data:`MAX_REGIME_SEGMENTS`,
:data:`MAX_REPLAY_ROWS`, :data:`MAX_CHUNK_STEPS`, and parameter ranges (vol at most
:data:`MAX_VOL`, ...). Memory is bounded: only the last ``retain_chunks`` chunks of
``chunk_steps`` steps are kept; asking for older history raises ``HISTORY_DISCARDED``.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from strikechain.engine.invariant import InvariantViolation, invariant
from strikechain.engine.oracle import NANOS_PER_YEAR
from strikechain.engine.units import NANOS_PER_DAY, NANOS_PER_MILLISECOND, Rounding, quote_to_minor
from strikechain.pricing import detmath

FloatArray = npt.NDArray[np.float64]
RngFactory = Callable[[str], np.random.Generator]
"""Gives the random stream of a named component (``Kernel.rng``)."""

MAX_UNDERLYINGS: Final = 256
MAX_GROUP_SIZE: Final = 64
MAX_REGIME_SEGMENTS: Final = 1_000
MAX_REPLAY_ROWS: Final = 5_000_000
MAX_CHUNK_STEPS: Final = 1_000_000
MAX_STEP_NS: Final = NANOS_PER_DAY
MAX_VOL: Final = 10.0
"""1000% a year: above any listed asset; the bound keeps ``exp`` of a step far from overflow."""
MAX_DRIFT: Final = 100_000.0
"""Annualized: a scripted crash of -40% in an hour is a drift of about -4,500 a year; a step of
the grid (100 ms) then moves the log price by about 1e-5, far from overflow."""
MAX_JUMP_INTENSITY_PER_YEAR: Final = 1e6
MAX_JUMP_SIZE: Final = 5.0
"""Bound on ``|jump_mean|`` and ``jump_std`` (log units)."""
MAX_HESTON_RATE: Final = 1e4
"""Bound on ``kappa``, ``xi``, ``theta`` and ``v0``."""
DEFAULT_STEP_NS: Final = 100 * NANOS_PER_MILLISECOND
DEFAULT_CHUNK_STEPS: Final = 8_192
_NAME: Final = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
_REPLAY_HEADER: Final = "time_ns,price"
_INT64_MAX: Final = 2**63 - 1


class PriceSpecCode(enum.StrEnum):
    """Stable codes of :class:`PriceSpecError`."""

    INVALID_PARAMETER = "INVALID_PARAMETER"
    REPLAY_FILE_UNREADABLE = "REPLAY_FILE_UNREADABLE"
    REPLAY_BAD_ROW = "REPLAY_BAD_ROW"
    REPLAY_TIMES_NOT_INCREASING = "REPLAY_TIMES_NOT_INCREASING"
    REPLAY_ROW_COUNT = "REPLAY_ROW_COUNT"
    UNKNOWN_UNDERLYING = "UNKNOWN_UNDERLYING"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    HISTORY_DISCARDED = "HISTORY_DISCARDED"


class PriceSpecError(ValueError):
    """Bad scenario input (a parameter, a replay file, a time outside the data): expected, typed
    by :class:`PriceSpecCode`, with a message that says what to fix. A ``ValueError`` so that
    ``msgspec.convert`` reports it as a validation error of the scenario."""

    def __init__(self, code: PriceSpecCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _invalid(field: str, requirement: str, value: object) -> PriceSpecError:
    return PriceSpecError(PriceSpecCode.INVALID_PARAMETER, f"{field} {requirement}, got {value!r}")


def _check_range(field: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise _invalid(field, f"must be finite, between {low} and {high}", value)


# -- parameters ------------------------------------------------------------------------------


class GbmParams(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="gbm"):
    """Geometric Brownian motion; rates annualized."""

    vol: float
    drift: float = 0.0

    def __post_init__(self) -> None:
        _check_range("GbmParams.vol", self.vol, 0.0, MAX_VOL)
        _check_range("GbmParams.drift", self.drift, -MAX_DRIFT, MAX_DRIFT)


class MertonParams(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="merton"):
    """GBM plus lognormal jumps; ``jump_mean`` and ``jump_std`` are of the log of a jump."""

    vol: float
    jump_intensity_per_year: float
    jump_mean: float
    jump_std: float
    drift: float = 0.0

    def __post_init__(self) -> None:
        _check_range("MertonParams.vol", self.vol, 0.0, MAX_VOL)
        _check_range("MertonParams.drift", self.drift, -MAX_DRIFT, MAX_DRIFT)
        intensity = self.jump_intensity_per_year
        _check_range(
            "MertonParams.jump_intensity_per_year", intensity, 0.0, MAX_JUMP_INTENSITY_PER_YEAR
        )
        _check_range("MertonParams.jump_mean", self.jump_mean, -MAX_JUMP_SIZE, MAX_JUMP_SIZE)
        _check_range("MertonParams.jump_std", self.jump_std, 0.0, MAX_JUMP_SIZE)


class HestonParams(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="heston"):
    """Heston stochastic variance: ``theta`` and ``v0`` are annualized variances (vol squared)."""

    kappa: float
    theta: float
    xi: float
    rho: float
    v0: float
    drift: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.kappa) and 0.0 < self.kappa <= MAX_HESTON_RATE):
            raise _invalid("HestonParams.kappa", f"must be in (0, {MAX_HESTON_RATE}]", self.kappa)
        _check_range("HestonParams.theta", self.theta, 0.0, MAX_HESTON_RATE)
        _check_range("HestonParams.xi", self.xi, 0.0, MAX_HESTON_RATE)
        _check_range("HestonParams.rho", self.rho, -1.0, 1.0)
        _check_range("HestonParams.v0", self.v0, 0.0, MAX_HESTON_RATE)
        _check_range("HestonParams.drift", self.drift, -MAX_DRIFT, MAX_DRIFT)


DiffusionParams = GbmParams | MertonParams | HestonParams
"""The generated processes: what a regime segment may be."""


class RegimeSegment(msgspec.Struct, frozen=True, kw_only=True):
    """One regime: ``process`` from ``start_offset_ns`` after the path's start to the next."""

    start_offset_ns: int
    process: DiffusionParams


class RegimeParams(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="regimes"):
    """Piecewise regimes; the first starts at offset 0, starts strictly increase."""

    segments: tuple[RegimeSegment, ...]

    def __post_init__(self) -> None:
        count = len(self.segments)
        if not 1 <= count <= MAX_REGIME_SEGMENTS:
            requirement = f"must hold 1 to {MAX_REGIME_SEGMENTS} segments"
            raise _invalid("RegimeParams.segments", requirement, count)
        starts = [segment.start_offset_ns for segment in self.segments]
        if starts[0] != 0:
            raise _invalid("RegimeParams.segments[0].start_offset_ns", "must be 0", starts[0])
        for index in range(1, count):
            if starts[index] <= starts[index - 1]:
                field = f"RegimeParams.segments[{index}].start_offset_ns"
                requirement = f"must be after the previous segment's {starts[index - 1]}"
                raise _invalid(field, requirement, starts[index])


class ReplayParams(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="replay"):
    """A recorded path: see the module for the file format. A relative ``path`` is taken from
    the working directory, or, in a scenario file, from the file's folder
    (:func:`strikechain.sim.scenario.load_scenario`)."""

    path: str
    shift_ns: int = 0
    """Added to every time in the file (to replay a past day at the run's dates)."""
    interpolation: str = "linear"
    """``"linear"`` in price between rows, or ``"previous"``: the last row at or before."""
    beyond: str = "error"
    """Outside the rows: ``"error"`` raises ``OUT_OF_RANGE``, ``"hold"`` keeps the end price."""

    def __post_init__(self) -> None:
        if not self.path:
            raise _invalid("ReplayParams.path", "must name a file", self.path)
        if self.interpolation not in ("linear", "previous"):
            requirement = "must be 'linear' or 'previous'"
            raise _invalid("ReplayParams.interpolation", requirement, self.interpolation)
        if self.beyond not in ("error", "hold"):
            raise _invalid("ReplayParams.beyond", "must be 'error' or 'hold'", self.beyond)


ProcessParams = GbmParams | MertonParams | HestonParams | RegimeParams | ReplayParams


class UnderlyingProcess(msgspec.Struct, frozen=True, kw_only=True):
    """One underlying's reference price: its process and, unless replayed, its price at the
    start (USDC per unit; a replay takes its prices from the file and must not set it)."""

    name: str
    process: ProcessParams
    spot_usdc: float | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            requirement = "must be 1 to 32 letters, digits, '_', '-' or '.'"
            raise _invalid("UnderlyingProcess.name", requirement, self.name)
        field = f"UnderlyingProcess({self.name}).spot_usdc"
        if isinstance(self.process, ReplayParams):
            if self.spot_usdc is not None:
                raise _invalid(
                    field, "must be unset for a replay (the file sets it)", self.spot_usdc
                )
        elif self.spot_usdc is None or not (math.isfinite(self.spot_usdc) and self.spot_usdc > 0):
            raise _invalid(field, "must be a positive finite price", self.spot_usdc)


class CorrelationGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Correlated Brownian price shocks for ``members`` (order matters: see the module);
    ``matrix`` is their correlation matrix, symmetric, unit diagonal, positive definite (so
    ``|rho| = 1`` is refused: use 0.9999)."""

    members: tuple[str, ...]
    matrix: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        size = len(self.members)
        if not 2 <= size <= MAX_GROUP_SIZE:
            requirement = f"must list 2 to {MAX_GROUP_SIZE} underlyings"
            raise _invalid("CorrelationGroup.members", requirement, self.members)
        if len(set(self.members)) != size:
            raise _invalid("CorrelationGroup.members", "must not repeat a name", self.members)
        if len(self.matrix) != size or any(len(row) != size for row in self.matrix):
            requirement = f"must be {size} x {size}, one row and column per member"
            raise _invalid("CorrelationGroup.matrix", requirement, self.matrix)
        for i, row in enumerate(self.matrix):
            for j, value in enumerate(row):
                _check_range(f"CorrelationGroup.matrix[{i}][{j}]", value, -1.0, 1.0)
                if value != self.matrix[j][i]:
                    raise _invalid(f"CorrelationGroup.matrix[{i}][{j}]", "must be symmetric", value)
            if row[i] != 1.0:
                raise _invalid(f"CorrelationGroup.matrix[{i}][{i}]", "must be 1", row[i])
        cholesky(self.matrix)


class PricesSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The whole reference-price world of a scenario."""

    underlyings: tuple[UnderlyingProcess, ...]
    correlations: tuple[CorrelationGroup, ...] = ()
    step_ns: int = DEFAULT_STEP_NS
    """The generated paths' grid."""
    chunk_steps: int = DEFAULT_CHUNK_STEPS
    """Steps generated at once (a memory and speed knob; the path does not depend on it)."""

    def __post_init__(self) -> None:
        names = [underlying.name for underlying in self.underlyings]
        if not 1 <= len(names) <= MAX_UNDERLYINGS:
            requirement = f"must hold 1 to {MAX_UNDERLYINGS} underlyings"
            raise _invalid("PricesSpec.underlyings", requirement, len(names))
        if len(set(names)) != len(names):
            raise _invalid("PricesSpec.underlyings", "must not repeat a name", names)
        if not 1 <= self.step_ns <= MAX_STEP_NS:
            raise _invalid("PricesSpec.step_ns", f"must be 1 to {MAX_STEP_NS}", self.step_ns)
        if not 1 <= self.chunk_steps <= MAX_CHUNK_STEPS:
            requirement = f"must be 1 to {MAX_CHUNK_STEPS}"
            raise _invalid("PricesSpec.chunk_steps", requirement, self.chunk_steps)
        self._check_groups()

    def _check_groups(self) -> None:
        processes = {underlying.name: underlying.process for underlying in self.underlyings}
        grouped: set[str] = set()
        for index, group in enumerate(self.correlations):
            field = f"PricesSpec.correlations[{index}].members"
            for member in group.members:
                if member not in processes:
                    raise _invalid(field, "must name underlyings of the spec", member)
                if member in grouped:
                    raise _invalid(field, "must not name an underlying of another group", member)
                if isinstance(processes[member], ReplayParams):
                    raise _invalid(field, "must not name a replayed underlying", member)
                grouped.add(member)


def cholesky(matrix: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
    """The lower-triangular ``L`` with ``L L^T = matrix``, in plain floats (a fixed order of
    correctly rounded operations, so the same bits everywhere); refuses a matrix that is not
    positive definite."""
    size = len(matrix)
    lower = [[0.0] * size for _ in range(size)]
    for i in range(size):
        for j in range(i + 1):
            total = matrix[i][j]
            for p in range(j):
                total -= lower[i][p] * lower[j][p]
            if i != j:
                lower[i][j] = total / lower[j][j]
            elif total > 0.0:
                lower[i][i] = math.sqrt(total)
            else:
                requirement = "must be positive definite (no member a combination of others)"
                raise _invalid("CorrelationGroup.matrix", requirement, matrix)
    return tuple(tuple(row) for row in lower)


def price_to_minor(price_usdc: float, rounding: Rounding) -> int:
    """A world price (USDC, float) in USDC minor units, exact from the float's shortest repr,
    rounded as the caller names (in the venue's favour where it matters)."""
    return quote_to_minor(price_usdc, rounding)


# -- increments of one stretch of steps (pure leaves) ------------------------------------------


class _Streams:
    """One underlying's random streams (only those its processes use are drawn from)."""

    __slots__ = ("brownian", "jump_sizes", "jumps", "variance")

    def __init__(self, rng: RngFactory, prefix: str) -> None:
        self.brownian = rng(f"{prefix}/brownian")
        self.variance = rng(f"{prefix}/variance")
        self.jumps = rng(f"{prefix}/jumps")
        self.jump_sizes = rng(f"{prefix}/jump_sizes")


def _diffusion_increments(
    drift_log: float, vol: float, shocks: FloatArray, dt: float
) -> FloatArray:
    out: FloatArray = drift_log * dt + (vol * math.sqrt(dt)) * shocks
    return out


def gbm_increments(params: GbmParams, shocks: FloatArray, dt: float) -> FloatArray:
    """Exact GBM log-price steps for unit normal ``shocks``."""
    drift_log = params.drift - 0.5 * params.vol * params.vol
    return _diffusion_increments(drift_log, params.vol, shocks, dt)


def merton_compensator(params: MertonParams) -> float:
    """``lambda (E[e^J] - 1)``: the drift taken out so jumps do not change the expected return."""
    jump_mean_factor = float(detmath.expm1(params.jump_mean + 0.5 * params.jump_std**2)[()])
    return params.jump_intensity_per_year * jump_mean_factor


def merton_increments(
    params: MertonParams, shocks: FloatArray, dt: float, streams: _Streams
) -> FloatArray:
    """Merton log-price steps: the compensated diffusion plus each step's jumps."""
    drift_log = params.drift - 0.5 * params.vol * params.vol - merton_compensator(params)
    out = _diffusion_increments(drift_log, params.vol, shocks, dt)
    counts = streams.jumps.poisson(params.jump_intensity_per_year * dt, size=len(shocks))
    jumped = np.flatnonzero(counts)
    if len(jumped):
        n = counts[jumped].astype(np.float64)
        sizes = streams.jump_sizes.standard_normal(len(jumped))
        out[jumped] += n * params.jump_mean + params.jump_std * np.sqrt(n) * sizes
    return out


def full_truncation_variance(
    params: HestonParams, v: float, shocks: FloatArray, dt: float, streams: _Streams
) -> tuple[FloatArray, float]:
    """The truncated variance ``v+`` used over each step, and ``v`` after the last: the
    full-truncation Euler recursion, a loop (each step needs the last)."""
    rho = params.rho
    own = streams.variance.standard_normal(len(shocks))
    variance_shocks = (rho * shocks + math.sqrt(1.0 - rho * rho) * own).tolist()
    pull, theta, scale = params.kappa * dt, params.theta, params.xi * math.sqrt(dt)
    used = [0.0] * len(variance_shocks)
    sqrt = math.sqrt
    for index, shock in enumerate(variance_shocks):
        positive = v if v > 0.0 else 0.0
        used[index] = positive
        v = v + pull * (theta - positive) + scale * sqrt(positive) * shock
    return np.asarray(used, dtype=np.float64), v


def heston_increments(
    params: HestonParams, used: FloatArray, shocks: FloatArray, dt: float
) -> FloatArray:
    """Heston log-price steps given the variance ``used`` over each step."""
    out: FloatArray = (params.drift - 0.5 * used) * dt + np.sqrt(used * dt) * shocks
    return out


# -- one underlying's state ---------------------------------------------------------------------


class _Generated:
    """A generated underlying: its regimes (one, unless piecewise), streams and running state
    (log return since the start, Heston variance and the segment it belongs to)."""

    __slots__ = (
        "heston_segment",
        "log_return",
        "processes",
        "spot_usdc",
        "start_steps",
        "streams",
        "variance",
    )

    def __init__(self, underlying: UnderlyingProcess, rng: RngFactory, prefix: str, step_ns: int):
        process = underlying.process
        if isinstance(process, RegimeParams):
            segments = process.segments
        elif isinstance(process, ReplayParams):
            raise InvariantViolation("a replayed underlying is not generated")
        else:
            segments = (RegimeSegment(start_offset_ns=0, process=process),)
        self.processes = tuple(segment.process for segment in segments)
        self.start_steps = tuple(-(-segment.start_offset_ns // step_ns) for segment in segments)
        self.streams = _Streams(rng, f"{prefix}/{underlying.name}")
        self.spot_usdc = float(underlying.spot_usdc or 0.0)
        self.log_return = 0.0
        self.variance = 0.0
        self.heston_segment = -1

    def advance(
        self, first_step: int, shocks: FloatArray, dt: float
    ) -> tuple[FloatArray, FloatArray]:
        """Log-price increments and model variance of the steps from ``first_step``."""
        count = len(shocks)
        increments = np.empty(count)
        variance = np.empty(count)
        stops = (*self.start_steps[1:], first_step + count)
        for index, (start, stop) in enumerate(zip(self.start_steps, stops, strict=True)):
            low, high = (
                max(start, first_step) - first_step,
                min(stop, first_step + count) - first_step,
            )
            if low < high:
                piece = self._stretch(index, shocks[low:high], dt)
                increments[low:high], variance[low:high] = piece
        return increments, variance

    def _stretch(self, index: int, shocks: FloatArray, dt: float) -> tuple[FloatArray, FloatArray]:
        process = self.processes[index]
        if isinstance(process, GbmParams):
            return gbm_increments(process, shocks, dt), np.full(len(shocks), process.vol**2)
        if isinstance(process, MertonParams):
            increments = merton_increments(process, shocks, dt, self.streams)
            return increments, np.full(len(shocks), process.vol**2)
        if self.heston_segment != index:
            self.variance, self.heston_segment = process.v0, index
        used, self.variance = full_truncation_variance(
            process, self.variance, shocks, dt, self.streams
        )
        return heston_increments(process, used, shocks, dt), used


class _Replay:
    """A replayed underlying: the file's rows, shifted, and how to read between and beyond."""

    __slots__ = ("first_ns", "hold", "last_ns", "linear", "name", "prices", "times")

    def __init__(self, name: str, params: ReplayParams) -> None:
        times, prices = read_replay(params.path, params.shift_ns)
        self.name = name
        self.times = np.asarray(times, dtype=np.int64)
        self.prices = prices
        self.first_ns, self.last_ns = times[0], times[-1]
        self.linear = params.interpolation == "linear"
        self.hold = params.beyond == "hold"

    def price(self, t_ns: int) -> float:
        prices = self.prices
        if not self.first_ns <= t_ns <= self.last_ns:
            if not self.hold:
                message = (
                    f"{self.name} is replayed from {self.first_ns} to {self.last_ns} ns, not at"
                    f" {t_ns} ns (set beyond = 'hold' to keep the end prices)"
                )
                raise PriceSpecError(PriceSpecCode.OUT_OF_RANGE, message)
            return prices[0] if t_ns < self.first_ns else prices[-1]
        index = int(np.searchsorted(self.times, t_ns, side="right")) - 1
        low = prices[index]
        before = int(self.times[index])
        if before == t_ns or not self.linear:
            return low
        after = int(self.times[index + 1])
        return low + (prices[index + 1] - low) * ((t_ns - before) / (after - before))


def read_replay(path: str, shift_ns: int = 0) -> tuple[list[int], list[float]]:
    """The rows of a replay file (see the module), times shifted by ``shift_ns``; refuses a
    missing file, a malformed row, a non-positive price, times that do not strictly increase,
    fewer than two rows or more than :data:`MAX_REPLAY_ROWS`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        message = f"cannot read replay file {path!r}: {error}"
        raise PriceSpecError(PriceSpecCode.REPLAY_FILE_UNREADABLE, message) from None
    times: list[int] = []
    prices: list[float] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or (not times and line == _REPLAY_HEADER):
            continue
        if len(times) == MAX_REPLAY_ROWS:
            message = f"{path} has more than {MAX_REPLAY_ROWS} rows"
            raise PriceSpecError(PriceSpecCode.REPLAY_ROW_COUNT, message)
        time_ns, price = _parse_row(line, f"{path} line {number}", shift_ns)
        if times and time_ns <= times[-1]:
            message = (
                f"{path} line {number}: time {time_ns - shift_ns} is not after the previous"
                f" row's {times[-1] - shift_ns}; times must strictly increase"
            )
            raise PriceSpecError(PriceSpecCode.REPLAY_TIMES_NOT_INCREASING, message)
        times.append(time_ns)
        prices.append(price)
    if len(times) < 2:
        message = f"{path} has {len(times)} rows; a replay needs at least two"
        raise PriceSpecError(PriceSpecCode.REPLAY_ROW_COUNT, message)
    return times, prices


def _parse_row(line: str, where: str, shift_ns: int) -> tuple[int, float]:
    fields = line.split(",")
    try:
        if len(fields) != 2:
            raise ValueError("not two fields")
        time_ns = int(fields[0].strip()) + shift_ns
        price = float(fields[1].strip())
    except ValueError:
        message = f"{where}: expected 'time_ns,price' (integer ns, decimal price), got {line!r}"
        raise PriceSpecError(PriceSpecCode.REPLAY_BAD_ROW, message) from None
    if not 0 <= time_ns <= _INT64_MAX:
        message = f"{where}: shifted time {time_ns} ns is outside 0 to {_INT64_MAX}"
        raise PriceSpecError(PriceSpecCode.REPLAY_BAD_ROW, message)
    if not (math.isfinite(price) and price > 0.0):
        message = f"{where}: price {fields[1].strip()!r} is not a positive finite number"
        raise PriceSpecError(PriceSpecCode.REPLAY_BAD_ROW, message)
    return time_ns, price


# -- the world's paths ------------------------------------------------------------------------


class _Chunk(msgspec.Struct, frozen=True):
    """``chunk_steps`` steps of every generated underlying: prices at the steps' grid points
    and the next chunk's first (so interpolation never needs two chunks), model variance per
    step. Rows follow :attr:`PricePaths.underlyings` order of the generated ones."""

    prices: FloatArray
    variance: FloatArray
    price_rows: list[list[float]]
    """``prices`` as Python floats, row by row: what :meth:`PricePaths.price` reads (indexing a
    list costs tens of nanoseconds; a NumPy scalar a few hundred, and every order asks)."""


class PricePaths:
    """Reference prices of every underlying at any virtual time from ``start_ns`` on.

    Generated underlyings are made lazily, ``chunk_steps`` at a time for all of them together
    (correlation needs the group's shocks at once), and only the last ``retain_chunks`` chunks
    are kept. ``rng`` is the run's stream factory (``Kernel.rng``).
    """

    def __init__(
        self,
        spec: PricesSpec,
        rng: RngFactory,
        start_ns: int,
        *,
        retain_chunks: int = 4,
        stream_prefix: str = "prices",
    ) -> None:
        invariant(retain_chunks >= 1, "at least one chunk is kept")
        self.start_ns = start_ns
        self.step_ns = spec.step_ns
        self.underlyings = tuple(underlying.name for underlying in spec.underlyings)
        self._chunk_steps = spec.chunk_steps
        self._dt = spec.step_ns / NANOS_PER_YEAR
        self._retain = retain_chunks
        self._generated: list[_Generated] = []
        self._rows: dict[str, int] = {}
        self._replays: dict[str, _Replay] = {}
        for underlying in spec.underlyings:
            self._add(underlying, rng, stream_prefix, start_ns)
        self._groups = [
            ([self._rows[name] for name in group.members], cholesky(group.matrix))
            for group in spec.correlations
        ]
        self._chunks: dict[int, _Chunk] = {}
        self._next_chunk = 0

    def _add(
        self, underlying: UnderlyingProcess, rng: RngFactory, prefix: str, start_ns: int
    ) -> None:
        process = underlying.process
        if isinstance(process, ReplayParams):
            replay = _Replay(underlying.name, process)
            if not replay.hold and start_ns < replay.first_ns:
                message = (
                    f"{underlying.name}'s replay starts at {replay.first_ns} ns, after the"
                    f" run's start at {start_ns} ns"
                )
                raise PriceSpecError(PriceSpecCode.OUT_OF_RANGE, message)
            self._replays[underlying.name] = replay
            return
        self._rows[underlying.name] = len(self._generated)
        self._generated.append(_Generated(underlying, rng, prefix, self.step_ns))

    # -- queries ---------------------------------------------------------------------------

    def price(self, underlying: str, t_ns: int) -> float:
        """The reference price (USDC per unit) at ``t_ns``: linear between grid points."""
        row = self._rows.get(underlying)
        if row is None:
            return self._require_replay(underlying).price(t_ns)
        step, remainder = divmod(self._require_offset(t_ns), self.step_ns)
        chunk_index, local = divmod(step, self._chunk_steps)
        prices = self._chunk(chunk_index).price_rows[row]
        low = prices[local]
        if remainder == 0:
            return low
        high = prices[local + 1]
        return low + (high - low) * (remainder / self.step_ns)

    def generated_row(self, underlying: str) -> int:
        """The row of a generated ``underlying`` in the chunks (-1: replayed or unknown)."""
        return self._rows.get(underlying, -1)

    @property
    def chunk_steps(self) -> int:
        return self._chunk_steps

    def chunk_prices(self, row: int, chunk_index: int) -> list[float]:
        """Row ``row``'s prices in chunk ``chunk_index`` (made now if not yet, as
        :meth:`price` would): what :class:`~strikechain.sim.path_cursor.PriceCursor` reads."""
        return self._chunk(chunk_index).price_rows[row]

    def price_minor(self, underlying: str, t_ns: int, rounding: Rounding) -> int:
        """:meth:`price` in USDC minor units, rounded as named (:func:`price_to_minor`)."""
        return price_to_minor(self.price(underlying, t_ns), rounding)

    def grid_time_ns(self, step: int) -> int:
        return self.start_ns + step * self.step_ns

    def grid_prices(self, underlying: str, first_step: int, count: int) -> FloatArray:
        """Prices at ``count`` grid points from ``first_step`` (a copy; for analysis)."""
        row = self._rows.get(underlying)
        if row is None:
            replay = self._require_replay(underlying)
            times = [self.grid_time_ns(first_step + index) for index in range(count)]
            return np.asarray([replay.price(t_ns) for t_ns in times], dtype=np.float64)
        return self._gather(row, first_step, count, variance=False)

    def grid_variance(self, underlying: str, first_step: int, count: int) -> FloatArray:
        """The model's instantaneous annualized variance over ``count`` steps from
        ``first_step``: ``vol^2`` (GBM, Merton's diffusion) or Heston's truncated ``v+``."""
        row = self._rows.get(underlying)
        if row is None:
            self._require_replay(underlying)
            message = f"{underlying} is replayed: it has no model variance"
            raise PriceSpecError(PriceSpecCode.INVALID_PARAMETER, message)
        return self._gather(row, first_step, count, variance=True)

    # -- chunks ----------------------------------------------------------------------------

    def _require_replay(self, underlying: str) -> _Replay:
        replay = self._replays.get(underlying)
        if replay is None:
            message = f"{underlying!r} is not one of {', '.join(self.underlyings)}"
            raise PriceSpecError(PriceSpecCode.UNKNOWN_UNDERLYING, message)
        return replay

    def _require_offset(self, t_ns: int) -> int:
        offset = t_ns - self.start_ns
        if offset < 0:
            message = f"{t_ns} ns is before the paths' start at {self.start_ns} ns"
            raise PriceSpecError(PriceSpecCode.OUT_OF_RANGE, message)
        return offset

    def _gather(self, row: int, first_step: int, count: int, *, variance: bool) -> FloatArray:
        if first_step < 0 or count < 0:
            message = f"grid steps {first_step} + {count} must not be negative"
            raise PriceSpecError(PriceSpecCode.OUT_OF_RANGE, message)
        out = np.empty(count)
        done = 0
        while done < count:
            chunk_index, local = divmod(first_step + done, self._chunk_steps)
            chunk = self._chunk(chunk_index)
            source = chunk.variance[row] if variance else chunk.prices[row, :-1]
            taken = min(count - done, self._chunk_steps - local)
            out[done : done + taken] = source[local : local + taken]
            done += taken
        return out

    def _chunk(self, index: int) -> _Chunk:
        if index < self._next_chunk - self._retain:
            oldest = self.grid_time_ns((self._next_chunk - self._retain) * self._chunk_steps)
            message = (
                f"prices before {oldest} ns were discarded (keep more with retain_chunks,"
                f" now {self._retain})"
            )
            raise PriceSpecError(PriceSpecCode.HISTORY_DISCARDED, message)
        while self._next_chunk <= index:
            self._chunks[self._next_chunk] = self._generate(self._next_chunk)
            self._chunks.pop(self._next_chunk - self._retain, None)
            self._next_chunk += 1
        return self._chunks[index]

    def _generate(self, index: int) -> _Chunk:
        count = self._chunk_steps
        first_step = index * count
        shocks = [
            underlying.streams.brownian.standard_normal(count) for underlying in self._generated
        ]
        for rows, lower in self._groups:
            mixed = correlate(lower, [shocks[row] for row in rows])
            for row, values in zip(rows, mixed, strict=True):
                shocks[row] = values
        prices = np.empty((len(self._generated), count + 1))
        variance = np.empty((len(self._generated), count))
        for row, underlying in enumerate(self._generated):
            increments, variance[row] = underlying.advance(first_step, shocks[row], self._dt)
            log_returns = np.cumsum(np.concatenate(([underlying.log_return], increments)))
            underlying.log_return = float(log_returns[-1])
            prices[row] = underlying.spot_usdc * detmath.exp(log_returns)
        return _Chunk(prices, variance, prices.tolist())


def correlate(lower: tuple[tuple[float, ...], ...], shocks: list[FloatArray]) -> list[FloatArray]:
    """Correlated shocks ``sum_{j <= i} L[i][j] Z_j``, summed left to right (fixed order, so
    the same bits everywhere; the first member's are its own, exactly)."""
    out: list[FloatArray] = []
    for i, row in enumerate(lower):
        total: FloatArray = row[0] * shocks[0]
        for j in range(1, i + 1):
            total = total + row[j] * shocks[j]
        out.append(total)
    return out
