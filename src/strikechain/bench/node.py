"""``strikechain bench node``: the live node's order path end to end, over real sockets.

A :class:`~strikechain.node.service.Node` as ``strikechain serve`` runs it (100 ms blocks, the
block log synced per block, settlement on the embedded chain with the batcher, a batch every
:data:`BATCH_BLOCKS` blocks) and its API on uvicorn on 127.0.0.1, in this process.
:data:`ACCOUNTS` accounts are funded on chain (mint and deposit, relayed into the engine as
``Deposit`` transactions) and an index is reported every half second. Then a load generator,
in a child process (on a core of its own when the runner left one:
:func:`~strikechain.bench.runner.allowed_cores`; otherwise on the node's core, which
``load_generator_cores`` = 0 says), drives the API:

- ``ws_orders_per_s``: :data:`CONNECTIONS` authenticated WebSockets, each with
  :data:`IN_FLIGHT` requests outstanding (the node serves 32 at once per connection), sending
  ``private/buy``/``private/sell`` post-only limit orders spread over 100 ticks either side of the
  index (so nothing crosses and the book stays bounded) and, once a sender has
  :data:`RESTING_PER_SENDER` orders resting, ``private/cancel`` of its oldest: every
  acknowledged order action (place or cancel) counts; ``ws_placements_per_s`` the placements
  alone. An acknowledgement is the node's answer after the order's block is in the log.
  ``ws_node_cpu_us_per_order``: the node process's CPU time over that phase per action (the
  cost the rate is the inverse of, and far steadier than the rate on a noisy host);
  ``ws_node_cpu_share`` the share of a core it used (near 1: the node was the bottleneck),
  ``ws_load_generator_cpu_share`` the load generator's (near 1: it was, and the rate is a
  bound on the node's, not its measure).
- ``http_orders_per_s``: the same mix over HTTP (``POST /api/v2/private/...``), every request
  signed with its API key (``deri-hmac-sha256``), :data:`HTTP_CONCURRENCY` requests at once.
- ``ack_latency_p50_ms`` / ``_p99_ms``: WebSocket orders sent at a steady rate,
  half the measured ``ws_orders_per_s`` (``latency_offered_per_s``), from the send to the
  arrival of the answer's bytes (:class:`_TimedSocket`, its own connections);
  ``ack_node_latency_p50_ms`` / ``_p99_ms`` the node's own part of the same answers (their
  envelopes' ``usDiff``: message read to answer built), the rest being the sockets and the load
  generator: ``ack_inbound_*`` from the send to the node's ``usIn`` (mostly the node still busy
  with the previous block), ``ack_outbound_*`` from its ``usOut`` to the arrival;
  ``ack_slowest_{inbound,node,outbound}_ms`` the three parts' means over the slowest 1% of
  answers (what the 99th percentile is made of). ``latency_node_cpu_share`` and
  ``latency_load_generator_cpu_share``: the share of a core each used in this phase.
  A block is cut every 100 ms and an order is answered with its block, so about 50 ms is the
  expected median and the target for the 99th percentile is the interval + 20 ms.
- ``eip712_verifications_per_s``: the node's check of a signed order
  (:func:`strikechain.node.api.signed.check_signature`: expiry, EIP-712 digest, secp256k1
  recovery, nonce memory) on :data:`VERIFICATIONS` distinct signed orders, in this process (one
  core); ``eip712_eth_account_verifications_per_s`` the reference: eth-account's generic path
  (``encode_typed_data`` of the full message, then ``Account.recover_message``) on the same
  orders.

Honest limits: the node, its HTTP server and the settlement batcher share one core; with two
cores or more the load generator (its JSON encoding and sockets) has another one, with one it
takes its share of the node's. Targets (the issue): ``ws_orders_per_s`` >= 10,000,
``ack_latency_p99_ms`` <= 120, ``eip712_verifications_per_s`` >= 10,000.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import selectors
import socket
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from strikechain.bench.runner import allowed_cores

ACCOUNTS = 16
CONNECTIONS = 128
"""With ``IN_FLIGHT`` each: 4,096 orders in flight. An order waits for its block, so a closed
loop carries at most its orders in flight per block interval or two (an answer that comes
after the next cut misses it): 64 connections (2,048) capped the measured rate near 10k/s
with the node's core not busy (``ws_node_cpu_share`` 0.8)."""
IN_FLIGHT = 32
HTTP_CONCURRENCY = 256
PHASE_S = 5.0
"""Seconds of each load phase (WebSocket maximum, HTTP maximum, WebSocket at half rate)."""
WARMUP_S = 1.0
RESTING_PER_SENDER = 8
VERIFICATIONS = 10_000
ETH_ACCOUNT_VERIFICATIONS = 500
BLOCK_INTERVAL_MS = 100.0
SETTLEMENT = True
BATCH_BLOCKS = 25
"""A settlement batch closes every this many blocks (2.5 s; a node's default is 600): so every
phase holds batch closes (the state root, the posted data compressed and committed on the
chain thread), which the default's one a minute would leave out of a 5 s phase."""

