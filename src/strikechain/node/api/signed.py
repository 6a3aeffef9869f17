"""The trust-minimized order path: ``public/submit_signed_order``, an order authenticated by its
account's EIP-712 signature (:mod:`strikechain.engine.orders_signing`) instead of an API key.

The account is an Ethereum address, and the order's fields are sent exactly as the typed data
``Order`` holds them (no unit conversion on the node, so what the wallet showed is what is
placed; :meth:`strikechain.client.Client.submit_signed_order` converts Deribit units with the
instrument's tick and lot before signing). ``public/get_signing_domain`` tells a client the
domain to sign under. Parameters (JSON types; the engine's integer values for enumerations):

==================  ======  =========================================================
``account``         str     the signer: ``0x`` + 40 lowercase hex
``instrument_name`` str     typed-data ``instrument``
``side``            int     1 buy, -1 sell
``size_lots``       int     lots
``price_ticks``     int     ticks (0 for a market order; default 0)
``order_type``      int     1 limit (default), 2 market
``time_in_force``   int     1 GTC (default), 2 IOC, 3 FOK, 4 GTT
``post_only``       int     0 none (default), 1 reprice, 2 reject
``reduce_only``     bool    default false
``self_trade``      int     1 cancel taker (default), 2 cancel maker, 3 both
``client_order_id`` str     default ""
``expire_at_ns``    int     the resting order's good-till-time (GTT only; default 0)
``nonce``           int     ``0 .. 2**63 - 1``, used once per account
``expiry``          int     the signature's validity end, ns since the epoch (``expiryNs``)
``signature``       str     ``0x`` + 130 hex: ``r || s || v``, ``v`` in {27, 28}
==================  ======  =========================================================

The answer is ``private/buy``'s (``{"order", "trades"}``) and the order carries its signature
into the block and the log, where the settlement verifier checks it again.

Refusals (nothing is submitted, no nonce is spent): malformed input ``-32602``; a signature
that recovers no address or another one than ``account`` (a wrong key, a tampered field, another
domain or chain) ``13010`` with ``data.code`` ``SIGNATURE_INVALID`` / ``SIGNER_MISMATCH``;
``expiry`` not after the node's clock ``13010 SIGNATURE_EXPIRED``; an ``expiry`` more than
:data:`SIGNATURE_LIFETIME_MAX_NS` ahead ``13010 EXPIRY_TOO_FAR``; a nonce already used by the
account ``13010 NONCE_REPLAYED``; too many unexpired signed orders remembered ``10028``. An
engine refusal after submission is ``private/buy``'s error, and the nonce stays spent (the
order is in the log: the same signature must not place it again).

Replay protection (:class:`NonceMemory`). A nonce is spent when its order enters the inbox. The
node remembers ``(account, nonce)`` until the order's signature expires, since after that the
order is refused as expired anyway; that is why an ``expiry`` is required (0, "never", is
refused here) and bounded by :data:`SIGNATURE_LIFETIME_MAX_NS`: memory is bounded by the rate of
signed orders times that lifetime, and capped (:data:`NONCES_PER_ACCOUNT_MAX`,
:data:`NONCES_MAX`; beyond: ``10028``). Nonces need not increase (a client may use a counter or
the clock). On start (first use) the memory is rebuilt from the log's signed orders of the last
:data:`SIGNATURE_LIFETIME_MAX_NS`, so a restart does not reopen replays.

Verification cost: the digest is computed here (:class:`OrderDigester`, the same bytes as
:func:`~strikechain.engine.orders_signing.order_digest`: the type hash and the domain separator
computed once, the hashes of instrument names and client order ids remembered) and the address
recovered by libsecp256k1 through coincurve (:func:`~strikechain.engine.signing.recover_address`:
about 55 us of the about 60 us a verification takes on the reference machine; calling the cffi
binding directly saved only about 3 us, not worth depending on coincurve's internals).

Without an API key a call is rate-limited by the caller's address (the transport's rule); a
WebSocket authenticated with a key is charged to the key instead.
"""

from __future__ import annotations

import heapq
from typing import Any, Final

