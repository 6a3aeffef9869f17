"""Deribit v2's private methods: orders, trades, positions, balances, margins, withdrawals.

Every method acts for the calling key's account (:meth:`Context.require_account`) and for no
other: an order id of another account is answered exactly as an id that never existed
(``10004 order_not_found``), so no caller learns what others hold.

Input is converted once, here, and refused before anything is submitted (a refused call
changes nothing): prices (USDC) to ticks through ``Decimal`` (off the tick grid:
``10043 price_wrong_tick``; NaN, infinite, negative, zero or beyond the engine's limits:
``-32602`` naming the parameter), amounts (units of the underlying) to lots (not a multiple
of the lot: ``-32602``). Writes are transactions submitted to the node and answered from the
events of their block (:class:`~strikechain.node.service.Ack`); an engine refusal
(:class:`~strikechain.engine.events.Rejected`) becomes the Deribit error of
:data:`REJECT_ERRORS`.

Not supported (refused with ``-32602``): trigger and trailing orders, ``advanced`` option
orders, iceberg ``max_show``, market-maker protection, ``good_til_day``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from decimal import Decimal
from typing import Any, Final, Literal

from strikechain.engine.accounts import Exposure, SubLedger
from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.events import (
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRepriced,
    Rejected,
    WithdrawalRequested,
)
from strikechain.engine.instruments import Instrument
from strikechain.engine.txs import (
    Amend,
    Cancel,
    CancelAll,
    OrderType,
    PlaceOrder,
    PostOnly,
    Side,
    TimeInForce,
    Transaction,
    Withdraw,
)
from strikechain.engine.units import (
    Rounding,
    minor_to_quote,
    price_to_ticks,
    quote_to_minor,
    size_to_lots,
    to_decimal,
)
from strikechain.node.api import shapes
from strikechain.node.api.errors import (
    ALREADY_CLOSED,
    FORBIDDEN,
    INSTRUMENT_NOT_FOUND,
    INVALID_ARGUMENTS,
    NODE_UNAVAILABLE,
    NOT_ENOUGH_FUNDS,
    ORDER_NOT_FOUND,
    POST_ONLY_REJECT,
    PRICE_WRONG_TICK,
    TOO_MANY_REQUESTS,
    TRADING_HALTED,
    ApiError,
    invalid_params,
)
from strikechain.node.api.history import (
    ORDER_TYPE_NAMES,
    TIME_IN_FORCE_NAMES,
    OrderRecord,
    TradeHistory,
    TradeRecord,
    record_of_engine_order,
)
from strikechain.node.api.public import (
    Kind,
    Params,
    check_count,
    check_currency,
    instruments_of,
    require_history,
    require_instrument,
)
from strikechain.node.api.registry import Context, method
from strikechain.node.keys import Scope
from strikechain.node.service import Ack, NodeHalted
from strikechain.runtime.errors import RuntimeRejection

_OTHER_REJECT: Final = (TRADING_HALTED, "other_reject")
REJECT_ERRORS: Final[dict[str, tuple[int, str]]] = {
    RejectCode.INSUFFICIENT_MARGIN: (NOT_ENOUGH_FUNDS, "not_enough_funds"),
    RejectCode.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL: (NOT_ENOUGH_FUNDS, "not_enough_funds"),
    RejectCode.POST_ONLY_WOULD_CROSS: (POST_ONLY_REJECT, "post_only_reject"),
    RejectCode.UNKNOWN_INSTRUMENT: (INSTRUMENT_NOT_FOUND, "instrument_not_found"),
    RejectCode.MARKET_EXPIRED: (INSTRUMENT_NOT_FOUND, "instrument_not_found"),
    RejectCode.ORDER_NOT_FOUND: (ORDER_NOT_FOUND, "order_not_found"),
    RejectCode.NOT_YOUR_ORDER: (ORDER_NOT_FOUND, "order_not_found"),
    RejectCode.PRICE_NOT_ON_TICK: (PRICE_WRONG_TICK, "price_wrong_tick"),
    RejectCode.ALREADY_EXPIRED: (ALREADY_CLOSED, "already_closed"),
    RejectCode.INVALID_ORDER: (INVALID_ARGUMENTS, "invalid_arguments"),
    RejectCode.AMEND_BELOW_FILLED: (INVALID_ARGUMENTS, "invalid_arguments"),
    RejectCode.DUPLICATE_CLIENT_ORDER_ID: (INVALID_ARGUMENTS, "invalid_arguments"),
    RejectCode.CLIENT_ORDER_ID_TOO_LONG: (INVALID_ARGUMENTS, "invalid_arguments"),
    RejectCode.NOT_AUTHORIZED: (FORBIDDEN, "forbidden"),
}
"""Engine reject codes -> (Deribit code, message); every other code is ``11030 other_reject``
(halts, breakers, stress, auctions, caps, reduce-only, FOK not fillable...), with the engine's
code and message in ``data``."""

TimeInForceName = Literal[
    "good_til_cancelled", "good_til_day", "fill_or_kill", "immediate_or_cancel"
]
OrderTypeName = Literal[
    "limit", "market", "stop_limit", "stop_market", "take_limit", "take_market",
    "market_limit", "trailing_stop",
]  # fmt: skip
Sorting = Literal["asc", "desc", "default"]
_TIME_IN_FORCE: Final = {name: code for code, name in TIME_IN_FORCE_NAMES.items()}
MAX_LABEL_CHARS: Final = 64


# --- parameters -------------------------------------------------------------------------------


class OrderParams(Params):
    instrument_name: str
    amount: Decimal | None = None
    contracts: Decimal | None = None
    type: OrderTypeName = "limit"
    label: str = ""
    price: Decimal | None = None
    time_in_force: TimeInForceName = "good_til_cancelled"
    max_show: Decimal | None = None
    post_only: bool = False
    reject_post_only: bool = False
    reduce_only: bool = False
    trigger_price: Decimal | None = None
    trigger_offset: Decimal | None = None
    trigger: Literal["index_price", "mark_price", "last_price"] | None = None
    advanced: Literal["usd", "implv"] | None = None
    mmp: bool = False
    valid_until: int | None = None


class EditParams(Params):
    order_id: str
    amount: Decimal | None = None
    contracts: Decimal | None = None
    price: Decimal | None = None
    post_only: bool = False
    reject_post_only: bool = False
    reduce_only: bool = False
    trigger_price: Decimal | None = None
    trigger_offset: Decimal | None = None
    advanced: Literal["usd", "implv"] | None = None
    mmp: bool = False
    valid_until: int | None = None


class OrderIdParams(Params):
    order_id: str


class CancelAllParams(Params):
    detailed: bool = False
    freeze_quotes: bool = False


class CancelAllByInstrumentParams(Params):
    instrument_name: str
    type: str = "all"
    detailed: bool = False
    include_combos: bool = False
    freeze_quotes: bool = False


class CancelByLabelParams(Params):
    label: str
    currency: str | None = None


class CancelAllByCurrencyParams(Params):
    currency: str
    kind: Kind | None = None
    type: str = "all"
    detailed: bool = False
    freeze_quotes: bool = False


class OpenOrdersByInstrumentParams(Params):
    instrument_name: str
    type: str = "all"


class OpenOrdersByCurrencyParams(Params):
    currency: str
    kind: Kind | None = None
    type: str = "all"


class OpenOrdersParams(Params):
    kind: Kind | None = None
    type: str = "all"


class TradesByInstrumentParams(Params):
    instrument_name: str
    start_seq: int | None = None
    end_seq: int | None = None
    count: int = 10
    include_old: bool = False
    sorting: Sorting = "default"
    historical: bool = False


class TradesByInstrumentAndTimeParams(Params):
    instrument_name: str
    start_timestamp: int
    end_timestamp: int | None = None
    count: int = 10
    include_old: bool = False
    sorting: Sorting = "default"
    historical: bool = False


class TradesByCurrencyParams(Params):
    currency: str
    kind: Kind | None = None
    start_id: str | None = None
    end_id: str | None = None
    count: int = 10
    include_old: bool = False
    sorting: Sorting = "default"
    historical: bool = False
    subaccount_id: int | None = None


class TradesByCurrencyAndTimeParams(Params):
    currency: str
    start_timestamp: int
    kind: Kind | None = None
    end_timestamp: int | None = None
    count: int = 10
    include_old: bool = False
    sorting: Sorting = "default"
    historical: bool = False


class TradesByOrderParams(Params):
    order_id: str
    sorting: Sorting = "default"
    historical: bool = False


class PositionsParams(Params):
    currency: str | None = None
    kind: Kind | None = None
    subaccount_id: int | None = None


class PositionParams(Params):
    instrument_name: str


class AccountSummaryParams(Params):
    currency: str
    subaccount_id: int | None = None
    extended: bool = False


class AccountSummariesParams(Params):
    subaccount_id: int | None = None
    extended: bool = False


class MarginsParams(Params):
    instrument_name: str
    amount: Decimal
    price: Decimal


class WithdrawParams(Params):
    currency: str
    address: str
    amount: Decimal
    priority: str | None = None
    tfa: str | None = None


class WithdrawalsParams(Params):
    currency: str
    count: int = 10
    offset: int = 0


# --- conversions ------------------------------------------------------------------------------


def _price_ticks(value: Decimal, instrument: Instrument, engine: Any, param: str) -> int:
    try:
        ticks = price_to_ticks(value, instrument.tick_size)
    except Rejection as rejection:
        if rejection.code == RejectCode.PRICE_NOT_ON_TICK:
            raise ApiError(
                PRICE_WRONG_TICK, "price_wrong_tick", {"param": param, "reason": rejection.message}
            ) from None
        raise invalid_params(param, rejection.message) from None
    if ticks > engine.limits.max_price_ticks:
        raise invalid_params(param, f"{value} is above the venue's highest price")
    return ticks


def _lots(
    amount: Decimal | None, contracts: Decimal | None, instrument: Instrument, engine: Any
) -> int:
    """The size in lots of ``amount`` (units of the underlying) or ``contracts``."""
    if amount is None and contracts is None:
        raise invalid_params("amount", "give amount (or contracts)")
    param, value, grid = (
        ("amount", amount, shapes.unit_per_lot(instrument))
        if amount is not None
        else ("contracts", contracts or Decimal(0), instrument.lot_size)
    )
    try:
        lots = size_to_lots(value, grid)
    except Rejection as rejection:
        raise invalid_params(param, rejection.message.replace("size", param, 1)) from None
    if (
        contracts is not None
        and amount is not None
        and _lots(None, contracts, instrument, engine) != lots
    ):
        raise invalid_params("contracts", "does not match amount")
    if lots > engine.limits.max_size_lots:
        raise invalid_params(param, f"{value} is above the venue's largest order")
    return lots


def _unsupported(params: OrderParams | EditParams) -> None:
    for name in ("trigger_price", "trigger_offset", "advanced"):
        if getattr(params, name) is not None:
            raise invalid_params(name, "trigger and advanced orders are not supported")
    if params.mmp:
        raise invalid_params("mmp", "market-maker protection is not supported")
    if isinstance(params, OrderParams) and params.trigger is not None:
        raise invalid_params("trigger", "trigger orders are not supported")


def _post_only(post_only: bool, reject_post_only: bool) -> int:
    if reject_post_only and not post_only:
        raise invalid_params("reject_post_only", "applies to post_only orders only")
    if not post_only:
        return int(PostOnly.NONE)
    return int(PostOnly.REJECT if reject_post_only else PostOnly.REPRICE)


def _place_order(
    account: str, side: int, params: OrderParams, instrument: Instrument, engine: Any
) -> PlaceOrder:
    """The engine's order for a ``buy``/``sell`` request, every parameter checked."""
    _unsupported(params)
    if params.type not in ("limit", "market"):
        raise invalid_params("type", f"{params.type} orders are not supported")
    if params.time_in_force == "good_til_day":
        raise invalid_params("time_in_force", "good_til_day is not supported")
    if len(params.label) > MAX_LABEL_CHARS:
        raise invalid_params("label", f"at most {MAX_LABEL_CHARS} characters")
    if params.valid_until is not None and params.valid_until * 1_000_000 < engine.timestamp_ns:
        raise invalid_params("valid_until", "has passed")
    lots = _lots(params.amount, params.contracts, instrument, engine)
    if params.max_show is not None and _lots(params.max_show, None, instrument, engine) != lots:
        raise invalid_params("max_show", "hidden (iceberg) orders are not supported")
    market = params.type == "market"
    tif = _TIME_IN_FORCE[params.time_in_force]
    post_only = _post_only(params.post_only, params.reject_post_only)
    if post_only and (market or tif != TimeInForce.GTC):
        raise invalid_params("post_only", "a post-only order is a resting limit order")
    if market:
        if params.price is not None:
            raise invalid_params("price", "a market order takes no price")
        price = 0
    elif params.price is None:
        raise invalid_params("price", "a limit order needs a price")
    else:
        price = _price_ticks(params.price, instrument, engine, "price")
    try:
        return PlaceOrder(
            account=account,
            instrument=instrument.name,
            side=side,
            size_lots=lots,
            price_ticks=price,
            order_type=int(OrderType.MARKET if market else OrderType.LIMIT),
            time_in_force=tif,
            post_only=post_only,
            reduce_only=params.reduce_only,
            client_order_id=params.label,
        )
    except Rejection as rejection:
        raise error_of(rejection.code, rejection.message) from None


