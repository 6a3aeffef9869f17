"""Signed orders: the EIP-712 order type, its digest, signing, and a memoizing verifier.

An account signs its :class:`~strikechain.engine.txs.PlaceOrder` as EIP-712 typed data, so a
wallet shows the order field by field and any verifier (the node on arrival, a replica, the
settlement contract with ``ecrecover``) can check who placed it. The signature rides in the
transaction and stays in the block and the log. The engine never checks it: verifying, and
enforcing the nonce and the signature's expiry, is the edges' work (node, verifier), which hand
the engine only orders they accept. This module follows the oracle report's scheme
(:func:`strikechain.engine.oracle.report_digest`): same domain, same signature format.

The type (:data:`ORDER_TYPE`), field by field, with the :class:`PlaceOrder` field it encodes::

    Order(
      address account,        account          the signer; canonical 0x + 40 lowercase hex
      string  instrument,     instrument       keccak-256 of its UTF-8 bytes
      int8    side,           side             1 buy, -1 sell (Side), two's complement word
      uint64  sizeLots,       size_lots        lots
      uint64  priceTicks,     price_ticks      ticks; 0 for a market order
      uint8   orderType,      order_type       OrderType: 1 limit, 2 market
      uint8   timeInForce,    time_in_force    TimeInForce: 1 GTC, 2 IOC, 3 FOK, 4 GTT
      uint8   postOnly,       post_only        PostOnly: 0 none, 1 reprice, 2 reject
      bool    reduceOnly,     reduce_only      0 or 1
      uint8   selfTrade,      self_trade       SelfTrade: 1 cancel taker, 2 maker, 3 both
      string  clientOrderId,  client_order_id  keccak-256 of its UTF-8 bytes ("" allowed)
      uint64  expireAtNs,     expire_at_ns     good-till-time expiry (block time); 0 otherwise
      uint64  nonce,          nonce            the signer's nonce
      uint64  expiryNs        expiry_ns        the signature's validity end, ns; 0: never
    )

Every field of the order is signed except ``priority_fee`` (the sequencer's ordering hint, as
for oracle reports) and ``signature`` itself. The enumerations are their engine values, so a
contract reads them without a mapping (``side`` is why the type is ``int8``, not ``uint8``).

Invariants
- The digest is a pure function of the signed fields and the domain; the type hash is computed
  once, the domain separator once per :class:`SigningDomain` value.
- :class:`OrderVerifier` never raises on an order: one whose fields cannot be encoded (an
  account that is not a canonical address, a negative or over-wide number), or whose signature
  is missing or malformed, has no signer (None).

Limits
- :func:`order_digest` and :func:`sign_order` raise ``ValueError`` for an order the type cannot
  encode: ``account`` not a canonical address, ``size_lots``, ``price_ticks`` or
  ``expire_at_ns`` outside ``0 .. 2**64 - 1`` (``nonce`` and ``expiry_ns`` are bounded by
  :class:`PlaceOrder` itself).
"""

from __future__ import annotations

from typing import Final

import msgspec

from strikechain.engine.signing import (
    DEFAULT_DOMAIN,
    SignerMemo,
    SigningDomain,
    encode_address,
    encode_bool,
    encode_int,
    encode_string,
    encode_uint,
    keccak256,
    recover_address,
    sign_digest,
    type_hash,
    typed_data_digest,
)
from strikechain.engine.txs import PlaceOrder

ORDER_TYPE: Final = (
    "Order(address account,string instrument,int8 side,uint64 sizeLots,uint64 priceTicks,"
    "uint8 orderType,uint8 timeInForce,uint8 postOnly,bool reduceOnly,uint8 selfTrade,"
    "string clientOrderId,uint64 expireAtNs,uint64 nonce,uint64 expiryNs)"
)
"""EIP-712 encodeType of an order (no referenced struct types)."""
_ORDER_TYPE_HASH: Final = type_hash(ORDER_TYPE)


def order_struct_hash(tx: PlaceOrder) -> bytes:
    """EIP-712 ``hashStruct`` of an order (type :data:`ORDER_TYPE`); ValueError if a field does
    not fit its type."""
    return keccak256(
        _ORDER_TYPE_HASH
        + encode_address(tx.account)
        + encode_string(tx.instrument)
        + encode_int(tx.side, 8)
        + encode_uint(tx.size_lots, 64)
        + encode_uint(tx.price_ticks, 64)
        + encode_uint(tx.order_type, 8)
        + encode_uint(tx.time_in_force, 8)
        + encode_uint(tx.post_only, 8)
        + encode_bool(tx.reduce_only)
        + encode_uint(tx.self_trade, 8)
        + encode_string(tx.client_order_id)
        + encode_uint(tx.expire_at_ns, 64)
        + encode_uint(tx.nonce, 64)
        + encode_uint(tx.expiry_ns, 64)
    )


def order_digest(tx: PlaceOrder, domain: SigningDomain = DEFAULT_DOMAIN) -> bytes:
    """The EIP-712 digest an account signs for ``tx``: what a wallet shows as typed data and
    what ``ecrecover`` checks on chain. ValueError if a field does not fit its type."""
    return typed_data_digest(domain.separator, order_struct_hash(tx))


def sign_order(
    tx: PlaceOrder, private_key: bytes, domain: SigningDomain = DEFAULT_DOMAIN
) -> PlaceOrder:
    """A copy of ``tx`` carrying its signature by ``private_key`` (clients and the tests sign;
    the edges verify). The key should be the account's: nothing here checks that it is."""
    signature = sign_digest(order_digest(tx, domain), private_key)
    return msgspec.structs.replace(tx, signature=signature)


class OrderVerifier:
    """Who signed an order, remembered for the last ``capacity`` orders.

    As :class:`~strikechain.engine.oracle.ReportVerifier`: the signer is a pure function of the
    order (its fields, its signature and the domain), so remembering it changes no outcome, only
    the cost. Bounded: the oldest entries leave first. Checks the signature only; the nonce and
    ``expiry_ns`` against a clock are the caller's.
    """

    __slots__ = ("_memo", "domain")

    def __init__(self, domain: SigningDomain = DEFAULT_DOMAIN, capacity: int = 65_536) -> None:
        self.domain = domain
        self._memo: SignerMemo[PlaceOrder] = SignerMemo(capacity)

    @property
    def capacity(self) -> int:
        return self._memo.capacity

    def signer(self, tx: PlaceOrder) -> str | None:
        """The address that signed ``tx`` (None if nobody validly did, or it cannot be encoded)."""
        return self._memo.signer(tx, self._recover)

    def _recover(self, tx: PlaceOrder) -> str | None:
        if not tx.signature:
            return None
        try:
            digest = order_digest(tx, self.domain)
        except ValueError:  # a field the type cannot hold: not signable, so not signed
            digest = b""
        return recover_address(digest, tx.signature)

    def verify(self, tx: PlaceOrder) -> bool:
        """Whether ``tx`` is signed by its own account."""
        signer = self.signer(tx)
        return signer is not None and signer == tx.account
