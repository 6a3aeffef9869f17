"""The acceptance check of the Deribit-compatible API: ccxt 4.5's ``deribit`` class, unmodified
(only its URLs point at the node), trading on a live node over real sockets, and its WebSocket
client (``ccxt.pro.deribit``) authenticating and watching.

The node and its app run under uvicorn on their own thread and event loop (:class:`Venue`), with
a reporter publishing the BTC index every half second (the oracle goes stale after 10 s without
one); ccxt's synchronous REST client is driven from the test's thread and ``ccxt.pro`` from an
event loop of its own there."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
import uvicorn

from strikechain.engine.oracle import OracleReport, sign_report
from strikechain.engine.txs import Deposit
from strikechain.node.api.transport import Api
from strikechain.node.http import build_app
from strikechain.node.keys import KeyStore, Scope
from strikechain.node.server import server_config
from strikechain.node.service import OPERATOR_ACCOUNT, Node
from tests.node.api.test_transport import CHEAP, free_port
from tests.node.test_service import KEY, PERP, REPORTER, USDC, config

ccxt = pytest.importorskip("ccxt")
ccxt_pro = pytest.importorskip("ccxt.pro")

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
SYMBOL = "BTC/USDC:USDC"
INDEX_USDC = 100_000
DEPOSIT_USDC = 100_000
REPORT_INTERVAL_S = 0.5
T = TypeVar("T")


class Venue:
    """A node (settlement off, 10 ms blocks) and its API under uvicorn on 127.0.0.1, served from
    a thread with its own event loop; two funded accounts with API keys."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.credentials: dict[str, tuple[str, str]] = {}
        self.base = ""
        self.ws = ""
        self.api: Api | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="venue", daemon=True)

    def __enter__(self) -> Venue:
        self._thread.start()
        self._ready.wait(20)
        if self._failure is not None or self._loop is None:
            raise RuntimeError("the venue did not start") from self._failure
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
        if self._failure is not None:
            raise RuntimeError("the venue failed") from self._failure

    def call(self, work: Callable[[], T]) -> T:
        """``work()`` on the venue's loop (between two blocks), from the test's thread."""
        assert self._loop is not None

        async def run() -> T:
            return work()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def subscribed(self, channel: str) -> bool:
        """Whether a WebSocket session is subscribed to ``channel``."""
        assert self.api is not None
        hub = self.api.hub
        return self.call(lambda: any(channel in s.subscriptions for s in hub.sessions.values()))

    def client(self, account: str, secret: str | None = None, *, pro: bool = False) -> Any:
        api_key, real_secret = self.credentials[account]
        options = {
            "apiKey": api_key,
            "secret": real_secret if secret is None else secret,
            "urls": {"api": {"rest": self.base, "ws": self.ws}},
        }
        return ccxt_pro.deribit(options) if pro else ccxt.deribit(options)

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as failure:  # reported to the test's thread
            self._failure = failure
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        cfg = config(self.tmp_path, block_interval_ms=10.0)
        cfg = msgspec.structs.replace(
            cfg, settlement=msgspec.structs.replace(cfg.settlement, enabled=False)
        )
        node = Node(cfg)
        await node.start()
        keys = KeyStore(self.tmp_path / "keys.sqlite", kdf=CHEAP)
        try:
            await self._fund(node, keys)
            await self._listen(node, keys)
        finally:
            await node.stop()
            keys.close()

    async def _fund(self, node: Node, keys: KeyStore) -> None:
        await node.submit(_report(node))
        for account in (ALICE, BOB):
            await node.submit(
                Deposit(
                    account=OPERATOR_ACCOUNT,
                    deposit_id=node.engine.next_deposit_id,
                    beneficiary=account,
                    underlying="BTC",
                    amount=DEPOSIT_USDC * USDC,
                )
            )
            self.credentials[account] = keys.create(account, (Scope.READ, Scope.TRADE))

    async def _listen(self, node: Node, keys: KeyStore) -> None:
        assert self._stop is not None
        port = free_port()
        app = build_app(node, None, keys)
        self.api = app.state.api
        server = uvicorn.Server(server_config(app, "127.0.0.1", port))
        serving = asyncio.create_task(server.serve())
        reporting = asyncio.create_task(_report_forever(node))
        while not server.started:
            await asyncio.sleep(0.01)
        self.base = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/ws/api/v2"
        self._ready.set()
        await self._stop.wait()
        reporting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporting
        server.should_exit = True
        await serving


def _report(node: Node) -> Any:
    report = OracleReport(
        account=REPORTER,
        underlying="BTC",
        timestamp_ns=node.clock(),
        price=INDEX_USDC * USDC,
        confidence=USDC,
    )
    return sign_report(report, KEY)


async def _report_forever(node: Node) -> None:
    while True:
        await asyncio.sleep(REPORT_INTERVAL_S)
        node.submit_nowait(_report(node))


def test_ccxt_deribit_trades_on_the_node_over_rest_and_websocket(tmp_path: Path) -> None:
    with Venue(tmp_path) as venue:
        alice, bob = venue.client(ALICE), venue.client(BOB)
        _market_data(alice)
        _orders_and_fills(alice, bob)
        wrong = venue.client(ALICE, "not-the-secret")
        with pytest.raises(ccxt.AuthenticationError):
            wrong.fetch_balance()
        asyncio.run(_websocket(venue, alice, bob))