USDC: Final = 1_000_000
INDEX_USDC: Final = 100_000
TICK: Final = 0.5
PERP: Final = "BTC_USDC-PERPETUAL"
DEPOSIT_USDC: Final = 1_000_000
REPORT_INTERVAL_S: Final = 0.5


# --- the node side ----------------------------------------------------------------------------


def _config(directory: Path, reporter: str) -> Any:
    from strikechain.node.config import parse_config

    return parse_config(
        f"""
[node]
data_dir = "{directory / "data"}"
block_interval_ms = {BLOCK_INTERVAL_MS}

[settlement]
enabled = {"true" if SETTLEMENT else "false"}
batch_blocks = {BATCH_BLOCKS}

[[underlyings]]
name = "BTC"
reporters = ["{reporter}"]
quorum = 1

[[instruments]]
underlying = "BTC"
"""
    )


def _keys(index: int) -> bytes:
    from strikechain.engine.signing import keccak256

    return keccak256(f"bench-node-account-{index}".encode())


async def _report_prices(node: Any, key: bytes, reporter: str) -> None:
    from strikechain.engine.oracle import OracleReport, sign_report

    domain = node.config.venue().signing
    while True:
        report = OracleReport(
            account=reporter,
            underlying="BTC",
            timestamp_ns=node.clock(),
            price=INDEX_USDC * USDC,
            confidence=USDC,
        )
        with contextlib.suppress(Exception):
            node.submit_nowait(sign_report(report, key, domain))
        await asyncio.sleep(REPORT_INTERVAL_S)


async def _fund(node: Any, accounts: list[str]) -> None:
    """Deposits relayed from the chain (settlement on), or submitted as the relay would."""
    from strikechain.engine.txs import Deposit
    from strikechain.node.service import OPERATOR_ACCOUNT

    amount = DEPOSIT_USDC * USDC
    settlement = node.settlement
    if settlement is not None:

        def deposit_all() -> None:
            for account in accounts:
                settlement.mint(account, amount)
                settlement.deposit(account, "BTC", amount)

        await node.on_chain(deposit_all)
    else:
        for account in accounts:
            node.submit_nowait(
                Deposit(
                    account=OPERATOR_ACCOUNT,
                    deposit_id=node.engine.next_deposit_id + accounts.index(account),
                    beneficiary=account,
                    underlying="BTC",
                    amount=amount,
                )
            )
    for _ in range(1_200):
        if node.engine.next_deposit_id > len(accounts):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the deposits were not credited")


class _CpuSamples:
    """The node process's CPU time (every thread; the settlement chain's own process not
    included), sampled on the system-wide monotonic clock the load generator's phases are timed
    with: the CPU an order costs the node, which the host's noise moves far less than the
    rates."""

    PERIOD_S: Final = 0.05

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cpu: list[float] = []

    async def sample(self) -> None:
        while True:
            self.times.append(time.monotonic())
            self.cpu.append(time.process_time())
            await asyncio.sleep(self.PERIOD_S)

    def between(self, start: float, end: float) -> float:
        """CPU seconds from ``start`` to ``end`` (linear between samples)."""
        at = np.interp([start, end], self.times, self.cpu)
        return float(at[1] - at[0])


