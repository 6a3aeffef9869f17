"""Engine values as Deribit v2's JSON shapes: the results of the API's methods and the data of
the transport's subscription notifications.

Units at this boundary (and nowhere else):

- prices: USDC per unit of the underlying (``ticks x tick_size``, exact, then a JSON number);
- amounts: units of the underlying (``lots x lot_size x contract_size``), as Deribit's linear
  instruments report them;
- money: USDC (minor units / 10**6); timestamps: integer milliseconds (block time, floored);
- ids: strings (``str(order_id)``), as Deribit's.

Numbers leave as JSON numbers (``float`` of an exact ``Decimal``: the shortest repr of a
double, so ``100.5`` stays ``100.5``); nothing here feeds back into state. Option analytics
(``mark_iv`` in percent, and Greeks per Deribit's conventions: delta per unit of the
underlying, gamma per USDC, vega per 1% of vol, theta per day, rho per 1% of rate) come from the
oracle's vol surface (:func:`strikechain.engine.oracle.option_vols`, the vol the engine marks
at) and Black-76 on the index, in the pricing library's fast mode: for display, never state.

Notification data (the transport's channels, :mod:`.sessions`): ``ticker.{instrument}.{interval}``
-> :func:`ticker_shape`; ``trades.{instrument}.{interval}`` -> [:func:`public_trade_shape`];
``user.orders.{instrument}.{interval}`` -> :func:`order_shape`;
``user.trades.{instrument}.{interval}`` -> [:func:`trade_shape`];
``user.portfolio.{currency}`` -> :func:`account_summary_shape`; the book channels' levels in
:func:`price_of` and :func:`amount_of`. What changed in a block is
:attr:`strikechain.node.api.history.TradeHistory.last_block`.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final

from strikechain import pricing
from strikechain.engine.accounts import Exposure, Market, SubLedger
from strikechain.engine.book import Book
from strikechain.engine.calendar import Weekday, civil_from_ns, days_in_month, weekday_from_ns
from strikechain.engine.instruments import Instrument, InstrumentKind, OptionType
from strikechain.engine.oracle import NANOS_PER_YEAR, option_vols
from strikechain.engine.units import (
    NANOS_PER_DAY,
    NANOS_PER_HOUR,
    NANOS_PER_MILLISECOND,
    QUOTE_DECIMALS,
    QUOTE_SCALE,
    scale_decimal,
    ticks_to_price,
)
from strikechain.node.api.history import OrderRecord, PublicTrade, TradeHistory, TradeRecord

QUOTE: Final = "USDC"
PERPETUAL_EXPIRATION_MS: Final = 32_503_708_800_000
"""Deribit's expiration timestamp of a perpetual (year 3000)."""
_PPM: Final = 1_000_000
_PPB: Final = 1_000_000_000
_CANCEL_REASONS: Final = {
    "REQUESTED": "user_request",
    "IMMEDIATE_OR_CANCEL": "immediate_or_cancel",
    "SELF_TRADE": "self_trade",
    "MARKET_EXPIRED": "settlement",
    "DELISTED": "settlement",
    "LIQUIDATION": "autoliquidation",
    "REDUCE_ONLY": "reduce_only",
    "EXPIRED": "good_til_day",
}


# --- units ----------------------------------------------------------------------------------


