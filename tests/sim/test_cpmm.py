"""The ``cpmm`` venue against theory: at zero fee the arbitrageur takes ``sigma^2 / 8`` of the
pool's value a year (loss-versus-rebalancing) whatever the block time; a fee cuts that loss to
the fixed-block formula of Nezlobin and Tassy and the share of blocks with a trade to
``1 / (1 + sqrt(2) g / sigma_b)``; longer blocks raise both. One block worked by hand, in
reserves and through the simulation; bad parameters name their field; a seed reproduces a run.

Sizes are chosen for a standard error far below the tolerance (stated at each test), at a few
seconds in all on one core."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import msgspec
import pytest

from strikechain.engine.units import NANOS_PER_DAY, NANOS_PER_HOUR, NANOS_PER_SECOND
from strikechain.sim.cpmm import (
    MAX_HORIZON_NS,
    MAX_PATHS,
    CpmmCode,
    CpmmParams,
    CpmmParamsError,
    CpmmResult,
    arbitrage_share_of_lvr_theory,
    arbitrage_trade,
    fee_band_log_halfwidth,
    lvr_rate_theory_per_year_frac,
    run_cpmm,
    trade_probability_theory,
)

S = NANOS_PER_SECOND
HOUR = NANOS_PER_HOUR
VOL = 1.0
LVR = VOL**2 / 8  # 0.125 of pool value a year


@functools.cache
def run(**kwargs: float) -> CpmmResult:
    """A run at 100% vol, cached across tests (the statistical runs are shared)."""
    return run_cpmm(msgspec.convert({"vol": VOL, **kwargs}, CpmmParams))


def zero_fee(block_s: int) -> CpmmResult:
    # 1 s: 500 paths x 3,600 blocks; 12 s: 2,000 paths x 300 blocks. The per-block loss is
    # about sigma_b^2 Z^2 / 8 (relative sd sqrt(2)), so the relative standard error is about
    # sqrt(2 / blocks): measured 0.11% (1 s) and 0.18% (12 s) of sigma^2 / 8.
    paths = 500 if block_s == 1 else 2_000
    return run(fee_bps=0.0, block_interval_ns=block_s * S, horizon_ns=HOUR, paths=paths)


def with_fee(block_s: int, gas_usdc: float = 0.0) -> CpmmResult:
    # 2,000 paths x 1 h measured after 1 h of warmup (the mispricing reaches its steady state
    # in about (2 g / sigma_b)^2 blocks: 1,100 at 1 s, 95 at 12 s). Measured standard errors:
    # 0.9% (1 s) and 0.9% (12 s) of the arbitrage rate.
    return run(
        fee_bps=30.0,
        gas_usdc=gas_usdc,
        block_interval_ns=block_s * S,
        horizon_ns=HOUR,
        warmup_ns=HOUR,
        paths=2_000,
    )


# -- the theory ------------------------------------------------------------------------------


def test_theory_formulas() -> None:
    # REFERENCES.md: sigma = 5% a day loses 3.125 bp of pool value a day.
    daily = lvr_rate_theory_per_year_frac(0.05 * math.sqrt(365)) / 365
    assert daily == pytest.approx(3.125e-4, rel=1e-12)
    assert fee_band_log_halfwidth(30.0) == pytest.approx(0.0030045, rel=1e-4)
    assert trade_probability_theory(VOL, 0.0, S) == 1.0
    assert arbitrage_share_of_lvr_theory(VOL, 0.0, S) == 1.0
    assert trade_probability_theory(0.0, 30.0, S) == 0.0
    # 30 bp, 1 s: g / sigma_b = 16.9.
    assert trade_probability_theory(VOL, 30.0, S) == pytest.approx(0.0402, abs=1e-4)
    assert arbitrage_share_of_lvr_theory(VOL, 30.0, S) == pytest.approx(0.0334, abs=1e-4)


# -- zero fee: loss-versus-rebalancing -------------------------------------------------------


@pytest.mark.parametrize("block_s", [1, 12])
def test_zero_fee_arbitrage_takes_sigma_squared_over_8(block_s: int) -> None:
    """Measured: 0.1249 a year at 1 s (0.9991 of sigma^2 / 8, standard error 0.0011) and 0.1248
    at 12 s (0.9983, 0.0018): block time does not change LVR at zero fee."""
    result = zero_fee(block_s)
    assert result.lvr_theory_rate_per_year_frac == LVR
    stderr = result.arbitrage_rate_per_year_frac_stderr / LVR
    assert stderr < 0.005, "the sample must be far tighter than the 3% tolerance"
    assert result.arbitrage_rate_per_year_frac == pytest.approx(LVR, rel=0.03)
    assert result.arbitrage_rate_per_year_frac == pytest.approx(LVR, abs=4 * stderr * LVR)
    assert result.lvr_rate_per_year_frac == result.arbitrage_rate_per_year_frac
    seconds_per_year = 365 * 86_400
    assert result.lvr_rate_per_block_frac == pytest.approx(
        result.lvr_rate_per_year_frac * block_s / seconds_per_year, rel=1e-12
    )
    assert result.fees_usdc == 0.0
    assert result.arbitrage_block_share == 1.0
    assert result.price_gap_after_bps_mean == 0.0
    assert result.price_gap_after_bps_p99 == 0.0
    # A block's log return has sd sigma_b: 1.78 bp at 1 s, so a mean |gap| of 1.42 bp.
    sigma_block_bps = VOL * math.sqrt(block_s / seconds_per_year) * 1e4
    expected_gap = sigma_block_bps * math.sqrt(2 / math.pi)
    assert result.price_gap_before_bps_mean == pytest.approx(expected_gap, rel=0.01)
    assert result.price_gap_before_bps_p99 == pytest.approx(2.5758 * sigma_block_bps, rel=0.02)
    # Over one hour the pool loses about sigma^2 T / 8 to holding, and at zero fee all of it.
    assert result.impermanent_loss_frac_mean == pytest.approx(LVR / (365 * 24), rel=0.1)
    assert result.lp_pnl_vs_hold_frac_mean == pytest.approx(-result.impermanent_loss_frac_mean)


# -- fees and block time ---------------------------------------------------------------------


@pytest.mark.parametrize("block_s", [1, 12])
def test_fee_arbitrage_matches_the_fixed_block_formula(block_s: int) -> None:
    """30 bp. Measured arbitrage / LVR: 0.0335 at 1 s (formula 0.0334), 0.1080 at 12 s
    (0.1068); block share 0.0404 (P_trade 0.0402) and 0.1299 (0.1268). The reserves still
    lose about sigma^2 / 8 (0.9985, 1.0062); the fee pays for the rest."""
    result = with_fee(block_s)
    stderr = result.arbitrage_rate_per_year_frac_stderr / result.arbitrage_rate_per_year_frac
    assert stderr < 0.015
    share = arbitrage_share_of_lvr_theory(VOL, 30.0, block_s * S)
    assert result.arbitrage_rate_per_year_frac / LVR == pytest.approx(share, rel=0.05)
    probability = trade_probability_theory(VOL, 30.0, block_s * S)
    assert result.arbitrage_block_share == pytest.approx(probability, rel=0.10)
    assert result.lvr_rate_per_year_frac_stderr / LVR < 0.01
    assert result.lvr_rate_per_year_frac == pytest.approx(LVR, rel=0.03)
    assert result.lvr_rate_per_year_frac - result.fee_rate_per_year_frac == pytest.approx(
        result.arbitrage_rate_per_year_frac, rel=1e-9
    )
    assert result.lvr_usdc - result.fees_usdc == pytest.approx(
        result.arbitrage_profit_usdc, rel=1e-9
    )
    # After the arbitrage the pool sits inside the band: |gap| <= g = 30.05 bp.
    g_bps = fee_band_log_halfwidth(30.0) * 1e4
    assert result.price_gap_after_bps_p99 <= g_bps * 1.0025
    assert result.price_gap_before_bps_mean > result.price_gap_after_bps_mean


def test_fee_cuts_the_arbitrage_loss_and_longer_blocks_raise_it() -> None:
    """A year's arbitrage, as a fraction of pool value: 0.1249 at zero fee (1 s blocks), 0.0135
    at 30 bp and 12 s, 0.0042 at 30 bp and 1 s. With a fee the arbitrageur takes only each
    block's overshoot past the band, which grows with the block's move: longer blocks raise
    the LPs' loss and the share of blocks with a trade (0.040 at 1 s, 0.130 at 12 s, 1.0 at
    zero fee); the fee income falls with them."""
    free, fee_1s, fee_12s = zero_fee(1), with_fee(1), with_fee(12)
    rates = [r.arbitrage_rate_per_year_frac for r in (fee_1s, fee_12s, free)]
    assert rates[0] < 0.05 * LVR
    assert rates[1] < 0.15 * LVR
    assert rates[0] < rates[1] < rates[2]
    gaps = [r.arbitrage_rate_per_year_frac_stderr for r in (fee_1s, fee_12s, free)]
    assert rates[1] - rates[0] > 10 * math.hypot(gaps[0], gaps[1])
    shares = [r.arbitrage_block_share for r in (fee_1s, fee_12s, free)]
    assert 0.0 < shares[0] < shares[1] < shares[2] == 1.0
    assert shares[0] < 0.05
    assert shares[1] < 0.15
    assert fee_1s.fee_rate_per_year_frac > fee_12s.fee_rate_per_year_frac > 0.0


def test_gas_cost_thins_the_trades_and_raises_the_lps_loss() -> None:
    """At 12 s and 30 bp a trade earns about 0.08 USDC on a 2M USDC pool; a gas of 0.05 USDC
    skips the small ones and lets the mispricing grow. Measured, per path-hour: block share
    0.130 -> 0.067; the arbitrageur's profit after gas 3.08 -> 2.87 USDC, but before gas (the
    LPs' loss net of fees) 3.08 -> 3.88 (standard errors about 0.03)."""
    free, costly = with_fee(12), with_fee(12, gas_usdc=0.05)
    assert costly.arbitrage_block_share < 0.6 * free.arbitrage_block_share
    assert costly.gas_usdc == pytest.approx(costly.trades_per_path_mean * 0.05, rel=1e-12)
    assert costly.arbitrage_net_profit_usdc == pytest.approx(
        costly.arbitrage_profit_usdc - costly.gas_usdc, rel=1e-12
    )
    assert 0.0 < costly.arbitrage_net_profit_usdc < 0.97 * free.arbitrage_net_profit_usdc
    assert costly.arbitrage_profit_usdc > 1.15 * free.arbitrage_profit_usdc
    assert free.arbitrage_net_profit_usdc == free.arbitrage_profit_usdc


