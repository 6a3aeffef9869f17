"""``[[instruments]]`` with ``kind = "option"``: fixed expiries and strikes or a rolling rule,
each bad field refused with its path named; perpetuals unchanged."""

from __future__ import annotations

from decimal import Decimal

import pytest

from strikechain.engine.calendar import expiry_ns
from strikechain.engine.instruments import OptionType
from strikechain.node.config import ConfigError, parse_config

NOW_NS = expiry_ns(2026, 12, 7, hour=12)  # a Monday, noon UTC
HEAD = """
[[underlyings]]
name = "BTC"
reporters = ["0x0000000000000000000000000000000000000001"]

[[instruments]]
underlying = "BTC"

[[instruments]]
underlying = "BTC"
"""
PERPETUAL = HEAD.rsplit("[[instruments]]", 1)[0]


def options(body: str) -> str:
    """``HEAD``'s second table made an option (unless ``body`` gives its own kind)."""
    return HEAD + ("" if body.startswith("kind") else 'kind = "option"\n') + body


def test_fixed_expiries_and_strikes_list_calls_and_puts() -> None:
    config = parse_config(
        options(
            'tick = "5"\nlot = "0.01"\nexpiries = ["2026-12-25", "2026-12-11"]\n'
            'strikes = ["100000", "90000"]\n'
        )
    )
    assert [i.name for i in config.listings()] == ["BTC_USDC-PERPETUAL"]
    (section,) = config.option_sections()
    expiries = section.option_expiries(NOW_NS)
    assert expiries == [expiry_ns(2026, 12, 11), expiry_ns(2026, 12, 25)]
    chain = section.options(expiries[0], NOW_NS, None)
    assert [i.name for i in chain] == [
        "BTC_USDC-11DEC26-90000-C",
        "BTC_USDC-11DEC26-90000-P",
        "BTC_USDC-11DEC26-100000-C",
        "BTC_USDC-11DEC26-100000-P",
    ]
    assert chain[0].option_type == OptionType.CALL
    assert chain[0].lot_size == Decimal("0.01")
    # An expiry closer than min_expiry_hours (default 1) is not listed.
    assert section.option_expiries(expiry_ns(2026, 12, 11) - 1) == [expiry_ns(2026, 12, 25)]


def test_a_rolling_rule_lists_expiries_from_now_and_strikes_around_the_index() -> None:
    config = parse_config(
        options(
            'tick = "5"\nlot = "0.01"\ndailies = 2\nweeklies = 1\n'
            'strikes_per_side = 2\nstd_devs = "1"\nmin_expiry_hours = 24\n'
        )
    )
    (section,) = config.option_sections()
    expiries = section.option_expiries(NOW_NS)
    # Tuesday noon + 24 h: Wednesday and Thursday 08:00, and Friday's weekly.
    assert expiries == [expiry_ns(2026, 12, day) for day in (9, 10, 11)]
    assert section.options(expiries[0], NOW_NS, None) == []  # no index yet
    chain = section.options(expiries[0], NOW_NS, Decimal("100123.45"))
    strikes = sorted({i.strike_ticks * i.tick_size for i in chain})
    assert len(chain) == 10
    assert len(strikes) == 5
    assert strikes[0] < Decimal("100123.45") < strikes[-1]
    assert strikes[2] == Decimal(100_000)


def test_perpetuals_keep_their_defaults() -> None:
    config = parse_config(PERPETUAL)
    (perpetual,) = config.listings()
    assert (perpetual.tick_size, perpetual.lot_size) == (Decimal("0.5"), Decimal("0.001"))
    assert config.option_sections() == []


VALID_FIXED = 'expiries = ["2026-12-25"]\nstrikes = ["100000"]\n'
BAD: list[tuple[str, str]] = [
    ("kind", 'kind = "future"\n' + VALID_FIXED),
    ("expiries", 'strikes = ["100000"]\n'),
    ("expiries", 'expiries = []\nstrikes = ["100000"]\n'),
    ("expiries[1]", 'expiries = ["2026-12-25", "2026-02-30"]\nstrikes = ["100000"]\n'),
    ("expiries[0]", 'expiries = ["25DEC26"]\nstrikes = ["100000"]\n'),
    ("expiries[0]", 'expiries = ["2100-01-01"]\nstrikes = ["100000"]\n'),
    ("expiries", 'expiries = "2026-12-25"\nstrikes = ["100000"]\n'),
    ("dailies", VALID_FIXED + "dailies = 1\n"),
    ("weeklies", 'weeklies = -1\nstrikes = ["100000"]\n'),
    ("dailies", 'dailies = 0\nstrikes = ["100000"]\n'),
    ("monthlies", 'monthlies = 40\nstrikes = ["100000"]\n'),
    ("quarterlies", 'quarterlies = "4"\nstrikes = ["100000"]\n'),
    ("strikes", 'expiries = ["2026-12-25"]\n'),
    ("strikes", 'expiries = ["2026-12-25"]\nstrikes = []\n'),
    ("strikes[1]", 'expiries = ["2026-12-25"]\nstrikes = ["100000", "100002"]\ntick = "5"\n'),
    ("strikes[0]", 'expiries = ["2026-12-25"]\nstrikes = ["-5"]\n'),
    ("strikes[0]", 'expiries = ["2026-12-25"]\nstrikes = ["lots"]\n'),
    ("strikes_per_side", VALID_FIXED + "strikes_per_side = 2\n"),
    ("strikes_per_side", 'expiries = ["2026-12-25"]\nstrikes_per_side = 0\n'),
    ("strikes_per_side", 'expiries = ["2026-12-25"]\nstrikes_per_side = 51\n'),
    ("std_devs", 'expiries = ["2026-12-25"]\nstrikes_per_side = 2\nstd_devs = "0"\n'),
    ("reference_vol", 'expiries = ["2026-12-25"]\nstrikes_per_side = 2\nreference_vol = "x"\n'),
    ("reference_vol", 'expiries = ["2026-12-25"]\nstrikes_per_side = 2\nreference_vol = "11"\n'),
    ("std_devs", VALID_FIXED + 'std_devs = "1"\n'),
    ("min_expiry_hours", VALID_FIXED + "min_expiry_hours = -1\n"),
    ("tick", VALID_FIXED + 'tick = "0"\n'),
    ("lot", VALID_FIXED + 'lot = "-0.01"\n'),
]


@pytest.mark.parametrize(("field", "body"), BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_each_bad_option_field_is_refused_naming_it(field: str, body: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(options(body))
    assert f"$.instruments[1].{field}" in str(refused.value)


@pytest.mark.parametrize(
    "field", ["expiries", "dailies", "strikes", "strikes_per_side", "min_expiry_hours"]
)
def test_option_fields_on_a_perpetual_are_refused(field: str) -> None:
    value = '["1"]' if field in ("expiries", "strikes") else "1"
    text = PERPETUAL + f"{field} = {value}\n"
    with pytest.raises(ConfigError, match=rf"\$\.instruments\[0\]\.{field}: only an option"):
        parse_config(text)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("cut_grace_ms = -1.0", "node.cut_grace_ms"),
        ("cut_grace_ms = 60001.0", "node.cut_grace_ms"),
        ("gc_interval_s = 0.0", "node.gc_interval_s"),
        ("gc_interval_s = 7200.0", "node.gc_interval_s"),
    ],
)
def test_node_timing_fields_out_of_range_are_refused_naming_them(line: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        parse_config(f"[node]\nblock_interval_ms = 100.0\n{line}\n" + PERPETUAL)
