"""The API's errors: Deribit's codes, so clients (ccxt) map them as they do for Deribit.

Every refusal is an :class:`ApiError` with a stable integer ``code``, a short ``message`` (the
Deribit error name where one exists) and optional ``data`` (``{"param": ..., "reason": ...}``),
sent as the JSON-RPC ``error`` object. A refused call changes nothing.
"""

from __future__ import annotations

from typing import Any, Final


class ApiError(Exception):
    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


# JSON-RPC 2.0
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
# Deribit (the codes ccxt maps; see REFERENCES.md)
UNAUTHORIZED: Final = 13009
INVALID_CREDENTIALS: Final = 13004
FORBIDDEN: Final = 13021
NOT_ENOUGH_FUNDS: Final = 10009
ORDER_NOT_FOUND: Final = 10004
POST_ONLY_REJECT: Final = 11054
TOO_MANY_REQUESTS: Final = 10028
PRICE_WRONG_TICK: Final = 10043
INVALID_ARGUMENTS: Final = 11029
NOT_OPEN_ORDER: Final = 11044
MESSAGE_TOO_LARGE: Final = 11098
ALREADY_CLOSED: Final = 10010
INSTRUMENT_NOT_FOUND: Final = 10001
TRADING_HALTED: Final = 11030
SIGNATURE_INVALID: Final = 13010
NODE_UNAVAILABLE: Final = 10047


def invalid_params(param: str, reason: str) -> ApiError:
    return ApiError(INVALID_PARAMS, "Invalid params", {"param": param, "reason": reason})