def every_run() -> Iterator[CpmmResult]:
    yield from (zero_fee(1), zero_fee(12), with_fee(1), with_fee(12), with_fee(12, 0.05))


def test_every_run_reports_its_metrics() -> None:
    names = set(CpmmResult.__struct_fields__)
    for result in every_run():
        metrics = result.metrics()
        assert set(metrics) == names
        assert all(type(value) is float for value in metrics.values())
        assert 0.0 <= metrics["arbitrage_block_share"] <= 1.0
        assert metrics["trade_count"] == result.trade_count
    for name in ("arbitrage_block_share", "lvr_rate_per_year_frac", "fees_usdc", "trade_count"):
        assert name in names


# -- one block by hand -----------------------------------------------------------------------
# A pool of 100 base and 200,000 USDC (price 2,000, k = 2e7). To move its price to 2,420 (x
# 1.21) it must hold 100 / 1.1 = 90.909 base and 220,000 USDC; to 2,000 / 1.21 = 1,652.89, 110
# base and 181,818.18 USDC.


def test_hand_buy_with_fee() -> None:
    """Fee 10%; the reference rises to 2,420 / 0.9 = 2,688.89, so the arbitrageur buys base to
    the band's edge 2,688.89 x 0.9 = 2,420: 20,000 USDC enter the reserves, 20,000 / 0.9 =
    22,222.22 paid (fee 2,222.22), 9.0909 base out worth 24,444.44: profit 2,222.22. The
    reserves lose 4,444.44 against holding them = profit + fee."""
    price = 2_420 / 0.9
    trade = arbitrage_trade(100.0, 200_000.0, price, fee_bps=1_000.0)
    assert trade.traded
    assert trade.base_out == pytest.approx(100 - 100 / 1.1, rel=1e-12)
    assert trade.quote_in_usdc == pytest.approx(20_000 / 0.9, rel=1e-12)
    assert trade.fee_usdc == pytest.approx(20_000 / 0.9 - 20_000, rel=1e-9)
    assert trade.profit_usdc == pytest.approx(2_000 / 0.9, rel=1e-9)
    assert (trade.base_in, trade.quote_out_usdc) == (0.0, 0.0)
    assert trade.base_reserve_after == pytest.approx(100 / 1.1, rel=1e-12)
    assert trade.quote_reserve_after_usdc == pytest.approx(220_000, rel=1e-12)
    value_before = 100 * price + 200_000
    value_after = trade.base_reserve_after * price + trade.quote_reserve_after_usdc
    assert value_before - value_after == pytest.approx(trade.profit_usdc + trade.fee_usdc)


