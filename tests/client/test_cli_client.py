"""``strikechain order`` and ``strikechain account`` against a live node (click's runner)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from strikechain.cli.main import cli
from tests.client.live import OTHER_KEY, PERP, live_node


def test_order_and_account_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    with live_node(tmp_path) as live:
        env = {
            "STRIKECHAIN_URL": live.base,
            "STRIKECHAIN_API_KEY": live.api_key,
            "STRIKECHAIN_API_SECRET": live.secret,
        }
        placed = runner.invoke(
            cli, ["order", "buy", PERP, "0.002", "--price", "99000", "--post-only", "--json"],
            env=env,
        )  # fmt: skip
        assert placed.exit_code == 0, placed.output
        order_id = json.loads(placed.output)["order"]["order_id"]
        listed = runner.invoke(cli, ["order", "list"], env=env)
        assert listed.exit_code == 0
        assert order_id in listed.output
        assert "open buy 0.002" in listed.output
        signed = runner.invoke(
            cli,
            ["order", "sell", PERP, "0.002", "--price", "99000", "--signed", "--url", live.base,
             "--private-key", OTHER_KEY.hex()],
        )  # fmt: skip
        assert signed.exit_code == 0, signed.output
        assert "filled sell 0.002" in signed.output
        positions = runner.invoke(cli, ["account", "positions", "--json"], env=env)
        assert [p["size"] for p in json.loads(positions.output)] == [0.002]
        summary = runner.invoke(cli, ["account", "summary"], env=env)
        assert "equity:" in summary.output
        gone = runner.invoke(cli, ["order", "cancel", order_id], env=env)
        assert gone.exit_code == 2
        assert "error: 10004: order_not_found" in gone.output
        unsigned = runner.invoke(cli, ["order", "list", "--url", live.base])
        assert unsigned.exit_code == 2
        assert "-32602" in unsigned.output
