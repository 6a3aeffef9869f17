"""The hot agents' parameters: :class:`NoiseParams`, :class:`MarketMakerParams` and
:class:`ArbitrageurParams` (a scenario's ``params`` table for each kind). Frozen Structs that
check themselves and name the field on bad input; they live apart from the agents, which are
compiled (mypyc compiles no msgspec Struct). Each kind's docstring says what its fields do.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from strikechain.engine.units import NANOS_PER_MILLISECOND, NANOS_PER_SECOND
from strikechain.sim.agents.validation import (
    refuse,
    require_between,
    require_finite,
    require_non_negative,
    require_positive,
)

_NOISE: Final = "NoiseParams"
_MAKER: Final = "MarketMakerParams"
_ARBITRAGEUR: Final = "ArbitrageurParams"

MAX_RATE_PER_S: Final = 10_000.0


class NoiseParams(msgspec.Struct, frozen=True, kw_only=True):
    """A noise trader's parameters (see the module)."""

    instruments: tuple[str, ...]
    rate_per_s: float = 1.0
    size_lots_min: int = 1
    size_lots_max: int = 5
    buy_probability: float = 0.5
    take_probability: float = 0.6
    market_orders: bool = False
    through_bps: float = 10.0
    limit_offset_ticks_max: int = 5
    limit_lifetime_ns: int = 30 * NANOS_PER_SECOND
    cancel_probability: float = 0.0
    idle_check_ns: int = NANOS_PER_SECOND
    ticker_interval_ns: int = 0
    """How often it wants the touch (the ticker channel's interval; 0: after every block): a
    trader who acts every few seconds needs no tick-by-tick feed."""
    tip: int = 0

    def __post_init__(self) -> None:
        require_between(_NOISE, "rate_per_s", self.rate_per_s, 0.0, MAX_RATE_PER_S)
        if self.rate_per_s <= 0:
            raise refuse(_NOISE, "rate_per_s", "must be > 0", self.rate_per_s)
        if self.size_lots_min < 1:
            raise refuse(_NOISE, "size_lots_min", "must be >= 1", self.size_lots_min)
        if self.size_lots_max < self.size_lots_min:
            requirement = f"must be >= size_lots_min ({self.size_lots_min})"
            raise refuse(_NOISE, "size_lots_max", requirement, self.size_lots_max)
        for field in ("buy_probability", "take_probability", "cancel_probability"):
            require_between(_NOISE, field, getattr(self, field), 0.0, 1.0)
        for field in ("through_bps", "limit_offset_ticks_max", "tip"):
            require_non_negative(_NOISE, field, getattr(self, field))
        require_positive(_NOISE, "limit_lifetime_ns", self.limit_lifetime_ns)
        require_positive(_NOISE, "idle_check_ns", self.idle_check_ns)
        require_non_negative(_NOISE, "ticker_interval_ns", self.ticker_interval_ns)


MAX_LEVELS: Final = 20


