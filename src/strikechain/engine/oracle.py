"""The oracle: signed index reports, their aggregation per block, and the circuit breaker.

Registered reporters publish, per underlying, an index price with a confidence and implied vols
at fixed surface nodes (per expiry, at the configured log-moneyness points). Each report is an
EIP-712 signed transaction (:class:`OracleReport`); the signature stays in the block, so the
block log and the settlement data carry it and any verifier re-checks it. The operator who
sequences blocks cannot forge or alter a price: it can only include or omit reports.

:class:`OracleState` (one per underlying, owned by the engine) keeps each reporter's latest
report and, once per block after the oracle-report lane, aggregates them
(:meth:`OracleState.aggregate`): median over fresh reports with a quorum, outliers dropped,
a Pyth-style confidence band, per-node medians of the vols, and a circuit breaker that opens on
staleness, missing quorum, disagreement or a too-wide band. :func:`option_marks` turns an index
and vol nodes into option marks, bit-identical on every machine.

Units
- ``price``, ``confidence`` and the index: USDC minor units (6 decimals) per ONE unit of the
  underlying (BTC at 100,000 USDC is ``100_000_000_000``).
- Vols in ppm (0.55 is ``550_000``), log-moneyness ``ln(K/F)`` in ppm (-0.2 is ``-200_000``).
- Times in integer nanoseconds of block time (``timestamp_ns`` is the reporter's observation
  time; the block time ``now_ns`` is passed to every method: the state reads no clock).

Invariants
- Every state amount is an integer, every aggregation exact integer arithmetic with the
  roundings named in :meth:`OracleState.aggregate`; floats appear only inside
  :func:`option_marks`, through the deterministic pricing mode, and leave it floored to integers.
- Reporters are iterated in registry order, expiries in increasing order: no set or hash order
  reaches a result.
- A rejected report (:class:`OracleRejection`) changes nothing. While the breaker is open the
  last good index and confidence are kept, never overwritten.

Limits
- A report has at most :data:`MAX_VOL_SLICES` expiries of at most :data:`MAX_VOL_NODES` nodes,
  vols in ``1 .. MAX_VOL_PPM``, prices and times at most ``INT64_MAX``; a registry at most
  :data:`MAX_REPORTERS` reporters; the aggregated surface at most :data:`MAX_SURFACE_EXPIRIES`
  expiries (the nearest are kept); the index history ``max_history`` samples.
"""

from __future__ import annotations

import bisect
import enum
import itertools
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from strikechain.engine.codes import RejectCode
from strikechain.engine.instruments import MAX_UNDERLYING_CHARS, UNDERLYING_NAME
from strikechain.engine.invariant import invariant
from strikechain.engine.signing import (
    DEFAULT_DOMAIN,
    SIGNATURE_BYTES,
    SignerMemo,
    SigningDomain,
    encode_address,
    encode_string,
    encode_uint,
    is_address,
    keccak256,
    recover_address,
    sign_digest,
    type_hash,
    typed_data_digest,
)
from strikechain.engine.units import INT64_MAX, NANOS_PER_MINUTE, NANOS_PER_SECOND
from strikechain.pricing import deterministic, detmath
from strikechain.pricing.surface import NodeSurface

PPM: Final = 1_000_000
MAX_VOL_SLICES: Final = 32
"""Expiries per report."""
MAX_VOL_NODES: Final = 32
"""Log-moneyness nodes per expiry."""
MAX_VOL_PPM: Final = 10_000_000
"""1000% a year: far above any quoted crypto vol, far below the ``uint32`` of the signed type."""
MAX_LOG_MONEYNESS_PPM: Final = 10_000_000
"""Nodes within ``ln(K/F)`` of +-10 (strikes from 0.005% to 2,200,000% of the forward)."""
MAX_REPORTERS: Final = 64
MAX_SURFACE_EXPIRIES: Final = 64
"""Expiries in the aggregated surface; beyond it the farthest are dropped."""
NANOS_PER_YEAR: Final = 365 * 86_400 * NANOS_PER_SECOND
"""The year of option time to expiry: 365 days of 86,400 s (Deribit's convention)."""

VOL_SLICE_TYPE: Final = "VolSlice(uint64 expiryNs,uint32[] volsPpm)"
ORACLE_REPORT_TYPE: Final = (
    "OracleReport(address reporter,string underlying,uint64 timestampNs,uint256 price,"
    "uint256 confidence,VolSlice[] vols)" + VOL_SLICE_TYPE
)
"""EIP-712 encodeType of a report: referenced struct types follow the primary one."""
_VOL_SLICE_TYPE_HASH: Final = type_hash(VOL_SLICE_TYPE)
_ORACLE_REPORT_TYPE_HASH: Final = type_hash(ORACLE_REPORT_TYPE)


OracleRejectCode = RejectCode
"""Why a report was refused: the engine's own stable codes (``INVALID_ORACLE_REPORT``,
``UNKNOWN_REPORTER``, ``BAD_SIGNATURE``, ``STALE_REPORT``, ``REPORT_FROM_FUTURE``,
``REPORT_NOT_NEWER``), so a refusal reaches the block's events unchanged."""


