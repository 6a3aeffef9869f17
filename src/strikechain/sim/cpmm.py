"""``cpmm``: a constant-product AMM on a layer 1, arbitraged against a reference price.

Why: issue 10 compares the venue with the design order books replaced on chain, a pool
``x y = k``. Its cost to liquidity providers is arbitrage, and theory prices it, so this small
model of its own (not the engine) both gives the lab its numbers and checks itself against the
theory. Floats throughout: this is a model of the world, not venue state.

Model
- The pool holds ``x`` base and ``y`` USDC; its price is ``p = y / x``. A trade charges a
  proportional fee ``gamma`` on the input amount (as Uniswap v2); only ``(1 - gamma)`` of the
  input enters the reserves, and the fee is kept *outside* them (paid to the LPs apart, in the
  input token). So ``k`` never changes, the liquidity ``l = sqrt(k)`` is constant and the pool's
  state is its price alone: ``x = l / sqrt(p)``, ``y = l sqrt(p)``. (Uniswap v2 adds the fee to
  the reserves instead; that grows ``k`` by each trade's fee and changes nothing at zero fee.)
- The reference price ``P`` follows a GBM, ``dP/P = drift dt + vol dW`` (annualized, 365-day
  years), drawn exactly in log space at the block times, every ``block_interval_ns``, for
  ``paths`` independent paths at once (arrays of paths by blocks). The pool starts at the
  reference. Only block times matter: the pool can trade nowhere else.
- At each block an arbitrageur who sees ``P`` trades the pool to the edge of the no-arbitrage
  band. Buying base costs ``p' / (1 - gamma)`` at the margin and selling it yields
  ``p' (1 - gamma)``, so there is no profit while ``P (1 - gamma) <= p <= P / (1 - gamma)``;
  outside, the arbitrageur moves the pool price to the nearer edge (``p' = P (1 - gamma)`` when
  buying, ``P / (1 - gamma)`` when selling), which maximizes its profit. With a gas cost it
  trades only if that profit exceeds the gas. In log space the band is ``|ln(P / p)| <= g``,
  ``g = -ln(1 - gamma)``, and a block's arbitrage is a clip of the pool's log price into it.
- The arbitrageur's profit is marked at the reference price of the block. For a trade from
  ``(x, y)`` to ``(x', y')`` the reserves lose ``P (x - x') + (y - y')`` against holding them
  (the loss versus rebalancing of that block: the rebalancing portfolio holds the pool's base
  between blocks and trades at ``P``); the arbitrageur gets that minus the fee it pays. So
  ``lvr`` (the reserves' loss, fees aside) = ``arbitrage profit + fees``, and the arbitrage
  profit is the LPs' loss versus rebalancing net of their fee income.

Theory, and what the tests check (``tests/sim/test_cpmm.py``)
- Loss-versus-rebalancing (Milionis, Moallemi, Roughgarden, Zhang, "Automated Market Making
  and Loss-Versus-Rebalancing", 2022): with continuous arbitrage and no fee, a constant-product
  pool loses ``sigma^2 / 8`` of its value per unit time. With discrete blocks and no fee, a
  block whose log price moves by ``r`` loses exactly ``1 - 1 / cosh(r / 2)`` of the pool value
  (about ``r^2 / 8``), so the expected loss per unit time stays ``sigma^2 / 8`` to relative
  order ``sigma^2 dt``: block time does not change LVR at zero fee (the loss sums the squared
  returns, the quadratic variation). Checked at zero fee and 100% vol: 0.9991, 0.9983 and
  1.0001 of ``sigma^2 / 8`` at 1 s, 12 s and 250 ms blocks (standard errors 0.0011, 0.0018,
  0.0004); every block trades.
- With a fee the pool's mispricing ``ln(P / p)`` is a random walk reflected into ``[-g, g]``.
  Milionis, Moallemi and Roughgarden, "Automated Market Making and Arbitrage Profits in the
  Presence of Fees" (2023), solve Poisson block times: the probability that a block holds a
  trade is ``P_trade = 1 / (1 + sqrt(2) g / sigma_b)`` (``sigma_b = sigma sqrt(dt)``), and for
  fast blocks the arbitrage profit is ``P_trade`` times LVR. For fixed block times (this model)
  Nezlobin and Tassy, "Loss-Versus-Rebalancing under Deterministic and Generalized
  block-times" (2025), give arbitrage profit / LVR ``~ 1 / (1 + g / (rho sigma_b))``, with
  ``rho = -zeta(1/2) / sqrt(2 pi) ~ 0.5826`` (the overshoot constant of a Gaussian random walk;
  their ``gamma`` is the band's full log width ``2 g``), and the trade probability tends to the
  same ``sigma_b / (sqrt(2) g)`` as for Poisson blocks (a trade leaves the mispricing on the
  band's edge, so the next overshoot is a ladder height, of mean ``sigma_b / sqrt(2)`` for any
  symmetric step). :func:`trade_probability_theory` and :func:`arbitrage_share_of_lvr_theory`
  are those formulas. Checked at 30 bp and 100% vol (``g / sigma_b`` = 16.9 at 1 s, 4.9 at
  12 s), 2,000-4,000 paths: arbitrage / LVR measured 0.0335, 0.0465, 0.0785, 0.108, 0.213 at
  1, 2, 6, 12, 60 s against the formula's 0.0334, 0.0466, 0.0780, 0.107, 0.211 (standard
  errors under 1%); block share 0.0404, 0.0563, 0.0949, 0.130, 0.256 against ``P_trade``
  0.0402, 0.0560, 0.0931, 0.127, 0.245 (the ``1 +`` form is exact only for Poisson blocks).
- Consequences the lab shows: a fee cuts the LPs' net loss (the arbitrage profit) far below
  LVR, by about ``rho sigma_b / g``, and cuts the share of blocks with an arbitrage trade; for
  a given fee, *shorter* blocks cut the arbitrage profit further (it grows like
  ``sqrt(block interval)`` while ``g >> sigma_b``) and raise the fee income, since the
  arbitrageur can take only each block's overshoot past the band. The reserves' loss (``lvr``)
  stays at ``sigma^2 / 8`` whatever the fee and block time (measured within 1%); the fee pays
  for most of it. A gas cost thins the trades but *raises* the LPs' loss: the mispricing left
  standing grows, and the trades that do happen are larger (30 bp, 12 s, a 2M USDC pool, gas
  0.05 USDC: block share 0.130 to 0.067, arbitrage / LVR 0.108 to 0.136).

Metrics (:meth:`CpmmResult.metrics`, stable names, units last): rates as fractions of the pool
value (marked at the block's reference price, before the trade) per year (365 days) and per
block, averaged over every measured block of every path, with the standard error of the mean
across paths (paths are independent; the blocks of one path are not); USDC amounts are means
over paths of a path's total over the measured window; ``arbitrage_block_share`` is the
fraction of measured blocks that hold an arbitrage trade; price gaps are
``|ln(p / P)|`` in basis points, before the block's arbitrage (what the arbitrageur sees) and
after it (what is left inside the band), their p99 from a log-spaced histogram to 0.25%.
A ``warmup_ns`` before the measured window lets the fee band's mispricing reach its steady
state (about ``(2 g / sigma_b)^2`` blocks).

Limits: the parameter ranges below, and at most :data:`MAX_PATH_BLOCKS` path-blocks a run
(memory is bounded by chunks of :data:`CHUNK_CELLS` path-blocks). Deterministic for a seed: one
stream, ``component_rng(seed, "cpmm/reference")``, drawn in time order.
"""