def _order_id(text: str) -> int:
    """An order id as the engine's integer; a malformed one cannot exist (``10004``)."""
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 19):
        raise _not_found(text)
    return int(text)


def _not_found(order_id: object) -> ApiError:
    return ApiError(ORDER_NOT_FOUND, "order_not_found", {"param": "order_id"})


def error_of(code: str, message: str) -> ApiError:
    """The Deribit error of an engine refusal (:data:`REJECT_ERRORS`)."""
    number, name = REJECT_ERRORS.get(code, _OTHER_REJECT)
    return ApiError(number, name, {"reason": message, "code": str(code)})


# --- submission -------------------------------------------------------------------------------


def submit_checked(node: Any, tx: Transaction) -> Awaitable[Ack]:
    """Queue ``tx`` now (a full inbox or a halted node refuses at once, as an ApiError); the
    awaitable answers its :class:`Ack`, or the engine's refusal as an ApiError."""
    try:
        future: asyncio.Future[Ack] = node.submit_nowait(tx)
    except RuntimeRejection as rejection:
        raise ApiError(TOO_MANY_REQUESTS, "too_many_requests", {"reason": str(rejection)}) from None
    except NodeHalted as halted:
        raise ApiError(NODE_UNAVAILABLE, "node_unavailable", {"reason": str(halted)}) from None
    return _checked(future)


