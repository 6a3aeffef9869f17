"""The canonical codec: every type round-trips, malformed or non-canonical bytes are refused
with a typed error, versions are checked, and the engine chains block digests over it."""

from __future__ import annotations

import typing

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strikechain.engine import codec
from strikechain.engine import events as ev
from strikechain.engine import txs as tx
from strikechain.engine.codec import CodecError, Kind
from strikechain.engine.codes import RejectCode
from strikechain.engine.engine import Engine
from strikechain.engine.events import BlockResult, Event
from strikechain.engine.instruments import make_perpetual
from strikechain.engine.oracle import OracleParams
from strikechain.engine.params import FeeParams, UnderlyingParams
from strikechain.engine.signing import keccak256
from strikechain.engine.txs import Block, PlaceOrder, Transaction
from strikechain.sim.scripted import ScriptedSession, SessionParams

PERP = make_perpetual("BTC", "0.5", "0.001")
NEW_PARAMS = UnderlyingParams(
    oracle=OracleParams(reporters=("0x" + "11" * 20, "0x" + "22" * 20), quorum=2),
    fees=FeeParams(perp_maker_ppm=0, perp_taker_ppm=700),
)


def _extra_transactions() -> list[Transaction]:
    """Kinds a scripted session does not send."""
    return [
        tx.Amend(account="mm-0", order_id=7, price_ticks=1_000, size_lots=3, priority_fee=2),
        tx.DelistInstrument(account="operator", instrument=PERP.name),
        PlaceOrder(
            account="0x" + "ab" * 20,
            instrument=PERP.name,
            side=tx.Side.SELL,
            size_lots=5,
            price_ticks=200_001,
            client_order_id="signed-1",
            nonce=9,
            expiry_ns=2**62,
            signature=bytes(range(65)),
        ),
        tx.SetMarginMode(account="mm-1", underlying="BTC", mode=tx.MarginMode.PORTFOLIO),
        tx.LiquidationBid(account="keeper-1", auction_id=3, price_ticks=190_000, priority_fee=9),
        tx.ForcedWithdrawal(
            account="operator", request_id=2, owner="0x" + "cd" * 20, underlying="BTC", amount=5
        ),
        tx.SetMarketStatus(
            account="operator", instrument=PERP.name, halted=True, reason="index feed incident"
        ),
        tx.ScheduleParameterChange(
            account="operator", underlying="BTC", params=NEW_PARAMS, effective_at_ns=2**62
        ),
        tx.CancelParameterChange(account="operator", change_id=4, priority_fee=1),
    ]


def _extra_events() -> list[Event]:
    return [
        ev.AuctionCleared(3, PERP.name, 200_000, 17),
        ev.ForcedWithdrawalServed(4, 2, "0x" + "cd" * 20, "BTC", 5, 5, 3),
        ev.InstrumentDelisted(0, PERP.name),
        ev.OrderAmended(1, 12, 199_999, 4, False),
        ev.MarginModeSet(4, "mm-1", "BTC", 2, 1_300, 1_000),
        ev.MarginCall(-1, "lev-01", "BTC", 1_050, 1_000, True),
        ev.LiquidationOrder(-1, 90, "lev-01", PERP.name, -1, 10, 199_000, 7, 1_393_000_000),
        ev.LiquidationFee(-1, "lev-01", "BTC", 13_930_000),
        ev.InsurancePaid(-1, "lev-02", "BTC", 5_000_000, 0),
        ev.MarginMultiplier(-1, "BTC", 1_100_000, 1_500_000, 2_000_000_000, 800_000),
        ev.BackstopTaken(-1, "lev-03", PERP.name, -1, 4, 98_000_000, "backstop"),
        ev.Deleveraged(-1, "lev-04", "mm-2", PERP.name, -1, 3, 100_500_000, 1_500_000),
        ev.StressMode(-1, "BTC", True, 3, False, 250_000),
        ev.MarketAuction(
            -1, PERP.name, "AUCTION_STARTED", "LONG_BLOCK", 10**18, False, 12 * 10**9, 0, 0, 0, 0
        ),
        ev.LiquidationAuctionStarted(-1, 3, "lev-05", PERP.name, -1, 40, 10**18),
        ev.LiquidationBidPlaced(7, 3, "keeper-1", 190_000),
        ev.LiquidationAuctionEnded(-1, 3, "lev-05", PERP.name, "keeper-1", 40, 190_000),
        ev.MarketStatusChanged(0, PERP.name, True, "index feed incident"),
        ev.ParameterChangeScheduled(1, 4, "BTC", 2**62, NEW_PARAMS),
        ev.ParameterChangeApplied(-1, 4, "BTC"),
        ev.ParameterChangeCancelled(2, 5, "BTC"),
    ]


