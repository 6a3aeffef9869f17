"""The node's HTTP server: uvicorn, its WebSocket API served without ASGI, writes coalesced.

Direct WebSockets. An app may name paths whose WebSockets it serves itself
(``app.state.direct_websockets``: path -> a factory of :class:`Endpoint`; the node's API does
for ``/ws/api/v2``). :class:`NodeWebSocketProtocol` accepts the handshake of such a path and
from then on hands each whole message to the endpoint, in the event loop's read callback, and
the endpoint writes its frames through the protocol (:class:`DirectWebSocket`). Through ASGI an
order's message went from the socket into a queue, woke the connection's reader task, paused
and resumed the socket's reading (two ``epoll_ctl`` calls a message), and each answer went
back through Starlette's and uvicorn's send coroutines: about 40% of the node's CPU per order
when orders arrive one by one, as they do at a steady rate. Flow control stays: the endpoint
pauses reading while it has too much to do, and the transport's high-water mark
(``pause_writing``) tells it to queue instead of write. Other paths go through ASGI as before.

uvicorn's WebSocket protocol writes every frame to the socket as it is sent. On the node a
block answers hundreds of orders in one turn of the event loop, a dozen or more per
connection, and each write is a ``send`` system call that on loopback also does the receiver's
TCP work inline: it was the largest single cost of an order's answer (about 20 us of ~110 us).

:class:`CoalescingTransport` gathers a connection's frames and writes them with one call at
the end of the loop's turn (or as soon as :data:`FLUSH_BYTES` are waiting), in the order they
were sent. But the first :data:`EAGER_WRITES` frames of a turn, over all connections, go out at
once as before: a block answers its transactions in their order, and the first ones are the
orders that arrived first and waited longest for the block, so their answers set the latency's
tail; the later answers, to orders that arrived just before the block was cut, have time to
spare and are the ones gathered. Nothing else changes: the frames and their order are the
protocol's own, flow control (``pause_writing``) still comes from the real transport, and a
close writes what is waiting first.

:func:`server_config` is the one place the node's uvicorn is configured (``strikechain serve``,
``strikechain bench node`` and the tests that serve the API all use it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol
from urllib.parse import unquote

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State
from websockets.speedups import apply_mask

FLUSH_BYTES: Final = 64 * 1024
"""Waiting bytes of one connection that are written at once rather than at the turn's end."""
EAGER_WRITES: Final = 128
"""Frames of a turn of the loop, over all connections, written at once (not gathered)."""
FIN_TEXT: Final = 0x81
"""A frame's first byte: the final (only) frame of a text message, no extension bits."""
MASKED: Final = 0x80
"""The mask bit of a frame's second byte (every client frame has it)."""
DIRECT_WEBSOCKETS: Final = "direct_websockets"
"""The attribute of an app's ``state`` naming the paths it serves itself (path -> factory)."""
CLOSE_TIMEOUT_S: Final = 2.0
"""After a close frame the endpoint sent, how long the peer has to answer before the socket
is dropped (a peer that does not read, the slow consumer a close is for, never answers)."""


