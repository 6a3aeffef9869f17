"""The JSON-RPC 2.0 transport of the Deribit v2 API: HTTP and WebSocket routes (Starlette).

Routes:

- ``GET /api/v2/{public|private}/{method}?name=value...``: parameters as query strings (numbers
  and booleans as text, converted by the method's parameter struct), as ccxt sends them.
- ``POST /api/v2/{public|private}/{method}``: a JSON-RPC request object (its ``method`` must be
  the path's) or the parameters object itself.
- ``/ws/api/v2``: a WebSocket of JSON-RPC requests, replies and ``subscription`` notifications
  (:mod:`.sessions`), served by the node's server without ASGI (:mod:`strikechain.node.server`:
  the app names it in ``state.direct_websockets``; :meth:`Api.open_websocket`).

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
at most ``requests_in_flight`` per connection (later messages wait and reading pauses), and may
answer out of order (match replies by ``id``). A block's answers leave a connection at a
time in the block's order, in two rounds (:meth:`Api._acknowledged`): the requests that waited
longest for the block first, so the orders sent first in an interval are answered first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

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
from strikechain.node.api.sessions import ApiMetrics, Hub, Session
from strikechain.node.keys import KeyRecord, KeyStore, Scope
from strikechain.node.server import DirectWebSocket
from strikechain.node.service import AckFuture, Node

log = logging.getLogger("strikechain.node.api")
MUST_BE_WEBSOCKET: Final = 10030
TRY_AGAIN_LATER: Final = 1013
REQUESTS_IN_FLIGHT: Final = 32
FIRST_ANSWERS_AFTER: Final = 0.6
"""The share of the block interval a request has waited, when its block's answers begin, that
puts its answer in the block's first round (:meth:`Api._acknowledged`)."""
WEBSOCKET_PATH: Final = "/ws/api/v2"
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
LocalHandler = Callable[["Api", Caller, Any], Reply]


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
        interval_ns = node.config.node.block_interval_ns
        self.urgent_after_ns = interval_ns // 2
        """A WebSocket answer to a request that has waited this long is written at once, not
        gathered with the rest of the loop's turn (:class:`strikechain.node.server.
        CoalescingTransport`): the orders that arrived early in a block's interval waited
        longest for it, and an answer gathered waits for the whole block's answers to be
        built (~20 ms for 650 orders), which made them the 99th percentile."""
        self.first_after_ns = int(interval_ns * FIRST_ANSWERS_AFTER)
        """A block's answers to requests that have waited this long are built and written
        before all others (:meth:`_acknowledged`)."""
        runtime = node.runtime
        assert runtime is not None, "start the node before its API"
        # The history is a sink before the hub: a block's notifications read what it recorded.
        self.history = history.attach(node)
        self.hub = Hub(node, self.history, limits, self.metrics)
        runtime.add_sink(self.hub)
        self.turn = 0
        """The loop's passes that read WebSocket messages, counted (see :meth:`_end_turn`)."""
        self._turn_ending = False
        self._deferring: list[_WebSocket] = []
        self.waiters: dict[AckFuture, tuple[_WebSocket, int]] = {}
        """The WebSocket connections' requests waiting for their block, by acknowledgement:
        the connection and the request's urgent time (``received + urgent_after_ns``);
        answered from :meth:`_acknowledged`, not by a done callback each."""
        node.on_acknowledged(self._acknowledged)
        node.before_cut(self._end_turn)

    def _read_in_turn(self) -> None:
        """A connection's message was handled in this pass: end the turn after it."""
        if not self._turn_ending:
            self._turn_ending = True
            asyncio.get_running_loop().call_soon(self._end_turn)

    def _defer(self, endpoint: _WebSocket) -> None:
        self._deferring.append(endpoint)
        self._read_in_turn()

    def _end_turn(self) -> None:
        """The pass that read is over: the messages its reads brought beyond each connection's
        first, a round at a time (every connection's second, then every third...). A read
        takes all a socket holds, so after a busy stretch (a block's cut and answers, ~45 ms
        at 8k orders/s) the sockets were read one after the other, each with all it had:
        the block's order (its answers' order) went socket by socket, and the orders sent
        first, one per connection, were spread over the first half of the block: up to ~20
        ms more for the latency's tail. Round by round, the block is close to the order the
        messages were sent in (the kernel's order of the sockets' first bytes, then one each
        at a time). Nothing else changes: a connection's messages keep their order, each its
        arrival time, and all of them are submitted before the next block is cut (a cut ends
        the turn first: :meth:`Node.before_cut`)."""
        if not self._turn_ending:  # ended already (a cut came first: see Node.before_cut)
            return
        self._turn_ending = False
        self.turn += 1
        endpoints, self._deferring = self._deferring, []
        while endpoints:
            endpoints = [endpoint for endpoint in endpoints if self._take_deferred(endpoint)]

    def _take_deferred(self, endpoint: _WebSocket) -> bool:
        try:
            return endpoint.take_deferred()
        except Exception:  # a bug: logged; the connection's other messages go on
            log.exception("a deferred message failed")
            return bool(endpoint.deferred)

    def _acknowledged(self, futures: list[AckFuture]) -> None:
        """A block's acknowledgements (or a halt's failures), answered in two rounds, each a
        connection at a time in the order of its first request of the round in the block
        (one write per connection and round): first the requests that have waited
        :attr:`first_after_ns` or more, then all the others.

        One round (all of a connection's answers together) answered the block's first orders
        first but not the next ones: the orders sent just after a cut are read together once
        its answers are out, a connection's first of them in the order they were sent, and
        the 100th connection's first order waited for the answers of every other order of
        the 99 connections before it (~10 each: ~15 ms for a block of 1,300), up to ~10 ms
        more than the block's very first order, and those orders made the 99th percentile.
        Within the first round a connection has only the few requests of the interval's
        first part, so its place in the round costs it less than the orders sent before
        its own waited (measured: ``strikechain bench node``; the README's acknowledgement
        path); the second round's orders arrived late in the interval and have time to
        spare."""
        waiters = self.waiters
        first = time.time_ns() - self.first_after_ns + self.urgent_after_ns
        answered: set[_WebSocket] = set()
        for future in futures:
            entry = waiters.get(future)
            if entry is not None and entry[1] <= first and entry[0] not in answered:
                answered.add(entry[0])
                entry[0].resolved(first)
        answered.clear()
        for future in futures:
            entry = waiters.pop(future, None)
            if entry is not None and entry[0] not in answered:
                answered.add(entry[0])
                entry[0].resolved()

    def routes(self) -> list[BaseRoute]:
        """The HTTP routes; the WebSocket is :data:`WEBSOCKET_PATH` served by
        :meth:`open_websocket` (see the module docstring)."""
        return [Route("/api/v2/{access}/{name}", self.http, methods=["GET", "POST"])]

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

    def open_websocket(self, socket: DirectWebSocket) -> _WebSocket | None:
        """A new connection to :data:`WEBSOCKET_PATH` (the server's endpoint factory)."""
        try:
            session = self.hub.open(socket)
        except ApiError:
            socket.close(TRY_AGAIN_LATER)
            return None
        return _WebSocket(self, session)

    def on_message(
        self, session: Session, raw: bytes, received_us: int
    ) -> Coroutine[Any, Any, bytes] | None:
        """Handle one WebSocket message: its reply sent (or queued) now (None), or the
        coroutine that answers it (its reply, encoded: the connection sends it)."""
        request_id: Any = None
        self.metrics.websocket_requests.inc()
        try:
            request = _parse(raw, self.limits)
            request_id = request.id
            params = dict(request.params) if request.params is not None else None
            caller = Caller(session.key, session.client, session)
            if params is not None and "access_token" in params:
                caller.key = self._token_key(str(params.pop("access_token")), session.client)
            self._charge(caller.key, caller.address)
            local = LOCAL_METHODS.get(request.method)
            if local is None:
                return self._call(session, request.method, params, caller, request_id, received_us)
            result, after = self._local(local, request.method, params, caller)
            session.push(_encode(_envelope(request_id, received_us, result=result)))
            if after is not None:
                after()
            return None
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
    ) -> bytes:
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
        return self._local(local, name, params, caller, strings=strings)

    def _local(
        self,
        local: LocalMethod,
        name: str,
        params: dict[str, Any] | None,
        caller: Caller,
        *,
        strings: bool = False,
    ) -> Reply:
        """Run one of the transport's own methods (at once: they never wait)."""
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
        return local.handler(self, caller, value)

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