def _market_data(alice: Any) -> None:
    markets = alice.load_markets()
    market = markets[SYMBOL]
    assert (market["id"], market["type"], market["linear"]) == (PERP, "swap", True)
    assert (market["base"], market["quote"], market["settle"]) == ("BTC", "USDC", "USDC")
    assert market["precision"]["price"] == 0.5
    assert market["limits"]["amount"]["min"] == 0.001
    ticker = alice.fetch_ticker(SYMBOL)
    assert ticker["symbol"] == SYMBOL
    assert ticker["indexPrice"] == INDEX_USDC
    assert ticker["markPrice"] > 0
    tickers = alice.fetch_tickers([SYMBOL])
    assert list(tickers) == [SYMBOL]
    assert tickers[SYMBOL]["info"]["instrument_name"] == PERP
    book = alice.fetch_order_book(SYMBOL)
    assert (book["symbol"], book["bids"], book["asks"]) == (SYMBOL, [], [])
    assert book["nonce"] > 0
    balance = alice.fetch_balance()
    assert balance["USDC"]["total"] == DEPOSIT_USDC
    assert balance["USDC"]["free"] == DEPOSIT_USDC


def _orders_and_fills(alice: Any, bob: Any) -> None:
    order = alice.create_order(SYMBOL, "limit", "buy", 0.01, 99_000)
    assert (order["status"], order["side"], order["price"], order["amount"]) == (
        "open",
        "buy",
        99_000,
        0.01,
    )
    assert [o["id"] for o in alice.fetch_open_orders(SYMBOL)] == [order["id"]]
    assert alice.fetch_order_book(SYMBOL)["bids"] == [[99_000, 0.01]]
    cancelled = alice.cancel_order(order["id"], SYMBOL)
    assert (cancelled["id"], cancelled["status"]) == (order["id"], "canceled")
    assert alice.fetch_open_orders(SYMBOL) == []

    ask = bob.create_order(SYMBOL, "limit", "sell", 0.01, 100_500, {"postOnly": True})
    assert (ask["status"], ask["postOnly"]) == ("open", True)
    with pytest.raises(ccxt.InvalidOrder, match="post_only_reject"):  # 11054
        alice.create_order(SYMBOL, "limit", "buy", 0.01, 100_500, {"postOnly": True})
    taken = alice.create_order(SYMBOL, "limit", "buy", 0.01, 100_500, {"timeInForce": "IOC"})
    assert (taken["status"], taken["filled"], taken["average"]) == ("closed", 0.01, 100_500)
    assert taken["timeInForce"] == "IOC"
    missed = alice.create_order(SYMBOL, "limit", "buy", 0.01, 100_000, {"timeInForce": "IOC"})
    assert (missed["status"], missed["filled"]) == ("canceled", 0)

    mine = alice.fetch_my_trades(SYMBOL)
    assert [(t["side"], t["price"], t["amount"], t["takerOrMaker"]) for t in mine] == [
        ("buy", 100_500, 0.01, "taker")
    ]
    assert mine[0]["order"] == taken["id"]
    theirs = bob.fetch_my_trades(SYMBOL)
    assert [(t["side"], t["takerOrMaker"], t["id"]) for t in theirs] == [
        ("sell", "maker", mine[0]["id"])
    ]
    positions = alice.fetch_positions([SYMBOL])
    assert [(p["symbol"], p["side"], p["contracts"]) for p in positions] == [(SYMBOL, "long", 0.01)]

    closing = alice.create_order(SYMBOL, "limit", "sell", 0.01, 101_000, {"reduceOnly": True})
    assert (closing["status"], closing["info"]["reduce_only"]) == ("open", True)
    bob.create_order(SYMBOL, "limit", "buy", 0.01, 101_000, {"timeInForce": "IOC"})
    assert alice.fetch_positions([SYMBOL]) == []
    assert alice.fetch_open_orders(SYMBOL) == []


async def _websocket(venue: Venue, alice: Any, bob: Any) -> None:
    watcher = venue.client(ALICE, pro=True)
    try:
        auth = await watcher.authenticate()
        assert auth["result"]["scope"].startswith("connection ")
        ticker = await asyncio.wait_for(watcher.watch_ticker(SYMBOL), 10)
        assert (ticker["symbol"], ticker["indexPrice"]) == (SYMBOL, INDEX_USDC)
        book = await asyncio.wait_for(watcher.watch_order_book(SYMBOL), 10)
        assert book["bids"] == []
        update = asyncio.ensure_future(watcher.watch_order_book(SYMBOL))
        placed = await asyncio.to_thread(bob.create_order, SYMBOL, "limit", "buy", 0.02, 98_000)
        book = await asyncio.wait_for(update, 10)
        assert [level[:2] for level in book["bids"]] == [[98_000, 0.02]]

        orders = asyncio.ensure_future(watcher.watch_orders(SYMBOL))
        while not await asyncio.to_thread(venue.subscribed, "user.orders.any.any.raw"):
            await asyncio.sleep(0.01)
        rest = await asyncio.to_thread(alice.create_order, SYMBOL, "limit", "buy", 0.01, 97_000)
        seen = await asyncio.wait_for(orders, 10)
        state = await asyncio.to_thread(alice.fetch_order, rest["id"], SYMBOL)
        assert [order["info"] for order in seen] == [state["info"]]  # get_order_state's shape
        assert (seen[0]["status"], seen[0]["timestamp"]) == ("open", rest["timestamp"])
        await asyncio.to_thread(bob.cancel_order, placed["id"], SYMBOL)
    finally:
        await watcher.close()