def _indexed(node: Any) -> bool:
    oracle = node.engine.underlyings["BTC"].oracle
    return oracle is not None and bool(oracle.index)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _serve_and_load(directory: Path) -> dict[str, float]:
    import uvicorn

    from strikechain.engine.signing import address_of, keccak256
    from strikechain.node.api.limits import ApiLimits
    from strikechain.node.http import build_app
    from strikechain.node.keys import KeyLimits, KeyStore, Scope, ScryptParams
    from strikechain.node.server import server_config
    from strikechain.node.service import Node

    reporter_key = keccak256(b"bench-node-reporter")
    reporter = address_of(reporter_key)
    node = Node(_config(directory, reporter))
    await node.start()
    keys = KeyStore(
        directory / "keys.sqlite",
        kdf=ScryptParams(n=16, r=1, p=1),
        limits=KeyLimits(nonces_per_key_max=1_000_000, nonces_max=4_000_000),
    )
    many = 10**9
    limits = ApiLimits(
        key_rate_per_s=many, key_burst=many, ip_rate_per_s=many, ip_burst=many,
        send_queue_max=100_000,
    )  # fmt: skip
    tasks: list[asyncio.Task[Any]] = []
    try:
        accounts = [address_of(_keys(i)) for i in range(ACCOUNTS)]
        credentials = [keys.create(account, (Scope.READ, Scope.TRADE)) for account in accounts]
        tasks.append(asyncio.create_task(_report_prices(node, reporter_key, reporter)))
        await _fund(node, accounts)
        while not _indexed(node):
            await asyncio.sleep(0.05)
        port = _free_port()
        app = build_app(node, None, keys, limits)
        server = uvicorn.Server(server_config(app, "127.0.0.1", port, ws_max_size=1 << 20))
        serving = asyncio.create_task(server.serve())
        tasks.append(serving)
        while not server.started:
            await asyncio.sleep(0.01)
        height = node.engine.height
        started = time.perf_counter()
        cpu = _CpuSamples()
        tasks.append(asyncio.create_task(cpu.sample()))
        results, cores = await _load_in_child(f"http://127.0.0.1:{port}", credentials)
        seconds = time.perf_counter() - started
        window_s = results["ws_window_end_s"] - results["ws_window_start_s"]
        node_cpu_s = cpu.between(results["ws_window_start_s"], results["ws_window_end_s"])
        results["ws_node_cpu_us_per_order"] = node_cpu_s * 1e6 / max(results["ws_actions"], 1.0)
        results["ws_node_cpu_share"] = node_cpu_s / window_s
        latency_window = results["latency_window_start_s"], results["latency_window_end_s"]
        results["latency_node_cpu_share"] = cpu.between(*latency_window) / (
            latency_window[1] - latency_window[0]
        )
        for key in (
            "ws_window_start_s", "ws_window_end_s", "ws_actions",
            "latency_window_start_s", "latency_window_end_s",
        ):  # fmt: skip
            del results[key]
        results["load_generator_cores"] = float(cores)
        results["blocks_per_s_under_load"] = (node.engine.height - height) / seconds
        results["node_halted"] = float(node.halted is not None)
        server.should_exit = True
        await serving
        return results
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await node.stop()
        keys.close()


