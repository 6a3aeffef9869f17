"""Liquidation arithmetic: bankruptcy prices, order limits, step sizes, fees, the backstop price,
the insurance draw and auto-deleveraging, as pure integer functions.

The engine's liquidation lane (:mod:`strikechain.engine.liquidator`) composes these; nothing
here reads state, logs or emits. Amounts are
USDC minor units (``_quote``), sizes lots, prices per lot in minor units (``_per_lot``: what
``Market.mark_per_lot`` holds) unless named ``_ticks``, rates parts per million (``_ppm``).
``side`` is always the side of the **closing trade of the liquidated sub-ledger**: :data:`SELL`
(-1) closes a long, :data:`BUY` (+1) closes a short (:func:`closing_side`).

The path, in the order the lane is meant to take it (after dYdX v4, Hyperliquid and Derive):

1. a sub-ledger below maintenance margin is closed in steps: each block at most
   :func:`step_lots` of a position (10% of it, and $100k of notional per sub-ledger, as dYdX),
   by an immediate-or-cancel order limited by :func:`ioc_limit_per_lot`, paying
   :func:`liquidation_fee` to the insurance fund;
2. what the book cannot absorb inside the band is taken by the backstop pool at
   :func:`backstop_take_price_per_lot`: the penalty price (:func:`backstop_price_per_lot`,
   Hyperliquid's backstop vault) bounded by the bankruptcy price and the mark;
3. a deficit (negative equity) is paid by the insurance fund, :func:`insurance_draw`;
4. what the fund cannot pay is socialized last by auto-deleveraging opposite positions at the
   bankrupt side's bankruptcy price (:func:`adl_allocation`, :func:`adl_price_per_lot`).
   Pro-rata by size is the default: Hyperliquid's profit x leverage ranking
   (``PROFIT_LEVERAGE``) took far more from a few profitable traders than the bad debt at risk
   on 10 Oct 2025.

Pausing liquidations while the oracle's circuit breaker distrusts the price (and how long at
most) is decided elsewhere; these functions take the mark they are given. Which equity prices a
close: :func:`loss_budget` (the sub-ledger's equity while solvent, what the insurance fund can
still cover once bankrupt), shared over positions by :func:`attribute` (by notional at the
mark, exact to the minor unit).

Formulas (``M`` the mark per lot, ``E`` the equity attributed to the position, ``P`` its signed
lots, ``PPM`` = 10**6), and the rounding of each, always in the venue's or the insurance fund's
favour (``CEIL`` towards +inf, ``FLOOR`` towards -inf, also for negative values):

- **bankruptcy price** ``B = M - E / P``: closing all ``P`` lots at ``X`` moves equity to
  ``E + P x (X - M)``, zero at ``B``. A long (sold) ``CEIL``, a short (bought back) ``FLOOR``: the
  closing trade is never at a price worse for the sub-ledger than ``B``, so closing at the
  rounded price leaves equity in ``[0, |P|)`` minor units, never a rounding deficit. ``B`` may
  be at or below zero for a long whose equity exceeds its value (it is compared, never quoted).
- **IOC limit**: a sell no lower than ``max(CEIL(M x (PPM - band) / PPM), B)`` while ``B <= M``,
  else the band edge alone (equity is already gone; the fund pays what the book cannot); a buy
  no higher than ``min(FLOOR(M x (PPM + band) / PPM), B)`` while ``B >= M``, else the edge. The
  edges round inwards, so the limit is never outside the band. In ticks (:func:`limit_ticks`):
  a sell ``CEIL(limit / value_per_tick_lot)`` (at least one tick), a buy ``FLOOR``: never a
  worse price than computed.
- **step** ``min(|P|, max(CEIL(|P| x share / PPM), CEIL(minimum / M)), FLOOR(room / M))`` with
  ``room = cap - already``; the share term is at least one lot, so small positions finish, and
  the minimum notional (1,000 USDC) keeps a position's tail from shrinking 10% a block.
  The first step of a block (``already == 0``) closes at least one lot even if one lot's
  notional exceeds the cap, or a position of such lots could never be liquidated.
- **fee** ``min(CEIL(notional x fee / PPM), max(0, equity after the close))``.
- **backstop price** a long bought from at ``FLOOR(M x (PPM - penalty) / PPM)``, a short sold
  to at ``CEIL(M x (PPM + penalty) / PPM)``; the backstop takes at ``min(M, max(that, B))`` for a
  long (``max(M, min(that, B))`` a short): the penalty while the equity covers it, all the
  equity when it does not, the mark once there is none.
- **insurance draw** ``paid = min(deficit, fund)``, ``uncovered = deficit - paid``.
- **ADL** pro-rata: candidate ``i`` holding ``h_i`` of ``H`` lots closes ``FLOOR(L x h_i / H)``,
  and the ``L - sum`` lots left over go one each to the largest remainders
  ``L x h_i mod H``, ties by account name (largest-remainder method): the allocations sum to
  ``L`` exactly and each is within one lot of its exact share ``L x h_i / H``. Weighted by
  ``|lots|``, not notional: every candidate holds the same instrument, so at one mark the two
  are proportional, and lots need no mark, stay exact, and make ``share <= h_i`` automatic.
  Profit x leverage: ``(pnl / notional) x (notional / equity) = pnl / equity``, compared as an
  exact fraction, highest first (candidates with no positive equity first of all, by pnl),
  ties by account name; each closes in full before the next.

Worked examples (BTC perp at 100,000 USDC, lot 0.001 BTC: ``M`` = 100_000_000 minor units per
lot; a tick of 1 USDC, so ``value_per_tick_lot`` = 1_000):

- A long of 1_000 lots (1 BTC) with 2,000 USDC of equity: ``B = 100_000_000 - 2_000_000_000 /
  1_000 = 98_000_000``. With a 5% band the sell edge is 95_000_000, ``B`` is inside it, so the
  limit is 98_000_000, 98_000 ticks. With 10,000 USDC of equity ``B`` = 90_000_000 is outside the
  band: the limit is the edge, 95_000_000. With -500 USDC ``B`` = 100_500_000 is above the mark:
  the limit is the edge too.
- A long of 3 lots with 10 minor units of equity: ``B = CEIL(100_000_000 - 10 / 3) =
  99_999_997``, leaving ``10 + 3 x (99_999_997 - 100_000_000) = 1`` minor unit. A short of 3:
  ``FLOOR(100_000_000 + 10 / 3) = 100_000_003``, leaving 1.
- Step at 10% and a $100k cap: 1_000 lots close 100; 30_000 lots close 1_000 (the cap: 10**11 /
  10**8); 5 lots close 1; with 99,950 USDC already closed this block, none.
- Fee at 1%: 100 lots sold at 98_000_000 are 9,800 USDC of notional, a 98 USDC fee; 50 USDC if
  only 50 USDC of equity remains.
- Backstop at a 2% penalty: a long is bought from at 98_000_000, a short sold to at 102_000_000.
- Insurance: a 500 USDC deficit and a 300 USDC fund give (300, 200).
- ADL of 10 lots against shorts A 7, B 5, C 3 (H = 15): exact shares 4.67, 3.33, 2; floors
  4, 3, 2; the one lot left goes to A (remainder 10/15): A 5, B 3, C 2. By profit x leverage
  with pnl/equity A 0.1, B 0.3, C 0.5: C 3, B 5, A 2.

Limits: ``equity`` here is what the caller attributes to the position; for a sub-ledger with
one position that is its equity (dYdX's fillable price spreads it across positions by their
maintenance margin, a policy for the lane, not this arithmetic). Python integers do not
overflow; every input is checked with :func:`~strikechain.engine.invariant.invariant`, as a bad
input here is a bug of the lane, not a user's mistake. :class:`LiquidationParams` is a msgspec
struct like the other parameter tables (the module, struct included, compiles with mypyc).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from fractions import Fraction
from typing import Final, NamedTuple

import msgspec

from strikechain.engine.invariant import invariant

PPM: Final = 1_000_000
BUY: Final = 1
SELL: Final = -1
LIQUIDATION_FEE_PPM_MAX: Final = 15_000
"""dYdX v4's cap on the liquidation fee: 1.5% of the closed notional."""
SUBLEDGERS_PER_BLOCK_LIMIT: Final = 10_000
"""The most any table may allow per block: bounds the lane's work in one block."""
KEEPER_AUCTIONS_LIMIT: Final = 100_000
"""The most keeper auctions open at once (the baseline policy): bounds its state."""
_NANOS_PER_MINUTE: Final = 60 * 1_000_000_000


