"""The API's transport over real sockets: a node and its app under uvicorn on 127.0.0.1, called
with aiohttp (HTTP, WebSocket) and websockets (a consumer that stops reading). Methods of the
registry are stand-ins registered here (``public/test_echo``, ``private/test_whoami``,
``private/test_buy``), so these tests do not depend on the venue's methods."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import uvicorn

from strikechain.engine.events import OrderAccepted
from strikechain.engine.oracle import OracleReport, sign_report
from strikechain.engine.txs import Deposit, PlaceOrder
from strikechain.node.api import errors
from strikechain.node.api.errors import INTERNAL_ERROR
from strikechain.node.api.limits import ApiLimits, RateLimiter
from strikechain.node.api.registry import METHODS, Context, method
from strikechain.node.api.transport import REQUESTS_IN_FLIGHT, Api
from strikechain.node.http import build_app
from strikechain.node.keys import KeyStore, Scope, ScryptParams
from strikechain.node.server import server_config
from strikechain.node.service import OPERATOR_ACCOUNT, Node
from tests.node.test_service import KEY, PERP, REPORTER, USDC, config

CHEAP = ScryptParams(n=16, r=1, p=1)
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20


class EchoParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    count: int = 0
    text: str = ""


class NoParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class BuyParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    price_ticks: int
    size_lots: int = 1


async def _echo(context: Context, params: EchoParams) -> Any:
    return {"count": params.count, "text": params.text}


async def _whoami(context: Context, params: NoParams) -> Any:
    assert context.key is not None
    return {"account": context.require_account(), "scopes": list(context.key.scopes)}


async def _buy(context: Context, params: BuyParams) -> Any:
    order = PlaceOrder(
        account=context.require_account(),
        instrument=PERP,
        side=1,
        size_lots=params.size_lots,
        price_ticks=params.price_ticks,
    )
    ack = await context.node.submit(order)
    accepted = [e for e in ack.events if isinstance(e, OrderAccepted)]
    return {"order_id": accepted[0].order_id if accepted else None}


for _name, _params, _handler, _scope in (
    ("public/test_echo", EchoParams, _echo, None),
    ("private/test_whoami", NoParams, _whoami, Scope.READ),
    ("private/test_buy", BuyParams, _buy, Scope.TRADE),
):
    if _name not in METHODS:
        method(_name, _params, _scope)(_handler)  # type: ignore[arg-type]


@dataclass
class Served:
    node: Node
    keys: KeyStore
    api: Api
    base: str
    ws: str
    api_key: str
    secret: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, limits: ApiLimits | None = None) -> AsyncIterator[Served]:
    cfg = config(tmp_path)
    cfg = msgspec.structs.replace(
        cfg, settlement=msgspec.structs.replace(cfg.settlement, enabled=False)
    )
    node = Node(cfg)
    await node.start()
    keys = KeyStore(tmp_path / "keys.sqlite", kdf=CHEAP)
    api_key, secret = keys.create(ALICE, (Scope.READ, Scope.TRADE))
    app = build_app(node, None, keys, limits)
    port = free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    try:
        yield Served(
            node, keys, app.state.api, base, f"ws://127.0.0.1:{port}/ws/api/v2", api_key, secret
        )
    finally:
        server.should_exit = True
        await task
        await node.stop()
        keys.close()


def signed(api_key: str, secret: str, uri: str, method: str = "GET", body: str = "") -> str:
    """The Authorization header Deribit (and ccxt) send for a private REST call."""
    ts = time.time_ns() // 1_000_000
    nonce = secrets.token_hex(8)
    data = f"{method}\n{uri}\n{body}\n"
    sig = hmac.new(secret.encode(), f"{ts}\n{nonce}\n{data}".encode(), hashlib.sha256).hexdigest()
    return f"deri-hmac-sha256 id={api_key},ts={ts},sig={sig},nonce={nonce}"


def client_signature(api_key: str, secret: str, data: str = "") -> dict[str, Any]:
    ts = time.time_ns() // 1_000_000
    nonce = secrets.token_hex(8)
    message = f"{ts}\n{nonce}\n{data}".encode()
    sig = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {
        "grant_type": "client_signature",
        "client_id": api_key,
        "timestamp": ts,
        "nonce": nonce,
        "data": data,
        "signature": sig,
    }


async def get(http: aiohttp.ClientSession, url: str, **headers: str) -> Any:
    async with http.get(url, headers=headers) as response:
        assert response.status == 200
        return json.loads(await response.text())


async def post(http: aiohttp.ClientSession, url: str, body: bytes, **headers: str) -> Any:
    async with http.post(url, data=body, headers=headers) as response:
        assert response.status == 200
        return json.loads(await response.text())


class Ws:
    """A JSON-RPC WebSocket client: requests by id, notifications kept apart."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.ids = iter(range(1, 1_000_000))
        self.notifications: list[dict[str, Any]] = []

    async def call(self, name: str, params: dict[str, Any] | None = None) -> Any:
        request_id = next(self.ids)
        await self.socket.send_str(
            json.dumps({"jsonrpc": "2.0", "id": request_id, "method": name, "params": params or {}})
        )
        return await self.reply(request_id)

    async def reply(self, request_id: int | None) -> Any:
        while True:
            message = await self.next()
            if message.get("method") == "subscription":
                self.notifications.append(message["params"])
            elif message.get("id") == request_id:
                return message

    async def next(self) -> Any:
        received = await asyncio.wait_for(self.socket.receive(), 10)
        assert received.type == aiohttp.WSMsgType.TEXT, received
        return json.loads(received.data)

    async def notification(self, channel: str, seconds: float = 10.0) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            for index, found in enumerate(self.notifications):
                if found["channel"] == channel:
                    return self.notifications.pop(index)["data"]
            assert time.monotonic() < deadline, f"no notification on {channel}"
            message = await self.next()
            if message.get("method") == "subscription":
                self.notifications.append(message["params"])


