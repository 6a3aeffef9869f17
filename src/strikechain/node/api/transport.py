"""The JSON-RPC 2.0 transport of the Deribit v2 API: HTTP and WebSocket routes (Starlette).

Routes:

- ``GET /api/v2/{public|private}/{method}?name=value...``: parameters as query strings (numbers
  and booleans as text, converted by the method's parameter struct), as ccxt sends them.
- ``POST /api/v2/{public|private}/{method}``: a JSON-RPC request object (its ``method`` must be
  the path's) or the parameters object itself.
- ``/ws/api/v2``: a WebSocket of JSON-RPC requests, replies and ``subscription`` notifications
  (:mod:`.sessions`).

Every answer is Deribit's envelope ``{"jsonrpc": "2.0", "id", "result" | "error": {code,
message, data}, "usIn", "usOut", "usDiff", "testnet": true}`` (microseconds of wall clock), with
HTTP status 200 even for an error, as ccxt reads them (its ``handle_errors`` maps the code).

Checks, in order: size (``message_bytes_max``: 11098 ``message_too_large``), JSON (strict:
``NaN`` and ``Infinity`` are not JSON; -32700), one request object (a batch array or any
non-object: -32600; Deribit has no batches), credentials (:mod:`.auth`; a failed proof is
charged to the caller's address), the rate limit of the key or, with no credentials, of the
address (10028), then the method: this module's own (``public/auth``, subscriptions,
cancel-on-disconnect), else :func:`strikechain.node.api.registry.call` (-32601 if unknown).

Over a WebSocket the connection's own methods run in order as they arrive (so a ``public/auth``
binds the session before the next request is read); the registry's methods run concurrently,
at most ``requests_in_flight`` per connection (reading pauses beyond), and may answer out of
order (match replies by ``id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import strikechain.node.api.methods  # noqa: F401  (registers the venue's methods)
from strikechain.node.api import history, registry
from strikechain.node.api.auth import Authenticator, AuthParams
from strikechain.node.api.errors import (
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MESSAGE_TOO_LARGE,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    ApiError,
    invalid_params,
)
from strikechain.node.api.limits import ApiLimits, RateLimiter
from strikechain.node.api.sessions import POLICY_VIOLATION, ApiMetrics, Hub, Session
from strikechain.node.keys import KeyRecord, KeyStore, Scope
from strikechain.node.service import Node

log = logging.getLogger("strikechain.node.api")
MUST_BE_WEBSOCKET: Final = 10030
TRY_AGAIN_LATER: Final = 1013
REQUESTS_IN_FLIGHT: Final = 32
CLOSE_TIMEOUT_S: Final = 2.0
ENCODER: Final = msgspec.json.Encoder(decimal_format="number")
DECODER: Final = msgspec.json.Decoder()
ACCESS: Final = frozenset({"public", "private"})


class RpcRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One JSON-RPC request object (fields other than these are ignored, as Deribit does)."""

    method: str
    id: int | str | None = None
    params: dict[str, Any] | None = None
    jsonrpc: str = "2.0"


class SubscribeParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    channels: list[str]
    label: str = ""


class NoParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class CancelOnDisconnectParams(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    scope: str = "connection"


@dataclasses.dataclass
class Caller:
    """Who sent one request: the key its credentials proved (None: none), its address, its
    WebSocket session (None over HTTP)."""

    key: KeyRecord | None
    address: str
    session: Session | None


Reply = tuple[Any, Callable[[], None] | None]
"""A result, and what to do once it is queued (a subscription's first data)."""
LocalHandler = Callable[["Api", Caller, Any], Awaitable[Reply]]


@dataclasses.dataclass(frozen=True, slots=True)
class LocalMethod:
    """A method of the transport itself (it needs the connection or the credentials)."""

    params: type[msgspec.Struct]
    handler: LocalHandler
    scope: Scope | None = None
    websocket_only: bool = False


class Api:
    """The API of one node: credentials, sessions, rate limits and the routes serving them."""

    def __init__(
        self,
        node: Node,
        keys: KeyStore,
        limits: ApiLimits | None = None,
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.node = node
        self.limits = limits = limits if limits is not None else ApiLimits()
        self.metrics = ApiMetrics(node.metrics.registry)
        self.auth = Authenticator(keys, limits, clock_ns)
        self.key_rate = RateLimiter(
            limits.key_rate_per_s, limits.key_burst, limits.rate_buckets_max, clock_ns
        )
        self.address_rate = RateLimiter(
            limits.ip_rate_per_s, limits.ip_burst, limits.rate_buckets_max, clock_ns
        )
        runtime = node.runtime
        assert runtime is not None, "start the node before its API"
        # The history is a sink before the hub: a block's notifications read what it recorded.
        self.history = history.attach(node)
        self.hub = Hub(node, self.history, limits, self.metrics)
        runtime.add_sink(self.hub)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v2/{access}/{name}", self.http, methods=["GET", "POST"]),
            WebSocketRoute("/ws/api/v2", self.websocket),
        ]

    # -- HTTP ---------------------------------------------------------------------------------

    async def http(self, request: Request) -> Response:
        received_us = time.time_ns() // 1_000
        self.metrics.http_requests.inc()
        access = request.path_params["access"]
        name = f"{access}/{request.path_params['name']}"
        request_id: Any = None
        try:
            if access not in ACCESS:
                raise ApiError(METHOD_NOT_FOUND, "Method not found", {"method": name})
            query = request.scope.get("query_string", b"").decode("latin-1")
            if len(query) > self.limits.message_bytes_max:
                raise _too_large(self.limits)
            body = await _read_body(request, self.limits.message_bytes_max)
            request_id, params, strings = _http_params(request, name, body)
            uri = f"/api/v2/{name}" + (f"?{query}" if query else "")
            caller = self._http_caller(request, uri, body)
            if params is not None and "access_token" in params:
                token = str(params.pop("access_token"))
                caller.key = self._token_key(token, caller.address)
            result, _ = await self.dispatch(name, params, caller, strings=strings)
            envelope = _envelope(request_id, received_us, result=result)
        except ApiError as error:
            envelope = self._error_envelope(request_id, received_us, error)
        return Response(ENCODER.encode(envelope), media_type="application/json")

    def _http_caller(self, request: Request, uri: str, body: bytes) -> Caller:
        address = request.client.host if request.client is not None else ""
        header = request.headers.get("authorization")
        key = None
        if header is not None:
            try:
                key = self.auth.from_header(header, request.method, uri, body.decode())
            except ApiError:
                self._charge(None, address)
                raise
        return Caller(key, address, None)

    # -- WebSocket ----------------------------------------------------------------------------

    async def websocket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        address = websocket.client.host if websocket.client is not None else ""
        try:
            session = self.hub.open(address)
        except ApiError:
            await websocket.close(code=TRY_AGAIN_LATER)
            return
        connection = _Connection(self, websocket, session)
        try:
            await connection.run()
        finally:
            self.hub.close(session)
        if session.overflowed:
            # The peer may be gone or not reading: then the server drops the socket.
            with contextlib.suppress(TimeoutError, RuntimeError, WebSocketDisconnect, OSError):
                await asyncio.wait_for(websocket.close(code=POLICY_VIOLATION), CLOSE_TIMEOUT_S)

    async def on_message(
        self, session: Session, raw: bytes, received_us: int
    ) -> Coroutine[Any, Any, str] | None:
        """Handle one WebSocket message: its reply queued now (None), or the coroutine that
        answers it (its reply, encoded: the connection sends it)."""
        request_id: Any = None
        self.metrics.websocket_requests.inc()
        try:
            request = _parse(raw, self.limits)
            request_id = request.id
            params = dict(request.params) if request.params is not None else None
            caller = Caller(session.key, session.client, session)
            if params is not None and "access_token" in params:
                caller.key = self._token_key(str(params.pop("access_token")), session.client)
            if request.method in LOCAL_METHODS:
                result, after = await self.dispatch(request.method, params, caller)
                session.push(_encode(_envelope(request_id, received_us, result=result)))
                if after is not None:
                    after()
                return None
            self._charge(caller.key, caller.address)
            return self._call(session, request.method, params, caller, request_id, received_us)
        except ApiError as error:
            session.push(_encode(self._error_envelope(request_id, received_us, error)))
            return None

    async def _call(
        self,
        session: Session,
        name: str,
        params: dict[str, Any] | None,
        caller: Caller,
        request_id: Any,
        received_us: int,
    ) -> str:
        try:
            context = registry.Context(self.node, caller.key, session)
            result = await registry.call(name, params, context)
            envelope = _envelope(request_id, received_us, result=result)
        except ApiError as error:
            envelope = self._error_envelope(request_id, received_us, error)
        except Exception:  # a method's bug: answer as HTTP's 500 would, and keep its traceback
            log.exception("method failed", extra={"method": name})
            internal = ApiError(INTERNAL_ERROR, "Internal error")
            envelope = self._error_envelope(request_id, received_us, internal)
        return _encode(envelope)

    # -- both ---------------------------------------------------------------------------------

    async def dispatch(
        self, name: str, params: dict[str, Any] | None, caller: Caller, *, strings: bool = False
    ) -> Reply:
        """Charge ``caller``'s rate limit and run method ``name`` for it."""
        self._charge(caller.key, caller.address)
        local = LOCAL_METHODS.get(name)
        if local is None:
            context = registry.Context(self.node, caller.key, caller.session)
            return await registry.call(name, params, context, strings=strings), None
        if local.websocket_only and caller.session is None:
            raise ApiError(MUST_BE_WEBSOCKET, "must_be_websocket_request", {"method": name})
        if local.scope is not None:
            if caller.key is None:
                raise ApiError(UNAUTHORIZED, "unauthorized")
            if not caller.key.has_scope(local.scope):
                raise ApiError(FORBIDDEN, "forbidden", {"reason": f"the key lacks {local.scope}"})
        try:
            value = msgspec.convert(params or {}, local.params, strict=not strings)
        except msgspec.ValidationError as error:
            raise invalid_params(_param_of(str(error)), str(error)) from None
        return await local.handler(self, caller, value)

    def _charge(self, key: KeyRecord | None, address: str) -> None:
        allowed = (
            self.key_rate.allow(key.api_key)
            if key is not None
            else self.address_rate.allow(address)
        )
        if not allowed:
            self.metrics.rate_limited.inc()
            raise ApiError(TOO_MANY_REQUESTS, "too_many_requests")

    def _token_key(self, token: str, address: str) -> KeyRecord:
        try:
            return self.auth.from_token(token)
        except ApiError:
            self._charge(None, address)
            raise

    def _error_envelope(self, request_id: Any, received_us: int, error: ApiError) -> dict[str, Any]:
        self.metrics.errors.labels(str(error.code)).inc()
        return _envelope(request_id, received_us, error=error.to_json())


class _Connection:
    """One WebSocket's reader and writer, until either ends or the send queue overflows.

    Replies to the registry's methods are sent at once by the request's own task when nothing
    waits in the session's queue and no send is under way (``sending``): so the answers to a
    block's orders leave one by one as each is built, in the block's order, instead of all
    after the last is built (the writer task only wakes after every task the block resolved
    has run). That bounds the acknowledgement latency by the block interval plus the time
    to the order's own answer. Otherwise (a send under way, messages queued: a slow reader)
    the reply joins the queue, which stays bounded, and the writer sends it in order."""

    def __init__(self, api: Api, websocket: WebSocket, session: Session) -> None:
        self.api = api
        self.websocket = websocket
        self.session = session
        self.in_flight: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(REQUESTS_IN_FLIGHT)
        self.sending = asyncio.Lock()

    async def run(self) -> None:
        reader = asyncio.create_task(self.read())
        writer = asyncio.create_task(self.write())
        overflow = asyncio.create_task(self.session.closed.wait())
        tasks = {reader, writer, overflow}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*tasks, *self.in_flight):
                task.cancel()
            await asyncio.wait({*tasks, *self.in_flight})
        for task in (reader, writer):
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def read(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            received_us = time.time_ns() // 1_000
            text = message.get("text")
            raw = text.encode() if text is not None else message.get("bytes") or b""
            await self.slots.acquire()
            pending = await self.api.on_message(self.session, raw, received_us)
            if pending is None:
                self.slots.release()
                continue
            task = asyncio.create_task(self.answer(pending))
            self.in_flight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.slots.release()

    async def answer(self, pending: Coroutine[Any, Any, str]) -> None:
        message = await pending
        session = self.session
        if len(session) or self.sending.locked() or session.overflowed:
            session.push(message)
            return
        async with self.sending:
            # A failed send means the peer is gone: the reader sees the disconnect.
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.websocket.send_text(message)

    async def write(self) -> None:
        session = self.session
        while (message := await session.next_message()) is not None:
            async with self.sending:
                try:
                    await self.websocket.send_text(message)
                except (WebSocketDisconnect, RuntimeError, OSError):
                    return


# -- the transport's own methods -------------------------------------------------------------


async def _auth(api: Api, caller: Caller, params: AuthParams) -> Reply:
    session = caller.session
    record, answer = api.auth.grant(params, connection=session is not None)
    if session is not None:
        private = any(channel.private for channel in session.subscriptions.values())
        if private and session.account != record.account:
            raise ApiError(
                INVALID_REQUEST, "Invalid Request", {"reason": "unsubscribe user channels first"}
            )
        session.key = record
    return answer, None


async def _subscribe(api: Api, caller: Caller, params: SubscribeParams, *, private: bool) -> Reply:
    session = caller.session
    assert session is not None
    names = api.hub.subscribe(session, params.channels, private=private)
    return names, lambda: api.hub.send_snapshots(session, names)


async def _public_subscribe(api: Api, caller: Caller, params: SubscribeParams) -> Reply:
    return await _subscribe(api, caller, params, private=False)


async def _private_subscribe(api: Api, caller: Caller, params: SubscribeParams) -> Reply:
    return await _subscribe(api, caller, params, private=True)


async def _unsubscribe(api: Api, caller: Caller, params: SubscribeParams) -> Reply:
    assert caller.session is not None
    return api.hub.unsubscribe(caller.session, params.channels), None


async def _unsubscribe_all(api: Api, caller: Caller, params: NoParams) -> Reply:
    session = caller.session
    assert session is not None
    while session.subscriptions:
        names = list(session.subscriptions)[: api.limits.channels_per_request_max]
        api.hub.unsubscribe(session, names)
    return "ok", None


def _set_cancel_on_disconnect(
    caller: Caller, params: CancelOnDisconnectParams, enabled: bool
) -> Reply:
    assert caller.session is not None
    if params.scope != "connection":
        raise invalid_params("scope", "only scope=connection is supported")
    caller.session.cancel_on_disconnect = enabled
    return "ok", None


async def _enable_cancel_on_disconnect(
    api: Api, caller: Caller, params: CancelOnDisconnectParams
) -> Reply:
    return _set_cancel_on_disconnect(caller, params, True)


async def _disable_cancel_on_disconnect(
    api: Api, caller: Caller, params: CancelOnDisconnectParams
) -> Reply:
    return _set_cancel_on_disconnect(caller, params, False)


async def _get_cancel_on_disconnect(
    api: Api, caller: Caller, params: CancelOnDisconnectParams
) -> Reply:
    assert caller.session is not None
    return {"scope": "connection", "enabled": caller.session.cancel_on_disconnect}, None


LOCAL_METHODS: Final[dict[str, LocalMethod]] = {
    "public/auth": LocalMethod(AuthParams, _auth),
    "public/subscribe": LocalMethod(SubscribeParams, _public_subscribe, None, True),
    "private/subscribe": LocalMethod(SubscribeParams, _private_subscribe, Scope.READ, True),
    "public/unsubscribe": LocalMethod(SubscribeParams, _unsubscribe, None, True),
    "private/unsubscribe": LocalMethod(SubscribeParams, _unsubscribe, Scope.READ, True),
    "public/unsubscribe_all": LocalMethod(NoParams, _unsubscribe_all, None, True),
    "private/unsubscribe_all": LocalMethod(NoParams, _unsubscribe_all, Scope.READ, True),
    "private/enable_cancel_on_disconnect": LocalMethod(
        CancelOnDisconnectParams, _enable_cancel_on_disconnect, Scope.TRADE, True
    ),
    "private/disable_cancel_on_disconnect": LocalMethod(
        CancelOnDisconnectParams, _disable_cancel_on_disconnect, Scope.TRADE, True
    ),
    "private/get_cancel_on_disconnect": LocalMethod(
        CancelOnDisconnectParams, _get_cancel_on_disconnect, Scope.READ, True
    ),
}
"""Methods the transport answers itself; they take precedence over the registry's."""


# -- parsing and envelopes -------------------------------------------------------------------


def _parse(raw: bytes, limits: ApiLimits) -> RpcRequest:
    """One request object from a message; the JSON-RPC error for anything else."""
    if len(raw) > limits.message_bytes_max:
        raise _too_large(limits)
    try:
        value = DECODER.decode(raw)
    except msgspec.DecodeError as error:
        raise ApiError(PARSE_ERROR, "Parse error", {"reason": str(error)}) from None
    return _request(value)


def _request(value: Any) -> RpcRequest:
    if isinstance(value, list):
        raise ApiError(
            INVALID_REQUEST, "Invalid Request", {"reason": "batch requests are not supported"}
        )
    if not isinstance(value, dict):
        raise ApiError(INVALID_REQUEST, "Invalid Request", {"reason": "a request is a JSON object"})
    try:
        request = msgspec.convert(value, RpcRequest, strict=True)
    except msgspec.ValidationError as error:
        raise ApiError(INVALID_REQUEST, "Invalid Request", {"reason": str(error)}) from None
    if request.jsonrpc != "2.0":
        raise ApiError(INVALID_REQUEST, "Invalid Request", {"reason": 'jsonrpc must be "2.0"'})
    return request


def _http_params(
    request: Request, name: str, body: bytes
) -> tuple[Any, dict[str, Any] | None, bool]:
    """``(request id, params, strings)`` of an HTTP request."""
    if request.method == "GET":
        items = request.query_params.multi_items()
        params = dict(items)
        if len(params) != len(items):
            raise invalid_params("", "a parameter is given twice")
        return None, params, True
    if not body:
        return None, None, False
    try:
        value = DECODER.decode(body)
    except msgspec.DecodeError as error:
        raise ApiError(PARSE_ERROR, "Parse error", {"reason": str(error)}) from None
    if isinstance(value, dict) and "method" in value:
        rpc = _request(value)
        if rpc.method != name:
            reason = f"the body's method {rpc.method!r} is not the path's {name!r}"
            raise ApiError(INVALID_REQUEST, "Invalid Request", {"reason": reason})
        return rpc.id, rpc.params, False
    if not isinstance(value, dict):
        raise ApiError(INVALID_REQUEST, "Invalid Request", {"reason": "params are a JSON object"})
    return None, value, False


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(MESSAGE_TOO_LARGE, "message_too_large", {"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(MESSAGE_TOO_LARGE, "message_too_large", {"limit": limit})
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        body.decode()
    except UnicodeDecodeError:
        raise ApiError(PARSE_ERROR, "Parse error", {"reason": "the body is not UTF-8"}) from None
    return body


def _param_of(message: str) -> str:
    """The parameter a msgspec validation message names (``... - at `$.channels```)."""
    start = message.find("`$.")
    end = message.find("`", start + 3) if start >= 0 else -1
    return message[start + 3 : end] if end > 0 else ""


def _too_large(limits: ApiLimits) -> ApiError:
    return ApiError(MESSAGE_TOO_LARGE, "message_too_large", {"limit": limits.message_bytes_max})


def _envelope(
    request_id: Any,
    received_us: int,
    *,
    result: Any = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    sent_us = time.time_ns() // 1_000
    envelope: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
    if error is not None:
        envelope["error"] = error
    else:
        envelope["result"] = result
    envelope.update(usIn=received_us, usOut=sent_us, usDiff=sent_us - received_us, testnet=True)
    return envelope


def _encode(envelope: dict[str, Any]) -> str:
    return ENCODER.encode(envelope).decode()
