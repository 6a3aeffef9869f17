"""Auction triggers: when a continuous market stops trading and calls an auction, and when the
auction ends. Pure decisions on integers; the engine applies them and runs the call auction
(the uniform-price clearing of :mod:`strikechain.engine.auction`).

Two triggers, after Vega's:

- **Long blocks.** When the time between two blocks exceeds a threshold the market was dark
  for that long and its book is stale, so it reopens by auction: a gap over 10 s calls for a
  1 min auction, over 1 min for 5 min, over 10 min for 1 h (the largest threshold exceeded).
  Such an auction ends when its time is up, at the first block at or after ``ends_ns``.
- **Price monitoring.** A trade more than ``band`` from the price of ``horizon`` ago (for any
  of a few (horizon, band) pairs) does not happen; the market enters an auction instead. At its
  end, if the indicative uniform price is still outside the band, the auction is extended once
  by the same length, and then uncrosses whatever the price.

The decision functions (:func:`on_block`, :func:`on_trade_attempt`, :func:`on_auction_end`)
read the state and return a :class:`Transition` (or ``None``: nothing changes); they never
mutate. :func:`apply_transition` is the one place the state changes, so the engine can emit each
transition as market data and apply it in the same step.

Invariants
- Parameters are validated when made: thresholds and horizons strictly increasing and positive,
  auction lengths positive and non-decreasing in the gap (so a longer gap never calls for a
  shorter auction), bands strictly between 0 and 100%, at most :data:`MAX_TRIGGERS` of each.
- Exact integers: a price breaches a band when ``|price - reference| x 10**6 > band x
  reference``; no division, no float.
- Deterministic: of several breached bands, the one with the shortest horizon is reported.
- A price history holds at most ``capacity`` samples, in non-decreasing time (time never goes
  backwards; a second sample at the same time replaces the first, so trades in one block take
  one slot).

Limits
- The reference of horizon ``h`` is the newest sample at or before ``now - h``; when the
  history is shorter than ``h`` (a new market, or a ring too small for its sample rate) it is the
  oldest sample, a more recent price than asked for. Size the ring for the longest horizon at
  the expected sample rate (one sample per block at most).
- An empty history has no reference: nothing is monitored until the first trade is recorded.
- After an auction uncrosses, the engine should :meth:`PriceHistory.reset` the history to the
  uncrossing price (Vega resets its bounds after an auction); otherwise the next trade at the
  new level is judged against the pre-auction price and calls another auction.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec

from strikechain.engine.invariant import invariant
from strikechain.engine.units import NANOS_PER_HOUR, NANOS_PER_MINUTE, NANOS_PER_SECOND

PPM: Final = 1_000_000
MAX_TRIGGERS: Final = 16
"""Long-block thresholds and price-monitoring (horizon, band) pairs: at most this many each."""
MAX_PRICE_HISTORY_SAMPLES: Final = 1_000_000


class AuctionParams(msgspec.Struct, frozen=True, kw_only=True):
    """When a market leaves continuous trading for an auction, and for how long.

    Defaults: Vega's long-block table; price monitoring 2% over 1 min and 5% over 10 min, with
    1 min auctions extended once.
    """

    long_block_thresholds_ns: tuple[tuple[int, int], ...] = (
        (10 * NANOS_PER_SECOND, NANOS_PER_MINUTE),
        (NANOS_PER_MINUTE, 5 * NANOS_PER_MINUTE),
        (10 * NANOS_PER_MINUTE, NANOS_PER_HOUR),
    )
    """``(gap_ns, auction_ns)`` pairs by increasing gap: a block gap over ``gap_ns`` calls for
    an auction of ``auction_ns``. Empty: no long-block auctions."""
    price_monitoring_bands: tuple[tuple[int, int], ...] = (
        (NANOS_PER_MINUTE, 20_000),
        (10 * NANOS_PER_MINUTE, 50_000),
    )
    """``(horizon_ns, band_ppm)`` pairs by increasing horizon: a trade more than ``band_ppm``
    from the reference price of ``horizon_ns`` ago calls an auction. Empty: no monitoring."""
    price_monitoring_auction_ns: int = NANOS_PER_MINUTE
    """The length of a price-monitoring auction, and of its one extension."""
    extend_once: bool = True
    """Extend a price-monitoring auction once if its indicative price is still outside a band."""
    price_history_samples: int = 1_024
    """The ring size of each market's :class:`PriceHistory`."""

    def __post_init__(self) -> None:
        thresholds = self.long_block_thresholds_ns
        invariant(len(thresholds) <= MAX_TRIGGERS, "at most MAX_TRIGGERS long-block thresholds")
        previous_gap, previous_auction = 0, 0
        for gap_ns, auction_ns in thresholds:
            invariant(gap_ns > previous_gap, "long-block gaps are positive and increasing")
            invariant(
                auction_ns > 0 and auction_ns >= previous_auction,
                "long-block auctions are positive and never shorter for a longer gap",
            )
            previous_gap, previous_auction = gap_ns, auction_ns
        bands = self.price_monitoring_bands
        invariant(len(bands) <= MAX_TRIGGERS, "at most MAX_TRIGGERS price-monitoring bands")
        previous_horizon = 0
        for horizon_ns, band_ppm in bands:
            invariant(horizon_ns > previous_horizon, "horizons are positive and increasing")
            invariant(0 < band_ppm < PPM, "a price-monitoring band is between 0 and 100%")
            previous_horizon = horizon_ns
        invariant(self.price_monitoring_auction_ns > 0, "price-monitoring auctions have a length")
        invariant(
            0 < self.price_history_samples <= MAX_PRICE_HISTORY_SAMPLES,
            "the price history holds 1 to MAX_PRICE_HISTORY_SAMPLES samples",
        )


