"""Oracle reporters: signed index prices and implied-vol surface nodes, honest or not.

What a reporter does (:class:`Reporter`, parameters :class:`ReporterParams`)
- Every ``period_ns`` plus a uniform jitter in ``[0, jitter_ns]`` (its own stream) it signs an
  :class:`~strikechain.engine.oracle.OracleReport` for ``underlying`` with its key and submits
  it with priority fee ``context.fee(tip)`` (outside the signature). The report is stamped with
  the reporter's now (never ahead of the block that carries it, so ``max_future_ns`` is never
  hit; reporting more often than the oracle's staleness, 10 s by default, keeps it fresh).
- **Price**: its reference (its feed, as late as the scenario's latency for it) times
  ``1 + noise_bps x N(0, 1)``, in USDC minor units (floored); confidence ``confidence_bps`` of
  the price.
- **Vols** (with ``publish_vols`` and options listed on the underlying): one slice per listed
  expiry more than ``min_expiry_ns`` away, at the oracle's log-moneyness nodes
  ``log_moneyness_ppm`` (they must be the venue's). The "true" smile is a raw SVI of annualized
  variance, ``v(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2))`` (``true_svi_*``; total
  variance ``T v(k)``, so every expiry has the same vols and no arbitrage). The reporter
  observes it at ``quote_log_moneyness`` with noise of ``vol_noise_points`` vol points, fits a
  raw SVI per expiry with the pricing library (:func:`~strikechain.pricing.svi.fit_svi_slices`,
  arbitrage repaired, calendar-checked across expiries), and publishes the fit's vols at the
  nodes until its next fit, at most one every ``fit_interval_ns`` (about 30 ms an expiry). A
  failed fit keeps the previous nodes (``fit_failures``).

Behaviours (``behaviour``)
- ``honest``: as above.
- ``stale``: its view of the reference is ``stale_lag_ns`` later still than its feed's
  (:meth:`~strikechain.sim.agents.base.ReferenceFeed.delayed`), stamped with its now: the
  venue cannot tell, only the price is old.
- ``frozen``: from ``frozen_after_ns`` after its start its observation stops changing. With
  ``frozen_resend`` it sends its last signed report again, unchanged (a stuck feed: the venue
  refuses it as not newer and it goes stale); without, it keeps stamping new reports with the
  frozen price and vols (the index can only follow it where it is the median).
- ``biased``: the price times ``1 + bias_bps``.
- ``manipulating``: the price times ``1 + push_bps`` from ``push_after_ns`` after its start for
  ``push_for_ns``, honest otherwise.

Keys: :func:`reporter_key` derives a reporter's secp256k1 key from the run's seed and the
agent's name, so the scenario builder can register :func:`reporter_address` in the venue's
``OracleParams`` before the run. Signing costs about 50 us a report.
"""

from __future__ import annotations

import itertools
import math
from typing import Final, Literal

import msgspec
import numpy as np

from strikechain.engine.oracle import (
    MAX_VOL_NODES,
    MAX_VOL_PPM,
    NANOS_PER_YEAR,
    OracleParams,
    OracleReport,
    VolSlice,
)
from strikechain.engine.signing import DEFAULT_DOMAIN, SigningDomain, address_of, keccak256
from strikechain.engine.units import NANOS_PER_MILLISECOND, NANOS_PER_SECOND, Rounding
from strikechain.pricing.errors import PricingError
from strikechain.pricing.svi import SliceQuotes, SviParams, fit_svi_slices
from strikechain.sim.agents.base import AgentContext, ReferenceFeed
from strikechain.sim.agents.fair import MIN_VOL
from strikechain.sim.agents.grid import BPS, Draws
from strikechain.sim.agents.registry import KINDS, AgentKind
from strikechain.sim.agents.validation import (
    refuse,
    require_between,
    require_finite,
    require_non_negative,
    require_positive,
)
from strikechain.sim.processes import price_to_minor
from strikechain.sim.signer import ReportSigner

VOL_POINT: Final = 0.01
PPM: Final = 1_000_000
MAX_PERIOD_NS: Final = 60 * NANOS_PER_SECOND
Behaviour = Literal["honest", "stale", "frozen", "biased", "manipulating"]
BEHAVIOURS: Final = ("honest", "stale", "frozen", "biased", "manipulating")
_STRUCT: Final = "ReporterParams"
_DEFAULT_NODES: Final = OracleParams(reporters=("0x" + "0" * 40,), quorum=1).log_moneyness_ppm
_DEFAULT_QUOTES: Final = tuple(round(-0.6 + 0.1 * i, 1) for i in range(13))