async def _checked(future: Awaitable[Ack]) -> Ack:
    try:
        ack = await future
    except NodeHalted as halted:
        raise ApiError(NODE_UNAVAILABLE, "node_unavailable", {"reason": str(halted)}) from None
    for event in ack.events:
        if isinstance(event, Rejected):
            raise error_of(event.code, event.message)
    return ack


def record_from_ack(place: PlaceOrder, ack: Ack) -> OrderRecord:
    """The order a ``buy``/``sell`` made, from its block's events alone: accepted, repriced,
    filled (its fills as taker), cancelled (an IOC's or market order's remainder)."""
    accepted = next(e for e in ack.events if isinstance(e, OrderAccepted))
    record = OrderRecord(
        order_id=accepted.order_id,
        account=place.account,
        instrument=place.instrument,
        side=place.side,
        price_ticks=accepted.price_ticks,
        size_lots=accepted.size_lots,
        label=place.client_order_id,
        order_type=ORDER_TYPE_NAMES[place.order_type],
        time_in_force=TIME_IN_FORCE_NAMES[place.time_in_force],
        post_only=bool(place.post_only),
        reduce_only=place.reduce_only,
        created_ns=ack.timestamp_ns,
        updated_ns=ack.timestamp_ns,
    )
    for event in ack.events:
        if isinstance(event, OrderRepriced) and event.order_id == record.order_id:
            record.price_ticks = event.price_ticks
        elif isinstance(event, Fill) and event.taker_order_id == record.order_id:
            record.filled_lots += event.size_lots
            record.filled_value_ticks += event.price_ticks * event.size_lots
            record.commission_minor += event.taker_fee
            if event.taker_remaining_lots == 0:
                record.state = "filled"
        elif isinstance(event, OrderCancelled | OrderExpired) and event.order_id == record.order_id:
            record.state = "cancelled"
            record.cancel_reason = event.reason if isinstance(event, OrderCancelled) else "EXPIRED"
    return record