DEFAULT_AUCTION_PARAMS: Final = AuctionParams()


def long_block_auction_ns(gap_ns: int, params: AuctionParams) -> int:
    """The auction a block gap calls for: the length paired with the largest threshold the gap
    exceeds (strictly), 0 if none. Never decreasing in ``gap_ns``."""
    auction_ns = 0
    for threshold_ns, length_ns in params.long_block_thresholds_ns:
        if gap_ns <= threshold_ns:
            break
        auction_ns = length_ns
    return auction_ns


# --- price history ------------------------------------------------------------------------------


class PriceHistory:
    """A bounded ring of ``(time_ns, price_ticks)`` samples of one market, oldest first."""

    __slots__ = ("_prices", "_start", "_times", "capacity")

    def __init__(self, capacity: int) -> None:
        invariant(capacity > 0, "a price history holds at least one sample")
        self.capacity = capacity
        self._times: list[int] = []
        self._prices: list[int] = []
        self._start = 0
        """Physical index of the oldest sample once the ring is full (0 until then)."""

    def __len__(self) -> int:
        return len(self._times)

    def _index(self, logical: int) -> int:
        return (self._start + logical) % self.capacity

    def record(self, time_ns: int, price_ticks: int) -> None:
        """Add a sample, dropping the oldest when full; a sample at the newest sample's time
        replaces its price. Time must not go backwards (a bug in the caller)."""
        invariant(price_ticks > 0, "a recorded price is positive")
        count = len(self._times)
        if count:
            newest = self._index(count - 1)
            invariant(time_ns >= self._times[newest], "price history time went backwards")
            if time_ns == self._times[newest]:
                self._prices[newest] = price_ticks
                return
        if count < self.capacity:
            self._times.append(time_ns)
            self._prices.append(price_ticks)
            return
        self._times[self._start] = time_ns
        self._prices[self._start] = price_ticks
        self._start = (self._start + 1) % self.capacity

    def reset(self, time_ns: int, price_ticks: int) -> None:
        """Forget every sample and start again from one (after an auction uncrosses)."""
        self._times.clear()
        self._prices.clear()
        self._start = 0
        self.record(time_ns, price_ticks)

    def reference(self, now_ns: int, horizon_ns: int) -> int | None:
        """The price of the newest sample at or before ``now_ns - horizon_ns``; the oldest
        sample's if every sample is later; ``None`` if there are none."""
        count = len(self._times)
        if not count:
            return None
        cutoff = now_ns - horizon_ns
        low, high = 0, count  # find the first logical index whose time is after the cutoff
        while low < high:
            middle = (low + high) // 2
            if self._times[self._index(middle)] <= cutoff:
                low = middle + 1
            else:
                high = middle
        return self._prices[self._index(low - 1 if low else 0)]

    def samples(self) -> tuple[tuple[int, int], ...]:
        """Every sample, oldest first."""
        return tuple(
            (self._times[self._index(i)], self._prices[self._index(i)])
            for i in range(len(self._times))
        )

    def resized(self, capacity: int) -> PriceHistory:
        """A history of ``capacity`` samples holding the newest of these that fit."""
        history = PriceHistory(capacity)
        for time_ns, price_ticks in self.samples()[-capacity:]:
            history.record(time_ns, price_ticks)
        return history


