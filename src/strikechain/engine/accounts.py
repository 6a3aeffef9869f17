"""Accounts, sub-ledgers, exposures and markets: who holds what, in exact integers.

An account (an Ethereum address) holds one :class:`SubLedger` per underlying. A sub-ledger has
``cash`` (USDC minor units) and one :class:`Exposure` per instrument it has touched: the position
in lots, its cost basis, and the account's open orders on it in aggregate. Collateral, positions
and margin are per sub-ledger; moving collateral between sub-ledgers is a transaction.

The cash model (dYdX v4's quote balance): a fill moves the notional between the two sides'
``cash`` (the buyer pays, the seller receives) and the lots between their positions, so money is
conserved exactly at every fill: the sum of all cash plus the fee pool, insurance fund and dust
account is always deposits minus withdrawals. What a sub-ledger is worth is its **equity**,
``cash + sum(position x mark)``. Beside the position, the **cost basis** (signed quote units:
positive for what a long paid, negative for what a short received) gives the realized P&L of
reductions and the unrealized P&L ``position x mark - basis``; it moves no money. So:

- ``equity = cash + value`` where ``value = sum(position x mark per lot)``;
- ``unrealized = value - basis``; ``settled = cash + basis = equity - unrealized`` (deposits,
  transfers, realized P&L, fees, funding and settlements);
- ``withdrawable = min(equity, settled) - initial - reserve``: unrealized losses count, unrealized
  gains do not (they back margin but never leave the venue).

Rounding (named, in the venue's favour): fees ``CEIL``, rebates ``FLOOR``; a reduction removes
``basis x closed / position`` truncated towards zero, the rest stays with the position, so a
position closed in full takes its whole basis with it; per-lot marks ``FLOOR``.

Invariants (checked by ``Engine.check``): long lots equal short lots per market; each market's
holders are exactly the exposures with a non-zero position; each exposure's open-order
aggregates equal the sums over its account's open orders; cached values and requirements equal a
fresh computation at the current marks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.instruments import Instrument, OptionType
from strikechain.engine.units import QUOTE_SCALE

if TYPE_CHECKING:
    from strikechain.engine.auction_triggers import AuctionState, PriceHistory
    from strikechain.engine.book import Order
    from strikechain.engine.dynamic import DynamicState
    from strikechain.engine.oracle import OracleState
    from strikechain.engine.params import UnderlyingParams
    from strikechain.engine.portfolio import ScenarioTable


@dataclass(slots=True, kw_only=True)
class Market:
    """One listed instrument's economics: constants from its listing, and its live marks.

    Prices per unit of the underlying are USDC minor units; ``value_per_tick_lot`` turns a price
    in ticks and a size in lots into a notional exactly (``price x lots x value_per_tick_lot``),
    and ``lot_numerator / lot_denominator`` is one lot in units of the underlying.
    """

    name: str
    underlying: str
    state: UnderlyingState
    is_option: bool
    is_call: bool
    expiry_ns: int
    strike_minor: int
    """Per unit of the underlying; 0 for a perpetual."""
    tick_minor: int
    """One tick, in minor units per unit of the underlying."""
    value_per_tick_lot: int
    lot_numerator: int
    lot_denominator: int
    maker_fee_ppm: int = 0
    taker_fee_ppm: int = 0
    strike_per_lot: int = 0
    """Options: the strike for one lot, exact (``strike_ticks x value_per_tick_lot``); 0 for a
    perpetual."""
    initial_ppm: int = 0
    """Perps: of notional at the mark (before the size add-on). Options: a short's initial
    margin before the out-of-the-money relief, of the index."""
    maintenance_ppm: int = 0
    """Perps: of notional at the mark. Options: a short's, of the index."""
    initial_floor_ppm: int = 0
    """Options: a short's lowest initial margin, of the index."""
    put_mark_floor_ppm: int = 0
    """Puts: a short's maintenance margin is at least this fraction of its mark (plus the mark)."""
    liquidity_lots: int = 0
    """Perps: the size the market can absorb; initial margin grows with ``|position|`` over it
    (0: no size add-on). See :mod:`strikechain.engine.position_limits`."""
    open_interest_cap_lots: int = 0
    """The most long lots the market may hold (0: no cap)."""
    position_cap_lots: int = 0
    """The largest ``|position|`` one account may hold (0: no cap)."""
    mark_minor: int = 0
    """The mark per unit of the underlying; 0 until the oracle has given one."""
    mark_per_lot: int = 0
    index_per_lot: int = 0
    holders: dict[str, Exposure] = field(default_factory=dict)
    """Exposures with a non-zero position, by account, in the order they opened."""
    basis_ema_minor: int = 0
    """Perps: the averaged basis of the book over the index, per unit."""
    basis_updated_ns: int = 0
    premium_weighted: int = 0
    """Perps: sum of premium (ppb of the index) x ns since the last funding."""
    premium_ns: int = 0
    last_funding_ns: int = 0
    next_funding_ns: int = 0
    last_trade_ticks: int = 0
    """The price of the market's last fill (0 before the first)."""
    last_trade_ns: int = 0
    """Block time of the last fill."""
    auction: AuctionState | None = None
    """The trading mode (continuous, or a call auction and why), when the underlying's params
    turn auctions on (:mod:`strikechain.engine.auction_triggers`)."""
    history: PriceHistory | None = None
    """Recent trade prices, one sample per block that traded: price monitoring's references."""
    in_auction: bool = False
    """In a call auction: orders rest without matching until it uncrosses (mirrors
    ``auction``, for the order path)."""
    band_low_ticks: int = 0
    band_high_ticks: int = 1 << 62
    """Price monitoring's band for this block: a continuous fill outside it calls an auction
    instead (derived at the start of every block from ``history``; wide open when the market
    is not monitored)."""
    halted: bool = False
    """Halted by the operator: cancels only, no orders, amends or matching
    (:mod:`strikechain.engine.governance`)."""
    halt_reason: str = ""
    """Why, as the operator gave it (kept while halted, for market data)."""

    def per_lot(self, minor_per_unit: int) -> int:
        """A per-unit amount for one lot, ``FLOOR``."""
        return minor_per_unit * self.lot_numerator // self.lot_denominator

    @property
    def long_lots(self) -> int:
        """Long open interest (summed when asked: fills never need it)."""
        return sum(e.position for e in self.holders.values() if e.position > 0)

    @property
    def short_lots(self) -> int:
        return -sum(e.position for e in self.holders.values() if e.position < 0)


