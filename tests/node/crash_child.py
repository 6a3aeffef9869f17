"""A node under load, to be killed: ``python -m tests.node.crash_child DATA_DIR ACKED_FILE``.

Starts (or recovers) a node on DATA_DIR and streams post-only orders with unique client ids,
many in flight; each acknowledged id is appended to ACKED_FILE (flushed and fsynced) as
``client_id height``. The parent kills it with SIGKILL at a random moment.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from pathlib import Path
from typing import TextIO

from strikechain.engine.txs import PlaceOrder, PostOnly
from strikechain.node.config import NodeConfig, parse_config
from strikechain.node.service import Ack, Node

IN_FLIGHT = 64


def config(data_dir: str) -> NodeConfig:
    return parse_config(
        f"""
[node]
data_dir = "{data_dir}"
block_interval_ms = 5.0
snapshot_every = 25
root_every = 5

[settlement]
enabled = false

[[underlyings]]
name = "BTC"
reporters = ["0x{"11" * 20}"]
quorum = 1

[[instruments]]
underlying = "BTC"
"""
    )


async def main(data_dir: str, acked: str) -> None:
    node = Node(config(data_dir))
    await node.start()
    run = os.getpid()
    with Path(acked).open("a") as out:
        await stream(node, run, out)


async def stream(node: Node, run: int, out: TextIO) -> None:
    sequence = 0
    pending: set[asyncio.Future[Ack]] = set()

    def record(client: str, future: asyncio.Future[Ack]) -> None:
        out.write(f"{client} {future.result().height}\n")
        out.flush()
        os.fsync(out.fileno())

    while True:
        while len(pending) < IN_FLIGHT:
            sequence += 1
            client = f"r{run}-{sequence}"
            order = PlaceOrder(
                account=f"trader-{sequence % 7}",
                instrument="BTC_USDC-PERPETUAL",
                side=1 if sequence % 2 else -1,
                size_lots=1,
                price_ticks=200_000 + (sequence % 50) * (1 if sequence % 2 else -1),
                post_only=PostOnly.REJECT,
                client_order_id=client,
            )
            future = node.submit_nowait(order)
            future.add_done_callback(functools.partial(record, client))
            pending.add(future)
        done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        pending -= done


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
