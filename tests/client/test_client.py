"""The client against a live node over real sockets: public data, orders with an API key,
a signed order with an account key, positions and summaries, subscriptions, typed errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from strikechain.client import Client, ClientError
from tests.client.live import OTHER, OTHER_KEY, PERP, TRADER, Live, live_node


async def _wait(predicate: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def test_client_trades_queries_and_subscribes(tmp_path: Path) -> None:
    with live_node(tmp_path) as live:
        asyncio.run(_session(live))


async def _session(live: Live) -> None:
    seen: list[tuple[str, Any]] = []
    async with (
        Client(live.base, live.api_key, live.secret) as trader,
        Client(live.base, private_key=OTHER_KEY) as other,
    ):
        instruments = await trader.get_instruments()
        assert [i["instrument_name"] for i in instruments] == [PERP]
        assert (await trader.ticker(PERP))["instrument_name"] == PERP
        book = await trader.order_book(PERP, depth=5)
        assert (book["bids"], book["asks"]) == ([], [])
        subscription = await trader.subscribe(
            [f"user.orders.{PERP}.raw", f"book.{PERP}.100ms"],
            lambda channel, data: seen.append((channel, data)),
        )
        assert subscription.channels == [f"user.orders.{PERP}.raw", f"book.{PERP}.100ms"]
        # a resting bid, listed, cancelled
        placed = await trader.buy(PERP, "0.002", 90_000, post_only=True)
        order_id = placed["order"]["order_id"]
        assert placed["order"]["order_state"] == "open"
        assert [o["order_id"] for o in await trader.open_orders()] == [order_id]
        assert [o["order_id"] for o in await trader.open_orders(PERP)] == [order_id]
        await _wait(lambda: any(c.startswith("user.orders") for c, _ in seen))
        cancelled = await trader.cancel(order_id)
        assert cancelled["order_state"] == "cancelled"
        assert await trader.open_orders() == []
        # a bid the signed sell of another account fills: both hold positions
        await trader.buy(PERP, 0.002, 100_000)
        signed = await other.submit_signed_order(PERP, "sell", "0.002", "100000")
        assert signed["order"]["order_state"] == "filled"
        assert other.account == OTHER
        positions = await trader.positions()
        assert [(p["instrument_name"], p["size"]) for p in positions] == [(PERP, 0.002)]
        summary = await trader.account_summary()
        assert summary["currency"] == "USDC"
        assert summary["equity"] > 0
        assert live.node.engine.get_ledger(TRADER, "BTC") is not None
        await _wait(lambda: sum(c.startswith("book.") for c, _ in seen) >= 2)
        await subscription.close()


def test_client_errors_are_typed(tmp_path: Path) -> None:
    with live_node(tmp_path) as live:
        asyncio.run(_errors(live))


async def _errors(live: Live) -> None:
    async with (
        Client(live.base) as anonymous,
        Client(live.base, live.api_key, "wrong-secret") as wrong,
        Client(live.base, live.api_key, live.secret) as trader,
        Client(live.base, private_key=OTHER_KEY) as other,
    ):
        with pytest.raises(ClientError) as caught:
            await anonymous.positions()
        assert caught.value.code == 13009
        with pytest.raises(ClientError) as caught:
            await wrong.positions()
        assert caught.value.code == 13009
        with pytest.raises(ClientError) as caught:
            await trader.ticker("NOPE-PERPETUAL")
        assert caught.value.code == 10001
        with pytest.raises(ClientError) as caught:
            await trader.buy(PERP, "0.002", "90000.3")
        assert caught.value.code == 10043  # price_wrong_tick
        with pytest.raises(ClientError) as caught:
            await other.submit_signed_order(PERP, "buy", "0.0015", 90_000)  # off the lot grid
        assert (caught.value.code, caught.value.data["param"]) == (-32602, "amount")
        await other.submit_signed_order(PERP, "buy", "0.002", 90_000, nonce=5)
        with pytest.raises(ClientError) as caught:
            await other.submit_signed_order(PERP, "buy", "0.002", 90_000, nonce=5)
        assert caught.value.code == 13010
        assert caught.value.data["code"] == "NONCE_REPLAYED"
        with pytest.raises(ClientError) as caught:
            await trader.submit_signed_order(PERP, "buy", "0.002", 90_000)
        assert caught.value.data["param"] == "private_key"
        with pytest.raises(ClientError) as caught:
            async with Client("http://127.0.0.1:9") as nowhere:
                await nowhere.ticker(PERP)
        assert caught.value.code == -32000
