"""Oracle: report validation, verification, aggregation, the breaker, vol nodes, TWAP, marks."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strikechain import pricing
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.oracle import (
    MAX_SURFACE_EXPIRIES,
    MAX_VOL_NODES,
    MAX_VOL_PPM,
    MAX_VOL_SLICES,
    NANOS_PER_YEAR,
    BreakerReason,
    IndexHistory,
    OracleParams,
    OracleRejectCode,
    OracleRejection,
    OracleReport,
    OracleState,
    OracleUpdate,
    VolSlice,
    option_marks,
    sign_report,
)
from strikechain.engine.signing import SigningDomain, address_of, keccak256
from strikechain.engine.units import NANOS_PER_DAY, NANOS_PER_SECOND
from strikechain.pricing.surface import NodeSurface

KEYS = tuple(keccak256(f"reporter {i}".encode()) for i in range(5))
REPORTERS = tuple(address_of(key) for key in KEYS)
OPERATOR_KEY = keccak256(b"operator")
T0 = 1_767_254_400_000_000_000  # 2026-01-01 08:00 UTC
USD = 1_000_000
BTC = 100_000 * USD
"""100,000 USDC per BTC, in minor units."""
GRID = (-400_000, -200_000, -100_000, 0, 100_000, 200_000, 400_000)
NODES = len(GRID)
WEEK = 7 * NANOS_PER_DAY
MONTH = 28 * NANOS_PER_DAY
STALENESS = 10 * NANOS_PER_SECOND
MAX_PAUSE = 300 * NANOS_PER_SECOND


def make_state(quorum: int = 3, reporters: int = 5, **params: Any) -> OracleState:
    return OracleState(
        "BTC", OracleParams(reporters=REPORTERS[:reporters], quorum=quorum, **params)
    )


def report(
    i: int,
    price: int = BTC,
    confidence: int = 10 * USD,
    *,
    timestamp_ns: int = T0,
    vols: tuple[VolSlice, ...] = (),
    key: bytes | None = None,
    underlying: str = "BTC",
) -> OracleReport:
    unsigned = OracleReport(
        account=REPORTERS[i],
        underlying=underlying,
        timestamp_ns=timestamp_ns,
        price=price,
        confidence=confidence,
        vols=vols,
    )
    return sign_report(unsigned, KEYS[i] if key is None else key)


def feed(
    state: OracleState, now_ns: int, prices: dict[int, int], confidence: int = 10 * USD
) -> OracleUpdate:
    """Each reporter i of ``prices`` reports at ``now_ns``; then the block aggregates."""
    for i, price in prices.items():
        state.submit(report(i, price, confidence, timestamp_ns=now_ns), now_ns)
    return state.aggregate(now_ns)


def rejected(code: OracleRejectCode, call: Any, *args: Any, **kwargs: Any) -> OracleRejection:
    with pytest.raises(OracleRejection) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code
    assert str(caught.value) == f"{code}: {caught.value.message}"
    return caught.value


# --- values -----------------------------------------------------------------------------------


def _fields(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "account": REPORTERS[0],
        "underlying": "BTC",
        "timestamp_ns": T0,
        "price": BTC,
        "confidence": 0,
        "vols": (VolSlice(T0 + WEEK, (500_000,) * NODES),),
    }
    values.update(changes)
    return values


def _slices(count: int, nodes: int = NODES) -> tuple[VolSlice, ...]:
    return tuple(VolSlice(T0 + (i + 1) * NANOS_PER_DAY, (500_000,) * nodes) for i in range(count))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"account": REPORTERS[0].upper().replace("0X", "0x")}, id="mixed case"),
        pytest.param({"account": "reporter"}, id="not an address"),
        pytest.param({"underlying": "btc"}, id="lowercase underlying"),
        pytest.param({"underlying": ""}, id="empty underlying"),
        pytest.param({"underlying": "A" * 13}, id="long underlying"),
        pytest.param({"underlying": "123"}, id="digits only"),
        pytest.param({"timestamp_ns": -1}, id="negative time"),
        pytest.param({"timestamp_ns": 1.5}, id="float time"),
        pytest.param({"timestamp_ns": 2**63}, id="time beyond int64"),
        pytest.param({"price": 0}, id="zero price"),
        pytest.param({"price": -BTC}, id="negative price"),
        pytest.param({"price": True}, id="bool price"),
        pytest.param({"price": "100000"}, id="text price"),
        pytest.param({"confidence": -1}, id="negative confidence"),
        pytest.param({"confidence": BTC}, id="confidence equal to price"),
        pytest.param({"vols": [VolSlice(T0 + WEEK, (1,))]}, id="vols a list"),
        pytest.param({"vols": ((T0 + WEEK, (1,)),)}, id="slice not a VolSlice"),
        pytest.param({"vols": _slices(2)[::-1]}, id="decreasing expiries"),
        pytest.param({"vols": (_slices(1)[0], _slices(1)[0])}, id="repeated expiry"),
        pytest.param({"vols": _slices(MAX_VOL_SLICES + 1)}, id="too many slices"),
        pytest.param(
            {"vols": (_slices(1)[0], VolSlice(T0 + MONTH, (500_000,)))}, id="node counts differ"
        ),
        pytest.param({"signature": b"\x01" * 64}, id="short signature"),
        pytest.param({"signature": "00" * 65}, id="text signature"),
        pytest.param({"priority_fee": 0.5}, id="float fee"),
    ],
)
def test_invalid_report_values(changes: dict[str, Any]) -> None:
    rejected(OracleRejectCode.INVALID_ORACLE_REPORT, OracleReport, **_fields(**changes))


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param((T0, (0,) * NODES), id="zero vol"),
        pytest.param((T0, (-1,) * NODES), id="negative vol"),
        pytest.param((T0, (MAX_VOL_PPM + 1,)), id="vol above the maximum"),
        pytest.param((T0, ()), id="no nodes"),
        pytest.param((T0, (500_000,) * (MAX_VOL_NODES + 1)), id="too many nodes"),
        pytest.param((T0, [500_000]), id="vols a list"),
        pytest.param((T0, (0.5,)), id="float vol"),
        pytest.param((0, (500_000,)), id="zero expiry"),
        pytest.param((float(T0), (500_000,)), id="float expiry"),
        pytest.param((T0 + 1, (500_000,)), id="expiry not a whole second"),
    ],
)
def test_invalid_vol_slices(arguments: tuple[Any, Any]) -> None:
    rejected(OracleRejectCode.INVALID_ORACLE_REPORT, VolSlice, *arguments)


def test_bounds_are_accepted() -> None:
    OracleReport(**_fields(confidence=BTC - 1, vols=_slices(MAX_VOL_SLICES, MAX_VOL_NODES)))
    VolSlice(T0, (1, MAX_VOL_PPM))


def test_reports_round_trip_through_msgspec() -> None:
    signed = report(0, vols=_slices(2))
    for encode, decode in (
        (msgspec.json.encode, msgspec.json.decode),
        (msgspec.msgpack.encode, msgspec.msgpack.decode),
    ):
        assert decode(encode(signed), type=OracleReport) == signed
    assert msgspec.json.decode(msgspec.json.encode(signed))["type"] == "oracle"


def test_decoding_validates() -> None:
    encoded = msgspec.json.encode(report(0)).replace(b'"price":100000000000', b'"price":0')
    rejected(
        OracleRejectCode.INVALID_ORACLE_REPORT, msgspec.json.decode, encoded, type=OracleReport
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"reporters": ()},
        {"reporters": (REPORTERS[0], REPORTERS[0])},
        {"reporters": ("0xABC",)},
        {"reporters": list(REPORTERS)},
        {"quorum": 0},
        {"quorum": 6},
        {"staleness_ns": 0},
        {"max_future_ns": -1},
        {"outlier_ppm": 0},
        {"outlier_ppm": 1_000_000},
        {"max_confidence_ppm": 0},
        {"max_pause_ns": 0},
        {"log_moneyness_ppm": ()},
        {"log_moneyness_ppm": (0, 0)},
        {"log_moneyness_ppm": (100_000, 0)},
        {"log_moneyness_ppm": (0.0,)},
        {"log_moneyness_ppm": tuple(range(MAX_VOL_NODES + 1))},
        {"settlement_window_ns": 0},
        {"history_margin_ns": -1},
        {"max_history": 1},
    ],
)
def test_params_relations_are_asserted(changes: dict[str, Any]) -> None:
    values: dict[str, Any] = {"reporters": REPORTERS, "quorum": 3}
    values.update(changes)
    with pytest.raises(InvariantViolation):
        OracleParams(**values)


# --- submission -------------------------------------------------------------------------------


def test_accepted_report_is_kept() -> None:
    state = make_state()
    signed = report(0)
    state.submit(signed, T0)
    assert state.get_report(REPORTERS[0]) == signed
    assert state.get_report(REPORTERS[1]) is None


def test_unknown_reporter() -> None:
    state = make_state(quorum=2, reporters=2)
    rejected(OracleRejectCode.UNKNOWN_REPORTER, state.submit, report(2), T0)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda r: msgspec.structs.replace(r, signature=b""), id="unsigned"),
        pytest.param(lambda r: sign_report(r, OPERATOR_KEY), id="operator's key"),
        pytest.param(lambda r: sign_report(r, KEYS[1]), id="another reporter's key"),
        pytest.param(lambda r: msgspec.structs.replace(r, price=r.price * 24), id="price changed"),
        pytest.param(lambda r: msgspec.structs.replace(r, confidence=1), id="confidence changed"),
        pytest.param(lambda r: msgspec.structs.replace(r, vols=_slices(1)), id="vols changed"),
        pytest.param(
            lambda r: sign_report(r, KEYS[0], SigningDomain(chain_id=1)), id="other chain"
        ),
        pytest.param(
            lambda r: msgspec.structs.replace(r, signature=report(1).signature),
            id="signature of another report",
        ),
    ],
)
def test_a_forged_report_is_refused(forge: Any) -> None:
    """Whoever sequences blocks cannot put a price in a reporter's name."""
    state = make_state()
    rejected(OracleRejectCode.BAD_SIGNATURE, state.submit, forge(report(0)), T0)
    assert state.get_report(REPORTERS[0]) is None


