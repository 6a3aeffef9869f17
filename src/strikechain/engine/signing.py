"""Ethereum-style signatures: keccak-256, secp256k1 sign and recover, and EIP-712 encoding.

Why Ethereum's scheme: the venue settles on an EVM chain, and a verifier that replays the posted
blocks must re-check every signature they carry, including on chain (``ecrecover``) and with
ordinary wallets. So an account is an Ethereum address, a signature is the ``(r, s, v)`` that
``ecrecover`` takes, and structured messages (oracle reports, later orders) are signed as
EIP-712 typed data, which wallets display field by field.

Conventions
- An address is the last 20 bytes of the keccak-256 of the uncompressed public key, written
  ``"0x"`` + 40 lowercase hex digits: :func:`address_of` returns this canonical form, and state
  holds only it, so two spellings of one account can never be two accounts (EIP-55's mixed case
  is a display checksum, not an identity).
- A signature is 65 bytes ``r || s || v``: ``r`` and ``s`` 32-byte big-endian, ``v`` in
  {27, 28} (the recovery id + 27, as ``ecrecover`` expects).
- Low ``s`` only (``s <= n/2``, EIP-2): for every signature ``(r, s)`` the pair ``(r, n - s)`` is
  also valid for the same key and digest, so accepting both would give one signed message two
  encodings, and two transaction ids. :func:`sign_digest` produces low ``s`` (libsecp256k1
  normalizes) and :func:`recover_address` refuses high ``s``.
- Typed data is bound to one deployment by its :class:`SigningDomain` (name "strikechain",
  version "1", chain id, settlement contract), so a signature made for a test network is
  worthless on another.

Invariants
- Pure functions of their arguments: no clock, no randomness (RFC 6979 deterministic nonces),
  no state, so a signature of the same digest by the same key is the same bytes everywhere
  (the same bytes eth-account produces; the tests check it).
- :func:`recover_address` never raises on bad input: a malformed, malleable or unrecoverable
  signature is ``None``, which callers treat as "not signed by anyone".

Limits
- Digests are exactly 32 bytes, private keys exactly 32 bytes in ``1 .. n - 1``; anything else
  is a programming error (``ValueError``), not input to judge.
- The EIP-712 helpers encode the atomic types the venue uses (``uint<N>``, ``int<N>``,
  ``address``, ``bytes32``, ``string``, ``bool``) and leave composing structs and arrays to the
  caller (``keccak256`` of the concatenated encodings, per EIP-712).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Final, Generic, TypeVar

import msgspec
import sha3
from coincurve import PrivateKey, PublicKey

from strikechain.engine.invariant import invariant

DIGEST_BYTES: Final = 32
PRIVATE_KEY_BYTES: Final = 32
SIGNATURE_BYTES: Final = 65
ADDRESS_BYTES: Final = 20
WORD_BYTES: Final = 32

SECP256K1_ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""``n``, the order of the secp256k1 group."""
SECP256K1_HALF_ORDER: Final = SECP256K1_ORDER // 2
"""The largest accepted ``s`` (EIP-2)."""

ZERO_ADDRESS: Final = "0x" + "00" * ADDRESS_BYTES

_ADDRESS: Final = re.compile(r"0x[0-9a-f]{40}")
_V_OFFSET: Final = 27

