"""``strikechain serve``: the node, with its HTTP edge, until Ctrl-C (or SIGTERM).

Composition only: the configuration (a file, or the development venue with ``--dev``), the
node, the HTTP app on uvicorn, and in development mode the funded accounts and the price feed
(index and vols).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from strikechain.node.config import NodeConfig, load_config

WS_FRAME_BYTES_MAX = 1 << 20
"""uvicorn closes a WebSocket whose frame is larger; the API refuses a message over its own,
smaller limit with an error reply and keeps the connection."""


async def serve(
    console: Console,
    *,
    host: str,
    port: int,
    config_path: Path | None,
    data_dir: str | None,
    dev: bool,
    dev_keys_out: Path | None,
    stop_after_s: float | None = None,
    with_market_makers: bool = False,
) -> None:
    import uvicorn

    from strikechain.node import dev as development
    from strikechain.node.admin import admin_token
    from strikechain.node.http import build_app
    from strikechain.node.keys import KeyStore
    from strikechain.node.logging import configure
    from strikechain.node.server import server_config
    from strikechain.node.service import Node

    configure()
    config: NodeConfig | None = load_config(config_path) if config_path else None
    if dev:
        directory = data_dir or (config.node.data_dir if config else "strikechain-dev")
        config = development.dev_config(directory, config)
    elif config is None:
        raise ValueError("strikechain serve needs --config FILE, or --dev")
    elif data_dir:
        import msgspec

        config = msgspec.structs.replace(
            config, node=msgspec.structs.replace(config.node, data_dir=data_dir)
        )
    node = Node(config)
    await node.start()
    tasks: list[asyncio.Task[Any]] = []
    keys = KeyStore(Path(config.node.data_dir) / "keys.sqlite")
    try:
        if dev:
            accounts = await development.dev_accounts(node, keys)
            _print_accounts(console, accounts)
            if dev_keys_out is not None:
                development.write_keys(accounts, dev_keys_out)
            price_of = None
            if with_market_makers:
                from strikechain.cli.live_makers import reference_paths, start_makers

                spots = {
                    name: float(development.PRICES_USDC.get(name, 1_000))
                    for name in config.venue().underlyings
                }
                paths = reference_paths(spots, node.clock())
                price_of = paths.price
            tasks.append(asyncio.create_task(development.report_prices(node, price_of=price_of)))
            if with_market_makers:
                await _first_index(node, len(accounts) * len(config.venue().underlyings))
                start_makers(node, accounts, paths)
        server = uvicorn.Server(
            server_config(
                build_app(node, admin_token(Path(config.node.data_dir)), keys),
                host,
                port,
                ws_max_size=WS_FRAME_BYTES_MAX,
            )
        )
        # The node owns SIGINT and SIGTERM (it stops the server, then itself, in order).
        setattr(server, "capture_signals", contextlib.nullcontext)  # noqa: B010
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if stop_after_s is not None:
            loop.call_later(stop_after_s, stop.set)
        serving = asyncio.create_task(server.serve())
        console.print(
            f"strikechain node: height {node.engine.height}, data in {config.node.data_dir}, "
            f"http://{host}:{port}/metrics"
        )
        await stop.wait()
        server.should_exit = True
        await serving
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await node.stop()
        keys.close()


async def _first_index(node: Any, deposits: int, seconds: float = 30.0) -> None:
    """Wait until every underlying has an index and the ``deposits`` of the development
    accounts are credited (makers that start on part of their collateral see their first
    quotes refused)."""
    for _ in range(int(seconds / 0.1)):
        engine = node.engine
        states = engine.underlyings.values()
        indexed = all(s.oracle is not None and s.oracle.index for s in states)
        if indexed and engine.next_deposit_id > deposits:
            return
        await asyncio.sleep(0.1)


def _print_accounts(console: Console, accounts: list[dict[str, str]]) -> None:
    table = Table(title="development accounts (public keys, for development only)")
    for column in ("address", "api_key", "api_secret", "private_key"):
        table.add_column(column, overflow="fold")
    for account in accounts:
        table.add_row(
            account["address"], account["api_key"], account["api_secret"], account["private_key"]
        )
    console.print(table)