from __future__ import annotations

import enum
import math
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from strikechain.engine.invariant import invariant
from strikechain.engine.oracle import NANOS_PER_YEAR
from strikechain.engine.units import NANOS_PER_DAY, NANOS_PER_SECOND
from strikechain.sim.processes import MAX_DRIFT, MAX_VOL
from strikechain.sim.world import component_rng

FloatArray = npt.NDArray[np.float64]

BPS: Final = 10_000.0
MAX_FEE_BPS: Final = 1_000.0
"""10%: a fee beyond it is a typo, not a pool."""
MAX_RESERVE: Final = 1e15
MAX_GAS_USDC: Final = 1e9
MAX_BLOCK_INTERVAL_NS: Final = NANOS_PER_DAY
MAX_HORIZON_NS: Final = 10 * 365 * NANOS_PER_DAY
MAX_PATHS: Final = 1_000_000
MAX_PATH_BLOCKS: Final = 2_000_000_000
"""Paths times blocks (warmup included) of one run: minutes of compute at most."""
CHUNK_CELLS: Final = 1 << 18
"""Path-blocks drawn and accounted at once: a few MB per array."""
MAX_SEED: Final = 2**63 - 1
SIEGMUND_RHO: Final = 1.4603545088095868 / math.sqrt(2.0 * math.pi)
"""``-zeta(1/2) / sqrt(2 pi)``: the mean overshoot, in steps' standard deviations, of a Gaussian
random walk over a far level (Siegmund)."""
GAP_LOG10_MIN_BPS: Final = -6
GAP_LOG10_MAX_BPS: Final = 6
GAP_BINS_PER_DECADE: Final = 500
_GAP_BINS: Final = 2 + (GAP_LOG10_MAX_BPS - GAP_LOG10_MIN_BPS) * GAP_BINS_PER_DECADE
"""Bin 0 holds gaps under ``10**GAP_LOG10_MIN_BPS`` bp (reported as 0); the last, overflow."""
_RNG_NAME: Final = "cpmm/reference"


