"""The node's HTTP server: uvicorn, with its WebSocket writes coalesced per connection.

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
from typing import Any, Final

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

FLUSH_BYTES: Final = 64 * 1024
"""Waiting bytes of one connection that are written at once rather than at the turn's end."""
EAGER_WRITES: Final = 128
"""Frames of a turn of the loop, over all connections, written at once (not gathered)."""


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


def server_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for the node's ``app``: the coalescing WebSocket protocol, no
    logging configuration of its own (the node's applies) and no lifespan events."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws=CoalescingWebSocketProtocol,
        log_config=None,
        lifespan="off",
        **options,
    )
