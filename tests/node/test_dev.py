"""The development venue's options: the rolling listing rule and the reporter's vol surface,
without a node (the engine's listing and oracle state are stood in for)."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace

from strikechain.engine.calendar import expiry_ns
from strikechain.engine.instruments import Instrument
from strikechain.engine.oracle import MAX_VOL_SLICES
from strikechain.node import dev, listing

NOW_NS = expiry_ns(2026, 12, 7, hour=12)  # a Monday, noon UTC


def engine(
    index_usdc: int | None, listed: Mapping[str, Instrument] | None = None
) -> SimpleNamespace:
    oracle = SimpleNamespace(index=None if index_usdc is None else index_usdc * dev.USDC)
    return SimpleNamespace(
        instruments=dict(listed or {}),
        expired_instruments={},
        underlyings={"BTC": SimpleNamespace(oracle=oracle), "ETH": SimpleNamespace(oracle=None)},
    )


def test_the_dev_venue_lists_rolling_btc_options_once_there_is_an_index() -> None:
    config = dev.dev_config("unused")
    assert [i.name for i in config.listings()] == ["BTC_USDC-PERPETUAL", "ETH_USDC-PERPETUAL"]
    assert listing.due_options(config, engine(None), NOW_NS) == []
    due = listing.due_options(config, engine(100_000), NOW_NS)
    expiries = sorted({i.expiry_ns for i in due})
    # At least a day away: the next two dailies, and Friday's weekly.
    assert expiries == [expiry_ns(2026, 12, day) for day in (9, 10, 11)]
    assert len(due) == 3 * 5 * 2
    assert all(i.underlying == "BTC" and i.is_option for i in due)
    listed = {i.name: i for i in due}
    assert listing.due_options(config, engine(100_000, listed), NOW_NS) == []
    assert listing.due_options(config, engine(100_000, listed), NOW_NS + 86_400 * 10**9) == []
    # Two days later the next daily comes into range, around the index of then.
    later = listing.due_options(config, engine(120_000, listed), NOW_NS + 2 * 86_400 * 10**9)
    assert {i.expiry_ns for i in later} == {expiry_ns(2026, 12, 12)}
    assert {i.name for i in later} >= {"BTC_USDC-12DEC26-120000-C", "BTC_USDC-12DEC26-120000-P"}


def test_the_reporter_publishes_the_smile_for_every_listed_expiry() -> None:
    config = dev.dev_config("unused")
    listed = listing.due_options(config, engine(100_000), NOW_NS)
    grid = config.venue().underlyings["BTC"].oracle.log_moneyness_ppm
    vols = dev.SMILE.vols_ppm(grid)
    slices = dev.vol_slices(listed, "BTC", NOW_NS, vols)
    assert [s.expiry_ns for s in slices] == sorted({i.expiry_ns for i in listed})
    assert len(vols) == len(grid)
    assert vols[grid.index(0)] == 600_000
    assert vols[0] > vols[grid.index(0)]  # the put wing is richer: a skew, and a smile
    assert dev.vol_slices(listed, "ETH", NOW_NS, vols) == ()
    # An expiry about to pass is left out (a report whose slice expires first is refused).
    first = slices[0].expiry_ns
    assert dev.vol_slices(listed, "BTC", first - dev.VOL_MARGIN_NS, vols)[0].expiry_ns > first
    assert len(slices) <= MAX_VOL_SLICES