class _WebSocket:
    """One WebSocket's endpoint (:class:`strikechain.node.server.Endpoint`): its messages in,
    at most :data:`REQUESTS_IN_FLIGHT` of the registry's methods waiting at once (later
    messages wait, in order, and the socket stops being read), answers sent as soon as they
    are built (:meth:`Session.push_all`).

    A request's coroutine is driven here, not by an ``asyncio.Task``: it runs in the read that
    brought its message until it first waits (an order is submitted to the node right there,
    so a message read before a block is cut is in that block), and goes on once what it waits
    for is done. A Task would start it a pass of the loop later and costs a scheduling round
    per step; the coroutines here wait only on the node's futures.

    Answers go out a connection at a time. A block resolves all its orders' futures at once;
    in each of the block's two rounds (:meth:`Api._acknowledged`), when the first of this
    connection's is announced, every request of the connection whose future is done (and, in
    the first round, that waited long enough) goes on (:meth:`resolved`), in the order they
    arrived, and their answers leave with one write: at most two system calls per connection
    and block, not one per order (on loopback each also does the receiver's TCP work: ~20 us,
    the largest single cost of an answer)."""

    def __init__(self, api: Api, session: Session) -> None:
        self.api = api
        self.session = session
        self.loop = asyncio.get_running_loop()
        self.in_flight: dict[Coroutine[Any, Any, bytes], tuple[asyncio.Future[Any] | None, int]]
        self.in_flight = {}
        """The requests waiting (for their order's block), in the order they arrived: what
        each waits for (None: a bare ``yield``, on with the loop's next pass) and from when its
        answer is urgent (see :attr:`Api.urgent_after_ns`)."""
        self.waiting: deque[tuple[bytes, int]] = deque()
        """Messages read while :data:`REQUESTS_IN_FLIGHT` were in flight, with their arrival."""
        self.deferred: deque[tuple[bytes, int]] = deque()
        """Messages of this pass after the connection's first, for the turn's rounds
        (:meth:`Api._end_turn`), with their arrival."""
        self.turn = -1
        """The last of the API's turns in which a message of this connection was handled as
        it was read."""
        self.gone = False

    def received(self, message: bytes) -> None:
        received_us = time.time_ns() // 1_000
        if self.waiting:
            self.waiting.append((message, received_us))
        elif self.deferred:
            self.deferred.append((message, received_us))
        elif len(self.in_flight) >= REQUESTS_IN_FLIGHT:
            self.waiting.append((message, received_us))
            self.session.socket.pause_reading()
        elif self.turn == self.api.turn:  # this pass handled one of ours: the next round
            self.deferred.append((message, received_us))
            self.api._defer(self)
        else:
            self.turn = self.api.turn
            self.api._read_in_turn()
            self._handle(message, received_us)

    def take_deferred(self) -> bool:
        """Handle the next deferred message (or, with too many requests in flight, leave them
        all to wait with reading paused); whether more remain for the next round."""
        deferred = self.deferred
        if self.gone or not deferred:
            deferred.clear()
            return False
        if len(self.in_flight) >= REQUESTS_IN_FLIGHT:
            self.waiting.extend(deferred)
            deferred.clear()
            self.session.socket.pause_reading()
            return False
        self._handle(*deferred.popleft())
        return bool(deferred)

    def _handle(self, message: bytes, received_us: int) -> None:
        pending = self.api.on_message(self.session, message, received_us)
        if pending is not None:
            urgent_ns = received_us * 1_000 + self.api.urgent_after_ns
            answer = self._advance(pending, urgent_ns)
            if answer is not None:
                self.session.push(answer, now=time.time_ns() >= urgent_ns)

    def _advance(self, request: Coroutine[Any, Any, bytes], urgent_ns: int) -> bytes | None:
        """Run ``request`` until it waits (None; it is in flight until it ends) or ends: its
        answer (None if what it waited for was cancelled: it has none)."""
        try:
            awaited = request.send(None)
        except StopIteration as ended:
            self.in_flight.pop(request, None)
            answer: bytes = ended.value
            return answer
        except asyncio.CancelledError:
            self.in_flight.pop(request, None)
            return None
        if awaited is None:  # a bare yield (``asyncio.sleep(0)``): on with the next pass
            self.in_flight[request] = (None, urgent_ns)
            self.loop.call_soon(self._resume, request)
        else:  # an asyncio future (``await`` yields it), as a Task would wait for it
            awaited._asyncio_future_blocking = False
            self.in_flight[request] = (awaited, urgent_ns)
            if isinstance(awaited, AckFuture):  # announced with its block's (Api._acknowledged)
                self.api.waiters[awaited] = (self, urgent_ns)
            else:
                awaited.add_done_callback(lambda _: self.resolved())
        return None

    def resolved(self, until_ns: int | None = None) -> None:
        """What a request waited for is done: on with every request whose wait is over (the
        others of the block's acknowledgements announced after this one find theirs gone
        on); with ``until_ns``, only those urgent by then (the first round of
        :meth:`Api._acknowledged`)."""
        if self.gone:
            return
        answers: list[bytes] = []
        urgent_ns = 0  # the most urgent answer's time (see _send); only read with answers
        for request, (awaited, urgent) in list(self.in_flight.items()):
            if until_ns is not None and urgent > until_ns:
                break  # (in the order they arrived: the later ones are later still)
            if awaited is not None and awaited.done():
                answer = self._advance(request, urgent)
                if answer is not None:
                    urgent_ns = min(urgent_ns, urgent) if answers else urgent
                    answers.append(answer)
        self._send(answers, urgent_ns)

    def _resume(self, request: Coroutine[Any, Any, bytes]) -> None:
        entry = self.in_flight.get(request)
        if self.gone or entry is None:
            return
        answer = self._advance(request, entry[1])
        self._send([] if answer is None else [answer], entry[1])

    def _send(self, answers: list[bytes], urgent_ns: int) -> None:
        """Send ``answers`` with one write (at once if the most urgent's time has come), then
        handle the messages that waited for a slot; read again once none waits."""
        if answers:
            self.session.push_all(answers, now=time.time_ns() >= urgent_ns)
        waiting = self.waiting
        while waiting and len(self.in_flight) < REQUESTS_IN_FLIGHT:
            self._handle(*waiting.popleft())
        if not waiting:
            self.session.socket.resume_reading()

    def writable(self) -> None:
        self.session.drain()

    def lost(self) -> None:
        """The connection is gone: its answers still being built are dropped (the orders
        stand), the session closes (cancel-on-disconnect runs there)."""
        self.gone = True
        self.waiting.clear()
        self.deferred.clear()
        for request in self.in_flight:
            request.close()
        self.in_flight.clear()
        self.api.hub.close(self.session)