def number(value: Decimal) -> float | int:
    """An exact decimal as a JSON number (an int when whole)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def unit_per_lot(instrument: Instrument) -> Decimal:
    """Units of the underlying in one lot (the amount grid of the API)."""
    return instrument.lot_size * instrument.contract_size


@functools.lru_cache(maxsize=256)
def _ratio(step: Decimal) -> tuple[int, int]:
    """``step`` as an exact fraction (a grid step: tick, lot, a minor unit)."""
    return step.as_integer_ratio()


def _scaled(count: int, step: Decimal) -> float | int:
    """``count * step`` as :func:`number` gives it, without building a Decimal: an int when
    whole, else the correctly rounded float of the exact value (int / int true division rounds
    correctly, as ``float(Decimal)`` does). Every order and trade the API sends goes through
    here several times."""
    return _times(count, _ratio(step))


def _times(count: int, ratio: tuple[int, int]) -> float | int:
    numerator, denominator = ratio
    product = count * numerator
    whole, remainder = divmod(product, denominator)
    return whole if not remainder else product / denominator


_UNIT_RATIOS: dict[str, tuple[Instrument, tuple[int, int]]] = {}
"""Per instrument name: the instrument and its :func:`unit_per_lot` as an exact fraction
(three amounts an order answer: a Decimal product and hash each time cost 1 us apiece)."""


def _unit_ratio(instrument: Instrument) -> tuple[int, int]:
    entry = _UNIT_RATIOS.get(instrument.name)
    if entry is None or entry[0] is not instrument:
        entry = _UNIT_RATIOS[instrument.name] = (
            instrument,
            unit_per_lot(instrument).as_integer_ratio(),
        )
    return entry[1]


_MINOR_UNIT: Final = Decimal(1).scaleb(-QUOTE_DECIMALS)


def price_of(ticks: int, instrument: Instrument) -> float | int:
    return _scaled(ticks, instrument.tick_size)


def amount_of(lots: int, instrument: Instrument) -> float | int:
    return _times(lots, _unit_ratio(instrument)) if lots else 0


def usdc(minor: int) -> float | int:
    return _scaled(minor, _MINOR_UNIT)


def ms(timestamp_ns: int) -> int:
    return timestamp_ns // NANOS_PER_MILLISECOND


def index_name(underlying: str) -> str:
    return f"{underlying.lower()}_{QUOTE.lower()}"


# --- instruments and currencies -------------------------------------------------------------


def currency_shape(currency: str, long_name: str) -> dict[str, Any]:
    return {
        "currency": currency,
        "currency_long": long_name,
        "coin_type": currency,
        "fee_precision": 6,
        "min_confirmations": 1,
        "min_withdrawal_fee": 0,
        "withdrawal_fee": 0,
        "withdrawal_priorities": [],
        "in_cross_collateral_pool": False,
        "apr": 0,
    }


def instrument_shape(
    instrument: Instrument, market: Market | None, listed_ns: int, active: bool
) -> dict[str, Any]:
    option = instrument.kind == InstrumentKind.OPTION
    shape: dict[str, Any] = {
        "instrument_name": instrument.name,
        "instrument_id": zlib.crc32(instrument.name.encode()),
        "kind": "option" if option else "future",
        "instrument_type": "linear",
        "settlement_period": _option_period(instrument.expiry_ns) if option else "perpetual",
        "base_currency": instrument.underlying,
        "counter_currency": QUOTE,
        "quote_currency": QUOTE,
        "settlement_currency": QUOTE,
        "price_index": index_name(instrument.underlying),
        "tick_size": number(instrument.tick_size),
        "tick_size_steps": [],
        "min_trade_amount": number(unit_per_lot(instrument)),
        "contract_size": number(instrument.contract_size),
        "is_active": active,
        "creation_timestamp": ms(listed_ns),
        "expiration_timestamp": ms(instrument.expiry_ns) if option else PERPETUAL_EXPIRATION_MS,
        "maker_commission": (market.maker_fee_ppm / _PPM) if market else 0,
        "taker_commission": (market.taker_fee_ppm / _PPM) if market else 0,
        "block_trade_commission": 0,
        "rfq": False,
    }
    if option:
        shape["option_type"] = "call" if instrument.option_type == OptionType.CALL else "put"
        shape["strike"] = price_of(instrument.strike_ticks, instrument)
    else:
        shape["future_type"] = "linear"
        if market is not None and market.initial_ppm:
            shape["max_leverage"] = _PPM // market.initial_ppm
    return shape


def _option_period(expiry_ns: int) -> str:
    """Deribit's settlement period of an expiry: ``month`` (last Friday), ``week`` (a Friday)
    or ``day``."""
    if weekday_from_ns(expiry_ns) != Weekday.FRIDAY:
        return "day"
    time = civil_from_ns(expiry_ns)
    return "month" if time.day + 7 > days_in_month(time.year, time.month) else "week"


# --- market data ----------------------------------------------------------------------------


def index_of(market: Market) -> int | None:
    oracle = market.state.oracle
    return None if oracle is None else oracle.index


def ticker_shape(
    engine: Any, instrument: Instrument, history: TradeHistory | None
) -> dict[str, Any]:
    """``public/ticker``: quotes, marks, 24-hour statistics, and for options IVs and Greeks."""
    name = instrument.name
    market: Market | None = engine.markets.get(name)
    book: Book | None = engine.books.get(name)
    now = engine.timestamp_ns
    shape: dict[str, Any] = {
        "instrument_name": name,
        "timestamp": ms(now),
        "state": "open" if market is not None and not market.halted else "closed",
    }
    shape.update(_quotes(book, instrument))
    shape["stats"] = _stats(history, instrument, now)
    if market is None:
        return shape
    index = index_of(market)
    mark = usdc(market.mark_minor) if market.mark_minor else None
    shape.update(
        {
            "last_price": price_of(market.last_trade_ticks, instrument)
            if market.last_trade_ticks
            else None,
            "mark_price": mark,
            "index_price": usdc(index) if index else None,
            "settlement_price": mark,
            "estimated_delivery_price": usdc(index) if index else None,
            "open_interest": amount_of(market.long_lots, instrument),
        }
    )
    shape.update(_price_band(engine, market, instrument))
    if market.is_option:
        shape.update(option_analytics(engine, market, book, instrument))
    else:
        shape.update(_funding(market))
    return shape


def _quotes(book: Book | None, instrument: Instrument) -> dict[str, Any]:
    bid = None if book is None else book.best_bid()
    ask = None if book is None else book.best_ask()
    return {
        "best_bid_price": price_of(bid, instrument) if bid is not None else None,
        "best_bid_amount": amount_of(book.bids.size(bid), instrument)
        if book is not None and bid is not None
        else 0,
        "best_ask_price": price_of(ask, instrument) if ask is not None else None,
        "best_ask_amount": amount_of(book.asks.size(ask), instrument)
        if book is not None and ask is not None
        else 0,
    }


def _stats(history: TradeHistory | None, instrument: Instrument, now: int) -> dict[str, Any]:
    trades = [] if history is None else history.instrument_trades(instrument.name)
    recent = [t for t in trades if t.timestamp_ns > now - NANOS_PER_DAY]
    if not recent:
        return {"volume": 0, "volume_usd": 0, "high": None, "low": None, "price_change": None}
    lots = sum(t.size_lots for t in recent)
    notional = sum(
        (
            ticks_to_price(t.price_ticks, instrument.tick_size)
            * scale_decimal(t.size_lots, unit_per_lot(instrument))
            for t in recent
        ),
        Decimal(0),
    )
    first, last = recent[0].price_ticks, recent[-1].price_ticks
    return {
        "volume": amount_of(lots, instrument),
        "volume_usd": number(notional),
        "high": price_of(max(t.price_ticks for t in recent), instrument),
        "low": price_of(min(t.price_ticks for t in recent), instrument),
        "price_change": round((last - first) * 100 / first, 4),
    }


def _price_band(engine: Any, market: Market, instrument: Instrument) -> dict[str, Any]:
    """``min_price``/``max_price``: the band a market order fills within, around the mark."""
    if not market.mark_minor:
        return {"min_price": None, "max_price": None}
    band = engine.limits.market_order_band_ppm
    low = market.mark_minor * (_PPM - band) // (_PPM * market.tick_minor)
    high = -(-market.mark_minor * (_PPM + band) // (_PPM * market.tick_minor))
    return {
        "min_price": price_of(max(low, 1), instrument),
        "max_price": price_of(high, instrument),
    }


def _funding(market: Market) -> dict[str, Any]:
    """The running interval's funding estimate: the average premium so far over the horizon,
    clamped as the engine will (``current_funding`` per interval, ``funding_8h`` per 8 hours)."""
    params = market.state.params
    if params is None or not market.premium_ns:
        return {"current_funding": 0, "funding_8h": 0, "interest_value": 0}
    funding = params.funding
    premium_ppb = market.premium_weighted // market.premium_ns
    rate = premium_ppb * funding.interval_ns // funding.premium_horizon_ns
    rate = max(-funding.max_rate_ppb, min(funding.max_rate_ppb, rate))
    return {
        "current_funding": rate / _PPB,
        "funding_8h": rate * (8 * NANOS_PER_HOUR) / funding.interval_ns / _PPB,
        "interest_value": 0,
    }


def option_analytics(
    engine: Any, market: Market, book: Book | None, instrument: Instrument
) -> dict[str, Any]:
    """``mark_iv``, ``bid_iv``, ``ask_iv`` (percent) and ``greeks`` of a live option."""
    index = index_of(market)
    now = engine.timestamp_ns
    empty: dict[str, Any] = {
        "underlying_price": usdc(index) if index else None,
        "underlying_index": "index_price",
        "interest_rate": 0,
        "mark_iv": None,
        "bid_iv": None,
        "ask_iv": None,
        "greeks": None,
    }
    oracle = market.state.oracle
    if not index or oracle is None or market.expiry_ns <= now:
        return empty
    vol = option_vols(
        index,
        oracle.vol_nodes,
        oracle.params.log_moneyness_ppm,
        now,
        [market.strike_minor],
        [market.expiry_ns],
    )[0]
    if math.isnan(vol):
        return empty
    forward, strike = index / QUOTE_SCALE, market.strike_minor / QUOTE_SCALE
    years = (market.expiry_ns - now) / NANOS_PER_YEAR
    greeks = pricing.black76_greeks(forward, strike, years, vol, call=market.is_call)
    empty.update(
        {
            "mark_iv": round(vol * 100, 4),
            "greeks": {
                "delta": round(greeks.delta, 6),
                "gamma": round(greeks.gamma, 8),
                "vega": round(greeks.vega / 100, 6),
                "theta": round(greeks.theta / 365, 6),
                "rho": round(greeks.rho / 100, 6),
            },
        }
    )
    if book is not None:
        for key, price in (("bid_iv", book.best_bid()), ("ask_iv", book.best_ask())):
            if price is not None:
                value = float(ticks_to_price(price, instrument.tick_size))
                empty[key] = _implied_percent(value, forward, strike, years, market.is_call)
    return empty


def _implied_percent(price: float, forward: float, strike: float, years: float, call: bool) -> Any:
    try:
        return round(pricing.black76_implied_vol(price, forward, strike, years, call=call) * 100, 4)
    except pricing.PricingError:  # below intrinsic or above the maximum: no vol prices it
        return 0


def book_shape(
    engine: Any, instrument: Instrument, depth: int, history: TradeHistory | None
) -> dict[str, Any]:
    """``public/get_order_book``: the ticker's fields and ``depth`` levels a side."""
    shape = ticker_shape(engine, instrument, history)
    book: Book | None = engine.books.get(instrument.name)
    bids = [] if book is None else book.depth(1, depth)
    asks = [] if book is None else book.depth(-1, depth)
    shape["bids"] = [[price_of(p, instrument), amount_of(n, instrument)] for p, n in bids]
    shape["asks"] = [[price_of(p, instrument), amount_of(n, instrument)] for p, n in asks]
    shape["change_id"] = engine.height
    return shape


