"""The operator's admin interface: halt and resume a market, schedule and cancel parameter
changes. Mounted on the node's HTTP app under ``/admin``, authenticated separately from trading
(a bearer token kept in the data directory, mode 0600, made on the first start).

Every action is an engine transaction from the operator account, so it is in the block log,
replayed and committed like any other: a halt takes effect in the next block, before that
block's orders (the state lane); a parameter change is refused unless it lies at least the
venue's timelock ahead, is announced when scheduled (``ParameterChangeScheduled``, with the new
parameters, in the block's events: market data), and is applied by the engine itself at the
first block at or after its time. The answer to each request is the transaction's events, once
its block is in the log.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from strikechain.engine.codes import Rejection
from strikechain.engine.params import UnderlyingParams
from strikechain.engine.txs import CancelParameterChange, ScheduleParameterChange, SetMarketStatus
from strikechain.node.service import OPERATOR_ACCOUNT, Node, NodeHalted
from strikechain.runtime.errors import RuntimeRejection

TOKEN_FILE: Final = "admin.token"
MAX_BODY_BYTES: Final = 65_536


def admin_token(data_dir: Path) -> str:
    """The admin bearer token of this data directory (made on first use, mode 0600)."""
    path = data_dir / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    return token


class _Schedule(msgspec.Struct, forbid_unknown_fields=True):
    underlying: str
    params: UnderlyingParams
    effective_at_ns: int


def _fields(value: Any) -> dict[str, Any]:
    """An engine struct (events are encoded as arrays) as a JSON object of its fields."""
    fields: dict[str, Any] = msgspec.to_builtins(
        {name: getattr(value, name) for name in value.__struct_fields__}
    )
    return fields


def _named(event: Any) -> dict[str, Any]:
    """An engine event as a JSON object: its kind and its fields by name."""
    return {"event": type(event).__name__, **_fields(event)}


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def admin_routes(node: Node, token: str) -> list[Route]:
    """The ``/admin`` routes of ``node``, guarded by ``token``."""

    def authorized(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    async def submit(tx: Any) -> Response:
        try:
            ack = await node.submit(tx)
        except RuntimeRejection as error:
            return _error(503, error.code, error.message)
        except NodeHalted as error:
            return _error(503, NodeHalted.code, str(error))
        events = [_named(event) for event in ack.events]
        refused = [e for e in events if e["event"] == "Rejected"]
        body = {"height": ack.height, "events": events}
        return JSONResponse(body, status_code=409 if refused else 200)

    async def guarded(request: Request) -> Response | None:
        if not authorized(request):
            return _error(401, "UNAUTHORIZED", "admin requests need the admin bearer token")
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            return _error(413, "MESSAGE_TOO_LARGE", f"at most {MAX_BODY_BYTES} bytes")
        return None

    async def market_status(request: Request) -> Response:
        refused = await guarded(request)
        if refused is not None:
            return refused
        halted = request.path_params["action"] == "halt"
        body = await request.body()
        try:
            reason = str(msgspec.json.decode(body).get("reason", "")) if body else ""
            tx = SetMarketStatus(
                account=OPERATOR_ACCOUNT,
                instrument=request.path_params["instrument"],
                halted=halted,
                reason=reason,
            )
        except (msgspec.DecodeError, AttributeError) as error:
            return _error(400, "INVALID_REQUEST", f"the body is not a JSON object: {error}")
        except Rejection as error:
            return _error(400, error.code, error.message)
        return await submit(tx)

    async def schedule(request: Request) -> Response:
        refused = await guarded(request)
        if refused is not None:
            return refused
        try:
            body = msgspec.json.decode(await request.body(), type=_Schedule)
            tx = ScheduleParameterChange(
                account=OPERATOR_ACCOUNT,
                underlying=body.underlying,
                params=body.params,
                effective_at_ns=body.effective_at_ns,
            )
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            return _error(400, "INVALID_REQUEST", str(error))
        except Rejection as error:
            return _error(400, error.code, error.message)
        return await submit(tx)

    async def cancel(request: Request) -> Response:
        refused = await guarded(request)
        if refused is not None:
            return refused
        try:
            tx = CancelParameterChange(
                account=OPERATOR_ACCOUNT, change_id=int(request.path_params["change_id"])
            )
        except (ValueError, Rejection) as error:
            return _error(400, "INVALID_REQUEST", str(error))
        return await submit(tx)

    async def pending(request: Request) -> Response:
        refused = await guarded(request)
        if refused is not None:
            return refused
        changes = [_fields(change) for change in node.engine.pending_changes.values()]
        halted = [
            name
            for name, book in node.engine.books.items()
            if book.market is not None and book.market.halted
        ]
        return JSONResponse({"pending_changes": changes, "halted_markets": halted})

    return [
        Route("/admin/markets/{instrument}/{action:str}", market_status, methods=["POST"]),
        Route("/admin/parameters", schedule, methods=["POST"]),
        Route("/admin/parameters/{change_id:int}", cancel, methods=["DELETE"]),
        Route("/admin", pending, methods=["GET"]),
    ]