@contextlib.asynccontextmanager
async def connected(
    tmp_path: Path, *, authenticate: bool = True
) -> AsyncIterator[tuple[Served, aiohttp.ClientWebSocketResponse, Ws]]:
    """A served node, ALICE funded, and a WebSocket (authenticated as her)."""
    async with (
        serving(tmp_path) as served,
        aiohttp.ClientSession() as http,
        http.ws_connect(served.ws) as socket,
    ):
        await fund(served.node, ALICE)
        ws = Ws(socket)
        if authenticate:
            await ws.call("public/auth", client_signature(served.api_key, served.secret))
        yield served, socket, ws


async def send_buys(socket: aiohttp.ClientWebSocketResponse, ids: list[int]) -> None:
    """``private/test_buy`` requests with ``ids``, one tick apart, without waiting for answers."""
    for number, request_id in enumerate(ids):
        request = {"jsonrpc": "2.0", "id": request_id, "method": "private/test_buy"}
        await socket.send_str(json.dumps({**request, "params": {"price_ticks": 90_000 + number}}))


async def send_held_buys(
    node: Node, socket: aiohttp.ClientWebSocketResponse, ids: list[int]
) -> None:
    """Hold the node's blocks (``del node.cut_block`` lets them go again), send buys with
    ``ids`` and wait until all are in its inbox."""
    node.cut_block = lambda: None  # type: ignore[method-assign]
    await send_buys(socket, ids)
    for _ in range(500):
        if len(node.runtime.inbox) == len(ids):
            break
        await asyncio.sleep(0.01)
    assert len(node.runtime.inbox) == len(ids)


@contextlib.asynccontextmanager
async def two_endpoints(tmp_path: Path) -> AsyncIterator[tuple[Served, Any, Any]]:
    """A served node (ALICE funded) with blocks held (``del node.cut_block`` lets them go)
    and the endpoints of two of her authenticated WebSockets, to drive them by hand
    (``endpoint.received(message)`` as if read)."""
    async with (
        connected(tmp_path) as (served, _, _),
        aiohttp.ClientSession() as http,
        http.ws_connect(served.ws) as other,
    ):
        await Ws(other).call("public/auth", client_signature(served.api_key, served.secret))
        served.node.cut_block = lambda: None  # type: ignore[method-assign]  # blocks held
        first, second = (s.socket.endpoint for s in served.api.hub.sessions.values())
        yield served, first, second


def buy_message(request_id: int, price_ticks: int) -> bytes:
    """A ``private/test_buy`` message, as a connection reads it."""
    params = {"price_ticks": price_ticks}
    request = {"jsonrpc": "2.0", "id": request_id, "method": "private/test_buy"}
    return json.dumps({**request, "params": params}).encode()


async def fund(node: Node, account: str) -> None:
    """Credit ``account`` and give BTC an index (orders need one)."""
    report = OracleReport(
        account=REPORTER,
        underlying="BTC",
        timestamp_ns=node.clock(),
        price=100_000 * USDC,
        confidence=USDC,
    )
    await node.submit(sign_report(report, KEY))
    await node.submit(
        Deposit(
            account=OPERATOR_ACCOUNT,
            deposit_id=node.engine.next_deposit_id,
            beneficiary=account,
            underlying="BTC",
            amount=10_000 * USDC,
        )
    )


# -- HTTP ------------------------------------------------------------------------------------------