class _Turn:
    """The writes of the current turn of the event loop, over every connection: how many went
    out at once, and the transports that wait for the turn's end."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.writes = 0
        self.waiting: list[CoalescingTransport] = []
        self.scheduled = False

    def count(self) -> None:
        self.writes += 1
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.end)

    def wait(self, transport: CoalescingTransport) -> None:
        self.waiting.append(transport)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.end)

    def end(self) -> None:
        waiting, self.waiting = self.waiting, []
        self.writes = 0
        self.scheduled = False
        for transport in waiting:
            transport.flush()


_TURNS: dict[asyncio.AbstractEventLoop, _Turn] = {}


def _turn_of(loop: asyncio.AbstractEventLoop) -> _Turn:
    turn = _TURNS.get(loop)
    if turn is None:
        for stale in [other for other in _TURNS if other.is_closed()]:
            del _TURNS[stale]
        turn = _TURNS[loop] = _Turn(loop)
    return turn


class CoalescingTransport(asyncio.Transport):
    """A transport whose writes past the turn's eager ones are gathered until the end of the
    event loop's turn; everything else is the wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._turn = _turn_of(loop)
        self._waiting: list[bytes] = []
        self._waiting_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        turn = self._turn
        if not self._waiting and turn.writes < EAGER_WRITES:
            turn.count()
            self._transport.write(data)
            return
        if not self._waiting:
            turn.wait(self)
        self._waiting.append(bytes(data))
        self._waiting_bytes += len(data)
        if self._waiting_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write what is waiting, now (dropped if the connection is already closing: the
        socket is gone, as a direct write would have found)."""
        if not self._waiting:
            return
        data = self._waiting[0] if len(self._waiting) == 1 else b"".join(self._waiting)
        self._waiting.clear()
        self._waiting_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._waiting.clear()
        self._waiting_bytes = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._waiting_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class CoalescingWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default (sans-I/O ``websockets``) WebSocket protocol on a
    :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(CoalescingTransport(transport, self.loop))


class DirectWebSocket(Protocol):
    """What an :class:`Endpoint` may do with its connection."""

    @property
    def client_host(self) -> str: ...

    def can_write(self) -> bool:
        """Whether a message written now goes to the socket (False: the peer is not reading
        fast enough, or the connection is closing): queue it and wait for
        :meth:`Endpoint.writable`."""
        ...

    def send_texts(self, messages: Sequence[bytes], *, now: bool = False) -> None:
        """Send text messages (UTF-8 bytes), in order, with one write; ``now``: to the socket
        at once (with what was gathered before them), not at the end of the loop's turn
        (:class:`CoalescingTransport`)."""
        ...

    def close(self, code: int) -> None:
        """Start the closing handshake with ``code``; the socket is dropped if the peer does not
        answer within :data:`CLOSE_TIMEOUT_S`."""
        ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Endpoint(Protocol):
    """The app's side of a direct WebSocket."""

    def received(self, message: bytes) -> None:
        """One whole message (text or binary) arrived."""
        ...

    def writable(self) -> None:
        """The socket takes writes again (see :meth:`DirectWebSocket.can_write`)."""
        ...

    def lost(self) -> None:
        """The connection is gone (called once)."""
        ...


EndpointFactory = Callable[[DirectWebSocket], "Endpoint | None"]
"""Opens the endpoint of a new connection, or closes it (``DirectWebSocket.close``) and
returns None."""