class LiquidationPolicy(enum.StrEnum):
    """How an underlying closes the sub-ledgers in its liquidation queue."""

    LANE = "LANE"
    """The engine's own lane, every block, ahead of new orders (the default)."""
    KEEPER_AUCTION = "KEEPER_AUCTION"
    """The lab's 2020 baseline: each position is announced in a timed auction that keepers bid
    on with transactions; the best bid when time is up wins, whatever it is."""


class AdlMode(enum.StrEnum):
    """How auto-deleveraging chooses the opposite positions it closes."""

    PRO_RATA_RISK = "PRO_RATA_RISK"
    """Every opposite position closes in proportion to its size."""
    PROFIT_LEVERAGE = "PROFIT_LEVERAGE"
    """Hyperliquid's ranking: highest unrealized profit x leverage closes first, in full."""


class LiquidationParams(msgspec.Struct, frozen=True, kw_only=True):
    """The liquidation lane's limits and prices.

    Defaults: 50 sub-ledgers per block; at most 10% of a position and 100,000 USDC of notional
    per sub-ledger per block (dYdX v4); the IOC order within 5% of the mark; a 1% fee of the
    closed notional to the insurance fund (at most 1.5%, dYdX's cap, and never more than the
    equity left); the backstop takes the rest at a 2% penalty; pro-rata ADL.
    """

    subledgers_per_block_max: int = 50
    step_share_ppm_max: int = 100_000
    step_notional_quote_min: int = 1_000 * 10**6
    """A step closes at least this much notional (or the whole position), within the cap."""
    notional_per_block_quote_max: int = 100_000 * 10**6
    price_band_ppm: int = 50_000
    fee_ppm: int = 10_000
    backstop_penalty_ppm: int = 20_000
    adl_mode: AdlMode = AdlMode.PRO_RATA_RISK
    policy: LiquidationPolicy = LiquidationPolicy.LANE
    stale_price_band_ppm: int = 100_000
    """The band once the circuit breaker has been open longer than the oracle's maximum pause:
    liquidation resumes on the last trusted price, with this wider band around it."""
    stress_taker_share_ppm: int = 250_000
    """Stress mode (a liquidation backlog or an open breaker on the underlying): its takers may
    use at most this share of a block's transactions, and may only reduce risk."""
    keeper_auction_ns: int = 10 * _NANOS_PER_MINUTE
    """``KEEPER_AUCTION``: how long an announced auction takes bids (MakerDAO's 2020 flip
    auctions gave each bid 10 minutes)."""

    def __post_init__(self) -> None:
        invariant(
            0 < self.subledgers_per_block_max <= SUBLEDGERS_PER_BLOCK_LIMIT,
            f"liquidation: 0 < sub-ledgers per block <= {SUBLEDGERS_PER_BLOCK_LIMIT}",
        )
        invariant(
            0 < self.step_share_ppm_max <= PPM, "liquidation: 0 < share of a position <= 100%"
        )
        invariant(
            self.notional_per_block_quote_max > 0, "liquidation: the notional cap is positive"
        )
        invariant(
            0 <= self.step_notional_quote_min <= self.notional_per_block_quote_max,
            "liquidation: 0 <= the minimum step notional <= the notional cap",
        )
        invariant(0 <= self.price_band_ppm < PPM, "liquidation: the price band is below 100%")
        invariant(
            0 <= self.fee_ppm <= LIQUIDATION_FEE_PPM_MAX,
            "liquidation: the fee is between 0 and 1.5% of the closed notional",
        )
        invariant(
            0 <= self.backstop_penalty_ppm < PPM, "liquidation: the backstop penalty is below 100%"
        )
        invariant(
            self.price_band_ppm <= self.stale_price_band_ppm < PPM,
            "liquidation: the band on a stale price is at least the band, below 100%",
        )
        invariant(
            0 < self.stress_taker_share_ppm <= PPM,
            "liquidation: stress mode admits a share of the block in (0, 100%] to takers",
        )
        invariant(self.keeper_auction_ns > 0, "liquidation: keeper auctions take time")


