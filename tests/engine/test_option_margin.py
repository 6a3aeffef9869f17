"""Standard option margin (Deribit's, in USDC-linear terms, per lot), worked by hand.

BTC options here have a lot of 0.01 BTC and a tick of 5 USDC, so at an index of 100,000 USDC
one lot's index is 1,000 USDC, and a premium of ``p`` USDC per BTC is ``p / 100`` USDC a lot
(``p / 5`` ticks). Default rates: initial ``max(15% - OTM%, 10%)`` of the index, maintenance
7.5%, a put's maintenance at least 7.5% of its mark; a short adds its mark to both.
"""

from __future__ import annotations

from strikechain.engine.accounts import Exposure, Market, SubLedger, UnderlyingState, market_for
from strikechain.engine.calendar import expiry_ns
from strikechain.engine.codes import RejectCode
from strikechain.engine.events import Fill
from strikechain.engine.margin import STANDARD_MARGIN
from strikechain.engine.marks import set_mark
from strikechain.engine.params import FeeParams, MarginParams
from strikechain.engine.txs import PostOnly
from tests.engine.venue import (
    BTC_PRICE,
    USDC,
    OptionType,
    Venue,
    btc_option,
    btc_perp,
    config,
    eth_perp,
    of_type,
    params,
    rejections,
)

EXPIRY = expiry_ns(2026, 12, 25)
MAKER = {"post_only": PostOnly.REJECT}
NO_FEES = FeeParams(perp_maker_ppm=0, perp_taker_ppm=0, option_maker_ppm=0, option_taker_ppm=0)


def _market(
    strike: int, option_type: OptionType, premium_usdc: int, index: int = BTC_PRICE
) -> Market:
    """An option market at ``index`` (minor units per BTC), marked at ``premium_usdc`` per BTC."""
    state = UnderlyingState(name="BTC", params=params(margin=MarginParams()), oracle=None)
    market = market_for(btc_option(strike, option_type, EXPIRY), state)
    set_mark(market, index, premium_usdc * USDC)
    return market


def _exposure(market: Market, position: int) -> Exposure:
    ledger = SubLedger(account="a", underlying="BTC", state=market.state)
    exposure = ledger.exposure(market)
    exposure.position = position
    return exposure


def _margin(
    strike: int, option_type: OptionType, premium_usdc: int, position: int
) -> tuple[int, int]:
    initial, maintenance, reserve = STANDARD_MARGIN.requirement(
        _exposure(_market(strike, option_type, premium_usdc), position)
    )
    assert reserve == 0
    return initial, maintenance


# -- the policy, directly ------------------------------------------------------------------------


def test_market_fields_per_lot() -> None:
    market = _market(120_000, OptionType.CALL, 100)
    assert market.index_per_lot == 1_000 * USDC
    assert market.strike_per_lot == 1_200 * USDC  # exact: strike ticks x value per tick-lot
    assert market.mark_per_lot == 1 * USDC
    assert (market.initial_ppm, market.initial_floor_ppm, market.maintenance_ppm) == (
        150_000,
        100_000,
        75_000,
    )
    assert market.put_mark_floor_ppm == 0  # calls have no put floor
    assert _market(90_000, OptionType.PUT, 100).put_mark_floor_ppm == 75_000


def test_at_the_money_short_call() -> None:
    """OTM 0: 15% of 1,000 USDC plus the 20 USDC mark = 170 USDC a lot at initial margin;
    7.5% of 1,000 plus 20 = 95 USDC at maintenance. Three lots: 510 and 285 USDC."""
    assert _margin(100_000, OptionType.CALL, 2_000, -3) == (510 * USDC, 285 * USDC)