def _block_trades(
    history: TradeHistory, account: str, order_id: int, ack: Ack
) -> list[TradeRecord]:
    """The account's trades of ``order_id`` in the acknowledged block, oldest first."""
    found: list[TradeRecord] = []
    for trade in reversed(history.trades.get(account, ())):
        if trade.timestamp_ns < ack.timestamp_ns:
            break
        if trade.order_id == order_id and trade.trade_id.startswith(f"{ack.height}-"):
            found.append(trade)
    return found[::-1]


def _instrument_of(engine: Any, name: str) -> Instrument | None:
    instrument: Instrument | None = engine.instruments.get(name)
    return instrument if instrument is not None else engine.expired_instruments.get(name)


def _trades_json(engine: Any, trades: Iterable[TradeRecord]) -> list[dict[str, Any]]:
    out = []
    for trade in trades:
        instrument = _instrument_of(engine, trade.instrument)
        if instrument is not None:
            out.append(shapes.trade_shape(trade, instrument))
    return out


def _order_json(engine: Any, record: OrderRecord) -> dict[str, Any]:
    instrument = _instrument_of(engine, record.instrument)
    if instrument is None:  # delisted since: the order cannot be shown in its units
        raise _not_found(record.order_id)
    return shapes.order_shape(record, instrument)


def _current_record(context: Context, account: str, order_id: int) -> OrderRecord | None:
    """The account's order, from the history, or from the engine if it predates it."""
    record = require_history(context.node).get_order(account, order_id)
    if record is not None:
        return record
    order = context.node.engine.orders.get(order_id)
    if order is None or order.account != account:
        return None
    return record_of_engine_order(order, 0)


# --- orders -----------------------------------------------------------------------------------


def _trade(context: Context, side: Side, params: OrderParams) -> Awaitable[dict[str, Any]]:
    """Check and submit the order now; awaited, its answer. A plain function (as ``buy`` and
    ``sell`` are), not a coroutine: each frame of an order's answer is resumed once per
    order, inside its block's answers."""
    account = context.require_account()
    engine = context.node.engine
    instrument = require_instrument(engine, params.instrument_name)
    place = _place_order(account, int(side), params, instrument, engine)
    return order_result(context, place, instrument, submit_checked(context.node, place))


async def order_result(
    context: Context, place: PlaceOrder, instrument: Instrument, submitted: Awaitable[Ack]
) -> dict[str, Any]:
    """``buy``/``sell``'s answer (``{order, trades}``) for ``place`` once ``submitted`` (its
    submission, see :func:`submit_checked`) is acknowledged."""
    ack = await submitted
    record = record_from_ack(place, ack)
    history = require_history(context.node)
    trades = _block_trades(history, place.account, record.order_id, ack)
    return {
        "order": shapes.order_shape(record, instrument),
        "trades": _trades_json(context.node.engine, trades),
    }


