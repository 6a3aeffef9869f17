"""The external hedging venue: fills at the reference price on arrival, half a spread against
the taker, a fee on the notional, the confirmation one return latency later; FIFO per agent;
deterministic per seed; orders over its limits are refused with a typed error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from strikechain.engine.txs import Side
from strikechain.sim.hedge_venue import (
    HedgeFill,
    HedgeOrderError,
    HedgeRejectCode,
    HedgeVenue,
    HedgeVenueParams,
    fill_price,
)
from strikechain.sim.kernel import Kernel
from strikechain.sim.processes import (
    GbmParams,
    PricePaths,
    PricesSpec,
    ReplayParams,
    UnderlyingProcess,
)

MS = 1_000_000


def ramp_venue(tmp_path: Path, params: HedgeVenueParams) -> tuple[Kernel, HedgeVenue]:
    """BTC replayed from 100 at 0 s to 110 at 1 s, linearly: 101 at 100 ms, 106 at 600 ms."""
    path = tmp_path / "btc.csv"
    path.write_text("time_ns,price\n0,100\n1000000000,110\n")
    spec = PricesSpec(
        underlyings=(UnderlyingProcess(name="BTC", process=ReplayParams(path=str(path))),)
    )
    kernel = Kernel(1)
    return kernel, HedgeVenue(kernel, PricePaths(spec, kernel.rng, 0), params)


def noisy_venue(seed: int, params: HedgeVenueParams) -> tuple[Kernel, HedgeVenue]:
    spec = PricesSpec(
        underlyings=(UnderlyingProcess(name="ETH", process=GbmParams(vol=0.8), spot_usdc=4000.0),)
    )
    kernel = Kernel(seed)
    return kernel, HedgeVenue(kernel, PricePaths(spec, kernel.rng, 0), params)


HAND = HedgeVenueParams(spread_bps=10.0, fee_bps=5.0, latency_ns=100 * MS)


def test_a_round_trip_priced_fee_and_timed_by_hand(tmp_path: Path) -> None:
    kernel, venue = ramp_venue(tmp_path, HAND)
    fills: list[HedgeFill] = []
    venue.submit("mm", "BTC", Side.BUY, 2.0, fills.append)
    kernel.run(until_ns=500 * MS)
    venue.submit("mm", "BTC", Side.SELL, 2.0, fills.append)
    kernel.run()
    buy, sell = fills
    # buy: arrives at 100 ms, reference 101, pays 101 x (1 + 5 bp) = 101.0505 a unit
    assert (buy.submitted_ns, buy.filled_ns, buy.confirmed_ns) == (0, 100 * MS, 200 * MS)
    assert buy.reference_price == pytest.approx(101.0)
    assert buy.price == pytest.approx(101.0505)
    assert buy.notional_usdc == pytest.approx(202.101)
    assert buy.fee_usdc == pytest.approx(0.1010505)
    # sell: arrives at 600 ms, reference 106, receives 106 x (1 - 5 bp) = 105.947 a unit
    assert (sell.filled_ns, sell.confirmed_ns) == (600 * MS, 700 * MS)
    assert sell.price == pytest.approx(105.947)
    assert sell.fee_usdc == pytest.approx(0.105947)
    account = venue.get_account("mm")
    assert account is not None
    assert account.positions == {"BTC": 0.0}
    assert account.cash_usdc == pytest.approx(-202.101 - 0.1010505 + 211.894 - 0.105947)
    assert account.fees_paid_usdc == pytest.approx(0.2069975)
    assert account.traded_notional_usdc == pytest.approx(413.995)
    assert account.fills == 2
    assert (buy.order_id, sell.order_id) == (1, 2)


def test_the_books_change_at_the_fill_and_the_agent_learns_at_the_confirmation(
    tmp_path: Path,
) -> None:
    kernel, venue = ramp_venue(tmp_path, HAND)
    fills: list[HedgeFill] = []
    venue.submit("mm", "BTC", Side.SELL, 0.5, fills.append)
    kernel.run(until_ns=99 * MS)
    assert venue.get_account("mm") is None
    kernel.run(until_ns=199 * MS)
    account = venue.get_account("mm")
    assert account is not None
    assert account.positions == {"BTC": -0.5}
    assert fills == []
    kernel.run(until_ns=200 * MS)
    assert len(fills) == 1
    # marked at the reference (105 at 500 ms): cash 0.5 x 100.9495 x (1 - 5 bp) less 52.5
    expected = 0.5 * 100.9495 * (1 - 0.0005) - 0.5 * 105.0
    assert account.equity_usdc(venue.paths, 500 * MS) == pytest.approx(expected)
    assert dict(venue.accounts) == {"mm": account}


def test_fill_price_takes_half_the_spread() -> None:
    assert fill_price(2_000.0, Side.BUY, 4.0) == pytest.approx(2_000.4)
    assert fill_price(2_000.0, Side.SELL, 4.0) == pytest.approx(1_999.6)
    assert fill_price(2_000.0, Side.BUY, 0.0) == 2_000.0


def run_jittered(seed: int) -> list[HedgeFill]:
    params = HedgeVenueParams(latency_ns=10 * MS, latency_jitter_ns=50 * MS)
    kernel, venue = noisy_venue(seed, params)
    fills: list[HedgeFill] = []

    def order(agent: str, side: Side) -> Callable[[], None]:
        def send() -> None:
            venue.submit(agent, "ETH", side, 1.0, fills.append)

        return send

    for index in range(60):
        side = Side.BUY if index % 2 else Side.SELL
        kernel.call_at(index * 5 * MS, order(f"agent-{index % 3}", side))
    kernel.run()
    return fills


def test_jittered_latency_stays_in_bounds_and_each_agent_link_is_fifo() -> None:
    fills = run_jittered(seed=4)
    assert len(fills) == 60
    for fill in fills:
        assert 10 * MS <= fill.filled_ns - fill.submitted_ns <= 60 * MS
        assert 10 * MS <= fill.confirmed_ns - fill.filled_ns <= 60 * MS
    for agent in ("agent-0", "agent-1", "agent-2"):
        own = [fill for fill in fills if fill.agent == agent]
        assert [fill.order_id for fill in own] == sorted(fill.order_id for fill in own)
        filled = [fill.filled_ns for fill in sorted(own, key=lambda fill: fill.order_id)]
        assert filled == sorted(filled)
    delays = {fill.filled_ns - fill.submitted_ns for fill in fills}
    assert len(delays) > 10  # the jitter does vary


def test_same_seed_same_fills_different_seed_different_fills() -> None:
    assert run_jittered(seed=4) == run_jittered(seed=4)
    assert run_jittered(seed=4) != run_jittered(seed=5)


def test_orders_over_the_limits_are_refused(tmp_path: Path) -> None:
    params = HedgeVenueParams(latency_ns=100 * MS, max_quantity=10.0, max_in_flight=2)
    kernel, venue = ramp_venue(tmp_path, params)
    cases = [("ETH", 1.0, HedgeRejectCode.UNKNOWN_UNDERLYING)] + [
        ("BTC", quantity, HedgeRejectCode.BAD_QUANTITY)
        for quantity in (0.0, -1.0, float("nan"), 10.5)
    ]
    for underlying, quantity, code in cases:
        with pytest.raises(HedgeOrderError) as caught:
            venue.submit("mm", underlying, Side.BUY, quantity, lambda fill: None)
        assert caught.value.code is code
    venue.submit("mm", "BTC", Side.BUY, 10.0, lambda fill: None)
    venue.submit("mm", "BTC", Side.BUY, 1.0, lambda fill: None)
    with pytest.raises(HedgeOrderError, match="2 unconfirmed orders") as caught:
        venue.submit("mm", "BTC", Side.BUY, 1.0, lambda fill: None)
    assert caught.value.code is HedgeRejectCode.TOO_MANY_IN_FLIGHT
    venue.submit("other", "BTC", Side.BUY, 1.0, lambda fill: None)
    kernel.run()
    venue.submit("mm", "BTC", Side.BUY, 1.0, lambda fill: None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"spread_bps": -1.0}, "spread_bps"),
        ({"fee_bps": 5_000.0}, "fee_bps"),
        ({"latency_ns": -1}, "latency_ns"),
        ({"latency_jitter_ns": 10**12}, "latency_jitter_ns"),
        ({"max_quantity": 0.0}, "max_quantity"),
        ({"max_in_flight": 0}, "max_in_flight"),
    ],
)
def test_bad_parameters_name_their_field(changes: dict[str, float], field: str) -> None:
    with pytest.raises(HedgeOrderError, match=f"HedgeVenueParams.{field}") as caught:
        HedgeVenueParams(**changes)  # type: ignore[arg-type]
    assert caught.value.code is HedgeRejectCode.INVALID_PARAMETER