def outside_band(price_ticks: int, reference_ticks: int, band_ppm: int) -> bool:
    """``|price - reference| > band x reference``, exactly."""
    distance = price_ticks - reference_ticks
    if distance < 0:
        distance = -distance
    return distance * PPM > band_ppm * reference_ticks


def breaches(
    price_ticks: int, history: PriceHistory, now_ns: int, params: AuctionParams
) -> tuple[int, int] | None:
    """The first ``(horizon_ns, band_ppm)`` (the shortest horizon) whose band ``price_ticks``
    would leave, judged against that horizon's reference; ``None`` if it leaves none (or there
    is no history)."""
    for horizon_ns, band_ppm in params.price_monitoring_bands:
        reference_ticks = history.reference(now_ns, horizon_ns)
        if reference_ticks is None:
            return None
        if outside_band(price_ticks, reference_ticks, band_ppm):
            return horizon_ns, band_ppm
    return None


# --- the state machine --------------------------------------------------------------------------


class TradingMode(enum.StrEnum):
    CONTINUOUS = "CONTINUOUS"
    AUCTION = "AUCTION"


class AuctionReason(enum.StrEnum):
    """Why a market is in an auction (``NONE`` while it trades continuously)."""

    NONE = "NONE"
    LONG_BLOCK = "LONG_BLOCK"
    PRICE_MONITORING = "PRICE_MONITORING"


class TransitionKind(enum.StrEnum):
    AUCTION_STARTED = "AUCTION_STARTED"
    AUCTION_EXTENDED = "AUCTION_EXTENDED"
    """Still in auction with a later end: a price-monitoring extension, or a long block during
    an auction that calls for a later end than the current one."""
    AUCTION_ENDED = "AUCTION_ENDED"
    """The auction uncrosses now and the market trades continuously again."""


class AuctionState:
    """One market's trading mode; changed only by :func:`apply_transition`."""

    __slots__ = ("ends_ns", "extended", "mode", "reason")

    def __init__(self) -> None:
        self.mode = TradingMode.CONTINUOUS
        self.reason = AuctionReason.NONE
        self.ends_ns = 0
        """When the auction ends (0 while continuous)."""
        self.extended = False
        """Whether this price-monitoring auction has used its one extension."""


