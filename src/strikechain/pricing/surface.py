"""Volatility surfaces over expiries: fitted SVI slices, and the node surface the oracle carries.

- :class:`SviSurface` holds fitted SVI slices (:mod:`strikechain.pricing.svi`) at increasing
  expiries. It is what an oracle reporter fits to its market data.
- :class:`NodeSurface` holds total variances at fixed nodes: expiries times a log-moneyness grid
  shared by all expiries. It is what reporters publish (as vols) and what the venue's engine
  takes medians of and interpolates; :meth:`SviSurface.sample_nodes` goes from one to the other.

Interpolation (the same rule in T for both surfaces)
- Along k (node surface): piecewise linear in total variance between nodes. Beyond the first
  and last node the total variance is flat, which at a fixed expiry is the same as flat vol.
  Flat is chosen over linear extrapolation because it needs no slope estimate, keeps w positive
  and bounded by the published nodes, and keeps the calendar property exactly (the extrapolated
  values are node values). The cost: wing vols beyond the last node do not rise, so the node
  grid should cover every listed strike.
- Along T at fixed k: linear in total variance between expiries. Before the first expiry
  ``w = (T / T_1) * w_1(k)``: w falls linearly to 0 as T -> 0, vol stays at the first expiry's.
  After the last expiry ``w = (T / T_n) * w_n(k)``: vol stays at the last expiry's.

Determinism (node surface)
- :meth:`NodeSurface.interpolate_total_variance` uses only correctly rounded IEEE-754 ``+ - * /``,
  comparisons, ``np.where``, ``np.searchsorted`` and integer indexing: no ``np.interp``, no
  transcendental function, no reduction (input validation uses boolean ``any``, which is
  exact). Each operation is its own ufunc call, so no fused multiply-add can change a rounding.
  Its results are therefore bit-identical on every machine with IEEE-754 binary64 in
  round-to-nearest without flush-to-zero, which is how NumPy runs. ``interpolate_vol`` adds a
  square root, which IEEE-754 also rounds correctly. ``tests/pricing/test_surface.py`` pins
  golden values (as hex) and checks by AST which NumPy functions the path calls.
- Bitwise guarantees: the interpolant returns the node value exactly at every node; and when the
  nodes are non-decreasing in T at every k, the interpolant is non-decreasing in T at every k,
  exactly in floating point, not just up to rounding (see ``_k_weights`` and ``_blend``).

Limits
- Everything else here (SVI evaluation, the node butterfly check's Black prices) uses libm and
  is not bit-identical across machines; it must not decide venue state.
- Piecewise-linear total variance has kinks at the nodes. The node butterfly check proves that
  the node prices admit an arbitrage-free model, not that the interpolant's density is
  non-negative between nodes (at a concave kink it is not).
- At most ``MAX_EXPIRIES`` expiries, :data:`MAX_NODE_POINTS` log-moneyness points per expiry
  and :data:`MAX_QUERY_POINTS` query points per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.special as sc

from strikechain.pricing._types import ArrayLike, BoolArray, FloatArray, IntArray
from strikechain.pricing.svi import (
    MAX_EXPIRIES,
    ButterflyCheck,
    CalendarCheck,
    Policy,
    SliceFitReport,
    SliceQuotes,
    SurfaceError,
    SurfaceErrorCode,
    SviParams,
    check_butterfly,
    check_calendar,
    fit_svi_slices,
)

MAX_NODE_POINTS = 256
"""Log-moneyness points per expiry of a node surface."""
MAX_QUERY_POINTS = 10_000_000
"""Points per interpolation call (after broadcasting)."""

_BUTTERFLY_TOLERANCE = 1e-12
"""Tolerance of the node butterfly check, in units of the forward (prices are C / F)."""


def _bad_nodes(message: str) -> SurfaceError:
    return SurfaceError(SurfaceErrorCode.SURFACE_BAD_NODES, message)


def _increasing_vector(name: str, values: ArrayLike, limit: int) -> FloatArray:
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise _bad_nodes(f"{name} are not numbers: {error}") from error
    if array.ndim != 1 or not 1 <= array.size <= limit:
        raise _bad_nodes(f"{name} must be 1-D with 1 to {limit} points, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise _bad_nodes(f"{name} must be finite")
    if array.size > 1 and not np.all(array[1:] > array[:-1]):
        raise _bad_nodes(f"{name} must increase strictly")
    array.flags.writeable = False
    return array


def _query(expiry: ArrayLike, log_moneyness: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Broadcast query arrays; reject non-finite points and negative expiries."""
    try:
        T, k = np.broadcast_arrays(
            np.asarray(expiry, dtype=np.float64), np.asarray(log_moneyness, dtype=np.float64)
        )
    except (TypeError, ValueError) as error:
        raise SurfaceError(SurfaceErrorCode.SURFACE_BAD_QUERY, str(error)) from error
    if T.size > MAX_QUERY_POINTS:
        raise SurfaceError(
            SurfaceErrorCode.SURFACE_BAD_QUERY, f"{T.size} points; the limit is {MAX_QUERY_POINTS}"
        )
    bad: BoolArray = ~(np.isfinite(T) & np.isfinite(k) & (T >= 0.0))
    if bad.any():
        raise SurfaceError(
            SurfaceErrorCode.SURFACE_BAD_QUERY,
            "query expiries must be finite and >= 0 and log-moneyness finite",
        )
    return T, k


