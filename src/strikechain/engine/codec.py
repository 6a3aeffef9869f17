"""The canonical binary encoding of transactions, blocks, events, block results and state.

One encoding serves the block log, the block digest, snapshots, the settlement layer's posted
data and the verifier, so what one of them writes the others read byte for byte.

Frame, for every encoded value::

    offset  size  field
    0       2     magic b"SC"
    2       1     protocol version (1 today)
    3       1     kind (see :class:`Kind`)
    4       ...   body: MessagePack of the value

Body, protocol version 1: the value's msgspec Struct encoded as a MessagePack map whose keys
are the field names in declaration order (tagged unions, such as a transaction, lead with
``"type"``: the tag), every field present (defaults included), integers in their shortest form,
text as UTF-8 ``str``, signatures as ``bin``, decimals (an instrument's tick and lot sizes) as
their text; except events, which are arrays ``[tag, fields...]`` in declaration order (see
:mod:`strikechain.engine.events`: the high-volume part the digest hashes). Maps make the log
self-describing: a reader needs no schema table to see what a transaction says.

**Canonical**: every value has exactly one encoding. Decoding re-encodes what it decoded and
refuses bytes that differ (keys out of order, a missing default, an unknown field, an integer
in a longer form than needed, trailing bytes) with ``NON_CANONICAL_ENCODING``, so a digest
or a root computed over decoded data equals one computed over the bytes, and two parties can
never disagree about what a record says. Anything else wrong (not a frame, not MessagePack,
a field of the wrong type, a transaction that its own validation refuses) is
``MALFORMED_ENCODING``; an unknown version is ``UNSUPPORTED_VERSION``. All three raise
:class:`CodecError` and change nothing.

**Versions.** A block carries the protocol version it was produced under, in its frame and
in its ``version`` field (the two must agree), and the engine applies the rules of that
version (:data:`SUPPORTED_VERSIONS`). An upgrade that changes an encoded type or a rule adds
version 2: the version-1 decoders keep the old definitions, blocks from the activation height
on are produced as version 2, and replay of an old log still reads and applies version-1
blocks as they were. Adding a field with a default at the end of a type is also a new version,
because the canonical bytes of every value of that type change.
"""

from __future__ import annotations

import enum
from typing import Any, Final, TypeVar

import msgspec

from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.events import BlockResult, Event
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.oracle import OracleRejection
from strikechain.engine.signing import keccak256
from strikechain.engine.txs import PROTOCOL_VERSION, Block, Transaction

MAGIC: Final = b"SC"
HEADER_BYTES: Final = 4
SUPPORTED_VERSIONS: Final = frozenset({PROTOCOL_VERSION})
"""The protocol versions this engine can decode and apply."""


class Kind(enum.IntEnum):
    """What a frame holds."""

    TRANSACTION = 1
    BLOCK = 2
    EVENTS = 3
    """A block's events, in order."""
    RESULT = 4
    """A :class:`~strikechain.engine.events.BlockResult`."""
    SNAPSHOT = 5
    """The engine's whole state (:mod:`strikechain.engine.snapshot`)."""
    GENESIS = 6
    """The configuration a block log starts from (:mod:`strikechain.runtime.genesis`)."""


class CodecError(Rejection):
    """Bytes that are not the canonical encoding of a value of the expected kind."""


T = TypeVar("T")

_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODERS: Final[dict[tuple[int, Kind], msgspec.msgpack.Decoder[Any]]] = {
    (PROTOCOL_VERSION, Kind.TRANSACTION): msgspec.msgpack.Decoder(Transaction),
    (PROTOCOL_VERSION, Kind.BLOCK): msgspec.msgpack.Decoder(Block),
    (PROTOCOL_VERSION, Kind.EVENTS): msgspec.msgpack.Decoder(list[Event]),
    (PROTOCOL_VERSION, Kind.RESULT): msgspec.msgpack.Decoder(BlockResult),
}


def _header(kind: Kind, version: int = PROTOCOL_VERSION) -> bytes:
    return MAGIC + bytes((version, kind))


def encode_body(value: object) -> bytes:
    """The body alone (no frame): what digests hash when the kind is implied."""
    return _ENCODER.encode(value)