class NodeWebSocketProtocol(CoalescingWebSocketProtocol):
    """:class:`CoalescingWebSocketProtocol` that serves the app's direct paths itself (see the
    module docstring) and is their :class:`DirectWebSocket`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        state = getattr(self.config.app, "state", None)
        self._factories: dict[str, EndpointFactory] = getattr(state, DIRECT_WEBSOCKETS, None) or {}
        self.endpoint: Endpoint | None = None

    # -- uvicorn's protocol, for the direct paths ---------------------------------------------

    def handle_connect(self, event: Request) -> None:
        factory = self._factories.get(unquote(event.path.partition("?")[0]))
        if factory is None:
            super().handle_connect(event)
            return
        self.request = event
        self.handshake_initiated = self.handshake_complete = True
        response = self.conn.accept(event)
        self.conn.send_response(response)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if response.status_code != 101:  # not a valid WebSocket handshake
            self.close_sent = True
            self.transport.close()
            return
        self.start_keepalive()
        self.endpoint = factory(self)

    def data_received(self, data: bytes) -> None:
        endpoint = self.endpoint
        if endpoint is not None:
            conn = self.conn
            if (
                conn.state is State.OPEN
                and not conn.reader.buffer
                and conn.current_size is None
                and conn.parser_exc is None
                and not conn.extensions
            ):
                data = self._whole_text_frames(endpoint, data)
                if not data:
                    return
        super().data_received(data)

    def _whole_text_frames(self, endpoint: Endpoint, data: bytes) -> bytes:
        """Hand the whole, unfragmented, masked text frames at the start of ``data`` to the
        endpoint, as websockets' parser and :meth:`send_receive_event_to_app` would; what is
        left (any other frame, one cut by the read, or too big) is for the parser, between
        two frames as it was. An order's message is one such frame: parsed by websockets'
        generators it cost ~10 us a read, most of what arriving one by one costs more than in
        a burst."""
        conn = self.conn
        limit = conn.max_message_size
        if conn.max_fragment_size is not None:
            limit = conn.max_fragment_size if limit is None else min(limit, conn.max_fragment_size)
        start, end = 0, len(data)
        while end - start >= 6:
            if data[start] != FIN_TEXT:  # (fin, no extension bits, text)
                break
            length = data[start + 1] ^ MASKED
            offset = start + 2
            if length >= 126:  # not masked (a protocol error), or a long or 64-bit length
                if length != 126 or end - offset < 2:
                    break
                length = int.from_bytes(data[offset : offset + 2], "big")
                offset += 2
            if limit is not None and length > limit:
                break
            stop = offset + 4 + length
            if stop > end:
                break
            payload = apply_mask(data[offset + 4 : stop], data[offset : offset + 4])
            start = stop
            if not self.close_sent:
                endpoint.received(payload)
        return data[start:] if start else data

    def send_receive_event_to_app(self) -> None:
        endpoint = self.endpoint
        if endpoint is None:
            super().send_receive_event_to_app()
            return
        frames, self.frames = self.frames, []
        if not self.close_sent:
            endpoint.received(frames[0] if len(frames) == 1 else b"".join(frames))

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.endpoint is not None:
            self.endpoint.writable()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        endpoint, self.endpoint = self.endpoint, None
        if endpoint is not None:
            endpoint.lost()

    # -- DirectWebSocket -----------------------------------------------------------------------

    @property
    def client_host(self) -> str:
        return self.client[0] if self.client else ""

    def can_write(self) -> bool:
        return self.writable.is_set() and not self.close_sent and not self.transport.is_closing()

    def send_texts(self, messages: Sequence[bytes], *, now: bool = False) -> None:
        if self.close_sent or self.transport.is_closing():
            return
        conn = self.conn
        if conn.state is State.OPEN and not conn.extensions and not conn.expect_continuation_frame:
            data = _text_frames(messages, conn.data_to_send())
        else:
            for message in messages:
                conn.send_text(message)
            data = b"".join(conn.data_to_send())
        transport = self.transport
        transport.write(data)
        if now and isinstance(transport, CoalescingTransport):
            transport.flush()

    def close(self, code: int) -> None:
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.send_close(code)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.close_timer = self.loop.call_later(CLOSE_TIMEOUT_S, self.transport.abort)
        self.resume_reading()  # to read the peer's answer

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()


def _text_frames(messages: Sequence[bytes], before: list[bytes]) -> bytes:
    """``before`` (what the connection has to send already), then each message as one final,
    unmasked text frame with no extension bits: the frames websockets' ``send_text`` makes on
    an open connection without extensions (a server's frames are not masked), without its
    ``Frame`` object and checks (~2 us of each answer's ~12)."""
    parts = before
    for message in messages:
        length = len(message)
        if length < 126:
            parts.append(bytes((FIN_TEXT, length)))
        elif length < 1 << 16:
            parts.append(_LENGTH_16 + length.to_bytes(2, "big"))
        else:
            parts.append(_LENGTH_64 + length.to_bytes(8, "big"))
        parts.append(message)
    return b"".join(parts)


_LENGTH_16: Final = bytes((FIN_TEXT, 126))
_LENGTH_64: Final = bytes((FIN_TEXT, 127))


def server_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for the node's ``app``: :class:`NodeWebSocketProtocol`, no
    logging configuration of its own (the node's applies) and no lifespan events."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws=NodeWebSocketProtocol,
        log_config=None,
        lifespan="off",
        **options,
    )