DEFAULT_LIQUIDATION_PARAMS: Final = LiquidationParams()


class AdlCandidate(NamedTuple):
    """An opposite-side position auto-deleveraging may close (amounts in minor units)."""

    account: str
    position_lots: int
    """Signed; every candidate of one allocation is on the same side."""
    unrealized_pnl_quote: int
    equity_quote: int
    notional_quote: int


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _check_side(side: int) -> None:
    invariant(side in (BUY, SELL), "side is BUY (+1) or SELL (-1)")


def closing_side(position_lots: int) -> int:
    """The side of the trade that closes ``position_lots``: SELL a long, BUY a short."""
    invariant(position_lots != 0, "a flat position has no closing side")
    return SELL if position_lots > 0 else BUY


def bankruptcy_price_per_lot(equity_quote: int, position_lots: int, mark_per_lot: int) -> int:
    """The per-lot price at which closing all ``position_lots`` leaves equity at zero:
    ``mark - equity / lots``, ``CEIL`` for a long, ``FLOOR`` for a short, so closing at it
    leaves equity in ``[0, |lots|)``, never below zero."""
    invariant(position_lots != 0, "a flat position has no bankruptcy price")
    if position_lots > 0:
        return mark_per_lot - equity_quote // position_lots
    return mark_per_lot + equity_quote // -position_lots


