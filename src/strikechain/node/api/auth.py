"""Who calls the API: Deribit's ways to prove an API key, and the tokens ``public/auth`` hands out.

Three proofs, all checked by :class:`Authenticator`, all ending in a :class:`KeyRecord` whose
scopes the call may use:

- The REST header ``Authorization: deri-hmac-sha256 id=KEY,ts=MS,sig=HEX,nonce=NONCE``, where
  ``HEX = HMAC-SHA256(secret, MS + "\\n" + NONCE + "\\n" + METHOD + "\\n" + URI + "\\n" + BODY +
  "\\n")``, URI being the path and query as sent (``/api/v2/private/get_positions?currency=BTC``)
  and BODY the raw request body (empty for GET). This is what ccxt signs. The key store checks
  the timestamp window and refuses a nonce seen before.
- ``public/auth`` with ``grant_type`` ``client_credentials`` (``client_id``, ``client_secret``),
  ``client_signature`` (``client_id``, ``timestamp``, ``nonce``, ``data``, ``signature =
  HMAC-SHA256(secret, timestamp + "\\n" + nonce + "\\n" + data)``) or ``refresh_token``. Over a
  WebSocket it binds the connection to the key; over HTTP it only returns tokens.
- ``Authorization: bearer ACCESS_TOKEN`` (or an ``access_token`` parameter) with a token from
  ``public/auth``.

Tokens are 256 random bits, held in memory only (a restart logs everyone out), bounded in total
and per key, bound to the key and to the scopes granted (a key disabled since refuses its
tokens at their next use). A refresh token is used once: refreshing replaces the pair.

Scopes. Deribit's scope words map onto :class:`Scope`: ``trade:read``, ``account:read``,
``wallet:read`` to ``read``; ``trade:read_write`` to ``read`` and ``trade``;
``wallet:read_write`` to ``read`` and ``withdraw``; ``account:read_write`` to ``read`` and
``admin``. A request asks for a subset of the key's scopes (none named: all of them);
``connection``, ``session:NAME``, ``expires:SECONDS`` (shortening the access token's life) and
``block_trade:*``/``custody:*``/``mainaccount`` are accepted and carry no permission.

Failures (:class:`ApiError`, Deribit's codes): a wrong secret or signature in ``public/auth`` is
13004 ``invalid_credentials``; a bad or unknown header, token or key is 13009 ``unauthorized``
(both ccxt's ``AuthenticationError``); a key that signed too much is 10028
``too_many_requests``.

``client_credentials`` runs scrypt (tens of milliseconds) on the event loop: the key store is one
SQLite connection on one thread. Rate limits bound how often anyone can ask for it.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

import msgspec

from strikechain.engine.invariant import invariant
from strikechain.node.api.errors import (
    FORBIDDEN,
    INVALID_CREDENTIALS,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    ApiError,
    invalid_params,
)
from strikechain.node.api.limits import ApiLimits
from strikechain.node.keys import (
    KeyCode,
    KeyRecord,
    KeyRejection,
    KeyStore,
    Scope,
    rest_signature_data,
)

NANOS_PER_SECOND: Final = 1_000_000_000
TOKEN_BYTES: Final = 32
HMAC_SCHEME: Final = "deri-hmac-sha256"
BEARER_SCHEME: Final = "bearer"
TIMESTAMP_DIGITS_MAX: Final = 16

_SCOPE_WORDS: Final[dict[str, tuple[Scope, ...]]] = {
    "trade:read": (Scope.READ,),
    "account:read": (Scope.READ,),
    "wallet:read": (Scope.READ,),
    "trade:read_write": (Scope.READ, Scope.TRADE),
    "wallet:read_write": (Scope.READ, Scope.WITHDRAW),
    "account:read_write": (Scope.READ, Scope.ADMIN),
}
_NEUTRAL_WORDS: Final = frozenset({"connection", "mainaccount"})
_NEUTRAL_PREFIXES: Final = ("session:", "block_trade:", "custody:", "ip:", "name:")
_WRITE_AREAS: Final[dict[Scope, str]] = {
    Scope.ADMIN: "account",
    Scope.TRADE: "trade",
    Scope.WITHDRAW: "wallet",
}
_SIGNATURE_REJECTIONS: Final = {
    KeyCode.TOO_MANY_SIGNATURES: TOO_MANY_REQUESTS,
    KeyCode.NONCE_MEMORY_FULL: TOO_MANY_REQUESTS,
}


class AuthParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``public/auth``'s parameters (Deribit's names)."""

    grant_type: str
    client_id: str = ""
    client_secret: str = ""
    timestamp: int = 0
    signature: str = ""
    nonce: str = ""
    data: str = ""
    refresh_token: str = ""
    scope: str = ""
    state: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ScopeRequest:
    """A parsed Deribit scope string: the permissions asked for (None: the key's all) and an
    access-token lifetime (None: the default)."""

    scopes: frozenset[Scope] | None
    expires_s: int | None