@pytest.mark.parametrize(("fee_bps", "price"), [(0.0, 2_000 / 1.21), (1_000.0, 1_800 / 1.21)])
def test_hand_sell(fee_bps: float, price: float) -> None:
    """The reference falls; the arbitrageur sells base until the pool's price is
    ``price / (1 - fee)`` = 1,652.89: 10 base enter the reserves (10 / 0.9 = 11.11 paid at
    10%), 18,181.82 USDC out; profit 18,181.82 - 16,528.93 = 1,652.89 either way, the fee
    (1.11 base) worth 1,652.89 at 10%."""
    trade = arbitrage_trade(100.0, 200_000.0, price, fee_bps=fee_bps)
    keep = 1 - fee_bps / 10_000
    assert trade.traded
    assert trade.base_in == pytest.approx(10 / keep, rel=1e-12)
    assert trade.quote_out_usdc == pytest.approx(200_000 - 200_000 / 1.1, rel=1e-12)
    assert trade.profit_usdc == pytest.approx(2_000 / 1.21, rel=1e-9)
    assert trade.fee_usdc == pytest.approx(price * (10 / keep - 10), abs=1e-9)
    assert trade.base_reserve_after == pytest.approx(110, rel=1e-12)
    assert trade.quote_reserve_after_usdc == pytest.approx(200_000 / 1.1, rel=1e-12)