from strikechain.engine import codec
from strikechain.engine.codes import Rejection
from strikechain.engine.orders_signing import ORDER_TYPE
from strikechain.engine.signing import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    SIGNATURE_BYTES,
    SigningDomain,
    is_address,
    keccak256,
    recover_address,
    type_hash,
)
from strikechain.engine.txs import PlaceOrder
from strikechain.node.api.errors import (
    SIGNATURE_INVALID,
    TOO_MANY_REQUESTS,
    ApiError,
    invalid_params,
)
from strikechain.node.api.private import error_of, order_result, submit_checked
from strikechain.node.api.public import NoParams, Params, require_instrument
from strikechain.node.api.registry import Context, attached, method

NANOS_PER_SECOND: Final = 1_000_000_000
SIGNATURE_LIFETIME_MAX_NS: Final = 600 * NANOS_PER_SECOND
"""How far ahead of the node's clock a signed order's ``expiry`` may be (10 minutes)."""
NONCES_PER_ACCOUNT_MAX: Final = 16_384
"""Unexpired signed orders remembered for one account."""
NONCES_MAX: Final = 1_000_000
"""Unexpired signed orders remembered, all accounts together."""
STRING_HASHES_MAX: Final = 4_096
"""Instrument names and client order ids whose keccak-256 the digester remembers."""


class SignedOrderParams(Params):
    account: str
    instrument_name: str
    side: int
    size_lots: int
    nonce: int
    expiry: int
    signature: str
    price_ticks: int = 0
    order_type: int = 1
    time_in_force: int = 1
    post_only: int = 0
    reduce_only: bool = False
    self_trade: int = 1
    client_order_id: str = ""
    expire_at_ns: int = 0


# --- the digest -------------------------------------------------------------------------------

_WORD: Final = 32
_ORDER_TYPE_HASH: Final = type_hash(ORDER_TYPE)
_UINT64: Final = 1 << 64


class OrderDigester:
    """:func:`~strikechain.engine.orders_signing.order_digest`, for one domain, faster: the
    domain separator and the type hash computed once, string hashes remembered (bounded), the
    words built by ``int.to_bytes`` without the generic encoders' per-field checks (the order
    was validated by :class:`PlaceOrder` and the ranges are checked here at once).

    ValueError for an order the type cannot hold (as ``order_digest``).
    """

    __slots__ = ("_prefix", "_strings")

    def __init__(self, domain: SigningDomain) -> None:
        self._prefix = b"\x19\x01" + domain.separator
        self._strings: dict[str, bytes] = {}

    def digest(self, tx: PlaceOrder) -> bytes:
        if not (
            is_address(tx.account)
            and 0 <= tx.size_lots < _UINT64
            and 0 <= tx.price_ticks < _UINT64
            and 0 <= tx.expire_at_ns < _UINT64
        ):
            raise ValueError("the order has a field its EIP-712 type cannot hold")
        word = _WORD
        struct = b"".join(
            (
                _ORDER_TYPE_HASH,
                bytes(12),
                bytes.fromhex(tx.account[2:]),
                self._string(tx.instrument),
                tx.side.to_bytes(word, "big", signed=True),
                tx.size_lots.to_bytes(word, "big"),
                tx.price_ticks.to_bytes(word, "big"),
                tx.order_type.to_bytes(word, "big"),
                tx.time_in_force.to_bytes(word, "big"),
                tx.post_only.to_bytes(word, "big"),
                int(tx.reduce_only).to_bytes(word, "big"),
                tx.self_trade.to_bytes(word, "big"),
                self._string(tx.client_order_id),
                tx.expire_at_ns.to_bytes(word, "big"),
                tx.nonce.to_bytes(word, "big"),
                tx.expiry_ns.to_bytes(word, "big"),
            )
        )
        return keccak256(self._prefix + keccak256(struct))

    def _string(self, text: str) -> bytes:
        strings = self._strings
        found = strings.get(text)
        if found is None:
            found = keccak256(text.encode("utf-8"))
            if len(strings) >= STRING_HASHES_MAX:
                del strings[next(iter(strings))]
            strings[text] = found
        return found

    def signer(self, tx: PlaceOrder) -> str | None:
        """The address that signed ``tx`` under this domain (None: nobody validly did)."""
        try:
            digest = self.digest(tx)
        except ValueError:
            return None
        return recover_address(digest, tx.signature)