def book_summary_shape(
    engine: Any, instrument: Instrument, history: TradeHistory | None
) -> dict[str, Any]:
    """One entry of ``public/get_book_summary_by_currency``."""
    ticker = ticker_shape(engine, instrument, history)
    stats = ticker["stats"]
    bid, ask = ticker["best_bid_price"], ticker["best_ask_price"]
    shape: dict[str, Any] = {
        "instrument_name": instrument.name,
        "base_currency": instrument.underlying,
        "quote_currency": QUOTE,
        "creation_timestamp": ticker["timestamp"],
        "volume": stats["volume"],
        "volume_usd": stats["volume_usd"],
        "high": stats["high"],
        "low": stats["low"],
        "price_change": stats["price_change"],
        "last": ticker.get("last_price"),
        "bid_price": bid,
        "ask_price": ask,
        "mid_price": (bid + ask) / 2 if bid is not None and ask is not None else None,
        "mark_price": ticker.get("mark_price"),
        "open_interest": ticker.get("open_interest", 0),
        "estimated_delivery_price": ticker.get("estimated_delivery_price"),
    }
    for key in ("current_funding", "funding_8h", "interest_rate", "mark_iv", "underlying_price"):
        if key in ticker:
            shape[key] = ticker[key]
    if "underlying_index" in ticker:
        shape["underlying_index"] = ticker["underlying_index"]
    return shape


