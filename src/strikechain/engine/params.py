"""Venue parameters: fees, margin, funding and marks per underlying, chosen at genesis.

A venue's economics are data, like its instruments: one :class:`UnderlyingParams` per
underlying (BTC, ETH, ...) holds what every market on it charges and requires, and the
:class:`VenueConfig` maps underlyings to them. An instrument can be listed only on a configured
underlying when the engine runs with margin checks (a market without fees, margin and an oracle
is not a market). The operator changes an underlying's parameters by a timelocked transaction
(:mod:`strikechain.engine.governance`): announced at least ``VenueConfig.parameter_timelock_ns``
ahead, in force from the first block at or after its time; the config stays the genesis value
and the parameters in force are engine state.

Units: rates are integers in parts per million (``_ppm``) or per billion (``_ppb``, for funding,
whose hourly rates are small); times are integer nanoseconds; money is USDC minor units.

Invariants (asserted when a value is made, so a bad table is refused before it can run)
- Maintenance margin is positive and below initial margin, which is at most 100% for perps;
  for short options ``0 < maintenance <= initial floor <= initial base <= 100%`` of the index,
  so a short's initial margin is never below its maintenance margin.
- Position limits are non-negative (0: no limit) and a per-account position cap is at most the
  open-interest cap when both are set.
- Fees: the taker fee is non-negative and at least the maker rebate, so the fee pool never pays
  out more in rebates than the same fill charged; every rate is below 100%.
- Funding is clamped per interval; the premium horizon is at least one interval.
"""

from __future__ import annotations

from typing import Final

import msgspec

from strikechain.engine.auction_triggers import AuctionParams
from strikechain.engine.dynamic import DynamicParams
from strikechain.engine.invariant import invariant
from strikechain.engine.liquidation import DEFAULT_LIQUIDATION_PARAMS, LiquidationParams
from strikechain.engine.oracle import OracleParams
from strikechain.engine.portfolio import DEFAULT_PORTFOLIO_PARAMS, PortfolioParams
from strikechain.engine.signing import DEFAULT_DOMAIN, SigningDomain
from strikechain.engine.units import INT64_MAX, NANOS_PER_DAY, NANOS_PER_HOUR, NANOS_PER_SECOND

PPM: Final = 1_000_000
PPB: Final = 1_000_000_000


class MarginParams(msgspec.Struct, frozen=True, kw_only=True):
    """Standard margin: perps by notional at the mark, short options by Deribit's standard rule.

    Perps: defaults are dYdX v4's large-cap tier (5% initial, 3% maintenance) of the position's
    notional at the mark.

    Short options (Deribit's standard margin in USDC-linear terms, per lot, ``S`` the index,
    ``m`` the option's mark, ``OTM`` how far out of the money the strike ``K`` is, in money:
    ``max(0, K - S)`` for calls, ``max(0, S - K)`` for puts, so ``OTM% x S = OTM``):

    - initial ``max(base x S - OTM, floor x S) + m`` (15% less the distance out of the money,
      never below 10% of the index), and never below the maintenance margin;
    - maintenance ``maintenance x S + m`` (7.5%) for calls, and for puts
      ``max(maintenance x S, put_mark_floor x m) + m``.

    The put floor translates Deribit's coin rule ``max(0.075, 0.075 x mark) + mark`` (in BTC per
    BTC of underlying) by multiplying it by the index, which is what converts coin amounts to
    USDC: ``max(7.5% x S, 7.5% x m) + m``, exact, not an approximation. In coin terms it is
    there because an inverse put's coin value is unbounded as the price falls; in linear terms a
    put's value is bounded by its strike, but the floor still does work: it binds only when the
    put's mark exceeds the index (the underlying has fallen below about half the strike), where
    a charge proportional to the collapsed index would shrink just as the liability has grown;
    tying it to the mark keeps maintenance proportional to what is owed. Zero turns it off.

    A long option needs its premium only (its requirement is its value at the mark).
    """

    perp_initial_ppm: int = 50_000
    perp_maintenance_ppm: int = 30_000
    option_initial_base_ppm: int = 150_000
    """Short options: initial margin before the out-of-the-money relief, of the index."""
    option_initial_floor_ppm: int = 100_000
    """Short options: the lowest initial margin, of the index, however far out of the money."""
    option_maintenance_ppm: int = 75_000
    """Short options: maintenance margin, of the index."""
    option_put_mark_floor_ppm: int = 75_000
    """Short puts: maintenance is at least this fraction of the put's mark (plus the mark)."""

    def __post_init__(self) -> None:
        invariant(
            0 < self.perp_maintenance_ppm < self.perp_initial_ppm <= PPM,
            "perp margin: 0 < maintenance < initial <= 100%",
        )
        invariant(
            0
            < self.option_maintenance_ppm
            <= self.option_initial_floor_ppm
            <= self.option_initial_base_ppm
            <= PPM,
            "option margin: 0 < maintenance <= initial floor <= initial base <= 100% of the index",
        )
        invariant(
            0 <= self.option_put_mark_floor_ppm <= PPM,
            "option margin: the put floor is between 0 and 100% of the mark",
        )


class PositionLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Position limits per instrument, in the instrument's lots (perps and options apart, as
    their lots differ); 0 means no limit, the default, so a venue that sets none is unchanged.

    - ``*_open_interest_cap_lots``: the instrument's long open interest (total long lots);
    - ``*_position_cap_lots``: one account's ``|position|`` in the instrument;
    - ``perp_liquidity_lots``: the size a perp's market can absorb; initial margin grows with
      ``|position| / liquidity`` (:func:`strikechain.engine.position_limits.size_scaled_ppm`), so a
      thin market cannot carry a position it could never liquidate. It is a parameter, changed
      like every other (by a timelocked parameter change), never read from the live book, which
      anyone can spoof for a block to lower everyone's margin.

    The engine checks the caps on the order path, treating every order as if all of it filled
    (:func:`strikechain.engine.position_limits.check_caps`).
    """

    perp_open_interest_cap_lots: int = 0
    perp_position_cap_lots: int = 0
    perp_liquidity_lots: int = 0
    option_open_interest_cap_lots: int = 0
    option_position_cap_lots: int = 0

    def __post_init__(self) -> None:
        for open_interest, position in (
            (self.perp_open_interest_cap_lots, self.perp_position_cap_lots),
            (self.option_open_interest_cap_lots, self.option_position_cap_lots),
        ):
            invariant(open_interest >= 0 and position >= 0, "position limits are not negative")
            invariant(
                not (open_interest and position) or position <= open_interest,
                "a position cap is at most the open-interest cap",
            )
        invariant(self.perp_liquidity_lots >= 0, "the liquidity parameter is not negative")


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
    limits: PositionLimits = PositionLimits()
    portfolio: PortfolioParams = DEFAULT_PORTFOLIO_PARAMS
    """Portfolio margin, for the sub-ledgers that choose it (``SetMarginMode``)."""
    dynamic: DynamicParams | None = None
    """Dynamic margin (:mod:`strikechain.engine.dynamic`); None: margin rates stay as set."""
    liquidation: LiquidationParams | None = DEFAULT_LIQUIDATION_PARAMS
    """How queued sub-ledgers are closed (:mod:`strikechain.engine.liquidator`): the lane by
    default, or the keeper-auction baseline; None: they wait in the queue (for tests of the
    queue alone)."""
    auctions: AuctionParams | None = None
    """Long-block and price-monitoring auctions of the underlying's markets
    (:mod:`strikechain.engine.auction_triggers`); None: its markets never leave their matching
    mode."""


class VenueConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's genesis parameters: its underlyings and its named system accounts."""

    underlyings: dict[str, UnderlyingParams] = msgspec.field(default_factory=dict)
    fee_pool: str = "fee-pool"
    insurance_fund: str = "insurance-fund"
    dust: str = "dust"
    """Where rounding remainders of funding and settlement go, so money never vanishes."""
    backstop: str = "backstop"
    """The backstop pool's account: an ordinary account (funded by deposits, margined like any
    other) whose sub-ledger on an underlying takes what the book cannot absorb of a
    liquidation, at a penalty, as far as its own margin allows."""
    signing: SigningDomain = DEFAULT_DOMAIN
    """The EIP-712 domain of signed reports (the settlement chain and contract)."""
    parameter_timelock_ns: int = NANOS_PER_DAY
    """A parameter change takes effect no sooner than this after the block that schedules it
    (block time; ``TIMELOCK_TOO_SHORT``): the notice users get to adjust their positions."""

    def __post_init__(self) -> None:
        names = (self.fee_pool, self.insurance_fund, self.dust, self.backstop)
        invariant(len(set(names)) == len(names), "system accounts have distinct names")
        invariant(
            0 <= self.parameter_timelock_ns <= INT64_MAX, "the parameter timelock is an int64 >= 0"
        )
