"""Deribit v2's public methods: currencies, instruments, market data, index, funding, time.

Every result is read from the engine's state as of the last block (and the API's
:mod:`~strikechain.node.api.history`), shaped by :mod:`~strikechain.node.api.shapes`. A
``currency`` names an underlying (``BTC``: its instruments), ``USDC`` (every instrument: all
are linear, USDC-margined) or ``any``; another is refused (``-32602``, param ``currency``).

Limits: a book is read at most :data:`MAX_BOOK_DEPTH` levels a side; histories return at most
:data:`MAX_COUNT` entries per call.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

import strikechain
from strikechain.engine.calendar import civil_from_ns
from strikechain.engine.instruments import Instrument, InstrumentKind
from strikechain.node.api import shapes
from strikechain.node.api.errors import INSTRUMENT_NOT_FOUND, ApiError, invalid_params
from strikechain.node.api.history import TradeHistory, attach
from strikechain.node.api.registry import Context, method

MAX_BOOK_DEPTH: Final = 10_000
DEFAULT_BOOK_DEPTH: Final = 20
MAX_COUNT: Final = 1_000

Kind = Literal["future", "option", "spot", "future_combo", "option_combo"]


class Params(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every method's parameters: unknown names refused (``-32602``)."""


class NoParams(Params):
    pass


class GetInstrumentsParams(Params):
    currency: str = "any"
    kind: Kind | None = None
    expired: bool = False


class InstrumentParams(Params):
    instrument_name: str


class GetOrderBookParams(Params):
    instrument_name: str
    depth: int | None = None


class BookSummaryByCurrencyParams(Params):
    currency: str
    kind: Kind | None = None


class IndexPriceParams(Params):
    index_name: str


class FundingRateHistoryParams(Params):
    instrument_name: str
    start_timestamp: int
    end_timestamp: int


class DeliveryPricesParams(Params):
    index_name: str
    offset: int = 0
    count: int = 10


class TestParams(Params):
    expected_result: str | None = None


# --- helpers shared with the private methods -------------------------------------------------


def require_history(node: Any) -> TradeHistory:
    return attach(node)


def require_instrument(engine: Any, name: str, *, expired: bool = False) -> Instrument:
    """A listed instrument (or, with ``expired``, an expired one); ``INSTRUMENT_NOT_FOUND``."""
    instrument: Instrument | None = engine.instruments.get(name)
    if instrument is None and expired:
        instrument = engine.expired_instruments.get(name)
    if instrument is None:
        raise ApiError(
            INSTRUMENT_NOT_FOUND,
            "instrument_not_found",
            {"param": "instrument_name", "reason": f"{name[:64]!r} is not listed"},
        )
    return instrument


def check_currency(engine: Any, currency: str) -> str | None:
    """The underlying a ``currency`` selects (None: every one)."""
    if currency in ("any", shapes.QUOTE):
        return None
    if currency in engine.underlyings:
        return currency
    known = ", ".join([*engine.underlyings, shapes.QUOTE, "any"])
    raise invalid_params("currency", f"{currency[:32]!r} is not one of {known}")


def instruments_of(
    engine: Any, currency: str, kind: str | None, *, expired: bool = False
) -> list[Instrument]:
    """Instruments of ``currency`` and ``kind`` (Deribit's: perpetuals are ``future``)."""
    underlying = check_currency(engine, currency)
    source = engine.expired_instruments if expired else engine.instruments
    wanted = {
        None: (InstrumentKind.PERPETUAL, InstrumentKind.OPTION),
        "future": (InstrumentKind.PERPETUAL,),
        "option": (InstrumentKind.OPTION,),
    }.get(kind, ())
    return [
        instrument
        for instrument in source.values()
        if instrument.kind in wanted and (underlying is None or instrument.underlying == underlying)
    ]


def check_count(count: int, param: str = "count") -> int:
    if not 1 <= count <= MAX_COUNT:
        raise invalid_params(param, f"{count} is not between 1 and {MAX_COUNT}")
    return count


# --- methods ----------------------------------------------------------------------------------


@method("public/test", TestParams)
async def test(context: Context, params: TestParams) -> Any:
    return {"version": strikechain.__version__}


@method("public/get_time", NoParams)
async def get_time(context: Context, params: NoParams) -> Any:
    return shapes.ms(context.node.clock())


@method("public/get_currencies", NoParams)
async def get_currencies(context: Context, params: NoParams) -> Any:
    engine = context.node.engine
    currencies = [shapes.currency_shape(name, name) for name in engine.underlyings]
    currencies.append(shapes.currency_shape(shapes.QUOTE, "USD Coin"))
    return currencies


@method("public/get_instruments", GetInstrumentsParams)
async def get_instruments(context: Context, params: GetInstrumentsParams) -> Any:
    node = context.node
    engine = node.engine
    history = require_history(node)
    selected = instruments_of(engine, params.currency, params.kind, expired=params.expired)
    return [_instrument(engine, history, instrument) for instrument in selected]