class ReporterParams(msgspec.Struct, frozen=True, kw_only=True):
    """An oracle reporter's parameters (see the module)."""

    underlying: str
    behaviour: Behaviour = "honest"
    period_ns: int = NANOS_PER_SECOND
    jitter_ns: int = 200 * NANOS_PER_MILLISECOND
    noise_bps: float = 1.0
    confidence_bps: float = 2.0
    stale_lag_ns: int = 5 * NANOS_PER_SECOND
    frozen_after_ns: int = 0
    frozen_resend: bool = False
    bias_bps: float = 0.0
    push_bps: float = 0.0
    push_after_ns: int = 0
    push_for_ns: int = 0
    publish_vols: bool = True
    log_moneyness_ppm: tuple[int, ...] = _DEFAULT_NODES
    true_svi_a: float = 0.3
    true_svi_b: float = 0.2
    true_svi_rho: float = -0.3
    true_svi_m: float = 0.0
    true_svi_sigma: float = 0.3
    """The true smile's raw SVI of annualized variance (defaults: 60% at the money, a put
    skew)."""
    quote_log_moneyness: tuple[float, ...] = _DEFAULT_QUOTES
    vol_noise_points: float = 0.5
    fit_interval_ns: int = 60 * NANOS_PER_SECOND
    min_expiry_ns: int = 60 * NANOS_PER_SECOND
    tip: int = 0

    def __post_init__(self) -> None:
        if not self.underlying:
            raise refuse(_STRUCT, "underlying", "must name an underlying", self.underlying)
        if self.behaviour not in BEHAVIOURS:
            raise refuse(_STRUCT, "behaviour", f"must be one of {BEHAVIOURS}", self.behaviour)
        require_between(_STRUCT, "period_ns", self.period_ns, 1, MAX_PERIOD_NS)
        for field in (
            "jitter_ns",
            "noise_bps",
            "stale_lag_ns",
            "frozen_after_ns",
            "push_after_ns",
            "push_for_ns",
            "vol_noise_points",
            "min_expiry_ns",
            "tip",
        ):
            require_non_negative(_STRUCT, field, getattr(self, field))
        require_between(_STRUCT, "confidence_bps", self.confidence_bps, 0.0, 9_999.0)
        for field in ("bias_bps", "push_bps"):
            require_finite(_STRUCT, field, getattr(self, field))
        for field in ("bias_bps", "push_bps"):
            if not getattr(self, field) > -10_000.0:
                raise refuse(_STRUCT, field, "must be > -10000", getattr(self, field))
        try:
            self.true_smile()
        except PricingError as error:
            raise ValueError(f"{_STRUCT}.true_svi_* must make a raw SVI: {error.message}") from None
        require_positive(_STRUCT, "fit_interval_ns", self.fit_interval_ns)
        nodes = self.log_moneyness_ppm
        if not 1 <= len(nodes) <= MAX_VOL_NODES or any(a >= b for a, b in _pairs(nodes)):
            requirement = f"must be 1 to {MAX_VOL_NODES} strictly increasing nodes"
            raise refuse(_STRUCT, "log_moneyness_ppm", requirement, nodes)
        quotes = self.quote_log_moneyness
        if len(quotes) < 5 or any(a >= b for a, b in _pairs(quotes)):
            requirement = "must be at least 5 strictly increasing points (an SVI fit needs 5)"
            raise refuse(_STRUCT, "quote_log_moneyness", requirement, quotes)

    def true_smile(self) -> SviParams:
        """The true smile (raises ``PricingError`` ``SVI_BAD_PARAMS`` if it is not one)."""
        return SviParams(
            a=self.true_svi_a,
            b=self.true_svi_b,
            rho=self.true_svi_rho,
            m=self.true_svi_m,
            sigma=self.true_svi_sigma,
        )


def _pairs(values: tuple[float, ...] | tuple[int, ...]) -> list[tuple[float, float]]:
    return list(itertools.pairwise(values))


def reporter_key(seed: int, name: str) -> bytes:
    """The secp256k1 key of reporter ``name`` in a run of ``seed`` (32 bytes)."""
    return keccak256(f"strikechain-lab/{seed}/reporter/{name}".encode())


def reporter_address(seed: int, name: str) -> str:
    """The address the venue's ``OracleParams`` must register for reporter ``name``."""
    return address_of(reporter_key(seed, name))