def public_trade_shape(trade: PublicTrade, instrument: Instrument) -> dict[str, Any]:
    return {
        "trade_id": trade.trade_id,
        "trade_seq": trade.trade_seq,
        "instrument_name": trade.instrument,
        "timestamp": ms(trade.timestamp_ns),
        "price": price_of(trade.price_ticks, instrument),
        "amount": amount_of(trade.size_lots, instrument),
        "direction": "buy" if trade.taker_side > 0 else "sell",
        "index_price": usdc(trade.index_minor),
        "mark_price": usdc(trade.mark_minor),
        "tick_direction": 0,
    }


# --- orders and trades ----------------------------------------------------------------------


def order_shape(record: OrderRecord, instrument: Instrument) -> dict[str, Any]:
    """An order as Deribit's ``order`` object (``private/get_order_state``, ``buy``...)."""
    filled = record.filled_lots
    average = (
        number(ticks_to_price(record.filled_value_ticks, instrument.tick_size) / Decimal(filled))
        if filled
        else 0
    )
    shape: dict[str, Any] = {
        "order_id": str(record.order_id),
        "instrument_name": record.instrument,
        "direction": "buy" if record.side > 0 else "sell",
        "amount": amount_of(record.size_lots, instrument),
        "filled_amount": amount_of(filled, instrument),
        "price": "market_price"
        if record.order_type == "market"
        else price_of(record.price_ticks, instrument),
        "average_price": average,
        "order_state": record.state,
        "order_type": record.order_type,
        "time_in_force": record.time_in_force,
        "post_only": record.post_only,
        "reduce_only": record.reduce_only,
        "label": record.label,
        "creation_timestamp": ms(record.created_ns),
        "last_update_timestamp": ms(record.updated_ns),
        "commission": usdc(record.commission_minor),
        "profit_loss": 0,
        "max_show": amount_of(record.size_lots, instrument),
        "api": True,
        "web": False,
        "is_liquidation": False,
        "replaced": False,
        "mmp": False,
        "risk_reducing": False,
    }
    if record.state == "cancelled":
        shape["cancel_reason"] = _CANCEL_REASONS.get(
            record.cancel_reason, record.cancel_reason.lower()
        )
    return shape


