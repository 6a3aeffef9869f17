"""The node's API from the other side of the network: :class:`Client` (HTTP JSON-RPC, requests
signed with an API key, orders signed with an account key) and :class:`WsRpc` (one WebSocket:
pipelined calls and subscriptions).

Authentication
- An API key and secret sign each private HTTP request with Deribit's header
  ``Authorization: deri-hmac-sha256 id=KEY,ts=MS,sig=HEX,nonce=NONCE`` (HEX the HMAC-SHA256 of
  ``MS\\nNONCE\\nPOST\\nURI\\nBODY\\n``), and a WebSocket with ``public/auth``
  ``grant_type=client_signature``.
- An account's private key (32 bytes) signs orders as EIP-712 typed data
  (:mod:`strikechain.engine.orders_signing`) for ``public/submit_signed_order``: no API key
  needed. Amounts and prices are converted to lots and ticks with the instrument's
  ``min_trade_amount`` and ``tick_size`` through ``Decimal`` (off the grid: refused here, before
  signing), under the domain the node reports (``public/get_signing_domain``).

Errors: every refusal, the node's or the client's own, is a :class:`ClientError` with the
JSON-RPC ``code`` (the node's Deribit code; ``-32602`` for a local parameter check, ``-32000``
for a transport failure), ``message`` and ``data``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import inspect
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import msgspec

from strikechain.engine.orders_signing import sign_order
from strikechain.engine.signing import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    PRIVATE_KEY_BYTES,
    SigningDomain,
    address_of,
)
from strikechain.engine.txs import OrderType, PlaceOrder, PostOnly, Side, TimeInForce

INVALID_PARAMS: Final = -32602
TRANSPORT_ERROR: Final = -32000
SIGNED_ORDER_LIFETIME_S: Final = 60.0
"""A signed order's default validity (the node accepts up to its ``signature_lifetime_max_s``)."""
_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")
_DECODER: Final = msgspec.json.Decoder()
_TIME_IN_FORCE: Final = {
    "good_til_cancelled": TimeInForce.GTC,
    "immediate_or_cancel": TimeInForce.IOC,
    "fill_or_kill": TimeInForce.FOK,
}

Number = Decimal | int | float | str
Callback = Callable[[str, Any], Awaitable[None] | None]
"""A subscription's callback: ``(channel, data)``; it may be a coroutine function."""


class ClientError(Exception):
    """A refused call: the JSON-RPC error's ``code``, ``message`` and ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code} {message}" + (f": {data}" if data is not None else ""))
        self.code = code
        self.message = message
        self.data = data


def _result(envelope: Any) -> Any:
    if not isinstance(envelope, dict):
        raise ClientError(TRANSPORT_ERROR, "not a JSON-RPC answer", {"answer": repr(envelope)})
    error = envelope.get("error")
    if error is not None:
        raise ClientError(int(error.get("code", 0)), str(error.get("message")), error.get("data"))
    return envelope.get("result")


def _invalid(param: str, reason: str) -> ClientError:
    return ClientError(INVALID_PARAMS, "Invalid params", {"param": param, "reason": reason})


def _decimal(value: Number, param: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _invalid(param, f"{value!r} is not a number") from None
    if not number.is_finite():
        raise _invalid(param, f"{value!r} is not a finite number")
    return number


def _on_grid(value: Number, step: Any, param: str) -> int:
    """``value / step`` as an integer; refused if ``value`` is off the grid."""
    quotient = _decimal(value, param) / Decimal(str(step))
    if quotient != quotient.to_integral_value():
        raise _invalid(param, f"{value} is not a multiple of {step}")
    return int(quotient)


def client_signature(api_key: str, api_secret: str, data: str = "") -> dict[str, Any]:
    """``public/auth``'s ``client_signature`` grant for ``api_key``."""
    timestamp = time.time_ns() // 1_000_000
    nonce = secrets.token_hex(8)
    message = f"{timestamp}\n{nonce}\n{data}".encode()
    signature = hmac.new(api_secret.encode(), message, hashlib.sha256).hexdigest()
    return {
        "grant_type": "client_signature",
        "client_id": api_key,
        "timestamp": timestamp,
        "nonce": nonce,
        "data": data,
        "signature": signature,
    }