async def _load_in_child(
    base_url: str, credentials: list[tuple[str, str]]
) -> tuple[dict[str, float], int]:
    """Run :func:`_load_main` in a spawned process, on a core of its own if there is one."""
    pinned = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    spare = [core for core in allowed_cores() if core not in pinned]
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    plan = {
        "base_url": base_url,
        "credentials": credentials,
        "core": spare[0] if spare else None,
        "sizes": {
            "connections": CONNECTIONS,
            "in_flight": IN_FLIGHT,
            "http_concurrency": HTTP_CONCURRENCY,
            "phase_s": PHASE_S,
            "warmup_s": WARMUP_S,
            "resting": RESTING_PER_SENDER,
        },
    }
    process = context.Process(target=_load_main, args=(plan, sender), daemon=True)
    process.start()
    sender.close()
    try:
        answer: Any = await asyncio.to_thread(receiver.recv)
    finally:
        await asyncio.to_thread(process.join, 30)
    if isinstance(answer, str):
        raise RuntimeError(f"the load generator failed: {answer}")
    return answer, 1 if spare else 0


# --- the load generator (child process) -------------------------------------------------------


def _load_main(plan: dict[str, Any], sender: Any) -> None:
    core = plan["core"]
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    try:
        loop_factory = lambda: asyncio.SelectorEventLoop(_TimedSelector())  # noqa: E731
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            sender.send(runner.run(_load(plan)))
    except BaseException as error:
        import traceback

        sender.send(f"{error!r}\n{traceback.format_exc()}")
        raise


class _Sender:
    """One stream of order actions for one account: alternate buys and sells around the index,
    and cancel the oldest resting order once ``resting`` rest."""

    def __init__(self, number: int, resting: int) -> None:
        self.number = number
        self.resting = resting
        self.open: deque[str] = deque()
        self.count = 0

    def next(self) -> tuple[str, dict[str, Any]]:
        if len(self.open) >= self.resting:
            return "private/cancel", {"order_id": self.open.popleft()}
        self.count += 1
        offset = TICK * (1 + (self.number * 7 + self.count) % 100)
        buy = (self.count + self.number) % 2 == 0
        price = INDEX_USDC - offset if buy else INDEX_USDC + offset
        params = {"instrument_name": PERP, "amount": 0.001, "price": price, "post_only": True}
        return ("private/buy" if buy else "private/sell"), params

    def answered(self, method: str, envelope: Any) -> bool:
        result = envelope.get("result")
        if result is None:
            return False
        if method != "private/cancel" and result["order"]["order_state"] == "open":
            self.open.append(result["order"]["order_id"])
        return True


class _Tally:
    def __init__(self) -> None:
        self.actions = 0
        self.placements = 0
        self.errors: dict[int, int] = {}
        self.latencies: list[float] = []
        self.node_latencies: list[float] = []
        """The node's own part of each: its envelope's ``usDiff`` (message read to answer
        built), without the sockets and the load generator's scheduling."""
        self.inbound: list[float] = []
        """Send (wall clock) to the node's ``usIn``: sockets and the node's read queue."""
        self.outbound: list[float] = []
        """The node's ``usOut`` to the answer's arrival (wall clock): its write, the sockets
        and the load generator's read."""
        self.counting = False
        self.window = (0.0, 0.0)
        """When counting started and stopped, on the system-wide monotonic clock."""
        self.cpu_s = 0.0
        """The load generator's own CPU time while counting."""

    def record(self, method: str, ok: bool, envelope: Any, latency_s: float) -> None:
        if not self.counting:
            return
        if ok:
            self.actions += 1
            self.placements += method != "private/cancel"
            self.latencies.append(latency_s)
            self.node_latencies.append(envelope.get("usDiff", 0) / 1e6)
        else:
            code = int(envelope.get("error", {}).get("code", 0))
            self.errors[code] = self.errors.get(code, 0) + 1