def test_priority_fee_is_not_signed() -> None:
    state = make_state()
    state.submit(msgspec.structs.replace(report(0), priority_fee=7), T0)


def test_staleness_at_submission() -> None:
    state = make_state()
    state.submit(report(0, timestamp_ns=T0 - STALENESS), T0)
    rejected(
        OracleRejectCode.STALE_REPORT, state.submit, report(1, timestamp_ns=T0 - STALENESS - 1), T0
    )


def test_reports_from_the_future() -> None:
    state = make_state()
    max_future = 2 * NANOS_PER_SECOND
    state.submit(report(0, timestamp_ns=T0 + max_future), T0)
    rejected(
        OracleRejectCode.REPORT_FROM_FUTURE,
        state.submit,
        report(1, timestamp_ns=T0 + max_future + 1),
        T0,
    )


def test_only_newer_reports_replace() -> None:
    state = make_state()
    first = report(0, BTC, timestamp_ns=T0)
    state.submit(first, T0)
    rejected(OracleRejectCode.REPORT_NOT_NEWER, state.submit, first, T0 + 1)  # a replay
    rejected(
        OracleRejectCode.REPORT_NOT_NEWER, state.submit, report(0, 2 * BTC, timestamp_ns=T0 - 1), T0
    )
    assert state.get_report(REPORTERS[0]) == first
    newer = report(0, 2 * BTC, timestamp_ns=T0 + 1)
    state.submit(newer, T0 + 1)
    assert state.get_report(REPORTERS[0]) == newer


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: report(0, underlying="ETH"), id="other underlying"),
        pytest.param(
            lambda: report(0, vols=(VolSlice(T0 + WEEK, (500_000,) * (NODES - 1)),)),
            id="node count",
        ),
        pytest.param(lambda: report(0, vols=(VolSlice(T0, (500_000,) * NODES),)), id="expired"),
    ],
)
def test_reports_that_do_not_fit_this_oracle(bad: Any) -> None:
    state = make_state()
    rejected(OracleRejectCode.INVALID_ORACLE_REPORT, state.submit, bad(), T0)
    assert state.get_report(REPORTERS[0]) is None