def band_edge_per_lot(side: int, mark_per_lot: int, band_ppm: int) -> int:
    """The worst price the band allows the closing trade, rounded inwards: a sell
    ``CEIL(mark x (1 - band))``, a buy ``FLOOR(mark x (1 + band))``."""
    _check_side(side)
    invariant(mark_per_lot >= 0, "the mark is not negative")
    invariant(0 <= band_ppm < PPM, "the band is below 100%")
    if side == SELL:
        return _ceil_div(mark_per_lot * (PPM - band_ppm), PPM)
    return mark_per_lot * (PPM + band_ppm) // PPM


def ioc_limit_per_lot(side: int, mark_per_lot: int, band_ppm: int, bankruptcy_per_lot: int) -> int:
    """The liquidation order's limit per lot: the bankruptcy price when it lies between the band
    edge and the mark (the mark itself included: nothing to lose, nothing sold below it), the
    band edge when it lies beyond the band, or on the far side of the mark (equity already gone:
    the insurance fund pays what the book cannot; the lane never asks with a budget below zero,
    see :func:`loss_budget`)."""
    edge = band_edge_per_lot(side, mark_per_lot, band_ppm)
    if side == SELL:
        if bankruptcy_per_lot <= mark_per_lot:
            return bankruptcy_per_lot if bankruptcy_per_lot > edge else edge
        return edge
    if bankruptcy_per_lot >= mark_per_lot:
        return bankruptcy_per_lot if bankruptcy_per_lot < edge else edge
    return edge


def limit_ticks(side: int, limit_per_lot: int, value_per_tick_lot: int) -> int:
    """A per-lot limit as a price in ticks, never worse than the limit: a sell ``CEIL`` and at
    least one tick, a buy ``FLOOR`` (0 when no positive tick is within the limit)."""
    _check_side(side)
    invariant(value_per_tick_lot > 0, "a tick of a lot is worth a positive amount")
    if side == SELL:
        ticks = _ceil_div(limit_per_lot, value_per_tick_lot)
        return ticks if ticks > 1 else 1
    ticks = limit_per_lot // value_per_tick_lot
    return ticks if ticks > 0 else 0


def per_lot_at_ticks(price_ticks: int, value_per_tick_lot: int) -> int:
    """A price in ticks as a per-lot amount, exact."""
    return price_ticks * value_per_tick_lot


def step_lots(
    position_lots: int,
    share_ppm: int,
    notional_cap_quote: int,
    mark_per_lot: int,
    already_notional_quote: int,
    minimum_notional_quote: int = 0,
) -> int:
    """How many lots of ``position_lots`` (signed) may close in this step:
    ``min(|P|, max(CEIL(|P| x share), CEIL(minimum / mark)), FLOOR((cap - already) / mark))``,
    and at least one lot in a sub-ledger's first step of the block (``already == 0``). 0 for a
    flat position or a spent cap; a zero mark puts no notional limit (nor minimum). The minimum
    (dYdX's ``MinPositionNotionalLiquidated``) keeps the share from shrinking a position
    geometrically over many blocks once it is small."""
    invariant(0 < share_ppm <= PPM, "the share of a position is in (0, 100%]")
    invariant(notional_cap_quote > 0, "the notional cap is positive")
    invariant(mark_per_lot >= 0, "the mark is not negative")
    invariant(already_notional_quote >= 0, "closed notional is not negative")
    invariant(minimum_notional_quote >= 0, "the minimum notional is not negative")
    held = position_lots if position_lots > 0 else -position_lots
    if held == 0:
        return 0
    lots = _ceil_div(held * share_ppm, PPM)
    if mark_per_lot > 0 and minimum_notional_quote:
        least = _ceil_div(minimum_notional_quote, mark_per_lot)
        lots = lots if lots > least else least
    if mark_per_lot > 0:
        room = notional_cap_quote - already_notional_quote
        by_notional = room // mark_per_lot if room > 0 else 0
        if already_notional_quote == 0 and by_notional < 1:
            by_notional = 1
        lots = lots if lots < by_notional else by_notional
    return lots if lots < held else held


