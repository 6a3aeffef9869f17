"""The node's admin interface over HTTP (called in-process through ASGI): authenticated apart
from trading; halts and resumes a market; schedules and cancels timelocked parameter changes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgspec

from strikechain.engine.params import FeeParams
from strikechain.engine.txs import PlaceOrder
from strikechain.node.admin import admin_token
from strikechain.node.http import build_app
from strikechain.node.service import Node
from tests.node.test_service import PERP, Clock, config

DAY_NS = 86_400 * 10**9


async def call(
    app: Any, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """One HTTP request through the app's ASGI interface."""
    raw = b"" if body is None else json.dumps(body).encode()
    headers = [(b"content-length", str(len(raw)).encode())]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "http_version": "1.1",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("test", 1),
        "root_path": "",
    }
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.sleep(3600)
        delivered = True
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(content) if content else None


def test_admin_halts_markets_and_schedules_timelocked_changes(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg = msgspec.structs.replace(
        cfg, settlement=msgspec.structs.replace(cfg.settlement, enabled=False)
    )
    clock = Clock()

    async def main() -> None:
        node = Node(cfg, clock=clock)
        await node.start()
        token = admin_token(cfg.data_dir)
        assert oct((cfg.data_dir / "admin.token").stat().st_mode & 0o777) == "0o600"
        app = build_app(node, token)
        status, body = await call(app, "POST", f"/admin/markets/{PERP}/halt", {"reason": "x"})
        assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")
        status, body = await call(
            app, "POST", f"/admin/markets/{PERP}/halt", {"reason": "maintenance"}, token
        )
        assert status == 200
        assert [e["event"] for e in body["events"]] == ["MarketStatusChanged"]
        order = PlaceOrder(account="a", instrument=PERP, side=1, size_lots=1, price_ticks=1)
        ack = await node.submit(order)
        assert [getattr(e, "code", None) for e in ack.events] == ["MARKET_HALTED"]
        status, body = await call(app, "GET", "/admin", token=token)
        assert body["halted_markets"] == [PERP]
        status, body = await call(app, "POST", f"/admin/markets/{PERP}/resume", None, token)
        assert status == 200
        ack = await node.submit(order)
        assert "MARKET_HALTED" not in [getattr(e, "code", None) for e in ack.events]
        # A parameter change: refused inside the timelock, scheduled beyond it, cancelled.
        params = cfg.venue().underlyings["BTC"]
        changed = msgspec.structs.replace(params, fees=FeeParams(perp_taker_ppm=700))
        request = {
            "underlying": "BTC",
            "params": msgspec.to_builtins(changed),
            "effective_at_ns": clock.now + DAY_NS // 2,
        }
        status, body = await call(app, "POST", "/admin/parameters", request, token)
        assert status == 409
        assert body["events"][0]["code"] == "TIMELOCK_TOO_SHORT"
        request["effective_at_ns"] = clock.now + 2 * DAY_NS
        status, body = await call(app, "POST", "/admin/parameters", request, token)
        assert status == 200
        (announced,) = body["events"]
        assert announced["event"] == "ParameterChangeScheduled"
        status, body = await call(app, "GET", "/admin", token=token)
        assert [c["change_id"] for c in body["pending_changes"]] == [announced["change_id"]]
        status, body = await call(
            app, "DELETE", f"/admin/parameters/{announced['change_id']}", None, token
        )
        assert status == 200
        assert node.engine.pending_changes == {}
        status, body = await call(app, "POST", "/admin/parameters", {"underlying": 1}, token)
        assert (status, body["error"]["code"]) == (400, "INVALID_REQUEST")
        await node.stop()

    asyncio.run(main())