# --- aggregation ------------------------------------------------------------------------------


def test_a_first_index() -> None:
    state = make_state()
    assert state.index is None
    assert state.breaker_open
    assert state.breaker_reason == BreakerReason.NO_PRICE
    update = feed(state, T0, {0: BTC, 1: BTC + USD, 2: BTC + 2 * USD})
    # Votes (USD over 99,990): 0 1 2 10 11 12 20 21 22; median 11, p25 2, p75 20: 9 USD.
    assert update == OracleUpdate(
        underlying="BTC",
        index=BTC + USD,
        confidence=9 * USD,
        reporters=REPORTERS[:3],
        breaker_open=False,
        reason="",
        opened=False,
        closed=True,
        index_changed=True,
    )
    assert (state.index, state.confidence, state.breaker_open) == (BTC + USD, 9 * USD, False)


def test_reporters_are_visited_in_registry_order() -> None:
    state = make_state()
    for i in (4, 2, 0):
        state.submit(report(i, timestamp_ns=T0), T0)
    assert state.aggregate(T0).reporters == (REPORTERS[0], REPORTERS[2], REPORTERS[4])


def test_quorum() -> None:
    state = make_state(quorum=3)
    update = feed(state, T0, {0: BTC, 1: BTC})
    assert (update.index, update.breaker_open, update.reason) == (None, True, "NO_PRICE")
    assert not update.opened  # open since creation
    assert feed(state, T0 + 1, {2: BTC}).index == BTC
    # Two reporters fall silent; the third reports on: no quorum once their reports go stale.
    update = feed(state, T0 + 1 + STALENESS + 1, {2: 2 * BTC})
    assert (update.index, update.breaker_open, update.reason) == (BTC, True, "NO_QUORUM")
    assert update.opened


