"""``strikechain order ...`` and ``strikechain account ...``: the client (:mod:`strikechain.client`)
from a shell. Each command is one call to a node; the answer is printed as a line per item, or
as JSON (``--json``). Refusals are :class:`~strikechain.client.ClientError`: the caller exits 2
with the code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from strikechain.client import Client, ClientError
from strikechain.client.client import INVALID_PARAMS

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Where and as whom: the node's URL, an API key and secret, or an account's private key."""

    url: str
    api_key: str | None = None
    api_secret: str | None = None
    private_key: str | None = None

    def client(self) -> Client:
        return Client(self.url, self.api_key, self.api_secret, self.private_key)

    def require_api_key(self) -> None:
        if not (self.api_key and self.api_secret):
            raise ClientError(
                INVALID_PARAMS,
                "Invalid params",
                {
                    "param": "key",
                    "reason": "give --key and --secret (or STRIKECHAIN_API_KEY/SECRET)",
                },
            )


def _run(credentials: Credentials, call: Callable[[Client], Awaitable[T]]) -> T:
    async def main() -> T:
        async with credentials.client() as client:
            return await call(client)

    return asyncio.run(main())


def place(
    credentials: Credentials,
    side: str,
    instrument: str,
    amount: str,
    price: str | None,
    *,
    post_only: bool,
    ioc: bool,
    signed: bool,
    label: str = "",
) -> Any:
    """Place an order: signed with the account key (``signed``), or with the API key."""
    time_in_force = "immediate_or_cancel" if ioc else "good_til_cancelled"
    if signed:
        if not credentials.private_key:
            raise ClientError(
                INVALID_PARAMS,
                "Invalid params",
                {"param": "private_key", "reason": "--signed needs --private-key"},
            )
        return _run(
            credentials,
            lambda client: client.submit_signed_order(
                instrument, side, amount, price, post_only=post_only,
                time_in_force=time_in_force, label=label,
            ),
        )  # fmt: skip
    credentials.require_api_key()
    options: dict[str, Any] = {"time_in_force": time_in_force, "label": label}
    if post_only:
        options["post_only"] = True
    if side == "buy":
        return _run(credentials, lambda client: client.buy(instrument, amount, price, **options))
    return _run(credentials, lambda client: client.sell(instrument, amount, price, **options))


def cancel(credentials: Credentials, order_id: str) -> Any:
    credentials.require_api_key()
    return _run(credentials, lambda client: client.cancel(order_id))


def open_orders(credentials: Credentials, instrument: str | None) -> Any:
    credentials.require_api_key()
    return _run(credentials, lambda client: client.open_orders(instrument))


def summary(credentials: Credentials, currency: str) -> Any:
    credentials.require_api_key()
    return _run(credentials, lambda client: client.account_summary(currency))


def positions(credentials: Credentials, currency: str | None) -> Any:
    credentials.require_api_key()
    return _run(credentials, lambda client: client.positions(currency))


# --- output -----------------------------------------------------------------------------------


def order_line(order: dict[str, Any]) -> str:
    return (
        f"{order['order_id']} {order['order_state']} {order['direction']} "
        f"{order['amount']} {order['instrument_name']} @ {order.get('price')} "
        f"filled {order.get('filled_amount', 0)}"
    )


def render(kind: str, result: Any, *, as_json: bool) -> list[str]:
    """The lines to print for ``result`` of a command of ``kind``."""
    if as_json:
        return [json.dumps(result)]
    if kind == "placed":
        lines = [order_line(result["order"])]
        lines += [
            f"  trade {t['trade_id']}: {t['amount']} @ {t['price']}" for t in result["trades"]
        ]
        return lines
    if kind == "order":
        return [order_line(result)]
    if kind == "orders":
        return [order_line(order) for order in result] or ["no open orders"]
    if kind == "positions":
        return [
            f"{p['instrument_name']} {p['direction']} {p['size']} "
            f"avg {p['average_price']} pnl {p['total_profit_loss']}"
            for p in result
        ] or ["no positions"]
    keys = (
        "currency",
        "equity",
        "balance",
        "available_funds",
        "initial_margin",
        "maintenance_margin",
    )
    return [f"{key}: {result[key]}" for key in keys if key in result]