class OracleRejection(Exception):
    """A refused report: ``code`` (an :class:`OracleRejectCode`, which is a ``str``) and a
    message a person can act on. The report changed nothing."""

    def __init__(self, code: OracleRejectCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: str = code
        self.message = message


class BreakerReason(enum.StrEnum):
    """Why the circuit breaker is open."""

    NO_PRICE = "NO_PRICE"
    """There has never been an index (the state of a new underlying)."""
    NO_QUORUM = "NO_QUORUM"
    """Fewer than ``quorum`` fresh reports."""
    DISAGREEMENT = "DISAGREEMENT"
    """Fewer than ``quorum`` fresh reports within ``outlier_ppm`` of their median."""
    CONFIDENCE_TOO_WIDE = "CONFIDENCE_TOO_WIDE"
    """The aggregate confidence exceeds ``max_confidence_ppm`` of the index."""


def _invalid(message: str) -> OracleRejection:
    return OracleRejection(OracleRejectCode.INVALID_ORACLE_REPORT, message)


def _require_int(value: object, what: str, low: int, high: int) -> None:
    if type(value) is not int:
        raise _invalid(f"{what} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise _invalid(f"{what} {value} is outside {low} .. {high}")


# --- values -------------------------------------------------------------------------------------


class VolSlice(msgspec.Struct, frozen=True, gc=False):
    """Implied vols (ppm) of one expiry at the configured log-moneyness nodes, in node order.

    ``expiry_ns`` is a whole second (listed expiries are 08:00 UTC): two distinct expiries are
    then at least 10**9 ns apart, so their times to expiry stay distinct as float64 years and
    the node surface's expiries always increase strictly.
    """

    expiry_ns: int
    vols_ppm: tuple[int, ...]

    def __post_init__(self) -> None:
        _require_int(self.expiry_ns, "slice expiry", 1, INT64_MAX)
        if self.expiry_ns % NANOS_PER_SECOND:
            raise _invalid(f"slice expiry {self.expiry_ns} is not a whole second")
        if type(self.vols_ppm) is not tuple:
            raise _invalid(f"slice vols must be a tuple of integers, not {self.vols_ppm!r}")
        if not 1 <= len(self.vols_ppm) <= MAX_VOL_NODES:
            raise _invalid(f"a slice has 1 to {MAX_VOL_NODES} vols, not {len(self.vols_ppm)}")
        for vol in self.vols_ppm:
            _require_int(vol, "vol (ppm)", 1, MAX_VOL_PPM)


class OracleReport(msgspec.Struct, frozen=True, kw_only=True, tag="oracle", gc=False):
    """One reporter's observation of one underlying: index price, confidence, node vols.

    ``signature`` is the reporter's EIP-712 signature (:func:`report_digest`) over every field
    except ``signature`` and ``priority_fee``; the fee is the sequencer's business, not the
    reporter's claim. Validation here is of the value alone (types, ranges, shape); what depends
    on the registry, the clock or the surface grid is checked by :meth:`OracleState.submit`.
    """

    account: str
    """The reporter's address, ``0x`` + 40 lowercase hex."""
    underlying: str
    timestamp_ns: int
    price: int
    confidence: int
    vols: tuple[VolSlice, ...] = ()
    signature: bytes = b""
    priority_fee: int = 0

    def __post_init__(self) -> None:
        if not is_address(self.account):
            raise _invalid(f"reporter {self.account!r} is not an address (0x + 40 lowercase hex)")
        if (
            type(self.underlying) is not str
            or not 1 <= len(self.underlying) <= MAX_UNDERLYING_CHARS
            or UNDERLYING_NAME.fullmatch(self.underlying) is None
        ):
            raise _invalid(
                f"underlying {self.underlying!r} must be 1 to {MAX_UNDERLYING_CHARS} uppercase "
                "ASCII letters and digits"
            )
        _require_int(self.timestamp_ns, "timestamp", 0, INT64_MAX)
        _require_int(self.price, "price", 1, INT64_MAX)
        _require_int(self.confidence, "confidence", 0, INT64_MAX)
        if self.confidence >= self.price:
            raise _invalid(f"confidence {self.confidence} must be below the price {self.price}")
        _require_int(self.priority_fee, "priority fee", -INT64_MAX, INT64_MAX)
        if type(self.signature) is not bytes or len(self.signature) not in (0, SIGNATURE_BYTES):
            raise _invalid(f"a signature is {SIGNATURE_BYTES} bytes (or empty before signing)")
        _check_slices(self.vols)


def _check_slices(vols: object) -> None:
    if type(vols) is not tuple:
        raise _invalid(f"vols must be a tuple of slices, not {vols!r}")
    if len(vols) > MAX_VOL_SLICES:
        raise _invalid(f"{len(vols)} vol slices; at most {MAX_VOL_SLICES}")
    previous: VolSlice | None = None
    for item in vols:
        if not isinstance(item, VolSlice):
            raise _invalid(f"vols must hold VolSlice values, not {item!r}")
        if previous is not None:
            if item.expiry_ns <= previous.expiry_ns:
                raise _invalid("slice expiries must increase strictly")
            if len(item.vols_ppm) != len(previous.vols_ppm):
                raise _invalid("every slice of a report has the same number of nodes")
        previous = item


# --- signing ------------------------------------------------------------------------------------


def _vol_slice_hash(vol_slice: VolSlice) -> bytes:
    vols = keccak256(b"".join(encode_uint(vol, 32) for vol in vol_slice.vols_ppm))
    return keccak256(_VOL_SLICE_TYPE_HASH + encode_uint(vol_slice.expiry_ns, 64) + vols)


def report_struct_hash(report: OracleReport) -> bytes:
    """EIP-712 ``hashStruct`` of a report (type :data:`ORACLE_REPORT_TYPE`); arrays are the
    keccak-256 of their elements' encodings concatenated (struct elements by their hashStruct)."""
    slices = keccak256(b"".join(_vol_slice_hash(vol_slice) for vol_slice in report.vols))
    return keccak256(
        _ORACLE_REPORT_TYPE_HASH
        + encode_address(report.account)
        + encode_string(report.underlying)
        + encode_uint(report.timestamp_ns, 64)
        + encode_uint(report.price)
        + encode_uint(report.confidence)
        + slices
    )


def report_digest(report: OracleReport, domain: SigningDomain = DEFAULT_DOMAIN) -> bytes:
    """The EIP-712 digest a reporter signs: what a wallet shows as typed data and what
    ``ecrecover`` checks on chain."""
    return typed_data_digest(domain.separator, report_struct_hash(report))


class ReportVerifier:
    """Who signed a report, remembered for the last ``capacity`` reports.

    The signer is a pure function of the report (its fields, its signature and the domain), so
    remembering it cannot change any outcome; it only moves the cost. A node verifies each
    report as it arrives, on its network threads, with the same verifier it hands the engine,
    and the engine's sequential check becomes a lookup; a replica replaying the log without
    that warm-up verifies everything itself. Bounded: the oldest entries leave first.
    """

    __slots__ = ("_memo", "domain")

    def __init__(self, domain: SigningDomain = DEFAULT_DOMAIN, capacity: int = 65_536) -> None:
        self.domain = domain
        self._memo: SignerMemo[OracleReport] = SignerMemo(capacity)

    @property
    def capacity(self) -> int:
        return self._memo.capacity

    def signer(self, report: OracleReport) -> str | None:
        """The address that signed ``report`` (None if nobody validly did)."""
        return self._memo.signer(report, self._recover)

    def _recover(self, report: OracleReport) -> str | None:
        return recover_address(report_digest(report, self.domain), report.signature)


def sign_report(
    report: OracleReport, private_key: bytes, domain: SigningDomain = DEFAULT_DOMAIN
) -> OracleReport:
    """A copy of ``report`` carrying its signature by ``private_key`` (the reporter's tooling
    and the tests sign; the engine only verifies)."""
    signature = sign_digest(report_digest(report, domain), private_key)
    return msgspec.structs.replace(report, signature=signature)


# --- parameters ---------------------------------------------------------------------------------


class OracleParams(msgspec.Struct, frozen=True, kw_only=True):
    """The oracle's rules for one underlying, chosen by the operator; relations asserted."""

    reporters: tuple[str, ...]
    """Registered reporter addresses, in the order aggregation visits them."""
    quorum: int = 3
    staleness_ns: int = 10 * NANOS_PER_SECOND
    """A report older than this (block time minus its timestamp) is not fresh."""
    max_future_ns: int = 2 * NANOS_PER_SECOND
    """Tolerated clock skew: a report stamped further ahead of block time is refused."""
    outlier_ppm: int = 20_000
    """A report further than this from the median of fresh reports is dropped (2%)."""
    max_confidence_ppm: int = 5_000
    """An aggregate confidence above this fraction of the index opens the breaker (0.5%)."""
    max_pause_ns: int = 5 * NANOS_PER_MINUTE
    """Longest time liquidations wait on an open breaker."""
    log_moneyness_ppm: tuple[int, ...] = (
        -400_000,
        -200_000,
        -100_000,
        0,
        100_000,
        200_000,
        400_000,
    )
    """The surface nodes ``ln(K/F)`` every vol slice reports, strictly increasing."""
    settlement_window_ns: int = 30 * NANOS_PER_MINUTE
    """The averaging window of settlement prices: the index history covers it."""
    history_margin_ns: int = 10 * NANOS_PER_MINUTE
    """History kept beyond the settlement window, so a settlement run a little late still has
    its whole window."""
    max_history: int = 65_536
    """Index samples kept at most: one per index change, so one per block at most. Must exceed
    the blocks in ``settlement_window_ns + history_margin_ns`` (40 min at 100 ms is 24,000)."""

    def __post_init__(self) -> None:
        invariant(type(self.reporters) is tuple, "reporters must be a tuple")
        invariant(1 <= len(self.reporters) <= MAX_REPORTERS, f"1 to {MAX_REPORTERS} reporters")
        invariant(all(is_address(r) for r in self.reporters), "reporters must be addresses")
        invariant(len(dict.fromkeys(self.reporters)) == len(self.reporters), "duplicate reporter")
        invariant(1 <= self.quorum <= len(self.reporters), "quorum must be 1 .. reporters")
        invariant(self.staleness_ns > 0 and self.max_future_ns >= 0, "freshness bounds")
        invariant(0 < self.outlier_ppm < PPM, "the outlier band is a fraction below 1")
        invariant(0 < self.max_confidence_ppm < PPM, "the confidence bound is a fraction below 1")
        invariant(self.max_pause_ns > 0, "the liquidation pause must be bounded and positive")
        grid = self.log_moneyness_ppm
        invariant(type(grid) is tuple and 1 <= len(grid) <= MAX_VOL_NODES, "1 to 32 nodes")
        invariant(
            all(type(k) is int and abs(k) <= MAX_LOG_MONEYNESS_PPM for k in grid),
            "log-moneyness nodes must be integers within +-10 (ppm)",
        )
        invariant(all(a < b for a, b in itertools.pairwise(grid)), "nodes must increase")
        invariant(self.settlement_window_ns > 0, "the settlement window must be positive")
        invariant(self.history_margin_ns >= 0, "the history margin must not be negative")
        invariant(self.max_history >= 2, "the history holds at least two samples")
        horizon = self.settlement_window_ns + self.history_margin_ns
        invariant(horizon <= INT64_MAX, "the history horizon must fit in 64 bits")


# --- the index history --------------------------------------------------------------------------


class IndexHistory:
    """Bounded (time, index) samples, and time-weighted averages over them.

    A sample holds from its time until the next sample's (the last one indefinitely), so only
    changes need recording. Samples older than ``keep_ns`` before the latest are trimmed, except
    the one still in force at that horizon; past ``max_samples`` the oldest go. Once anything
    has been trimmed the history is exact only from its first sample's time
    (``complete_from_ns``), and :meth:`average` refuses earlier windows rather than average
    over part of them.
    """

    __slots__ = ("_times", "_values", "complete_from_ns", "keep_ns", "max_samples")

    def __init__(self, keep_ns: int, max_samples: int) -> None:
        invariant(keep_ns >= 0 and max_samples >= 2, "history bounds")
        self.keep_ns = keep_ns
        self.max_samples = max_samples
        self._times: list[int] = []
        self._values: list[int] = []
        self.complete_from_ns: int | None = None
        """None while nothing was trimmed: exact since the beginning (no index before it)."""

    def __len__(self) -> int:
        return len(self._times)

    def samples(self) -> list[tuple[int, int]]:
        """The retained samples, oldest first."""
        return list(zip(self._times, self._values, strict=True))

    def record(self, time_ns: int, index: int) -> None:
        """The index from ``time_ns`` on. Time never goes backwards; a second sample at the same
        time replaces the first (two blocks with one timestamp)."""
        times = self._times
        invariant(not times or time_ns >= times[-1], "index history time went backwards")
        if times and times[-1] == time_ns:
            self._values[-1] = index
        else:
            times.append(time_ns)
            self._values.append(index)
        self._trim(time_ns)

    def _trim(self, now_ns: int) -> None:
        in_force_at_horizon = bisect.bisect_right(self._times, now_ns - self.keep_ns) - 1
        drop = max(in_force_at_horizon, 0, len(self._times) - self.max_samples)
        if drop:
            del self._times[:drop]
            del self._values[:drop]
            self.complete_from_ns = self._times[0]

    def average(self, start_ns: int, end_ns: int) -> int | None:
        """Time-weighted average index over ``[start_ns, end_ns)``, floored.

        ``sum(index_i * overlap_i) // covered``: each sample weighs the nanoseconds it is in
        force inside the window (the one in force at ``start_ns`` counts from ``start_ns``),
        and ``covered`` is the part of the window with an index in force (from the first
        sample on). ``start_ns == end_ns`` gives the index in force at that instant. None when
        no index is in force anywhere in the window, or the window begins before
        ``complete_from_ns``.
        """
        invariant(start_ns <= end_ns, "an averaging window ends after it starts")
        times, values = self._times, self._values
        if self.complete_from_ns is not None and start_ns < self.complete_from_ns:
            return None
        first = bisect.bisect_right(times, start_ns) - 1
        if start_ns == end_ns:
            return values[first] if first >= 0 else None
        first = max(first, 0)
        if not times or times[first] >= end_ns:
            return None
        total = 0
        position = first
        while position < len(times) and times[position] < end_ns:
            begin = max(times[position], start_ns)
            until = times[position + 1] if position + 1 < len(times) else end_ns
            total += values[position] * (min(until, end_ns) - begin)
            position += 1
        return total // (end_ns - max(times[first], start_ns))


# --- aggregation (pure) -------------------------------------------------------------------------


def _median(ordered: Sequence[int]) -> int:
    """Median of sorted integers; for an even count the floor of the mean of the two middles."""
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) // 2


def _nearest_rank(ordered: Sequence[int], percent: int) -> int:
    """Nearest-rank percentile of sorted integers: the element of 1-based rank
    ``ceil(percent * n / 100)``."""
    return ordered[-(-percent * len(ordered) // 100) - 1]


def _without_outliers(reports: list[OracleReport], outlier_ppm: int) -> list[OracleReport]:
    """The reports within ``outlier_ppm`` of the median price ``m0``: dropped when
    ``|p - m0| * 10**6 > outlier_ppm * m0`` (exact integers; at the bound a report is kept)."""
    center = _median(sorted(report.price for report in reports))
    return [r for r in reports if abs(r.price - center) * PPM <= outlier_ppm * center]


def _price_and_confidence(reports: list[OracleReport]) -> tuple[int, int]:
    """Pyth's aggregation: each report votes ``p - c``, ``p``, ``p + c``; the index is the
    median of the votes, the confidence ``max(index - p25, p75 - index)`` with nearest-rank
    percentiles."""
    votes = sorted(
        vote for r in reports for vote in (r.price - r.confidence, r.price, r.price + r.confidence)
    )
    index = _median(votes)
    return index, max(index - _nearest_rank(votes, 25), _nearest_rank(votes, 75) - index)


def _median_surface(
    reports: list[OracleReport],
    previous: Mapping[int, tuple[int, ...]],
    quorum: int,
    now_ns: int,
) -> dict[int, tuple[int, ...]]:
    """Per-node medians of the vols of every live expiry reported by at least ``quorum`` of
    ``reports``; other live expiries keep their previous nodes; the nearest
    :data:`MAX_SURFACE_EXPIRIES` expiries are kept, in increasing order."""
    by_expiry: dict[int, list[tuple[int, ...]]] = {}
    for report in reports:
        for vol_slice in report.vols:
            if vol_slice.expiry_ns > now_ns:
                by_expiry.setdefault(vol_slice.expiry_ns, []).append(vol_slice.vols_ppm)
    nodes = {expiry: vols for expiry, vols in previous.items() if expiry > now_ns}
    for expiry, rows in by_expiry.items():
        if len(rows) >= quorum:
            nodes[expiry] = tuple(_median(sorted(column)) for column in zip(*rows, strict=True))
    return dict(sorted(nodes.items())[:MAX_SURFACE_EXPIRIES])


# --- state --------------------------------------------------------------------------------------


class OracleUpdate(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What one block's aggregation did, for the engine's events."""

    underlying: str
    index: int | None
    """The index in force after this block (the last good one while the breaker is open)."""
    confidence: int
    reporters: tuple[str, ...]
    """The reports aggregated (fresh and not outliers), in registry order; empty if none."""
    breaker_open: bool
    reason: str
    """A :class:`BreakerReason` while the breaker is open, else empty."""
    opened: bool
    """The breaker opened in this block."""
    closed: bool
    """The breaker closed in this block."""
    index_changed: bool


class OracleState:
    """The oracle of one underlying: latest report per reporter, index, breaker, vol nodes.

    Mutable and owned by the engine; every method takes the block time ``now_ns`` and nothing
    else from the outside world. Public attributes are for reading.
    """

    __slots__ = (
        "_latest",
        "_position",
        "_vol_nodes",
        "breaker_open",
        "breaker_opened_ns",
        "breaker_reason",
        "confidence",
        "domain",
        "history",
        "index",
        "params",
        "underlying",
        "verifier",
    )

    def __init__(
        self,
        underlying: str,
        params: OracleParams,
        domain: SigningDomain = DEFAULT_DOMAIN,
        verifier: ReportVerifier | None = None,
    ) -> None:
        self.underlying = underlying
        self.params = params
        self.domain = domain
        self.verifier = verifier if verifier is not None else ReportVerifier(domain)
        invariant(self.verifier.domain == domain, "the verifier checks this oracle's domain")
        self._position = {reporter: i for i, reporter in enumerate(params.reporters)}
        self._latest: dict[str, OracleReport] = {}
        self._vol_nodes: dict[int, tuple[int, ...]] = {}
        self.index: int | None = None
        self.confidence = 0
        self.breaker_open = True
        self.breaker_reason: str = BreakerReason.NO_PRICE.value
        self.breaker_opened_ns = 0
        """When the breaker last opened (0 at creation: no price yet)."""
        self.history = IndexHistory(
            params.settlement_window_ns + params.history_margin_ns, params.max_history
        )

    def reconfigure(self, params: OracleParams) -> None:
        """New rules from the next report and aggregation on (a parameter change): kept reports
        of reporters no longer registered are forgotten; a new surface grid forgets every kept
        report and vol node, which are on the old grid. The index, the breaker and the index
        history (under its new bounds) stay."""
        grid_changed = params.log_moneyness_ppm != self.params.log_moneyness_ppm
        self.params = params
        self._position = {reporter: i for i, reporter in enumerate(params.reporters)}
        if grid_changed:
            self._latest = {}
            self._vol_nodes = {}
        else:
            self._latest = {
                reporter: report
                for reporter, report in self._latest.items()
                if reporter in self._position
            }
        self.history.keep_ns = params.settlement_window_ns + params.history_margin_ns
        self.history.max_samples = params.max_history

    # -- reports -------------------------------------------------------------------------------

    def get_report(self, reporter: str) -> OracleReport | None:
        """The latest accepted report of ``reporter``, if any."""
        return self._latest.get(reporter)

    def submit(self, report: OracleReport, now_ns: int) -> None:
        """Verify ``report`` at block time ``now_ns`` and keep it as its reporter's latest.

        Checks in this order, each raising :class:`OracleRejection`: the underlying is this
        state's (``INVALID_ORACLE_REPORT``); the reporter is registered
        (``UNKNOWN_REPORTER``); every slice has one vol per node of the grid and expires after
        ``now_ns`` (``INVALID_ORACLE_REPORT``); ``timestamp_ns <= now_ns + max_future_ns``
        (``REPORT_FROM_FUTURE``); ``now_ns - timestamp_ns <= staleness_ns`` (``STALE_REPORT``);
        later than the reporter's kept report (``REPORT_NOT_NEWER``, which also stops replays);
        the signature recovers to ``account`` (``BAD_SIGNATURE``). The signature comes last
        because it is the one costly check (about 0.1 ms); a report failing an earlier check
        is refused whoever signed it. A rejected report changes nothing.
        """
        params = self.params
        if report.underlying != self.underlying:
            raise _invalid(f"a report on {report.underlying} sent to the {self.underlying} oracle")
        if report.account not in self._position:
            raise OracleRejection(
                OracleRejectCode.UNKNOWN_REPORTER,
                f"{report.account} is not a registered {self.underlying} reporter",
            )
        for vol_slice in report.vols:
            if len(vol_slice.vols_ppm) != len(params.log_moneyness_ppm):
                raise _invalid(
                    f"a slice has {len(vol_slice.vols_ppm)} vols; the surface has "
                    f"{len(params.log_moneyness_ppm)} nodes"
                )
            if vol_slice.expiry_ns <= now_ns:
                raise _invalid(f"slice expiry {vol_slice.expiry_ns} is not after {now_ns}")
        self._check_time(report, now_ns)
        if self.verifier.signer(report) != report.account:
            raise OracleRejection(
                OracleRejectCode.BAD_SIGNATURE,
                f"the signature is not {report.account}'s signature of this report",
            )
        self._latest[report.account] = report

    def _check_time(self, report: OracleReport, now_ns: int) -> None:
        params = self.params
        if report.timestamp_ns > now_ns + params.max_future_ns:
            raise OracleRejection(
                OracleRejectCode.REPORT_FROM_FUTURE,
                f"timestamp {report.timestamp_ns} is more than {params.max_future_ns} ns after "
                f"block time {now_ns}",
            )
        if now_ns - report.timestamp_ns > params.staleness_ns:
            raise OracleRejection(
                OracleRejectCode.STALE_REPORT,
                f"timestamp {report.timestamp_ns} is more than {params.staleness_ns} ns before "
                f"block time {now_ns}",
            )
        kept = self._latest.get(report.account)
        if kept is not None and report.timestamp_ns <= kept.timestamp_ns:
            raise OracleRejection(
                OracleRejectCode.REPORT_NOT_NEWER,
                f"timestamp {report.timestamp_ns} is not after {kept.timestamp_ns}, the "
                "reporter's latest",
            )

    # -- aggregation ---------------------------------------------------------------------------

    def aggregate(self, now_ns: int) -> OracleUpdate:
        """Aggregate the kept reports at block time ``now_ns``; once per block, after the
        oracle-report lane. Exact integer rules, in order:

        1. Fresh reports: each registered reporter's latest report with
           ``now_ns - timestamp_ns <= staleness_ns``, in registry order.
        2. Fewer than ``quorum`` fresh: breaker reason ``NO_QUORUM`` (``NO_PRICE`` while there
           has never been an index).
        3. ``m0`` = median of the fresh prices (sorted; for an even count the floor of the mean
           of the two middle prices). A report is dropped when
           ``|p - m0| * 10**6 > outlier_ppm * m0``. Fewer than ``quorum`` left: ``DISAGREEMENT``.
        4. Each kept report votes ``p - c``, ``p`` and ``p + c``. The votes are sorted; the
           index is their median (same rule as 3); ``p25`` and ``p75`` are nearest-rank
           percentiles, the vote of 1-based rank ``ceil(25 n / 100)`` and ``ceil(75 n / 100)``
           of the ``n`` votes; the confidence is ``max(index - p25, p75 - index)`` (>= 0).
        5. ``confidence * 10**6 > max_confidence_ppm * index``: ``CONFIDENCE_TOO_WIDE``.
        6. Otherwise index and confidence are set and the breaker closes if open. On any
           reason above the breaker opens (``breaker_opened_ns`` is set only when it was
           closed; the reason is the latest) and the last good index and confidence stay.
        7. Vols, whenever step 3 kept at least ``quorum`` reports (also under 5: the vols of
           agreeing reporters are not made wrong by a wide price band): for each expiry after
           ``now_ns`` reported (same ``expiry_ns``) by at least ``quorum`` kept reports, the
           per-node median of their vols (rule of 3); other expiries after ``now_ns`` keep
           their nodes; expiries at or before ``now_ns`` are dropped.

        Each change of the index is recorded in the history for :meth:`average_index`.
        """
        params = self.params
        fresh = [
            report
            for reporter in params.reporters
            if (report := self._latest.get(reporter)) is not None
            and now_ns - report.timestamp_ns <= params.staleness_ns
        ]
        kept: list[OracleReport] = []
        reason: BreakerReason | None = None
        if len(fresh) < params.quorum:
            reason = BreakerReason.NO_PRICE if self.index is None else BreakerReason.NO_QUORUM
        else:
            kept = _without_outliers(fresh, params.outlier_ppm)
            if len(kept) < params.quorum:
                kept, reason = [], BreakerReason.DISAGREEMENT
        self._vol_nodes = _median_surface(kept, self._vol_nodes, params.quorum, now_ns)
        if reason is None:
            index, confidence = _price_and_confidence(kept)
            if confidence * PPM > params.max_confidence_ppm * index:
                reason = BreakerReason.CONFIDENCE_TOO_WIDE
            else:
                return self._accept(index, confidence, kept, now_ns)
        return self._open(reason, kept, now_ns)

    def _accept(
        self, index: int, confidence: int, kept: list[OracleReport], now_ns: int
    ) -> OracleUpdate:
        changed = index != self.index
        if changed:
            self.history.record(now_ns, index)
        self.index, self.confidence = index, confidence
        closed = self.breaker_open
        self.breaker_open, self.breaker_reason = False, ""
        return self._update(kept, opened=False, closed=closed, index_changed=changed)

    def _open(self, reason: BreakerReason, kept: list[OracleReport], now_ns: int) -> OracleUpdate:
        opened = not self.breaker_open
        if opened:
            self.breaker_open, self.breaker_opened_ns = True, now_ns
        self.breaker_reason = reason.value
        return self._update(kept, opened=opened, closed=False, index_changed=False)

    def _update(
        self, kept: list[OracleReport], *, opened: bool, closed: bool, index_changed: bool
    ) -> OracleUpdate:
        return OracleUpdate(
            underlying=self.underlying,
            index=self.index,
            confidence=self.confidence,
            reporters=tuple(report.account for report in kept),
            breaker_open=self.breaker_open,
            reason=self.breaker_reason,
            opened=opened,
            closed=closed,
            index_changed=index_changed,
        )

    # -- reading -------------------------------------------------------------------------------

    def liquidations_paused(self, now_ns: int) -> bool:
        """Whether liquidations wait for the oracle at block time ``now_ns``.

        Always while there has never been an index (nothing to liquidate on). Otherwise while
        the breaker is open, for at most ``max_pause_ns`` after it opened: an untrustworthy
        price must not liquidate anyone, but a venue must not let losses run unbounded because
        an oracle is down, so after the maximum pause liquidations run on the last good index
        although the breaker stays open.
        """
        if self.index is None:
            return True
        return self.breaker_open and now_ns - self.breaker_opened_ns < self.params.max_pause_ns

    @property
    def vol_nodes(self) -> dict[int, tuple[int, ...]]:
        """Expiry (ns) -> median vols (ppm) at the log-moneyness nodes, expiries increasing."""
        return dict(self._vol_nodes)

    def average_index(self, start_ns: int, end_ns: int) -> int | None:
        """Time-weighted average index over ``[start_ns, end_ns)``, floored; see
        :meth:`IndexHistory.average`. While the breaker is open the last good index keeps
        counting: it is the index in force."""
        return self.history.average(start_ns, end_ns)


# --- option marks -------------------------------------------------------------------------------


def option_marks(
    index: int,
    vol_nodes: Mapping[int, Sequence[int]],
    log_moneyness_ppm: Sequence[int],
    now_ns: int,
    strikes: Sequence[int],
    expiries_ns: Sequence[int],
    is_call: Sequence[bool],
) -> list[int]:
    """Per-unit option marks in USDC minor units, bit-identical on every machine.

    ``index`` and ``strikes`` are minor units per unit of the underlying. The forward is the
    index (zero rates: USDC-margined options; the perpetual's basis is handled elsewhere).
    ``T = (expiry_ns - now_ns) / NANOS_PER_YEAR`` (int64 to float64, one correctly rounded
    division), ``k = log(K / F)`` by :func:`strikechain.pricing.detmath.log`; the total variance
    comes from the node surface of the live expiries (linear in total variance, flat beyond the
    nodes: :class:`~strikechain.pricing.surface.NodeSurface`), the vol is ``sqrt(w / T)`` and
    the price Black-76 in the deterministic mode. The price is floored to minor units, then
    clamped to the no-arbitrage bounds ``[intrinsic, F]`` (calls) or ``[intrinsic, K]`` (puts),
    which the float result can miss by a rounding.

    An option at or after its expiry is marked at intrinsic value (exact integers), and so is
    every option when no vol node is live: the venue never invents a vol.
    """
    count = len(strikes)
    invariant(len(expiries_ns) == count and len(is_call) == count, "one expiry and flag each")
    invariant(type(index) is int and 0 < index <= INT64_MAX, "the index is a positive int64")
    invariant(
        all(type(k) is int and 0 < k <= INT64_MAX for k in strikes), "strikes are positive int64"
    )
    calls = [bool(flag) for flag in is_call]
    intrinsic = [
        max(index - strike, 0) if call else max(strike - index, 0)
        for strike, call in zip(strikes, calls, strict=True)
    ]
    found = _live_vols(index, vol_nodes, log_moneyness_ppm, now_ns, strikes, expiries_ns)
    if found is None:
        return intrinsic
    live, strike, expiry, vol = found
    forward = float(index)
    call = np.asarray([calls[i] for i in live], dtype=np.bool_)
    prices = deterministic.black76(forward, strike, expiry, vol, call=call)
    marks = list(intrinsic)
    for i, price in zip(live, np.floor(prices).tolist(), strict=True):
        upper = index if calls[i] else strikes[i]
        marks[i] = min(max(int(price), intrinsic[i]), upper)
    return marks


def option_vols(
    index: int,
    vol_nodes: Mapping[int, Sequence[int]],
    log_moneyness_ppm: Sequence[int],
    now_ns: int,
    strikes: Sequence[int],
    expiries_ns: Sequence[int],
) -> list[float]:
    """The implied vol :func:`option_marks` prices each option at (NaN for an option at or
    after its expiry, or when no vol node is live): for the portfolio margin's scenarios,
    bit-identical on every machine like the marks."""
    out = [float("nan")] * len(strikes)
    found = _live_vols(index, vol_nodes, log_moneyness_ppm, now_ns, strikes, expiries_ns)
    if found is not None:
        live, _, _, vol = found
        for i, value in zip(live, vol.tolist(), strict=True):
            out[i] = value
    return out


_FloatArray = npt.NDArray[np.float64]


def _live_vols(
    index: int,
    vol_nodes: Mapping[int, Sequence[int]],
    log_moneyness_ppm: Sequence[int],
    now_ns: int,
    strikes: Sequence[int],
    expiries_ns: Sequence[int],
) -> tuple[list[int], _FloatArray, _FloatArray, _FloatArray] | None:
    """The options still live at ``now_ns`` (their positions), with their strikes, years to
    expiry and vols from the node surface; None when no option is live or no node is."""
    live = [i for i, expiry in enumerate(expiries_ns) if expiry > now_ns]
    nodes = sorted((e, tuple(v)) for e, v in vol_nodes.items() if e > now_ns)
    if not live or not nodes:
        return None
    invariant(
        all(len(vols) == len(log_moneyness_ppm) for _, vols in nodes), "one vol per node point"
    )
    strike = np.asarray([strikes[i] for i in live], dtype=np.int64).astype(np.float64)
    expiry = _years([expiries_ns[i] - now_ns for i in live])
    vol = _surface_vols(nodes, log_moneyness_ppm, now_ns, float(index), strike, expiry)
    return live, strike, expiry, vol


def _surface_vols(
    nodes: list[tuple[int, tuple[int, ...]]],
    log_moneyness_ppm: Sequence[int],
    now_ns: int,
    forward: float,
    strike: npt.NDArray[np.float64],
    expiry: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Vols from the node surface of the live expiries (linear in total variance, flat beyond
    the nodes) at log-moneyness ``log(K / F)``: ``sqrt(w / T)``."""
    surface = NodeSurface.from_vols(
        _years([e - now_ns for e, _ in nodes]),
        np.asarray(log_moneyness_ppm, dtype=np.float64) / PPM,
        np.asarray([vols for _, vols in nodes], dtype=np.float64) / PPM,
    )
    k = detmath.log(strike / forward)
    vol: npt.NDArray[np.float64] = np.sqrt(surface.interpolate_total_variance(expiry, k) / expiry)
    return vol


def _years(durations_ns: list[int]) -> npt.NDArray[np.float64]:
    """Durations in years: int64 to float64 (correctly rounded) over the exact float
    :data:`NANOS_PER_YEAR` (one correctly rounded division)."""
    ns = np.asarray(durations_ns, dtype=np.int64).astype(np.float64)
    out: npt.NDArray[np.float64] = ns / float(NANOS_PER_YEAR)
    return out
