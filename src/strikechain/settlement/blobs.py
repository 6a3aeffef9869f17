"""Bytes as EIP-4844 blobs: packing and unpacking, versioned hashes, posting them with a
contract call, and reading them back from anvil.

Packing: a blob is 4096 field elements of 32 bytes, each below the BLS12-381 scalar modulus.
Each element here is a zero byte and 31 payload bytes, so every element is valid whatever the
data. The payload stream is ``len(data)`` (4 bytes, big-endian) then ``data``, zero-padded to
fill the last blob: 126,976 usable bytes per blob, at most :data:`MAX_BLOBS_PER_TRANSACTION`
(6) blobs, so at most :data:`MAX_DATA_BYTES` per transaction; empty data takes one blob (a blob
transaction carries at least one). The encoding is canonical: :func:`unpack` refuses a nonzero
leading byte, nonzero padding, a length beyond the blobs or more blobs than the length needs,
so ``pack(unpack(blobs)) == blobs`` for every blob list it accepts.

Versioned hash: ``0x01 || sha256(kzg_commitment)[1:]``, the commitment computed by ckzg with
the trusted setup eth-account ships (``eth_account.typed_transactions.base.TRUSTED_SETUP``).
Loading that setup takes about 2.5 s, so it is loaded once per process (:func:`kzg_setup`).

Posting (:func:`send_blob_transaction`, :func:`send_blob_call` for a web3.py contract call):
the type-3 transaction is signed by eth-account without its blobs, and the sidecar is appended
here. ``Account.sign_transaction(tx, key, blobs=...)`` gives the same bytes (a test checks) but
reloads the trusted setup for every commitment and proof: about 7.5 s for one blob. The network
form is EIP-7594's (wrapper version 1, 128 cell proofs per blob, about 0.35 s per blob to
compute; osaka) by default, or EIP-4844's (one blob proof per blob, about 0.1 s; cancun,
prague) with ``cell_proofs=False``. anvil 1.7.1 accepts either on every blob-capable fork and
checks the proofs; its first cell-proof transaction takes about 3 s more (anvil's own setup).

Reading back (anvil 1.7.1, all checked): ``anvil_getBlobsByTransactionHash(tx_hash)`` and
``anvil_getBlobByHash(versioned_hash)`` return the blobs as hex (null when unknown), and anvil's
beacon API serves ``GET /eth/v1/beacon/blobs/{block_number}`` (``head`` is refused; the old
``blob_sidecars`` path answers 410). :func:`read_blobs` and :func:`read_blob` use the RPC
methods and check every blob against its versioned hash. A production chain keeps blobs only
in its consensus clients, for about 18 days: this reader is for anvil.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, cast

import ckzg  # type: ignore[import-not-found]  # a C extension without stubs
from eth_account import Account
from eth_account.typed_transactions.base import TRUSTED_SETUP
from hexbytes import HexBytes

from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.invariant import invariant

if TYPE_CHECKING:
    from web3 import Web3
    from web3.contract.contract import ContractFunction
    from web3.types import TxParams, TxReceipt

BYTES_PER_FIELD_ELEMENT: Final = 32
FIELD_ELEMENTS_PER_BLOB: Final = 4096
BYTES_PER_BLOB: Final = BYTES_PER_FIELD_ELEMENT * FIELD_ELEMENTS_PER_BLOB
USABLE_BYTES_PER_ELEMENT: Final = BYTES_PER_FIELD_ELEMENT - 1
USABLE_BYTES_PER_BLOB: Final = USABLE_BYTES_PER_ELEMENT * FIELD_ELEMENTS_PER_BLOB
LENGTH_PREFIX_BYTES: Final = 4
MAX_BLOBS_PER_TRANSACTION: Final = 6
"""EIP-7594's per-transaction cap (osaka); also cancun's per-block maximum."""
MAX_DATA_BYTES: Final = MAX_BLOBS_PER_TRANSACTION * USABLE_BYTES_PER_BLOB - LENGTH_PREFIX_BYTES
GAS_PER_BLOB: Final = 1 << 17
VERSIONED_HASH_VERSION_KZG: Final = b"\x01"
CELLS_PER_EXT_BLOB: Final = 128
BLOB_TRANSACTION_TYPE: Final = 3
GAS_MARGIN_DIVISOR: Final = 5
"""Estimated gas plus a fifth: the estimate and the mined block can differ (timestamps)."""
RECEIPT_TIMEOUT_S: Final = 30.0

invariant(MAX_DATA_BYTES < 1 << (8 * LENGTH_PREFIX_BYTES), "the length prefix holds any size")


class BlobDecodeError(Rejection):
    """Blobs that are not a canonical :func:`pack` encoding (``MALFORMED_BATCH_DATA``)."""

    def __init__(self, message: str) -> None:
        super().__init__(RejectCode.MALFORMED_BATCH_DATA, message)


class BlobNotFound(LookupError):
    """The node holds no blob with that versioned hash."""


class BlobMismatch(RuntimeError):
    """The node returned blobs whose versioned hashes are not the ones asked for."""


# -- packing ---------------------------------------------------------------------------------


def blob_count(size_bytes: int) -> int:
    """How many blobs :func:`pack` makes of ``size_bytes`` bytes (at least one)."""
    if not 0 <= size_bytes <= MAX_DATA_BYTES:
        raise ValueError(f"{size_bytes} bytes do not fit in {MAX_BLOBS_PER_TRANSACTION} blobs")
    return -(-(size_bytes + LENGTH_PREFIX_BYTES) // USABLE_BYTES_PER_BLOB)


def pack(data: bytes) -> list[bytes]:
    """``data`` as blobs (see the module docstring); ValueError beyond :data:`MAX_DATA_BYTES`:
    the caller splits its data across transactions."""
    count = blob_count(len(data))
    stream = len(data).to_bytes(LENGTH_PREFIX_BYTES, "big") + data
    stream += bytes(count * USABLE_BYTES_PER_BLOB - len(stream))
    step = USABLE_BYTES_PER_ELEMENT
    elements = b"".join(b"\x00" + stream[i : i + step] for i in range(0, len(stream), step))
    return [elements[i : i + BYTES_PER_BLOB] for i in range(0, len(elements), BYTES_PER_BLOB)]


def unpack(blobs: Sequence[bytes]) -> bytes:
    """The data :func:`pack` put in ``blobs``; :class:`BlobDecodeError` if they are not a
    canonical encoding."""
    if not 1 <= len(blobs) <= MAX_BLOBS_PER_TRANSACTION:
        raise BlobDecodeError(f"{len(blobs)} blobs, expected 1 to {MAX_BLOBS_PER_TRANSACTION}")
    for index, blob in enumerate(blobs):
        if len(blob) != BYTES_PER_BLOB:
            raise BlobDecodeError(f"blob {index} has {len(blob)} bytes, not {BYTES_PER_BLOB}")
        if any(blob[::BYTES_PER_FIELD_ELEMENT]):
            raise BlobDecodeError(f"blob {index} has a field element with a nonzero first byte")
    stream = b"".join(
        blob[i + 1 : i + BYTES_PER_FIELD_ELEMENT]
        for blob in blobs
        for i in range(0, BYTES_PER_BLOB, BYTES_PER_FIELD_ELEMENT)
    )
    size = int.from_bytes(stream[:LENGTH_PREFIX_BYTES], "big")
    if size > MAX_DATA_BYTES or blob_count(size) != len(blobs):
        raise BlobDecodeError(f"length prefix {size} does not match {len(blobs)} blobs")
    end = LENGTH_PREFIX_BYTES + size
    if any(stream[end:]):
        raise BlobDecodeError("nonzero bytes after the data")
    return stream[LENGTH_PREFIX_BYTES:end]


# -- commitments -----------------------------------------------------------------------------


@functools.cache
def kzg_setup() -> object:
    """The KZG trusted setup (ckzg's settings object), loaded on first use: about 2.5 s."""
    return ckzg.load_trusted_setup(TRUSTED_SETUP, 0)


def kzg_commitment(blob: bytes) -> bytes:
    """The 48-byte KZG commitment to ``blob``."""
    return bytes(ckzg.blob_to_kzg_commitment(blob, kzg_setup()))


def versioned_hash(commitment: bytes) -> bytes:
    """``0x01 || sha256(commitment)[1:]``: what ``BLOBHASH`` returns for the blob."""
    return VERSIONED_HASH_VERSION_KZG + hashlib.sha256(commitment).digest()[1:]


def versioned_hashes(blobs: Sequence[bytes]) -> list[bytes]:
    return [versioned_hash(kzg_commitment(blob)) for blob in blobs]


def network_transaction(signed: bytes, blobs: Sequence[bytes], *, cell_proofs: bool) -> bytes:
    """The pooled (network) form of a signed type-3 transaction: ``0x03 || rlp([body,
    (wrapper_version 1,) blobs, commitments, proofs])``, the proofs per EIP-7594 (cell
    proofs) or EIP-4844 (one blob proof each)."""
    if signed[:1] != bytes((BLOB_TRANSACTION_TYPE,)):
        raise ValueError("not a signed type-3 transaction")
    setup = kzg_setup()
    commitments = [kzg_commitment(blob) for blob in blobs]
    if cell_proofs:
        proofs = [
            bytes(proof)
            for blob in blobs
            for proof in ckzg.compute_cells_and_kzg_proofs(blob, setup)[1]
        ]
        version = [_rlp_bytes(b"\x01")]
    else:
        proofs = [
            bytes(ckzg.compute_blob_kzg_proof(blob, commitment, setup))
            for blob, commitment in zip(blobs, commitments, strict=True)
        ]
        version = []
    fields = [
        signed[1:],  # the signed body is already an RLP list
        *version,
        _rlp_list([_rlp_bytes(blob) for blob in blobs]),
        _rlp_list([_rlp_bytes(commitment) for commitment in commitments]),
        _rlp_list([_rlp_bytes(proof) for proof in proofs]),
    ]
    return signed[:1] + _rlp_list(fields)


def _rlp_length(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(encoded),)) + encoded