def test_http_get_and_post_answer_in_deribits_envelope(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as served, aiohttp.ClientSession() as http:
            url = f"{served.base}/api/v2/public/test_echo"
            reply = await get(http, f"{url}?count=5&text=hi")
            assert reply["result"] == {"count": 5, "text": "hi"}
            assert reply["jsonrpc"] == "2.0"
            assert reply["testnet"] is True
            assert reply["usOut"] - reply["usIn"] == reply["usDiff"] >= 0
            body = {"jsonrpc": "2.0", "id": 7, "method": "public/test_echo", "params": {"count": 2}}
            reply = await post(http, url, json.dumps(body).encode())
            assert (reply["id"], reply["result"]["count"]) == (7, 2)
            reply = await post(http, url, b'{"count": 3}')
            assert reply["result"]["count"] == 3
            reply = await post(http, url, b'{"count": "3"}')  # JSON bodies are typed
            assert reply["error"]["code"] == errors.INVALID_PARAMS
            wrong = {"jsonrpc": "2.0", "id": 1, "method": "public/other", "params": {}}
            reply = await post(http, url, json.dumps(wrong).encode())
            assert reply["error"]["code"] == errors.INVALID_REQUEST
            reply = await get(http, f"{served.base}/api/v2/public/nope")
            assert reply["error"]["code"] == errors.METHOD_NOT_FOUND
            reply = await get(http, f"{served.base}/api/v2/private/test_whoami")
            assert reply["error"]["code"] == errors.UNAUTHORIZED
            reply = await get(http, f"{served.base}/api/v2/public/subscribe?channels=x")
            assert reply["error"]["code"] == 10030  # must_be_websocket_request

    asyncio.run(main())


def test_http_refuses_malformed_oversized_nan_and_batch_requests(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as served, aiohttp.ClientSession() as http:
            url = f"{served.base}/api/v2/public/test_echo"
            cases = {
                b"{": errors.PARSE_ERROR,
                b'{"count": NaN}': errors.PARSE_ERROR,
                b'{"count": Infinity}': errors.PARSE_ERROR,
                b"[1, 2]": errors.INVALID_REQUEST,
                b'[{"jsonrpc": "2.0", "id": 1, "method": "public/test_echo"}]': (
                    errors.INVALID_REQUEST
                ),
                b'"text"': errors.INVALID_REQUEST,
                b'{"text": "' + b"x" * 40_000 + b'"}': errors.MESSAGE_TOO_LARGE,
            }
            for body, code in cases.items():
                reply = await post(http, url, body)
                assert reply["error"]["code"] == code, (body[:40], reply)
            reply = await get(http, f"{url}?text={'x' * 33_000}")
            assert reply["error"]["code"] == errors.MESSAGE_TOO_LARGE

    asyncio.run(main())


def test_signed_private_get_is_accepted_and_a_wrong_secret_is_not(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as served, aiohttp.ClientSession() as http:
            uri = "/api/v2/private/test_whoami"
            header = signed(served.api_key, served.secret, uri)
            reply = await get(http, served.base + uri, Authorization=header)
            assert reply["result"] == {"account": ALICE, "scopes": ["read", "trade"]}
            replayed = await get(http, served.base + uri, Authorization=header)
            assert replayed["error"]["code"] == errors.UNAUTHORIZED
            assert "NONCE_REPLAYED" in replayed["error"]["data"]["reason"]
            wrong = signed(served.api_key, "not-the-secret", uri)
            reply = await get(http, served.base + uri, Authorization=wrong)
            assert reply["error"]["code"] == errors.UNAUTHORIZED
            query = "/api/v2/private/test_whoami?x=1"
            other = signed(served.api_key, served.secret, uri)  # signed without the query
            reply = await get(http, served.base + query, Authorization=other)
            assert reply["error"]["code"] == errors.UNAUTHORIZED
            body = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "private/test_whoami"})
            posted = signed(served.api_key, served.secret, uri, "POST", body)
            reply = await post(http, served.base + uri, body.encode(), Authorization=posted)
            assert reply["result"]["account"] == ALICE

    asyncio.run(main())


def test_ccxt_signs_requests_the_node_accepts_and_raises_on_its_errors(tmp_path: Path) -> None:
    ccxt = pytest.importorskip("ccxt")

    async def main() -> None:
        async with serving(tmp_path) as served, aiohttp.ClientSession() as http:
            client = ccxt.deribit(
                {
                    "apiKey": served.api_key,
                    "secret": served.secret,
                    "urls": {"api": {"rest": served.base}},
                }
            )
            request = client.sign("test_echo", ["private"], "GET", {"count": 4})
            assert request["url"] == f"{served.base}/api/v2/private/test_echo?count=4"
            METHODS.setdefault("private/test_echo", METHODS["public/test_echo"])
            reply = await get(http, request["url"], **request["headers"])
            assert reply["result"]["count"] == 4
            client.secret = "wrong"
            request = client.sign("test_whoami", ["private"], "GET", {})
            text = json.dumps(await get(http, request["url"], **request["headers"]))
            with pytest.raises(ccxt.AuthenticationError):
                client.handle_errors(
                    200, "", request["url"], "GET", {}, text, json.loads(text), {}, None
                )
            bad = {"client_id": served.api_key, "client_secret": "wrong"}
            url = f"{served.base}/api/v2/public/auth?grant_type=client_credentials"
            text = json.dumps(
                await get(http, url + "&" + "&".join(f"{k}={v}" for k, v in bad.items()))
            )
            assert json.loads(text)["error"]["code"] == errors.INVALID_CREDENTIALS
            with pytest.raises(ccxt.AuthenticationError):
                client.handle_errors(200, "", url, "GET", {}, text, json.loads(text), {}, None)

    asyncio.run(main())


def test_public_auth_grants_tokens_that_authenticate_and_refresh(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as served, aiohttp.ClientSession() as http:
            base = f"{served.base}/api/v2"
            query = f"grant_type=client_credentials&client_id={served.api_key}"
            granted = await get(http, f"{base}/public/auth?{query}&client_secret={served.secret}")
            result = granted["result"]
            assert result["token_type"] == "bearer"
            assert result["expires_in"] == 900
            assert result["scope"] == "account:read trade:read_write wallet:read"
            bearer = {"Authorization": f"bearer {result['access_token']}"}
            reply = await get(http, f"{base}/private/test_whoami", **bearer)
            assert reply["result"]["account"] == ALICE
            # A token asked for with less scope carries less.
            narrow = await get(
                http,
                f"{base}/public/auth?{query}&client_secret={served.secret}&scope=trade:read",
            )
            token = narrow["result"]["access_token"]
            reply = await get(http, f"{base}/private/test_whoami?access_token={token}")
            assert reply["result"]["scopes"] == ["read"]
            reply = await get(
                http, f"{base}/private/test_buy?price_ticks=1", Authorization=f"bearer {token}"
            )
            assert reply["error"]["code"] == errors.FORBIDDEN
            wrong = await get(http, f"{base}/public/auth?{query}&client_secret=nope")
            assert wrong["error"]["code"] == errors.INVALID_CREDENTIALS
            # client_signature, then refresh_token (used once).
            signature = client_signature(served.api_key, served.secret, "some data")
            body = json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "public/auth", "params": signature}
            )
            signed_in = await post(http, f"{base}/public/auth", body.encode())
            refresh = signed_in["result"]["refresh_token"]
            again = await get(
                http, f"{base}/public/auth?grant_type=refresh_token&refresh_token={refresh}"
            )
            assert again["result"]["access_token"] != signed_in["result"]["access_token"]
            bearer = {"Authorization": f"bearer {again['result']['access_token']}"}
            assert (await get(http, f"{base}/private/test_whoami", **bearer))["result"]
            reused = await get(
                http, f"{base}/public/auth?grant_type=refresh_token&refresh_token={refresh}"
            )
            assert reused["error"]["code"] == errors.INVALID_CREDENTIALS
            replay = await post(http, f"{base}/public/auth", body.encode())
            assert replay["error"]["code"] == errors.INVALID_CREDENTIALS
            bogus = await get(http, f"{base}/private/test_whoami", Authorization="bearer nope")
            assert bogus["error"]["code"] == errors.UNAUTHORIZED

    asyncio.run(main())


