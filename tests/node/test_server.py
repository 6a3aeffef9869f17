"""The coalescing WebSocket transport (:mod:`strikechain.node.server`): a turn's first writes go
out at once, later ones are gathered per connection and written once at the turn's end, in
order; close writes what waits, abort drops it; and a real WebSocket client sees every frame
of a burst in order through it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol

from strikechain.node import server
from strikechain.node.server import EAGER_WRITES, FLUSH_BYTES, CoalescingTransport, server_config
from tests.node.test_serve import free_port


class Recording(asyncio.Transport):
    """A transport that keeps each write (one ``send`` each, on a socket)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_a_turns_first_writes_go_out_at_once_the_rest_once_at_its_end() -> None:
    asyncio.run(_test_a_turns_first_writes_go_out_at_once_the_rest_once_at_its_end())


async def _test_a_turns_first_writes_go_out_at_once_the_rest_once_at_its_end() -> None:
    loop = asyncio.get_running_loop()
    raws = [Recording(), Recording()]
    wrapped = [CoalescingTransport(raw, loop) for raw in raws]
    for index in range(EAGER_WRITES):
        wrapped[index % 2].write(b"e%d" % index)
    assert sum(len(raw.writes) for raw in raws) == EAGER_WRITES  # each its own write
    for index in range(6):
        wrapped[index % 2].write(b"late%d," % index)
    assert sum(len(raw.writes) for raw in raws) == EAGER_WRITES  # gathered
    assert wrapped[0].get_write_buffer_size() == len(b"late0,late2,late4,")
    await next_turn()
    assert raws[0].writes[-1] == b"late0,late2,late4,"  # one write per connection, in order
    assert raws[1].writes[-1] == b"late1,late3,late5,"
    # A new turn: eager again.
    wrapped[0].write(b"fresh")
    assert raws[0].writes[-1] == b"fresh"


def test_a_connection_with_frames_waiting_keeps_its_order() -> None:
    asyncio.run(_test_a_connection_with_frames_waiting_keeps_its_order())


async def _test_a_connection_with_frames_waiting_keeps_its_order() -> None:
    loop = asyncio.get_running_loop()
    busy, other = Recording(), Recording()
    first, second = CoalescingTransport(busy, loop), CoalescingTransport(other, loop)
    for _index in range(EAGER_WRITES):
        second.write(b"x")
    first.write(b"1")  # past the eager budget: waits
    server._turn_of(loop).writes = 0  # even with budget back, a waiting frame goes first
    first.write(b"2")
    assert busy.writes == []
    await next_turn()
    assert busy.writes == [b"12"]


def test_many_waiting_bytes_are_written_before_the_turn_ends() -> None:
    asyncio.run(_test_many_waiting_bytes_are_written_before_the_turn_ends())


