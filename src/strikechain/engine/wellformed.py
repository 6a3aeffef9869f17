"""The common case of an order's and an amend's validation, compiled by mypyc (``make native``).

msgspec runs a transaction's ``__post_init__`` for every order an agent or a client builds and
for every order replay decodes. Interpreted, the checks of a well-formed order cost about 4,600
instructions a call, most of it the frame and a load per field, for about 4% of a lab run. These
functions are the ``__post_init__`` of :class:`~strikechain.engine.txs.PlaceOrder` and
:class:`~strikechain.engine.txs.Amend`: they read all fields in one C call
(``msgspec.structs.astuple``, in the field order of :data:`PLACE_ORDER_FIELDS` and
:data:`AMEND_FIELDS`, which ``txs`` asserts) and accept a value whose fields are plain values of
the right types and a valid combination. Anything else goes to the value's own ``_check``, the
full validation in :mod:`strikechain.engine.txs`, which refuses it with a message that names
what is wrong, or stores enumeration members as plain ints. So they accept exactly what the full
checks accept without a change, and leave every other case to them.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from strikechain.engine.order_modes import GTT, MARKET, POST_ONLY_VALUES, VALID_ORDER_MODES
from strikechain.engine.signing import SIGNATURE_BYTES
from strikechain.engine.units import INT64_MAX

PLACE_ORDER_FIELDS: Final = (
    "account",
    "instrument",
    "side",
    "size_lots",
    "price_ticks",
    "order_type",
    "time_in_force",
    "post_only",
    "reduce_only",
    "self_trade",
    "client_order_id",
    "expire_at_ns",
    "priority_fee",
    "nonce",
    "expiry_ns",
    "signature",
)
AMEND_FIELDS: Final = (
    "account",
    "order_id",
    "price_ticks",
    "size_lots",
    "post_only",
    "priority_fee",
)
_astuple: Final = msgspec.structs.astuple
"""This and the constants below are statics of the compiled module (a name from another module
is a globals lookup per use)."""
_VALID_ORDER_MODES: Final = VALID_ORDER_MODES
_POST_ONLY_VALUES: Final = POST_ONLY_VALUES
_MARKET: Final = MARKET
_GTT: Final = GTT
_INT64_MAX: Final = INT64_MAX
_SIGNATURE_BYTES: Final = SIGNATURE_BYTES


def check_order(order: Any) -> None:
    """A :class:`~strikechain.engine.txs.PlaceOrder`'s ``__post_init__`` (see the module)."""
    fields: tuple[object, ...] = _astuple(order)
    (
        account,
        instrument,
        side,
        size_lots,
        price_ticks,
        order_type,
        time_in_force,
        post_only,
        reduce_only,
        self_trade,
        client_order_id,
        expire_at_ns,
        priority_fee,
        nonce,
        expiry_ns,
        signature,
    ) = fields
    if (
        type(account) is str
        and type(instrument) is str
        and type(client_order_id) is str
        and type(size_lots) is int
        and type(price_ticks) is int
        and type(expire_at_ns) is int
        and type(priority_fee) is int
        and type(nonce) is int
        and type(expiry_ns) is int
        and type(reduce_only) is bool
        and type(side) is int
        and type(order_type) is int
        and type(time_in_force) is int
        and type(post_only) is int
        and type(self_trade) is int
        and type(signature) is bytes
        and (nonce == 0 or 0 < nonce <= _INT64_MAX)  # (0 first: the bound is not a small int)
        and (expiry_ns == 0 or 0 < expiry_ns <= _INT64_MAX)
        and (not signature or len(signature) == _SIGNATURE_BYTES)
        and (side, order_type, time_in_force, post_only, self_trade) in _VALID_ORDER_MODES
        and not (order_type == _MARKET and price_ticks)
        and (time_in_force == _GTT) == (expire_at_ns != 0)
    ):
        return
    order._check()


def check_amend(amend: Any) -> None:
    """An :class:`~strikechain.engine.txs.Amend`'s ``__post_init__`` (see the module)."""
    fields: tuple[object, ...] = _astuple(amend)
    account, order_id, price_ticks, size_lots, post_only, priority_fee = fields
    if (
        type(account) is str
        and type(order_id) is int
        and type(price_ticks) is int
        and type(size_lots) is int
        and type(priority_fee) is int
        and type(post_only) is int
        and post_only in _POST_ONLY_VALUES
    ):
        return
    amend._check()