def test_out_of_the_money_short_calls() -> None:
    """3% out of the money: 15% - 3% = 12% of 1,000 USDC plus a 5 USDC mark = 125 USDC.
    20% out of the money: 15% - 20% is below the floor, so 10%: 100 USDC plus a 1 USDC mark."""
    assert _margin(103_000, OptionType.CALL, 500, -1) == (125 * USDC, 80 * USDC)
    assert _margin(120_000, OptionType.CALL, 100, -1) == (101 * USDC, 76 * USDC)
    # An in-the-money call gets no relief: 15% plus its mark (10,500 USDC a BTC, 105 a lot).
    assert _margin(90_000, OptionType.CALL, 10_500, -1) == (255 * USDC, 180 * USDC)


def test_short_puts() -> None:
    """A 110,000 put at an index of 100,000 is 10% in the money: no relief, 15% of 1,000 USDC
    plus its 105 USDC mark = 255 USDC at initial, 75 + 105 = 180 at maintenance (7.5% of its
    mark, 7.875 USDC, is below 7.5% of the index: the put floor does not bind).
    A 90,000 put is 10% out of the money: 15% - 10% = 5%, below the floor: 10%, 100 USDC plus a
    3 USDC mark."""
    assert _margin(110_000, OptionType.PUT, 10_500, -1) == (255 * USDC, 180 * USDC)
    assert _margin(90_000, OptionType.PUT, 300, -1) == (103 * USDC, 78 * USDC)


def test_the_put_floor() -> None:
    """A 250,000 put with the index at 100,000 is worth 150,000 USDC a BTC, 1,500 a lot: more
    than the index. Maintenance is 7.5% of the larger of index and mark, 112.5 USDC, plus the
    mark: 1,612.5 USDC. Initial margin is 15% of the index (150 USDC, no relief in the money)
    plus the mark, 1,650 USDC; had the floor exceeded 15% of the index, initial would have
    been lifted to maintenance (it never lies below it)."""
    assert _margin(250_000, OptionType.PUT, 150_000, -1) == (1_650 * USDC, 1_612_500_000)
    # At a 350,000 strike the mark is 2,500 a lot: its 7.5%, 187.5 USDC, exceeds 15% of the
    # index, so initial margin equals maintenance: 187.5 + 2,500.
    assert _margin(350_000, OptionType.PUT, 250_000, -1) == (2_687_500_000, 2_687_500_000)


def test_a_long_option_pays_its_premium() -> None:
    """A long's requirement is its value at the mark, at initial and at maintenance alike."""
    assert _margin(110_000, OptionType.PUT, 10_500, 2) == (210 * USDC, 210 * USDC)
    assert _margin(120_000, OptionType.CALL, 100, 5) == (5 * USDC, 5 * USDC)
    assert _margin(120_000, OptionType.CALL, 100, 0) == (0, 0)


def test_rounding_is_once_for_all_lots_and_up() -> None:
    """At an index of 100,000.0001 USDC a lot's index is 1,000,000,001 minor units; 15% of three
    of them is 450,000,000.45, asked as 450,000,001 (one CEIL over all lots, not per lot)."""
    market = _market(100_000, OptionType.CALL, 0, index=BTC_PRICE + 100)
    assert market.index_per_lot == 1_000_000_001
    initial, maintenance, _ = STANDARD_MARGIN.requirement(_exposure(market, -3))
    assert (initial, maintenance) == (450_000_001, 225_000_001)