@method("public/get_instrument", InstrumentParams)
async def get_instrument(context: Context, params: InstrumentParams) -> Any:
    engine = context.node.engine
    instrument = require_instrument(engine, params.instrument_name, expired=True)
    return _instrument(engine, require_history(context.node), instrument)


def _instrument(engine: Any, history: TradeHistory, instrument: Instrument) -> dict[str, Any]:
    market = engine.markets.get(instrument.name)
    active = market is not None and not market.halted
    listed = history.listed_ns.get(instrument.name, 0)
    return shapes.instrument_shape(instrument, market, listed, active)


@method("public/ticker", InstrumentParams)
async def ticker(context: Context, params: InstrumentParams) -> Any:
    engine = context.node.engine
    instrument = require_instrument(engine, params.instrument_name)
    return shapes.ticker_shape(engine, instrument, require_history(context.node))


@method("public/get_order_book", GetOrderBookParams)
async def get_order_book(context: Context, params: GetOrderBookParams) -> Any:
    depth = DEFAULT_BOOK_DEPTH if params.depth is None else params.depth
    if not 1 <= depth <= MAX_BOOK_DEPTH:
        raise invalid_params("depth", f"{depth} is not between 1 and {MAX_BOOK_DEPTH}")
    engine = context.node.engine
    instrument = require_instrument(engine, params.instrument_name)
    return shapes.book_shape(engine, instrument, depth, require_history(context.node))


@method("public/get_book_summary_by_currency", BookSummaryByCurrencyParams)
async def get_book_summary_by_currency(
    context: Context, params: BookSummaryByCurrencyParams
) -> Any:
    engine = context.node.engine
    history = require_history(context.node)
    return [
        shapes.book_summary_shape(engine, instrument, history)
        for instrument in instruments_of(engine, params.currency, params.kind)
    ]


@method("public/get_book_summary_by_instrument", InstrumentParams)
async def get_book_summary_by_instrument(context: Context, params: InstrumentParams) -> Any:
    engine = context.node.engine
    instrument = require_instrument(engine, params.instrument_name)
    return [shapes.book_summary_shape(engine, instrument, require_history(context.node))]


def _underlying_of_index(engine: Any, index_name: str) -> str:
    for underlying in engine.underlyings:
        if shapes.index_name(underlying) == index_name:
            return str(underlying)
    known = ", ".join(shapes.index_name(u) for u in engine.underlyings)
    raise invalid_params("index_name", f"{index_name[:32]!r} is not one of {known}")


@method("public/get_index_price", IndexPriceParams)
async def get_index_price(context: Context, params: IndexPriceParams) -> Any:
    engine = context.node.engine
    state = engine.underlyings[_underlying_of_index(engine, params.index_name)]
    index = None if state.oracle is None else state.oracle.index
    price = shapes.usdc(index) if index else None
    return {"index_price": price, "estimated_delivery_price": price}


@method("public/get_funding_rate_history", FundingRateHistoryParams)
async def get_funding_rate_history(context: Context, params: FundingRateHistoryParams) -> Any:
    engine = context.node.engine
    instrument = require_instrument(engine, params.instrument_name)
    if instrument.kind != InstrumentKind.PERPETUAL:
        raise invalid_params("instrument_name", f"{instrument.name} is not a perpetual")
    if params.end_timestamp < params.start_timestamp:
        raise invalid_params("end_timestamp", "is before start_timestamp")
    state = engine.underlyings[instrument.underlying]
    interval_ns = state.params.funding.interval_ns if state.params is not None else 1
    records = require_history(context.node).funding.get(instrument.name, ())
    rows = [
        record
        for record in records
        if params.start_timestamp <= shapes.ms(record.timestamp_ns) <= params.end_timestamp
    ][-744:]
    hour_ns = 3_600_000_000_000
    return [
        {
            "timestamp": shapes.ms(record.timestamp_ns),
            "index_price": shapes.usdc(record.index_minor),
            "prev_index_price": shapes.usdc(record.previous_index_minor),
            "interest_1h": record.rate_ppb * hour_ns / interval_ns / 1e9,
            "interest_8h": record.rate_ppb * 8 * hour_ns / interval_ns / 1e9,
        }
        for record in rows
    ]


@method("public/get_delivery_prices", DeliveryPricesParams)
async def get_delivery_prices(context: Context, params: DeliveryPricesParams) -> Any:
    engine = context.node.engine
    underlying = _underlying_of_index(engine, params.index_name)
    count = check_count(params.count)
    if params.offset < 0:
        raise invalid_params("offset", "must not be negative")
    records = list(require_history(context.node).deliveries.get(underlying, ()))[::-1]
    page = records[params.offset : params.offset + count]
    return {
        "data": [
            {
                "date": _date(record.expiry_ns),
                "delivery_price": shapes.usdc(record.price_minor),
            }
            for record in page
        ],
        "records_total": len(records),
    }


def _date(timestamp_ns: int) -> str:
    time = civil_from_ns(timestamp_ns)
    return f"{time.year:04d}-{time.month:02d}-{time.day:02d}"
