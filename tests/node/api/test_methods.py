"""The Deribit-compatible method layer against a live node (no sockets): the shapes ccxt reads,
orders through the engine and back, and refusals with stable codes that change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

import strikechain.node.api.methods  # noqa: F401  (registers the methods)
from strikechain.engine.calendar import expiry_ns
from strikechain.engine.instruments import OptionType, make_option
from strikechain.engine.oracle import OracleReport, VolSlice, sign_report
from strikechain.engine.signing import address_of, keccak256
from strikechain.engine.txs import Deposit, ListInstrument
from strikechain.node.api import errors
from strikechain.node.api.errors import ApiError
from strikechain.node.api.history import attach
from strikechain.node.api.registry import Context, call
from strikechain.node.config import NodeConfig, parse_config
from strikechain.node.keys import KeyStore, Scope, ScryptParams
from strikechain.node.service import Node

KEY = keccak256(b"api-test-reporter")
REPORTER = address_of(KEY)
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
PERP = "BTC_USDC-PERPETUAL"
USDC = 1_000_000
EXPIRY = expiry_ns(2030, 6, 28)
OPTION = make_option("BTC", EXPIRY, 100_000, OptionType.CALL, "0.5", "0.01")


def config(tmp_path: Path) -> NodeConfig:
    return parse_config(
        f"""
[node]
data_dir = "{tmp_path / "data"}"
block_interval_ms = 2.0

[settlement]
enabled = false

[[underlyings]]
name = "BTC"
reporters = ["{REPORTER}"]
quorum = 1