def market_for(instrument: Instrument, state: UnderlyingState) -> Market:
    """The market of a listing; raises ``INVALID_INSTRUMENT`` if its grid is not in whole minor
    units (a tick must be a whole number of USDC minor units, and so must a tick of one lot)."""
    tick = _whole_minor(instrument.tick_size, "a tick")
    lot_numerator, lot_denominator = (
        instrument.lot_size * instrument.contract_size
    ).as_integer_ratio()
    value, remainder = divmod(tick * lot_numerator, lot_denominator)
    if remainder or value <= 0:
        raise Rejection(
            RejectCode.INVALID_INSTRUMENT,
            f"{instrument.name}: one tick of one lot must be a whole number of USDC minor units",
        )
    market = Market(
        name=instrument.name,
        underlying=instrument.underlying,
        state=state,
        is_option=instrument.is_option,
        is_call=instrument.option_type == OptionType.CALL,
        expiry_ns=instrument.expiry_ns,
        strike_minor=instrument.strike_ticks * tick,
        strike_per_lot=instrument.strike_ticks * value,
        tick_minor=tick,
        value_per_tick_lot=value,
        lot_numerator=lot_numerator,
        lot_denominator=lot_denominator,
    )
    params = state.params
    if params is not None:
        apply_params(market, params, state.margin_multiplier_ppm)
    return market


def apply_params(market: Market, params: UnderlyingParams, multiplier_ppm: int) -> None:
    """The market's fees, position limits, liquidity add-on and margin rates from its
    underlying's parameters (at listing, and when a parameter change comes into force)."""
    fees, margin, limits = params.fees, params.margin, params.limits
    if market.is_option:
        market.maker_fee_ppm, market.taker_fee_ppm = fees.option_maker_ppm, fees.option_taker_ppm
        if not market.is_call:
            market.put_mark_floor_ppm = margin.option_put_mark_floor_ppm
        market.open_interest_cap_lots = limits.option_open_interest_cap_lots
        market.position_cap_lots = limits.option_position_cap_lots
    else:
        market.maker_fee_ppm, market.taker_fee_ppm = fees.perp_maker_ppm, fees.perp_taker_ppm
        market.liquidity_lots = limits.perp_liquidity_lots
        market.open_interest_cap_lots = limits.perp_open_interest_cap_lots
        market.position_cap_lots = limits.perp_position_cap_lots
    set_margin_rates(market, params, multiplier_ppm)


