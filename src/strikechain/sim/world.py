"""The world of a scripted session: its calendar, markets, episodes and paths.

Everything here is fixed by the seed before the first block: when blocks come
(:func:`timeline`), where the scripted episodes fall (:class:`Episodes`), the true index of each
underlying at each block (:func:`price_path`: a GBM at the block times with a sell-off and a
partial recovery), the perpetual basis market makers quote around (:func:`basis_path`) and the
vol smile reporters publish (:func:`atm_vol_path`, :func:`smile`). Floats are fine here: the
engine sees only the integers the agents put into transactions.

Every random draw comes from :func:`component_rng`, a ``numpy.random.Generator`` derived from
``(seed, component name)``: adding a component never changes another component's stream.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from strikechain.engine.calendar import expiry_ns
from strikechain.engine.invariant import invariant
from strikechain.engine.oracle import NANOS_PER_YEAR
from strikechain.engine.signing import keccak256
from strikechain.engine.units import NANOS_PER_MINUTE, NANOS_PER_SECOND

SECOND: Final = NANOS_PER_SECOND
SESSION_START_NS: Final = expiry_ns(2026, 11, 25, hour=6)
"""06:00 UTC: the session's clock starts here; the first block is one second later."""
OPTION_EXPIRY_NS: Final = expiry_ns(2026, 11, 25)
"""08:00 UTC the same day: the option chain's expiry."""
SESSION_END_NS: Final = OPTION_EXPIRY_NS + 5 * NANOS_PER_MINUTE
BURST_BLOCKS: Final = 20
OUTLIER_FACTOR: Final = 1.06
"""The faulty BTC reporter's price, relative to the index: beyond the 2% outlier band."""


def component_rng(seed: int, name: str) -> np.random.Generator:
    """The random stream of one component, derived from ``(seed, name)`` alone."""
    words = np.frombuffer(hashlib.sha256(name.encode()).digest(), dtype=np.uint32)
    return np.random.default_rng(np.random.SeedSequence([seed, *words.tolist()]))


@dataclass(frozen=True)
class UnderlyingSpec:
    """One underlying's market: its starting price, vol, sell-off and perpetual grid."""

    name: str
    spot_usdc: float
    vol: float
    """Annualized volatility of the index path."""
    shock: float
    """Log-return of the scripted sell-off (half of it comes back in the recovery)."""
    perp_tick: str
    perp_lot: str
    quote_lots: tuple[int, int]
    """Market makers' size per perp quote: low, high (exclusive)."""
    taker_lots: tuple[int, int]


UNDERLYINGS: Final = (
    UnderlyingSpec("BTC", 100_000.0, 0.60, -0.07, "0.5", "0.001", (100, 800), (1, 200)),
    UnderlyingSpec("ETH", 4_000.0, 0.80, -0.09, "0.05", "0.01", (100, 1000), (1, 200)),
)
OPTION_UNDERLYING: Final = "BTC"
OPTION_TICK: Final = "5"
OPTION_LOT: Final = "0.01"
STRIKE_STEP_USDC: Final = 1_000
STRIKE_OFFSETS: Final = (-2, -1, 0, 1, 2)
OPTION_QUOTE_LOTS: Final = (5, 30)
OPTION_TAKER_LOTS: Final = (1, 10)
SMILE_SKEW: Final = -0.5
SMILE_CURVATURE: Final = 1.5