async def _load(plan: dict[str, Any]) -> dict[str, float]:
    import aiohttp

    from strikechain.client import Client
    from strikechain.client.client import WsRpc, client_signature, websocket_url

    sizes = plan["sizes"]
    credentials = plan["credentials"]
    results: dict[str, float] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        rpcs = []
        for number in range(sizes["connections"]):
            api_key, secret = credentials[number % len(credentials)]
            rpc = WsRpc(await http.ws_connect(websocket_url(plan["base_url"])))
            await rpc.call("public/auth", client_signature(api_key, secret))
            rpcs.append(rpc)
        tally = await _ws_closed_loop(rpcs, sizes)
        window = sizes["phase_s"]
        results["ws_orders_per_s"] = tally.actions / window
        results["ws_window_start_s"], results["ws_window_end_s"] = tally.window
        results["ws_actions"] = float(tally.actions)
        results["ws_load_generator_cpu_share"] = tally.cpu_s / (tally.window[1] - tally.window[0])
        results["ws_placements_per_s"] = tally.placements / window
        results["ws_errors"] = float(sum(tally.errors.values()))
        for rpc in rpcs:
            await rpc.close()
        offered = results["ws_orders_per_s"] / 2
        sockets = await _timed_sockets(plan)
        try:
            paced = await _ws_paced(sockets, sizes, offered)
        finally:
            for socket in sockets:
                socket.close()
        latencies = np.array(paced.latencies) * 1e3
        results["latency_offered_per_s"] = offered
        results["latency_answered_per_s"] = paced.actions / window
        results["latency_window_start_s"], results["latency_window_end_s"] = paced.window
        results["latency_load_generator_cpu_share"] = paced.cpu_s / (
            paced.window[1] - paced.window[0]
        )
        results["ack_latency_p50_ms"] = float(np.percentile(latencies, 50))
        results["ack_latency_p99_ms"] = float(np.percentile(latencies, 99))
        inside = np.array(paced.node_latencies) * 1e3
        results["ack_node_latency_p50_ms"] = float(np.percentile(inside, 50))
        results["ack_node_latency_p99_ms"] = float(np.percentile(inside, 99))
        tail = latencies >= np.percentile(latencies, 99)
        for part, values in (
            ("inbound", np.array(paced.inbound) * 1e3),
            ("node", inside),
            ("outbound", np.array(paced.outbound) * 1e3),
        ):
            if part != "node":
                results[f"ack_{part}_p50_ms"] = float(np.percentile(values, 50))
                results[f"ack_{part}_p99_ms"] = float(np.percentile(values, 99))
            results[f"ack_slowest_{part}_ms"] = float(values[tail].mean())
        results["latency_errors"] = float(sum(paced.errors.values()))
    clients = [Client(plan["base_url"], key, secret) for key, secret in credentials]
    try:
        http_tally = await _http_closed_loop(clients, sizes)
    finally:
        for client in clients:
            await client.close()
    results["http_orders_per_s"] = http_tally.actions / sizes["phase_s"]
    results["http_errors"] = float(sum(http_tally.errors.values()))
    return results


async def _measure(tally: _Tally, sizes: dict[str, Any], workers: list[Any]) -> None:
    """Run ``workers`` through the warm-up, then count for one phase, then stop them."""
    tasks = [asyncio.create_task(worker) for worker in workers]
    await asyncio.sleep(sizes["warmup_s"])
    tally.counting = True
    start, cpu = time.monotonic(), time.process_time()
    await asyncio.sleep(sizes["phase_s"])
    tally.counting = False
    tally.window = (start, time.monotonic())
    tally.cpu_s = time.process_time() - cpu
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _ws_closed_loop(rpcs: list[Any], sizes: dict[str, Any]) -> _Tally:
    tally = _Tally()

    async def worker(rpc: Any, sender: _Sender) -> None:
        while True:
            method, params = sender.next()
            envelope = await rpc.send(method, params)
            tally.record(method, sender.answered(method, envelope), envelope, 0.0)

    workers = [
        worker(rpc, _Sender(index * sizes["in_flight"] + slot, sizes["resting"]))
        for index, rpc in enumerate(rpcs)
        for slot in range(sizes["in_flight"])
    ]
    await _measure(tally, sizes, workers)
    return tally


class _TimedSelector(selectors.DefaultSelector):
    """The load generator's selector: remembers when its last ``select`` returned, the moment
    the process learns which sockets have bytes waiting (see :class:`_TimedSocket`)."""

    returned = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(timeout)
        _TimedSelector.returned = time.perf_counter()
        return events


