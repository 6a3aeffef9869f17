"""Reference price processes: they reproduce their parameters within stated statistical
tolerances, they are deterministic per seed, streams are independent per underlying, and bad
scenario input is refused with a typed error that names what to fix.

Tolerances are about 4 to 6 standard errors of each estimator (the standard error is stated
beside each check), so a correct process fails about once in 10^4 to 10^8 seeds, while a wrong
scale (a missing square root, a day count off, an uncompensated drift) misses by many errors.
The seeds are fixed, so each check is reproducible bit for bit.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
import pytest

from strikechain.engine.oracle import NANOS_PER_YEAR
from strikechain.engine.units import NANOS_PER_DAY, NANOS_PER_HOUR, NANOS_PER_MINUTE, Rounding
from strikechain.sim.kernel import Kernel
from strikechain.sim.processes import (
    CorrelationGroup,
    GbmParams,
    HestonParams,
    MertonParams,
    PricePaths,
    PriceSpecCode,
    PriceSpecError,
    PricesSpec,
    ProcessParams,
    RegimeParams,
    RegimeSegment,
    ReplayParams,
    UnderlyingProcess,
    cholesky,
    merton_compensator,
    price_to_minor,
)
from strikechain.sim.world import component_rng

FloatArray = npt.NDArray[np.float64]
MS = 1_000_000
SECOND = 1_000_000_000
STEP_100MS = 100 * MS


def underlying(name: str, process: ProcessParams, spot_usdc: float = 100.0) -> UnderlyingProcess:
    return UnderlyingProcess(name=name, process=process, spot_usdc=spot_usdc)


def make_paths(
    *underlyings: UnderlyingProcess,
    seed: int = 1,
    step_ns: int = STEP_100MS,
    chunk_steps: int = 8_192,
    correlations: tuple[CorrelationGroup, ...] = (),
    retain_chunks: int = 10_000,
    start_ns: int = 0,
) -> PricePaths:
    spec = PricesSpec(
        underlyings=underlyings,
        correlations=correlations,
        step_ns=step_ns,
        chunk_steps=chunk_steps,
    )
    return PricePaths(spec, Kernel(seed).rng, start_ns, retain_chunks=retain_chunks)


def log_returns(paths: PricePaths, name: str, steps: int) -> FloatArray:
    out: FloatArray = np.diff(np.log(paths.grid_prices(name, 0, steps + 1)))
    return out


def years(step_ns: int) -> float:
    return step_ns / NANOS_PER_YEAR


# -- GBM ---------------------------------------------------------------------------------------


def test_gbm_sample_volatility_at_100ms_steps() -> None:
    steps = 200_000  # 5.6 hours of 100 ms steps
    paths = make_paths(underlying("BTC", GbmParams(vol=0.6)), chunk_steps=4_096)
    returns = log_returns(paths, "BTC", steps)
    vol = returns.std() / math.sqrt(years(STEP_100MS))
    # standard error of a sample vol: vol / sqrt(2N) = 0.16%; tolerance 1% (6 errors)
    assert vol == pytest.approx(0.6, rel=0.01)


def test_gbm_drift_and_volatility_over_decades_of_daily_steps() -> None:
    names = [f"U{index}" for index in range(40)]
    process = GbmParams(vol=0.2, drift=0.1)
    paths = make_paths(*(underlying(name, process) for name in names), step_ns=NANOS_PER_DAY)
    steps = 25 * 365
    returns = np.stack([log_returns(paths, name, steps) for name in names])
    growth = returns.sum(axis=1).mean() / (steps * years(NANOS_PER_DAY))
    # E[log return] a year = mu - vol^2/2 = 0.08; its error over 1,000 years is
    # 0.2 / sqrt(1000) = 0.0063; tolerance 0.025 (4 errors). Without the -vol^2/2 it is 0.10.
    assert growth == pytest.approx(0.08, abs=0.025)
    vol = returns.std() / math.sqrt(years(NANOS_PER_DAY))
    assert vol == pytest.approx(0.2, rel=0.01)  # error 0.12% over 365,000 returns


# -- Merton ------------------------------------------------------------------------------------


def test_merton_jump_count_and_sizes() -> None:
    process = MertonParams(vol=0.5, jump_intensity_per_year=500, jump_mean=-0.04, jump_std=0.01)
    steps = 4 * 365 * 24 * 60  # four years of one-minute steps
    paths = make_paths(underlying("SOL", process), step_ns=NANOS_PER_MINUTE, chunk_steps=65_536)
    returns = log_returns(paths, "SOL", steps)
    # The diffusion moves 0.5 x sqrt(1/525,600) = 6.9e-4 a step, so 0.005 is 7 of its standard
    # deviations; a jump of N(-0.04, 0.01^2) is smaller than that with probability 2e-4.
    jumps = returns[np.abs(returns) > 0.005]
    # 2,000 jumps expected; Poisson error sqrt(2000) = 45 (2.2%); tolerance 10% (4.5 errors)
    assert len(jumps) == pytest.approx(2_000, rel=0.10)
    # their mean: error 0.01 / sqrt(2000) = 2.2e-4, tolerance 1e-3; std: error 1.6%, tolerance 8%
    assert jumps.mean() == pytest.approx(-0.04, abs=1e-3)
    assert jumps.std() == pytest.approx(0.01, rel=0.08)
    calm = returns[np.abs(returns) <= 0.005]
    assert calm.std() / math.sqrt(years(NANOS_PER_MINUTE)) == pytest.approx(0.5, rel=0.01)


def test_merton_drift_is_compensated_so_the_expected_return_is_the_drift() -> None:
    process = MertonParams(vol=0.2, jump_intensity_per_year=20, jump_mean=-0.1, jump_std=0.05)
    assert merton_compensator(process) == pytest.approx(20 * math.expm1(-0.1 + 0.05**2 / 2))
    names = [f"U{index}" for index in range(250)]
    paths = make_paths(
        *(underlying(name, process) for name in names), step_ns=NANOS_PER_DAY, chunk_steps=365
    )
    ratios = np.asarray([paths.grid_prices(name, 365, 1)[0] / 100.0 for name in names])
    # E[S_1 / S_0] = e^0 = 1; the ratio's std is about 0.57, so the error over 250 paths is
    # 0.036; tolerance 0.15. Without the compensator the mean would be e^(20 k) = 0.15.
    assert ratios.mean() == pytest.approx(1.0, abs=0.15)


# -- Heston ------------------------------------------------------------------------------------

HESTON = HestonParams(kappa=10.0, theta=0.04, xi=0.3, rho=-0.7, v0=0.04)


def test_heston_variance_reverts_to_theta_at_rate_kappa() -> None:
    step_ns = 4 * NANOS_PER_HOUR
    steps = 100 * 365 * 6  # a century of four-hour steps (Feller holds: 2 kappa theta > xi^2)
    paths = make_paths(underlying("ETH", HESTON), step_ns=step_ns, chunk_steps=65_536)
    variance = paths.grid_variance("ETH", 0, steps + 1)
    returns = log_returns(paths, "ETH", steps)
    dt = years(step_ns)
    # The time average of a CIR variance has error sqrt(theta) xi / (kappa sqrt(T)) = 1.5% of
    # theta over 100 years; tolerance 8%.
    assert variance.mean() == pytest.approx(0.04, rel=0.08)
    # Lag-one autocorrelation is e^(-kappa dt); the estimate of kappa from it has error
    # sqrt(2 kappa / T) = 4.5%; tolerance 20%. So the half-life is ln 2 / kappa = 25 days.
    centred = variance - variance.mean()
    autocorrelation = np.dot(centred[:-1], centred[1:]) / np.dot(centred, centred)
    kappa = -math.log(autocorrelation) / dt
    assert kappa == pytest.approx(10.0, rel=0.20)
    # The price's realized variance is the variance the model says it used (error 0.5%).
    realized = float(np.sum(returns**2)) / (steps * dt)
    assert realized == pytest.approx(variance[:-1].mean(), rel=0.03)
    # Price and variance shocks correlate at rho (error (1 - rho^2) / sqrt(N) = 0.1%).
    assert np.corrcoef(returns, np.diff(variance))[0, 1] == pytest.approx(-0.7, abs=0.02)


def test_heston_variance_decays_from_v0_towards_theta() -> None:
    process = HestonParams(kappa=10.0, theta=0.04, xi=0.3, rho=-0.7, v0=0.25)
    step_ns = 4 * NANOS_PER_HOUR
    names = [f"U{index}" for index in range(100)]
    paths = make_paths(
        *(underlying(name, process) for name in names), step_ns=step_ns, chunk_steps=512
    )
    at = round(0.1 / years(step_ns))  # 0.1 year: one time constant 1 / kappa
    elapsed = at * years(step_ns)
    mean_v = np.mean([paths.grid_variance(name, at, 1)[0] for name in names])
    # E[v_t] = theta + (v0 - theta) e^(-kappa t) = 0.117; across paths v_t has std of about
    # 0.03, so the error of the mean of 100 is 0.003; tolerance 0.012.
    expected = 0.04 + 0.21 * math.exp(-10.0 * elapsed)
    assert mean_v == pytest.approx(expected, abs=0.012)


# -- correlation and streams -------------------------------------------------------------------

MATRIX = ((1.0, 0.6, -0.3), (0.6, 1.0, 0.2), (-0.3, 0.2, 1.0))


def correlated(names: tuple[str, ...] = ("A", "B", "C"), seed: int = 3) -> PricePaths:
    size = len(names)
    matrix = tuple(row[:size] for row in MATRIX[:size])
    groups = (CorrelationGroup(members=names, matrix=matrix),) if size > 1 else ()
    vols = (0.5, 0.8, 1.2)
    return make_paths(
        *(underlying(name, GbmParams(vol=vol)) for name, vol in zip(names, vols, strict=False)),
        correlations=groups,
        seed=seed,
    )


def test_correlated_increments_match_the_matrix() -> None:
    paths = correlated(("A", "B", "C"))
    steps = 100_000
    returns = np.stack([log_returns(paths, name, steps) for name in ("A", "B", "C")])
    # error of a sample correlation: (1 - rho^2) / sqrt(N) <= 0.0032; tolerance 0.015
    np.testing.assert_allclose(np.corrcoef(returns), MATRIX, atol=0.015)


def test_appending_a_group_member_leaves_earlier_members_unchanged() -> None:
    two, three = correlated(("A", "B")), correlated(("A", "B", "C"))
    alone = correlated(("A",))
    steps = 20_000
    for name in ("A", "B"):
        np.testing.assert_array_equal(
            two.grid_prices(name, 0, steps), three.grid_prices(name, 0, steps)
        )
    # the first member's shocks are its own: its path is the one it has ungrouped
    np.testing.assert_array_equal(alone.grid_prices("A", 0, steps), two.grid_prices("A", 0, steps))


def test_adding_an_underlying_leaves_the_others_streams_unchanged() -> None:
    merton = MertonParams(vol=0.6, jump_intensity_per_year=1e4, jump_mean=0.0, jump_std=0.02)
    base = (underlying("BTC", HESTON), underlying("SOL", merton))
    extra = underlying("ETH", GbmParams(vol=0.8))
    before = make_paths(*base, seed=11)
    after = make_paths(base[0], extra, base[1], seed=11)
    for name in ("BTC", "SOL"):
        np.testing.assert_array_equal(
            before.grid_prices(name, 0, 30_000), after.grid_prices(name, 0, 30_000)
        )


def test_same_seed_same_path_different_seed_different_path() -> None:
    specs = (underlying("BTC", HESTON), underlying("SOL", GbmParams(vol=0.5)))
    first, again, other = (make_paths(*specs, seed=seed) for seed in (5, 5, 6))
    for name in ("BTC", "SOL"):
        np.testing.assert_array_equal(
            first.grid_prices(name, 0, 10_000), again.grid_prices(name, 0, 10_000)
        )
        assert not np.array_equal(first.grid_prices(name, 1, 100), other.grid_prices(name, 1, 100))


def test_the_path_does_not_depend_on_the_chunk_size() -> None:
    merton = MertonParams(vol=0.6, jump_intensity_per_year=1e5, jump_mean=0.0, jump_std=0.01)
    regimes = RegimeParams(
        segments=(
            RegimeSegment(start_offset_ns=0, process=merton),
            RegimeSegment(start_offset_ns=37 * STEP_100MS, process=HESTON),
            RegimeSegment(start_offset_ns=90 * STEP_100MS, process=merton),
        )
    )
    specs = (underlying("A", regimes), underlying("B", HESTON))
    group = (CorrelationGroup(members=("B", "A"), matrix=((1.0, 0.5), (0.5, 1.0))),)
    reference = make_paths(*specs, chunk_steps=8_192, correlations=group)
    for chunk_steps in (1, 7, 100):
        chunked = make_paths(*specs, chunk_steps=chunk_steps, correlations=group)
        for name in ("A", "B"):
            np.testing.assert_array_equal(
                chunked.grid_prices(name, 0, 300), reference.grid_prices(name, 0, 300)
            )
            np.testing.assert_array_equal(
                chunked.grid_variance(name, 0, 300), reference.grid_variance(name, 0, 300)
            )


def test_draws_come_from_named_component_streams() -> None:
    paths = make_paths(underlying("BTC", GbmParams(vol=0.5)), seed=9, chunk_steps=10)
    shocks = component_rng(9, "prices/BTC/brownian").standard_normal(10)
    dt = years(STEP_100MS)
    expected = 100.0 * np.exp(np.cumsum(-0.125 * dt + 0.5 * math.sqrt(dt) * shocks))
    np.testing.assert_allclose(paths.grid_prices("BTC", 1, 10), expected, rtol=1e-14)


# -- regimes ----------------------------------------------------------------------------------


def test_regimes_switch_volatility_and_restart_heston_variance() -> None:
    hour = NANOS_PER_HOUR
    regimes = RegimeParams(
        segments=(
            RegimeSegment(start_offset_ns=0, process=GbmParams(vol=0.2)),
            RegimeSegment(start_offset_ns=hour, process=GbmParams(vol=1.0)),
            RegimeSegment(start_offset_ns=2 * hour + 150 * MS, process=HESTON),
        )
    )
    paths = make_paths(underlying("BTC", regimes))
    per_hour = hour // STEP_100MS
    returns = log_returns(paths, "BTC", 2 * per_hour)
    scale = math.sqrt(years(STEP_100MS))
    # 36,000 returns per regime: error 0.37%; tolerance 3%
    assert returns[:per_hour].std() / scale == pytest.approx(0.2, rel=0.03)
    assert returns[per_hour:].std() / scale == pytest.approx(1.0, rel=0.03)
    # 150 ms after the hour: the first grid step at or after it is the second
    variance = paths.grid_variance("BTC", 2 * per_hour, 3)
    assert variance.tolist() == [1.0, 1.0, HESTON.v0]


def test_regimes_must_start_at_zero_and_increase() -> None:
    gbm = GbmParams(vol=0.2)
    with pytest.raises(PriceSpecError, match=r"segments\[0\].start_offset_ns must be 0"):
        RegimeParams(segments=(RegimeSegment(start_offset_ns=5, process=gbm),))
    segments = (
        RegimeSegment(start_offset_ns=0, process=gbm),
        RegimeSegment(start_offset_ns=0, process=gbm),
    )
    with pytest.raises(PriceSpecError, match=r"segments\[1\].start_offset_ns must be after"):
        RegimeParams(segments=segments)


# -- interpolation, ranges and minor units -----------------------------------------------------


def test_price_is_linear_between_grid_points() -> None:
    paths = make_paths(underlying("BTC", GbmParams(vol=0.8)), start_ns=SECOND)
    low, high = paths.grid_prices("BTC", 3, 2).tolist()
    assert paths.price("BTC", paths.grid_time_ns(3)) == low
    assert paths.price("BTC", paths.grid_time_ns(3) + 25 * MS) == low + (high - low) * 0.25
    assert paths.price("BTC", SECOND) == 100.0
    with pytest.raises(PriceSpecError) as caught:
        paths.price("BTC", SECOND - 1)
    assert caught.value.code is PriceSpecCode.OUT_OF_RANGE
    with pytest.raises(PriceSpecError) as caught:
        paths.price("DOGE", SECOND)
    assert caught.value.code is PriceSpecCode.UNKNOWN_UNDERLYING


def test_history_beyond_the_retained_chunks_is_refused() -> None:
    paths = make_paths(underlying("BTC", GbmParams(vol=0.8)), chunk_steps=10, retain_chunks=2)
    paths.price("BTC", paths.grid_time_ns(35))
    paths.price("BTC", paths.grid_time_ns(20))
    with pytest.raises(PriceSpecError, match="retain_chunks") as caught:
        paths.price("BTC", paths.grid_time_ns(19))
    assert caught.value.code is PriceSpecCode.HISTORY_DISCARDED


def test_price_to_minor_names_its_rounding() -> None:
    assert price_to_minor(100.1234565, Rounding.FLOOR) == 100_123_456
    assert price_to_minor(100.1234565, Rounding.CEIL) == 100_123_457
    assert price_to_minor(0.1 + 0.2, Rounding.FLOOR) == 300_000  # 0.30000000000000004
    assert price_to_minor(0.1 + 0.2, Rounding.CEIL) == 300_001
    paths = make_paths(underlying("BTC", GbmParams(vol=0.0), spot_usdc=65_432.1))
    assert paths.price_minor("BTC", 10 * SECOND, Rounding.FLOOR) == 65_432_100_000


def test_a_price_cursor_reads_what_the_paths_read() -> None:
    """:class:`PriceCursor` returns ``PricePaths.price`` bit for bit: on and between grid
    points, across chunks, back and forth, and at the start; chunks are made as the paths make
    them (two cursors and the paths themselves read the same values in any order)."""
    from strikechain.sim.path_cursor import PriceCursor

    def fresh() -> PricePaths:
        return make_paths(
            underlying("BTC", GbmParams(vol=0.8), spot_usdc=100_000.0),
            underlying("ETH", GbmParams(vol=0.9), spot_usdc=3_000.0),
            chunk_steps=16,
            start_ns=5 * SECOND,
        )

    rng = np.random.default_rng(7)
    times = [5 * SECOND + int(t) for t in rng.integers(0, 200 * STEP_100MS, size=400)]
    times += [5 * SECOND + k * 16 * STEP_100MS + d for k in range(1, 5) for d in (-1, 0, 1)]
    times += [5 * SECOND]
    expected = fresh()
    paths = fresh()
    cursors = {name: PriceCursor(paths, name) for name in ("BTC", "ETH")}
    for when in times:
        for name, cursor in cursors.items():
            assert cursor.price(when) == expected.price(name, when)
    with pytest.raises(PriceSpecError):  # before the start: the paths' own error
        cursors["BTC"].price(5 * SECOND - 1)


# -- replay ------------------------------------------------------------------------------------


def replay_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "path.csv"
    path.write_text(text)
    return str(path)


def replayed(params: ReplayParams, start_ns: int = 0) -> PricePaths:
    spec = PricesSpec(underlyings=(UnderlyingProcess(name="BTC", process=params),))
    return PricePaths(spec, Kernel(1).rng, start_ns)


def test_replay_interpolates_linearly_or_holds_the_previous_row(tmp_path: Path) -> None:
    path = replay_file(tmp_path, "time_ns,price\n# a comment\n1000,100\n2000,110\n\n4000,90\n")
    linear = replayed(ReplayParams(path=path), start_ns=1000)
    assert [linear.price("BTC", t) for t in (1000, 1500, 2000, 3000, 4000)] == [
        100,
        105,
        110,
        100,
        90,
    ]
    previous = replayed(ReplayParams(path=path, interpolation="previous"), start_ns=1000)
    assert [previous.price("BTC", t) for t in (1000, 1999, 2000, 3999, 4000)] == [
        100,
        100,
        110,
        110,
        90,
    ]
    with pytest.raises(PriceSpecError, match="beyond = 'hold'") as caught:
        linear.price("BTC", 4001)
    assert caught.value.code is PriceSpecCode.OUT_OF_RANGE
    held = replayed(ReplayParams(path=path, beyond="hold"), start_ns=0)
    assert (held.price("BTC", 0), held.price("BTC", 10**12)) == (100, 90)
    shifted = replayed(ReplayParams(path=path, shift_ns=-1000), start_ns=0)
    assert shifted.price("BTC", 500) == 105


def test_replay_must_cover_the_start(tmp_path: Path) -> None:
    path = replay_file(tmp_path, "1000,100\n2000,110\n")
    with pytest.raises(PriceSpecError, match="after the run's start") as caught:
        replayed(ReplayParams(path=path), start_ns=999)
    assert caught.value.code is PriceSpecCode.OUT_OF_RANGE


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("1000,100\n2000\n", PriceSpecCode.REPLAY_BAD_ROW, "line 2: expected 'time_ns,price'"),
        ("1000,100\n2e3,110\n", PriceSpecCode.REPLAY_BAD_ROW, "line 2: expected"),
        ("1000,100\n2000,abc\n", PriceSpecCode.REPLAY_BAD_ROW, "line 2: expected"),
        ("1000,100\n2000,100,1\n", PriceSpecCode.REPLAY_BAD_ROW, "line 2: expected"),
        ("1000,100\n2000,-5\n", PriceSpecCode.REPLAY_BAD_ROW, "price '-5' is not a positive"),
        ("1000,100\n2000,nan\n", PriceSpecCode.REPLAY_BAD_ROW, "not a positive finite"),
        ("1000,100\n1000,101\n", PriceSpecCode.REPLAY_TIMES_NOT_INCREASING, "line 2: time 1000"),
        ("2000,100\n1000,101\n", PriceSpecCode.REPLAY_TIMES_NOT_INCREASING, "strictly increase"),
        ("time_ns,price\n1000,100\n", PriceSpecCode.REPLAY_ROW_COUNT, "at least two"),
    ],
)
def test_replay_refuses_bad_files(
    tmp_path: Path, text: str, code: PriceSpecCode, message: str
) -> None:
    path = replay_file(tmp_path, text)
    with pytest.raises(PriceSpecError, match=message) as caught:
        replayed(ReplayParams(path=path))
    assert caught.value.code is code
    assert path in caught.value.message


def test_replay_refuses_a_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(PriceSpecError, match="cannot read replay file") as caught:
        replayed(ReplayParams(path=missing))
    assert caught.value.code is PriceSpecCode.REPLAY_FILE_UNREADABLE


# -- scenario input ----------------------------------------------------------------------------

SCENARIO = """
step_ns = 100_000_000

