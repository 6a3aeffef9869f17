"""Venue parameters: fees, margin, funding and marks per underlying, chosen at genesis.

A venue's economics are data, like its instruments: one :class:`UnderlyingParams` per
underlying (BTC, ETH, ...) holds what every market on it charges and requires, and the
:class:`VenueConfig` maps underlyings to them. An instrument can be listed only on a configured
underlying when the engine runs with margin checks (a market without fees, margin and an oracle
is not a market). Parameter updates by transaction come with a later part.

Units: rates are integers in parts per million (``_ppm``) or per billion (``_ppb``, for funding,
whose hourly rates are small); times are integer nanoseconds; money is USDC minor units.

Invariants (asserted when a value is made, so a bad table is refused before it can run)
- Maintenance margin is positive and below initial margin, which is at most 100% for perps;
  short options are margined at up to the underlying's full notional (conservative until the
  risk issues replace it).
- Fees: the taker fee is non-negative and at least the maker rebate, so the fee pool never pays
  out more in rebates than the same fill charged; every rate is below 100%.
- Funding is clamped per interval; the premium horizon is at least one interval.
"""

from __future__ import annotations

from typing import Final

import msgspec

from strikechain.engine.invariant import invariant
from strikechain.engine.oracle import OracleParams
from strikechain.engine.signing import DEFAULT_DOMAIN, SigningDomain
from strikechain.engine.units import NANOS_PER_HOUR, NANOS_PER_SECOND

PPM: Final = 1_000_000
PPB: Final = 1_000_000_000


class MarginParams(msgspec.Struct, frozen=True, kw_only=True):
    """Standard margin: fractions of notional at the mark (perps) or of the underlying (options).

    Defaults are dYdX v4's large-cap tier for perps (5% initial, 3% maintenance). A short option
    reserves the underlying's full notional at initial margin and half at maintenance, far above
    Deribit's 15% / 7.5%: safe, capital-hungry, and replaced by the risk issues' option margin.
    A long option needs its premium only, which it pays when it fills.
    """

    perp_initial_ppm: int = 50_000
    perp_maintenance_ppm: int = 30_000
    option_short_initial_ppm: int = 1_000_000
    option_short_maintenance_ppm: int = 500_000

    def __post_init__(self) -> None:
        invariant(
            0 < self.perp_maintenance_ppm < self.perp_initial_ppm <= PPM,
            "perp margin: 0 < maintenance < initial <= 100%",
        )
        invariant(
            0 < self.option_short_maintenance_ppm <= self.option_short_initial_ppm <= PPM,
            "option margin: 0 < maintenance <= initial <= 100% of the underlying",
        )


class FeeParams(msgspec.Struct, frozen=True, kw_only=True):
    """Maker and taker fees in ppm of the fill's notional (of the premium for options).

    A negative maker fee is a rebate, paid from the fee pool. Defaults: perps 1 bp rebate to
    makers and 5 bp from takers; options 0.1% and 0.3% of premium.
    """

    perp_maker_ppm: int = -100
    perp_taker_ppm: int = 500
    option_maker_ppm: int = 1_000
    option_taker_ppm: int = 3_000

    def __post_init__(self) -> None:
        for maker, taker in (
            (self.perp_maker_ppm, self.perp_taker_ppm),
            (self.option_maker_ppm, self.option_taker_ppm),
        ):
            invariant(0 <= taker < PPM and -PPM < maker < PPM, "fee rates are below 100%")
            invariant(maker + taker >= 0, "the maker rebate may not exceed the taker fee")


class FundingParams(msgspec.Struct, frozen=True, kw_only=True):
    """Perpetual funding: every ``interval_ns`` of block time, longs pay shorts (or back).

    The rate of an interval is the time-weighted average premium of the mark over the index
    during it, realized over ``premium_horizon_ns`` (8 hours: one eighth per hourly interval,
    as dYdX v4 does), clamped to ``max_rate_ppb`` per interval.
    """

    interval_ns: int = NANOS_PER_HOUR
    premium_horizon_ns: int = 8 * NANOS_PER_HOUR
    max_rate_ppb: int = 500_000
    """0.05% of the position's value per interval at most."""

    def __post_init__(self) -> None:
        invariant(self.interval_ns > 0, "the funding interval is positive")
        invariant(
            self.premium_horizon_ns >= self.interval_ns, "the premium horizon spans an interval"
        )
        invariant(0 <= self.max_rate_ppb < PPB, "the funding clamp is below 100%")


class MarkParams(msgspec.Struct, frozen=True, kw_only=True):
    """Perp mark = index + an exponential average of the book's basis, clamped.

    The average moves towards each marking's sample (book mid minus index, or zero when the book
    is one-sided) with weight ``dt / (dt + basis_tau_ns)``, exact in integers; the result is
    clamped to ``basis_clamp_ppm`` of the index, so a thin book can tilt the mark only a little.
    """

    basis_tau_ns: int = 60 * NANOS_PER_SECOND
    basis_clamp_ppm: int = 5_000
    interval_ns: int = NANOS_PER_SECOND
    """Marks are recomputed whenever the index or the vol nodes change, and otherwise once this
    much block time has passed (the basis sample and option time decay): every margin cached
    on the underlying goes stale with a new mark, so marking every block of a fast chain would
    cost every account a recomputation per block for changes below a minor unit per lot."""

    def __post_init__(self) -> None:
        invariant(self.basis_tau_ns > 0, "the basis time constant is positive")
        invariant(self.interval_ns >= 0, "the mark interval is not negative")
        invariant(0 <= self.basis_clamp_ppm < PPM, "the basis clamp is below 100%")


class UnderlyingParams(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a venue charges and requires on one underlying's markets."""

    oracle: OracleParams
    margin: MarginParams = MarginParams()
    fees: FeeParams = FeeParams()
    funding: FundingParams = FundingParams()
    mark: MarkParams = MarkParams()


class VenueConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's genesis parameters: its underlyings and its named system accounts."""

    underlyings: dict[str, UnderlyingParams] = msgspec.field(default_factory=dict)
    fee_pool: str = "fee-pool"
    insurance_fund: str = "insurance-fund"
    dust: str = "dust"
    """Where rounding remainders of funding and settlement go, so money never vanishes."""
    signing: SigningDomain = DEFAULT_DOMAIN
    """The EIP-712 domain of signed reports (the settlement chain and contract)."""

    def __post_init__(self) -> None:
        names = (self.fee_pool, self.insurance_fund, self.dust)
        invariant(len(set(names)) == len(names), "system accounts have distinct names")