class Corpus(typing.NamedTuple):
    blocks: list[Block]
    results: list[BlockResult]
    transactions: list[Transaction]
    events: list[Event]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    """Real values: a seeded session's blocks and what the engine made of them."""
    session = ScriptedSession(SessionParams(seed=11, blocks=200, transactions_per_block=40))
    engine = Engine(venue=session.venue)
    blocks, results = [], []
    for block in session.blocks():
        blocks.append(block)
        results.append(engine.apply(block))
    transactions = [t for b in blocks for t in b.transactions] + _extra_transactions()
    events = [e for r in results for e in r.events] + _extra_events()
    return Corpus(blocks, results, transactions, events)


def _kinds(union: object) -> set[str]:
    return {member.__name__ for member in typing.get_args(union)}


def test_the_corpus_has_every_transaction_and_event_type(corpus: Corpus) -> None:
    assert {type(t).__name__ for t in corpus.transactions} == _kinds(Transaction)
    assert {type(e).__name__ for e in corpus.events} == _kinds(Event)


def test_every_transaction_round_trips(corpus: Corpus) -> None:
    for value in corpus.transactions:
        data = codec.encode_transaction(value)
        assert data[:4] == b"SC\x01\x01"
        assert codec.decode_transaction(data) == value


def test_blocks_events_and_results_round_trip(corpus: Corpus) -> None:
    for block, result in zip(corpus.blocks, corpus.results, strict=True):
        assert codec.decode_block(codec.encode_block(block)) == block
        assert codec.decode_result(codec.encode_result(result)) == result
        assert codec.decode_events(codec.encode_events(result.events)) == result.events
    assert codec.decode_events(codec.encode_events(corpus.events)) == corpus.events


def test_the_encoding_of_a_block_is_pinned() -> None:
    """Any change to the version-1 bytes of a block is a protocol change (a new version)."""
    block = Block(
        height=7, timestamp_ns=1_764_028_800_000_000_000, transactions=_extra_transactions()[:3]
    )
    assert keccak256(codec.encode_block(block)).hex() == GOLDEN_BLOCK_HASH


GOLDEN_BLOCK_HASH = "5cedac6bc29a7c96a2cc880c3b064ffce2a24f0dbe81ce66530676c58909712f"


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_damaged_bytes_are_refused_or_read_back_exactly(data: st.DataObject) -> None:
    """Whatever happens to the bytes, decoding raises CodecError and nothing else, and any
    bytes it accepts are exactly the encoding of what it returns (so they cannot be read two
    ways)."""
    block = Block(height=3, timestamp_ns=10, transactions=_extra_transactions())
    good = bytearray(codec.encode_block(block))
    action = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
    position = data.draw(st.integers(0, len(good) - 1))
    if action == "flip":
        good[position] ^= data.draw(st.integers(1, 255))
    elif action == "truncate":
        del good[position:]
    elif action == "insert":
        good[position:position] = data.draw(st.binary(min_size=1, max_size=4))
    else:
        del good[position]
    damaged = bytes(good)
    codes: set[str] = set()
    try:
        decoded = codec.decode_block(damaged)
    except CodecError as error:
        codes.add(error.code)
    else:
        assert codec.encode_block(decoded) == damaged
    assert codes <= {
        RejectCode.MALFORMED_ENCODING,
        RejectCode.NON_CANONICAL_ENCODING,
        RejectCode.UNSUPPORTED_VERSION,
    }