async def _test_many_waiting_bytes_are_written_before_the_turn_ends() -> None:
    loop = asyncio.get_running_loop()
    raw = Recording()
    transport = CoalescingTransport(raw, loop)
    server._turn_of(loop).writes = EAGER_WRITES
    chunk = b"z" * 1024
    for _ in range(FLUSH_BYTES // len(chunk)):
        transport.write(chunk)
    assert raw.writes == [chunk * (FLUSH_BYTES // len(chunk))]
    await next_turn()


def test_close_writes_what_waits_abort_drops_it_and_a_closing_socket_takes_nothing() -> None:
    asyncio.run(_test_close_writes_what_waits_abort_drops_it_and_a_closing_socket_takes_nothing())


async def _test_close_writes_what_waits_abort_drops_it_and_a_closing_socket_takes_nothing() -> None:
    loop = asyncio.get_running_loop()
    server._turn_of(loop).writes = EAGER_WRITES
    closed, aborted, gone = Recording(), Recording(), Recording()
    for raw, finish in ((closed, "close"), (aborted, "abort")):
        transport = CoalescingTransport(raw, loop)
        transport.write(b"bye")
        getattr(transport, finish)()
    assert closed.writes == [b"bye"]
    assert closed.closing
    assert aborted.writes == []
    assert aborted.aborted
    transport = CoalescingTransport(gone, loop)
    transport.write(b"late")
    gone.closing = True
    await next_turn()
    assert gone.writes == []


def test_a_client_receives_a_burst_whole_and_in_order() -> None:
    asyncio.run(_a_burst())


async def _a_burst() -> None:
    """A WebSocket that answers a message with a burst of that many numbered frames."""

    async def burst(websocket: WebSocket) -> None:
        await websocket.accept()
        count = int(await websocket.receive_text())
        for index in range(count):
            await websocket.send_text(f"{index}")
        await websocket.receive_text()

    port = free_port()
    app = Starlette(routes=[WebSocketRoute("/ws", burst)])
    uv = uvicorn.Server(server_config(app, "127.0.0.1", port))
    task = asyncio.create_task(uv.serve())
    while not uv.started:
        await asyncio.sleep(0.01)
    try:
        url = f"ws://127.0.0.1:{port}/ws"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket:
            await socket.send_str("500")
            received = [int((await socket.receive()).data) for _ in range(500)]
            assert received == list(range(500))
            await socket.send_str("done")
    finally:
        uv.should_exit = True
        await task


@contextlib.asynccontextmanager
async def direct_websocket(
    on_message: Callable[[Any, bytes], None], **options: Any
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A node server (``server_config(..., **options)``) whose ``/direct`` path is a direct
    WebSocket calling ``on_message(socket, message)`` for each message, and a raw client
    connection to it past the handshake."""

    class Endpoint:
        def __init__(self, socket: Any) -> None:
            self.socket = socket

        def received(self, message: bytes) -> None:
            on_message(self.socket, message)

        def writable(self) -> None:
            return None

        def lost(self) -> None:
            return None

    app = Starlette()
    app.state.direct_websockets = {"/direct": Endpoint}
    port = free_port()
    uv = uvicorn.Server(server_config(app, "127.0.0.1", port, **options))
    task = asyncio.create_task(uv.serve())
    while not uv.started:
        await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"GET /direct HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        yield reader, writer
    finally:
        writer.close()
        uv.should_exit = True
        await task


def client_frame(payload: bytes, *, opcode: int = 0x1, fin: bool = True) -> bytes:
    """A client's (masked) frame."""
    mask = b"\x0f\xa5\x5a\xf0"
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        head = bytes([first, 0x80 | len(payload)])
    else:
        head = bytes([first, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return head + mask + masked


def test_a_direct_websocket_gets_every_message_however_its_frames_arrive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[bytes] = []  # what reached websockets' parser
    parse = WebSocketsSansIOProtocol.data_received

    def spy(self: Any, data: bytes) -> None:
        parsed.append(bytes(data))
        parse(self, data)

    monkeypatch.setattr(WebSocketsSansIOProtocol, "data_received", spy)
    asyncio.run(_direct_frames(parsed))


async def _direct_frames(parsed: list[bytes]) -> None:
    """Whole text frames are handed over as they are read (several in one read, with a long
    length), and whatever else goes to websockets' parser as before: a ping between them, a
    frame cut by the reads, a fragmented message, one too big (closed with 1009)."""
    received: list[bytes] = []
    direct = direct_websocket(lambda _, message: received.append(message), ws_max_size=1_000)
    async with direct as (reader, writer):
        long = b"L" * 300
        cut = client_frame(b"cut in two")
        writer.write(
            client_frame(b"one")
            + client_frame(long)
            + client_frame(b"ping", opcode=0x9)
            + client_frame(b"two")
            + cut[:5]
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(cut[5:] + client_frame(b"frag", fin=False) + client_frame(b"mented", opcode=0))
        writer.write(client_frame(b"three"))
        await writer.drain()
        expected = [b"one", long, b"two", b"cut in two", b"fragmented", b"three"]
        for _ in range(200):
            if len(received) >= len(expected):
                break
            await asyncio.sleep(0.01)
        assert received == expected
        handshake = parsed.pop(0)
        assert handshake.startswith(b"GET /direct")
        # The whole text frames went straight to the endpoint, the rest to the parser:
        assert parsed[0] == client_frame(b"ping", opcode=0x9) + client_frame(b"two") + cut[:5]
        assert parsed[1].startswith(cut[5:])
        pong = await reader.readexactly(6)
        assert pong == b"\x8a\x04ping"
        writer.write(client_frame(b"x" * 1_001))  # past ws_max_size
        await writer.drain()
        close = await reader.readexactly(4)
        assert close[0] == 0x88
        assert int.from_bytes(close[2:4], "big") == 1009
        assert received == expected


def test_a_direct_websockets_frames_are_what_websockets_makes_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[bytes] = []  # frames websockets' own send_text made
    send_text = Protocol.send_text

    def spy(self: Any, data: bytes, fin: bool = True) -> None:
        made.append(bytes(data))
        send_text(self, data, fin)

    monkeypatch.setattr(Protocol, "send_text", spy)
    asyncio.run(_sent_frames())
    assert made == []  # every one made by the node's own framing


async def _sent_frames() -> None:
    """Messages an endpoint sends (``send_texts``: its answers, its notifications) arrive as
    the text frames websockets would make, whatever their length (7-bit, 16-bit and 64-bit
    lengths), in order, after a pong queued before them."""
    sizes = [0, 1, 125, 126, 127, 65_535, 65_536, 70_000]
    messages = [bytes([ord("a") + index]) * size for index, size in enumerate(sizes)]

    def send(socket: Any, message: bytes) -> None:
        socket.send_texts(messages[:3])
        socket.send_texts(messages[3:], now=True)

    async with direct_websocket(send) as (reader, writer):
        writer.write(client_frame(b"ping", opcode=0x9) + client_frame(b"go"))
        await writer.drain()
        expected = b"\x8a\x04ping"
        for message in messages:
            frame = Frame(Opcode.TEXT, message)
            expected += frame.serialize(mask=False, extensions=[])
        assert await asyncio.wait_for(reader.readexactly(len(expected)), 10) == expected
