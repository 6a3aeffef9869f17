"""The dashboard: a live web view of the venue, served by the node at ``/`` beside its API.

Hand-written static assets (``static/``: HTML, CSS and plain JavaScript modules; charts drawn
by its own SVG code), shipped in the package and served as they are: no build step, nothing
loaded from anywhere but the node. The page talks to the node only over the API's WebSocket
(``/ws/api/v2``): Deribit's channels for books, trades, tickers and the user's orders and
portfolio, strikechain's ``venue.*`` channels and methods (:mod:`strikechain.node.api.venue`) for
the rest. It is read-only until an API key is entered (``public/auth``, client credentials);
the key lives only in the page's memory.

Routes (:func:`dashboard_routes`): ``/`` (the page) and ``/dashboard/static/...`` (its assets),
each with a Content-Security-Policy that allows nothing but this origin.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC_PREFIX: Final = "/dashboard/static"
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _static_directory() -> str:
    return str(files("strikechain.node.dashboard").joinpath("static"))


class _WithHeaders:
    """An ASGI app whose responses carry :data:`HEADERS`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers.extend((k.lower().encode(), v.encode()) for k, v in HEADERS.items())
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)  # type: ignore[arg-type]


def dashboard_routes() -> list[BaseRoute]:
    """``/`` and ``/dashboard/static/...``."""
    directory = _static_directory()
    index = (files("strikechain.node.dashboard") / "static" / "index.html").read_bytes()

    async def page(request: Request) -> Response:
        return Response(index, media_type="text/html; charset=utf-8", headers=HEADERS)

    return [
        Route("/", page, methods=["GET", "HEAD"]),
        Mount(STATIC_PREFIX, app=_WithHeaders(StaticFiles(directory=directory))),
    ]