def test_staleness_bound_at_aggregation() -> None:
    """A report exactly ``staleness_ns`` old is fresh; one nanosecond older is not."""
    state = make_state()
    feed(state, T0, {0: BTC, 1: BTC, 2: BTC})
    at_bound = state.aggregate(T0 + STALENESS)
    assert not at_bound.breaker_open
    assert len(at_bound.reporters) == 3
    past = state.aggregate(T0 + STALENESS + 1)
    assert (past.breaker_open, past.reason, past.reporters) == (True, "NO_QUORUM", ())


def test_a_pumped_report_does_not_move_the_index() -> None:
    """Mango Markets, October 2022: one source at 24x. Dropped as an outlier."""
    honest = {0: BTC - 3 * USD, 1: BTC, 2: BTC + 5 * USD, 3: BTC + 6 * USD}
    reference = feed(make_state(), T0, honest)
    state = make_state()
    update = feed(state, T0, {**honest, 4: 24 * BTC})
    assert update.index == reference.index
    assert update.confidence == reference.confidence
    assert REPORTERS[4] not in update.reporters
    assert not update.breaker_open


def test_outlier_band_is_inclusive() -> None:
    band = BTC * 20_000 // 1_000_000  # 2%
    state = make_state(quorum=3)
    update = feed(state, T0, {0: BTC - band, 1: BTC, 2: BTC + band})
    assert len(update.reporters) == 3
    update = feed(state, T0 + 1, {0: BTC - band - 1, 1: BTC, 2: BTC + band})
    assert (update.breaker_open, update.reason) == (True, "DISAGREEMENT")


def test_median_of_an_even_count_is_floored() -> None:
    state = make_state(quorum=2, reporters=2)
    assert feed(state, T0, {0: BTC, 1: BTC + 1}, confidence=0).index == BTC


def test_pyth_confidence_by_hand() -> None:
    """Four reports (price, confidence): (1000, 10), (1001, 3), (1004, 1), (1010, 20).

    Votes p-c, p, p+c sorted: 990 990 998 1000 1001 1003 | 1004 1004 1005 1010 1010 1030.
    Index: floor((1003 + 1004) / 2) = 1003. Nearest ranks of 12 votes: p25 is rank 3 (998),
    p75 rank 9 (1005). Confidence: max(1003 - 998, 1005 - 1003) = 5.
    """
    state = make_state(quorum=3, reporters=4, max_confidence_ppm=10_000)
    for i, (price, confidence) in enumerate(((1000, 10), (1001, 3), (1004, 1), (1010, 20))):
        state.submit(report(i, price, confidence), T0)
    update = state.aggregate(T0)
    assert (update.index, update.confidence, update.breaker_open) == (1003, 5, False)


def test_a_single_report_keeps_its_confidence() -> None:
    state = make_state(quorum=1, reporters=1)
    update = feed(state, T0, {0: BTC}, confidence=25 * USD)
    assert (update.index, update.confidence) == (BTC, 25 * USD)


def test_breaker_on_each_reason_keeps_the_last_good_index() -> None:
    state = make_state(quorum=3)
    good = feed(state, T0, {0: BTC, 1: BTC, 2: BTC})
    assert not good.breaker_open

    wide = 2 * BTC * 5_000 // 1_000_000 + 1  # just above 0.5% of the price
    update = feed(state, T0 + 1, {0: 2 * BTC, 1: 2 * BTC, 2: 2 * BTC}, confidence=wide)
    assert (update.reason, update.opened, update.index, update.confidence) == (
        "CONFIDENCE_TOO_WIDE",
        True,
        BTC,
        10 * USD,
    )
    assert state.breaker_opened_ns == T0 + 1

    update = feed(state, T0 + 2, {0: BTC, 1: 2 * BTC, 2: 3 * BTC})
    assert (update.reason, update.opened, update.index) == ("DISAGREEMENT", False, BTC)
    assert update.reporters == ()

    update = state.aggregate(T0 + 2 + STALENESS + 1)
    assert (update.reason, update.opened, update.index) == ("NO_QUORUM", False, BTC)
    assert state.breaker_opened_ns == T0 + 1  # still the first opening

    back = feed(state, T0 + 3 * STALENESS, {0: BTC + USD, 1: BTC + USD, 2: BTC + USD})
    assert (back.breaker_open, back.closed, back.reason, back.index) == (
        False,
        True,
        "",
        BTC + USD,
    )
    assert state.breaker_reason == ""