def trade_shape(trade: TradeRecord, instrument: Instrument) -> dict[str, Any]:
    """A user trade (``private/get_user_trades_by_*``, the ``trades`` of ``buy``...)."""
    return {
        "trade_id": trade.trade_id,
        "trade_seq": trade.trade_seq,
        "instrument_name": trade.instrument,
        "order_id": str(trade.order_id),
        "order_type": trade.order_type,
        "direction": "buy" if trade.side > 0 else "sell",
        "amount": amount_of(trade.size_lots, instrument),
        "price": price_of(trade.price_ticks, instrument),
        "index_price": usdc(trade.index_minor),
        "mark_price": usdc(trade.mark_minor),
        "fee": usdc(trade.fee_minor),
        "fee_currency": QUOTE,
        "liquidity": trade.liquidity,
        "timestamp": ms(trade.timestamp_ns),
        "state": trade.order_state,
        "label": trade.label,
        "post_only": trade.post_only,
        "reduce_only": trade.reduce_only,
        "self_trade": False,
        "tick_direction": 0,
        "matching_id": None,
        "api": True,
        "profit_loss": 0,
    }


# --- positions and accounts -----------------------------------------------------------------


def position_shape(engine: Any, exposure: Exposure, instrument: Instrument) -> dict[str, Any]:
    market = exposure.market
    lots = exposure.position
    size = amount_of(lots, instrument)
    units = float(scale_decimal(abs(lots), unit_per_lot(instrument))) if lots else 0.0
    average = abs(exposure.basis) / units / QUOTE_SCALE if units else 0
    unrealized = exposure.value - exposure.basis
    notional = abs(exposure.value)
    index = index_of(market)
    shape: dict[str, Any] = {
        "instrument_name": instrument.name,
        "kind": "option" if market.is_option else "future",
        "direction": "buy" if lots > 0 else "sell" if lots < 0 else "zero",
        "size": size,
        "size_currency": size,
        "average_price": round(average, 8),
        "mark_price": usdc(market.mark_minor),
        "index_price": usdc(index) if index else None,
        "settlement_price": usdc(market.mark_minor),
        "floating_profit_loss": usdc(unrealized),
        "realized_profit_loss": usdc(exposure.realized),
        "total_profit_loss": usdc(unrealized + exposure.realized),
        "initial_margin": usdc(exposure.initial),
        "maintenance_margin": usdc(exposure.maintenance),
        "open_orders_margin": usdc(exposure.reserve),
        "leverage": notional // exposure.initial if exposure.initial else 0,
        "delta": size,
        "estimated_liquidation_price": None,
        "realized_funding": 0,
        "interest_value": 0,
    }
    if market.is_option:
        analytics = option_analytics(engine, market, None, instrument)
        greeks = analytics["greeks"]
        if greeks is not None:
            for key in ("delta", "gamma", "vega", "theta"):
                shape[key] = round(greeks[key] * float(size), 8)
    return shape