def _rlp_bytes(value: bytes) -> bytes:
    if len(value) == 1 and value[0] < 0x80:
        return value
    return _rlp_length(len(value), 0x80) + value


def _rlp_list(encoded_items: Sequence[bytes]) -> bytes:
    payload = b"".join(encoded_items)
    return _rlp_length(len(payload), 0xC0) + payload


# -- posting and reading back ----------------------------------------------------------------


def send_blob_transaction(
    w3: Web3,
    private_key: str,
    to: str,
    blobs: Sequence[bytes],
    data: bytes = b"",
    *,
    value_wei: int = 0,
    gas: int | None = None,
    max_fee_per_blob_gas_wei: int | None = None,
    cell_proofs: bool = True,
    timeout_s: float = RECEIPT_TIMEOUT_S,
) -> TxReceipt:
    """Send ``blobs`` with a call of ``to`` (calldata ``data``) and return the receipt once
    mined, whatever its status.

    Fees: twice the current base fee (and blob base fee) plus the node's priority fee; gas is
    estimated with the blob hashes in place (a contract may read ``BLOBHASH``) plus a margin.
    """
    if not 1 <= len(blobs) <= MAX_BLOBS_PER_TRANSACTION:
        raise ValueError(f"{len(blobs)} blobs, expected 1 to {MAX_BLOBS_PER_TRANSACTION}")
    sender = Account.from_key(private_key).address
    hashes = versioned_hashes(blobs)
    priority_fee = int(w3.eth.max_priority_fee)
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    blob_fee = max_fee_per_blob_gas_wei or 2 * int(w3.eth.blob_base_fee)
    tx: dict[str, Any] = {
        "type": BLOB_TRANSACTION_TYPE,
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(sender, "pending"),
        "from": sender,
        "to": to,
        "value": value_wei,
        "data": HexBytes(data),
        "maxFeePerGas": 2 * base_fee + priority_fee,
        "maxPriorityFeePerGas": priority_fee,
        "maxFeePerBlobGas": blob_fee,
        "blobVersionedHashes": [HexBytes(h) for h in hashes],
    }
    if gas is None:
        estimate = w3.eth.estimate_gas(cast("TxParams", tx))
        gas = estimate + estimate // GAS_MARGIN_DIVISOR
    tx["gas"] = gas
    del tx["from"]
    signed = Account.sign_transaction(tx, private_key)
    raw = network_transaction(bytes(signed.raw_transaction), blobs, cell_proofs=cell_proofs)
    tx_hash = w3.eth.send_raw_transaction(raw)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s, poll_latency=0.02)