@dataclass(frozen=True)
class Episodes:
    """Where the scripted events fall, as ``[start, stop)`` ranges of block indexes (0-based)."""

    outlier: range
    """The last BTC reporter posts :data:`OUTLIER_FACTOR` times the index."""
    silent: range
    """ETH reporter 1 says nothing."""
    quorum_loss: dict[str, range]
    """Only ``quorum - 1`` reporters of the underlying report."""
    shock: range
    recovery: range
    entry_long: range
    """Leveraged group A opens (mostly long)."""
    entry_late_long: range
    """Leveraged group B opens long just before the sell-off."""
    probe: int
    """A few blocks after the sell-off, groups A and B each try to add and to withdraw."""
    after_shock: range
    """Then, now and again, they reduce (or add)."""
    entry_short: range
    """Leveraged group C opens short after the sell-off, before the recovery."""

    @classmethod
    def for_blocks(cls, blocks: int) -> Episodes:
        def at(fraction: float, length: int) -> range:
            start = int(fraction * blocks)
            return range(start, start + length)

        window = max(20, blocks // 40)
        shock = max(8, blocks // 50)
        probe = int(0.50 * blocks) + shock + 4
        return cls(
            outlier=at(0.20, 2 * window),
            silent=at(0.40, 2 * window),
            quorum_loss={"ETH": at(0.30, window), "BTC": at(0.78, window)},
            shock=at(0.50, shock),
            recovery=at(0.62, 3 * shock),
            entry_long=range(int(0.06 * blocks), int(0.12 * blocks)),
            entry_late_long=range(int(0.44 * blocks), int(0.49 * blocks)),
            probe=probe,
            after_shock=range(probe + 1, probe + 1 + max(10, blocks // 20)),
            entry_short=range(int(0.55 * blocks), int(0.61 * blocks)),
        )


def timeline(seed: int, blocks: int) -> list[int]:
    """Block times (ns): bursts of :data:`BURST_BLOCKS` about a second apart (0.8 to 1.2 s),
    quiet stretches between them, from about 06:00:01 to at most 08:05."""
    rng = component_rng(seed, "timeline")
    span = SESSION_END_NS - SESSION_START_NS
    spacing = min(SECOND, span // (blocks + 1))
    steps = rng.integers(spacing * 4 // 5, spacing * 6 // 5 + 1, size=blocks).tolist()
    bursts = -(-blocks // BURST_BLOCKS)
    gap = (span - sum(steps)) // max(bursts - 1, 1)
    times: list[int] = []
    now = SESSION_START_NS
    for index, step in enumerate(steps):
        now += step
        if index and index % BURST_BLOCKS == 0:
            now += gap
        times.append(now)
    invariant(times[-1] <= SESSION_END_NS, "the timeline ends by 08:05")
    return times


def price_path(
    seed: int,
    spec: UnderlyingSpec,
    times: list[int],
    episodes: Episodes,
) -> npt.NDArray[np.float64]:
    """The true index (USDC per unit) at each block: a GBM at the block times, plus the
    sell-off spread evenly over its blocks and half of it back over the recovery."""
    rng = component_rng(seed, f"path/{spec.name}")
    dt = np.diff(np.asarray([SESSION_START_NS, *times], dtype=np.float64)) / NANOS_PER_YEAR
    returns = spec.vol * np.sqrt(dt) * rng.standard_normal(len(times)) - spec.vol**2 * dt / 2
    returns[episodes.shock.start : episodes.shock.stop] += spec.shock / len(episodes.shock)
    rebound = -spec.shock / 2 / len(episodes.recovery)
    returns[episodes.recovery.start : episodes.recovery.stop] += rebound
    path: npt.NDArray[np.float64] = spec.spot_usdc * np.exp(np.cumsum(returns))
    return path


def basis_path(seed: int, name: str, blocks: int) -> npt.NDArray[np.float64]:
    """The perp's premium over the index that market makers quote around (a fraction): a
    seeded level of 3 to 8 bp of either sign plus an AR(1) wobble of about 2 bp."""
    rng = component_rng(seed, f"basis/{name}")
    level = rng.uniform(3e-4, 8e-4) * rng.choice((-1.0, 1.0))
    shocks = rng.standard_normal(blocks) * 2e-4 * math.sqrt(1 - 0.95**2)
    wobble = np.empty(blocks)
    value = 0.0
    for index, shock in enumerate(shocks.tolist()):
        value = 0.95 * value + shock
        wobble[index] = value
    out: npt.NDArray[np.float64] = level + wobble
    return out


def atm_vol_path(spec: UnderlyingSpec, episodes: Episodes, blocks: int) -> list[float]:
    """The at-the-money vol the reporters publish: half as high again after the sell-off,
    decaying back over the recovery."""
    stress = np.zeros(blocks)
    stress[episodes.shock.start :] = 1.0
    decay = np.linspace(1.0, 0.3, len(episodes.recovery))
    stress[episodes.recovery.start : episodes.recovery.stop] = decay
    stress[episodes.recovery.stop :] = 0.3
    vols: list[float] = (spec.vol * (1.0 + 0.5 * stress)).tolist()
    return vols


def smile(atm_vol: float, log_moneyness: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Implied vol across log-moneyness: a put skew and some curvature."""
    out: npt.NDArray[np.float64] = atm_vol * (
        1.0 + SMILE_SKEW * log_moneyness + SMILE_CURVATURE * log_moneyness**2
    )
    return out


def reporter_keys(seed: int, underlying: str, count: int) -> tuple[bytes, ...]:
    """Private keys of an underlying's reporters, derived from the seed."""
    return tuple(
        keccak256(f"strikechain-sim/{seed}/{underlying}/reporter-{i}".encode())
        for i in range(count)
    )