def rest_header(api_key: str, api_secret: str, method: str, uri: str, body: str) -> str:
    """Deribit's ``Authorization`` header for one REST request."""
    timestamp = time.time_ns() // 1_000_000
    nonce = secrets.token_hex(8)
    message = f"{timestamp}\n{nonce}\n{method.upper()}\n{uri}\n{body}\n".encode()
    signature = hmac.new(api_secret.encode(), message, hashlib.sha256).hexdigest()
    return f"deri-hmac-sha256 id={api_key},ts={timestamp},sig={signature},nonce={nonce}"


def websocket_url(base_url: str) -> str:
    """The node's WebSocket endpoint beside ``base_url`` (``http://h:p`` -> ``ws://h:p/ws/api/v2``)."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "/ws/api/v2", "", ""))


class WsRpc:
    """One WebSocket to the node: calls pipelined (answers matched by id, any number in
    flight), notifications handed to ``on_notification(channel, data)``."""

    def __init__(
        self,
        socket: aiohttp.ClientWebSocketResponse,
        on_notification: Callback | None = None,
    ) -> None:
        self.socket = socket
        self.on_notification = on_notification
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader = asyncio.create_task(self._read())
        self._callbacks: set[asyncio.Task[None]] = set()

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """The method's result; :class:`ClientError` if refused or the socket closed."""
        return _result(await self.send(method, params))

    def send(self, method: str, params: dict[str, Any] | None = None) -> asyncio.Future[Any]:
        """Send a request now; the future resolves with its whole envelope."""
        if self._reader.done():
            raise ClientError(TRANSPORT_ERROR, "the WebSocket is closed")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        sending = asyncio.ensure_future(self.socket.send_bytes(_ENCODER.encode(message)))
        sending.add_done_callback(lambda done: self._sent(done, request_id))
        return future

    def _sent(self, sending: asyncio.Future[None], request_id: int) -> None:
        if sending.cancelled() or sending.exception() is not None:
            future = self._waiting.pop(request_id, None)
            if future is not None and not future.done():
                future.set_exception(ClientError(TRANSPORT_ERROR, "the request was not sent"))

    async def _read(self) -> None:
        try:
            async for message in self.socket:
                if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    break
                self._dispatch(_DECODER.decode(message.data))
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ClientError(TRANSPORT_ERROR, "the WebSocket closed"))
            self._waiting.clear()

    def _dispatch(self, message: Any) -> None:
        if message.get("method") == "subscription":
            params = message.get("params") or {}
            if self.on_notification is not None:
                outcome = self.on_notification(params.get("channel", ""), params.get("data"))
                if inspect.isawaitable(outcome):
                    task = asyncio.ensure_future(outcome)
                    self._callbacks.add(task)
                    task.add_done_callback(self._callbacks.discard)
            return
        future = self._waiting.pop(message.get("id"), None)
        if future is not None and not future.done():
            future.set_result(message)

    async def close(self) -> None:
        await self.socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        for task in list(self._callbacks):
            task.cancel()


class Subscription:
    """A live subscription: its WebSocket and the channels the node confirmed."""

    def __init__(self, rpc: WsRpc, channels: list[str]) -> None:
        self.rpc = rpc
        self.channels = channels

    async def close(self) -> None:
        await self.rpc.close()