def test_confidence_bound_is_inclusive() -> None:
    state = make_state(quorum=1, reporters=1)
    at_bound = BTC * 5_000 // 1_000_000
    assert not feed(state, T0, {0: BTC}, confidence=at_bound).breaker_open


def test_index_changed_only_on_a_new_value() -> None:
    state = make_state(quorum=1, reporters=1)
    assert feed(state, T0, {0: BTC}).index_changed
    assert not feed(state, T0 + 1, {0: BTC}).index_changed
    assert feed(state, T0 + 2, {0: BTC + 1}).index_changed


def test_liquidations_pause_for_at_most_the_maximum() -> None:
    state = make_state(quorum=3)
    assert state.liquidations_paused(T0)  # no price ever
    feed(state, T0, {0: BTC, 1: BTC, 2: BTC})
    assert not state.liquidations_paused(T0)
    opened_at = T0 + STALENESS + 1
    assert state.aggregate(opened_at).opened
    assert state.liquidations_paused(opened_at)
    assert state.liquidations_paused(opened_at + MAX_PAUSE - 1)
    assert not state.liquidations_paused(opened_at + MAX_PAUSE)
    assert state.breaker_open  # the breaker stays open; only the pause ends
    assert state.index == BTC


def test_no_price_pauses_liquidations_forever() -> None:
    state = make_state()
    state.aggregate(T0)
    assert state.liquidations_paused(T0 + 10 * MAX_PAUSE)


# --- vol nodes --------------------------------------------------------------------------------


def _vols(*values: int) -> tuple[int, ...]:
    return tuple(values) + (500_000,) * (NODES - len(values))


def test_vol_node_medians() -> None:
    state = make_state(quorum=3, reporters=4)
    near, far = T0 + WEEK, T0 + MONTH
    rows = {
        0: (VolSlice(near, _vols(600_000, 1)), VolSlice(far, _vols(700_000))),
        1: (VolSlice(near, _vols(620_000, 4)), VolSlice(far, _vols(710_000))),
        2: (VolSlice(near, _vols(640_000, 2)),),
        3: (VolSlice(near, _vols(999_000, 9)),),
    }
    for i, vols in rows.items():
        state.submit(report(i, vols=vols), T0)
    state.aggregate(T0)
    # Four rows at the near expiry: floor of the mean of the middle two; two at the far: no
    # quorum, no node.
    assert state.vol_nodes == {near: _vols(630_000, 3)}

    # Later the far expiry reaches quorum; the near one, without quorum now, keeps its nodes.
    for i in (0, 1, 2):
        state.submit(report(i, timestamp_ns=T0 + 1, vols=(VolSlice(far, _vols(800_000)),)), T0 + 1)
    state.aggregate(T0 + 1)
    assert state.vol_nodes == {near: _vols(630_000, 3), far: _vols(800_000)}
    assert list(state.vol_nodes) == [near, far]

    # Expired expiries go at the first aggregation at or after them, even without reports.
    state.aggregate(near)
    assert list(state.vol_nodes) == [far]


def test_vol_nodes_of_outliers_are_not_counted() -> None:
    state = make_state(quorum=2, reporters=3)
    slice_ = (VolSlice(T0 + WEEK, _vols(600_000)),)
    state.submit(report(0, BTC, vols=slice_), T0)
    state.submit(report(1, BTC, vols=slice_), T0)
    state.submit(report(2, 24 * BTC, vols=(VolSlice(T0 + WEEK, _vols(9_000_000)),)), T0)
    state.aggregate(T0)
    assert state.vol_nodes == {T0 + WEEK: _vols(600_000)}