@method("private/buy", OrderParams, Scope.TRADE)
def buy(context: Context, params: OrderParams) -> Awaitable[Any]:
    return _trade(context, Side.BUY, params)


@method("private/sell", OrderParams, Scope.TRADE)
def sell(context: Context, params: OrderParams) -> Awaitable[Any]:
    return _trade(context, Side.SELL, params)


@method("private/edit", EditParams, Scope.TRADE)
async def edit(context: Context, params: EditParams) -> Any:
    account = context.require_account()
    _unsupported(params)
    engine = context.node.engine
    order_id = _order_id(params.order_id)
    order = engine.orders.get(order_id)
    if order is None or order.account != account:
        raise _not_found(order_id)
    instrument = require_instrument(engine, order.instrument)
    price = order.price
    if params.price is not None:
        price = _price_ticks(params.price, instrument, engine, "price")
    lots = order.size
    if params.amount is not None or params.contracts is not None:
        lots = _lots(params.amount, params.contracts, instrument, engine)
    post_only = _post_only(params.post_only, params.reject_post_only)
    amend = Amend(
        account=account, order_id=order_id, price_ticks=price, size_lots=lots, post_only=post_only
    )
    ack = await submit_checked(context.node, amend)
    history = require_history(context.node)
    record = history.get_order(account, order_id)
    if record is None:  # predates the history: the engine's view after the block
        record = _edited_record(engine, order_id, ack)
    return {
        "order": shapes.order_shape(record, instrument),
        "trades": _trades_json(engine, _block_trades(history, account, order_id, ack)),
    }


def _edited_record(engine: Any, order_id: int, ack: Ack) -> OrderRecord:
    amended = next(e for e in ack.events if isinstance(e, OrderAmended))
    order = engine.orders.get(order_id)
    if order is not None:
        return record_of_engine_order(order, 0)
    raise ApiError(ALREADY_CLOSED, "already_closed", {"reason": f"filled at {amended.price_ticks}"})


@method("private/cancel", OrderIdParams, Scope.TRADE)
async def cancel(context: Context, params: OrderIdParams) -> Any:
    account = context.require_account()
    engine = context.node.engine
    order_id = _order_id(params.order_id)
    order = engine.orders.get(order_id)
    if order is None or order.account != account:
        raise _not_found(order_id)
    before = record_of_engine_order(order, 0)
    ack = await submit_checked(context.node, Cancel(account=account, order_id=order_id))
    record = require_history(context.node).get_order(account, order_id)
    if record is None:
        before.state, before.cancel_reason = "cancelled", "REQUESTED"
        before.updated_ns = ack.timestamp_ns
        record = before
    return _order_json(engine, record)


def _cancelled(acks: Iterable[Ack], account: str) -> int:
    return sum(
        1
        for ack in acks
        for event in ack.events
        if isinstance(event, OrderCancelled) and event.account == account
    )


async def _cancel_on(context: Context, account: str, instruments: list[str]) -> int:
    """Cancel the account's open orders on ``instruments`` (one CancelAll each, submitted at
    once); how many were cancelled."""
    futures = [
        context.node.submit_nowait(CancelAll(account=account, instrument=name))
        for name in instruments
    ]
    acks = await asyncio.gather(*futures)
    for ack in acks:
        for event in ack.events:
            if isinstance(event, Rejected):
                raise error_of(event.code, event.message)
    return _cancelled(acks, account)


def _check_cancel_type(kind: str) -> None:
    if kind not in ("all", "limit"):
        raise invalid_params("type", f"{kind[:32]!r}: only limit orders exist here")


@method("private/cancel_all", CancelAllParams, Scope.TRADE)
async def cancel_all(context: Context, params: CancelAllParams) -> Any:
    account = context.require_account()
    ack = await submit_checked(context.node, CancelAll(account=account))
    return _cancelled([ack], account)


@method("private/cancel_all_by_instrument", CancelAllByInstrumentParams, Scope.TRADE)
async def cancel_all_by_instrument(context: Context, params: CancelAllByInstrumentParams) -> Any:
    account = context.require_account()
    _check_cancel_type(params.type)
    instrument = require_instrument(context.node.engine, params.instrument_name)
    ack = await submit_checked(context.node, CancelAll(account=account, instrument=instrument.name))
    return _cancelled([ack], account)


@method("private/cancel_all_by_currency", CancelAllByCurrencyParams, Scope.TRADE)
async def cancel_all_by_currency(context: Context, params: CancelAllByCurrencyParams) -> Any:
    account = context.require_account()
    _check_cancel_type(params.type)
    engine = context.node.engine
    names = {i.name for i in instruments_of(engine, params.currency, params.kind)}
    open_on = dict.fromkeys(
        o.instrument for o in engine.open_orders(account) if o.instrument in names
    )
    return await _cancel_on(context, account, list(open_on))