class _TimedSocket(asyncio.Protocol):
    """The latency phase's WebSocket: sans-I/O ``websockets`` on an asyncio protocol, every
    answer timed by the arrival of its bytes: when the load generator's ``select`` returned
    with its socket ready (:class:`_TimedSelector`), before any of them is read or decoded.

    The phase measures the node, not the load generator: through aiohttp, each block's burst
    of hundreds of answers waited in the generator's own loop (a task per send, layers per
    receive) and its tail added 20-60 ms to the 99th percentile in socket order, not the
    node's; timed in ``data_received``, the sockets read last in a burst still counted the
    decoding of the ones read before them (up to ~15 ms for a block's answers)."""

    def __init__(self, url: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url), max_size=1 << 20)
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting: dict[int, Any] = {}
        self.next_id = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        arrived = _TimedSelector.returned or time.perf_counter()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if not self.opened.done():
                    self.opened.set_result(None)
            elif isinstance(event, Frame) and event.opcode == Opcode.TEXT:
                envelope = msgspec.json.decode(event.data)
                answered = self.waiting.pop(envelope.get("id"), None)
                if answered is not None:
                    answered(envelope, arrived)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("the WebSocket did not open"))
        self.waiting.clear()

    def send(self, method: str, params: dict[str, Any], answered: Any) -> None:
        """Send a request now; ``answered(envelope, arrival)`` is called with its answer."""
        self.next_id += 1
        self.waiting[self.next_id] = answered
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.protocol.send_text(msgspec.json.encode(message))
        self._flush()

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.send(method, params, lambda envelope, _: answer.set_result(envelope))
        return await answer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self.protocol.data_to_send()))


async def _timed_sockets(plan: dict[str, Any]) -> list[_TimedSocket]:
    """As many authenticated :class:`_TimedSocket` as the phase has connections."""
    from urllib.parse import urlsplit

    from strikechain.client.client import client_signature, websocket_url

    url = websocket_url(plan["base_url"])
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    sockets = []
    for number in range(plan["sizes"]["connections"]):
        api_key, secret = plan["credentials"][number % len(plan["credentials"])]
        _, socket = await loop.create_connection(
            lambda: _TimedSocket(url), parts.hostname or "127.0.0.1", parts.port or 80
        )
        await socket.opened
        answer = await socket.call("public/auth", client_signature(api_key, secret))
        if "result" not in answer:
            raise RuntimeError(f"the latency phase's socket was refused: {answer}")
        sockets.append(socket)
    return sockets


async def _ws_paced(
    sockets: list[_TimedSocket], sizes: dict[str, Any], rate_per_s: float
) -> _Tally:
    """Order actions sent at ``rate_per_s`` in all (round robin over the connections), each
    timed from send to the arrival of its answer."""
    tally = _Tally()
    senders = [_Sender(10_000 + index, sizes["resting"]) for index in range(len(sockets))]

    def answered(
        method: str, sender: _Sender, began: float, wall_us: float, envelope: Any, at: float
    ) -> None:
        ok = sender.answered(method, envelope)
        tally.record(method, ok, envelope, at - began)
        if ok and tally.counting:
            tally.inbound.append((envelope["usIn"] - wall_us) / 1e6)
            tally.outbound.append((wall_us + (at - began) * 1e6 - envelope["usOut"]) / 1e6)

    async def pace() -> None:
        start = time.perf_counter()
        sent = 0
        while True:
            due = int((time.perf_counter() - start) * rate_per_s)
            while sent < due:
                index = sent % len(sockets)
                sender = senders[index]
                method, params = sender.next()
                began, wall_us = time.perf_counter(), time.time_ns() / 1e3
                sockets[index].send(
                    method,
                    params,
                    lambda envelope, at, m=method, s=sender, b=began, w=wall_us: answered(
                        m, s, b, w, envelope, at
                    ),
                )
                sent += 1
            await asyncio.sleep(0.001)

    await _measure(tally, sizes, [pace()])
    await asyncio.sleep(BLOCK_INTERVAL_MS / 1e3 * 3)  # let the last answers arrive
    return tally