class Transition(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A change of a market's trading mode, and why, for market data.

    ``reason``, ``ends_ns`` and ``extended`` are the state after the transition (``NONE``, 0
    and ``False`` when the auction ended). The trigger's details are set where they apply, else
    0: ``gap_ns`` for a long block; ``horizon_ns``, ``band_ppm`` and ``reference_ticks`` for a
    breached band; ``price_ticks`` is the trade price that called the auction or the indicative
    price at its end.
    """

    kind: TransitionKind
    reason: AuctionReason
    at_ns: int
    ends_ns: int = 0
    extended: bool = False
    gap_ns: int = 0
    horizon_ns: int = 0
    band_ppm: int = 0
    reference_ticks: int = 0
    price_ticks: int = 0


def apply_transition(state: AuctionState, transition: Transition) -> None:
    """Make ``state`` what ``transition`` says it becomes."""
    if transition.kind is TransitionKind.AUCTION_ENDED:
        state.mode = TradingMode.CONTINUOUS
    else:
        state.mode = TradingMode.AUCTION
    state.reason = transition.reason
    state.ends_ns = transition.ends_ns
    state.extended = transition.extended


def auction_due(state: AuctionState, now_ns: int) -> bool:
    """Whether the market is in an auction whose time is up."""
    return state.mode is TradingMode.AUCTION and now_ns >= state.ends_ns


def on_block(
    state: AuctionState, now_ns: int, gap_ns: int, params: AuctionParams
) -> Transition | None:
    """At a block stamped ``now_ns``, ``gap_ns`` after the previous one.

    - A gap calling for an auction starts one (ending ``now + length``) in a continuous market,
      or extends a running auction whose end is earlier, which becomes a long-block auction.
    - Otherwise a long-block auction whose time is up ends. A price-monitoring auction whose
      time is up is left to :func:`on_auction_end`, which needs the indicative price
      (:func:`auction_due` says when).
    """
    invariant(gap_ns >= 0, "block time went backwards")
    length_ns = long_block_auction_ns(gap_ns, params)
    if length_ns:
        ends_ns = now_ns + length_ns
        if state.mode is TradingMode.CONTINUOUS:
            kind = TransitionKind.AUCTION_STARTED
        elif ends_ns > state.ends_ns:
            kind = TransitionKind.AUCTION_EXTENDED
        else:
            return None
        return Transition(
            kind=kind,
            reason=AuctionReason.LONG_BLOCK,
            at_ns=now_ns,
            ends_ns=ends_ns,
            gap_ns=gap_ns,
        )
    if state.reason is AuctionReason.LONG_BLOCK and auction_due(state, now_ns):
        return Transition(
            kind=TransitionKind.AUCTION_ENDED, reason=AuctionReason.NONE, at_ns=now_ns
        )
    return None


def on_trade_attempt(
    state: AuctionState,
    price_ticks: int,
    history: PriceHistory,
    now_ns: int,
    params: AuctionParams,
) -> Transition | None:
    """Before a continuous trade at ``price_ticks``: an auction instead, if the price leaves a
    band (:func:`breaches`); ``None`` (trade) otherwise, and always during an auction."""
    if state.mode is not TradingMode.CONTINUOUS:
        return None
    breached = breaches(price_ticks, history, now_ns, params)
    if breached is None:
        return None
    horizon_ns, band_ppm = breached
    return Transition(
        kind=TransitionKind.AUCTION_STARTED,
        reason=AuctionReason.PRICE_MONITORING,
        at_ns=now_ns,
        ends_ns=now_ns + params.price_monitoring_auction_ns,
        horizon_ns=horizon_ns,
        band_ppm=band_ppm,
        reference_ticks=_reference(history, now_ns, horizon_ns),
        price_ticks=price_ticks,
    )


def on_auction_end(
    state: AuctionState,
    indicative_price_ticks: int | None,
    history: PriceHistory,
    now_ns: int,
    params: AuctionParams,
) -> Transition:
    """At the end of an auction (its time is up): uncross, or extend once.

    A price-monitoring auction not yet extended whose indicative uniform price
    (:func:`strikechain.engine.auction.clearing_price`; ``None`` if the book is not crossed)
    is still outside a band is extended by ``price_monitoring_auction_ns`` from now, if
    ``params.extend_once``. Every other auction uncrosses.
    """
    invariant(auction_due(state, now_ns), "an auction ends only when its time is up")
    price_ticks = indicative_price_ticks if indicative_price_ticks is not None else 0
    if (
        params.extend_once
        and state.reason is AuctionReason.PRICE_MONITORING
        and not state.extended
        and indicative_price_ticks is not None
    ):
        breached = breaches(indicative_price_ticks, history, now_ns, params)
        if breached is not None:
            horizon_ns, band_ppm = breached
            return Transition(
                kind=TransitionKind.AUCTION_EXTENDED,
                reason=AuctionReason.PRICE_MONITORING,
                at_ns=now_ns,
                ends_ns=now_ns + params.price_monitoring_auction_ns,
                extended=True,
                horizon_ns=horizon_ns,
                band_ppm=band_ppm,
                reference_ticks=_reference(history, now_ns, horizon_ns),
                price_ticks=price_ticks,
            )
    return Transition(
        kind=TransitionKind.AUCTION_ENDED,
        reason=AuctionReason.NONE,
        at_ns=now_ns,
        price_ticks=price_ticks,
    )


def _reference(history: PriceHistory, now_ns: int, horizon_ns: int) -> int:
    reference_ticks = history.reference(now_ns, horizon_ns)
    invariant(reference_ticks is not None, "a breached band has a reference price")
    return reference_ticks if reference_ticks is not None else 0
