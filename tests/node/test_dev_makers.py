"""``serve --dev --with-market-makers`` without HTTP: the development makers on a live node
keep a two-sided perpetual book on their funding (no quote refused for margin)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from strikechain.cli.live_makers import MAKERS, reference_paths, start_makers
from strikechain.cli.serve import _first_index
from strikechain.node import dev
from strikechain.node.keys import KeyStore
from strikechain.node.service import Node
from strikechain.settlement.embedded import BoaChain

SECONDS = 6.0


def test_the_dev_makers_quote_everything_on_their_funding(tmp_path: Path) -> None:
    asyncio.run(_makers(tmp_path))


async def _makers(tmp_path: Path) -> None:
    config = dev.dev_config(str(tmp_path / "dev"))
    node = Node(config, chain_factory=BoaChain)
    await node.start()
    keys = KeyStore(tmp_path / "dev" / "keys.sqlite")
    reporter: asyncio.Task[None] | None = None
    try:
        accounts = await dev.dev_accounts(node, keys)
        underlyings = config.venue().underlyings
        paths = reference_paths(
            {name: float(dev.PRICES_USDC[name]) for name in underlyings}, node.clock()
        )
        reporter = asyncio.create_task(dev.report_prices(node, price_of=paths.price))
        await _first_index(node, len(accounts) * len(underlyings))
        assert node.engine.next_deposit_id > len(accounts) * len(underlyings)
        makers = start_makers(node, accounts, paths)
        await asyncio.sleep(SECONDS)
        assert len(makers) >= MAKERS
        assert all(maker.quotes_sent > 0 for maker in makers)
        assert [maker.rejections for maker in makers] == [0] * len(makers)
        book = node.engine.books["BTC_USDC-PERPETUAL"]
        assert book.best_bid() is not None
        assert book.best_ask() is not None
        options = [name for name in node.engine.instruments if name.endswith(("-C", "-P"))]
        assert options  # listed once the index came, and quoted (no refusal above)
    finally:
        if reporter is not None:
            reporter.cancel()
        await node.stop()
        keys.close()