@method("private/cancel_by_label", CancelByLabelParams, Scope.TRADE)
async def cancel_by_label(context: Context, params: CancelByLabelParams) -> Any:
    """Deribit's: cancel the account's open orders labelled ``label`` (of ``currency`` if
    given); how many. A label is the engine's client order id, unique among an account's open
    orders, so at most one: a ``Cancel`` by client id, judged in block order (an order that
    fills first is not cancelled: 0)."""
    account = context.require_account()
    if not params.label or len(params.label) > MAX_LABEL_CHARS:
        raise invalid_params("label", f"1 to {MAX_LABEL_CHARS} characters")
    engine = context.node.engine
    names = (
        None
        if params.currency is None
        else {i.name for i in instruments_of(engine, params.currency, None)}
    )
    mine = engine.accounts.get(account)
    order = engine.orders.get(mine.client_ids.get(params.label, 0)) if mine is not None else None
    if order is None or (names is not None and order.instrument not in names):
        return 0
    try:
        cancel = Cancel(account=account, client_order_id=params.label)
        ack = await submit_checked(context.node, cancel)
    except ApiError as error:
        if error.code == ORDER_NOT_FOUND:  # filled or cancelled before its block
            return 0
        raise
    return _cancelled([ack], account)


# --- order and trade queries ------------------------------------------------------------------


def _open_orders(context: Context, account: str, names: set[str] | None) -> list[dict[str, Any]]:
    engine = context.node.engine
    out = []
    for order in engine.open_orders(account):
        if names is None or order.instrument in names:
            record = _current_record(context, account, order.order_id)
            if record is not None:
                out.append(_order_json(engine, record))
    return out


@method("private/get_open_orders_by_instrument", OpenOrdersByInstrumentParams, Scope.READ)
async def get_open_orders_by_instrument(
    context: Context, params: OpenOrdersByInstrumentParams
) -> Any:
    account = context.require_account()
    _check_cancel_type(params.type)
    instrument = require_instrument(context.node.engine, params.instrument_name)
    return _open_orders(context, account, {instrument.name})


@method("private/get_open_orders_by_currency", OpenOrdersByCurrencyParams, Scope.READ)
async def get_open_orders_by_currency(context: Context, params: OpenOrdersByCurrencyParams) -> Any:
    account = context.require_account()
    _check_cancel_type(params.type)
    names = {i.name for i in instruments_of(context.node.engine, params.currency, params.kind)}
    return _open_orders(context, account, names)


@method("private/get_open_orders", OpenOrdersParams, Scope.READ)
async def get_open_orders(context: Context, params: OpenOrdersParams) -> Any:
    account = context.require_account()
    _check_cancel_type(params.type)
    names = {i.name for i in instruments_of(context.node.engine, "any", params.kind)}
    return _open_orders(context, account, names)


@method("private/get_order_state", OrderIdParams, Scope.READ)
async def get_order_state(context: Context, params: OrderIdParams) -> Any:
    account = context.require_account()
    order_id = _order_id(params.order_id)
    record = _current_record(context, account, order_id)
    if record is None:
        raise _not_found(order_id)
    return _order_json(context.node.engine, record)


def _page(trades: list[TradeRecord], count: int, sorting: str) -> dict[str, Any]:
    """Deribit's ``{trades, has_more}``: the newest ``count`` (``asc``: the oldest)."""
    check_count(count)
    ordered = trades if sorting == "asc" else trades[::-1]
    return {"trades": ordered[:count], "has_more": len(ordered) > count}


def _user_trades(
    context: Context, account: str, names: set[str], keep: Any, count: int, sorting: str
) -> dict[str, Any]:
    history = require_history(context.node)
    selected = [t for t in history.account_trades(account) if t.instrument in names and keep(t)]
    page = _page(selected, count, sorting)
    page["trades"] = _trades_json(context.node.engine, page["trades"])
    return page


def _in_time(start_ms: int, end_ms: int | None) -> Any:
    if end_ms is not None and end_ms < start_ms:
        raise invalid_params("end_timestamp", "is before start_timestamp")
    return lambda t: (
        start_ms <= shapes.ms(t.timestamp_ns)
        and (end_ms is None or shapes.ms(t.timestamp_ns) <= end_ms)
    )


@method("private/get_user_trades_by_instrument", TradesByInstrumentParams, Scope.READ)
async def get_user_trades_by_instrument(context: Context, params: TradesByInstrumentParams) -> Any:
    account = context.require_account()
    instrument = require_instrument(context.node.engine, params.instrument_name, expired=True)
    low = params.start_seq if params.start_seq is not None else 0
    high = params.end_seq

    def keep(trade: TradeRecord) -> bool:
        return low <= trade.trade_seq and (high is None or trade.trade_seq <= high)

    return _user_trades(context, account, {instrument.name}, keep, params.count, params.sorting)