def _k_weights(
    grid: FloatArray, k: FloatArray
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Interval ends and linear weights of each k on the grid: ``w = u*w[lo] + t*w[hi]``.

    A k equal to a node is the left end of its interval (``side="right"``), so ``t = 0`` and
    ``u = 1`` exactly and the node value comes back bit for bit. Beyond the grid lo = hi (flat).
    Because every expiry uses the same (u, t) >= 0, and rounding is monotone, a row that is
    >= another row at every node interpolates to a value >= the other's at every k, exactly.
    """
    n = grid.size
    j = np.searchsorted(grid, k, side="right")
    inside = (j > 0) & (j < n)
    lo: IntArray = np.where(j == 0, 0, j - 1).astype(np.int64)
    hi: IntArray = np.where(j == n, n - 1, j).astype(np.int64)
    span = np.where(inside, grid[hi] - grid[lo], 1.0)
    t: FloatArray = np.where(inside, (k - grid[lo]) / span, 0.0)
    u: FloatArray = 1.0 - t
    return lo, hi, u, t


def _brackets(expiries: FloatArray, T: FloatArray) -> tuple[IntArray, IntArray, IntArray]:
    """For each T: ``i`` with ``expiries[i-1] <= T < expiries[i]``, and the rows below and above
    (both the first row before the first expiry, both the last row after the last)."""
    n = expiries.size
    i: IntArray = np.searchsorted(expiries, T, side="right").astype(np.int64)
    below: IntArray = np.where(i == 0, 0, i - 1).astype(np.int64)
    above: IntArray = np.where(i == n, n - 1, i).astype(np.int64)
    return i, below, above


def _blend(
    expiries: FloatArray, T: FloatArray, i: IntArray, below: FloatArray, above: FloatArray
) -> FloatArray:
    """Total variance at T from the values ``below`` and ``above`` at the bracketing expiries.

    Linear in total variance between expiries, ``(T/T_1) * w_1`` before the first and
    ``(T/T_n) * w_n`` after the last. Inside a bracket ``below + s*(above - below)`` is
    non-decreasing in s when below <= above (rounding is monotone), and clamping to
    [below, above] removes a last-bit overshoot near s = 1, so the curve in T is non-decreasing
    whenever below <= above in every bracket. Elementwise operations and indexing only.
    """
    n = expiries.size
    first = i == 0
    last = i == n
    outside = first | last
    t_below = expiries[np.where(first, 0, i - 1)]
    t_above = expiries[np.where(last, n - 1, i)]
    s = np.where(outside, 0.0, (T - t_below) / np.where(outside, 1.0, t_above - t_below))
    inner = below + s * (above - below)
    ascending = below <= above
    low = np.where(ascending, below, above)
    high = np.where(ascending, above, below)
    inner = np.where(inner > high, high, np.where(inner < low, low, inner))
    before = (T / expiries[0]) * above
    after = (T / expiries[n - 1]) * below
    out: FloatArray = np.where(first, before, np.where(last, after, inner))
    return out


def _vol_expiry(expiries: FloatArray, T: FloatArray) -> FloatArray:
    """Where to read vol: the first expiry for T below it (vol is constant there, w/T is 0/0 at
    T = 0), else T itself."""
    out: FloatArray = np.where(expiries[0] > T, expiries[0], T)
    return out


@dataclass(frozen=True, slots=True)
class NodeViolation:
    """One failed node condition: which check, where, and by how much (positive)."""

    check: str
    expiry: float
    log_moneyness: float
    amount: float


@dataclass(frozen=True, slots=True)
class NodeCheck:
    """Result of a node-surface check; ``violations`` is empty iff ``passed``."""

    passed: bool
    violations: tuple[NodeViolation, ...]


@dataclass(frozen=True, slots=True)
class NodeSurface:
    """Total variances at fixed nodes, ``total_variance[i, j]`` at ``(expiries[i],
    log_moneyness[j])``; arrays are validated read-only copies (finite, w > 0, axes strictly
    increasing, expiries > 0). Construction does not check arbitrage: an oracle median may have
    some, and what to do about it is the caller's decision (:meth:`require_arbitrage_free`).
    """

    expiries: FloatArray
    log_moneyness: FloatArray
    total_variance: FloatArray

    def __post_init__(self) -> None:
        expiries = _increasing_vector("expiries", self.expiries, MAX_EXPIRIES)
        if not expiries[0] > 0.0:
            raise _bad_nodes(f"expiries must be > 0, got {expiries[0]}")
        grid = _increasing_vector("log_moneyness", self.log_moneyness, MAX_NODE_POINTS)
        try:
            variance = np.array(self.total_variance, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise _bad_nodes(f"total_variance is not numbers: {error}") from error
        if variance.shape != (expiries.size, grid.size):
            raise _bad_nodes(
                f"total_variance has shape {variance.shape}, expected "
                f"({expiries.size}, {grid.size})"
            )
        if not np.all(np.isfinite(variance) & (variance > 0.0)):
            raise _bad_nodes("total variances must be finite and > 0")
        variance.flags.writeable = False
        object.__setattr__(self, "expiries", expiries)
        object.__setattr__(self, "log_moneyness", grid)
        object.__setattr__(self, "total_variance", variance)

    @classmethod
    def from_vols(
        cls, expiries: ArrayLike, log_moneyness: ArrayLike, vols: ArrayLike
    ) -> NodeSurface:
        """From node vols, as reporters publish them: ``w = vol * vol * T`` (exact operations)."""
        T = np.asarray(expiries, dtype=np.float64)
        vol = np.asarray(vols, dtype=np.float64)
        if T.ndim != 1 or vol.ndim != 2 or vol.shape[0] != T.size:
            raise _bad_nodes(f"vols of shape {vol.shape} do not match {T.size} expiries")
        if not np.all(vol > 0.0):
            raise _bad_nodes("vols must be > 0")
        return cls(T, np.asarray(log_moneyness, dtype=np.float64), vol * vol * T[:, None])

    def node_vols(self) -> FloatArray:
        """Vols at the nodes, ``sqrt(w / T)``."""
        out: FloatArray = np.sqrt(self.total_variance / self.expiries[:, None])
        return out

    def interpolate_total_variance(self, expiry: ArrayLike, log_moneyness: ArrayLike) -> FloatArray:
        """Total variance at query points (broadcast); bit-identical on every machine."""
        T, k = _query(expiry, log_moneyness)
        flat_T = T.ravel()
        lo, hi, u, t = _k_weights(self.log_moneyness, k.ravel())
        i, row_below, row_above = _brackets(self.expiries, flat_T)
        nodes = self.total_variance
        below = u * nodes[row_below, lo] + t * nodes[row_below, hi]
        above = u * nodes[row_above, lo] + t * nodes[row_above, hi]
        return _blend(self.expiries, flat_T, i, below, above).reshape(T.shape)

    def interpolate_vol(self, expiry: ArrayLike, log_moneyness: ArrayLike) -> FloatArray:
        """Implied vol at query points; constant in T before the first expiry (also at T = 0)."""
        T, k = _query(expiry, log_moneyness)
        at = _vol_expiry(self.expiries, T)
        out: FloatArray = np.sqrt(self.interpolate_total_variance(at, k) / at)
        return out

    def check_calendar(self) -> NodeCheck:
        """Total variance non-decreasing in T at every node (exact comparison, no tolerance).

        What it proves: with this module's interpolation the whole surface, between and beyond
        the nodes, is then non-decreasing in T at every k, bitwise (module doc).
        """
        gap = self.total_variance[1:] - self.total_variance[:-1]
        rows, columns = np.nonzero(gap < 0.0)
        violations = tuple(
            NodeViolation(
                "calendar",
                float(self.expiries[r + 1]),
                float(self.log_moneyness[c]),
                float(-gap[r, c]),
            )
            for r, c in zip(rows.tolist(), columns.tolist(), strict=True)
        )
        return NodeCheck(not violations, violations)

    def check_butterfly(self) -> NodeCheck:
        """Static-arbitrage check of the node prices at each expiry, along strike.

        With normalized Black call prices ``c = C/F`` at strikes ``x = K/F = e^k``: calls do not
        increase with strike (``"vertical"``), fall no faster than the strike rises
        (``"slope"``), and are convex in strike (``"butterfly"``), each within 1e-12 of the
        forward. What it proves: the node prices of each expiry are consistent with some
        non-negative risk-neutral density (no butterfly or vertical-spread arbitrage among the
        node strikes). What it does not prove: that the piecewise-linear interpolant between
        nodes has a non-negative density (module doc). Uses libm: a sanity check for reporters
        and the lab, not for consensus.
        """
        violations: list[NodeViolation] = []
        strikes = np.exp(self.log_moneyness)
        for expiry, variance in zip(self.expiries, self.total_variance, strict=True):
            calls = _normalized_calls(self.log_moneyness, variance)
            for check, at, amount in _strike_violations(strikes, calls):
                violations.append(
                    NodeViolation(check, float(expiry), float(self.log_moneyness[at]), amount)
                )
        return NodeCheck(not violations, tuple(violations))

    def require_arbitrage_free(self) -> NodeSurface:
        """This surface, or :class:`SurfaceError` with the first calendar or butterfly violation."""
        for result, code in (
            (self.check_calendar(), SurfaceErrorCode.SURFACE_CALENDAR_ARBITRAGE),
            (self.check_butterfly(), SurfaceErrorCode.SURFACE_BUTTERFLY_ARBITRAGE),
        ):
            if not result.passed:
                first = result.violations[0]
                raise SurfaceError(
                    code,
                    f"{first.check} violated by {first.amount:.3g} at expiry {first.expiry}, "
                    f"log-moneyness {first.log_moneyness} ({len(result.violations)} violations)",
                    expiry=first.expiry,
                    log_moneyness=first.log_moneyness,
                )
        return self


def _normalized_calls(log_moneyness: FloatArray, total_variance: FloatArray) -> FloatArray:
    """Black call price over forward, ``N(d1) - e^k N(d2)``."""
    root = np.sqrt(total_variance)
    d1 = -log_moneyness / root + 0.5 * root
    out: FloatArray = sc.ndtr(d1) - np.exp(log_moneyness) * sc.ndtr(d1 - root)
    return out


def _strike_violations(strikes: FloatArray, calls: FloatArray) -> list[tuple[str, int, float]]:
    """(check, node index, amount) of each failed discrete no-arbitrage condition."""
    drop = calls[:-1] - calls[1:]
    rise = strikes[1:] - strikes[:-1]
    found = [
        ("vertical", j + 1, float(-drop[j]))
        for j in np.flatnonzero(drop < -_BUTTERFLY_TOLERANCE).tolist()
    ]
    found.extend(
        ("slope", j, float(drop[j] - rise[j]))
        for j in np.flatnonzero(drop > rise + _BUTTERFLY_TOLERANCE).tolist()
    )
    if calls.size >= 3:
        left = rise[1:] / (rise[:-1] + rise[1:])
        excess = calls[1:-1] - (left * calls[:-2] + (1.0 - left) * calls[2:])
        found.extend(
            ("butterfly", j + 1, float(excess[j]))
            for j in np.flatnonzero(excess > _BUTTERFLY_TOLERANCE).tolist()
        )
    return found


@dataclass(frozen=True, slots=True)
class SviSurface:
    """SVI slices at strictly increasing expiries (years), interpolated in T like the nodes."""

    expiries: tuple[float, ...]
    slices: tuple[SviParams, ...]

    def __post_init__(self) -> None:
        if len(self.expiries) != len(self.slices):
            raise _bad_nodes(f"{len(self.expiries)} expiries but {len(self.slices)} slices")
        expiries = _increasing_vector("expiries", self.expiries, MAX_EXPIRIES)
        if not expiries[0] > 0.0:
            raise _bad_nodes(f"expiries must be > 0, got {expiries[0]}")
        object.__setattr__(self, "expiries", tuple(float(t) for t in expiries))
        object.__setattr__(self, "slices", tuple(self.slices))

    @classmethod
    def from_reports(cls, reports: Sequence[SliceFitReport]) -> SviSurface:
        """The surface of a sequence of slice fits (:func:`fit_svi_surface` does this)."""
        return cls(tuple(r.expiry for r in reports), tuple(r.params for r in reports))

    def total_variance(self, expiry: ArrayLike, log_moneyness: ArrayLike) -> FloatArray:
        """Total variance at query points (broadcast), interpolated in T between slices."""
        T, k = _query(expiry, log_moneyness)
        flat_T, flat_k = T.ravel(), k.ravel()
        expiries = np.asarray(self.expiries)
        i, row_below, row_above = _brackets(expiries, flat_T)
        below = self._evaluate(row_below, flat_k)
        above = self._evaluate(row_above, flat_k)
        return _blend(expiries, flat_T, i, below, above).reshape(T.shape)

    def _evaluate(self, rows: IntArray, k: FloatArray) -> FloatArray:
        """``slices[rows[q]].total_variance(k[q])`` for every query q."""
        out = np.empty_like(k)
        for row in np.unique(rows).tolist():
            mask = rows == row
            out[mask] = self.slices[row].total_variance(k[mask])
        return out

    def implied_vol(self, expiry: ArrayLike, log_moneyness: ArrayLike) -> FloatArray:
        """Implied vol at query points; constant in T before the first expiry."""
        T, k = _query(expiry, log_moneyness)
        at = _vol_expiry(np.asarray(self.expiries), T)
        out: FloatArray = np.sqrt(self.total_variance(at, k) / at)
        return out

    def sample_nodes(self, log_moneyness: ArrayLike) -> NodeSurface:
        """The node surface at this surface's expiries and the given log-moneyness grid.

        Node values are the slices' own values, so the node surface agrees with this surface
        bit for bit at every node.
        """
        grid = _increasing_vector("log_moneyness", log_moneyness, MAX_NODE_POINTS)
        variance = np.stack([params.total_variance(grid) for params in self.slices])
        return NodeSurface(np.asarray(self.expiries), grid, variance)

    def check_butterfly(self) -> tuple[ButterflyCheck, ...]:
        """:func:`~strikechain.pricing.svi.check_butterfly` of every slice."""
        return tuple(check_butterfly(params) for params in self.slices)

    def check_calendar(self) -> tuple[CalendarCheck, ...]:
        """:func:`~strikechain.pricing.svi.check_calendar` of each consecutive pair of slices."""
        return tuple(
            check_calendar(before, after)
            for before, after in zip(self.slices, self.slices[1:], strict=False)
        )


@dataclass(frozen=True, slots=True)
class SurfaceFit:
    """A fitted surface and the fit report of each expiry."""

    surface: SviSurface
    reports: tuple[SliceFitReport, ...]


def fit_svi_surface(quotes: Sequence[SliceQuotes], *, policy: Policy = "reject") -> SurfaceFit:
    """Fit every expiry (see :func:`~strikechain.pricing.svi.fit_svi_slices`) into a surface."""
    reports = fit_svi_slices(quotes, policy=policy)
    return SurfaceFit(SviSurface.from_reports(reports), reports)