class Client:
    """A node's API at ``base_url`` (``http://host:port``). Use ``async with`` (or
    :meth:`close`): it holds one HTTP connection pool."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        api_secret: str | None = None,
        private_key: bytes | str | None = None,
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.api_secret = api_secret
        self.private_key = _private_key(private_key) if private_key is not None else None
        self.account = address_of(self.private_key) if self.private_key is not None else None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._http: aiohttp.ClientSession | None = None
        self._instruments: dict[str, dict[str, Any]] = {}
        self._domain: SigningDomain | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    # -- the transport -------------------------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call ``method`` over HTTP (a POSTed JSON-RPC request); a ``private/`` method is signed
        with the API key. The result, or :class:`ClientError`."""
        uri = f"/api/v2/{method}"
        request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        body = _ENCODER.encode(request)
        headers = {"Content-Type": "application/json"}
        if method.startswith("private/"):
            if self.api_key is None or self.api_secret is None:
                raise ClientError(13009, "unauthorized", {"reason": f"{method} needs an API key"})
            headers["Authorization"] = rest_header(
                self.api_key, self.api_secret, "POST", uri, body.decode()
            )
        try:
            async with self._session().post(
                self.base_url + uri, data=body, headers=headers
            ) as response:
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ClientError(TRANSPORT_ERROR, "transport_error", {"reason": repr(error)}) from None
        try:
            envelope = _DECODER.decode(raw)
        except msgspec.DecodeError:
            reason = f"HTTP {response.status}: {raw[:200]!r}"
            raise ClientError(TRANSPORT_ERROR, "transport_error", {"reason": reason}) from None
        return _result(envelope)

    async def websocket(self, on_notification: Callback | None = None) -> WsRpc:
        """A new WebSocket to the node, authenticated with the API key if the client has one."""
        try:
            socket = await self._session().ws_connect(
                websocket_url(self.base_url), max_msg_size=1 << 22
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ClientError(TRANSPORT_ERROR, "transport_error", {"reason": repr(error)}) from None
        rpc = WsRpc(socket, on_notification)
        if self.api_key is not None and self.api_secret is not None:
            try:
                await rpc.call("public/auth", client_signature(self.api_key, self.api_secret))
            except ClientError:
                await rpc.close()
                raise
        return rpc

    async def subscribe(self, channels: Iterable[str], callback: Callback) -> Subscription:
        """Subscribe to ``channels`` on a new WebSocket (``user.*`` channels privately, which
        needs the API key); ``callback(channel, data)`` runs for every notification."""
        names = list(channels)
        private = any(name.startswith("user.") for name in names)
        rpc = await self.websocket(callback)
        try:
            method = "private/subscribe" if private else "public/subscribe"
            confirmed = await rpc.call(method, {"channels": names})
        except ClientError:
            await rpc.close()
            raise
        return Subscription(rpc, list(confirmed))

    # -- public --------------------------------------------------------------------------------

    async def get_instruments(self, currency: str = "any", kind: str | None = None) -> Any:
        params: dict[str, Any] = {"currency": currency}
        if kind is not None:
            params["kind"] = kind
        instruments = await self.call("public/get_instruments", params)
        for instrument in instruments:
            self._instruments[instrument["instrument_name"]] = instrument
        return instruments

    async def ticker(self, instrument_name: str) -> Any:
        return await self.call("public/ticker", {"instrument_name": instrument_name})

    async def order_book(self, instrument_name: str, depth: int | None = None) -> Any:
        params: dict[str, Any] = {"instrument_name": instrument_name}
        if depth is not None:
            params["depth"] = depth
        return await self.call("public/get_order_book", params)

    async def signing_domain(self) -> SigningDomain:
        """The node's EIP-712 domain (asked once)."""
        if self._domain is None:
            answer = await self.call("public/get_signing_domain")
            if (answer["name"], answer["version"]) != (DOMAIN_NAME, DOMAIN_VERSION):
                raise ClientError(TRANSPORT_ERROR, "unknown signing domain", answer)
            self._domain = SigningDomain(
                chain_id=int(answer["chain_id"]), verifying_contract=answer["verifying_contract"]
            )
        return self._domain

    async def instrument(self, instrument_name: str) -> dict[str, Any]:
        """The instrument's description (asked once)."""
        found = self._instruments.get(instrument_name)
        if found is None:
            found = await self.call("public/get_instrument", {"instrument_name": instrument_name})
            self._instruments[instrument_name] = found
        return found

    # -- private (API key) ---------------------------------------------------------------------

    async def buy(
        self, instrument_name: str, amount: Number, price: Number | None = None, **options: Any
    ) -> Any:
        """``private/buy``: ``options`` are Deribit's (``post_only``, ``time_in_force``,
        ``label``, ``reduce_only``, ``type``...)."""
        return await self.call("private/buy", order_params(instrument_name, amount, price, options))

    async def sell(
        self, instrument_name: str, amount: Number, price: Number | None = None, **options: Any
    ) -> Any:
        return await self.call(
            "private/sell", order_params(instrument_name, amount, price, options)
        )

    async def cancel(self, order_id: str | int) -> Any:
        return await self.call("private/cancel", {"order_id": str(order_id)})

    async def open_orders(self, instrument_name: str | None = None) -> Any:
        if instrument_name is None:
            return await self.call("private/get_open_orders")
        return await self.call(
            "private/get_open_orders_by_instrument", {"instrument_name": instrument_name}
        )

    async def positions(self, currency: str | None = None) -> Any:
        return await self.call(
            "private/get_positions", {} if currency is None else {"currency": currency}
        )

    async def account_summary(self, currency: str = "USDC") -> Any:
        return await self.call("private/get_account_summary", {"currency": currency})

    # -- signed orders (account key) -----------------------------------------------------------

    async def submit_signed_order(
        self,
        instrument_name: str,
        side: str,
        amount: Number,
        price: Number | None = None,
        *,
        post_only: bool = False,
        reject_post_only: bool = False,
        time_in_force: str = "good_til_cancelled",
        reduce_only: bool = False,
        label: str = "",
        nonce: int | None = None,
        lifetime_s: float = SIGNED_ORDER_LIFETIME_S,
    ) -> Any:
        """Sign the order with the account key and send it to ``public/submit_signed_order``.

        ``side`` is ``"buy"`` or ``"sell"``; no price: a market order. The nonce defaults to the
        wall clock in nanoseconds (unique per order from one client); the signature is valid for
        ``lifetime_s``.
        """
        if self.private_key is None or self.account is None:
            raise _invalid("private_key", "a signed order needs the account's private key")
        if side not in ("buy", "sell"):
            raise _invalid("side", "buy or sell")
        if time_in_force not in _TIME_IN_FORCE:
            raise _invalid("time_in_force", f"one of {', '.join(_TIME_IN_FORCE)}")
        instrument = await self.instrument(instrument_name)
        domain = await self.signing_domain()
        size_lots = _on_grid(amount, instrument["min_trade_amount"], "amount")
        price_ticks = 0 if price is None else _on_grid(price, instrument["tick_size"], "price")
        posting = PostOnly.NONE
        if post_only:
            posting = PostOnly.REJECT if reject_post_only else PostOnly.REPRICE
        now = time.time_ns()
        order = PlaceOrder(
            account=self.account,
            instrument=instrument_name,
            side=int(Side.BUY if side == "buy" else Side.SELL),
            size_lots=size_lots,
            price_ticks=price_ticks,
            order_type=int(OrderType.MARKET if price is None else OrderType.LIMIT),
            time_in_force=int(_TIME_IN_FORCE[time_in_force]),
            post_only=int(posting),
            reduce_only=reduce_only,
            client_order_id=label,
            nonce=now if nonce is None else nonce,
            expiry_ns=now + int(lifetime_s * 1e9),
        )
        signed = sign_order(order, self.private_key, domain)
        return await self.call("public/submit_signed_order", signed_order_params(signed))


def signed_order_params(order: PlaceOrder) -> dict[str, Any]:
    """``public/submit_signed_order``'s parameters for a signed order."""
    return {
        "account": order.account,
        "instrument_name": order.instrument,
        "side": order.side,
        "size_lots": order.size_lots,
        "price_ticks": order.price_ticks,
        "order_type": order.order_type,
        "time_in_force": order.time_in_force,
        "post_only": order.post_only,
        "reduce_only": order.reduce_only,
        "self_trade": order.self_trade,
        "client_order_id": order.client_order_id,
        "expire_at_ns": order.expire_at_ns,
        "nonce": order.nonce,
        "expiry": order.expiry_ns,
        "signature": "0x" + order.signature.hex(),
    }


def order_params(
    instrument_name: str, amount: Number, price: Number | None, options: dict[str, Any]
) -> dict[str, Any]:
    """``private/buy``/``sell``'s parameters (no price: a market order)."""
    params: dict[str, Any] = {
        "instrument_name": instrument_name,
        "amount": _decimal(amount, "amount"),
        "type": "market" if price is None else "limit",
    }
    if price is not None:
        params["price"] = _decimal(price, "price")
    params.update(options)
    return params


def _private_key(key: bytes | str) -> bytes:
    raw = key
    if isinstance(key, str):
        try:
            raw = bytes.fromhex(key.removeprefix("0x"))
        except ValueError:
            raw = b""
    if not isinstance(raw, bytes) or len(raw) != PRIVATE_KEY_BYTES:
        raise _invalid("private_key", "32 bytes (64 hex digits, 0x optional)")
    return raw