@method(
    "private/get_user_trades_by_instrument_and_time", TradesByInstrumentAndTimeParams, Scope.READ
)
async def get_user_trades_by_instrument_and_time(
    context: Context, params: TradesByInstrumentAndTimeParams
) -> Any:
    account = context.require_account()
    instrument = require_instrument(context.node.engine, params.instrument_name, expired=True)
    keep = _in_time(params.start_timestamp, params.end_timestamp)
    return _user_trades(context, account, {instrument.name}, keep, params.count, params.sorting)


def _currency_names(engine: Any, currency: str, kind: str | None) -> set[str]:
    live = instruments_of(engine, currency, kind)
    expired = instruments_of(engine, currency, kind, expired=True)
    return {i.name for i in (*live, *expired)}


@method("private/get_user_trades_by_currency", TradesByCurrencyParams, Scope.READ)
async def get_user_trades_by_currency(context: Context, params: TradesByCurrencyParams) -> Any:
    account = context.require_account()
    names = _currency_names(context.node.engine, params.currency, params.kind)
    return _user_trades(context, account, names, lambda t: True, params.count, params.sorting)


@method("private/get_user_trades_by_currency_and_time", TradesByCurrencyAndTimeParams, Scope.READ)
async def get_user_trades_by_currency_and_time(
    context: Context, params: TradesByCurrencyAndTimeParams
) -> Any:
    account = context.require_account()
    names = _currency_names(context.node.engine, params.currency, params.kind)
    keep = _in_time(params.start_timestamp, params.end_timestamp)
    return _user_trades(context, account, names, keep, params.count, params.sorting)


@method("private/get_user_trades_by_order", TradesByOrderParams, Scope.READ)
async def get_user_trades_by_order(context: Context, params: TradesByOrderParams) -> Any:
    account = context.require_account()
    order_id = _order_id(params.order_id)
    if _current_record(context, account, order_id) is None:
        raise _not_found(order_id)
    trades = [
        t for t in require_history(context.node).account_trades(account) if t.order_id == order_id
    ]
    ordered = trades if params.sorting == "asc" else trades[::-1]
    return _trades_json(context.node.engine, ordered)


# --- positions and balances -------------------------------------------------------------------


def _ledgers(engine: Any, account: str, underlying: str | None) -> list[SubLedger]:
    """The account's sub-ledgers (on ``underlying``, or all), values current."""
    mine = engine.accounts.get(account)
    names = [] if mine is None else list(mine.ledgers)
    return [
        ledger
        for name in names
        if underlying is None or name == underlying
        if (ledger := engine.get_ledger(account, name)) is not None
    ]


@method("private/get_positions", PositionsParams, Scope.READ)
async def get_positions(context: Context, params: PositionsParams) -> Any:
    account = context.require_account()
    engine = context.node.engine
    underlying = None if params.currency is None else check_currency(engine, params.currency)
    names = {i.name for i in instruments_of(engine, "any", params.kind)}
    out = []
    for ledger in _ledgers(engine, account, underlying):
        for exposure in ledger.exposures.values():
            if exposure.position and exposure.market.name in names:
                instrument = engine.instruments[exposure.market.name]
                out.append(shapes.position_shape(engine, exposure, instrument))
    return out


@method("private/get_position", PositionParams, Scope.READ)
async def get_position(context: Context, params: PositionParams) -> Any:
    account = context.require_account()
    engine = context.node.engine
    instrument = require_instrument(engine, params.instrument_name)
    market = engine.markets[instrument.name]
    ledger = engine.get_ledger(account, instrument.underlying)
    exposure = None if ledger is None else ledger.exposures.get(instrument.name)
    if exposure is None:
        empty = SubLedger(account=account, underlying=instrument.underlying, state=market.state)
        exposure = Exposure(ledger=empty, market=market)
    return shapes.position_shape(engine, exposure, instrument)


def account_summary(engine: Any, account: str, currency: str, *, extended: bool) -> dict[str, Any]:
    """The account's summary in ``currency`` (an underlying: its sub-ledger; USDC: all of them),
    as ``private/get_account_summary`` and the ``user.portfolio`` channel show it."""
    underlying = check_currency(engine, currency)
    if currency == "any":
        raise invalid_params("currency", "name USDC or an underlying")
    ledgers = _ledgers(engine, account, underlying)
    return shapes.account_summary_shape(currency, account, ledgers, extended=extended)


@method("private/get_account_summary", AccountSummaryParams, Scope.READ)
async def get_account_summary(context: Context, params: AccountSummaryParams) -> Any:
    account = context.require_account()
    _no_subaccounts(params.subaccount_id)
    return account_summary(context.node.engine, account, params.currency, extended=params.extended)


@method("private/get_account_summaries", AccountSummariesParams, Scope.READ)
async def get_account_summaries(context: Context, params: AccountSummariesParams) -> Any:
    """One summary, ``USDC``: the only collateral currency (each underlying's sub-ledger is
    ``private/get_account_summary`` with that underlying as the currency)."""
    account = context.require_account()
    _no_subaccounts(params.subaccount_id)
    summary = account_summary(context.node.engine, account, shapes.QUOTE, extended=params.extended)
    return {**shapes.account_identity(account), "summaries": [summary]}