# -- the transport's own methods -------------------------------------------------------------


def _auth(api: Api, caller: Caller, params: AuthParams) -> Reply:
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


def _subscribe(api: Api, caller: Caller, params: SubscribeParams, *, private: bool) -> Reply:
    session = caller.session
    assert session is not None
    names = api.hub.subscribe(session, params.channels, private=private)
    return names, lambda: api.hub.send_snapshots(session, names)


def _public_subscribe(api: Api, caller: Caller, params: SubscribeParams) -> Reply:
    return _subscribe(api, caller, params, private=False)


def _private_subscribe(api: Api, caller: Caller, params: SubscribeParams) -> Reply:
    return _subscribe(api, caller, params, private=True)


def _unsubscribe(api: Api, caller: Caller, params: SubscribeParams) -> Reply:
    assert caller.session is not None
    return api.hub.unsubscribe(caller.session, params.channels), None


def _unsubscribe_all(api: Api, caller: Caller, params: NoParams) -> Reply:
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


def _enable_cancel_on_disconnect(
    api: Api, caller: Caller, params: CancelOnDisconnectParams
) -> Reply:
    return _set_cancel_on_disconnect(caller, params, True)


def _disable_cancel_on_disconnect(
    api: Api, caller: Caller, params: CancelOnDisconnectParams
) -> Reply:
    return _set_cancel_on_disconnect(caller, params, False)


def _get_cancel_on_disconnect(api: Api, caller: Caller, params: CancelOnDisconnectParams) -> Reply:
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


def _encode(envelope: dict[str, Any]) -> bytes:
    return ENCODER.encode(envelope)