def test_rate_limits_refuse_with_too_many_requests(tmp_path: Path) -> None:
    limits = ApiLimits(ip_rate_per_s=1, ip_burst=3, key_rate_per_s=1, key_burst=2)

    async def main() -> None:
        async with serving(tmp_path, limits) as served, aiohttp.ClientSession() as http:
            url = f"{served.base}/api/v2/public/test_echo"
            codes = [(await get(http, url)).get("error", {}).get("code") for _ in range(5)]
            assert codes[:3] == [None, None, None]
            assert codes[3:] == [errors.TOO_MANY_REQUESTS] * 2
            uri = "/api/v2/private/test_whoami"
            for expected in (None, None, errors.TOO_MANY_REQUESTS):
                header = signed(served.api_key, served.secret, uri)
                reply = await get(http, served.base + uri, Authorization=header)
                assert reply.get("error", {}).get("code") == expected
            assert "strikechain_api_rate_limited_total 3.0" in (
                await (await http.get(f"{served.base}/metrics")).text()
            )

    asyncio.run(main())


def test_rate_limiter_refills_and_stays_bounded() -> None:
    now = [0]
    limiter = RateLimiter(rate_per_s=2, burst=2, buckets_max=2, clock_ns=lambda: now[0])
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    now[0] += 500_000_000
    assert limiter.allow("a")
    assert not limiter.allow("a")
    assert limiter.allow("b")
    assert not limiter.allow("c")  # no room: a and b both owe
    now[0] += 2_000_000_000
    assert limiter.allow("c")
    assert len(limiter) <= 2