def test_hand_no_trade_inside_the_band_or_under_gas() -> None:
    # 30 bp: the band around 2,000 is [1,994.0, 2,006.0]; a reference of 2,005 leaves p inside.
    assert not arbitrage_trade(100.0, 200_000.0, 2_005.0, fee_bps=30.0).traded
    assert arbitrage_trade(100.0, 200_000.0, 2_007.0, fee_bps=30.0).traded
    price = 2_000 / 1.21  # profit 1,652.89
    assert not arbitrage_trade(100.0, 200_000.0, price, 0.0, gas_usdc=1_700.0).traded
    assert arbitrage_trade(100.0, 200_000.0, price, 0.0, gas_usdc=1_600.0).traded
    with pytest.raises(CpmmParamsError, match="price_usdc"):
        arbitrage_trade(100.0, 200_000.0, -1.0, 0.0)


def one_block(ratio: float, **kwargs: float) -> CpmmResult:
    """Two identical paths of one day-long block whose reference moves by ``ratio`` exactly
    (no vol; the drift does it)."""
    params = CpmmParams(
        base_reserve=100.0,
        quote_reserve_usdc=200_000.0,
        block_interval_ns=NANOS_PER_DAY,
        horizon_ns=NANOS_PER_DAY,
        vol=0.0,
        drift=365 * math.log(ratio),
        paths=2,
        **kwargs,  # type: ignore[arg-type]
    )
    return run_cpmm(params)


def test_hand_block_through_the_simulation() -> None:
    """The buy of :func:`test_hand_buy_with_fee`, worked by the simulation in log prices."""
    result = one_block(1.21 / 0.9, fee_bps=1_000.0)
    value_before = 100 * 2_420 / 0.9 + 200_000  # 468,888.89
    assert result.trade_count == 2
    assert result.arbitrage_block_share == 1.0
    assert result.arbitrage_profit_usdc == pytest.approx(2_000 / 0.9, rel=1e-9)
    assert result.fees_usdc == pytest.approx(2_000 / 0.9, rel=1e-9)
    assert result.lvr_usdc == pytest.approx(4_000 / 0.9, rel=1e-9)
    assert result.lvr_rate_per_block_frac == pytest.approx(4_000 / 0.9 / value_before, rel=1e-9)
    assert result.arbitrage_rate_per_year_frac == pytest.approx(
        365 * 2_000 / 0.9 / value_before, rel=1e-9
    )
    assert result.arbitrage_rate_per_year_frac_stderr == 0.0
    assert result.price_gap_before_bps_mean == pytest.approx(1e4 * math.log(1.21 / 0.9), rel=1e-9)
    assert result.price_gap_after_bps_mean == pytest.approx(-1e4 * math.log(0.9), rel=1e-9)
    assert result.price_gap_after_bps_p99 == pytest.approx(-1e4 * math.log(0.9), rel=0.0025)
    # End: the pool (90.909 base, 220,000 USDC) is worth 464,444.44; holding, 468,888.89.
    assert result.impermanent_loss_frac_mean == pytest.approx(4_000 / 0.9 / value_before)
    assert result.lp_pnl_vs_hold_frac_mean == pytest.approx(-2_000 / 0.9 / value_before)


def test_hand_block_gas_through_the_simulation() -> None:
    """The zero-fee sell (profit 1,652.89) under a gas of 1,700 (skipped) and 1,000 (taken)."""
    assert one_block(1 / 1.21, fee_bps=0.0, gas_usdc=1_700.0).trade_count == 0
    taken = one_block(1 / 1.21, fee_bps=0.0, gas_usdc=1_000.0)
    assert taken.trade_count == 2
    assert taken.arbitrage_profit_usdc == pytest.approx(2_000 / 1.21, rel=1e-9)
    assert taken.arbitrage_net_profit_usdc == pytest.approx(2_000 / 1.21 - 1_000, rel=1e-9)