def parse_scope(text: str) -> ScopeRequest:
    """Deribit's space-separated scope words; unknown words are invalid params."""
    asked: set[Scope] = set()
    named = False
    expires_s: int | None = None
    for word in text.split():
        if word in _SCOPE_WORDS:
            named = True
            asked.update(_SCOPE_WORDS[word])
        elif word.startswith("expires:"):
            value = word.removeprefix("expires:")
            if not value.isdigit() or not 0 < len(value) <= 10 or int(value) == 0:
                raise invalid_params("scope", f"{word!r}: expires:SECONDS, a positive integer")
            expires_s = int(value)
        elif word not in _NEUTRAL_WORDS and not word.startswith(_NEUTRAL_PREFIXES):
            raise invalid_params("scope", f"unknown scope {word!r}")
    return ScopeRequest(frozenset(asked) if named else None, expires_s)


def scope_text(scopes: tuple[Scope, ...], *, connection: bool) -> str:
    """The scopes as Deribit names them in ``public/auth``'s answer."""
    levels = dict.fromkeys(("account", "trade", "wallet"), "read" if Scope.READ in scopes else "")
    for scope, area in _WRITE_AREAS.items():
        if scope in scopes:
            levels[area] = "read_write"
    words = ["connection"] if connection else []
    words.extend(f"{area}:{level}" for area, level in levels.items() if level)
    return " ".join(words)


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    """What an access token stands for."""

    api_key: str
    scopes: tuple[Scope, ...]
    scope_text: str
    access_expires_ns: int
    refresh_token: str


class TokenStore:
    """Access and refresh tokens in memory, bounded (see :class:`ApiLimits`).

    Pairs are kept in issue order until their refresh token expires (one refresh lifetime for
    all, so issue order is expiry order and the oldest are purged first)."""

    def __init__(self, limits: ApiLimits, clock_ns: Callable[[], int]) -> None:
        self._limits = limits
        self._clock_ns = clock_ns
        self._refresh_ttl_ns = limits.refresh_token_ttl_s * NANOS_PER_SECOND
        self._pairs: OrderedDict[str, tuple[Grant, int]] = OrderedDict()
        """access token -> (grant, refresh expires at ns), oldest first."""
        self._by_refresh: dict[str, str] = {}
        self._by_key: dict[str, list[str]] = {}

    def issue(
        self, api_key: str, scopes: tuple[Scope, ...], text: str, access_ttl_s: int
    ) -> tuple[str, Grant]:
        """A new pair for ``api_key``: ``(access token, grant)``; 10028 if the store is full."""
        now = self._clock_ns()
        self._purge(now)
        mine = self._by_key.setdefault(api_key, [])
        if len(mine) >= self._limits.tokens_per_key_max:
            self._drop(mine[0])
        if len(self._pairs) >= self._limits.tokens_max:
            raise ApiError(TOO_MANY_REQUESTS, "too_many_requests", {"reason": "too many sessions"})
        access = secrets.token_urlsafe(TOKEN_BYTES)
        refresh = secrets.token_urlsafe(TOKEN_BYTES)
        grant = Grant(api_key, scopes, text, now + access_ttl_s * NANOS_PER_SECOND, refresh)
        self._pairs[access] = (grant, now + self._refresh_ttl_ns)
        self._by_refresh[refresh] = access
        self._by_key.setdefault(api_key, []).append(access)
        return access, grant

    def get(self, access_token: str) -> Grant | None:
        """The grant of a live access token, else None."""
        found = self._pairs.get(access_token)
        if found is None or found[0].access_expires_ns <= self._clock_ns():
            return None
        return found[0]

    def take_refresh(self, refresh_token: str) -> Grant | None:
        """The grant of a live refresh token, which (with its access token) is used up."""
        access = self._by_refresh.get(refresh_token)
        if access is None:
            return None
        grant, refresh_expires_ns = self._pairs[access]
        self._drop(access)
        return grant if refresh_expires_ns > self._clock_ns() else None

    def _purge(self, now: int) -> None:
        while self._pairs:
            access, (_, refresh_expires_ns) = next(iter(self._pairs.items()))
            if refresh_expires_ns > now:
                break
            self._drop(access)

    def _drop(self, access: str) -> None:
        grant, _ = self._pairs.pop(access)
        del self._by_refresh[grant.refresh_token]
        mine = self._by_key[grant.api_key]
        mine.remove(access)
        if not mine:
            del self._by_key[grant.api_key]

    def __len__(self) -> int:
        return len(self._pairs)


