"""Signed orders: eth-account as the referee for the digest, round trips, tampering, refusals."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from strikechain.engine.codes import Rejection
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.orders_signing import (
    ORDER_TYPE,
    OrderVerifier,
    order_digest,
    order_struct_hash,
    sign_order,
)
from strikechain.engine.signing import (
    SECP256K1_ORDER,
    SigningDomain,
    address_of,
    keccak256,
)
from strikechain.engine.txs import (
    VALID_ORDER_MODES,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
)
from strikechain.engine.units import INT64_MAX
from tests.engine.harness import eip712_message

KEY = keccak256(b"test trader")
OTHER_KEY = keccak256(b"someone else")
ACCOUNT = address_of(KEY)
UINT64_MAX = 2**64 - 1

private_keys = st.integers(1, SECP256K1_ORDER - 1).map(lambda n: n.to_bytes(32, "big"))
domains = st.builds(
    SigningDomain,
    chain_id=st.integers(1, 2**256 - 1),
    verifying_contract=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
)
ORDER_FIELDS = [
    # (EIP-712 name, type, PlaceOrder field), in ORDER_TYPE's order
    ("account", "address", "account"),
    ("instrument", "string", "instrument"),
    ("side", "int8", "side"),
    ("sizeLots", "uint64", "size_lots"),
    ("priceTicks", "uint64", "price_ticks"),
    ("orderType", "uint8", "order_type"),
    ("timeInForce", "uint8", "time_in_force"),
    ("postOnly", "uint8", "post_only"),
    ("reduceOnly", "bool", "reduce_only"),
    ("selfTrade", "uint8", "self_trade"),
    ("clientOrderId", "string", "client_order_id"),
    ("expireAtNs", "uint64", "expire_at_ns"),
    ("nonce", "uint64", "nonce"),
    ("expiryNs", "uint64", "expiry_ns"),
]


def _order(**fields: Any) -> PlaceOrder:
    values: dict[str, Any] = {
        "account": ACCOUNT,
        "instrument": "BTC-27MAR26-100000-C",
        "side": Side.BUY,
        "size_lots": 10,
        "price_ticks": 1_250,
        "client_order_id": "my-order-1",
        "nonce": 7,
        "expiry_ns": 1_767_225_600_000_000_000,
    }
    values.update(fields)
    return PlaceOrder(**values)


def _typed_message(tx: PlaceOrder, domain: SigningDomain) -> dict[str, Any]:
    """The order as eth-account's full typed-data message, written from EIP-712 directly."""
    return eip712_message(
        "Order",
        {"Order": [{"name": name, "type": kind} for name, kind, _ in ORDER_FIELDS]},
        domain,
        {name: getattr(tx, field) for name, _, field in ORDER_FIELDS},
    )


@st.composite
def orders(draw: st.DrawFn, account: str | None = None) -> PlaceOrder:
    side, order_type, tif, post_only, self_trade = draw(st.sampled_from(sorted(VALID_ORDER_MODES)))
    market = order_type == OrderType.MARKET
    return PlaceOrder(
        account=account or address_of(draw(private_keys)),
        instrument=draw(st.text(max_size=24)),
        side=side,
        size_lots=draw(st.integers(0, UINT64_MAX)),
        price_ticks=0 if market else draw(st.integers(0, UINT64_MAX)),
        order_type=order_type,
        time_in_force=tif,
        post_only=post_only,
        reduce_only=draw(st.booleans()),
        self_trade=self_trade,
        client_order_id=draw(st.text(max_size=64)),
        expire_at_ns=draw(st.integers(1, UINT64_MAX)) if tif == TimeInForce.GTT else 0,
        priority_fee=draw(st.integers(-INT64_MAX, INT64_MAX)),
        nonce=draw(st.integers(0, INT64_MAX)),
        expiry_ns=draw(st.integers(0, INT64_MAX)),
    )