class CpmmCode(enum.StrEnum):
    """Stable codes of :class:`CpmmParamsError`."""

    INVALID_PARAMETER = "INVALID_PARAMETER"
    OVER_LIMIT = "OVER_LIMIT"


class CpmmParamsError(ValueError):
    """Bad ``cpmm`` parameters: expected input, with a code and a message naming the field. A
    ``ValueError``, so ``msgspec.convert`` reports it as a validation error of the scenario."""

    def __init__(self, code: CpmmCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _invalid(field: str, requirement: str, value: object) -> CpmmParamsError:
    return CpmmParamsError(CpmmCode.INVALID_PARAMETER, f"{field} {requirement}, got {value!r}")


def _check_float(field: str, value: float, low: float, high: float, *, low_open: bool) -> None:
    """A finite number in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    above = value > low if low_open else value >= low
    if not (is_number and math.isfinite(value) and above and value <= high):
        bracket = "(" if low_open else "["
        raise _invalid(field, f"must be a finite number in {bracket}{low}, {high}]", value)


def _check_int(field: str, value: int, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise _invalid(field, f"must be an integer in [{low}, {high}]", value)


# -- parameters ------------------------------------------------------------------------------


class CpmmParams(msgspec.Struct, frozen=True, kw_only=True):
    """One ``cpmm`` run. The pool starts at its reserves' price ``quote / base``, as does the
    reference. Validated when made; a bad value raises :class:`CpmmParamsError` naming it."""

    base_reserve: float = 500.0
    """Units of the base asset in the pool."""
    quote_reserve_usdc: float = 1_000_000.0
    fee_bps: float = 30.0
    """``gamma``, on the input amount, in basis points."""
    gas_usdc: float = 0.0
    """The arbitrageur's cost per trade; it trades only for a profit above it."""
    block_interval_ns: int = 12 * NANOS_PER_SECOND
    vol: float = 0.8
    """Annualized volatility of the reference price."""
    drift: float = 0.0
    """Annualized expected simple return ``mu``: ``E[P_t] = P_0 e^{mu t}``."""
    horizon_ns: int = NANOS_PER_DAY
    """The measured window, a multiple of ``block_interval_ns``."""
    warmup_ns: int = 0
    """Simulated before the measured window and not counted (a multiple of the interval)."""
    paths: int = 1_000
    seed: int = 0

    def __post_init__(self) -> None:
        _check_float("CpmmParams.base_reserve", self.base_reserve, 0.0, MAX_RESERVE, low_open=True)
        _check_float(
            "CpmmParams.quote_reserve_usdc",
            self.quote_reserve_usdc,
            0.0,
            MAX_RESERVE,
            low_open=True,
        )
        _check_float("CpmmParams.fee_bps", self.fee_bps, 0.0, MAX_FEE_BPS, low_open=False)
        _check_float("CpmmParams.gas_usdc", self.gas_usdc, 0.0, MAX_GAS_USDC, low_open=False)
        _check_int("CpmmParams.block_interval_ns", self.block_interval_ns, 1, MAX_BLOCK_INTERVAL_NS)
        _check_float("CpmmParams.vol", self.vol, 0.0, MAX_VOL, low_open=False)
        _check_float("CpmmParams.drift", self.drift, -MAX_DRIFT, MAX_DRIFT, low_open=False)
        interval = self.block_interval_ns
        _check_int("CpmmParams.horizon_ns", self.horizon_ns, interval, MAX_HORIZON_NS)
        _check_int("CpmmParams.warmup_ns", self.warmup_ns, 0, MAX_HORIZON_NS)
        for field, value in (("horizon_ns", self.horizon_ns), ("warmup_ns", self.warmup_ns)):
            if value % interval:
                raise _invalid(
                    f"CpmmParams.{field}",
                    f"must be a multiple of block_interval_ns {interval}",
                    value,
                )
        _check_int("CpmmParams.paths", self.paths, 1, MAX_PATHS)
        _check_int("CpmmParams.seed", self.seed, 0, MAX_SEED)
        path_blocks = self.paths * (self.blocks + self.warmup_blocks)
        if path_blocks > MAX_PATH_BLOCKS:
            raise CpmmParamsError(
                CpmmCode.OVER_LIMIT,
                f"CpmmParams.paths x blocks (warmup included) must be at most {MAX_PATH_BLOCKS}, "
                f"got {self.paths} x {self.blocks + self.warmup_blocks} = {path_blocks}",
            )

    @property
    def blocks(self) -> int:
        """Measured blocks per path."""
        return self.horizon_ns // self.block_interval_ns

    @property
    def warmup_blocks(self) -> int:
        return self.warmup_ns // self.block_interval_ns

    @property
    def fee(self) -> float:
        """``gamma`` as a fraction."""
        return self.fee_bps / BPS

    @property
    def block_interval_years(self) -> float:
        return self.block_interval_ns / NANOS_PER_YEAR


# -- one block's arbitrage, from reserves ----------------------------------------------------


class CpmmTrade(msgspec.Struct, frozen=True, kw_only=True):
    """The arbitrage of one block. ``*_in`` is paid by the arbitrageur into the pool (fee
    included), ``*_out`` paid out to it; at most one side is non-zero per token."""

    traded: bool
    base_in: float
    base_out: float
    quote_in_usdc: float
    quote_out_usdc: float
    fee_usdc: float
    """The fee, in the input token, valued at the reference price."""
    profit_usdc: float
    """The arbitrageur's profit marked at the reference price, before gas."""
    base_reserve_after: float
    quote_reserve_after_usdc: float


def arbitrage_trade(
    base_reserve: float,
    quote_reserve_usdc: float,
    price_usdc: float,
    fee_bps: float,
    gas_usdc: float = 0.0,
) -> CpmmTrade:
    """The profit-maximizing arbitrage of a pool ``(base_reserve, quote_reserve_usdc)`` against
    the reference ``price_usdc``, worked in reserves (the simulation works the same trade in log
    prices; the tests check one against the other). No trade inside the fee band or for a
    profit at most ``gas_usdc``."""
    _check_float("base_reserve", base_reserve, 0.0, MAX_RESERVE, low_open=True)
    _check_float("quote_reserve_usdc", quote_reserve_usdc, 0.0, MAX_RESERVE, low_open=True)
    _check_float("price_usdc", price_usdc, 0.0, MAX_RESERVE, low_open=True)
    _check_float("fee_bps", fee_bps, 0.0, MAX_FEE_BPS, low_open=False)
    _check_float("gas_usdc", gas_usdc, 0.0, MAX_GAS_USDC, low_open=False)
    x, y, P = base_reserve, quote_reserve_usdc, price_usdc
    keep = 1.0 - fee_bps / BPS
    k = x * y
    none = CpmmTrade(
        traded=False,
        base_in=0.0,
        base_out=0.0,
        quote_in_usdc=0.0,
        quote_out_usdc=0.0,
        fee_usdc=0.0,
        profit_usdc=0.0,
        base_reserve_after=x,
        quote_reserve_after_usdc=y,
    )
    pool_price = y / x
    if pool_price < P * keep:
        target = P * keep
        x_after, y_after = math.sqrt(k / target), math.sqrt(k * target)
        quote_in = (y_after - y) / keep
        base_out = x - x_after
        trade = msgspec.structs.replace(
            none,
            base_out=base_out,
            quote_in_usdc=quote_in,
            fee_usdc=quote_in - (y_after - y),
            profit_usdc=P * base_out - quote_in,
        )
    elif pool_price > P / keep:
        target = P / keep
        x_after, y_after = math.sqrt(k / target), math.sqrt(k * target)
        base_in = (x_after - x) / keep
        quote_out = y - y_after
        trade = msgspec.structs.replace(
            none,
            base_in=base_in,
            quote_out_usdc=quote_out,
            fee_usdc=P * (base_in - (x_after - x)),
            profit_usdc=quote_out - P * base_in,
        )
    else:
        return none
    if trade.profit_usdc <= gas_usdc:
        return none
    return msgspec.structs.replace(
        trade, traded=True, base_reserve_after=x_after, quote_reserve_after_usdc=y_after
    )


# -- theory ----------------------------------------------------------------------------------


def lvr_rate_theory_per_year_frac(vol: float) -> float:
    """``sigma^2 / 8``: a constant-product pool's instantaneous LVR per year, as a fraction of
    its value (Milionis, Moallemi, Roughgarden, Zhang 2022)."""
    return vol * vol / 8.0


def fee_band_log_halfwidth(fee_bps: float) -> float:
    """``g = -ln(1 - gamma)``: the no-arbitrage band is ``|ln(P / p)| <= g``."""
    return -math.log1p(-fee_bps / BPS)


def _band_over_step(vol: float, fee_bps: float, block_interval_ns: int) -> float:
    """``g / sigma_b``: the band's half width in the block's standard deviations."""
    sigma_block = vol * math.sqrt(block_interval_ns / NANOS_PER_YEAR)
    g = fee_band_log_halfwidth(fee_bps)
    if g == 0.0:
        return 0.0
    return math.inf if sigma_block == 0.0 else g / sigma_block


def trade_probability_theory(vol: float, fee_bps: float, block_interval_ns: int) -> float:
    """``1 / (1 + sqrt(2) g / sigma_b)``: the share of blocks holding an arbitrage trade, exact
    for Poisson blocks (Milionis, Moallemi, Roughgarden 2023), and for fixed blocks with the
    same limit ``sigma_b / (sqrt(2) g)`` as ``g / sigma_b`` grows."""
    return 1.0 / (1.0 + math.sqrt(2.0) * _band_over_step(vol, fee_bps, block_interval_ns))


def arbitrage_share_of_lvr_theory(vol: float, fee_bps: float, block_interval_ns: int) -> float:
    """``1 / (1 + g / (rho sigma_b))``: arbitrage profit over LVR for fixed block times
    (Nezlobin and Tassy 2025, whose spread ``gamma`` is ``2 g``)."""
    return 1.0 / (1.0 + _band_over_step(vol, fee_bps, block_interval_ns) / SIEGMUND_RHO)


# -- results ---------------------------------------------------------------------------------


class CpmmResult(msgspec.Struct, frozen=True, kw_only=True):
    """The measurements of one :func:`run_cpmm`; :meth:`metrics` names them. Rates are fractions
    of pool value; USDC amounts are means over paths of a path's total (module docstring)."""

    blocks_per_path: int
    pool_value_start_usdc: float
    lvr_theory_rate_per_year_frac: float
    lvr_rate_per_year_frac: float
    lvr_rate_per_year_frac_stderr: float
    lvr_rate_per_block_frac: float
    arbitrage_rate_per_year_frac: float
    """The LPs' loss versus rebalancing net of fees; equals LVR at zero fee."""
    arbitrage_rate_per_year_frac_stderr: float
    arbitrage_rate_per_block_frac: float
    fee_rate_per_year_frac: float
    arbitrage_block_share: float
    trade_count: int
    """Over every path."""
    trades_per_path_mean: float
    lvr_usdc: float
    arbitrage_profit_usdc: float
    """Before gas."""
    arbitrage_net_profit_usdc: float
    """After gas."""
    fees_usdc: float
    gas_usdc: float
    price_gap_before_bps_mean: float
    price_gap_before_bps_p99: float
    price_gap_after_bps_mean: float
    price_gap_after_bps_p99: float
    impermanent_loss_frac_mean: float
    """``1 - V_pool / V_hold`` at the end, the reserves at the window's start held instead."""
    lp_pnl_vs_hold_frac_mean: float
    """``(V_pool + fees - V_hold) / V_hold`` at the end, fees marked at the final price."""

    def metrics(self) -> dict[str, float]:
        """Every field, by its stable name, as a float."""
        return {name: float(getattr(self, name)) for name in self.__struct_fields__}


# -- the simulation --------------------------------------------------------------------------


class _Accumulator:
    """Per-path sums over the measured window (mutable, private to one run)."""

    def __init__(self, log_price_start: FloatArray) -> None:
        paths = log_price_start.shape[0]
        self.log_price_start = log_price_start.copy()
        self.lvr_frac = np.zeros(paths)
        self.fee_frac = np.zeros(paths)
        self.lvr_usdc = np.zeros(paths)
        self.fee_quote_usdc = np.zeros(paths)
        self.fee_base = np.zeros(paths)
        self.fee_usdc = np.zeros(paths)
        self.trades = np.zeros(paths, dtype=np.int64)
        self.gap_before_bps = 0.0
        self.gap_after_bps = 0.0
        self.gap_before_bins = np.zeros(_GAP_BINS, dtype=np.int64)
        self.gap_after_bins = np.zeros(_GAP_BINS, dtype=np.int64)


def _gap_bins(gap_bps: FloatArray) -> npt.NDArray[np.int64]:
    floor_bps = 10.0**GAP_LOG10_MIN_BPS
    scaled = (
        np.log10(np.maximum(gap_bps, floor_bps / 2)) - GAP_LOG10_MIN_BPS
    ) * GAP_BINS_PER_DECADE
    index = np.clip(np.floor(scaled) + 1, 0, _GAP_BINS - 1).astype(np.int64)
    index[gap_bps < floor_bps] = 0
    return np.bincount(index.ravel(), minlength=_GAP_BINS)


def _gap_p99_bps(bins: npt.NDArray[np.int64]) -> float:
    cumulative = np.cumsum(bins)
    index = int(np.searchsorted(cumulative, 0.99 * cumulative[-1]))
    if index == 0:
        return 0.0
    return float(10.0 ** (GAP_LOG10_MIN_BPS + (index - 0.5) / GAP_BINS_PER_DECADE))


def _trade_terms(
    before: FloatArray, after: FloatArray, reference: FloatArray, fee_markup: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """A trade's reserve loss and fee, from the pool's log price ``q`` before it, ``q'`` after it
    and the reference's ``L``: the log-space forms of the reserve formulas, free of
    cancellation. With ``d = L - q``, ``e = L - q'``, ``u = q' - q`` and ``c = gamma / (1 -
    gamma)``: the reserve loss per unit of the quote reserve ``y = l e^{q/2}`` is
    ``expm1(d/2)^2 - 4 e^{d/2} sinh(e/4)^2``; the fee is ``c expm1(u/2)`` of ``y`` (buying base,
    ``u > 0``) or ``c expm1(-u/2)`` of the base reserve (selling it). Returns (loss per quote,
    quote fee per quote, base fee per base)."""
    d = reference - before
    e = reference - after
    u = after - before
    loss_per_quote = np.expm1(0.5 * d) ** 2 - 4.0 * np.exp(0.5 * d) * np.sinh(0.25 * e) ** 2
    fee_quote_per_quote = fee_markup * np.expm1(0.5 * np.maximum(u, 0.0))
    fee_base_per_base = fee_markup * np.expm1(-0.5 * np.minimum(u, 0.0))
    return loss_per_quote, fee_quote_per_quote, fee_base_per_base


def _account(
    acc: _Accumulator,
    before: FloatArray,
    after: FloatArray,
    reference: FloatArray,
    liquidity: float,
    fee_markup: float,
) -> None:
    """Adds a chunk of blocks (rows by paths) to the sums; trades are worked where they are."""
    paths = before.shape[1]
    traded = after != before
    _, column = np.nonzero(traded)
    q, q_after, L = before[traded], after[traded], reference[traded]
    loss, fee_quote, fee_base = _trade_terms(q, q_after, L, fee_markup)
    quote_reserve = liquidity * np.exp(0.5 * q)
    price_over_pool = np.exp(L - q)
    fee = fee_quote + price_over_pool * fee_base
    value_per_quote = price_over_pool + 1.0
    for total, weights in (
        (acc.lvr_frac, loss / value_per_quote),
        (acc.fee_frac, fee / value_per_quote),
        (acc.lvr_usdc, quote_reserve * loss),
        (acc.fee_usdc, quote_reserve * fee),
        (acc.fee_quote_usdc, quote_reserve * fee_quote),
        (acc.fee_base, liquidity * np.exp(-0.5 * q) * fee_base),
    ):
        np.add(total, np.bincount(column, weights=weights, minlength=paths), out=total)
    acc.trades += np.bincount(column, minlength=paths)
    gap_before = np.abs(reference - before) * BPS
    gap_after = np.abs(reference - after) * BPS
    acc.gap_before_bps += float(gap_before.sum())
    acc.gap_after_bps += float(gap_after.sum())
    acc.gap_before_bins += _gap_bins(gap_before)
    acc.gap_after_bins += _gap_bins(gap_after)


def _arbitrage_rows(
    log_price: FloatArray, reference: FloatArray, params: CpmmParams, liquidity: float
) -> FloatArray:
    """The pool's log price after each block's arbitrage (rows are blocks): a clip into the
    band around the reference; with gas, only where the profit beats it."""
    g = fee_band_log_halfwidth(params.fee_bps)
    markup = math.expm1(g)
    lower, upper = reference - g, reference + g
    after = np.empty_like(reference)
    previous = log_price
    for row in range(reference.shape[0]):
        target = np.clip(previous, lower[row], upper[row], out=after[row])
        if params.gas_usdc > 0.0:
            (moved,) = np.nonzero(target != previous)
            q, L = previous[moved], reference[row, moved]
            loss, fee_quote, fee_base = _trade_terms(q, target[moved], L, markup)
            profit_per_quote = loss - fee_quote - np.exp(L - q) * fee_base
            unprofitable = liquidity * np.exp(0.5 * q) * profit_per_quote <= params.gas_usdc
            target[moved[unprofitable]] = q[unprofitable]
        previous = target
    return after


def _run_blocks(
    log_price: FloatArray,
    reference: FloatArray,
    blocks: int,
    params: CpmmParams,
    rng: np.random.Generator,
    liquidity: float,
    acc: _Accumulator | None,
) -> tuple[FloatArray, FloatArray]:
    """Advances pool and reference ``blocks`` blocks in chunks; returns their last log prices."""
    dt = params.block_interval_years
    step_mean = (params.drift - 0.5 * params.vol**2) * dt
    step_std = params.vol * math.sqrt(dt)
    markup = math.expm1(fee_band_log_halfwidth(params.fee_bps))
    rows_per_chunk = max(1, CHUNK_CELLS // params.paths)
    done = 0
    while done < blocks:
        rows = min(rows_per_chunk, blocks - done)
        shocks = rng.standard_normal((rows, params.paths))
        references = reference + np.cumsum(step_mean + step_std * shocks, axis=0)
        after = _arbitrage_rows(log_price, references, params, liquidity)
        if acc is not None:
            before = np.vstack((log_price[np.newaxis, :], after[:-1]))
            _account(acc, before, after, references, liquidity, markup)
        log_price, reference = after[-1].copy(), references[-1].copy()
        done += rows
    return log_price, reference


def run_cpmm(params: CpmmParams) -> CpmmResult:
    """Simulates ``params.paths`` independent pools over the warmup and the measured window and
    measures them (module docstring). Deterministic for ``params.seed``."""
    rng = component_rng(params.seed, _RNG_NAME)
    liquidity = math.sqrt(params.base_reserve * params.quote_reserve_usdc)
    start = math.log(params.quote_reserve_usdc / params.base_reserve)
    log_price = np.full(params.paths, start)
    reference = log_price.copy()
    log_price, reference = _run_blocks(
        log_price, reference, params.warmup_blocks, params, rng, liquidity, None
    )
    acc = _Accumulator(log_price)
    log_price, reference = _run_blocks(
        log_price, reference, params.blocks, params, rng, liquidity, acc
    )
    return _result(params, acc, log_price, reference, liquidity)


def _stderr(per_path: FloatArray) -> float:
    if per_path.shape[0] < 2:
        return math.nan
    return float(per_path.std(ddof=1) / math.sqrt(per_path.shape[0]))


def _result(
    params: CpmmParams,
    acc: _Accumulator,
    log_price: FloatArray,
    reference: FloatArray,
    liquidity: float,
) -> CpmmResult:
    blocks, paths = params.blocks, params.paths
    per_year = 1.0 / params.block_interval_years
    lvr_block = acc.lvr_frac / blocks
    arbitrage_block = (acc.lvr_frac - acc.fee_frac) / blocks
    price_end = np.exp(reference)
    pool_end = liquidity * (price_end * np.exp(-0.5 * log_price) + np.exp(0.5 * log_price))
    start = acc.log_price_start
    hold_end = liquidity * (price_end * np.exp(-0.5 * start) + np.exp(0.5 * start))
    fees_end = acc.fee_quote_usdc + acc.fee_base * price_end
    trade_count = int(acc.trades.sum())
    cells = blocks * paths
    invariant(trade_count <= cells, "cpmm: more trades than blocks")
    arbitrage_usdc = float((acc.lvr_usdc - acc.fee_usdc).mean())
    gas = float(acc.trades.mean()) * params.gas_usdc
    return CpmmResult(
        blocks_per_path=blocks,
        pool_value_start_usdc=2.0 * params.quote_reserve_usdc,
        lvr_theory_rate_per_year_frac=lvr_rate_theory_per_year_frac(params.vol),
        lvr_rate_per_year_frac=float(lvr_block.mean()) * per_year,
        lvr_rate_per_year_frac_stderr=_stderr(lvr_block) * per_year,
        lvr_rate_per_block_frac=float(lvr_block.mean()),
        arbitrage_rate_per_year_frac=float(arbitrage_block.mean()) * per_year,
        arbitrage_rate_per_year_frac_stderr=_stderr(arbitrage_block) * per_year,
        arbitrage_rate_per_block_frac=float(arbitrage_block.mean()),
        fee_rate_per_year_frac=float(acc.fee_frac.mean()) / blocks * per_year,
        arbitrage_block_share=trade_count / cells,
        trade_count=trade_count,
        trades_per_path_mean=trade_count / paths,
        lvr_usdc=float(acc.lvr_usdc.mean()),
        arbitrage_profit_usdc=arbitrage_usdc,
        arbitrage_net_profit_usdc=arbitrage_usdc - gas,
        fees_usdc=float(acc.fee_usdc.mean()),
        gas_usdc=gas,
        price_gap_before_bps_mean=acc.gap_before_bps / cells,
        price_gap_before_bps_p99=_gap_p99_bps(acc.gap_before_bins),
        price_gap_after_bps_mean=acc.gap_after_bps / cells,
        price_gap_after_bps_p99=_gap_p99_bps(acc.gap_after_bins),
        impermanent_loss_frac_mean=float((1.0 - pool_end / hold_end).mean()),
        lp_pnl_vs_hold_frac_mean=float(((pool_end + fees_end - hold_end) / hold_end).mean()),
    )
