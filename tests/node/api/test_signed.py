"""``public/submit_signed_order``: an order authenticated by its account's EIP-712 signature,
against a live node (no sockets). Accepted orders carry their signature into the block; every
refusal (bad or foreign signature, tampered field, expiry, replay) changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

import strikechain.node.api.methods  # noqa: F401  (registers the methods)
from strikechain.engine import codec
from strikechain.engine.orders_signing import order_digest, sign_order
from strikechain.engine.signing import (
    DEFAULT_DOMAIN,
    SigningDomain,
    address_of,
    keccak256,
    recover_address,
)
from strikechain.engine.txs import Deposit, PlaceOrder, PostOnly
from strikechain.node.api import errors, signed
from strikechain.node.api.errors import ApiError
from strikechain.node.api.history import attach
from strikechain.node.api.registry import Context, call
from strikechain.node.api.signed import (
    SIGNATURE_LIFETIME_MAX_NS,
    NonceMemory,
    OrderDigester,
    SignedOrders,
)
from strikechain.node.service import Node
from tests.node.api.test_methods import PERP, USDC, Clock, config, report

TRADER_KEY = keccak256(b"signed-order-trader")
TRADER = address_of(TRADER_KEY)
OTHER_KEY = keccak256(b"signed-order-other")
OTHER = address_of(OTHER_KEY)
SECOND = 1_000_000_000


def signed_params(
    node: Node,
    *,
    key: bytes = TRADER_KEY,
    account: str = TRADER,
    nonce: int = 1,
    expiry_ns: int | None = None,
    price_ticks: int = 180_000,
    domain: SigningDomain = DEFAULT_DOMAIN,
) -> dict[str, Any]:
    """The method's parameters for a post-only bid of 2 lots, signed by ``key``."""
    expiry = node.clock() + 60 * SECOND if expiry_ns is None else expiry_ns
    order = PlaceOrder(
        account=account,
        instrument=PERP,
        side=1,
        size_lots=2,
        price_ticks=price_ticks,
        post_only=int(PostOnly.REJECT),
        nonce=nonce,
        expiry_ns=expiry,
    )
    signature = sign_order(order, key, domain).signature
    return {
        "account": account,
        "instrument_name": PERP,
        "side": 1,
        "size_lots": 2,
        "price_ticks": price_ticks,
        "post_only": int(PostOnly.REJECT),
        "nonce": nonce,
        "expiry": expiry,
        "signature": "0x" + signature.hex(),
    }


def run(tmp_path: Path, body: Callable[[Node], Awaitable[None]]) -> None:
    async def main() -> None:
        clock = Clock()
        node = Node(config(tmp_path), clock=clock)
        await node.start()
        attach(node)
        try:
            await node.submit(
                Deposit(
                    account="operator",
                    deposit_id=1,
                    beneficiary=TRADER,
                    underlying="BTC",
                    amount=100_000 * USDC,
                )
            )
            await node.submit(report(clock))
            await body(node)
        finally:
            await node.stop()

    asyncio.run(main())


async def submit(node: Node, params: dict[str, Any], *, strings: bool = False) -> Any:
    return await call("public/submit_signed_order", params, Context(node=node), strings=strings)


async def refused(node: Node, params: dict[str, Any]) -> ApiError:
    orders = dict(node.engine.orders)
    height = node.engine.height
    spent = len(_edge(node).nonces)
    with pytest.raises(ApiError) as caught:
        await submit(node, params)
    assert dict(node.engine.orders) == orders  # nothing placed
    assert len(_edge(node).nonces) == spent  # no nonce spent
    assert node.runtime is not None
    assert not node.runtime.inbox  # nothing submitted
    assert node.engine.height >= height
    return caught.value


def _edge(node: Node) -> SignedOrders:
    return signed.attach(node)


def reason(error: ApiError) -> Any:
    assert error.data is not None
    return error.data.get("code") or error.data.get("param")