# -- parameters and determinism --------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"base_reserve": 0.0}, "CpmmParams.base_reserve"),
        ({"quote_reserve_usdc": math.nan}, "CpmmParams.quote_reserve_usdc"),
        ({"fee_bps": -1.0}, "CpmmParams.fee_bps"),
        ({"fee_bps": 1_000.5}, "CpmmParams.fee_bps"),
        ({"gas_usdc": -0.01}, "CpmmParams.gas_usdc"),
        ({"block_interval_ns": 0}, "CpmmParams.block_interval_ns"),
        ({"block_interval_ns": 1.5}, "CpmmParams.block_interval_ns"),
        ({"vol": -0.1}, "CpmmParams.vol"),
        ({"vol": True}, "CpmmParams.vol"),
        ({"drift": math.inf}, "CpmmParams.drift"),
        ({"horizon_ns": 0}, "CpmmParams.horizon_ns"),
        ({"horizon_ns": 12 * S + 1}, "CpmmParams.horizon_ns"),
        ({"warmup_ns": -12 * S}, "CpmmParams.warmup_ns"),
        ({"warmup_ns": 5 * S}, "CpmmParams.warmup_ns"),
        ({"paths": 0}, "CpmmParams.paths"),
        ({"seed": -1}, "CpmmParams.seed"),
    ],
)
def test_bad_parameters_name_their_field(bad: dict[str, object], field: str) -> None:
    with pytest.raises(CpmmParamsError) as raised:
        CpmmParams(**bad)  # type: ignore[arg-type]
    assert raised.value.code is CpmmCode.INVALID_PARAMETER
    assert field in str(raised.value)


def test_a_run_over_the_limit_is_refused() -> None:
    with pytest.raises(CpmmParamsError) as raised:
        CpmmParams(block_interval_ns=S, horizon_ns=MAX_HORIZON_NS, paths=MAX_PATHS)
    assert raised.value.code is CpmmCode.OVER_LIMIT
    assert "CpmmParams.paths" in str(raised.value)


def test_parameters_load_from_a_toml_like_table() -> None:
    params = msgspec.convert({"fee_bps": 5, "block_interval_ns": 2 * S}, CpmmParams)
    assert params.fee == 0.0005
    assert params.blocks == NANOS_PER_DAY // (2 * S)
    with pytest.raises(msgspec.ValidationError, match=r"CpmmParams\.fee_bps"):
        msgspec.convert({"fee_bps": 2_000}, CpmmParams)


def test_the_seed_alone_decides_a_run() -> None:
    params = CpmmParams(block_interval_ns=12 * S, horizon_ns=HOUR, paths=200, seed=7)
    first, again = run_cpmm(params), run_cpmm(params)
    assert first.metrics() == again.metrics()
    other = run_cpmm(msgspec.structs.replace(params, seed=8))
    assert other.lvr_rate_per_year_frac != first.lvr_rate_per_year_frac
    assert other.trade_count != first.trade_count


# -- longer, tighter ---------------------------------------------------------------------------


@pytest.mark.long
def test_long_block_time_sweep_matches_the_formulas() -> None:
    """30 bp, 4,000 paths x 2 h after 1 h of warmup, blocks of 2 to 60 s: the arbitrage share
    of LVR within 3% of Nezlobin and Tassy's formula, rising with the block time; zero fee at
    250 ms within 1% of sigma^2 / 8. Measured: 0.0465, 0.0785, 0.1076, 0.2132 (formula 0.0466,
    0.0780, 0.1068, 0.2110; standard errors 0.0002 to 0.0013); 1.0001 (0.0004) at zero fee."""
    rates = []
    for block_s in (2, 6, 12, 60):
        result = run(
            fee_bps=30.0,
            block_interval_ns=block_s * S,
            horizon_ns=2 * HOUR,
            warmup_ns=HOUR,
            paths=4_000,
        )
        share = arbitrage_share_of_lvr_theory(VOL, 30.0, block_s * S)
        assert result.arbitrage_rate_per_year_frac / LVR == pytest.approx(share, rel=0.03)
        rates.append(result.arbitrage_rate_per_year_frac)
    assert rates == sorted(rates)
    fast = run(fee_bps=0.0, block_interval_ns=S // 4, horizon_ns=HOUR, paths=1_000)
    assert fast.arbitrage_rate_per_year_frac_stderr / LVR < 0.002
    assert fast.arbitrage_rate_per_year_frac == pytest.approx(LVR, rel=0.01)
