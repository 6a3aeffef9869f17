"""strikechain's venue methods and channels (:mod:`strikechain.node.api.venue`), in process: their
results on a venue with an option and an index, and bad input refused with stable codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from strikechain.node.api import errors
from strikechain.node.api.channels import ChannelKind, parse_channel
from strikechain.node.api.limits import ApiLimits
from strikechain.node.api.venue import attach
from tests.node.api.test_methods import OPTION, PERP, Venue, param_of, run


def test_the_venue_methods_answer_from_the_engine(tmp_path: Path) -> None:
    async def body(venue: Venue) -> None:
        attach(venue.node)
        await venue.call("private/buy", {"instrument_name": PERP, "amount": 0.01, "price": 99_000})
        status = await venue.call("public/get_venue_status", {}, "public")
        assert status["height"] == venue.node.engine.height
        assert status["underlyings"][0]["currency"] == "BTC"
        assert status["underlyings"][0]["breaker_open"] is False
        blocks = await venue.call("public/get_block_stats", {"count": 5}, "public")
        assert 1 <= len(blocks) <= 5
        assert status["block"] == blocks[-1]  # the last block's timing
        # (the buy's block; the node's timer may have cut an empty one since)
        acked = [block for block in blocks if block["acks"] >= 1]
        assert acked
        assert all(block["transactions"] >= block["acks"] for block in acked)
        assert all(block["ack_latency_ms"] is not None for block in acked)
        risk = await venue.call("public/get_liquidations", {}, "public")
        assert risk["queue"] == []
        assert risk["insurance_fund"] == 0
        oracle = await venue.call("public/get_oracle", {"currency": "btc"}, "public")
        assert oracle["index_price"] == 100_000
        assert oracle["sources"][0]["fresh"] is True
        assert oracle["sources"][0]["deviation_bps"] == 0
        chain = await venue.call("public/get_options_chain", {"currency": "BTC"}, "public")
        (expiry,) = chain["expiries"]
        (row,) = expiry["strikes"]
        assert row["call"]["instrument_name"] == OPTION.name
        assert row["put"] is None
        assert row["call"]["mark_iv"] == pytest.approx(60.0)
        assert 0 < row["call"]["greeks"]["delta"] < 1
        assert len(expiry["smile"]) > 10
        settlement = await venue.call("public/get_settlement", {}, "public")
        assert settlement["enabled"] is False
        assert settlement["batches"] == []
        history = await venue.call("public/get_price_history", {"instrument_name": PERP}, "public")
        assert history["marks"]
        assert history["marks"][-1][1] > 0
        account = await venue.call("private/get_account_risk", {})
        (ledger,) = account["ledgers"]
        assert ledger["currency"] == "BTC"
        assert ledger["equity"] == 100_000
        assert ledger["open_orders_margin"] > 0
        assert ledger["distance_to_liquidation"] == 1.0

    run(tmp_path, body)


@pytest.mark.parametrize(
    ("name", "params", "code", "param"),
    [
        ("public/get_block_stats", {"count": 0}, errors.INVALID_PARAMS, "count"),
        ("public/get_block_stats", {"count": 10**9}, errors.INVALID_PARAMS, "count"),
        ("public/get_block_stats", {"count": "5"}, errors.INVALID_PARAMS, "count"),
        ("public/get_liquidations", {"count": -1}, errors.INVALID_PARAMS, "count"),
        ("public/get_settlement", {"count": 101}, errors.INVALID_PARAMS, "count"),
        ("public/get_oracle", {}, errors.INVALID_PARAMS, None),
        ("public/get_oracle", {"currency": "DOGE"}, errors.INVALID_PARAMS, "currency"),
        ("public/get_options_chain", {"currency": "x" * 5_000}, errors.INVALID_PARAMS, "currency"),
        ("public/get_venue_status", {"verbose": True}, errors.INVALID_PARAMS, "verbose"),
        (
            "public/get_price_history",
            {"instrument_name": "NOPE"},
            errors.INSTRUMENT_NOT_FOUND,
            None,
        ),
        ("private/get_account_risk", {"currency": "DOGE"}, errors.INVALID_PARAMS, "currency"),
    ],
)
def test_bad_input_to_the_venue_methods_is_refused_with_its_code(
    tmp_path: Path, name: str, params: dict[str, Any], code: int, param: str | None
) -> None:
    async def body(venue: Venue) -> None:
        error = await venue.refused(name, params)
        assert error.code == code
        if param is not None:
            assert param_of(error) == param

    run(tmp_path, body)


def test_the_account_risk_needs_a_key(tmp_path: Path) -> None:
    async def body(venue: Venue) -> None:
        error = await venue.refused("private/get_account_risk", {}, "public")
        assert error.code == errors.UNAUTHORIZED

    run(tmp_path, body)


def test_venue_channel_names_are_parsed_or_refused() -> None:
    instruments = {OPTION.name: OPTION}
    limits = ApiLimits()
    channel = parse_channel("venue.oracle.btc", instruments, limits)
    assert (channel.kind, channel.topic, channel.currency) == (ChannelKind.VENUE, "oracle", "BTC")
    assert parse_channel("venue.status", instruments, limits).topic == "status"
    for bad in ("venue", "venue.nope", "venue.status.BTC", "venue.options", "venue.oracle.ETH"):
        with pytest.raises(errors.ApiError) as caught:
            parse_channel(bad, instruments, limits)
        assert caught.value.code == errors.INVALID_PARAMS
