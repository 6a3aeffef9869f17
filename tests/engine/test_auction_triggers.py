"""Auction triggers: long-block thresholds, price-monitoring bands, the price history ring and
the per-market auction state machine."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strikechain.engine.auction_triggers import (
    DEFAULT_AUCTION_PARAMS,
    PPM,
    AuctionParams,
    AuctionReason,
    AuctionState,
    PriceHistory,
    TradingMode,
    Transition,
    TransitionKind,
    apply_transition,
    auction_due,
    breaches,
    long_block_auction_ns,
    on_auction_end,
    on_block,
    on_trade_attempt,
    outside_band,
)
from strikechain.engine.invariant import InvariantViolation

S = 1_000_000_000
MINUTE = 60 * S
HOUR = 60 * MINUTE
T0 = 1_700_000_000 * S
PRICE = 100_000
PARAMS = DEFAULT_AUCTION_PARAMS

# -- parameters ----------------------------------------------------------------------------------


def test_defaults() -> None:
    assert PARAMS.long_block_thresholds_ns == (
        (10 * S, MINUTE),
        (MINUTE, 5 * MINUTE),
        (10 * MINUTE, HOUR),
    )
    assert PARAMS.price_monitoring_bands == ((MINUTE, 20_000), (10 * MINUTE, 50_000))
    assert PARAMS.price_monitoring_auction_ns == MINUTE
    assert PARAMS.extend_once


@pytest.mark.parametrize(
    "fields",
    [
        {"long_block_thresholds_ns": ((MINUTE, MINUTE), (10 * S, MINUTE))},  # gaps not sorted
        {"long_block_thresholds_ns": ((10 * S, MINUTE), (10 * S, 2 * MINUTE))},  # repeated gap
        {"long_block_thresholds_ns": ((10 * S, 5 * MINUTE), (MINUTE, MINUTE))},  # shorter auction
        {"long_block_thresholds_ns": ((0, MINUTE),)},
        {"long_block_thresholds_ns": ((10 * S, 0),)},
        {"long_block_thresholds_ns": tuple((i * S, MINUTE) for i in range(1, 18))},
        {"price_monitoring_bands": ((10 * MINUTE, 20_000), (MINUTE, 50_000))},
        {"price_monitoring_bands": ((MINUTE, 0),)},
        {"price_monitoring_bands": ((MINUTE, PPM),)},
        {"price_monitoring_auction_ns": 0},
        {"price_history_samples": 0},
    ],
)
def test_bad_params_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(InvariantViolation):
        AuctionParams(**fields)  # type: ignore[arg-type]


def test_empty_tables_turn_triggers_off() -> None:
    params = AuctionParams(long_block_thresholds_ns=(), price_monitoring_bands=())
    assert long_block_auction_ns(HOUR, params) == 0
    history = PriceHistory(4)
    history.record(T0, PRICE)
    assert breaches(10 * PRICE, history, T0 + HOUR, params) is None


# -- long blocks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gap_ns", "auction_ns"),
    [
        (0, 0),
        (9 * S, 0),
        (10 * S, 0),  # exceeds, strictly
        (10 * S + 1, MINUTE),
        (11 * S, MINUTE),
        (MINUTE, MINUTE),
        (2 * MINUTE, 5 * MINUTE),
        (10 * MINUTE, 5 * MINUTE),
        (11 * MINUTE, HOUR),
        (24 * HOUR, HOUR),
    ],
)
def test_long_block_thresholds(gap_ns: int, auction_ns: int) -> None:
    assert long_block_auction_ns(gap_ns, PARAMS) == auction_ns


@given(st.integers(0, 2 * HOUR), st.integers(0, 2 * HOUR))
def test_long_block_auction_is_monotone_in_the_gap(gap_a: int, gap_b: int) -> None:
    shorter, longer = sorted((gap_a, gap_b))
    assert long_block_auction_ns(shorter, PARAMS) <= long_block_auction_ns(longer, PARAMS)


# -- price history -------------------------------------------------------------------------------


def test_history_is_capped_and_keeps_the_newest() -> None:
    history = PriceHistory(3)
    for i in range(7):
        history.record(T0 + i * S, PRICE + i)
    assert len(history) == 3
    assert history.samples() == (
        (T0 + 4 * S, PRICE + 4),
        (T0 + 5 * S, PRICE + 5),
        (T0 + 6 * S, PRICE + 6),
    )


def test_history_same_time_replaces_and_time_never_goes_back() -> None:
    history = PriceHistory(3)
    history.record(T0, PRICE)
    history.record(T0, PRICE + 5)
    assert history.samples() == ((T0, PRICE + 5),)
    with pytest.raises(InvariantViolation):
        history.record(T0 - 1, PRICE)
    with pytest.raises(InvariantViolation):
        history.record(T0 + 1, 0)


def test_reference_picks_the_sample_at_or_before_the_horizon() -> None:
    history = PriceHistory(8)
    assert history.reference(T0, MINUTE) is None
    for i in range(5):  # samples at T0, T0 + 30 s, ..., T0 + 120 s
        history.record(T0 + i * 30 * S, PRICE + i)
    now = T0 + 120 * S
    assert history.reference(now, MINUTE) == PRICE + 2  # exactly at now - 60 s
    assert history.reference(now + 1, MINUTE) == PRICE + 2  # at or before
    assert history.reference(now + 29 * S, MINUTE) == PRICE + 2
    assert history.reference(now + 30 * S, MINUTE) == PRICE + 3
    assert history.reference(now, 0) == PRICE + 4
    assert history.reference(now, 10 * MINUTE) == PRICE  # shorter history: the oldest


@given(
    st.lists(st.integers(0, 100), min_size=1, max_size=60),
    st.integers(1, 10),
    st.integers(0, 3_000),
    st.integers(0, 3_000),
)
def test_reference_matches_a_linear_scan(
    steps: list[int], capacity: int, now_offset: int, horizon: int
) -> None:
    history = PriceHistory(capacity)
    kept: list[tuple[int, int]] = []
    time = T0
    for i, step in enumerate(steps):
        time += step
        history.record(time, PRICE + i)
        if kept and kept[-1][0] == time:
            kept[-1] = (time, PRICE + i)
        else:
            kept.append((time, PRICE + i))
    kept = kept[-capacity:]
    assert history.samples() == tuple(kept)
    now = T0 + now_offset
    earlier = [price for sample_time, price in kept if sample_time <= now - horizon]
    expected = earlier[-1] if earlier else kept[0][1]
    assert history.reference(now, horizon) == expected


def test_reset_starts_from_one_sample() -> None:
    history = PriceHistory(3)
    for i in range(5):
        history.record(T0 + i * S, PRICE + i)
    history.reset(T0 + 10 * S, 2 * PRICE)
    assert history.samples() == ((T0 + 10 * S, 2 * PRICE),)
    history.record(T0 + 11 * S, 2 * PRICE + 1)
    assert len(history) == 2


# -- price monitoring ----------------------------------------------------------------------------


def test_outside_band_is_exact_at_the_edge() -> None:
    assert not outside_band(102_000, 100_000, 20_000)  # exactly 2%: inside
    assert outside_band(102_001, 100_000, 20_000)
    assert not outside_band(98_000, 100_000, 20_000)
    assert outside_band(97_999, 100_000, 20_000)


def _flat_history(price: int = PRICE) -> PriceHistory:
    history = PriceHistory(PARAMS.price_history_samples)
    for i in range(0, 11 * 60, 10):  # a sample every 10 s for 11 minutes
        history.record(T0 + i * S, price)
    return history


NOW = T0 + 11 * MINUTE


def test_breaches_names_the_shortest_breached_horizon() -> None:
    history = _flat_history()
    assert breaches(PRICE, history, NOW, PARAMS) is None
    assert breaches(102_000, history, NOW, PARAMS) is None
    assert breaches(103_000, history, NOW, PARAMS) == (MINUTE, 20_000)
    assert breaches(110_000, history, NOW, PARAMS) == (MINUTE, 20_000)  # both: the first
    assert breaches(50_000, history, NOW, PARAMS) == (MINUTE, 20_000)


def test_a_longer_horizon_can_breach_alone() -> None:
    history = PriceHistory(PARAMS.price_history_samples)
    history.record(T0, PRICE)  # ten minutes ago
    history.record(NOW - 2 * MINUTE, 104_000)  # drifted up, within 2% of the last minute
    assert breaches(105_500, history, NOW, PARAMS) == (10 * MINUTE, 50_000)


def test_no_history_no_monitoring() -> None:
    assert breaches(10 * PRICE, PriceHistory(4), NOW, PARAMS) is None


bands = st.lists(
    st.tuples(st.integers(1, 20 * MINUTE), st.integers(1, PPM - 1)), min_size=1, max_size=6
).map(lambda pairs: tuple(sorted(dict(pairs).items())))


@given(bands, st.integers(1, 10**12), st.integers(0, PPM))
def test_a_price_within_every_band_never_triggers(
    price_bands: tuple[tuple[int, int], ...], reference: int, fraction_ppm: int
) -> None:
    params = AuctionParams(price_monitoring_bands=price_bands)
    history = PriceHistory(4)
    history.record(T0, reference)
    tightest = min(band for _, band in price_bands)
    move = reference * tightest * fraction_ppm // (PPM * PPM)  # at most the tightest band
    for price in (reference + move, reference - move):
        if price > 0:
            assert breaches(price, history, T0 + HOUR, params) is None


@given(bands, st.integers(1, 10**12), st.data())
def test_a_price_outside_a_band_triggers_the_first_one_it_leaves(
    price_bands: tuple[tuple[int, int], ...], reference: int, data: st.DataObject
) -> None:
    params = AuctionParams(price_monitoring_bands=price_bands)
    history = PriceHistory(4)
    history.record(T0, reference)
    _, band = data.draw(st.sampled_from(price_bands))
    move = reference * band // PPM + 1  # just outside this band
    price = reference + move if data.draw(st.booleans()) or move >= reference else reference - move
    breached = breaches(price, history, T0 + HOUR, params)
    assert breached is not None
    expected = next((h, b) for h, b in price_bands if outside_band(price, reference, b))
    assert breached == expected
    assert breached[0] <= next(h for h, b in price_bands if b == band)


# -- the state machine ---------------------------------------------------------------------------


def _step(state: AuctionState, transition: Transition | None) -> Transition:
    assert transition is not None
    apply_transition(state, transition)
    return transition


def test_long_block_auction_enters_stays_and_ends() -> None:
    state = AuctionState()
    assert on_block(state, T0, S, PARAMS) is None  # a normal block
    start = _step(state, on_block(state, T0 + 11 * S, 11 * S, PARAMS))
    assert start == Transition(
        kind=TransitionKind.AUCTION_STARTED,
        reason=AuctionReason.LONG_BLOCK,
        at_ns=T0 + 11 * S,
        ends_ns=T0 + 11 * S + MINUTE,
        gap_ns=11 * S,
    )
    assert (state.mode, state.reason, state.ends_ns) == (
        TradingMode.AUCTION,
        AuctionReason.LONG_BLOCK,
        T0 + 71 * S,
    )
    for t in range(12, 71):  # one block a second: stays in auction until ends_ns
        assert on_block(state, T0 + t * S, S, PARAMS) is None
        assert not auction_due(state, T0 + t * S)
    end = _step(state, on_block(state, T0 + 71 * S, S, PARAMS))
    assert end.kind is TransitionKind.AUCTION_ENDED
    assert (state.mode, state.reason, state.ends_ns, state.extended) == (
        TradingMode.CONTINUOUS,
        AuctionReason.NONE,
        0,
        False,
    )


def test_a_longer_gap_during_an_auction_extends_it() -> None:
    state = AuctionState()
    _step(state, on_block(state, T0, 2 * MINUTE, PARAMS))  # ends T0 + 5 min
    assert on_block(state, T0 + 15 * S, 15 * S, PARAMS) is None  # calls for less than remains
    extension = _step(state, on_block(state, T0 + 15 * MINUTE, 15 * MINUTE - 15 * S, PARAMS))
    assert extension.kind is TransitionKind.AUCTION_EXTENDED
    assert state.ends_ns == T0 + 15 * MINUTE + HOUR
    assert state.reason is AuctionReason.LONG_BLOCK


def test_price_monitoring_auction_then_uncross() -> None:
    history = _flat_history()
    state = AuctionState()
    assert on_trade_attempt(state, 101_000, history, NOW, PARAMS) is None
    start = _step(state, on_trade_attempt(state, 103_000, history, NOW, PARAMS))
    assert start == Transition(
        kind=TransitionKind.AUCTION_STARTED,
        reason=AuctionReason.PRICE_MONITORING,
        at_ns=NOW,
        ends_ns=NOW + MINUTE,
        horizon_ns=MINUTE,
        band_ppm=20_000,
        reference_ticks=PRICE,
        price_ticks=103_000,
    )
    assert on_trade_attempt(state, 200_000, history, NOW, PARAMS) is None  # already in auction
    assert on_block(state, NOW + MINUTE, S, PARAMS) is None  # left to on_auction_end
    assert auction_due(state, NOW + MINUTE)
    with pytest.raises(InvariantViolation):
        on_auction_end(state, PRICE, history, NOW + MINUTE - 1, PARAMS)
    end = _step(state, on_auction_end(state, 101_500, history, NOW + MINUTE, PARAMS))
    assert end == Transition(
        kind=TransitionKind.AUCTION_ENDED,
        reason=AuctionReason.NONE,
        at_ns=NOW + MINUTE,
        price_ticks=101_500,
    )
    assert state.mode is TradingMode.CONTINUOUS


def test_price_monitoring_extends_once_then_uncrosses_anyway() -> None:
    history = _flat_history()
    state = AuctionState()
    _step(state, on_trade_attempt(state, 103_000, history, NOW, PARAMS))
    extension = _step(state, on_auction_end(state, 103_000, history, NOW + MINUTE, PARAMS))
    assert extension.kind is TransitionKind.AUCTION_EXTENDED
    assert extension.extended
    assert (state.mode, state.ends_ns, state.extended) == (
        TradingMode.AUCTION,
        NOW + 2 * MINUTE,
        True,
    )
    end = _step(state, on_auction_end(state, 103_000, history, NOW + 2 * MINUTE, PARAMS))
    assert end.kind is TransitionKind.AUCTION_ENDED
    assert (state.mode, state.extended) == (TradingMode.CONTINUOUS, False)
    # The engine resets the history to the uncrossing price; the new level then trades.
    history.reset(NOW + 2 * MINUTE, 103_000)
    assert on_trade_attempt(state, 103_500, history, NOW + 2 * MINUTE + S, PARAMS) is None


def test_no_extension_when_turned_off_or_not_crossed() -> None:
    history = _flat_history()
    for params, indicative in ((AuctionParams(extend_once=False), 103_000), (PARAMS, None)):
        state = AuctionState()
        _step(state, on_trade_attempt(state, 103_000, history, NOW, params))
        end = on_auction_end(state, indicative, history, NOW + MINUTE, params)
        assert end.kind is TransitionKind.AUCTION_ENDED


def test_a_long_block_auction_end_never_extends() -> None:
    history = _flat_history()
    state = AuctionState()
    _step(state, on_block(state, NOW, 11 * S, PARAMS))
    end = on_auction_end(state, 150_000, history, NOW + MINUTE, PARAMS)
    assert end.kind is TransitionKind.AUCTION_ENDED