def frame(kind: Kind, body: bytes, version: int = PROTOCOL_VERSION) -> bytes:
    """Put a body encoded elsewhere (a snapshot's) in a frame of ``kind``."""
    return _header(kind, version) + body


def unframe(data: bytes, kind: Kind) -> tuple[int, memoryview]:
    """Check a frame's header and return its version and body (not yet decoded)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(
            RejectCode.MALFORMED_ENCODING, f"expected bytes, not {type(data).__name__}"
        )
    view = memoryview(data)
    if len(view) < HEADER_BYTES or bytes(view[:2]) != MAGIC:
        raise CodecError(RejectCode.MALFORMED_ENCODING, "not a strikechain frame (no SC magic)")
    version, found = view[2], view[3]
    if version not in SUPPORTED_VERSIONS:
        raise CodecError(
            RejectCode.UNSUPPORTED_VERSION,
            f"protocol version {version}; this engine reads {sorted(SUPPORTED_VERSIONS)}",
        )
    if found != kind:
        name = Kind(found).name if found in Kind._value2member_map_ else str(found)
        raise CodecError(
            RejectCode.MALFORMED_ENCODING, f"a {name} frame where a {kind.name} was expected"
        )
    return version, view[HEADER_BYTES:]


def decode_body(body: bytes | memoryview, decoder: msgspec.msgpack.Decoder[T], what: str) -> T:
    """Decode a body with ``decoder`` and insist it was canonical."""
    try:
        value = decoder.decode(body)
    except (
        msgspec.DecodeError,
        Rejection,
        OracleRejection,
        InvariantViolation,
        ValueError,
        ArithmeticError,
        TypeError,
    ) as error:
        # A type's own validation refuses (Rejection, OracleRejection, or InvariantViolation
        # for configuration values); ValueError: invalid UTF-8 in a key msgspec reads before
        # validation; ArithmeticError, TypeError: a value those checks could not even parse.
        raise CodecError(RejectCode.MALFORMED_ENCODING, f"{what}: {error}") from error
    if _ENCODER.encode(value) != body:
        raise CodecError(
            RejectCode.NON_CANONICAL_ENCODING,
            f"{what}: the bytes are not the canonical encoding of the value they hold",
        )
    return value


def _decode(data: bytes, kind: Kind) -> Any:
    version, body = unframe(data, kind)
    return decode_body(body, _DECODERS[version, kind], kind.name.lower())


GENESIS_DIGEST: Final = bytes(32)
"""The digest "before" block 1."""


def chain_digest(previous: bytes, height: int, timestamp_ns: int, events: list[Event]) -> bytes:
    """A block's digest: ``keccak256(previous || height || timestamp || events)`` with height
    and timestamp as 8-byte big-endian unsigned integers and the events as the version-1 body
    (:func:`encode_body`). Chained, so one digest commits to everything every block did before
    it: two replicas that agree on the latest digest agree on the whole history of events."""
    return keccak256(
        previous
        + height.to_bytes(8, "big")
        + timestamp_ns.to_bytes(8, "big")
        + _ENCODER.encode(events)
    )


def encode_transaction(tx: Transaction) -> bytes:
    return _header(Kind.TRANSACTION) + _ENCODER.encode(tx)


def decode_transaction(data: bytes) -> Transaction:
    tx: Transaction = _decode(data, Kind.TRANSACTION)
    return tx


def encode_block(block: Block) -> bytes:
    """A block in the frame of its own protocol version."""
    return _header(Kind.BLOCK, block.version) + _ENCODER.encode(block)


def decode_block(data: bytes) -> Block:
    version, body = unframe(data, Kind.BLOCK)
    block: Block = decode_body(body, _DECODERS[version, Kind.BLOCK], "block")
    if block.version != version:
        raise CodecError(
            RejectCode.MALFORMED_ENCODING,
            f"block says protocol version {block.version} in a version {version} frame",
        )
    return block


def encode_events(events: list[Event]) -> bytes:
    return _header(Kind.EVENTS) + _ENCODER.encode(events)


def decode_events(data: bytes) -> list[Event]:
    events: list[Event] = _decode(data, Kind.EVENTS)
    return events


def encode_result(result: BlockResult) -> bytes:
    return _header(Kind.RESULT) + _ENCODER.encode(result)


def decode_result(data: bytes) -> BlockResult:
    result: BlockResult = _decode(data, Kind.RESULT)
    return result