def test_a_signed_order_is_placed_with_its_signature_in_the_block(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        params = signed_params(node)
        answer = await submit(node, params)
        order = answer["order"]
        assert (order["direction"], order["order_state"], order["price"]) == ("buy", "open", 90_000)
        resting = node.engine.orders[int(order["order_id"])]
        assert resting.account == TRADER
        assert node.log is not None
        block = next(  # the order, its nonce, expiry and signature are in the log
            tx
            for record in node.log.records(1)
            for tx in codec.decode_block(record.block).transactions
            if isinstance(tx, PlaceOrder) and tx.account == TRADER
        )
        assert block.signature.hex() == params["signature"][2:]
        assert (block.nonce, block.expiry_ns) == (params["nonce"], params["expiry"])
        assert recover_address(order_digest(block), block.signature) == TRADER
        # A second order with a new nonce is fine; query-string parameters convert.
        strings = {k: str(v) for k, v in signed_params(node, nonce=2).items()}
        assert (await submit(node, strings, strings=True))["order"]["order_state"] == "open"
        domain = await call("public/get_signing_domain", {}, Context(node=node))
        assert domain["chain_id"] == DEFAULT_DOMAIN.chain_id
        assert domain["order_type"].startswith("Order(address account,")

    run(tmp_path, body)


def test_refusals_change_nothing(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        good = signed_params(node, nonce=7)
        await submit(node, good)
        # replayed: the same signed order again, and another order reusing the nonce
        replay = await refused(node, good)
        assert (replay.code, reason(replay)) == (errors.SIGNATURE_INVALID, "NONCE_REPLAYED")
        again = await refused(node, signed_params(node, nonce=7, price_ticks=170_000))
        assert reason(again) == "NONCE_REPLAYED"
        # expired by the node's clock, or never expiring, or too far ahead
        expired = await refused(node, signed_params(node, nonce=8, expiry_ns=node.clock() - 1))
        assert (expired.code, reason(expired)) == (errors.SIGNATURE_INVALID, "SIGNATURE_EXPIRED")
        never = await refused(node, signed_params(node, nonce=8, expiry_ns=0))
        assert (never.code, reason(never)) == (errors.INVALID_PARAMS, "expiry")
        far = node.clock() + SIGNATURE_LIFETIME_MAX_NS + 60 * SECOND
        assert reason(await refused(node, signed_params(node, nonce=8, expiry_ns=far))) == (
            "EXPIRY_TOO_FAR"
        )
        # placed for another account: signed by OTHER's key but naming TRADER, and the reverse
        forged = await refused(node, signed_params(node, key=OTHER_KEY, nonce=9))
        assert (forged.code, reason(forged)) == (errors.SIGNATURE_INVALID, "SIGNER_MISMATCH")
        theirs = await refused(node, signed_params(node, account=OTHER, nonce=9))
        assert reason(theirs) == "SIGNER_MISMATCH"
        # tampered fields after signing
        for field, value in (("price_ticks", 180_002), ("size_lots", 3), ("side", -1)):
            tampered = {**signed_params(node, nonce=10), field: value}
            error = await refused(node, tampered)
            assert (error.code, reason(error)) == (errors.SIGNATURE_INVALID, "SIGNER_MISMATCH")
        tampered = {**signed_params(node, nonce=10), "nonce": 11}
        assert reason(await refused(node, tampered)) == "SIGNER_MISMATCH"
        # another chain's domain
        foreign = SigningDomain(chain_id=1)
        wrong_chain = await refused(node, signed_params(node, nonce=12, domain=foreign))
        assert reason(wrong_chain) == "SIGNER_MISMATCH"
        assert "chain id 31337" in str(wrong_chain.data)
        # malformed signature, a high-s twin, an account that is not an address
        params = signed_params(node, nonce=13)
        short = await refused(node, {**params, "signature": params["signature"][:-2]})
        assert (short.code, reason(short)) == (errors.INVALID_PARAMS, "signature")
        raw = bytes.fromhex(params["signature"][2:])
        s = int.from_bytes(raw[32:64], "big")
        n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
        flipped = raw[:32] + (n - s).to_bytes(32, "big") + bytes((raw[64] ^ 1,))
        twin = await refused(node, {**params, "signature": "0x" + flipped.hex()})
        assert reason(twin) == "SIGNATURE_INVALID"
        upper = await refused(node, {**params, "account": TRADER.upper().replace("0X", "0x")})
        assert (upper.code, reason(upper)) == (errors.INVALID_PARAMS, "account")
        # the untouched order with nonce 13 still goes through: nothing above spent it
        assert (await submit(node, params))["order"]["order_state"] == "open"

    run(tmp_path, body)


def test_an_engine_refusal_spends_the_nonce(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        crossing = signed_params(node, key=OTHER_KEY, account=OTHER, nonce=1)  # unfunded
        with pytest.raises(ApiError) as caught:
            await submit(node, crossing)
        assert caught.value.code == errors.NOT_ENOUGH_FUNDS
        assert reason(await refused(node, crossing)) == "NONCE_REPLAYED"

    run(tmp_path, body)


def test_nonce_memory_forgets_expired_and_is_bounded() -> None:
    memory = NonceMemory(per_account_max=2, total_max=3)
    memory.check("a", 1, 0)
    memory.remember("a", 1, 100)
    memory.remember("a", 2, 200)
    with pytest.raises(ApiError) as full:
        memory.check("a", 3, 50)
    assert full.value.code == errors.TOO_MANY_REQUESTS
    with pytest.raises(ApiError):
        memory.check("a", 1, 100)  # expires after 100, not at it
    memory.check("a", 1, 101)  # expired: forgotten, and its order is refused as expired
    assert len(memory) == 1
    memory.remember("b", 1, 300)
    memory.remember("c", 1, 300)
    with pytest.raises(ApiError) as total:
        memory.check("d", 1, 150)
    assert total.value.code == errors.TOO_MANY_REQUESTS


def test_the_fast_digest_is_order_digest() -> None:
    digester = OrderDigester(SigningDomain(chain_id=5))
    for number in range(50):
        order = PlaceOrder(
            account=TRADER,
            instrument=PERP if number % 2 else "ETH_USDC-PERPETUAL",
            side=1 if number % 3 else -1,
            size_lots=1 + number * 7919,
            price_ticks=number * 104_729,
            reduce_only=bool(number % 2),
            client_order_id=f"id-{number % 4}" if number % 5 else "",
            nonce=number,
            expiry_ns=number * SECOND,
        )
        assert digester.digest(order) == order_digest(order, SigningDomain(chain_id=5))
        signed = sign_order(order, TRADER_KEY, SigningDomain(chain_id=5))
        assert digester.signer(signed) == TRADER
        assert digester.signer(msgspec.structs.replace(signed, nonce=number + 1)) != TRADER


def test_a_restart_remembers_the_nonces_of_unexpired_signed_orders(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()
        node = Node(config(tmp_path), clock=clock)
        await node.start()
        await node.submit(
            Deposit(
                account="operator",
                deposit_id=1,
                beneficiary=TRADER,
                underlying="BTC",
                amount=100_000 * USDC,
            )
        )
        await node.submit(report(clock))
        params = signed_params(node, nonce=42)
        await submit(node, params)
        await node.stop()
        restarted = Node(config(tmp_path), clock=clock)
        await restarted.start()
        try:
            error = await refused(restarted, params)
            assert reason(error) == "NONCE_REPLAYED"
        finally:
            await restarted.stop()

    asyncio.run(main())