# -- WebSocket -------------------------------------------------------------------------------------


def test_websocket_auth_binds_the_session_and_refuses_bad_messages(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            serving(tmp_path) as served,
            aiohttp.ClientSession() as http,
            http.ws_connect(served.ws) as socket,
        ):
            ws = Ws(socket)
            reply = await ws.call("private/test_whoami")
            assert reply["error"]["code"] == errors.UNAUTHORIZED
            wrong = client_signature(served.api_key, "wrong")
            assert (await ws.call("public/auth", wrong))["error"][
                "code"
            ] == errors.INVALID_CREDENTIALS
            reply = await ws.call("public/auth", client_signature(served.api_key, served.secret))
            assert reply["result"]["scope"].startswith("connection ")
            assert reply["testnet"] is True
            assert "usDiff" in reply
            reply = await ws.call("private/test_whoami")
            assert reply["result"]["account"] == ALICE
            for raw, code in (
                ("{", errors.PARSE_ERROR),
                (
                    '{"jsonrpc": "2.0", "id": 1, "method": "public/test_echo", '
                    '"params": {"count": NaN}}',
                    errors.PARSE_ERROR,
                ),
                (
                    '[{"jsonrpc": "2.0", "id": 1, "method": "public/test_echo"}]',
                    errors.INVALID_REQUEST,
                ),
                ("42", errors.INVALID_REQUEST),
                ('{"jsonrpc": "2.0", "id": 1, "method": "public/nope"}', errors.METHOD_NOT_FOUND),
                (
                    '{"jsonrpc": "2.0", "id": 1, "params": {"text": "' + "x" * 40_000 + '"}}',
                    errors.MESSAGE_TOO_LARGE,
                ),
            ):
                await socket.send_str(raw)
                message = await ws.next()
                assert message["error"]["code"] == code, (raw[:60], message)
            assert (await ws.call("public/test_echo", {"count": 1}))["result"]["count"] == 1

    asyncio.run(main())