def test_the_surface_keeps_the_nearest_expiries() -> None:
    state = make_state(quorum=1, reporters=3)
    for i in range(3):
        vols = tuple(
            VolSlice(T0 + (i * MAX_VOL_SLICES + j + 1) * NANOS_PER_DAY, _vols())
            for j in range(MAX_VOL_SLICES)
        )
        state.submit(report(i, vols=vols), T0)
    state.aggregate(T0)
    expiries = list(state.vol_nodes)
    assert len(expiries) == MAX_SURFACE_EXPIRIES
    assert expiries == [T0 + (n + 1) * NANOS_PER_DAY for n in range(MAX_SURFACE_EXPIRIES)]


# --- index history and TWAP -------------------------------------------------------------------


def test_twap_by_hand() -> None:
    history = IndexHistory(keep_ns=10**9, max_samples=100)
    history.record(10, 100)
    history.record(20, 200)
    history.record(30, 400)
    assert history.average(0, 10) is None  # no index in force yet
    assert history.average(10, 20) == 100
    assert history.average(15, 25) == 150  # 5 ns at 100, 5 at 200
    assert history.average(0, 20) == 100  # counted only where an index was in force
    assert history.average(10, 40) == (100 * 10 + 200 * 10 + 400 * 10) // 30
    assert history.average(25, 31) == (200 * 5 + 400) // 6  # floored: 233
    assert history.average(35, 1_000) == 400  # the last sample holds on
    assert history.average(20, 20) == 200
    assert history.average(5, 5) is None


def test_same_time_sample_replaces() -> None:
    history = IndexHistory(keep_ns=10**9, max_samples=100)
    history.record(10, 100)
    history.record(10, 150)
    assert history.samples() == [(10, 150)]
    with pytest.raises(InvariantViolation):
        history.record(9, 1)
    with pytest.raises(InvariantViolation):
        history.average(11, 10)


def _brute_force(samples: list[tuple[int, int]], start: int, end: int) -> int | None:
    in_force = dict(samples)  # a later sample at one time replaces the earlier one
    values = []
    for moment in range(start, end):
        times = [t for t in in_force if t <= moment]
        if times:
            values.append(in_force[max(times)])
    return sum(values) // len(values) if values else None


samples_strategy = st.lists(
    st.tuples(st.integers(0, 6), st.integers(1, 1_000)), min_size=0, max_size=12
).map(
    lambda steps: [
        (sum(gap for gap, _ in steps[: i + 1]), index) for i, (_, index) in enumerate(steps)
    ]
)


@settings(max_examples=150)
@given(samples_strategy, st.integers(0, 80), st.integers(1, 40))
def test_twap_matches_a_per_nanosecond_average(
    samples: list[tuple[int, int]], start: int, length: int
) -> None:
    history = IndexHistory(keep_ns=10**6, max_samples=1_000)
    for time_ns, index in samples:
        history.record(time_ns, index)
    assert history.average(start, start + length) == _brute_force(samples, start, start + length)


@settings(max_examples=150)
@given(
    samples_strategy,
    st.integers(0, 80),
    st.integers(1, 40),
    st.integers(0, 30),
    st.integers(2, 6),
)
def test_a_trimmed_history_is_exact_or_refuses(
    samples: list[tuple[int, int]], start: int, length: int, keep_ns: int, max_samples: int
) -> None:
    history = IndexHistory(keep_ns=keep_ns, max_samples=max_samples)
    for time_ns, index in samples:
        history.record(time_ns, index)
    assert len(history) <= max_samples
    if samples:
        assert history.samples()[-1][0] == samples[-1][0]
    average = history.average(start, start + length)
    complete = history.complete_from_ns is None or start >= history.complete_from_ns
    assert (average is None) == (
        not complete or _brute_force(samples, start, start + length) is None
    )
    if complete:
        assert average == _brute_force(samples, start, start + length)


def test_history_keeps_the_sample_in_force_at_its_horizon() -> None:
    history = IndexHistory(keep_ns=100, max_samples=100)
    for time_ns in range(0, 500, 30):
        history.record(time_ns, time_ns)
    # Latest 480; horizon 380; the sample in force there is the one of 360.
    assert history.samples()[0] == (360, 360)
    assert history.complete_from_ns == 360
    assert history.average(370, 400) == (360 * 20 + 390 * 10) // 30
    assert history.average(359, 400) is None


def test_average_index_through_the_state() -> None:
    state = make_state(quorum=1, reporters=1)
    second = NANOS_PER_SECOND
    feed(state, T0, {0: BTC})
    feed(state, T0 + second, {0: BTC + 300})
    state.aggregate(T0 + 2 * second)  # unchanged index: nothing recorded
    feed(state, T0 + 3 * second, {0: BTC + 600})
    assert len(state.history) == 3
    assert state.average_index(T0, T0 + 4 * second) == BTC + (300 * 2 + 600) // 4
    assert state.average_index(T0 - second, T0) is None
    # An open breaker keeps the last good index in force, and it keeps counting.
    state.aggregate(T0 + 3 * second + STALENESS + 1)
    assert state.breaker_open
    assert state.average_index(T0 + 3 * second, T0 + 60 * second) == BTC + 600