class Authenticator:
    """Checks every proof of a key (see the module docstring) against ``keys``."""

    def __init__(self, keys: KeyStore, limits: ApiLimits, clock_ns: Callable[[], int]) -> None:
        self.keys = keys
        self.limits = limits
        self.tokens = TokenStore(limits, clock_ns)

    # -- per request --------------------------------------------------------------------------

    def from_header(
        self, authorization: str, http_method: str, uri_with_query: str, body: str
    ) -> KeyRecord:
        """The key an ``Authorization`` header proves (HMAC or bearer); 13009 if it proves none."""
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() == BEARER_SCHEME:
            return self.from_token(rest.strip())
        if scheme.lower() != HMAC_SCHEME:
            raise _unauthorized(f"unknown authorization scheme {scheme[:32]!r}")
        fields = _header_fields(rest)
        data = rest_signature_data(http_method, uri_with_query, body)
        try:
            return self.keys.verify_signature(
                fields["id"], int(fields["ts"]), fields["nonce"], data, fields["sig"]
            )
        except KeyRejection as rejection:
            raise _signature_error(rejection, UNAUTHORIZED, "unauthorized") from None

    def from_token(self, access_token: str) -> KeyRecord:
        """The key (with the token's scopes) of a live access token; 13009 if none."""
        grant = self.tokens.get(access_token)
        if grant is None:
            raise _unauthorized("invalid or expired access token")
        record = self.keys.get(grant.api_key)
        if record is None or record.disabled:
            raise _unauthorized("the token's key is disabled")
        return dataclasses.replace(record, scopes=grant.scopes)

    # -- public/auth --------------------------------------------------------------------------

    def grant(self, params: AuthParams, *, connection: bool) -> tuple[KeyRecord, dict[str, Any]]:
        """Check ``public/auth``'s proof; the key (with the scopes granted) and the answer."""
        request = parse_scope(params.scope)
        if params.grant_type == "client_credentials":
            record = self._client_credentials(params)
        elif params.grant_type == "client_signature":
            record = self._client_signature(params)
        elif params.grant_type == "refresh_token":
            return self._refresh(params, request, connection=connection)
        else:
            raise invalid_params(
                "grant_type", "one of client_credentials, client_signature, refresh_token"
            )
        scopes = _granted(record, request.scopes)
        ttl_s = self.limits.access_token_ttl_s
        if request.expires_s is not None:
            ttl_s = min(ttl_s, request.expires_s)
        return self._answer(record, scopes, ttl_s, params.state, connection=connection)

    def _client_credentials(self, params: AuthParams) -> KeyRecord:
        if not params.client_id or not params.client_secret:
            raise invalid_params("client_secret", "client_id and client_secret are required")
        record = self.keys.verify(params.client_id, params.client_secret)
        if record is None:
            raise ApiError(INVALID_CREDENTIALS, "invalid_credentials")
        return record

    def _client_signature(self, params: AuthParams) -> KeyRecord:
        if not params.client_id or not params.signature or not params.nonce:
            raise invalid_params(
                "signature", "client_id, timestamp, nonce and signature are required"
            )
        try:
            return self.keys.verify_signature(
                params.client_id, params.timestamp, params.nonce, params.data, params.signature
            )
        except KeyRejection as rejection:
            raise _signature_error(rejection, INVALID_CREDENTIALS, "invalid_credentials") from None

    def _refresh(
        self, params: AuthParams, request: ScopeRequest, *, connection: bool
    ) -> tuple[KeyRecord, dict[str, Any]]:
        old = self.tokens.take_refresh(params.refresh_token) if params.refresh_token else None
        if old is None:
            raise ApiError(INVALID_CREDENTIALS, "invalid_credentials", {"reason": "refresh_token"})
        record = self.keys.get(old.api_key)
        if record is None or record.disabled:
            raise _unauthorized("the token's key is disabled")
        asked = request.scopes
        scopes = old.scopes if asked is None else tuple(s for s in old.scopes if s in asked)
        if not scopes:
            raise ApiError(FORBIDDEN, "forbidden", {"reason": "no granted scope was asked for"})
        ttl_s = self.limits.access_token_ttl_s
        if request.expires_s is not None:
            ttl_s = min(ttl_s, request.expires_s)
        return self._answer(record, scopes, ttl_s, params.state, connection=connection)

    def _answer(
        self,
        record: KeyRecord,
        scopes: tuple[Scope, ...],
        ttl_s: int,
        state: str,
        *,
        connection: bool,
    ) -> tuple[KeyRecord, dict[str, Any]]:
        text = scope_text(scopes, connection=connection)
        access, grant = self.tokens.issue(record.api_key, scopes, text, ttl_s)
        answer: dict[str, Any] = {
            "access_token": access,
            "refresh_token": grant.refresh_token,
            "expires_in": ttl_s,
            "scope": text,
            "token_type": "bearer",
        }
        if state:
            answer["state"] = state
        return dataclasses.replace(record, scopes=scopes), answer


