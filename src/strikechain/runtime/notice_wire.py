"""Notices on the wire: one block's :class:`~strikechain.runtime.messages.Notice` values for one
subscription as JSON-ready data (:func:`events_data`, :func:`ticker_data`), and back
(:func:`decode_notices`).

The node's engine channels send this (:mod:`strikechain.node.api.events`) and the client's
remote gateway reads it, so a notice received over a socket equals the one the in-process
gateway delivers, field for field:

- events: ``{"height", "timestamp_ns", "sequences", "events"}``; ``events`` is ``0x`` + the hex
  of the engine codec's canonical frame of the events (:func:`strikechain.engine.codec.
  encode_events`, the bytes the block digest hashes), ``sequences[i]`` the inbox sequence number
  of the transaction that caused event ``i`` (0 for what the engine did on its own);
- a ticker: ``{"height", "timestamp_ns", "ticker": {...}}``, the
  :class:`~strikechain.runtime.messages.Ticker`'s fields by name (integers: ticks, lots, USDC
  minor units).

Decoding checks the shape (no unknown or missing field, integers where integers belong, one
sequence per event) and the events' canonical encoding; anything else is a
:class:`NoticeWireError` (``MALFORMED_NOTICE``), and the decoder returns nothing of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from strikechain.engine import codec
from strikechain.engine.events import Event
from strikechain.runtime.messages import Notice, Ticker

MALFORMED_NOTICE: Final = "MALFORMED_NOTICE"


class NoticeWireError(ValueError):
    """Data that is not a block's notices in the wire form; ``code`` is stable."""

    code: Final = MALFORMED_NOTICE

    def __init__(self, reason: str) -> None:
        super().__init__(f"{MALFORMED_NOTICE}: {reason}")
        self.reason = reason


class _Events(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    height: int
    timestamp_ns: int
    sequences: list[int]
    events: str


class _Ticker(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    height: int
    timestamp_ns: int
    ticker: Ticker


def events_data(height: int, timestamp_ns: int, notices: Sequence[Notice]) -> dict[str, Any]:
    """The wire form of ``notices`` (events of the block at ``height``, in block order)."""
    events: list[Event] = []
    sequences: list[int] = []
    for notice in notices:
        event = notice.event
        if isinstance(event, Ticker):
            raise TypeError("a ticker travels alone (ticker_data)")
        events.append(event)
        sequences.append(notice.sequence)
    return {
        "height": height,
        "timestamp_ns": timestamp_ns,
        "sequences": sequences,
        "events": "0x" + codec.encode_events(events).hex(),
    }


def ticker_data(notice: Notice) -> dict[str, Any]:
    """The wire form of a ticker notice."""
    ticker = notice.event
    if not isinstance(ticker, Ticker):
        raise TypeError("ticker_data takes a ticker notice")
    return {
        "height": notice.height,
        "timestamp_ns": notice.timestamp_ns,
        "ticker": msgspec.structs.asdict(ticker),
    }


def decode_notices(data: Any) -> list[Notice]:
    """The notices ``data`` (either wire form) carries; :class:`NoticeWireError` if malformed."""
    if not isinstance(data, dict):
        raise NoticeWireError(f"a notice message is an object, not {type(data).__name__}")
    if "ticker" in data:
        try:
            message = msgspec.convert(data, _Ticker)
        except msgspec.ValidationError as error:
            raise NoticeWireError(str(error)) from None
        return [Notice(message.height, message.timestamp_ns, 0, message.ticker)]
    try:
        events_message = msgspec.convert(data, _Events)
    except msgspec.ValidationError as error:
        raise NoticeWireError(str(error)) from None
    text = events_message.events
    try:
        raw = bytes.fromhex(text[2:]) if text[:2] == "0x" else None
    except ValueError:
        raw = None
    if raw is None:
        raise NoticeWireError("events is 0x followed by the hex of the events' frame")
    try:
        events = codec.decode_events(raw)
    except codec.CodecError as error:
        raise NoticeWireError(str(error)) from None
    sequences = events_message.sequences
    if len(sequences) != len(events):
        raise NoticeWireError(f"{len(sequences)} sequences for {len(events)} events")
    height, timestamp_ns = events_message.height, events_message.timestamp_ns
    return [
        Notice(height, timestamp_ns, sequence, event)
        for sequence, event in zip(sequences, events, strict=True)
    ]
