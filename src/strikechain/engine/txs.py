"""Transactions and blocks: the only inputs of the engine.

Values, never mutated after creation. Every field is an integer, a string, a bool or an
instrument value (or a signature's bytes), so a block has one canonical encoding.
Prices are in ticks of the instrument, sizes in lots, times in integer nanoseconds.

Validation happens once, where a value is made: ``__post_init__`` runs when a transaction is
built in Python and when msgspec decodes one from bytes, and refuses wrong types, unknown
enumeration values and impossible combinations (a post-only IOC, a market order with a price)
with a :class:`~strikechain.engine.codes.Rejection`. A transaction value is therefore always
well formed, and the engine checks only what depends on its limits and its state.

``priority_fee`` is the fee a sender declares to be ordered earlier under the fee-priority
policy (the lab's layer-1 baseline); the default lane policy ignores it.
"""

from __future__ import annotations

import enum

import msgspec

from strikechain.engine import wellformed
from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.instruments import Instrument
from strikechain.engine.invariant import invariant
from strikechain.engine.oracle import OracleReport
from strikechain.engine.order_modes import GTT as _GTT
from strikechain.engine.order_modes import MARKET as _MARKET
from strikechain.engine.order_modes import (
    VALID_ORDER_MODES,
    OrderType,
    PostOnly,
    SelfTrade,
    Side,
    TimeInForce,
)
from strikechain.engine.params import UnderlyingParams
from strikechain.engine.signing import SIGNATURE_BYTES
from strikechain.engine.units import INT64_MAX


def _refuse(code: RejectCode, message: str) -> Rejection:
    return Rejection(code, message)


def _require_text(value: object, what: str) -> None:
    if type(value) is not str:
        raise _refuse(RejectCode.INVALID_ORDER, f"{what} must be text, not {value!r}")


def _require_integer(value: object, what: str) -> None:
    if type(value) is not int:
        raise _refuse(RejectCode.INVALID_ORDER, f"{what} must be an integer, not {value!r}")


_ORDER_MODE_FIELDS = ("side", "order_type", "time_in_force", "post_only", "self_trade")


def _plain_ints(value: msgspec.Struct, fields: tuple[str, ...]) -> None:
    """Store enumeration members as plain ints.

    Callers may pass ``Side.BUY``; the value keeps ``1``. Everything built from a transaction on
    the engine's hot path (orders, events) then holds plain ints, and a msgspec struct holding an
    enum member costs about 200 ns more to build, per field, than one holding an int.
    """
    for name in fields:
        field = getattr(value, name)
        if type(field) is not int:
            msgspec.structs.force_setattr(value, name, int(field))


def _mode_problem(order: PlaceOrder) -> str:
    """Why an order's modes are not a valid combination, for a person."""
    for value, enum_type in (
        (order.side, Side),
        (order.order_type, OrderType),
        (order.time_in_force, TimeInForce),
        (order.post_only, PostOnly),
        (order.self_trade, SelfTrade),
    ):
        if value not in enum_type.__members__.values():
            names = ", ".join(f"{m.name}={m.value}" for m in enum_type)
            return f"{enum_type.__name__} {value!r} is not one of {names}"
    if order.order_type == OrderType.MARKET:
        return "a market order is immediate: not good-till-time, not post-only"
    return "a post-only order must be able to rest: not IOC or FOK"