def set_margin_rates(market: Market, params: UnderlyingParams, multiplier_ppm: int) -> None:
    """The market's initial and maintenance rates: the configured ones times dynamic margin's
    multiplier (``CEIL``, at most 100%; 1x unless dynamic margin is on)."""
    margin = params.margin
    if market.is_option:
        rates = (
            margin.option_initial_base_ppm,
            margin.option_maintenance_ppm,
            margin.option_initial_floor_ppm,
        )
    else:
        rates = (margin.perp_initial_ppm, margin.perp_maintenance_ppm, 0)
    initial, maintenance, floor = [
        min(-(-rate * multiplier_ppm // 1_000_000), 1_000_000) for rate in rates
    ]
    market.initial_ppm, market.maintenance_ppm = initial, maintenance
    if market.is_option:
        market.initial_floor_ppm = floor


def _whole_minor(size: Decimal, what: str) -> int:
    numerator, denominator = (size * QUOTE_SCALE).as_integer_ratio()
    if denominator != 1 or numerator <= 0:
        raise Rejection(
            RejectCode.INVALID_INSTRUMENT, f"{what} of {size} USDC is not whole minor units"
        )
    return numerator


@dataclass(slots=True, kw_only=True)
class UnderlyingState:
    """One underlying's oracle, markets and sub-ledgers.

    ``epoch`` counts mark changes: a sub-ledger whose cached values were computed at another
    epoch recomputes them before it is used, so a price update costs nothing until an account
    is touched (and the end-of-block health scan).
    """

    name: str
    params: UnderlyingParams | None
    oracle: OracleState | None
    restricted: bool = False
    """The circuit breaker is open (or there is no index yet): only makers and reduce-only
    orders may add to books on this underlying. Mirrors the oracle, for the order path."""
    epoch: int = 0
    checked_epoch: int = 0
    """The epoch at the last end-of-block health check."""
    committed_epoch: int = 0
    """The epoch at the last state root: if the marks moved since, every holder's exit value
    (in its leaf) did too."""
    epoch_ns: int = 0
    epoch_index: int = 0
    epoch_confidence: int = 0
    """Block time, index and oracle confidence when the epoch last moved: the inputs of the
    portfolio margin's scenario table, fixed for the epoch (whenever the table is built)."""
    margin_multiplier_ppm: int = 1_000_000
    """Dynamic margin's multiplier (:mod:`strikechain.engine.dynamic`) on every margin rate and
    on the portfolio margin's spot range; 1x unless the underlying's params turn it on."""
    dynamic: DynamicState | None = None
    """Dynamic margin's estimator state, when the underlying's params turn it on."""
    stressed: bool = False
    """Stress mode: a liquidation backlog or an open circuit breaker. Its takers may only
    reduce risk and are capped per block (decided after the liquidation lane, every block)."""
    stress_takers: int = 0
    """Takers admitted in stress mode in the current block (per-block scratch)."""
    scenario_table: ScenarioTable | None = None
    """The portfolio margin's table of this epoch (derived: rebuilt when the epoch moves)."""
    mark_path_ppm: int = 0
    """The marks' path length: the sum over mark updates of the largest move of any mark (and of
    the index), in ppm of the index per lot. A sub-ledger whose margin was proven safe for a
    path of ``x`` more is not re-checked until the path grows past it (derived: restarts at 0,
    with every sub-ledger unproven, after a restore)."""
    path_index: int = 0
    """The index at the last mark update, for the next step of the path."""
    scenario_epoch: int = -1
    scenario_index: dict[str, int] = field(default_factory=dict)
    """Instrument -> its row in ``scenario_table``."""
    marked_ns: int = 0
    """Block time of the last marking."""
    mark_interval_ns: int = 0
    """Marks are recomputed when the index changes, and otherwise at most this often."""
    vol_nodes: dict[int, tuple[int, ...]] = field(default_factory=dict)
    """The oracle's vol nodes the option marks were computed from."""
    options: int = 0
    """How many option markets are listed."""
    markets: dict[str, Market] = field(default_factory=dict)
    ledgers: dict[str, SubLedger] = field(default_factory=dict)
    holders: dict[str, SubLedger] = field(default_factory=dict)
    """Sub-ledgers with at least one position, by account."""


@dataclass(slots=True, kw_only=True)
class Exposure:
    """A sub-ledger's position in one instrument, and its open orders there in aggregate.

    ``value``, ``initial``, ``maintenance`` and ``reserve`` are cached at the sub-ledger's epoch.
    A change only flags the exposure, and the engine recomputes it when an exact answer is next
    needed, so a burst of fills and cancels costs one recomputation. Flags, from mild to severe:

    - ``dirty`` alone (a cancel, an amend down): the cached requirement can only be too high,
      so it is still a safe upper bound;
    - ``dirty`` with ``pending`` (an order added on the fast path): the cached requirement plus
      ``pending`` is an upper bound (see ``MarginPolicy.order_bound``);
    - ``moved`` (a fill, a settlement): the position changed, and so did value, maintenance and
      everything else: recomputed before any margin decision or health check.
    """

    ledger: SubLedger
    market: Market
    position: int = 0
    """Lots: positive long, negative short."""
    basis: int = 0
    """Signed quote units: what the open position cost (long) or brought in (short)."""
    realized: int = 0
    buy_lots: int = 0
    buy_value: int = 0
    """Sum of price x remaining lots x value per tick-lot over open buy orders."""
    sell_lots: int = 0
    sell_value: int = 0
    buy_loss: int = 0
    """Sum of loss per lot x remaining lots over open buy orders (see ``Order.loss_per_lot``)."""
    sell_loss: int = 0
    value: int = 0
    initial: int = 0
    maintenance: int = 0
    reserve: int = 0
    dirty: bool = False
    """The cached values may be out of date (listed in the sub-ledger's ``dirty``)."""
    moved: bool = False
    """The position moved since: the cached values are not even an upper bound."""
    pending: int = 0
    """Upper bounds of what orders added since the last computation may require."""


def with_position(exposure: Exposure, position: int) -> Exposure:
    """A detached copy of ``exposure`` holding ``position`` lots with the same open orders: what
    margin would require after a fill (what-if margin, the backstop pool's capacity). Its cached
    values are empty; it belongs to no index."""
    return Exposure(
        ledger=exposure.ledger,
        market=exposure.market,
        position=position,
        buy_lots=exposure.buy_lots,
        buy_value=exposure.buy_value,
        buy_loss=exposure.buy_loss,
        sell_lots=exposure.sell_lots,
        sell_value=exposure.sell_value,
        sell_loss=exposure.sell_loss,
    )


@dataclass(slots=True, kw_only=True)
class SubLedger:
    """One account's collateral, positions and margin on one underlying."""

    account: str
    underlying: str
    state: UnderlyingState
    cash: int = 0
    exposures: dict[str, Exposure] = field(default_factory=dict)
    positions: int = 0
    """How many exposures hold a non-zero position."""
    epoch: int = -1
    dirty: list[Exposure] = field(default_factory=list)
    """Exposures to recompute before the totals are read (those still flagged ``dirty``)."""
    moved: int = 0
    """How many exposures are flagged ``moved``."""
    pending: int = 0
    """Sum of the exposures' ``pending``."""
    value: int = 0
    basis: int = 0
    initial: int = 0
    maintenance: int = 0
    reserve: int = 0
    in_liquidation: bool = False
    margin_call: bool = False
    """Dynamic margin's ladder: equity below the search level (a multiple of maintenance)."""
    safe_until_path: int = -1
    """Healthy at least until its underlying's ``mark_path_ppm`` passes this (derived)."""
    portfolio: bool = False
    """Portfolio margin (:mod:`strikechain.engine.portfolio`): ``initial`` and ``maintenance``
    are the portfolio model's for its positions (recomputed when a position or the epoch moves),
    not the sum of the exposures' standard requirements; open orders still reserve as in
    standard margin."""
    touched: bool = False
    """Its money or positions moved this block: the end-of-block health check looks at it."""
    leaf_index: int = 0
    """Its leaf in the state commitment (1, 2, ... in the order sub-ledgers first moved money
    or positions; 0 until then, index 0 being the system accounts' leaf)."""
    leaf_stale: bool = False
    """It moved since the last state root: its leaf is rehashed at the next one."""
    realized: int = 0
    fees: int = 0
    """Fees paid (negative: rebates received)."""
    funding: int = 0
    """Funding received (negative: paid)."""
    settlements: int = 0
    """Option settlement payouts received (negative: paid)."""
    insured: int = 0
    """Negative equity the insurance fund covered once the sub-ledger was flat."""
    deposited: int = 0
    withdrawn: int = 0
    transferred: int = 0
    """Net collateral moved in from the account's other sub-ledgers."""

    @property
    def equity(self) -> int:
        return self.cash + self.value

    @property
    def unrealized(self) -> int:
        return self.value - self.basis

    @property
    def free_collateral(self) -> int:
        """Equity beyond initial margin and open-order reserves: what new risk may use."""
        return self.cash + self.value - self.initial - self.reserve

    @property
    def withdrawable(self) -> int:
        """Free collateral without unrealized gains: what may leave the sub-ledger."""
        return self.cash + min(self.value, self.basis) - self.initial - self.reserve

    @property
    def maintenance_excess(self) -> int:
        """Equity above maintenance; negative means the sub-ledger is liquidatable."""
        return self.cash + self.value - self.maintenance

    def exposure(self, market: Market) -> Exposure:
        """The exposure to ``market``, created empty on first use."""
        exposure = self.exposures.get(market.name)
        if exposure is None:
            exposure = self.exposures[market.name] = Exposure(ledger=self, market=market)
        return exposure


@dataclass(slots=True)
class Account:
    """One account's open orders (oldest first), client order ids, sub-ledgers (by underlying)
    and exposures (by instrument, the same objects as in the sub-ledgers: one lookup on the
    order path)."""

    orders: dict[int, Order]
    client_ids: dict[str, int]
    ledgers: dict[str, SubLedger]
    exposures: dict[str, Exposure]