def test_sell_orders_reserve_a_shorts_initial_margin_on_the_growing_lots() -> None:
    """Long 1 lot of the at-the-money call (mark 20 USDC a lot), 3 lots offered at the mark:
    the first closes the long, 2 would open a short, which needs 170 USDC a lot. A bid for 2
    lots reserves their value at the mark, 40 USDC; the sides are alternatives: 340 USDC."""
    market = _market(100_000, OptionType.CALL, 2_000)
    exposure = _exposure(market, 1)
    at_mark = 400  # ticks: 2,000 USDC a BTC
    value = at_mark * 3 * market.value_per_tick_lot
    initial, maintenance, reserve = STANDARD_MARGIN.requirement(exposure, -1, 3, value, 0)
    assert (initial, maintenance) == (20 * USDC, 20 * USDC)
    assert reserve == 2 * 170 * USDC
    exposure.sell_lots, exposure.sell_value = 3, value
    bid = at_mark * 2 * market.value_per_tick_lot
    assert STANDARD_MARGIN.requirement(exposure, 1, 2, bid, 0)[2] == 340 * USDC
    # The bound of one more lot offered covers what it adds exactly: 170 USDC.
    one = at_mark * market.value_per_tick_lot
    bound = STANDARD_MARGIN.order_bound(exposure, -1, 1, one, 0)
    added = STANDARD_MARGIN.requirement(exposure, -1, 1, one, 0)[2] - reserve
    assert added == 170 * USDC
    assert bound >= added


# -- through an engine ---------------------------------------------------------------------------


def _venue() -> tuple[Venue, str, str]:
    """A venue with a 100,000 call and a 110,000 put a month out; no vol nodes, so each is
    marked at its intrinsic value (the call 0, the put 10,000 USDC a BTC: 100 a lot)."""
    call = btc_option(100_000, OptionType.CALL, EXPIRY)
    put = btc_option(110_000, OptionType.PUT, EXPIRY)
    venue = Venue(config(fees=NO_FEES), instruments=(btc_perp(), eth_perp(), call, put))
    return venue, call.name, put.name


def test_an_at_the_money_short_call_in_a_venue() -> None:
    """Marked at 0, a short call needs 15% of the index, 150 USDC a lot: 150 USDC of collateral
    carries one lot offered, not two; after it fills, 150 USDC initial, 75 maintenance."""
    venue, call, _ = _venue()
    assert venue.engine.markets[call].mark_per_lot == 0
    venue.deposit("short", 150 * USDC)
    venue.deposit("long", 1_000 * USDC)
    premium = 400  # ticks: 2,000 USDC a BTC, 20 USDC a lot
    refused = rejections(venue.place("short", -1, premium, 2, instrument=call, **MAKER))
    assert refused == [RejectCode.INSUFFICIENT_MARGIN]
    assert not rejections(venue.place("short", -1, premium, 1, instrument=call, **MAKER))
    assert venue.ledger("short").reserve == 150 * USDC
    assert of_type(venue.place("long", 1, premium, 1, instrument=call), Fill)
    short = venue.ledger("short")
    assert (short.initial, short.maintenance, short.reserve) == (150 * USDC, 75 * USDC, 0)
    assert short.equity == 170 * USDC  # 150 deposited, 20 premium, a short worth 0 at the mark
    assert venue.ledger("long").initial == 0  # a long worth 0 needs nothing


def test_an_in_the_money_put_in_a_venue() -> None:
    """The 110,000 put is marked at 100 USDC a lot. Two lots sold at 105 USDC a lot: the short
    needs 15% of 1,000 plus 100 = 250 USDC a lot at initial, 175 at maintenance; the long holds
    its value, 200 USDC, at both."""
    venue, _, put = _venue()
    assert venue.engine.markets[put].mark_per_lot == 100 * USDC
    venue.deposit("short", 10_000 * USDC)
    venue.deposit("long", 10_000 * USDC)
    premium = 2_100  # ticks: 10,500 USDC a BTC, 105 a lot
    assert not rejections(venue.place("short", -1, premium, 2, instrument=put, **MAKER))
    assert venue.ledger("short").reserve == 2 * 250 * USDC
    assert of_type(venue.place("long", 1, premium, 2, instrument=put), Fill)
    short, long = venue.ledger("short"), venue.ledger("long")
    assert (short.initial, short.maintenance) == (500 * USDC, 350 * USDC)
    assert (long.initial, long.maintenance) == (200 * USDC, 200 * USDC)
    assert long.equity == 10_000 * USDC - 10 * USDC  # paid 210, holds 200 at the mark