# --- option marks -----------------------------------------------------------------------------

SURFACE = {
    T0 + WEEK: (820_000, 700_000, 640_000, 600_000, 590_000, 610_000, 680_000),
    T0 + MONTH: (760_000, 680_000, 630_000, 590_000, 580_000, 595_000, 640_000),
    T0 + 3 * MONTH: (720_000, 660_000, 620_000, 580_000, 570_000, 585_000, 620_000),
}
STRIKES = [60_000, 80_000, 95_000, 100_000, 105_000, 120_000, 150_000, 250_000]


def _option_grid() -> tuple[list[int], list[int], list[bool]]:
    expiries = [T0 + NANOS_PER_DAY, T0 + WEEK, T0 + 2 * WEEK, T0 + MONTH, T0 + 6 * MONTH]
    strikes, expiries_ns, calls = [], [], []
    for expiry in expiries:
        for strike in STRIKES:
            for call in (True, False):
                strikes.append(strike * USD)
                expiries_ns.append(expiry)
                calls.append(call)
    return strikes, expiries_ns, calls


def _fast_prices(
    index: int,
    nodes: dict[int, tuple[int, ...]],
    strikes: list[int],
    expiries: list[int],
    calls: list[bool],
    now_ns: int,
) -> np.ndarray:
    """The same model in the fast (libm) mode, written independently of option_marks."""
    node_expiries = sorted(nodes)
    surface = NodeSurface.from_vols(
        [(e - now_ns) / NANOS_PER_YEAR for e in node_expiries],
        [k / 1e6 for k in GRID],
        [[v / 1e6 for v in nodes[e]] for e in node_expiries],
    )
    T = np.array([(e - now_ns) / NANOS_PER_YEAR for e in expiries])
    K = np.array(strikes, dtype=float)
    k = np.log(K / index)
    vol = np.sqrt(surface.interpolate_total_variance(T, k) / T)
    return pricing.black76(float(index), K, T, vol, call=np.array(calls))


def test_marks_agree_with_the_fast_mode() -> None:
    strikes, expiries, calls = _option_grid()
    marks = option_marks(BTC, SURFACE, GRID, T0, strikes, expiries, calls)
    fast = _fast_prices(BTC, SURFACE, strikes, expiries, calls, T0)
    assert all(type(mark) is int for mark in marks)
    for mark, price in zip(marks, fast.tolist(), strict=True):
        assert price * (1 - 1e-12) - 1 <= mark <= price * (1 + 1e-12)


@settings(max_examples=60)
@given(
    index=st.integers(1_000 * USD, 1_000_000 * USD),
    strike_ratio=st.floats(0.3, 3.0),
    expiry_ns=st.integers(T0 + 1, T0 + 400 * NANOS_PER_DAY),
    vol_ppm=st.integers(50_000, 3_000_000),
    call=st.booleans(),
)
def test_marks_agree_with_the_fast_mode_anywhere(
    index: int, strike_ratio: float, expiry_ns: int, vol_ppm: int, call: bool
) -> None:
    nodes = {T0 + MONTH: (vol_ppm,) * NODES, T0 + 6 * MONTH: (vol_ppm + 10_000,) * NODES}
    strike = max(1, int(index * strike_ratio))
    [mark] = option_marks(index, nodes, GRID, T0, [strike], [expiry_ns], [call])
    [price] = _fast_prices(index, nodes, [strike], [expiry_ns], [call], T0).tolist()
    assert price * (1 - 1e-12) - 1 <= mark <= price * (1 + 1e-12)
    intrinsic = max(index - strike, 0) if call else max(strike - index, 0)
    assert intrinsic <= mark <= (index if call else strike)