def _body(value: object) -> dict[str, object]:
    body = msgspec.msgpack.decode(codec.encode_body(value))
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize(
    "change",
    [
        "reordered keys",
        "missing default",
        "unknown field",
        "long integer",
        "trailing bytes",
    ],
)
def test_non_canonical_encodings_are_refused(change: str) -> None:
    order = _extra_transactions()[2]
    header = codec.encode_transaction(order)[:4]
    body = _body(order)
    if change == "reordered keys":
        raw = msgspec.msgpack.encode(dict(reversed(list(body.items()))))
    elif change == "missing default":
        del body["priority_fee"]
        raw = msgspec.msgpack.encode(body)
    elif change == "unknown field":
        raw = msgspec.msgpack.encode({**body, "colour": "red"})
    elif change == "long integer":  # size_lots 5 as a uint64 instead of a positive fixint
        canonical = codec.encode_body(order)
        key = msgspec.msgpack.encode("size_lots")
        at = canonical.index(key) + len(key)
        assert canonical[at] == 5
        raw = canonical[:at] + b"\xcf" + (5).to_bytes(8, "big") + canonical[at + 1 :]
    else:
        raw = codec.encode_body(order) + b"\xc0"
    with pytest.raises(CodecError) as caught:
        codec.decode_transaction(header + raw)
    expected = (
        RejectCode.MALFORMED_ENCODING
        if change == "trailing bytes"
        else RejectCode.NON_CANONICAL_ENCODING
    )
    assert caught.value.code == expected


@pytest.mark.parametrize(
    ("data", "code", "says"),
    [
        (b"", RejectCode.MALFORMED_ENCODING, "no SC magic"),
        (b"XX\x01\x02\x80", RejectCode.MALFORMED_ENCODING, "no SC magic"),
        (b"SC\x02\x02\x80", RejectCode.UNSUPPORTED_VERSION, "protocol version 2"),
        (b"SC\x01\x01\x80", RejectCode.MALFORMED_ENCODING, "a TRANSACTION frame where a BLOCK"),
        (b"SC\x01\x09\x80", RejectCode.MALFORMED_ENCODING, "a 9 frame"),
        (b"SC\x01\x02\x93\x01\x02\x03", RejectCode.MALFORMED_ENCODING, "block"),
    ],
)
def test_frames_are_checked(data: bytes, code: RejectCode, says: str) -> None:
    with pytest.raises(CodecError) as caught:
        codec.decode_block(data)
    assert caught.value.code == code
    assert says in caught.value.message


def test_a_transaction_its_own_validation_refuses_is_malformed() -> None:
    body = _body(_extra_transactions()[2])
    body["post_only"], body["time_in_force"] = 1, 2  # a post-only IOC
    with pytest.raises(CodecError) as caught:
        codec.decode_transaction(b"SC\x01\x01" + msgspec.msgpack.encode(body))
    assert caught.value.code == RejectCode.MALFORMED_ENCODING
    assert "INVALID_ORDER" in caught.value.message


def test_a_block_and_its_frame_must_agree_on_the_version() -> None:
    block = Block(version=2, height=1, timestamp_ns=1, transactions=[])
    data = b"SC\x01\x02" + codec.encode_body(block)
    with pytest.raises(CodecError, match="says protocol version 2 in a version 1 frame"):
        codec.decode_block(data)
    with pytest.raises(CodecError) as caught:
        codec.decode_block(codec.encode_block(block))
    assert caught.value.code == RejectCode.UNSUPPORTED_VERSION


def test_not_bytes_is_malformed() -> None:
    with pytest.raises(CodecError) as caught:
        codec.decode_block("SC")  # type: ignore[arg-type]
    assert caught.value.code == RejectCode.MALFORMED_ENCODING


def test_snapshot_frames_carry_their_kind() -> None:
    framed = codec.frame(Kind.SNAPSHOT, b"\x80")
    assert codec.unframe(framed, Kind.SNAPSHOT)[0] == 1
    with pytest.raises(CodecError):
        codec.unframe(framed, Kind.BLOCK)


def test_the_engine_refuses_an_unsupported_version_and_keeps_its_digest() -> None:
    engine = Engine()
    result = engine.apply(Block(version=2, height=1, timestamp_ns=1, transactions=[]))
    assert result.rejected == RejectCode.UNSUPPORTED_VERSION
    assert result.digest == codec.GENESIS_DIGEST == engine.digest
    assert engine.height == 0


def test_digests_chain_over_the_events(corpus: Corpus) -> None:
    previous = codec.GENESIS_DIGEST
    seen = set()
    for result in corpus.results:
        expected = codec.chain_digest(previous, result.height, result.timestamp_ns, result.events)
        assert result.digest == expected
        seen.add(result.digest)
        previous = result.digest
    assert len(seen) == len(corpus.results)
    # an empty block still moves the chain (height and time are in it)
    engine = Engine()
    first = engine.apply(Block(height=1, timestamp_ns=5, transactions=[]))
    second = engine.apply(Block(height=2, timestamp_ns=5, transactions=[]))
    assert first.digest != second.digest
    assert second.digest == codec.chain_digest(first.digest, 2, 5, [])