def _no_subaccounts(subaccount_id: int | None) -> None:
    if subaccount_id is not None:
        raise invalid_params("subaccount_id", "subaccounts are not supported")


@method("private/get_margins", MarginsParams, Scope.READ)
async def get_margins(context: Context, params: MarginsParams) -> Any:
    """What-if margin (:meth:`Engine.what_if`): the initial margin (with the open-order
    reserve) the order adds resting, per side, in USDC, and the market order band."""
    account = context.require_account()
    engine = context.node.engine
    instrument = require_instrument(engine, params.instrument_name)
    lots = _lots(params.amount, None, instrument, engine)
    price = _price_ticks(params.price, instrument, engine, "price")
    added = {}
    for side, key in ((Side.BUY, "buy"), (Side.SELL, "sell")):
        order = PlaceOrder(
            account=account, instrument=instrument.name, side=int(side), size_lots=lots,
            price_ticks=price,
        )  # fmt: skip
        try:
            answer = engine.what_if(order)
        except Rejection as rejection:
            raise error_of(rejection.code, rejection.message) from None
        before = answer.initial + answer.reserve
        added[key] = shapes.usdc(max(0, answer.resting_initial + answer.resting_reserve - before))
    market = engine.markets[instrument.name]
    band = shapes._price_band(engine, market, instrument)
    return {**added, "min_price": band["min_price"], "max_price": band["max_price"]}


# --- withdrawals ------------------------------------------------------------------------------


def _withdrawal_underlying(engine: Any, currency: str) -> str:
    """The sub-ledger a withdrawal's ``currency`` names: an underlying, or USDC when the venue
    has one underlying only (otherwise which sub-ledger would be ambiguous)."""
    if currency == shapes.QUOTE and len(engine.underlyings) == 1:
        return str(next(iter(engine.underlyings)))
    if currency in engine.underlyings:
        return currency
    raise invalid_params("currency", "name the sub-ledger's underlying (BTC, ...)")


def _minor(amount: Decimal) -> int:
    try:
        value = to_decimal(amount, "amount")
    except Rejection as rejection:
        raise invalid_params("amount", rejection.message) from None
    if value <= 0:
        raise invalid_params("amount", f"{value} must be positive")
    minor = quote_to_minor(value, Rounding.FLOOR)
    if minor_to_quote(minor) != value:
        raise invalid_params("amount", f"{value} has more than 6 decimals")
    return minor


def withdrawal_shape(
    record_id: int, account: str, underlying: str, minor: int, timestamp_ns: int
) -> dict[str, Any]:
    return {
        "id": record_id,
        "address": account,
        "amount": shapes.usdc(minor),
        "currency": shapes.QUOTE,
        "underlying": underlying,
        "fee": 0,
        "priority": 1,
        "state": "unconfirmed",
        "transaction_id": None,
        "created_timestamp": shapes.ms(timestamp_ns),
        "updated_timestamp": shapes.ms(timestamp_ns),
        "confirmed_timestamp": None,
    }


@method("private/withdraw", WithdrawParams, Scope.WITHDRAW)
async def withdraw(context: Context, params: WithdrawParams) -> Any:
    """Collateral leaves to the account's own address only (the settlement layer pays the
    account that holds the sub-ledger)."""
    account = context.require_account()
    engine = context.node.engine
    underlying = _withdrawal_underlying(engine, params.currency)
    if params.address.lower() != account.lower():
        raise invalid_params("address", "withdrawals go to the account's own address")
    minor = _minor(params.amount)
    if minor > engine.limits.max_amount_minor:
        raise invalid_params("amount", "is above the venue's largest withdrawal")
    ack = await submit_checked(
        context.node, Withdraw(account=account, underlying=underlying, amount=minor)
    )
    event = next(e for e in ack.events if isinstance(e, WithdrawalRequested))
    return withdrawal_shape(event.withdrawal_id, account, underlying, minor, ack.timestamp_ns)


@method("private/get_withdrawals", WithdrawalsParams, Scope.READ)
async def get_withdrawals(context: Context, params: WithdrawalsParams) -> Any:
    account = context.require_account()
    engine = context.node.engine
    underlying = check_currency(engine, params.currency)
    count = check_count(params.count)
    if params.offset < 0:
        raise invalid_params("offset", "must not be negative")
    records = [
        r
        for r in reversed(require_history(context.node).withdrawals.get(account, ()))
        if underlying is None or r.underlying == underlying
    ]
    page = records[params.offset : params.offset + count]
    return {
        "count": len(records),
        "data": [
            withdrawal_shape(r.transfer_id, account, r.underlying, r.amount_minor, r.timestamp_ns)
            for r in page
        ],
    }
