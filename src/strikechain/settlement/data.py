"""A batch's data, as posted for availability: everything needed to rebuild the state.

Anyone holding only the chain must be able to replay the venue: so each batch posts every
block it covers (height, timestamp, every transaction, in the engine's canonical codec), and
the first batch also posts the genesis record the engine starts from. The contract never reads
this data; it only binds the batch to it through ``data_hash``, and verifiers read it back from
the chain (transaction inputs, or blobs).

Encoding: ``b"SCDA" || version || zlib(msgpack(BatchData))``. zlib (level 6) because the
canonical codec repeats field names and small integers: the ``bench engine`` stream compresses
from about 180 to about 10 bytes per transaction. The compressed bytes are cut into chunks of at
most :data:`MAX_CHUNK_BYTES` (one calldata transaction each), and

    data_hash = h_n,  h_0 = 0^32,  h_i = keccak(h_{i-1} || keccak(chunk_i))

which the contract accumulates chunk by chunk as they are posted (``post_data``). Posted as
blobs instead, the data hash is ``keccak`` of the blobs' versioned hashes.

Limits: a decoded batch is at most :data:`MAX_DECODED_BYTES` (a decompression bomb is refused
before it is expanded); anything malformed is a :class:`DataError` with a stable code.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from typing import Final

import msgspec

from strikechain.engine import codec
from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.signing import keccak256
from strikechain.engine.txs import Block

MAGIC: Final = b"SCDA"
VERSION: Final = 1
MAX_CHUNK_BYTES: Final = 120_000
"""Calldata per posting transaction: the issue's bound, well inside a block's gas limit."""
MAX_DECODED_BYTES: Final = 256 << 20
COMPRESSION_LEVEL: Final = 6
"""zlib's default: on the ``bench engine`` stream about 10 bytes a transaction for 1.6 ms of a
core per 1,000-transaction block; level 9 saves 14% of the bytes for three times the CPU, on
the node's block path."""
ZERO_HASH: Final = bytes(32)


class DataError(Rejection):
    """Posted data that does not decode (``MALFORMED_BATCH_DATA``)."""

    def __init__(self, message: str) -> None:
        super().__init__(RejectCode.MALFORMED_BATCH_DATA, message)


class BatchData(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """What one batch posts: its blocks (canonical codec frames), and for batch 1 the genesis
    record (a codec ``GENESIS`` frame; empty for every later batch)."""

    number: int
    genesis: bytes
    blocks: list[bytes]

    def decoded_blocks(self) -> list[Block]:
        return [codec.decode_block(raw) for raw in self.blocks]


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(BatchData)


def encode(data: BatchData) -> bytes:
    """The compressed, framed bytes of a batch's data.

    Streamed: the msgpack body is made and compressed a block at a time (:func:`body_parts`),
    never whole. One ``msgpack.encode`` of a minute of blocks (~90 MB at 14k orders a second)
    held the interpreter lock for ~130 ms on the node's chain thread, the node's event loop
    stopped meanwhile (a block cut 130 ms late); zlib compresses without the lock, so only
    the small encodings of each part hold it."""
    compressor = zlib.compressobj(COMPRESSION_LEVEL)
    out = [MAGIC, bytes((VERSION,))]
    out.extend(compressor.compress(part) for part in body_parts(data))
    out.append(compressor.flush())
    return b"".join(out)


def body_parts(data: BatchData) -> Iterator[bytes]:
    """``msgpack(data)`` in parts, a block each (their concatenation is the canonical body
    :func:`decode` checks): the struct's array with an empty ``blocks``, its empty array's
    header replaced by the real one, then each block as msgpack ``bin``."""
    head = _ENCODER.encode(BatchData(number=data.number, genesis=data.genesis, blocks=[]))
    yield head[:-1] + _array_header(len(data.blocks))  # (head ends with fixarray 0: 0x90)
    for block in data.blocks:
        yield _ENCODER.encode(block)


def _array_header(length: int) -> bytes:
    if length < 16:
        return bytes((0x90 | length,))
    if length < 1 << 16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


def decode(posted: bytes) -> BatchData:
    """The batch data in ``posted`` (every chunk joined); :class:`DataError` if malformed."""
    if posted[:4] != MAGIC:
        raise DataError("posted data does not open with b'SCDA'")
    if posted[4:5] != bytes((VERSION,)):
        raise DataError(f"unsupported batch data version {posted[4:5].hex() or 'none'}")
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(posted[5:], MAX_DECODED_BYTES)
    except zlib.error as error:
        raise DataError(f"posted data does not inflate: {error}") from None
    if inflater.unconsumed_tail:
        raise DataError(f"posted data inflates beyond {MAX_DECODED_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise DataError("posted data is truncated or has bytes after its end")
    try:
        data = _DECODER.decode(body)
    except msgspec.DecodeError as error:
        raise DataError(f"posted data is not a batch: {error}") from None
    if _ENCODER.encode(data) != body:
        raise DataError("posted data is not canonically encoded")
    return data


def chunks(posted: bytes, size: int = MAX_CHUNK_BYTES) -> list[bytes]:
    """``posted`` cut into calldata chunks of at most ``size`` bytes (at least one chunk)."""
    if not 0 < size <= MAX_CHUNK_BYTES:
        raise ValueError(f"chunk size {size} is outside 1 .. {MAX_CHUNK_BYTES}")
    return [posted[start : start + size] for start in range(0, max(len(posted), 1), size)]


def accumulate(previous: bytes, chunk: bytes) -> bytes:
    """The contract's accumulator after ``chunk``: ``keccak(previous || keccak(chunk))``."""
    return keccak256(previous + keccak256(chunk))


def calldata_hash(parts: Sequence[bytes]) -> bytes:
    """The data hash of data posted as these calldata chunks, in order."""
    value = ZERO_HASH
    for chunk in parts:
        value = accumulate(value, chunk)
    return value


def blob_hash(versioned_hashes: Sequence[bytes]) -> bytes:
    """The data hash of data posted as blobs with these versioned hashes, in order."""
    return keccak256(b"".join(versioned_hashes))