def _granted(record: KeyRecord, asked: frozenset[Scope] | None) -> tuple[Scope, ...]:
    if asked is None:
        return record.scopes
    scopes = tuple(scope for scope in record.scopes if scope in asked)
    if not scopes:
        granted = ", ".join(record.scopes)
        raise ApiError(FORBIDDEN, "forbidden", {"reason": f"the key has only [{granted}]"})
    return scopes


def _header_fields(text: str) -> dict[str, str]:
    """``id=..,ts=..,sig=..,nonce=..`` as a dict; 13009 if a field is missing or malformed."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        name, equals, value = part.strip().partition("=")
        if not equals or name in fields:
            raise _unauthorized("the header is id=KEY,ts=MS,sig=HEX,nonce=NONCE")
        fields[name] = value
    if set(fields) != {"id", "ts", "sig", "nonce"}:
        raise _unauthorized("the header is id=KEY,ts=MS,sig=HEX,nonce=NONCE")
    ts = fields["ts"]
    if not ts.isdigit() or not ts.isascii() or len(ts) > TIMESTAMP_DIGITS_MAX:
        raise _unauthorized("ts is the time in milliseconds")
    return fields


def _unauthorized(reason: str) -> ApiError:
    return ApiError(UNAUTHORIZED, "unauthorized", {"reason": reason})


def _signature_error(rejection: KeyRejection, code: int, message: str) -> ApiError:
    too_many = _SIGNATURE_REJECTIONS.get(rejection.code)
    if too_many is not None:
        return ApiError(too_many, "too_many_requests", {"reason": rejection.message})
    if rejection.code in (KeyCode.INVALID_NONCE, KeyCode.INVALID_DATA, KeyCode.DATA_TOO_LARGE):
        return invalid_params(
            "nonce" if rejection.code == KeyCode.INVALID_NONCE else "data", rejection.message
        )
    invariant(rejection.code != KeyCode.SCOPE_MISSING, "signatures do not check scopes")
    return ApiError(code, message, {"reason": f"{rejection.code}: {rejection.message}"})
