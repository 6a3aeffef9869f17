"""The runtime's two kinds of failure, as in the engine.

- :class:`RuntimeRejection`: bad input at the runtime's edge (a full inbox, something that is
  not a transaction). An expected outcome with a stable :class:`RuntimeCode` and a message a
  person can act on; it changes nothing. Gateways map the codes to their own error numbers, and
  a remote gateway maps a node's error numbers back to codes (the second group below).
- :class:`BlockRefused`: the engine refused a whole block the runtime built. The runtime
  builds blocks within the engine's limits, so this is a runtime bug: it raises, nothing is
  logged, and the runtime stops (:class:`RuntimeStopped` on every later call).
"""

from __future__ import annotations

import enum

from strikechain.engine.invariant import InvariantViolation


class RuntimeCode(enum.StrEnum):
    """Why the runtime refused an input. Released codes never change meaning."""

    INBOX_FULL = "INBOX_FULL"
    """The inbox holds its capacity of transactions; retry after the next block."""
    NOT_A_TRANSACTION = "NOT_A_TRANSACTION"
    """The value submitted is not one of the engine's transaction kinds."""
    # A remote gateway's (strikechain.client.gateway): the node refused before its inbox.
    RATE_LIMITED = "RATE_LIMITED"
    """The node's rate limit for the key refused the request; retry later."""
    NODE_UNAVAILABLE = "NODE_UNAVAILABLE"
    """The node is halted (it acknowledges nothing) and took nothing."""
    NOT_AUTHORIZED = "NOT_AUTHORIZED"
    """The credentials do not allow it: a key without the scope, a refused signature, or a
    transaction for another account than the gateway's."""
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    """No open order of the account has that id (or client id) as far as the node (or the
    gateway) knows, so nothing was sent to the inbox."""
    INSTRUMENT_NOT_FOUND = "INSTRUMENT_NOT_FOUND"
    """The node lists no such instrument."""
    INVALID_TRANSACTION = "INVALID_TRANSACTION"
    """The node refused the transaction's fields before its inbox (its code and reason in the
    message)."""
    UNSUPPORTED_TRANSACTION = "UNSUPPORTED_TRANSACTION"
    """A kind the node's API takes from no client (deposits, oracle reports, listings...)."""
    DISCONNECTED = "DISCONNECTED"
    """The connection closed before the answer came: the transaction may or may not be in the
    inbox; its events (after reconnecting) tell."""


class RuntimeRejection(Exception):
    """An input the runtime refused; carries a :class:`RuntimeCode`, changes nothing."""

    def __init__(self, code: RuntimeCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class BlockRefused(InvariantViolation):
    """The engine refused a whole block the runtime built (a runtime bug)."""

    def __init__(self, height: int, code: str, reason: str) -> None:
        super().__init__(f"the engine refused block {height}: {code}: {reason}")
        self.height = height
        self.code = code
        self.reason = reason


class RuntimeStopped(InvariantViolation):
    """An earlier block failed between the engine and the log; the runtime can no longer tell
    whether its engine and its log agree, so it refuses every call. Restart from the log."""