# --- replay protection ------------------------------------------------------------------------


class NonceMemory:
    """The ``(account, nonce)`` pairs of signed orders whose signature has not expired.

    Bounded: :data:`NONCES_PER_ACCOUNT_MAX` per account, :data:`NONCES_MAX` in all; an entry
    leaves once the clock passes its expiry (a heap orders them by it). Iteration-free checks
    (dict lookups), so the order of accounts never matters.
    """

    __slots__ = ("_expiries", "_per_account", "_per_account_max", "_seen", "_total_max")

    def __init__(
        self, per_account_max: int = NONCES_PER_ACCOUNT_MAX, total_max: int = NONCES_MAX
    ) -> None:
        self._per_account_max = per_account_max
        self._total_max = total_max
        self._seen: set[tuple[str, int]] = set()
        self._per_account: dict[str, int] = {}
        self._expiries: list[tuple[int, str, int]] = []

    def check(self, account: str, nonce: int, now_ns: int) -> None:
        """ApiError unless ``account`` may use ``nonce`` now (nothing is remembered yet)."""
        self.forget_expired(now_ns)
        if (account, nonce) in self._seen:
            raise _refused("NONCE_REPLAYED", f"nonce {nonce} was already used by {account}")
        if self._per_account.get(account, 0) >= self._per_account_max:
            raise ApiError(
                TOO_MANY_REQUESTS,
                "too_many_requests",
                {"reason": f"{account} has {self._per_account_max} unexpired signed orders"},
            )
        if len(self._seen) >= self._total_max:
            raise ApiError(
                TOO_MANY_REQUESTS, "too_many_requests", {"reason": "too many signed orders"}
            )

    def remember(self, account: str, nonce: int, expiry_ns: int) -> None:
        """Spend ``nonce``; the caller checked it (:meth:`check`) without yielding since."""
        self._seen.add((account, nonce))
        self._per_account[account] = self._per_account.get(account, 0) + 1
        heapq.heappush(self._expiries, (expiry_ns, account, nonce))

    def forget_expired(self, now_ns: int) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] < now_ns:
            _, account, nonce = heapq.heappop(expiries)
            self._seen.discard((account, nonce))
            left = self._per_account[account] - 1
            if left:
                self._per_account[account] = left
            else:
                del self._per_account[account]

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, entry: object) -> bool:
        return entry in self._seen


class SignedOrders:
    """The node's signed-order edge: its digester (the venue's domain) and nonce memory. A
    runtime sink (found again by :func:`attach`), which forgets expired nonces each block."""

    def __init__(self, domain: SigningDomain) -> None:
        self.domain = domain
        self.digester = OrderDigester(domain)
        self.nonces = NonceMemory()

    def on_block(self, committed: Any) -> None:
        self.nonces.forget_expired(committed.block.timestamp_ns)

    def rebuild(self, block_log: Any, height: int, interval_ns: int, now_ns: int) -> None:
        """Remember the signed orders of the log's blocks that may hold unexpired signatures:
        a block is cut at most once per interval, so the last ``lifetime / interval`` blocks
        cover at least the last lifetime."""
        back = SIGNATURE_LIFETIME_MAX_NS // max(interval_ns, 1) + 1
        for record in block_log.records(max(1, height - back)):
            if record.timestamp_ns + SIGNATURE_LIFETIME_MAX_NS < now_ns or not record.transactions:
                continue
            for tx in codec.decode_block(record.block).transactions:
                if (
                    type(tx) is PlaceOrder
                    and tx.signature
                    and tx.expiry_ns >= now_ns
                    and (tx.account, tx.nonce) not in self.nonces
                ):
                    self.nonces.remember(tx.account, tx.nonce, tx.expiry_ns)


