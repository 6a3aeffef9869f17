"""Every kind of bad input, over the live WebSocket API, in one table: each is answered with a
JSON-RPC error carrying its stable code, and none changes the venue (the orders, the account's
collateral and the block log's transactions are as before)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from strikechain.engine.signing import address_of
from strikechain.node.api import errors
from strikechain.node.keys import Scope
from tests.node.api.test_signed import OTHER_KEY, TRADER, TRADER_KEY, signed_params
from tests.node.api.test_transport import ALICE, Ws, fund, serving

PERP = "BTC_USDC-PERPETUAL"
BOB = "0x" + "b0" * 20

Raw = str | Callable[[Any], str]


def rpc(method: str, params: dict[str, Any]) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})


def buy(**params: Any) -> str:
    base: dict[str, Any] = {
        "instrument_name": PERP,
        "amount": 0.01,
        "price": 90_000,
        "type": "limit",
    }
    return rpc("private/buy", base | params)


# (what, the raw message (or a function of the node state making it), the expected error code)
CASES: list[tuple[str, Raw, int]] = [
    ("malformed JSON", '{"jsonrpc": "2.0", "id": 7, "method": "public/test"', errors.PARSE_ERROR),
    ("not an object", "[1, 2]", errors.INVALID_REQUEST),
    ("unknown method", rpc("private/make_me_rich", {}), errors.METHOD_NOT_FOUND),
    ("missing parameter", rpc("private/buy", {"amount": 0.01}), errors.INVALID_PARAMS),
    ("mistyped parameter", buy(amount="lots"), errors.INVALID_PARAMS),
    ("unknown parameter", buy(leverage=100), errors.INVALID_PARAMS),
    ("NaN", buy().replace('"price": 90000', '"price": NaN'), errors.PARSE_ERROR),
    ("infinity", buy().replace('"price": 90000', '"price": Infinity'), errors.PARSE_ERROR),
    ("negative amount", buy(amount=-0.01), errors.INVALID_PARAMS),
    ("absurd price", buy(price=1e300), errors.INVALID_PARAMS),
    ("off-tick price", buy(price=90_000.25), errors.PRICE_WRONG_TICK),
    ("off-lot amount", buy(amount=0.0105), errors.INVALID_PARAMS),
    ("unknown instrument", buy(instrument_name="DOGE_USDC-PERPETUAL"), errors.INSTRUMENT_NOT_FOUND),
    ("oversized message", buy(label="x" * 40_000), errors.MESSAGE_TOO_LARGE),
    (
        "another account's order id",
        lambda state: rpc("private/cancel", {"order_id": state["bob_order"]}),
        errors.ORDER_NOT_FOUND,
    ),
    (
        "a bad signature",
        lambda state: rpc("public/submit_signed_order", state["bad_signature"]),
        errors.SIGNATURE_INVALID,
    ),
    (
        "a replayed signature",
        lambda state: rpc("public/submit_signed_order", state["used"]),
        errors.SIGNATURE_INVALID,
    ),
    (
        "an expired signature",
        lambda state: rpc("public/submit_signed_order", state["expired"]),
        errors.SIGNATURE_INVALID,
    ),
    (
        "an order signed for another account",
        lambda state: rpc("public/submit_signed_order", state["for_other"]),
        errors.SIGNATURE_INVALID,
    ),
]


def test_every_bad_input_is_an_error_with_its_code_and_changes_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as served:
            node = served.node
            bob_key, bob_secret = served.keys.create(BOB, (Scope.READ, Scope.TRADE))
            for account in (ALICE, BOB, TRADER):
                await fund(node, account)
            state: dict[str, Any] = {}
            async with aiohttp.ClientSession() as http:
                bob = Ws(await http.ws_connect(served.ws))
                await bob.call(
                    "public/auth",
                    {
                        "grant_type": "client_credentials",
                        "client_id": bob_key,
                        "client_secret": bob_secret,
                    },
                )
                placed = await bob.call(
                    "private/sell",
                    {"instrument_name": PERP, "amount": 0.01, "price": 150_000, "type": "limit"},
                )
                state["bob_order"] = placed["result"]["order"]["order_id"]
                used = signed_params(node, nonce=1)
                accepted = await bob.call("public/submit_signed_order", used)
                assert "result" in accepted, accepted
                state["used"] = used
                tampered = signed_params(node, nonce=2)
                tampered["size_lots"] = 3
                state["bad_signature"] = tampered
                state["expired"] = signed_params(node, nonce=3, expiry_ns=node.clock() - 1)
                state["for_other"] = signed_params(node, nonce=4, key=OTHER_KEY, account=TRADER)
                assert address_of(TRADER_KEY) == TRADER
                alice = Ws(await http.ws_connect(served.ws, max_msg_size=1 << 20))
                await alice.call(
                    "public/auth",
                    {
                        "grant_type": "client_credentials",
                        "client_id": served.api_key,
                        "client_secret": served.secret,
                    },
                )
                await asyncio.sleep(0.05)
                before = snapshot(node)
                for what, raw, code in CASES:
                    message = raw(state) if callable(raw) else raw
                    await alice.socket.send_str(message)
                    reply = await answer(alice)
                    assert "error" in reply, (what, reply)
                    assert reply["error"]["code"] == code, (what, reply["error"])
                await asyncio.sleep(0.1)  # a block or more: anything submitted would be in it
                assert snapshot(node) == before

    asyncio.run(main())


async def answer(socket: Ws) -> Any:
    """The next reply (with whatever id the server could read: none for unparsable input)."""
    while True:
        message = await socket.next()
        if message.get("method") != "subscription":
            return message


def snapshot(node: Any) -> tuple[Any, ...]:
    engine = node.engine
    cash = {account: engine.get_ledger(account, "BTC").cash for account in (ALICE, BOB, TRADER)}
    return tuple(sorted(engine.orders)), tuple(sorted(cash.items())), engine.next_order_id