def account_summary_shape(
    currency: str, account: str, ledgers: Iterable[SubLedger], *, extended: bool
) -> dict[str, Any]:
    """``private/get_account_summary``: sums over ``ledgers`` (one sub-ledger for an
    underlying's currency, every sub-ledger of the account for USDC), values current."""
    totals = dict.fromkeys(
        ("cash", "value", "basis", "initial", "reserve", "maintenance", "realized", "fees",
         "funding", "withdrawable", "futures_pl", "options_pl", "options_value", "delta"),
        0,
    )  # fmt: skip
    portfolio = False
    for ledger in ledgers:
        portfolio |= ledger.portfolio
        for key in ("cash", "value", "basis", "initial", "reserve", "maintenance", "realized"):
            totals[key] += getattr(ledger, key)
        totals["fees"] += ledger.fees
        totals["funding"] += ledger.funding
        totals["withdrawable"] += max(0, ledger.withdrawable)
        for exposure in ledger.exposures.values():
            pl = exposure.value - exposure.basis + exposure.realized
            if exposure.market.is_option:
                totals["options_pl"] += pl
                totals["options_value"] += exposure.value
            else:
                totals["futures_pl"] += pl
    equity = totals["cash"] + totals["value"]
    unrealized = totals["value"] - totals["basis"]
    initial = totals["initial"] + totals["reserve"]
    shape: dict[str, Any] = {
        "currency": currency,
        "balance": usdc(totals["cash"] + totals["basis"]),
        "equity": usdc(equity),
        "margin_balance": usdc(equity),
        "available_funds": usdc(equity - initial),
        "available_withdrawal_funds": usdc(totals["withdrawable"]),
        "initial_margin": usdc(initial),
        "maintenance_margin": usdc(totals["maintenance"]),
        "projected_initial_margin": usdc(initial),
        "projected_maintenance_margin": usdc(totals["maintenance"]),
        "total_pl": usdc(unrealized + totals["realized"]),
        "session_upl": usdc(unrealized),
        "session_rpl": usdc(totals["realized"]),
        "session_funding": usdc(totals["funding"]),
        "futures_pl": usdc(totals["futures_pl"]),
        "options_pl": usdc(totals["options_pl"]),
        "options_value": usdc(totals["options_value"]),
        "fee_balance": 0,
        "total_fees": usdc(totals["fees"]),
        "portfolio_margining_enabled": portfolio,
        "margin_model": "segregated_pm" if portfolio else "segregated_sm",
        "cross_collateral_enabled": False,
        "deposit_address": account,
        "total_equity_usd": usdc(equity),
        "total_margin_balance_usd": usdc(equity),
        "total_initial_margin_usd": usdc(initial),
        "total_maintenance_margin_usd": usdc(totals["maintenance"]),
    }
    if extended:
        shape.update(account_identity(account))
    return shape


def account_identity(account: str) -> dict[str, Any]:
    return {"id": zlib.crc32(account.encode()), "username": account, "type": "main",
            "system_name": account, "email": ""}  # fmt: skip