def test_subscriptions_deliver_book_ticker_trades_and_user_orders_after_blocks(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with connected(tmp_path, authenticate=False) as (served, _, ws):
            channels = [f"book.{PERP}.100ms", f"ticker.{PERP}.100ms", f"trades.{PERP}.100ms"]
            reply = await ws.call("public/subscribe", {"channels": channels})
            assert reply["result"] == channels
            snapshot = await ws.notification(channels[0])
            assert (snapshot["type"], snapshot["bids"], snapshot["asks"]) == ("snapshot", [], [])
            await ws.notification(channels[1])
            private = await ws.call("private/subscribe", {"channels": [f"user.orders.{PERP}.raw"]})
            assert private["error"]["code"] == errors.UNAUTHORIZED
            await ws.call("public/auth", client_signature(served.api_key, served.secret))
            mine = f"user.orders.{PERP}.raw"
            assert (await ws.call("private/subscribe", {"channels": [mine]}))["result"] == [mine]
            reply = await ws.call("private/test_buy", {"price_ticks": 100_000, "size_lots": 2})
            order_id = reply["result"]["order_id"]
            change = await ws.notification(channels[0])
            assert change["type"] == "change"
            assert change["prev_change_id"] == snapshot["change_id"]
            assert change["bids"] == [["new", 50_000, 0.002]]
            assert change["asks"] == []
            ticker = await ws.notification(channels[1])
            while ticker["best_bid_price"] is None:  # marks move on their own: wait for the bid
                ticker = await ws.notification(channels[1])
            assert (ticker["best_bid_price"], ticker["best_bid_amount"]) == (50_000, 0.002)
            order = await ws.notification(mine)
            assert (order["order_id"], order["order_state"]) == (str(order_id), "open")
            assert (order["direction"], order["price"], order["amount"]) == ("buy", 50_000, 0.002)
            unsubscribed = await ws.call("public/unsubscribe", {"channels": channels[:2]})
            assert unsubscribed["result"] == [channels[2], mine]
            bad = await ws.call("public/subscribe", {"channels": ["book.NOPE-PERPETUAL.100ms"]})
            assert bad["error"]["code"] == errors.INVALID_PARAMS

    asyncio.run(main())


def test_notifications_carry_what_the_methods_answer(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            serving(tmp_path) as served,
            aiohttp.ClientSession() as http,
            http.ws_connect(served.ws) as socket,
        ):
            await fund(served.node, ALICE)
            await fund(served.node, BOB)
            ws = Ws(socket)
            await ws.call("public/auth", client_signature(served.api_key, served.secret))
            ticker, trades, orders, fills, portfolio = channels = [
                f"ticker.{PERP}.100ms",
                f"trades.{PERP}.raw",
                f"user.orders.{PERP}.raw",
                "user.trades.future.BTC.raw",
                "user.portfolio.BTC",
            ]
            assert (await ws.call("private/subscribe", {"channels": channels}))[
                "result"
            ] == channels
            shown = await ws.notification(ticker)
            answered = (await ws.call("public/ticker", {"instrument_name": PERP}))["result"]
            assert shown.keys() == answered.keys()
            assert shown["stats"].keys() == answered["stats"].keys()
            summary = await ws.call("private/get_account_summary", {"currency": "BTC"})
            assert await ws.notification(portfolio) == summary["result"]
            ask = PlaceOrder(
                account=BOB, instrument=PERP, side=-1, size_lots=2, price_ticks=200_000
            )
            await served.node.submit(ask)
            bought = await ws.call(
                "private/buy", {"instrument_name": PERP, "amount": 0.002, "price": 100_000}
            )
            order_id = bought["result"]["order"]["order_id"]
            order = await ws.notification(orders)
            state = await ws.call("private/get_order_state", {"order_id": order_id})
            assert order == state["result"]
            assert order["order_state"] == "filled"
            mine = await ws.notification(fills)
            by_order = await ws.call("private/get_user_trades_by_order", {"order_id": order_id})
            assert mine == by_order["result"] == bought["result"]["trades"]
            public = await ws.notification(trades)
            assert [t["trade_id"] for t in public] == [t["trade_id"] for t in mine]
            assert (public[0]["trade_seq"], public[0]["direction"]) == (1, "buy")
            moved = await ws.notification(portfolio)
            assert moved.keys() == summary["result"].keys()

    asyncio.run(main())


def test_a_blocks_answers_leave_in_the_blocks_order_with_notifications_first(
    tmp_path: Path,
) -> None:
    """Replies are sent as each is built (not queued behind the whole block's): they must still
    leave in the block's order, and after the block's notifications already queued."""

    async def main() -> None:
        async with connected(tmp_path) as (_, socket, ws):
            for subscribed in (False, True):
                if subscribed:
                    channel = f"user.orders.{PERP}.raw"
                    await ws.call("private/subscribe", {"channels": [channel]})
                ids = list(range(1_000 * (1 + subscribed), 1_000 * (1 + subscribed) + 40))
                await send_buys(socket, ids)
                replies: list[dict[str, Any]] = []
                notified: set[int] = set()
                while len(replies) < len(ids):
                    message = await ws.next()
                    if message.get("method") == "subscription":
                        data = message["params"]["data"]  # raw: one order a notification
                        notified.add(int(data["order_id"]))
                        continue
                    replies.append(message)
                    if subscribed:  # the block's notification was queued before its replies
                        assert message["result"]["order_id"] in notified
                order_ids = [reply["result"]["order_id"] for reply in replies]
                assert order_ids == sorted(order_ids)
                by_id = {reply["id"]: reply["result"]["order_id"] for reply in replies}
                assert [by_id[request_id] for request_id in ids] == order_ids
                assert [reply["id"] for reply in replies] == ids

    asyncio.run(main())


def test_a_connection_has_at_most_its_requests_in_flight_and_the_rest_wait_in_order(
    tmp_path: Path,
) -> None:
    """With no block cut, a connection's first REQUESTS_IN_FLIGHT orders wait for their block,
    the later messages wait unread (the socket is not read meanwhile); once blocks come every
    one is answered, in the order sent."""

    async def main() -> None:
        async with connected(tmp_path) as (served, socket, ws):
            (session,) = served.api.hub.sessions.values()
            endpoint = session.socket.endpoint
            node = served.node
            node.cut_block = lambda: None  # type: ignore[method-assign]  # blocks held
            extra = 10
            ids = list(range(100, 100 + REQUESTS_IN_FLIGHT + extra))
            await send_buys(socket, ids)
            for _ in range(500):
                if len(endpoint.waiting) == extra:
                    break
                await asyncio.sleep(0.01)
            assert len(endpoint.in_flight) == REQUESTS_IN_FLIGHT
            assert len(endpoint.waiting) == extra
            assert len(node.runtime.inbox) == REQUESTS_IN_FLIGHT
            assert not session.socket.transport.is_reading()
            del node.cut_block  # blocks again
            replies = [await ws.next() for _ in ids]
            assert [reply["id"] for reply in replies] == ids
            assert all("result" in reply for reply in replies)
            assert not endpoint.in_flight
            assert not endpoint.waiting
            assert session.socket.transport.is_reading()

    asyncio.run(main())


def test_a_connections_answers_to_one_block_leave_with_one_write(tmp_path: Path) -> None:
    """A block resolves its orders all at once: the connection's answers are built together,
    in the order sent, and written with one call (one system call, not one per order)."""

    async def main() -> None:
        async with connected(tmp_path) as (served, socket, ws):
            (session,) = served.api.hub.sessions.values()
            protocol = session.socket
            node = served.node
            writes: list[int] = []
            send_texts = protocol.send_texts

            def counted(messages: Sequence[bytes], *, now: bool = False) -> None:
                writes.append(len(messages))
                send_texts(messages, now=now)

            protocol.send_texts = counted
            ids = list(range(300, 312))
            await send_held_buys(node, socket, ids)
            del node.cut_block  # blocks again
            replies = [await ws.next() for _ in ids]
            assert [reply["id"] for reply in replies] == ids
            assert all("result" in reply for reply in replies)
            assert writes == [len(ids)]

    asyncio.run(main())


def test_requests_waiting_when_the_node_halts_are_answered(
    tmp_path: Path,
) -> None:
    """A connection's requests wait without a done callback each (the node announces its
    acknowledgements): a halt announces its failures as well, and each is answered."""

    async def main() -> None:
        async with connected(tmp_path) as (served, socket, ws):
            node = served.node
            ids = [400, 401, 402]
            await send_held_buys(node, socket, ids)
            assert len(served.api.waiters) == len(ids)
            node._halt("the operator stopped it")
            replies = [await ws.next() for _ in ids]
            assert [reply["id"] for reply in replies] == ids
            # (the stand-in lets NodeHalted through: the transport answers it as a 500 would)
            assert {reply["error"]["code"] for reply in replies} == {INTERNAL_ERROR}
            assert not served.api.waiters

    asyncio.run(main())


def test_a_pass_reads_each_connections_first_message_then_a_round_of_the_rest(
    tmp_path: Path,
) -> None:
    """Messages read in one pass are submitted a connection's first at once, then the rest
    a round at a time (every connection's second, then third...): the block's order follows
    the order they were sent in, not socket by socket."""

    async def main() -> None:
        async with two_endpoints(tmp_path) as (served, first, second):
            node = served.node

            def buy(price_ticks: int) -> bytes:
                return buy_message(price_ticks, price_ticks)

            for price in (90_001, 90_002, 90_003):  # one read of three messages
                first.received(buy(price))
            second.received(buy(90_004))
            assert [p.tx.price_ticks for p in node.runtime.inbox] == [90_001, 90_004]
            await asyncio.sleep(0)  # the turn's end: its rounds
            prices = [p.tx.price_ticks for p in node.runtime.inbox]
            assert prices == [90_001, 90_004, 90_002, 90_003]
            second.received(buy(90_005))  # a new turn: at once again
            assert [p.tx.price_ticks for p in node.runtime.inbox][-1] == 90_005
            real = served.api.on_message

            def failing(session: Any, raw: bytes, received_us: int) -> Any:
                if b"90008" in raw:
                    raise RuntimeError("a bug")
                return real(session, raw, received_us)

            served.api.on_message = failing  # type: ignore[method-assign]
            for price in (90_006, 90_008, 90_007):  # 90_008 fails: logged, the others go on
                second.received(buy(price))
            await asyncio.sleep(0)
            assert [p.tx.price_ticks for p in node.runtime.inbox][-2:] == [90_006, 90_007]
            del served.api.on_message
            del node.cut_block
            for price in (90_009, 90_010):  # read, and a cut in the same pass: in its block
                second.received(buy(price))
            assert second.deferred
            node.cut_block()
            assert not second.deferred
            assert node._last_transactions == 9

    asyncio.run(main())


def test_a_blocks_answers_that_waited_longest_go_first_a_connection_at_a_time(
    tmp_path: Path,
) -> None:
    """A block's answers go in two rounds: first those whose requests waited
    ``first_after_ns`` or more (a connection at a time, in the block's order), then the rest:
    a connection's new request is not answered before another connection's older one, as it
    was when a connection's answers all went together."""

    async def main() -> None:
        async with two_endpoints(tmp_path) as (served, first, second):
            node, api = served.node, served.api
            pushed: list[tuple[str, list[int]]] = []
            for name, endpoint in (("first", first), ("second", second)):
                real = endpoint.session.push_all

                def push_all(messages: Any, *, now: bool = False, n: str = name, r: Any = real):
                    pushed.append((n, [json.loads(m)["id"] for m in messages]))
                    return r(messages, now=now)

                endpoint.session.push_all = push_all

            def buy(request_id: int) -> bytes:
                return buy_message(request_id, 90_000 + request_id)

            api.first_after_ns = 500_000_000  # (3 and 4 would need a 0.5 s stall to join)
            first.received(buy(1))
            second.received(buy(2))
            await asyncio.sleep(0.6)  # 1 and 2 have waited 0.6 s: the first round's
            first.received(buy(3))
            second.received(buy(4))
            del node.cut_block
            node.cut_block()
            for _ in range(100):
                if sum(len(ids) for _, ids in pushed) == 4:
                    break
                await asyncio.sleep(0.01)
            assert pushed == [("first", [1]), ("second", [2]), ("first", [3]), ("second", [4])]
            assert not api.waiters
            pushed.clear()
            api.first_after_ns = 10**12  # none waited that long: one round, as before
            for request_id in (5, 6):
                first.received(buy(request_id))
                await asyncio.sleep(0)
            second.received(buy(7))
            node.cut_block()
            for _ in range(100):
                if sum(len(ids) for _, ids in pushed) == 3:
                    break
                await asyncio.sleep(0.01)
            assert pushed == [("first", [5, 6]), ("second", [7])]

    asyncio.run(main())


def test_cancel_on_disconnect_cancels_the_accounts_resting_orders(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as served, aiohttp.ClientSession() as http:
            await fund(served.node, ALICE)
            async with http.ws_connect(served.ws) as socket:
                ws = Ws(socket)
                await ws.call("public/auth", client_signature(served.api_key, served.secret))
                assert (await ws.call("private/enable_cancel_on_disconnect"))["result"] == "ok"
                got = await ws.call("private/get_cancel_on_disconnect")
                assert got["result"] == {"scope": "connection", "enabled": True}
                reply = await ws.call("private/test_buy", {"price_ticks": 90_000})
                order_id = reply["result"]["order_id"]
                assert order_id in served.node.engine.orders
            for _ in range(500):
                if order_id not in served.node.engine.orders:
                    break
                await asyncio.sleep(0.01)
            assert order_id not in served.node.engine.orders
            assert not served.api.hub.sessions

    asyncio.run(main())


def test_a_consumer_that_stops_reading_is_disconnected(tmp_path: Path) -> None:
    """A client that sends subscriptions and never reads their answers (book snapshots of
    100 levels, ~2 KB each): the kernel's socket buffers fill (up to 4 MB), then the
    transport's (64 KiB), then the session's queue of 8, and the node drops the connection;
    the session and its subscriptions are gone, counted as a slow consumer."""
    from websockets.client import ClientProtocol
    from websockets.uri import parse_uri

    limits = ApiLimits(
        send_queue_max=8, channels_per_request_max=4, ip_rate_per_s=100_000, ip_burst=100_000
    )

    async def main() -> None:
        async with serving(tmp_path, limits) as served:
            await fund(served.node, ALICE)
            orders = [
                served.node.submit_nowait(
                    PlaceOrder(
                        account=ALICE, instrument=PERP, side=1, size_lots=1, price_ticks=1_000 + i
                    )
                )
                for i in range(100)
            ]
            await asyncio.gather(*orders)
            protocol = ClientProtocol(parse_uri(served.ws))
            probe = socket.socket()
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            probe.connect(("127.0.0.1", int(served.base.rsplit(":", 1)[1])))
            reader, writer = await asyncio.open_connection(sock=probe)
            protocol.send_request(protocol.connect())
            writer.write(b"".join(protocol.data_to_send()))
            protocol.receive_data(await reader.readuntil(b"\r\n\r\n"))
            assert protocol.handshake_exc is None
            book = f"book.{PERP}.100ms"
            sent = 0
            while served.api.hub.sessions and sent < 40_000:
                for _ in range(100):  # and never a read from here on
                    name = "public/subscribe" if sent % 2 == 0 else "public/unsubscribe"
                    request = {"jsonrpc": "2.0", "id": sent, "method": name,
                               "params": {"channels": [book]}}  # fmt: skip
                    protocol.send_text(json.dumps(request).encode())
                    sent += 1
                writer.write(b"".join(protocol.data_to_send()))
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                await asyncio.sleep(0.001)
            for _ in range(500):  # the close handshake times out: the peer does not read
                if not served.api.hub.sessions:
                    break
                await asyncio.sleep(0.01)
            assert not served.api.hub.sessions
            assert not served.api.hub._subscribers
            metrics = served.node.metrics.render().decode()
            assert "strikechain_ws_slow_consumers_total 1.0" in metrics
            writer.close()

    asyncio.run(main())