[[instruments]]
underlying = "BTC"
"""
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000 * 10**9

    def __call__(self) -> int:
        self.now += 1_000_000
        return self.now


class Venue:
    """A started node with two funded accounts, an index, a listed option, and API keys."""

    def __init__(self, node: Node, keys: KeyStore, clock: Clock) -> None:
        self.node, self.clock = node, clock
        self.contexts: dict[str, Context] = {}
        for account in (ALICE, BOB):
            api_key, _ = keys.create(account, [Scope.READ, Scope.TRADE, Scope.WITHDRAW])
            self.contexts[account] = Context(node=node, key=keys.get(api_key))
        read_only, _ = keys.create(ALICE, [Scope.READ])
        self.contexts["read-only"] = Context(node=node, key=keys.get(read_only))
        self.contexts["public"] = Context(node=node)

    async def call(self, name: str, params: dict[str, Any] | None = None, who: str = ALICE) -> Any:
        result = await call(name, params, self.contexts[who])
        msgspec.json.encode(result)  # JSON-ready
        return result

    async def refused(
        self, name: str, params: dict[str, Any], who: str = ALICE, *, strings: bool = False
    ) -> ApiError:
        orders = dict(self.node.engine.orders)
        with pytest.raises(ApiError) as caught:
            await call(name, params, self.contexts[who], strings=strings)
        assert dict(self.node.engine.orders) == orders  # a refused call changes nothing
        return caught.value


def param_of(error: ApiError) -> Any:
    assert error.data is not None
    return error.data.get("param")


def report(clock: Clock, price: int = 100_000) -> OracleReport:
    return sign_report(
        OracleReport(
            account=REPORTER,
            underlying="BTC",
            timestamp_ns=clock.now,
            price=price * USDC,
            confidence=USDC,
            vols=(VolSlice(EXPIRY, (600_000,) * 7),),
        ),
        KEY,
    )


def run(tmp_path: Path, body: Callable[[Venue], Awaitable[None]]) -> None:
    async def main() -> None:
        clock = Clock()
        node = Node(config(tmp_path), clock=clock)
        await node.start()
        attach(node)
        keys = KeyStore(tmp_path / "keys.sqlite", kdf=ScryptParams(n=2), clock_ns=clock)
        try:
            await node.submit(ListInstrument(account="operator", instrument=OPTION))
            for number, account in enumerate((ALICE, BOB), start=1):
                await node.submit(
                    Deposit(
                        account="operator",
                        deposit_id=number,
                        beneficiary=account,
                        underlying="BTC",
                        amount=100_000 * USDC,
                    )
                )
            await node.submit(report(clock))
            await body(Venue(node, keys, clock))
        finally:
            keys.close()
            await node.stop()

    asyncio.run(main())


def limit(price: Any, amount: Any, **extra: Any) -> dict[str, Any]:
    return {"instrument_name": PERP, "amount": amount, "price": price, "type": "limit", **extra}


# --- public -----------------------------------------------------------------------------------


def test_currencies_and_instruments_carry_what_ccxt_reads(tmp_path: Path) -> None:
    async def body(venue: Venue) -> None:
        currencies = await venue.call("public/get_currencies", {}, "public")
        assert [c["currency"] for c in currencies] == ["BTC", "USDC"]
        # ccxt's load_markets: get_instruments with no parameters (fetchAllMarkets), or per
        # currency; it drops entries without base/counter currency, and reads a swap from
        # settlement_period == "perpetual".
        everything = await venue.call("public/get_instruments", None, "public")
        assert everything == await venue.call("public/get_instruments", {"currency": "BTC"})
        assert everything == await venue.call("public/get_instruments", {"currency": "USDC"})
        perp, option = everything
        assert perp["instrument_name"] == PERP
        assert perp["kind"] == "future"
        assert perp["settlement_period"] == "perpetual"
        assert perp["base_currency"] == "BTC"
        assert perp["counter_currency"] == "USDC"
        assert perp["quote_currency"] == perp["settlement_currency"] == "USDC"
        assert perp["tick_size"] == 0.5
        assert perp["min_trade_amount"] == 0.001
        assert perp["contract_size"] == 1
        assert perp["is_active"] is True
        assert perp["creation_timestamp"] > 0
        assert perp["max_leverage"] == 20
        assert option["instrument_name"] == "BTC_USDC-28JUN30-100000-C"
        assert option["kind"] == "option"
        assert option["option_type"] == "call"
        assert option["strike"] == 100_000
        assert option["settlement_period"] == "month"
        assert option["expiration_timestamp"] == EXPIRY // 10**6
        assert isinstance(option["instrument_id"], int)
        futures = await venue.call("public/get_instruments", {"currency": "BTC", "kind": "future"})
        assert [i["instrument_name"] for i in futures] == [PERP]
        assert await venue.call("public/get_instruments", {"expired": True}) == []
        error = await venue.refused("public/get_instruments", {"currency": "DOGE"})
        assert error.code == errors.INVALID_PARAMS
        assert error.data == {
            "param": "currency",
            "reason": "'DOGE' is not one of BTC, USDC, any",
        }

    run(tmp_path, body)


def test_market_data_index_and_option_analytics(tmp_path: Path) -> None:
    async def body(venue: Venue) -> None:
        await venue.call("private/buy", limit("99990.5", "0.002"), BOB)
        await venue.call("private/sell", limit(100_010, 0.003), BOB)
        ticker = await venue.call("public/ticker", {"instrument_name": PERP}, "public")
        assert ticker["best_bid_price"] == 99_990.5
        assert ticker["best_bid_amount"] == 0.002
        assert ticker["best_ask_price"] == 100_010
        assert ticker["best_ask_amount"] == 0.003
        assert ticker["index_price"] == 100_000
        assert ticker["state"] == "open"
        assert ticker["min_price"] < ticker["mark_price"] < ticker["max_price"]
        assert "current_funding" in ticker
        assert "funding_8h" in ticker
        book = await venue.call("public/get_order_book", {"instrument_name": PERP, "depth": 5})
        assert book["bids"] == [[99_990.5, 0.002]]
        assert book["asks"] == [[100_010, 0.003]]
        assert book["change_id"] == venue.node.engine.height
        index = await venue.call("public/get_index_price", {"index_name": "btc_usdc"})
        assert index == {"index_price": 100_000, "estimated_delivery_price": 100_000}
        option = await venue.call("public/ticker", {"instrument_name": OPTION.name})
        assert option["mark_iv"] == pytest.approx(60.0)
        greeks = option["greeks"]
        assert 0.5 < greeks["delta"] < 0.6
        assert greeks["gamma"] > 0
        assert greeks["vega"] > 0
        assert greeks["theta"] < 0
        assert greeks["rho"] < 0
        assert option["underlying_price"] == 100_000
        assert option["mark_price"] > 0
        summaries = await venue.call("public/get_book_summary_by_currency", {"currency": "BTC"})
        assert [s["instrument_name"] for s in summaries] == [PERP, OPTION.name]
        assert summaries[0]["bid_price"] == 99_990.5
        assert summaries[1]["mark_iv"] > 0
        assert await venue.call("public/get_time") > 0
        assert "version" in await venue.call("public/test")
        rates = await venue.call(
            "public/get_funding_rate_history",
            {"instrument_name": PERP, "start_timestamp": 0, "end_timestamp": 2**62},
        )
        assert rates == []
        deliveries = await venue.call("public/get_delivery_prices", {"index_name": "btc_usdc"})
        assert deliveries == {"data": [], "records_total": 0}
        error = await venue.refused("public/get_order_book", {"instrument_name": PERP, "depth": 0})
        assert error.code == errors.INVALID_PARAMS
        assert param_of(error) == "depth"

    run(tmp_path, body)


# --- orders -----------------------------------------------------------------------------------


def test_a_resting_order_then_a_crossing_one_trade(tmp_path: Path) -> None:
    async def body(venue: Venue) -> None:
        placed = await venue.call("private/sell", limit("100000", "0.005", label="ask-1"), BOB)
        order = placed["order"]
        assert placed["trades"] == []
        assert order["order_state"] == "open"
        assert order["direction"] == "sell"
        assert order["amount"] == 0.005
        assert order["filled_amount"] == 0
        assert order["price"] == 100_000
        assert order["label"] == "ask-1"
        assert order["order_type"] == "limit"
        assert order["time_in_force"] == "good_til_cancelled"
        assert order["order_id"] == str(int(order["order_id"]))
        taken = await venue.call("private/buy", limit(100_000.5, 0.002))
        mine = taken["order"]
        assert mine["order_state"] == "filled"
        assert mine["filled_amount"] == 0.002
        assert mine["average_price"] == 100_000
        assert mine["commission"] > 0
        (trade,) = taken["trades"]
        assert trade["direction"] == "buy"
        assert trade["liquidity"] == "T"
        assert trade["price"] == 100_000
        assert trade["amount"] == 0.002
        assert trade["order_id"] == mine["order_id"]
        assert trade["fee_currency"] == "USDC"
        state = await venue.call("private/get_order_state", {"order_id": order["order_id"]}, BOB)
        assert state["order_state"] == "open"
        assert state["filled_amount"] == 0.002
        open_orders = await venue.call(
            "private/get_open_orders_by_instrument", {"instrument_name": PERP}, BOB
        )
        assert [o["order_id"] for o in open_orders] == [order["order_id"]]
        by_currency = await venue.call(
            "private/get_open_orders_by_currency", {"currency": "BTC"}, BOB
        )
        assert by_currency == open_orders
        assert await venue.call("private/get_open_orders_by_currency", {"currency": "BTC"}) == []
        # trades, positions and balances of both sides
        mine_trades = await venue.call(
            "private/get_user_trades_by_instrument", {"instrument_name": PERP, "count": 5}
        )
        assert [t["trade_id"] for t in mine_trades["trades"]] == [trade["trade_id"]]
        theirs = await venue.call(
            "private/get_user_trades_by_currency", {"currency": "BTC", "include_old": True}, BOB
        )
        (maker,) = theirs["trades"]
        assert maker["liquidity"] == "M"
        assert maker["direction"] == "sell"
        assert theirs["has_more"] is False
        timed = await venue.call(
            "private/get_user_trades_by_instrument_and_time",
            {"instrument_name": PERP, "start_timestamp": 0, "end_timestamp": 2**62},
        )
        assert timed["trades"] == mine_trades["trades"]
        by_order = await venue.call(
            "private/get_user_trades_by_order", {"order_id": mine["order_id"]}
        )
        assert by_order == mine_trades["trades"]
        (position,) = await venue.call("private/get_positions", {"currency": "BTC"})
        assert position["instrument_name"] == PERP
        assert position["direction"] == "buy"
        assert position["size"] == 0.002
        assert position["average_price"] == 100_000
        assert position["initial_margin"] > 0
        assert position["kind"] == "future"
        (short,) = await venue.call("private/get_positions", {}, BOB)
        assert short["size"] == -0.002
        assert short["direction"] == "sell"
        summary = await venue.call("private/get_account_summary", {"currency": "BTC"})
        assert summary["currency"] == "BTC"
        assert 99_000 < summary["equity"] < 100_000
        assert summary["initial_margin"] > 0
        assert summary["available_funds"] < summary["equity"]
        summaries = await venue.call("private/get_account_summaries", {"extended": True})
        (usdc,) = summaries["summaries"]
        assert usdc["currency"] == "USDC"
        assert usdc["equity"] == summary["equity"]
        assert summaries["username"] == ALICE

    run(tmp_path, body)


def test_post_only_ioc_market_and_reduce_only(tmp_path: Path) -> None:
    async def body(venue: Venue) -> None:
        await venue.call("private/sell", limit(100_000, 0.003), BOB)
        # post-only that would cross: rejected (ccxt sends reject_post_only) or repriced
        error = await venue.refused(
            "private/buy", limit(100_000, 0.001, post_only=True, reject_post_only=True)
        )
        assert error.code == errors.POST_ONLY_REJECT
        assert error.message == "post_only_reject"
        repriced = await venue.call("private/buy", limit(100_000, 0.001, post_only=True))
        assert repriced["order"]["price"] == 99_999.5
        assert repriced["trades"] == []
        # IOC: fills what it can, the rest is cancelled
        ioc = await venue.call(
            "private/buy", limit(100_000, 0.005, time_in_force="immediate_or_cancel")
        )
        assert ioc["order"]["order_state"] == "cancelled"
        assert ioc["order"]["filled_amount"] == 0.003
        assert len(ioc["trades"]) == 1
        # market order against the resting bid
        market = await venue.call(
            "private/sell", {"instrument_name": PERP, "amount": 0.001, "type": "market"}, BOB
        )
        assert market["order"]["order_type"] == "market"
        assert market["order"]["price"] == "market_price"
        assert market["order"]["order_state"] == "filled"
        # reduce-only: refused where it would increase, accepted where it reduces
        error = await venue.refused("private/sell", limit(200_000, 0.001, reduce_only=True), BOB)
        assert error.code == errors.TRADING_HALTED
        assert error.data == {
            "reason": error.data["reason"] if error.data else None,
            "code": "REDUCE_ONLY_WOULD_INCREASE",
        }
        reduced = await venue.call("private/sell", limit(200_000, 0.001, reduce_only=True))
        assert reduced["order"]["reduce_only"] is True
        assert reduced["order"]["order_state"] == "open"

    run(tmp_path, body)


def test_edit_cancel_and_cancel_all(tmp_path: Path) -> None:
    async def body(venue: Venue) -> None:
        first = (await venue.call("private/buy", limit(99_000, 0.002)))["order"]
        edited = await venue.call(
            "private/edit", {"order_id": first["order_id"], "amount": 0.003, "price": 99_100}
        )
        assert edited["order"]["price"] == 99_100
        assert edited["order"]["amount"] == 0.003
        assert venue.node.engine.orders[int(first["order_id"])].price == 198_200
        cancelled = await venue.call("private/cancel", {"order_id": first["order_id"]})
        assert cancelled["order_state"] == "cancelled"
        assert cancelled["cancel_reason"] == "user_request"
        assert int(first["order_id"]) not in venue.node.engine.orders
        error = await venue.refused("private/cancel", {"order_id": first["order_id"]})
        assert error.code == errors.ORDER_NOT_FOUND
        for price in (98_000, 98_500, 97_000):
            await venue.call("private/buy", limit(price, 0.001))
        await venue.call("private/buy", {**limit(95_000, 0.01), "instrument_name": OPTION.name})
        count = await venue.call("private/cancel_all_by_instrument", {"instrument_name": PERP})
        assert count == 3
        assert [o.instrument for o in venue.node.engine.open_orders(ALICE)] == [OPTION.name]
        await venue.call("private/buy", limit(98_000, 0.001))
        assert (
            await venue.call(
                "private/cancel_all_by_currency", {"currency": "BTC", "kind": "option"}
            )
            == 1
        )
        assert await venue.call("private/cancel_all", {}) == 1
        assert venue.node.engine.open_orders(ALICE) == []
        # by label: the engine's client order id (unique among an account's open orders)
        labelled = (await venue.call("private/buy", limit(97_500, 0.001, label="q-1")))["order"]
        await venue.call("private/buy", limit(97_000, 0.001, label="q-1"), BOB)
        assert await venue.call("private/cancel_by_label", {"label": "nope"}) == 0
        assert int(labelled["order_id"]) in venue.node.engine.orders
        assert await venue.call("private/cancel_by_label", {"label": "q-1", "currency": "BTC"}) == 1
        assert int(labelled["order_id"]) not in venue.node.engine.orders
        assert [o.client_order_id for o in venue.node.engine.open_orders(BOB)] == ["q-1"]
        assert await venue.call("private/cancel_by_label", {"label": "q-1"}) == 0
        for bad in ({"label": ""}, {"label": "x" * 65}, {}, {"label": "q-1", "currency": "DOGE"}):
            error = await venue.refused("private/cancel_by_label", bad)
            assert error.code == errors.INVALID_PARAMS

    run(tmp_path, body)


def test_margins_and_withdrawals(tmp_path: Path) -> None:
    async def body(venue: Venue) -> None:
        margins = await venue.call(
            "private/get_margins", {"instrument_name": PERP, "amount": 1, "price": 100_000}
        )
        assert margins["buy"] == pytest.approx(5_000, rel=0.01)
        assert margins["sell"] == pytest.approx(5_000, rel=0.01)
        assert margins["min_price"] < 100_000 < margins["max_price"]
        done = await venue.call(
            "private/withdraw", {"currency": "BTC", "address": ALICE, "amount": "1500.25"}
        )
        assert done["amount"] == 1500.25
        assert done["state"] == "unconfirmed"
        assert venue.node.engine.get_ledger(ALICE, "BTC").cash == 98_499_750_000  # type: ignore[union-attr]
        listed = await venue.call("private/get_withdrawals", {"currency": "USDC"})
        assert listed["count"] == 1
        assert listed["data"][0]["id"] == done["id"]
        error = await venue.refused(
            "private/withdraw", {"currency": "BTC", "address": BOB, "amount": 1}
        )
        assert error.code == errors.INVALID_PARAMS
        assert param_of(error) == "address"
        error = await venue.refused(
            "private/withdraw", {"currency": "BTC", "address": ALICE, "amount": 10**6}
        )
        assert error.code == errors.NOT_ENOUGH_FUNDS
        error = await venue.refused(
            "private/withdraw", {"currency": "BTC", "address": ALICE, "amount": "0.0000001"}
        )
        assert error.code == errors.INVALID_PARAMS
        assert param_of(error) == "amount"

    run(tmp_path, body)


# --- isolation and refusals -------------------------------------------------------------------


def test_another_accounts_order_is_not_found(tmp_path: Path) -> None:
    async def body(venue: Venue) -> None:
        theirs = (await venue.call("private/sell", limit(101_000, 0.001), BOB))["order"]
        for name, params in (
            ("private/cancel", {"order_id": theirs["order_id"]}),
            ("private/get_order_state", {"order_id": theirs["order_id"]}),
            ("private/edit", {"order_id": theirs["order_id"], "amount": 0.002}),
            ("private/get_user_trades_by_order", {"order_id": theirs["order_id"]}),
            ("private/cancel", {"order_id": "999999"}),
            ("private/cancel", {"order_id": "not-an-id"}),
        ):
            error = await venue.refused(name, params)
            assert (error.code, error.message) == (errors.ORDER_NOT_FOUND, "order_not_found")
        assert await venue.call("private/cancel_all", {}) == 0
        assert int(theirs["order_id"]) in venue.node.engine.orders

    run(tmp_path, body)


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        (limit("100000.25", 0.001), errors.PRICE_WRONG_TICK, "price"),
        (limit("NaN", 0.001), errors.INVALID_PARAMS, "price"),
        (limit(float("inf"), 0.001), errors.INVALID_PARAMS, "price"),
        (limit(-5, 0.001), errors.INVALID_PARAMS, "price"),
        (limit("1e30", 0.001), errors.INVALID_PARAMS, "price"),
        (limit(100_000, -1), errors.INVALID_PARAMS, "amount"),
        (limit(100_000, "0.0015"), errors.INVALID_PARAMS, "amount"),
        (limit(100_000, "nan"), errors.INVALID_PARAMS, "amount"),
        ({**limit(100_000, 0.001), "instrument_name": "ETH_USDC-PERPETUAL"},
         errors.INSTRUMENT_NOT_FOUND, "instrument_name"),
        ({**limit(100_000, 0.001), "stop_loss": 1}, errors.INVALID_PARAMS, "stop_loss"),
        ({**limit(100_000, 0.001), "time_in_force": "forever"}, errors.INVALID_PARAMS,
         "time_in_force"),
        ({**limit(100_000, 0.001), "type": "stop_limit"}, errors.INVALID_PARAMS, "type"),
        ({"instrument_name": PERP, "amount": 0.001, "type": "market", "price": 1},
         errors.INVALID_PARAMS, "price"),
        (limit(100_000, 0.001, post_only=True, time_in_force="immediate_or_cancel"),
         errors.INVALID_PARAMS, "post_only"),
        (limit(100_000, 0.001, label="x" * 65), errors.INVALID_PARAMS, "label"),
    ],
)  # fmt: skip
def test_bad_orders_are_refused_with_stable_codes(
    tmp_path: Path, params: dict[str, Any], code: int, param: str
) -> None:
    async def body(venue: Venue) -> None:
        height = venue.node.engine.height
        error = await venue.refused("private/buy", params)
        assert error.code == code
        assert error.data is not None
        assert param_of(error) == param
        assert venue.node.engine.open_orders(ALICE) == []
        assert venue.node.engine.height >= height

    run(tmp_path, body)


def test_query_strings_convert_and_auth_is_required(tmp_path: Path) -> None:
    async def body(venue: Venue) -> None:
        params = {"instrument_name": PERP, "amount": "0.001", "price": "99000", "post_only": "true"}
        placed = await call("private/buy", params, venue.contexts[ALICE], strings=True)
        assert placed["order"]["post_only"] is True
        error = await venue.refused("private/buy", limit(99_000, 0.001), "public")
        assert error.code == errors.UNAUTHORIZED
        error = await venue.refused("private/buy", limit(99_000, 0.001), "read-only")
        assert error.code == errors.FORBIDDEN
        error = await venue.refused("private/get_positions", {"currency": "DOGE"})
        assert error.data == {"param": "currency", "reason": "'DOGE' is not one of BTC, USDC, any"}
        insufficient = await venue.refused("private/buy", limit(100_000, 50))
        assert insufficient.code == errors.NOT_ENOUGH_FUNDS
        assert insufficient.message == "not_enough_funds"

    run(tmp_path, body)