def send_blob_call(
    w3: Web3, call: ContractFunction, private_key: str, blobs: Sequence[bytes]
) -> TxReceipt:
    """:func:`send_blob_transaction` for a web3.py contract call
    (``contract.functions.name(*args)``); a revert in the estimate raises web3's
    ``ContractLogicError``."""
    # Every field web3 would ask the node for is set, so this only encodes the call.
    placeholders = {
        "chainId": 1, "nonce": 0, "gas": 1, "value": 0, "maxFeePerGas": 1,
        "maxPriorityFeePerGas": 1,
    }  # fmt: skip
    built = call.build_transaction(cast("TxParams", placeholders))
    return send_blob_transaction(
        w3, private_key, str(built["to"]), blobs, bytes(HexBytes(built["data"]))
    )


def read_blobs(w3: Web3, tx_hash: bytes | str) -> list[bytes]:
    """The blobs a mined transaction carried, each checked against the transaction's
    versioned hashes (:class:`BlobMismatch`); empty if it carried none or the node keeps none
    (anvil 1.7.1's ``anvil_getBlobsByTransactionHash``)."""
    tx_hash_hex = HexBytes(tx_hash).to_0x_hex()
    result = _rpc(w3, "anvil_getBlobsByTransactionHash", tx_hash_hex)
    if not result:
        return []
    blobs = [bytes(HexBytes(blob)) for blob in result]
    tx = w3.eth.get_transaction(HexBytes(tx_hash))
    if versioned_hashes(blobs) != [bytes(h) for h in tx.get("blobVersionedHashes", [])]:
        raise BlobMismatch(f"the node's blobs for {tx_hash_hex} do not match their hashes")
    return blobs


def read_blob(w3: Web3, blob_versioned_hash: bytes) -> bytes:
    """The blob with this versioned hash (checked); :class:`BlobNotFound` if the node has none
    (anvil 1.7.1's ``anvil_getBlobByHash``)."""
    hash_hex = HexBytes(blob_versioned_hash).to_0x_hex()
    result = _rpc(w3, "anvil_getBlobByHash", hash_hex)
    if not result:
        raise BlobNotFound(f"no blob with versioned hash {hash_hex}")
    blob = bytes(HexBytes(result))
    if versioned_hash(kzg_commitment(blob)) != bytes(blob_versioned_hash):
        raise BlobMismatch(f"the node's blob for {hash_hex} does not match that hash")
    return blob


def _rpc(w3: Web3, method: str, *params: Any) -> Any:
    from web3.types import RPCEndpoint

    response = w3.provider.make_request(RPCEndpoint(method), list(params))
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response.get("result")