def liquidation_fee(closed_notional_quote: int, fee_ppm: int, equity_after_quote: int) -> int:
    """The fee for closing ``closed_notional_quote``: ``CEIL(notional x fee)``, at most the
    equity left after the close (never below zero), so a fee never deepens a deficit."""
    invariant(closed_notional_quote >= 0, "closed notional is not negative")
    invariant(0 <= fee_ppm < PPM, "the fee is below 100%")
    fee = _ceil_div(closed_notional_quote * fee_ppm, PPM)
    available = equity_after_quote if equity_after_quote > 0 else 0
    return fee if fee < available else available


def backstop_price_per_lot(side: int, mark_per_lot: int, penalty_ppm: int) -> int:
    """The price at which the backstop pool takes what the book could not: the liquidated side
    pays the penalty. A long (``SELL``) is bought from at ``FLOOR(mark x (1 - penalty))``, a
    short (``BUY``) sold to at ``CEIL(mark x (1 + penalty))``."""
    _check_side(side)
    invariant(mark_per_lot >= 0, "the mark is not negative")
    invariant(0 <= penalty_ppm < PPM, "the penalty is below 100%")
    if side == SELL:
        return mark_per_lot * (PPM - penalty_ppm) // PPM
    return _ceil_div(mark_per_lot * (PPM + penalty_ppm), PPM)


def backstop_take_price_per_lot(
    side: int, mark_per_lot: int, penalty_ppm: int, bankruptcy_per_lot: int
) -> int:
    """The price at which the backstop pool takes a liquidated position: the penalty price
    (:func:`backstop_price_per_lot`) while the sub-ledger's equity covers it, else its
    bankruptcy price, never beyond the mark. A long: ``min(mark, max(penalty price,
    bankruptcy))``; a short: ``max(mark, min(penalty price, bankruptcy))``.

    Continuous in the equity: a well-collateralized position pays the penalty; one whose equity
    is smaller gives it all up (the backstop takes the position and its remaining margin, as
    Hyperliquid's vault does); a bankrupt one (equity at or below zero) changes hands at the
    mark, so the backstop never takes a loss on arrival and never deepens the deficit, which is
    the insurance fund's to pay."""
    penalty = backstop_price_per_lot(side, mark_per_lot, penalty_ppm)
    if side == SELL:
        price = penalty if penalty > bankruptcy_per_lot else bankruptcy_per_lot
        return price if price < mark_per_lot else mark_per_lot
    price = penalty if penalty < bankruptcy_per_lot else bankruptcy_per_lot
    return price if price > mark_per_lot else mark_per_lot


def loss_budget(equity_quote: int, fund_quote: int) -> int:
    """What closing a sub-ledger's positions may cost it below the mark: its equity while it is
    solvent (the insurance fund never subsidizes a solvent close), and once it is bankrupt what
    the fund can still cover (``equity + fund``, at least zero), so the lane never creates a
    deficit the fund cannot pay."""
    invariant(fund_quote >= 0, "the insurance fund is not negative")
    if equity_quote >= 0:
        return equity_quote
    budget = equity_quote + fund_quote
    return budget if budget > 0 else 0


