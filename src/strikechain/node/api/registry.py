"""The API's methods, by name, and the one way a transport calls them (:func:`call`).

A method is a name (``public/ticker``), a msgspec struct of its parameters (validated once,
here: unknown parameters refused, types converted from query strings where the transport
says so), the scope it needs (None: public), and an async handler taking the call's
:class:`Context` and its parameters and returning the JSON-ready result. Handlers never see
raw input and never decide authentication; transports never decide parameters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import msgspec

from strikechain.node.api.errors import (
    FORBIDDEN,
    METHOD_NOT_FOUND,
    UNAUTHORIZED,
    ApiError,
    invalid_params,
)
from strikechain.node.keys import KeyRecord, Scope

P = TypeVar("P", bound=msgspec.Struct)
S = TypeVar("S")


def attached(node: Any, kind: type[S], make: Callable[[], S]) -> S:
    """The node's runtime sink of type ``kind``: made by ``make()`` and added on first use
    (the transport and the hub call this once the node has started), the same one after."""
    runtime = node.runtime
    if runtime is None:
        raise RuntimeError("the node has not started")
    for sink in runtime.sinks:
        if isinstance(sink, kind):
            return sink
    made = make()
    runtime.add_sink(made)
    return made


@dataclass
class Context:
    """Who calls, over what: the node, the authenticated key (None: public), the session (a
    WebSocket connection's state, None over HTTP)."""

    node: Any
    key: KeyRecord | None = None
    session: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def account(self) -> str | None:
        return None if self.key is None else self.key.account

    def require_account(self) -> str:
        if self.key is None:
            raise ApiError(UNAUTHORIZED, "unauthorized")
        return self.key.account


Handler = Callable[[Context, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    name: str
    params: type[msgspec.Struct]
    handler: Handler
    scope: Scope | None = None


METHODS: Final[dict[str, Method]] = {}


def method(
    name: str, params: type[P], scope: Scope | None = None
) -> Callable[[Callable[[Context, P], Awaitable[Any]]], Callable[[Context, P], Awaitable[Any]]]:
    """Register ``name`` with its parameters' struct and the scope it needs."""

    def register(
        handler: Callable[[Context, P], Awaitable[Any]],
    ) -> Callable[[Context, P], Awaitable[Any]]:
        if name in METHODS:
            raise ValueError(f"method {name} registered twice")
        METHODS[name] = Method(name, params, handler, scope)
        return handler

    return register


def call(
    name: str, params: dict[str, Any] | None, context: Context, *, strings: bool = False
) -> Awaitable[Any]:
    """Validate method ``name``'s parameters and start it for ``context``: what it answers,
    to await; :class:`ApiError` for any refusal (raised at once for the method, the scope and
    the parameters). ``strings``: the parameters came as a query string (numbers and
    booleans as text). Not a coroutine itself: an order's answer is resumed through every
    frame between the node's acknowledgement and the transport, once per order."""
    found = METHODS.get(name)
    if found is None:
        raise ApiError(METHOD_NOT_FOUND, "Method not found", {"method": name})
    if found.scope is not None:
        if context.key is None:
            raise ApiError(UNAUTHORIZED, "unauthorized")
        if not context.key.has_scope(found.scope):
            raise ApiError(FORBIDDEN, "forbidden", {"reason": f"the key lacks {found.scope}"})
    try:
        value = msgspec.convert(params or {}, found.params, strict=not strings)
    except msgspec.ValidationError as error:
        raise invalid_params(_param_of(str(error)), str(error)) from None
    return found.handler(context, value)


def _param_of(message: str) -> str:
    """The parameter a msgspec validation message names (``... - at `$.price```, or
    ``Object contains unknown field `stop_loss```)."""
    unknown = "unknown field `"
    start = message.find(unknown)
    if start >= 0:
        end = message.find("`", start + len(unknown))
        return message[start + len(unknown) : end] if end > 0 else ""
    marker = "`$."
    start = message.find(marker)
    if start < 0:
        return ""
    end = message.find("`", start + 3)
    return message[start + 3 : end] if end > 0 else ""