def test_type_string_lists_the_fields_in_order() -> None:
    fields = ",".join(f"{kind} {name}" for name, kind, _ in ORDER_FIELDS)
    assert f"Order({fields})" == ORDER_TYPE


@settings(max_examples=60)
@given(orders(), domains)
def test_digest_matches_eth_account(tx: PlaceOrder, domain: SigningDomain) -> None:
    signable = encode_typed_data(full_message=_typed_message(tx, domain))
    assert bytes(signable.header) == domain.separator
    assert bytes(signable.body) == order_struct_hash(tx)
    digest = order_digest(tx, domain)
    assert digest == keccak256(b"\x19" + signable.version + signable.header + signable.body)


@settings(max_examples=25)
@given(st.data(), private_keys, domains)
def test_sign_recover_round_trip_and_eth_account_agreement(
    data: st.DataObject, private_key: bytes, domain: SigningDomain
) -> None:
    account = address_of(private_key)
    tx = data.draw(orders(account=account))
    signed = sign_order(tx, private_key, domain)
    assert signed == msgspec.structs.replace(tx, signature=signed.signature)
    assert len(signed.signature) == 65
    verifier = OrderVerifier(domain)
    assert verifier.signer(signed) == account
    assert verifier.verify(signed)
    other = SigningDomain(
        chain_id=domain.chain_id % (2**256 - 1) + 1,
        verifying_contract=domain.verifying_contract,
    )
    assert not OrderVerifier(other).verify(signed)

    signable = encode_typed_data(full_message=_typed_message(tx, domain))
    theirs = bytes(Account.sign_message(signable, private_key).signature)
    assert theirs == signed.signature
    assert Account.recover_message(signable, signature=signed.signature).lower() == account


def test_signature_survives_encoding_round_trips() -> None:
    signed = sign_order(_order(), KEY)
    for encode, decode in (
        (msgspec.json.encode, msgspec.json.decode),
        (msgspec.msgpack.encode, msgspec.msgpack.decode),
    ):
        again = decode(encode(signed), type=PlaceOrder)
        assert again == signed
        assert OrderVerifier().verify(again)


TAMPERED = [
    ("account", address_of(OTHER_KEY)),
    ("instrument", "BTC-27MAR26-100000-P"),
    ("side", Side.SELL),
    ("size_lots", 11),
    ("price_ticks", 1_251),
    ("post_only", 1),
    ("reduce_only", True),
    ("self_trade", 2),
    ("client_order_id", "my-order-2"),
    ("nonce", 8),
    ("expiry_ns", 1_767_225_600_000_000_001),
]


@pytest.mark.parametrize(("field", "value"), TAMPERED)
def test_tampering_any_field_changes_the_signer(field: str, value: object) -> None:
    signed = sign_order(_order(), KEY)
    tampered = msgspec.structs.replace(signed, **{field: value})
    verifier = OrderVerifier()
    assert verifier.signer(tampered) not in (None, ACCOUNT)
    assert not verifier.verify(tampered)


def test_tampering_modes_and_good_till_time_changes_the_signer() -> None:
    signed = sign_order(_order(), KEY)
    verifier = OrderVerifier()
    for tampered in (
        msgspec.structs.replace(signed, order_type=OrderType.MARKET, price_ticks=0),
        msgspec.structs.replace(signed, time_in_force=TimeInForce.IOC),
        msgspec.structs.replace(signed, time_in_force=TimeInForce.GTT, expire_at_ns=1),
    ):
        assert verifier.signer(tampered) not in (None, ACCOUNT)


def test_priority_fee_is_not_signed() -> None:
    signed = sign_order(_order(), KEY)
    assert OrderVerifier().verify(msgspec.structs.replace(signed, priority_fee=5))


def test_tampering_the_domain_changes_the_signer() -> None:
    signed = sign_order(_order(), KEY)
    for domain in (
        SigningDomain(chain_id=1),
        SigningDomain(verifying_contract="0x" + "01" * 20),
    ):
        assert OrderVerifier(domain).signer(signed) not in (None, ACCOUNT)