async def _http_closed_loop(clients: list[Any], sizes: dict[str, Any]) -> _Tally:
    from strikechain.client import ClientError

    tally = _Tally()

    async def worker(client: Any, sender: _Sender) -> None:
        while True:
            method, params = sender.next()
            try:
                result = await client.call(method, params)
                envelope: Any = {"result": result}
            except ClientError as error:
                envelope = {"error": {"code": error.code}}
            tally.record(method, sender.answered(method, envelope), envelope, 0.0)

    concurrency = sizes["http_concurrency"]
    workers = [
        worker(clients[slot % len(clients)], _Sender(20_000 + slot, sizes["resting"]))
        for slot in range(concurrency)
    ]
    await _measure(tally, sizes, workers)
    return tally


# --- signature verification -------------------------------------------------------------------


def _verification_rates() -> dict[str, float]:
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    from strikechain.engine.orders_signing import sign_order
    from strikechain.engine.signing import DEFAULT_DOMAIN, address_of
    from strikechain.engine.txs import PlaceOrder, PostOnly
    from strikechain.node.api.signed import SignedOrders, check_signature

    now = time.time_ns()
    signers = [_keys(i) for i in range(8)]
    orders = []
    for number in range(VERIFICATIONS):
        key = signers[number % len(signers)]
        order = PlaceOrder(
            account=address_of(key), instrument=PERP, side=1 if number % 2 else -1,
            size_lots=1 + number % 50, price_ticks=190_000 + number % 400,
            post_only=int(PostOnly.REPRICE), nonce=number, expiry_ns=now + 300 * 10**9,
        )  # fmt: skip
        orders.append(sign_order(order, key))
    edge = SignedOrders(DEFAULT_DOMAIN)
    started = time.perf_counter()
    for order in orders:
        check_signature(edge, order, now)
        edge.nonces.remember(order.account, order.nonce, order.expiry_ns)
    node_rate = len(orders) / (time.perf_counter() - started)
    sample = orders[:ETH_ACCOUNT_VERIFICATIONS]
    messages = [_typed_data(order) for order in sample]
    started = time.perf_counter()
    for order, message in zip(sample, messages, strict=True):
        signer = Account.recover_message(
            encode_typed_data(full_message=message), signature=order.signature
        )
        if signer.lower() != order.account:
            raise RuntimeError("eth-account recovered another signer")
    reference_rate = len(sample) / (time.perf_counter() - started)
    return {
        "eip712_verifications_per_s": node_rate,
        "eip712_eth_account_verifications_per_s": reference_rate,
    }


def _typed_data(order: Any) -> dict[str, Any]:
    """The order as EIP-712 typed data (what a wallet signs)."""
    from strikechain.engine.orders_signing import ORDER_TYPE
    from strikechain.engine.signing import DEFAULT_DOMAIN, DOMAIN_NAME, DOMAIN_VERSION

    fields = ORDER_TYPE[len("Order(") : -1].split(",")
    values = (
        order.account, order.instrument, order.side, order.size_lots, order.price_ticks,
        order.order_type, order.time_in_force, order.post_only, order.reduce_only,
        order.self_trade, order.client_order_id, order.expire_at_ns, order.nonce, order.expiry_ns,
    )  # fmt: skip
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Order": [
                {"name": field.split(" ")[1], "type": field.split(" ")[0]} for field in fields
            ],
        },
        "primaryType": "Order",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": DEFAULT_DOMAIN.chain_id,
            "verifyingContract": DEFAULT_DOMAIN.verifying_contract,
        },
        "message": {
            field.split(" ")[1]: value for field, value in zip(fields, values, strict=True)
        },
    }


def run() -> dict[str, float]:
    results = _verification_rates()
    with tempfile.TemporaryDirectory(prefix="strikechain-bench-node-", dir=Path.cwd()) as folder:
        results.update(asyncio.run(_serve_and_load(Path(folder))))
    return results