class Reporter:
    """An oracle reporter (see the module)."""

    _context: AgentContext
    _draws: Draws
    _feed: ReferenceFeed

    def __init__(
        self,
        name: str,
        params: ReporterParams,
        key: bytes,
        domain: SigningDomain = DEFAULT_DOMAIN,
    ) -> None:
        self.name = name
        self.params = params
        self.signer = ReportSigner(key, domain)
        self.address = self.signer.address
        self.reports = 0
        self.fits = 0
        self.fit_failures = 0
        self.fit_times: list[int] = []
        """When it fitted its surface (virtual ns)."""
        self._start_ns = 0
        self._expiries: list[int] = []
        self._slices: tuple[VolSlice, ...] = ()
        self._fit_ns = -1
        self._last: OracleReport | None = None
        self._nodes = np.asarray(params.log_moneyness_ppm, dtype=np.float64) / PPM
        self._quotes = np.asarray(params.quote_log_moneyness, dtype=np.float64)
        self._true = params.true_smile()
        self._push_from_ns = params.push_after_ns
        self._push_until_ns = params.push_after_ns + params.push_for_ns

    def start(self, context: AgentContext) -> None:
        params = self.params
        self._context = context
        self._draws = Draws(context.rng)
        self._start_ns = context.scheduler.now_ns()
        self._feed = (
            context.reference.delayed(params.stale_lag_ns)
            if params.behaviour == "stale"
            else context.reference
        )
        if params.publish_vols:
            self._expiries = sorted(
                {
                    instrument.expiry_ns
                    for instrument in context.instruments.values()
                    if instrument.is_option and instrument.underlying == params.underlying
                }
            )
        first = math.floor(self._draws.uniform() * params.jitter_ns)
        context.scheduler.call_later(first, self._report)

    def _report(self) -> None:
        context, draws, feed = self._context, self._draws, self._feed
        params = self.params
        now = context.scheduler.now_ns()
        jitter = math.floor(draws.uniform() * params.jitter_ns)
        context.scheduler.call_later(params.period_ns + jitter, self._report)
        fee = context.fee(params.tip)
        last = self._last
        frozen = params.behaviour == "frozen" and now - self._start_ns >= params.frozen_after_ns
        if frozen and last is not None and params.frozen_resend:
            context.gateway.submit(msgspec.structs.replace(last, priority_fee=fee))
            self.reports += 1
            return
        if frozen and last is not None:
            price, vols = last.price, self._live(last.vols, now)
        else:
            reference = feed.price(params.underlying)
            price = price_to_minor(self._price_usdc(reference, now, draws), Rounding.FLOOR)
            vols = self._vols(reference, now)
        confidence = math.floor(price * params.confidence_bps * BPS)
        report = OracleReport(
            account=self.address,
            underlying=params.underlying,
            timestamp_ns=now,
            price=price,
            confidence=confidence,
            vols=vols,
            priority_fee=fee,
        )
        signed = self.signer.sign(report)
        context.gateway.submit(signed)
        self._last = signed
        self.reports += 1

    def _price_usdc(self, reference: float, now: int, draws: Draws) -> float:
        params = self.params
        price = reference * (1.0 + params.noise_bps * BPS * draws.normal())
        if params.behaviour == "biased":
            price *= 1.0 + params.bias_bps * BPS
        elif params.behaviour == "manipulating":
            elapsed = now - self._start_ns
            if self._push_from_ns <= elapsed < self._push_until_ns:
                price *= 1.0 + params.push_bps * BPS
        return price

    # -- the surface -------------------------------------------------------------------------

    def _live(self, slices: tuple[VolSlice, ...], now: int) -> tuple[VolSlice, ...]:
        """``slices`` without the expiries within ``min_expiry_ns`` of ``now``."""
        horizon = now + self.params.min_expiry_ns
        if not slices or slices[0].expiry_ns > horizon:
            return slices
        return tuple(s for s in slices if s.expiry_ns > horizon)

    def _vols(self, reference: float, now: int) -> tuple[VolSlice, ...]:
        if not self._expiries:
            return ()
        if self._fit_ns < 0 or now - self._fit_ns >= self.params.fit_interval_ns:
            self._fit(reference, now)
        self._slices = self._live(self._slices, now)
        return self._slices

    def _fit(self, forward: float, now: int) -> None:
        """Observe the true smile with noise, fit SVI per expiry, sample the nodes."""
        context = self._context
        params = self.params
        self._fit_ns = now
        expiries = [e for e in self._expiries if e - now > params.min_expiry_ns]
        if not expiries:
            self._slices = ()
            return
        k = self._quotes
        strikes = forward * np.exp(k)
        true = np.sqrt(self._true.total_variance(k))
        quotes = []
        for expiry in expiries:
            noise = context.rng.standard_normal(k.size) * params.vol_noise_points * VOL_POINT
            vols = np.maximum(true + noise, MIN_VOL)
            years = (expiry - now) / NANOS_PER_YEAR
            quotes.append(SliceQuotes.from_vols(years, forward, strikes, vols))
        try:
            fitted = fit_svi_slices(quotes, policy="repair")
        except PricingError:
            self.fit_failures += 1
            return
        slices = []
        for expiry, report in zip(expiries, fitted, strict=True):
            vols_ppm = np.rint(report.params.implied_vol(self._nodes, report.expiry) * PPM)
            clipped = np.clip(vols_ppm, 1, MAX_VOL_PPM).astype(np.int64).tolist()
            slices.append(VolSlice(expiry, tuple(clipped)))
        self._slices = tuple(slices)
        self.fits += 1
        self.fit_times.append(now)


KINDS["reporter"] = AgentKind(
    params=ReporterParams,
    make=lambda name, params, seed: Reporter(name, params, reporter_key(seed, name)),
    underlying=lambda params: str(params.underlying),
    address=reporter_address,
)