def test_signed_by_someone_else_is_not_verified() -> None:
    forged = sign_order(_order(), OTHER_KEY)
    verifier = OrderVerifier()
    assert verifier.signer(forged) == address_of(OTHER_KEY)
    assert not verifier.verify(forged)


def test_digest_golden() -> None:
    """Pins the encoding: a change here breaks every client's and verifier's signatures."""
    assert order_digest(_order()).hex() == GOLDEN_ORDER_DIGEST


GOLDEN_ORDER_DIGEST = "43c8341d097ebd59ac42c1e2b22d8cfddaa1b95b995e9d08e6a941c138d237ee"


def _with_signature(signature: bytes) -> PlaceOrder:
    return msgspec.structs.replace(_order(), signature=signature)


def _high_s(signature: bytes) -> bytes:
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    return signature[:32] + (SECP256K1_ORDER - s).to_bytes(32, "big") + bytes((55 - v,))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda sig: b"\x00" * 65,
        lambda sig: sig[:64] + b"\x00",
        lambda sig: sig[:64] + b"\x1d",
        lambda sig: b"\xff" * 32 + sig[32:],
        _high_s,
    ],
)
def test_malformed_signatures_have_no_signer(mutate: Any) -> None:
    signature = sign_order(_order(), KEY).signature
    tx = _with_signature(mutate(signature))
    verifier = OrderVerifier()
    assert verifier.signer(tx) is None
    assert not verifier.verify(tx)


def test_unsigned_order_has_no_signer() -> None:
    verifier = OrderVerifier()
    assert verifier.signer(_order()) is None
    assert not verifier.verify(_order())


@pytest.mark.parametrize(
    "fields",
    [
        {"account": "alice"},
        {"account": ACCOUNT.upper().replace("0X", "0x")},
        {"size_lots": -1},
        {"price_ticks": 2**64},
    ],
)
def test_unencodable_orders_raise_on_signing_and_have_no_signer(fields: dict[str, Any]) -> None:
    tx = _order(**fields)
    with pytest.raises(ValueError, match=r"."):
        order_digest(tx)
    with pytest.raises(ValueError, match=r"."):
        sign_order(tx, KEY)
    signature = sign_order(_order(), KEY).signature
    forged = msgspec.structs.replace(tx, signature=signature)
    verifier = OrderVerifier()
    assert verifier.signer(forged) is None
    assert not verifier.verify(forged)


@settings(max_examples=100)
@given(st.binary(max_size=80))
def test_garbage_signatures_never_raise(signature: bytes) -> None:
    try:
        tx = _with_signature(signature)
    except Rejection:
        assert len(signature) not in (0, 65)
        return
    assert OrderVerifier().verify(tx) is False


@pytest.mark.parametrize(
    "fields",
    [
        {"signature": b"\x01" * 64},
        {"signature": "00" * 65},
        {"nonce": -1},
        {"nonce": INT64_MAX + 1},
        {"expiry_ns": -1},
        {"expiry_ns": "1"},
    ],
)
def test_place_order_refuses_bad_signature_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(Rejection):
        _order(**fields)


def test_existing_constructions_keep_their_defaults() -> None:
    tx = PlaceOrder(account="alice", instrument="X", side=Side.BUY, size_lots=1, price_ticks=1)
    assert (tx.nonce, tx.expiry_ns, tx.signature) == (0, 0, b"")


def test_verifier_memo_is_bounded_and_oldest_first() -> None:
    verifier = OrderVerifier(capacity=3)
    signed = [sign_order(_order(nonce=n), KEY) for n in range(5)]
    for tx in signed:
        assert verifier.verify(tx)
    memo = verifier._memo
    assert len(memo) == 3
    assert list(memo) == signed[2:]
    assert verifier.verify(signed[0])  # recomputed, same answer
    assert list(memo) == [*signed[3:], signed[0]]
    with pytest.raises(InvariantViolation):
        OrderVerifier(capacity=0)