class PlaceOrder(msgspec.Struct, frozen=True, kw_only=True, tag="place", gc=False):
    account: str
    instrument: str
    side: int
    """:class:`Side`: 1 buy, -1 sell."""
    size_lots: int
    price_ticks: int = 0
    """Limit price; must be 0 for a market order."""
    order_type: int = int(OrderType.LIMIT)
    """:class:`OrderType`."""
    time_in_force: int = int(TimeInForce.GTC)
    """:class:`TimeInForce`."""
    post_only: int = int(PostOnly.NONE)
    """:class:`PostOnly`."""
    reduce_only: bool = False
    """Only ever reduces the position: refused if larger than the position (or on its side),
    and at each fill limited to what is left of the position."""
    self_trade: int = int(SelfTrade.CANCEL_TAKER)
    """:class:`SelfTrade`: the mode of this order when it is the taker."""
    client_order_id: str = ""
    expire_at_ns: int = 0
    """Good-till-time expiry (block time); 0 for every other time in force."""
    priority_fee: int = 0
    nonce: int = 0
    """The signer's nonce, ``0 .. INT64_MAX``: signed, checked by the edges (not the engine)."""
    expiry_ns: int = 0
    """When the signature stops being valid, ``0 .. INT64_MAX`` ns (0: never); signed, checked
    by the edges (not the engine). Not :attr:`expire_at_ns`, the resting order's expiry."""
    signature: bytes = b""
    """The account's EIP-712 signature (``strikechain.engine.orders_signing``), 65 bytes, or
    empty: kept in the block and the log, verified by the edges, never by the engine."""

    __post_init__ = wellformed.check_order  # type: ignore[misc]  # (a compiled function)
    """The compiled common case; anything else comes to :meth:`_check`."""

    def _check(self) -> None:
        """The full validation: refuses what is wrong, naming it, and stores enumeration
        members as plain ints (what :func:`~strikechain.engine.wellformed.check_order` does not
        accept as it is comes here)."""
        if not (
            type(self.account) is str
            and type(self.instrument) is str
            and type(self.client_order_id) is str
            and type(self.size_lots) is int
            and type(self.price_ticks) is int
            and type(self.expire_at_ns) is int
            and type(self.priority_fee) is int
            and type(self.nonce) is int
            and type(self.expiry_ns) is int
        ):
            self._refuse_types()
        if not (0 <= self.nonce <= INT64_MAX and 0 <= self.expiry_ns <= INT64_MAX):
            raise _refuse(
                RejectCode.INVALID_ORDER, f"nonce and signature expiry are 0 .. {INT64_MAX}"
            )
        signature = self.signature
        if type(signature) is not bytes or (signature and len(signature) != SIGNATURE_BYTES):
            raise _refuse(
                RejectCode.INVALID_ORDER,
                f"a signature is {SIGNATURE_BYTES} bytes (or empty when unsigned)",
            )
        if type(self.reduce_only) is not bool:
            raise _refuse(RejectCode.INVALID_ORDER, "reduce-only must be true or false")
        side, order_type, time_in_force = self.side, self.order_type, self.time_in_force
        post_only, self_trade = self.post_only, self.self_trade
        if (side, order_type, time_in_force, post_only, self_trade) not in VALID_ORDER_MODES:
            raise _refuse(RejectCode.INVALID_ORDER, _mode_problem(self))
        if not (
            type(side) is int
            and type(order_type) is int
            and type(time_in_force) is int
            and type(post_only) is int
            and type(self_trade) is int
        ):
            _plain_ints(self, _ORDER_MODE_FIELDS)
        if order_type == _MARKET and self.price_ticks:
            raise _refuse(RejectCode.INVALID_ORDER, "a market order takes no price")
        if (time_in_force == _GTT) != (self.expire_at_ns != 0):
            raise _refuse(
                RejectCode.INVALID_ORDER, "a good-till-time order, and only it, takes an expiry"
            )

    def _refuse_types(self) -> None:
        _require_text(self.account, "account")
        _require_text(self.instrument, "instrument")
        _require_text(self.client_order_id, "client order id")
        for value, what in (
            (self.size_lots, "size"),
            (self.price_ticks, "price"),
            (self.expire_at_ns, "expiry"),
            (self.priority_fee, "priority fee"),
            (self.nonce, "nonce"),
            (self.expiry_ns, "signature expiry"),
        ):
            _require_integer(value, what)


