"""The node's HTTP edge (Starlette): ``/metrics`` (Prometheus), ``/status``, ``/health``, and
the operator's ``/admin`` (:mod:`strikechain.node.admin`).

The JSON-RPC API (a later issue) mounts on the same app. Handlers only read the node; nothing
here changes state.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from strikechain.node.service import Node


def build_app(node: Node, admin_token: str | None = None) -> Starlette:
    """The node's app; with ``admin_token`` the ``/admin`` routes too."""

    async def metrics(request: Request) -> Response:
        return Response(node.metrics.render(), media_type=node.metrics.content_type)

    async def status(request: Request) -> Response:
        return JSONResponse(node.status())

    async def health(request: Request) -> Response:
        healthy = node.halted is None
        body: dict[str, Any] = {"ok": healthy, "halted": node.halted}
        return JSONResponse(body, status_code=200 if healthy else 503)

    routes = [
        Route("/metrics", metrics),
        Route("/status", status),
        Route("/health", health),
    ]
    if admin_token is not None:
        from strikechain.node.admin import admin_routes

        routes.extend(admin_routes(node, admin_token))
    return Starlette(routes=routes)
