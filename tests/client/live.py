"""A live node for client tests: node + uvicorn on 127.0.0.1 in a thread with its own event
loop (so a test may drive it with ``asyncio.run`` or a CLI runner), settlement off, two funded
accounts (TRADER: an API key and its Ethereum key; OTHER: its Ethereum key only), an index."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import uvicorn

from strikechain.engine.oracle import OracleReport, sign_report
from strikechain.engine.signing import address_of, keccak256
from strikechain.engine.txs import Deposit
from strikechain.node.config import NodeConfig
from strikechain.node.http import build_app
from strikechain.node.keys import KeyStore, Scope, ScryptParams
from strikechain.node.server import server_config
from strikechain.node.service import OPERATOR_ACCOUNT, Node
from tests.node.api.test_transport import free_port
from tests.node.test_service import KEY, REPORTER, USDC, config

TRADER_KEY = keccak256(b"client-test-trader")
TRADER = address_of(TRADER_KEY)
OTHER_KEY = keccak256(b"client-test-other")
OTHER = address_of(OTHER_KEY)
PERP = "BTC_USDC-PERPETUAL"


@dataclasses.dataclass
class Live:
    node: Node
    base: str
    api_key: str
    secret: str
    private_key: str
    account: str
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the node's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)


async def _fund(node: Node, accounts: tuple[str, ...]) -> None:
    report = OracleReport(
        account=REPORTER,
        underlying="BTC",
        timestamp_ns=node.clock(),
        price=100_000 * USDC,
        confidence=USDC,
    )
    await node.submit(sign_report(report, KEY))
    for account in accounts:
        await node.submit(
            Deposit(
                account=OPERATOR_ACCOUNT,
                deposit_id=node.engine.next_deposit_id,
                beneficiary=account,
                underlying="BTC",
                amount=100_000 * USDC,
            )
        )


T = TypeVar("T")


@contextlib.contextmanager
def node_in_thread(
    cfg: NodeConfig,
    tmp_path: Path,
    prepare: Callable[[Node, KeyStore], Awaitable[T]],
) -> Iterator[tuple[Node, str, asyncio.AbstractEventLoop, T]]:
    """A node on ``cfg`` and its API on a free port, served in a thread with its own loop until
    the block ends; ``prepare(node, keys)`` (funding, API keys) runs once it serves, and its
    result comes with the node, its base URL and its loop."""
    loop = asyncio.new_event_loop()
    ready: Future[tuple[Node, str, asyncio.AbstractEventLoop, T]] = Future()
    stop = threading.Event()

    async def main() -> None:
        node = Node(cfg)
        await node.start()
        keys = KeyStore(tmp_path / "keys.sqlite", kdf=ScryptParams(n=16, r=1, p=1))
        port = free_port()
        server = uvicorn.Server(
            server_config(build_app(node, None, keys), "127.0.0.1", port)
        )  # fmt: skip
        task = asyncio.create_task(server.serve())
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            prepared = await prepare(node, keys)
            ready.set_result((node, f"http://127.0.0.1:{port}", loop, prepared))
            while not stop.is_set():
                await asyncio.sleep(0.02)
        except BaseException as error:
            if not ready.done():
                ready.set_exception(error)
            raise
        finally:
            server.should_exit = True
            await task
            await node.stop()
            keys.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        yield ready.result(60)
    finally:
        stop.set()
        thread.join(30)
        loop.close()


@contextlib.contextmanager
def live_node(tmp_path: Path) -> Iterator[Live]:
    cfg = config(tmp_path)
    cfg = msgspec.structs.replace(
        cfg, settlement=msgspec.structs.replace(cfg.settlement, enabled=False)
    )

    async def prepare(node: Node, keys: KeyStore) -> tuple[str, str]:
        credentials = keys.create(TRADER, (Scope.READ, Scope.TRADE))
        await _fund(node, (TRADER, OTHER))
        return credentials

    with node_in_thread(cfg, tmp_path, prepare) as (node, base, loop, (api_key, secret)):
        yield Live(node, base, api_key, secret, "0x" + TRADER_KEY.hex(), TRADER, loop)