class Amend(msgspec.Struct, frozen=True, kw_only=True, tag="amend", gc=False):
    """Change an open order's price and/or total size.

    ``size_lots`` is the new total size (filled plus remaining), as in Deribit's ``edit``.
    A price change or a larger remainder loses time priority; a smaller one keeps it.
    """

    account: str
    order_id: int
    price_ticks: int
    size_lots: int
    post_only: int = int(PostOnly.NONE)
    """:class:`PostOnly`."""
    priority_fee: int = 0

    __post_init__ = wellformed.check_amend  # type: ignore[misc]  # (a compiled function)
    """The compiled common case; anything else comes to :meth:`_check`."""

    def _check(self) -> None:
        """The full validation: refuses what is wrong, naming it."""
        _require_text(self.account, "account")
        for value, what in (
            (self.order_id, "order id"),
            (self.price_ticks, "price"),
            (self.size_lots, "size"),
            (self.priority_fee, "priority fee"),
        ):
            _require_integer(value, what)
        if self.post_only not in PostOnly.__members__.values():
            raise _refuse(
                RejectCode.INVALID_ORDER, f"post-only {self.post_only!r} is not 0, 1 or 2"
            )


invariant(
    PlaceOrder.__struct_fields__ == wellformed.PLACE_ORDER_FIELDS
    and Amend.__struct_fields__ == wellformed.AMEND_FIELDS,
    "the compiled checks read the fields of an order and an amend in their declared order",
)


class Cancel(msgspec.Struct, frozen=True, kw_only=True, tag="cancel", gc=False):
    """Cancel one order, by the engine's ``order_id`` or by the account's ``client_order_id``."""

    account: str
    order_id: int = 0
    client_order_id: str = ""
    priority_fee: int = 0

    def __post_init__(self) -> None:
        if not (  # the one inline test on the path every cancel takes
            type(self.account) is str
            and type(self.client_order_id) is str
            and type(self.order_id) is int
            and type(self.priority_fee) is int
        ):
            _require_text(self.account, "account")
            _require_text(self.client_order_id, "client order id")
            _require_integer(self.order_id, "order id")
            _require_integer(self.priority_fee, "priority fee")
        if bool(self.order_id) == bool(self.client_order_id):
            raise _refuse(RejectCode.INVALID_ORDER, "name the order by its id or its client id")


class CancelAll(msgspec.Struct, frozen=True, kw_only=True, tag="cancel_all", gc=False):
    """Cancel every open order of ``account``, on one ``instrument`` or (empty) on all."""

    account: str
    instrument: str = ""
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_text(self.account, "account")
        _require_text(self.instrument, "instrument")
        _require_integer(self.priority_fee, "priority fee")


class ListInstrument(msgspec.Struct, frozen=True, kw_only=True, tag="list", gc=False):
    account: str
    instrument: Instrument
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_text(self.account, "account")
        _require_integer(self.priority_fee, "priority fee")
        if not isinstance(self.instrument, Instrument):
            raise _refuse(RejectCode.INVALID_INSTRUMENT, "a listing carries an instrument")


class DelistInstrument(msgspec.Struct, frozen=True, kw_only=True, tag="delist", gc=False):
    """Remove an instrument; its open orders are cancelled (``DELISTED``)."""

    account: str
    instrument: str
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_text(self.account, "account")
        _require_text(self.instrument, "instrument")
        _require_integer(self.priority_fee, "priority fee")


def _require_amount(amount: object) -> None:
    _require_integer(amount, "amount")
    if amount <= 0:  # type: ignore[operator]
        raise _refuse(RejectCode.INVALID_AMOUNT, f"amount must be positive, not {amount!r}")


def _require_relayed(
    tx: Deposit | ForcedWithdrawal, party: tuple[str, object], index: tuple[str, object]
) -> None:
    """The checks of a transaction the operator relays from the settlement contract."""
    for what, value in (("account", tx.account), party, ("underlying", tx.underlying)):
        _require_text(value, what)
    _require_integer(index[1], index[0])
    _require_integer(tx.priority_fee, "priority fee")
    _require_amount(tx.amount)