def attribute(amount_quote: int, weights: Sequence[int]) -> list[int]:
    """``amount_quote`` shared by non-negative ``weights``: ``FLOOR(amount x w / W)`` each, the
    remainder to the first largest weight, so the shares sum to ``amount_quote`` exactly (with
    every weight zero, all to the first). dYdX spreads a sub-ledger's equity over its positions
    by maintenance margin to price each close; here by notional at the mark, which every
    position has."""
    invariant(len(weights) > 0, "something to attribute to")
    invariant(all(weight >= 0 for weight in weights), "weights are not negative")
    total = sum(weights)
    if total == 0:
        return [amount_quote] + [0] * (len(weights) - 1)
    shares = [amount_quote * weight // total for weight in weights]
    largest = max(range(len(weights)), key=lambda i: (weights[i], -i))
    shares[largest] += amount_quote - sum(shares)
    return shares


def socialized_loss(side: int, lots: int, price_per_lot: int, mark_per_lot: int) -> int:
    """What an auto-deleveraging fill of ``lots`` at ``price_per_lot`` costs the opposite
    position against the mark (``side`` the bankrupt position's closing side): a bankrupt long
    sells at its bankruptcy price above the mark, a bankrupt short buys below it."""
    _check_side(side)
    move = price_per_lot - mark_per_lot if side == SELL else mark_per_lot - price_per_lot
    return lots * move


def better_bid(side: int, price_ticks: int, best_ticks: int) -> bool:
    """Whether a keeper's bid beats the best so far (0: none). ``side`` is the liquidated
    position's closing side: a long is sold to the highest bid, a short bought back from the
    lowest offer."""
    _check_side(side)
    if best_ticks == 0:
        return True
    return price_ticks > best_ticks if side == SELL else price_ticks < best_ticks


def insurance_draw(deficit_quote: int, fund_quote: int) -> tuple[int, int]:
    """``(paid by the fund, left uncovered)`` for a deficit: the fund pays all it can."""
    invariant(deficit_quote >= 0, "a deficit is not negative")
    invariant(fund_quote >= 0, "the insurance fund is not negative")
    paid = deficit_quote if deficit_quote < fund_quote else fund_quote
    return paid, deficit_quote - paid


def adl_price_per_lot(equity_quote: int, position_lots: int, mark_per_lot: int) -> int:
    """The price of every auto-deleveraging fill: the bankrupt position's bankruptcy price
    (with ``equity_quote`` after the insurance draw), rounded so that the bankrupt side ends at
    or above zero; the opposite positions absorb exactly the uncovered deficit (up to that
    rounding). It does not depend on how many of the lots a fill closes."""
    return bankruptcy_price_per_lot(equity_quote, position_lots, mark_per_lot)


def _check_candidates(lots_to_close: int, candidates: Sequence[AdlCandidate]) -> None:
    invariant(lots_to_close >= 0, "lots to close are not negative")
    accounts = {candidate.account for candidate in candidates}
    invariant(len(accounts) == len(candidates), "ADL candidates are distinct accounts")
    longs = sum(1 for candidate in candidates if candidate.position_lots > 0)
    shorts = sum(1 for candidate in candidates if candidate.position_lots < 0)
    invariant(longs + shorts == len(candidates), "ADL candidates hold a position")
    invariant(longs == 0 or shorts == 0, "ADL candidates are all on one side")
    held = sum(abs(candidate.position_lots) for candidate in candidates)
    invariant(held >= lots_to_close, "ADL candidates hold fewer lots than must close")


def _pro_rata(lots_to_close: int, candidates: list[AdlCandidate]) -> list[tuple[str, int]]:
    total = sum(abs(candidate.position_lots) for candidate in candidates)
    floors: list[int] = []
    ranked: list[tuple[int, str, int]] = []  # (-remainder, account, index)
    for index, candidate in enumerate(candidates):
        share, remainder = divmod(lots_to_close * abs(candidate.position_lots), total)
        floors.append(share)
        ranked.append((-remainder, candidate.account, index))
    left = lots_to_close - sum(floors)
    ranked.sort()
    for _, _, index in ranked[:left]:
        floors[index] += 1
    return [
        (candidate.account, floors[index])
        for index, candidate in enumerate(candidates)
        if floors[index] > 0
    ]


def _profit_leverage_key(candidate: AdlCandidate) -> tuple[int, Fraction, str]:
    if candidate.equity_quote <= 0:
        return 0, Fraction(-candidate.unrealized_pnl_quote), candidate.account
    score = Fraction(candidate.unrealized_pnl_quote, candidate.equity_quote)
    return 1, -score, candidate.account


def adl_allocation(
    lots_to_close: int, candidates: Sequence[AdlCandidate], mode: AdlMode
) -> list[tuple[str, int]]:
    """``(account, lots)`` closed from each opposite position, summing to ``lots_to_close``,
    none above what it holds, only non-zero allocations; the same for any order of
    ``candidates``. ``PRO_RATA_RISK`` lists them by account name, ``PROFIT_LEVERAGE`` in the
    order it closes them. Refuses (invariant) candidates holding fewer lots than requested."""
    _check_candidates(lots_to_close, candidates)
    if lots_to_close == 0:
        return []
    if mode == AdlMode.PRO_RATA_RISK:
        return _pro_rata(lots_to_close, sorted(candidates, key=lambda c: c.account))
    invariant(mode == AdlMode.PROFIT_LEVERAGE, "a known ADL mode")
    allocation: list[tuple[str, int]] = []
    left = lots_to_close
    for candidate in sorted(candidates, key=_profit_leverage_key):
        if left == 0:
            break
        held = abs(candidate.position_lots)
        lots = held if held < left else left
        allocation.append((candidate.account, lots))
        left -= lots
    return allocation