EIP712_DOMAIN_TYPE: Final = (
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
DOMAIN_NAME: Final = "strikechain"
DOMAIN_VERSION: Final = "1"
DEVELOPMENT_CHAIN_ID: Final = 31337
"""The chain id of local development chains (anvil, hardhat)."""


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as Ethereum uses it (the original padding, not NIST SHA3-256)."""
    digest: bytes = sha3.keccak_256(data).digest()
    return digest


def keccak_hasher() -> Any:
    """An incremental :func:`keccak256` (``update(bytes)`` piece by piece, then ``digest()``),
    for data hashed a part at a time."""
    return sha3.keccak_256()


def is_address(text: object) -> bool:
    """Whether ``text`` is an address in the canonical form ``0x`` + 40 lowercase hex digits."""
    return type(text) is str and _ADDRESS.fullmatch(text) is not None


def address_of(private_key: bytes) -> str:
    """The canonical address (``0x`` + 40 lowercase hex) of a 32-byte private key."""
    public = _private_key(private_key).public_key.format(compressed=False)
    return _address_of_public(public)


def sign_digest(digest: bytes, private_key: bytes) -> bytes:
    """The 65-byte signature ``r || s || v`` of a 32-byte digest, ``v`` in {27, 28}, low ``s``.

    The digest is signed as given (no further hashing): it is already a keccak-256 (an EIP-712
    digest), as ``ecrecover`` expects.
    """
    _require_digest(digest)
    signature = _private_key(private_key).sign_recoverable(digest, hasher=None)
    recovery_id = signature[64]
    if recovery_id > 1:  # r overflowed n: probability about 2**-127, and Ethereum has no v for it
        raise ValueError("recovery id above 1 cannot be expressed as v in {27, 28}")
    return signature[:64] + bytes((recovery_id + _V_OFFSET,))


def recover_address(digest: bytes, signature: bytes) -> str | None:
    """The canonical address that signed ``digest``, or None for a signature that is malformed
    (not 65 bytes, ``v`` not 27 or 28, ``r`` or ``s`` out of range), malleable (high ``s``) or
    unrecoverable (no curve point). Never raises on bad input, including a digest of the wrong
    type or length.
    """
    if type(digest) is not bytes or len(digest) != DIGEST_BYTES:
        return None
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        return None
    v = signature[64]
    if v not in (_V_OFFSET, _V_OFFSET + 1):
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not (0 < r < SECP256K1_ORDER and 0 < s <= SECP256K1_HALF_ORDER):
        return None
    recoverable = signature[:64] + bytes((v - _V_OFFSET,))
    try:
        public = PublicKey.from_signature_and_message(recoverable, digest, hasher=None)
    except ValueError:  # no point on the curve has this r: not a signature by anyone
        return None
    return _address_of_public(public.format(compressed=False))


# --- EIP-712 ------------------------------------------------------------------------------------


def type_hash(type_string: str) -> bytes:
    """``keccak256`` of a struct's canonical type string (EIP-712 ``typeHash``)."""
    return keccak256(type_string.encode("ascii"))


def encode_uint(value: int, bits: int = 256) -> bytes:
    """A ``uint<bits>`` as a 32-byte big-endian word; ValueError outside ``0 .. 2**bits - 1``."""
    _require_bits(bits)
    if type(value) is not int or not 0 <= value < 1 << bits:
        raise ValueError(f"{value!r} is not a uint{bits}")
    return value.to_bytes(WORD_BYTES, "big")


def encode_int(value: int, bits: int = 256) -> bytes:
    """An ``int<bits>`` as a 32-byte two's-complement word; ValueError outside its range."""
    _require_bits(bits)
    bound = 1 << (bits - 1)
    if type(value) is not int or not -bound <= value < bound:
        raise ValueError(f"{value!r} is not an int{bits}")
    return value.to_bytes(WORD_BYTES, "big", signed=True)


def encode_bool(value: bool) -> bytes:
    """A ``bool`` as the word 0 or 1."""
    if type(value) is not bool:
        raise ValueError(f"{value!r} is not a bool")
    return encode_uint(int(value))


def encode_address(address: str) -> bytes:
    """An ``address`` in canonical form, left-padded to a word; ValueError for any other text."""
    if not is_address(address):
        raise ValueError(f"{address!r} is not an address of the form 0x + 40 lowercase hex")
    return bytes(WORD_BYTES - ADDRESS_BYTES) + bytes.fromhex(address[2:])


def encode_bytes32(value: bytes) -> bytes:
    """A ``bytes32``: exactly 32 bytes, as they are."""
    if type(value) is not bytes or len(value) != WORD_BYTES:
        raise ValueError(f"{value!r} is not 32 bytes")
    return value


def encode_string(value: str) -> bytes:
    """A ``string``: the keccak-256 of its UTF-8 bytes (EIP-712 dynamic type)."""
    return keccak256(value.encode("utf-8"))


def domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    """``hashStruct(EIP712Domain)`` with the four fields the venue uses, in EIP-712's order.

    The chain id and the settlement contract's address bind a signature to one deployment, so
    a report signed for a test network cannot be replayed on the real one.
    """
    return keccak256(
        type_hash(EIP712_DOMAIN_TYPE)
        + encode_string(name)
        + encode_string(version)
        + encode_uint(chain_id)
        + encode_address(verifying_contract)
    )


def typed_data_digest(domain_separator: bytes, struct_hash: bytes) -> bytes:
    """The EIP-712 digest ``keccak256(0x19 0x01 || domainSeparator || hashStruct(message))``."""
    return keccak256(b"\x19\x01" + encode_bytes32(domain_separator) + encode_bytes32(struct_hash))


class SigningDomain(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """The EIP-712 domain of one deployment: ``name`` "strikechain", ``version`` "1", the chain
    id and the settlement contract's address.

    Chosen by the operator at genesis and passed to whatever verifies signatures (oracle state,
    later signed orders); the defaults are a local development chain and the zero address. The
    separator is computed once per domain value (``dict=True`` gives the struct the instance
    dictionary that ``cached_property`` needs; the cache is not a field, so it is neither
    encoded nor compared).
    """

    chain_id: int = DEVELOPMENT_CHAIN_ID
    verifying_contract: str = ZERO_ADDRESS

    def __post_init__(self) -> None:
        invariant(
            type(self.chain_id) is int and 0 < self.chain_id < 1 << 256,
            f"chain id {self.chain_id!r} must be a positive uint256",
        )
        invariant(
            is_address(self.verifying_contract),
            f"verifying contract {self.verifying_contract!r} must be 0x + 40 lowercase hex",
        )

    @functools.cached_property
    def separator(self) -> bytes:
        """``hashStruct(EIP712Domain)`` of this domain."""
        return domain_separator(DOMAIN_NAME, DOMAIN_VERSION, self.chain_id, self.verifying_contract)


DEFAULT_DOMAIN: Final = SigningDomain()


SignedT = TypeVar("SignedT", bound=Hashable)


class SignerMemo(Generic[SignedT]):
    """Who signed a signed value (a report, an order), remembered for the last ``capacity``.

    A signer is a pure function of the value (its fields, its signature and the domain), so
    remembering it cannot change an outcome, only move the cost: an edge verifies what arrives,
    with the memo it hands on, and the later check becomes a lookup. Bounded: the oldest entries
    leave first. Iterates over the remembered values, oldest first.
    """

    __slots__ = ("_signers", "capacity")

    def __init__(self, capacity: int) -> None:
        invariant(capacity > 0, "a verifier remembers at least one signed value")
        self.capacity = capacity
        self._signers: dict[SignedT, str | None] = {}

    def signer(self, value: SignedT, recover: Callable[[SignedT], str | None]) -> str | None:
        """The remembered signer of ``value``, or ``recover(value)``, remembered."""
        signers = self._signers
        if value in signers:
            return signers[value]
        signer = recover(value)
        if len(signers) >= self.capacity:
            del signers[next(iter(signers))]
        signers[value] = signer
        return signer

    def __len__(self) -> int:
        return len(self._signers)

    def __iter__(self) -> Iterator[SignedT]:
        return iter(self._signers)


# --- helpers ------------------------------------------------------------------------------------


def _private_key(private_key: bytes) -> PrivateKey:
    if type(private_key) is not bytes or len(private_key) != PRIVATE_KEY_BYTES:
        raise ValueError("a private key is exactly 32 bytes")
    return _loaded_key(private_key)


@functools.lru_cache(maxsize=256)
def _loaded_key(private_key: bytes) -> PrivateKey:
    """Loading a key computes its public point, about 100 us, most of a signature's cost; a
    reporter signs with the same key every second, so the last few keys stay loaded."""
    return PrivateKey(private_key)  # ValueError unless 0 < key < n (errors are not cached)


def _require_digest(digest: bytes) -> None:
    if type(digest) is not bytes or len(digest) != DIGEST_BYTES:
        raise ValueError("a digest is exactly 32 bytes")


def _require_bits(bits: int) -> None:
    if not (type(bits) is int and 8 <= bits <= 256 and bits % 8 == 0):
        raise ValueError(f"{bits!r} is not a Solidity integer width (8 to 256, multiple of 8)")


def _address_of_public(uncompressed: bytes) -> str:
    """The address of a 65-byte uncompressed public key ``0x04 || X || Y``."""
    return "0x" + keccak256(uncompressed[1:])[-ADDRESS_BYTES:].hex()
