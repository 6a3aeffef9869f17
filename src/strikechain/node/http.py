"""The node's HTTP edge (Starlette): ``/metrics`` (Prometheus), ``/status``, ``/health``, and
the operator's ``/admin`` (:mod:`strikechain.node.admin`).

With a key store, the Deribit-compatible JSON-RPC API too (:mod:`strikechain.node.api.transport`:
``/api/v2/...`` and the WebSocket ``/ws/api/v2``), its :class:`~strikechain.node.api.transport.Api`
kept as ``app.state.api``, and the dashboard (:mod:`strikechain.node.dashboard`) at ``/``. The
handlers here only read the node.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from strikechain.node.api.limits import ApiLimits
from strikechain.node.keys import KeyStore
from strikechain.node.service import Node


def build_app(
    node: Node,
    admin_token: str | None = None,
    keys: KeyStore | None = None,
    api_limits: ApiLimits | None = None,
) -> Starlette:
    """The node's app (the node started); with ``admin_token`` the ``/admin`` routes too, with
    ``keys`` the JSON-RPC API (one per node: it registers as a sink of the node's runtime) and the
    dashboard that uses it."""

    async def metrics(request: Request) -> Response:
        return Response(node.metrics.render(), media_type=node.metrics.content_type)

    async def status(request: Request) -> Response:
        return JSONResponse(node.status())

    async def health(request: Request) -> Response:
        healthy = node.halted is None
        body: dict[str, Any] = {"ok": healthy, "halted": node.halted}
        return JSONResponse(body, status_code=200 if healthy else 503)

    routes: list[BaseRoute] = [
        Route("/metrics", metrics),
        Route("/status", status),
        Route("/health", health),
    ]
    if admin_token is not None:
        from strikechain.node.admin import admin_routes

        routes.extend(admin_routes(node, admin_token))
    api = None
    if keys is not None:
        from strikechain.node.api.transport import Api

        api = Api(node, keys, api_limits)
        routes.extend(api.routes())
        from strikechain.node.dashboard import dashboard_routes

        routes.extend(dashboard_routes())
    app = Starlette(routes=routes)
    app.state.api = api
    if api is not None:
        # The API's WebSocket is served by the node's server itself (strikechain.node.server).
        from strikechain.node.api.transport import WEBSOCKET_PATH
        from strikechain.node.server import DIRECT_WEBSOCKETS

        setattr(app.state, DIRECT_WEBSOCKETS, {WEBSOCKET_PATH: api.open_websocket})
    return app