class Deposit(msgspec.Struct, frozen=True, kw_only=True, tag="deposit", gc=False):
    """Credit collateral from a settlement-layer deposit event, relayed by the operator.

    ``deposit_id`` is the settlement contract's deposit index: deposits are credited in index
    order, exactly once (a repeated index is refused and changes nothing, so relaying twice is
    harmless; a gap is refused so no deposit can be skipped).
    """

    account: str
    """The relayer: only the venue's operator relays deposits."""
    deposit_id: int
    beneficiary: str
    underlying: str
    """The sub-ledger credited."""
    amount: int
    """USDC minor units."""
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_relayed(self, ("beneficiary", self.beneficiary), ("deposit id", self.deposit_id))


class Withdraw(msgspec.Struct, frozen=True, kw_only=True, tag="withdraw", gc=False):
    """Request a withdrawal of ``amount`` from the sub-ledger of ``underlying``.

    Only free collateral without unrealized gains may leave; the settlement layer pays the
    request out (the event carries a withdrawal id in sequence).
    """

    account: str
    underlying: str
    amount: int
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_text(self.account, "account")
        _require_text(self.underlying, "underlying")
        _require_integer(self.priority_fee, "priority fee")
        _require_amount(self.amount)


class ForcedWithdrawal(
    msgspec.Struct, frozen=True, kw_only=True, tag="forced_withdrawal", gc=False
):
    """Serve a forced-withdrawal request its owner made on the settlement contract, relayed by
    the operator.

    The escape hatch's first step: the contract counts requests, each batch header says how
    many the engine has served, and a request left unserved past its window lets anyone freeze
    the contract. So serving must not depend on the operator's goodwill or on the account's
    state: the engine accepts every request in order (``request_id`` sequential from 1, exactly
    once, like deposits) and withdraws what may leave, up to ``amount`` (possibly nothing: an
    account in the liquidation queue or without free collateral is served with 0).
    """

    account: str
    """The relayer: only the venue's operator relays requests."""
    request_id: int
    owner: str
    """The account that asked (the contract's ``msg.sender``)."""
    underlying: str
    amount: int
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_relayed(self, ("owner", self.owner), ("request id", self.request_id))


class Transfer(msgspec.Struct, frozen=True, kw_only=True, tag="transfer", gc=False):
    """Move collateral between two of the account's sub-ledgers (same rule as a withdrawal)."""

    account: str
    from_underlying: str
    to_underlying: str
    amount: int
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_text(self.account, "account")
        _require_text(self.from_underlying, "source underlying")
        _require_text(self.to_underlying, "destination underlying")
        _require_integer(self.priority_fee, "priority fee")
        _require_amount(self.amount)
        if self.from_underlying == self.to_underlying:
            raise _refuse(RejectCode.INVALID_AMOUNT, "a transfer needs two different sub-ledgers")


class MarginMode(enum.IntEnum):
    """How a sub-ledger's positions are margined."""

    STANDARD = 1
    """Position by position (:class:`~strikechain.engine.margin.StandardMargin`)."""
    PORTFOLIO = 2
    """The sub-ledger as one portfolio over a grid of scenarios
    (:mod:`strikechain.engine.portfolio`); open orders still reserve as in standard margin."""


class SetMarginMode(msgspec.Struct, frozen=True, kw_only=True, tag="margin_mode", gc=False):
    """Choose standard or portfolio margin for one of the account's sub-ledgers. Refused if the
    sub-ledger would not meet the new mode's initial margin (with its open orders' reserve)."""

    account: str
    underlying: str
    mode: int
    """:class:`MarginMode`."""
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_text(self.account, "account")
        _require_text(self.underlying, "underlying")
        _require_integer(self.priority_fee, "priority fee")
        if type(self.mode) is not int and not isinstance(self.mode, MarginMode):
            raise _refuse(
                RejectCode.INVALID_ORDER, f"margin mode must be an integer, not {self.mode!r}"
            )
        if self.mode not in MarginMode.__members__.values():
            raise _refuse(
                RejectCode.INVALID_ORDER,
                f"margin mode {self.mode!r} is not 1 (standard) or 2 (portfolio)",
            )
        if type(self.mode) is not int:
            msgspec.structs.force_setattr(self, "mode", int(self.mode))