[[underlyings]]
name = "BTC"
spot_usdc = 100000
process = { kind = "heston", kappa = 3, theta = 0.36, xi = 0.9, rho = -0.6, v0 = 0.36 }

[[underlyings]]
name = "ETH"
spot_usdc = 4000.0
[underlyings.process]
kind = "regimes"

[[underlyings.process.segments]]
start_offset_ns = 0
process = { kind = "gbm", vol = 0.7 }

[[underlyings.process.segments]]
start_offset_ns = 3_600_000_000_000
process.kind = "merton"
process.vol = 0.9
process.jump_intensity_per_year = 12
process.jump_mean = -0.05
process.jump_std = 0.03

[[correlations]]
members = ["BTC", "ETH"]
matrix = [[1, 0.8], [0.8, 1]]
"""


def test_a_toml_scenario_decodes_into_a_spec() -> None:
    spec = msgspec.convert(tomllib.loads(SCENARIO), PricesSpec)
    assert isinstance(spec.underlyings[0].process, HestonParams)
    regimes = spec.underlyings[1].process
    assert isinstance(regimes, RegimeParams)
    assert isinstance(regimes.segments[1].process, MertonParams)
    paths = PricePaths(spec, Kernel(1).rng, 0)
    assert paths.price("ETH", 2 * NANOS_PER_HOUR) > 0


def test_a_bad_parameter_names_its_field() -> None:
    table = tomllib.loads(SCENARIO)
    table["underlyings"][0]["process"]["rho"] = -1.5
    with pytest.raises(msgspec.ValidationError, match=r"HestonParams.rho must be finite"):
        msgspec.convert(table, PricesSpec)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: GbmParams(vol=-0.1), "GbmParams.vol"),
        (lambda: GbmParams(vol=0.5, drift=math.nan), "GbmParams.drift"),
        (
            lambda: MertonParams(vol=0.5, jump_intensity_per_year=-1, jump_mean=0, jump_std=0.1),
            "jump_intensity_per_year",
        ),
        (lambda: HestonParams(kappa=0, theta=0.04, xi=0.3, rho=0, v0=0.04), "HestonParams.kappa"),
        (
            lambda: UnderlyingProcess(name="BTC", process=GbmParams(vol=0.5)),
            r"UnderlyingProcess\(BTC\).spot_usdc",
        ),
        (
            lambda: UnderlyingProcess(name="B T C", process=GbmParams(vol=0.5), spot_usdc=1.0),
            "UnderlyingProcess.name",
        ),
        (
            lambda: CorrelationGroup(members=("A", "B"), matrix=((1.0, 0.5), (0.4, 1.0))),
            "symmetric",
        ),
        (
            lambda: CorrelationGroup(members=("A", "B"), matrix=((1.0, 1.0), (1.0, 1.0))),
            "positive definite",
        ),
        (lambda: CorrelationGroup(members=("A", "B"), matrix=((1.0,),)), "must be 2 x 2"),
        (lambda: PricesSpec(underlyings=(underlying("A", GbmParams(vol=0.1)),) * 2), "repeat"),
        (
            lambda: PricesSpec(underlyings=(underlying("A", GbmParams(vol=0.1)),), step_ns=0),
            "step_ns",
        ),
    ],
)
def test_bad_parameters_are_refused(build: object, message: str) -> None:
    with pytest.raises(PriceSpecError, match=message) as caught:
        build()  # type: ignore[operator]
    assert caught.value.code is PriceSpecCode.INVALID_PARAMETER


def test_groups_name_generated_underlyings_once(tmp_path: Path) -> None:
    gbm = GbmParams(vol=0.3)
    pair = CorrelationGroup(members=("A", "B"), matrix=((1.0, 0.5), (0.5, 1.0)))
    with pytest.raises(PriceSpecError, match="must name underlyings of the spec"):
        PricesSpec(underlyings=(underlying("A", gbm),), correlations=(pair,))
    replay = UnderlyingProcess(name="B", process=ReplayParams(path=str(tmp_path / "b.csv")))
    with pytest.raises(PriceSpecError, match="replayed"):
        PricesSpec(underlyings=(underlying("A", gbm), replay), correlations=(pair,))
    other = CorrelationGroup(members=("B", "C"), matrix=((1.0, 0.5), (0.5, 1.0)))
    three = tuple(underlying(name, gbm) for name in "ABC")
    with pytest.raises(PriceSpecError, match="another group"):
        PricesSpec(underlyings=three, correlations=(pair, other))


def test_cholesky_reproduces_the_matrix() -> None:
    lower = np.asarray(cholesky(MATRIX))
    np.testing.assert_allclose(lower @ lower.T, MATRIX, atol=1e-15)
    assert lower[0].tolist() == [1.0, 0.0, 0.0]