GOLDEN_MARKS = [
    40012345678,
    0,
    20012345678,
    0,
    5089125496,
    76779818,
    1259209609,
    1246863931,
    81050416,
    5068704738,
    2,
    19987654324,
    0,
    49987654322,
    0,
    149987654322,
    40012351791,
    6113,
    20049291763,
    36946085,
    6429959873,
    1417614195,
    3320559219,
    3308213541,
    1446156297,
    6433810619,
    49016358,
    20036670680,
    20471,
    49987674793,
    0,
    149987654322,
    40013623383,
    1277705,
    20275077468,
    262731790,
    7603024160,
    2590678482,
    4640216734,
    4627871056,
    2630157197,
    7617811519,
    328088604,
    20315742926,
    3280409,
    49990934731,
    0,
    149987654322,
    40052997343,
    40651665,
    21031302056,
    1018956378,
    9380485027,
    4368139349,
    6519097766,
    6506752088,
    4422170726,
    9409825048,
    1205227196,
    21192881518,
    82385997,
    50070040319,
    596,
    149987654918,
    42843397994,
    2831052316,
    28002430403,
    7990084725,
    18378511809,
    13366166131,
    15605871810,
    15593526132,
    13484167625,
    18471821947,
    9003683265,
    28991337587,
    4534528577,
    54522182899,
    339787384,
    150327441706,
]
"""Marks of ``_option_grid`` at index 100,012.345678 and a block time 0.123456789 s after T0:
(call, put) pairs per strike of ``STRIKES``, per expiry of 1 day, 1, 2 and 4 weeks, 24 weeks."""


def test_marks_golden() -> None:
    """Exact integers: a platform whose arithmetic differed would show here."""
    strikes, expiries, calls = _option_grid()
    assert (
        option_marks(BTC + 12_345_678, SURFACE, GRID, T0 + 123_456_789, strikes, expiries, calls)
        == GOLDEN_MARKS
    )


def test_marks_do_not_depend_on_the_batch() -> None:
    strikes, expiries, calls = _option_grid()
    together = option_marks(BTC, SURFACE, GRID, T0, strikes, expiries, calls)
    alone = [
        option_marks(BTC, SURFACE, GRID, T0, [k], [e], [c])[0]
        for k, e, c in zip(strikes, expiries, calls, strict=True)
    ]
    reversed_ = option_marks(BTC, SURFACE, GRID, T0, strikes[::-1], expiries[::-1], calls[::-1])
    assert together == alone == reversed_[::-1]


def test_intrinsic_at_and_after_expiry() -> None:
    strikes = [90_000 * USD, 110_000 * USD, 90_000 * USD, 110_000 * USD]
    calls = [True, True, False, False]
    for expiry in (T0, T0 - 1):
        marks = option_marks(BTC, SURFACE, GRID, T0, strikes, [expiry] * 4, calls)
        assert marks == [10_000 * USD, 0, 0, 10_000 * USD]


def test_no_vol_nodes_means_intrinsic() -> None:
    """The venue never invents a vol."""
    strikes = [90_000 * USD, 110_000 * USD]
    expiries = [T0 + WEEK] * 2
    assert option_marks(BTC, {}, GRID, T0, strikes, expiries, [True, False]) == [
        10_000 * USD,
        10_000 * USD,
    ]
    expired_nodes = {T0: SURFACE[T0 + WEEK]}
    assert option_marks(BTC, expired_nodes, GRID, T0, strikes, expiries, [True, True]) == [
        10_000 * USD,
        0,
    ]


def test_marks_from_the_oracle_state() -> None:
    state = make_state(quorum=1, reporters=1)
    vols = tuple(VolSlice(expiry, nodes) for expiry, nodes in SURFACE.items())
    state.submit(report(0, vols=vols), T0)
    state.aggregate(T0)
    assert state.index is not None
    strikes, expiries, calls = _option_grid()
    assert option_marks(
        state.index, state.vol_nodes, state.params.log_moneyness_ppm, T0, strikes, expiries, calls
    ) == option_marks(BTC, SURFACE, GRID, T0, strikes, expiries, calls)


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param((0, [BTC], [T0 + WEEK], [True]), id="zero index"),
        pytest.param((BTC, [0], [T0 + WEEK], [True]), id="zero strike"),
        pytest.param((BTC, [BTC], [T0 + WEEK, T0], [True]), id="lengths differ"),
        pytest.param((BTC, [1.5], [T0 + WEEK], [True]), id="float strike"),
    ],
)
def test_marks_refuse_impossible_inputs(arguments: tuple[Any, Any, Any, Any]) -> None:
    index, strikes, expiries, calls = arguments
    with pytest.raises(InvariantViolation):
        option_marks(index, SURFACE, GRID, T0, strikes, expiries, calls)


def test_year_is_exact_in_float() -> None:
    assert float(NANOS_PER_YEAR) == NANOS_PER_YEAR
    assert math.isclose(NANOS_PER_YEAR / NANOS_PER_DAY, 365)