class LiquidationBid(msgspec.Struct, frozen=True, kw_only=True, tag="liquidation_bid", gc=False):
    """A keeper's bid in a liquidation auction (the keeper-auction baseline policy): the price
    per unit in ticks of the auction's instrument at which the keeper takes the whole position
    (buys a long, sells a short back). Any price is accepted if it beats the best bid so far;
    the winner must have the margin for the position when the auction ends."""

    account: str
    auction_id: int
    price_ticks: int
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_text(self.account, "account")
        _require_integer(self.auction_id, "auction id")
        _require_integer(self.price_ticks, "price")
        _require_integer(self.priority_fee, "priority fee")


class SetMarketStatus(msgspec.Struct, frozen=True, kw_only=True, tag="market_status", gc=False):
    """Halt (``halted`` true) or resume a market; the operator's only. While halted, a market
    takes cancels but no orders or amends (``MARKET_HALTED``) and does no matching; see
    :mod:`strikechain.engine.governance`."""

    account: str
    instrument: str
    halted: bool
    reason: str = ""
    """Why, for a person reading market data (at most ``Limits.max_reason_length``)."""
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_text(self.account, "account")
        _require_text(self.instrument, "instrument")
        _require_text(self.reason, "reason")
        _require_integer(self.priority_fee, "priority fee")
        if type(self.halted) is not bool:
            raise _refuse(RejectCode.INVALID_ORDER, "halted must be true or false")


class ScheduleParameterChange(
    msgspec.Struct, frozen=True, kw_only=True, tag="schedule_parameters", gc=False
):
    """Replace every parameter of ``underlying`` with ``params`` from block time
    ``effective_at_ns`` on, which must be at least the venue's ``parameter_timelock_ns`` after
    the scheduling block; the operator's only. What a change means, section by section, is in
    :mod:`strikechain.engine.governance`."""

    account: str
    underlying: str
    params: UnderlyingParams
    effective_at_ns: int
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_text(self.account, "account")
        _require_text(self.underlying, "underlying")
        _require_integer(self.effective_at_ns, "effective time")
        _require_integer(self.priority_fee, "priority fee")
        if not isinstance(self.params, UnderlyingParams):
            raise _refuse(
                RejectCode.INVALID_PARAMETER_CHANGE, "a parameter change carries UnderlyingParams"
            )
        if not 0 <= self.effective_at_ns <= INT64_MAX:
            raise _refuse(
                RejectCode.INVALID_PARAMETER_CHANGE,
                f"the effective time is 0 .. {INT64_MAX} ns, not {self.effective_at_ns}",
            )


class CancelParameterChange(
    msgspec.Struct, frozen=True, kw_only=True, tag="cancel_parameters", gc=False
):
    """Withdraw a scheduled parameter change before it applies; the operator's only."""

    account: str
    change_id: int
    priority_fee: int = 0

    def __post_init__(self) -> None:
        _require_text(self.account, "account")
        _require_integer(self.change_id, "change id")
        _require_integer(self.priority_fee, "priority fee")


Transaction = (
    PlaceOrder
    | Amend
    | Cancel
    | CancelAll
    | ListInstrument
    | DelistInstrument
    | Deposit
    | Withdraw
    | ForcedWithdrawal
    | Transfer
    | SetMarginMode
    | LiquidationBid
    | OracleReport
    | SetMarketStatus
    | ScheduleParameterChange
    | CancelParameterChange
)


PROTOCOL_VERSION = 1
"""The rules (and encoding) new blocks are produced under; see :mod:`strikechain.engine.codec`."""


class Block(msgspec.Struct, frozen=True, kw_only=True):
    """An ordered list of transactions with the height and time the driver chose, and the
    protocol version whose rules apply to it (recorded so replay survives upgrades)."""

    version: int = PROTOCOL_VERSION
    height: int
    timestamp_ns: int
    transactions: list[Transaction]


# The order modes live in strikechain.engine.order_modes (see there why); named here too, with
# the transactions that carry them.
__all__ = [
    "VALID_ORDER_MODES",
    "OrderType",
    "PostOnly",
    "SelfTrade",
    "Side",
    "TimeInForce",
]