def attach(node: Any) -> SignedOrders:
    """The node's :class:`SignedOrders`, made (and rebuilt from the log) on first use."""

    def make() -> SignedOrders:
        engine = node.engine
        edge = SignedOrders(engine.venue.signing)
        if node.log is not None:
            interval_ns = node.config.node.block_interval_ns
            edge.rebuild(node.log, engine.height, interval_ns, node.clock())
        return edge

    return attached(node, SignedOrders, make)


# --- the methods ------------------------------------------------------------------------------


def _refused(code: str, reason: str) -> ApiError:
    return ApiError(SIGNATURE_INVALID, "signature_invalid", {"code": code, "reason": reason})


def _signature(text: str) -> bytes:
    raw = text[2:] if text[:2] in ("0x", "0X") else ""
    try:
        signature = bytes.fromhex(raw)
    except ValueError:
        signature = b""
    if len(signature) != SIGNATURE_BYTES:
        raise invalid_params("signature", f"0x followed by {2 * SIGNATURE_BYTES} hex digits")
    return signature


def place_order_of(params: SignedOrderParams) -> PlaceOrder:
    """The order ``params`` describe, with its signature (typed refusals for bad fields)."""
    if not is_address(params.account):
        raise invalid_params("account", "an address: 0x followed by 40 lowercase hex digits")
    signature = _signature(params.signature)
    try:
        return PlaceOrder(
            account=params.account,
            instrument=params.instrument_name,
            side=params.side,
            size_lots=params.size_lots,
            price_ticks=params.price_ticks,
            order_type=params.order_type,
            time_in_force=params.time_in_force,
            post_only=params.post_only,
            reduce_only=params.reduce_only,
            self_trade=params.self_trade,
            client_order_id=params.client_order_id,
            expire_at_ns=params.expire_at_ns,
            nonce=params.nonce,
            expiry_ns=params.expiry,
            signature=signature,
        )
    except Rejection as rejection:
        raise error_of(rejection.code, rejection.message) from None


def check_signature(edge: SignedOrders, tx: PlaceOrder, now_ns: int) -> None:
    """ApiError unless ``tx`` is signed by its account, unexpired, and its nonce unused."""
    if tx.expiry_ns <= now_ns:
        if tx.expiry_ns == 0:
            raise invalid_params("expiry", "a signed order needs an expiry (ns); 0 is refused")
        raise _refused("SIGNATURE_EXPIRED", f"expiry {tx.expiry_ns} ns is not after {now_ns}")
    if tx.expiry_ns > now_ns + SIGNATURE_LIFETIME_MAX_NS:
        limit_s = SIGNATURE_LIFETIME_MAX_NS // NANOS_PER_SECOND
        raise _refused("EXPIRY_TOO_FAR", f"expiry is more than {limit_s} s ahead of {now_ns}")
    signer = edge.digester.signer(tx)
    if signer is None:
        raise _refused("SIGNATURE_INVALID", "the signature recovers no address")
    if signer != tx.account:
        domain = edge.domain
        raise _refused(
            "SIGNER_MISMATCH",
            f"the signature recovers {signer}, not {tx.account}, under chain id "
            f"{domain.chain_id} and contract {domain.verifying_contract}",
        )
    edge.nonces.check(tx.account, tx.nonce, now_ns)


@method("public/submit_signed_order", SignedOrderParams)
async def submit_signed_order(context: Context, params: SignedOrderParams) -> Any:
    node = context.node
    edge = attach(node)
    tx = place_order_of(params)
    check_signature(edge, tx, node.clock())
    instrument = require_instrument(node.engine, tx.instrument)
    submitted = submit_checked(node, tx)  # queued now: no other call ran since the check
    edge.nonces.remember(tx.account, tx.nonce, tx.expiry_ns)
    return await order_result(context, tx, instrument, submitted)


@method("public/get_signing_domain", NoParams)
async def get_signing_domain(context: Context, params: NoParams) -> Any:
    """The EIP-712 domain and ``Order`` type signed orders are checked under."""
    domain: SigningDomain = context.node.engine.venue.signing
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chain_id": domain.chain_id,
        "verifying_contract": domain.verifying_contract,
        "order_type": ORDER_TYPE,
        "signature_lifetime_max_s": SIGNATURE_LIFETIME_MAX_NS // NANOS_PER_SECOND,
    }
