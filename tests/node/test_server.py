"""The coalescing WebSocket transport (:mod:`strikechain.node.server`): a turn's first writes go
out at once, later ones are gathered per connection and written once at the turn's end, in
order; close writes what waits, abort drops it; and a real WebSocket client sees every frame
of a burst in order through it."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

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