class MarketMakerParams(msgspec.Struct, frozen=True, kw_only=True):
    """A market maker's parameters (see the module); loadable from a scenario table."""

    instruments: tuple[str, ...]
    """Names of the perpetuals and options it quotes."""
    poll_ns: int = 100 * NANOS_PER_MILLISECOND
    refresh_ns: int = 10 * NANOS_PER_SECOND
    requote_bps: float = 2.0
    levels: int = 2
    half_spread_bps: float = 5.0
    level_step_bps: float = 3.0
    perp_size_lots: int = 10
    basis_bps: float = 0.0
    option_half_spread_vol_points: float = 2.0
    option_level_step_vol_points: float = 1.0
    option_min_half_spread_ticks: int = 1
    option_size_lots: int = 1
    option_min_expiry_ns: int = 60 * NANOS_PER_SECOND
    vol_atm: float = 0.6
    vol_skew: float = -0.2
    vol_curvature: float = 0.5
    skew_bps_per_delta_unit: float = 0.0
    max_skew_bps: float = 50.0
    vega_skew_points_per_unit: float = 0.0
    """Options: vol points taken off the quotes' vol per unit of net vega (USDC per vol point),
    bids and asks alike: long vega, it quotes lower vols and sells vega. 0: no vega skew."""
    max_vega_skew_points: float = 5.0
    """The vega skew's clamp, in vol points."""
    max_delta_units: float = 0.0
    """0: no limit."""
    hedge_delta_units: float = 0.0
    """0: never hedges."""
    cancel_mode: Literal["cancel_all", "client_id", "amend"] = "cancel_all"
    markout_horizon_ns: int = NANOS_PER_SECOND
    markout_window_ns: int = 30 * NANOS_PER_SECOND
    markout_min_fills: int = 5
    withdraw_markout_bps: float = -5.0
    withdraw_after_ns: int = 0
    """0: never withdraws."""
    cooldown_ns: int = 30 * NANOS_PER_SECOND
    tip: int = 0
    """Priority fee over the base fee, in the mempool's fee unit."""
    spread_risk_multiple: float = 0.0
    """Perps: widen the half spread to at least this many standard deviations of the
    reference's move over the time a quote stands exposed (the venue's block interval, as the
    maker sees it in its notices' heights and times, plus its own feed latency), volatility
    estimated from its own reference feed. A maker on a slow chain quotes wider. 0: fixed."""

    def __post_init__(self) -> None:
        for field in ("poll_ns", "refresh_ns", "markout_horizon_ns", "markout_window_ns"):
            require_positive(_MAKER, field, getattr(self, field))
        for field in ("half_spread_bps", "option_half_spread_vol_points", "vol_atm"):
            require_positive(_MAKER, field, getattr(self, field))
        for field in (
            "requote_bps",
            "level_step_bps",
            "option_level_step_vol_points",
            "option_min_expiry_ns",
            "skew_bps_per_delta_unit",
            "max_skew_bps",
            "vega_skew_points_per_unit",
            "max_vega_skew_points",
            "max_delta_units",
            "hedge_delta_units",
            "withdraw_after_ns",
            "cooldown_ns",
            "tip",
            "spread_risk_multiple",
        ):
            require_non_negative(_MAKER, field, getattr(self, field))
        for field in ("basis_bps", "vol_skew", "vol_curvature", "withdraw_markout_bps"):
            require_finite(_MAKER, field, getattr(self, field))
        require_between(_MAKER, "levels", self.levels, 1, MAX_LEVELS)
        for field in ("perp_size_lots", "option_size_lots", "option_min_half_spread_ticks"):
            if getattr(self, field) < 1:
                raise refuse(_MAKER, field, "must be >= 1", getattr(self, field))
        if self.markout_min_fills < 1:
            raise refuse(_MAKER, "markout_min_fills", "must be >= 1", self.markout_min_fills)
        if self.half_spread_bps >= 10_000:
            raise refuse(_MAKER, "half_spread_bps", "must be < 10000", self.half_spread_bps)
        if self.cancel_mode not in ("cancel_all", "client_id", "amend"):
            requirement = "must be 'cancel_all', 'client_id' or 'amend'"
            raise refuse(_MAKER, "cancel_mode", requirement, self.cancel_mode)


class ArbitrageurParams(msgspec.Struct, frozen=True, kw_only=True):
    """An arbitrageur's parameters (see the module)."""

    instruments: tuple[str, ...]
    """Perpetuals it watches."""
    edge_bps: float = 5.0
    max_take_lots: int = 10
    max_position_lots: int = 100
    basis_bps: float = 0.0
    poll_ns: int = 0
    """0: checks on tickers only."""
    retry_ns: int = NANOS_PER_SECOND
    hedge_delta_units: float = 0.0
    """0: never hedges."""
    tip: int = 0

    def __post_init__(self) -> None:
        require_positive(_ARBITRAGEUR, "edge_bps", self.edge_bps)
        require_positive(_ARBITRAGEUR, "retry_ns", self.retry_ns)
        for field in ("poll_ns", "hedge_delta_units", "tip"):
            require_non_negative(_ARBITRAGEUR, field, getattr(self, field))
        require_finite(_ARBITRAGEUR, "basis_bps", self.basis_bps)
        for field in ("max_take_lots", "max_position_lots"):
            if getattr(self, field) < 1:
                raise refuse(_ARBITRAGEUR, field, "must be >= 1", getattr(self, field))
