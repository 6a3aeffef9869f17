"""Engine snapshots: a restored engine behaves exactly as the original, block for block."""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from collections.abc import Generator, Iterator
from functools import cache
from pathlib import Path

import msgspec
import pytest

from strikechain.engine import snapshot
from strikechain.engine.auction_triggers import AuctionState, PriceHistory
from strikechain.engine.codes import RejectCode, Rejection
from strikechain.engine.engine import Engine
from strikechain.engine.invariant import InvariantViolation
from strikechain.engine.liquidator import KeeperAuction
from strikechain.engine.params import VenueConfig
from strikechain.engine.signing import keccak256
from strikechain.engine.snapshot import (
    CAPTURED,
    Snapshot,
    attribute_names,
    capture,
    decode_snapshot,
    encode_rest_in_steps,
    encode_snapshot,
    encode_snapshot_with_rest,
    known_attributes,
    msgpack_array_header,
    rest_bytes,
    rest_bytes_in_steps,
    rest_hash_in_steps,
    restore,
    take_balances,
    take_rest_in_steps,
)
from strikechain.engine.txs import Block
from strikechain.sim import ScriptedSession, SessionParams

ROOT = Path(__file__).resolve().parents[2]
CAPTURE_HEIGHTS = (40, 110, 185)
"""Of 200 blocks of the scripted session: while leveraged traders open positions, with
sub-ledgers in the liquidation queue, and after the option chain expired and settled."""


def session(seed: int) -> ScriptedSession:
    return ScriptedSession(
        SessionParams(seed=seed, blocks=200, transactions_per_block=60, traders=36)
    )


@cache
def blocks(seed: int) -> tuple[Block, ...]:
    return tuple(session(seed).blocks())


def round_trip(engine: Engine, venue: VenueConfig) -> Engine:
    return restore(decode_snapshot(encode_snapshot(capture(engine))), venue=venue)


def run_to(seed: int, height: int) -> tuple[Engine, VenueConfig]:
    venue = session(seed).venue
    engine = Engine(venue=venue)
    for block in blocks(seed)[:height]:
        assert not engine.apply(block).rejected
    return engine, venue


@pytest.mark.parametrize("seed", [1, 2])
def test_restored_engines_apply_the_following_blocks_identically(seed: int) -> None:
    venue = session(seed).venue
    original = Engine(venue=venue)
    restored: list[Engine] = []
    for block in blocks(seed):
        result = original.apply(block)
        assert not result.rejected, f"seed {seed}: block {block.height}: {result.reason}"
        for copy in restored:
            assert copy.apply(block) == result, f"seed {seed}: block {block.height} differs"
        if block.height in CAPTURE_HEIGHTS:
            copy = round_trip(original, venue)
            copy.check()
            restored.append(copy)
    original.check()
    final = encode_snapshot(capture(original))
    for copy in restored:
        copy.check()
        assert encode_snapshot(capture(copy)) == final, f"seed {seed}"
    assert len({engine.state_root() for engine in (original, *restored)}) == 1


@pytest.mark.parametrize("height", [0, 1, 110, 200])
def test_capture_restore_capture_is_identity(height: int) -> None:
    engine, venue = run_to(3, height)
    snapshot = capture(engine)
    data = encode_snapshot(snapshot)
    assert decode_snapshot(data) == snapshot
    copy = restore(decode_snapshot(data), venue=venue)
    copy.check()
    assert capture(copy) == snapshot
    assert encode_snapshot(capture(copy)) == data
    assert rest_bytes(copy) == rest_bytes(engine)
    assert rest_bytes(engine) == msgspec.msgpack.encode(snapshot.rest)


def test_shared_objects_stay_shared() -> None:
    engine, venue = run_to(1, 107)  # the lane is working through the sell-off's queue
    copy = round_trip(engine, venue)
    assert copy.orders
    assert copy.liquidation_queue
    for order in copy.orders.values():
        mine = copy.accounts[order.account]
        assert mine.orders[order.order_id] is order
        assert order.exposure is mine.exposures[order.instrument]
        assert order.exposure.ledger is mine.ledgers[order.exposure.market.underlying]
        level = copy.books[order.instrument].side(order.side).levels[order.price]
        assert level[order.order_id] is order
    for market in copy.markets.values():
        assert market.state.markets[market.name] is market
        for account, exposure in market.holders.items():
            ledger = copy.accounts[account].ledgers[market.underlying]
            assert ledger.exposures[market.name] is exposure
            assert market.state.holders[account] is ledger
    for ledger in copy.liquidation_queue:
        assert copy.accounts[ledger.account].ledgers[ledger.underlying] is ledger


def test_rest_bytes_leave_out_the_balances() -> None:
    engine, _ = run_to(1, 60)
    before, rest = capture(engine), rest_bytes(engine)
    ledger = next(iter(next(iter(engine.accounts.values())).ledgers.values()))
    ledger.cash += 1
    engine.fee_pool -= 1
    assert rest_bytes(engine) == rest
    after = capture(engine)
    assert after.ledgers != before.ledgers
    assert after.system != before.system


def test_resting_orders_are_captured_field_for_field_and_checked() -> None:
    """The orders come from the compiled row builder (engine.book.order_rows): every field of
    every resting order, and an order whose exposure is not its account's is refused."""
    engine, _ = run_to(1, 107)
    captured = capture(engine).rest.orders
    assert len(captured) == len(engine.orders) > 0
    for row, order in zip(captured, engine.orders.values(), strict=True):
        for field in row.__struct_fields__:
            assert getattr(row, field) == getattr(order, field), field
    order = next(iter(engine.orders.values()))
    other = next(
        e for e in engine.accounts[order.account].exposures.values() if e is not order.exposure
    )
    order.exposure = other
    with pytest.raises(InvariantViolation, match="exposure is not its account's"):
        rest_bytes(engine)


def run_steps(steps: Generator[None, None, bytes]) -> tuple[int, bytes]:
    """Drive ``steps`` to the end: (how many yields, what it returned)."""
    count = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: bytes = done.value
            return count, result
        count += 1


@pytest.mark.parametrize("height", CAPTURE_HEIGHTS)
def test_rest_bytes_in_steps_are_rest_bytes(height: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "ORDERS_PER_STEP", 7)
    engine, _ = run_to(1, height)
    count, result = run_steps(rest_bytes_in_steps(engine))
    assert result == rest_bytes(engine)
    assert count >= len(engine.orders) // 7 + len(engine.books)


@pytest.mark.parametrize("height", CAPTURE_HEIGHTS)
@pytest.mark.parametrize("blocks_per_step", [1, 3])
def test_a_rest_taken_while_blocks_go_on_is_its_state_at_the_start(
    height: int, blocks_per_step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copy on write: a rest taken in steps with blocks applied between them (orders filled,
    amended, cancelled and placed, levels emptied and refilled, marks and positions moved),
    then encoded, is the state's rest bytes at the height it started at, as are the balances
    taken with it; the books stop noting changes once it is done."""
    monkeypatch.setattr(snapshot, "ORDERS_PER_STEP", 7)
    engine, _ = run_to(1, height)
    expected = rest_bytes(engine)
    expected_snapshot = encode_snapshot(capture(engine))
    balances = take_balances(engine)
    later = iter(blocks(1)[height:])
    steps = take_rest_in_steps(engine)
    count = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            taken = done.value
            break
        count += 1
        for block in itertools.islice(later, blocks_per_step):
            assert not engine.apply(block).rejected
    assert count >= len(taken.encoded) + 2 * len(engine.books)
    assert len(taken.encoded) == -(-taken.count // 7)
    assert engine.height > height
    assert rest_bytes(engine) != expected  # the state did move
    assert all(
        book.bids.taking is None and book.asks.taking is None for book in engine.books.values()
    )
    _, encoded = run_steps(encode_rest_in_steps(taken))
    assert encoded == expected
    assert encode_snapshot_with_rest(balances, encoded) == expected_snapshot
    engine.check()


def test_a_taking_closed_midway_releases_the_books_and_one_at_a_time() -> None:
    engine, _ = run_to(1, 110)
    steps = take_rest_in_steps(engine)
    next(steps)
    with pytest.raises(InvariantViolation, match="another state is being taken"):
        run_steps(take_rest_in_steps(engine))
    assert all(book.bids.taking is not None for book in engine.books.values())
    steps.close()
    assert all(
        book.bids.taking is None and book.asks.taking is None for book in engine.books.values()
    )
    _, rest = run_steps(rest_bytes_in_steps(engine))
    assert rest == rest_bytes(engine)


def test_a_rest_cannot_be_taken_in_the_middle_of_a_block() -> None:
    engine, _ = run_to(1, 40)
    account = next(mine for mine in engine.accounts.values() if mine.ledgers)
    engine._touched.append(next(iter(account.ledgers.values())))  # (as while one is applied)
    with pytest.raises(InvariantViolation, match="between blocks"):
        run_steps(take_rest_in_steps(engine))


@pytest.mark.parametrize("height", CAPTURE_HEIGHTS)
def test_rest_hash_in_steps_is_the_roots_rest_hash(
    height: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot, "HASHED_BYTES_PER_STEP", 1_000)
    engine, _ = run_to(1, height)
    rest = rest_bytes(engine)
    count, digest = run_steps(rest_hash_in_steps(engine))
    assert digest == keccak256(rest)
    assert count >= len(rest) // 1_000
    assert engine.state_root(digest) == engine.state_root()
    assert engine.combine_root(engine.ledger_root(), digest) == engine.state_root()


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 65_535, 65_536, 70_000])
def test_msgpack_array_header_is_msgspecs(length: int) -> None:
    encoded = msgspec.msgpack.encode([None] * length)  # None is one byte, 0xc0
    assert msgpack_array_header(length) + b"\xc0" * length == encoded


def snapshot_digest() -> str:
    engine, _ = run_to(2, 120)
    return hashlib.sha256(encode_snapshot(capture(engine))).hexdigest()


def test_snapshots_do_not_depend_on_the_hash_seed() -> None:
    code = "from tests.engine.test_snapshot import snapshot_digest; print(snapshot_digest())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == snapshot_digest()


def garbage(snapshot: Snapshot) -> Iterator[bytes]:
    data = encode_snapshot(snapshot)
    yield b""
    yield b"\xc1"
    yield data[: len(data) // 2]
    yield data + b"\x00"
    yield data[4:]  # no frame
    yield b"SC\x01\x02" + data[4:]  # a block's frame
    yield data[:4] + msgspec.msgpack.encode({"ledgers": [], "system": 1})
    yield data[:4] + msgspec.msgpack.encode([[], [1, 2, 3], []])


def test_garbage_raises_a_typed_rejection() -> None:
    engine, _ = run_to(1, 1)
    for data in garbage(capture(engine)):
        with pytest.raises(Rejection) as refused:
            decode_snapshot(data)
        assert refused.value.code == RejectCode.MALFORMED_SNAPSHOT


def test_an_inconsistent_snapshot_is_refused() -> None:
    engine, venue = run_to(1, 60)
    snapshot = capture(engine)
    broken = msgspec.structs.replace(snapshot, ledgers=snapshot.ledgers[1:])
    with pytest.raises(Rejection) as refused:
        restore(broken, venue=venue)
    assert refused.value.code == RejectCode.MALFORMED_SNAPSHOT
    order = snapshot.rest.orders[0]
    stray = msgspec.structs.replace(order, account="nobody")
    rest = msgspec.structs.replace(snapshot.rest, orders=(stray, *snapshot.rest.orders[1:]))
    with pytest.raises(Rejection) as refused:
        restore(msgspec.structs.replace(snapshot, rest=rest), venue=venue)
    assert refused.value.code == RejectCode.MALFORMED_SNAPSHOT


def test_another_configuration_is_refused() -> None:
    engine, venue = run_to(1, 1)
    snapshot = capture(engine)
    for other in (VenueConfig(), session(2).venue, msgspec.structs.replace(venue, dust="dusty")):
        with pytest.raises(Rejection) as refused:
            restore(snapshot, venue=other)
        assert refused.value.code == RejectCode.SNAPSHOT_CONFIG_MISMATCH
    with pytest.raises(Rejection) as refused:
        restore(snapshot, venue=venue, margin=None)
    assert refused.value.code == RejectCode.SNAPSHOT_CONFIG_MISMATCH


def state_objects(engine: Engine) -> Iterator[tuple[str, object]]:
    """One of each of the engine's state classes, by the name the snapshot knows it by."""
    yield "Engine", engine
    for state in engine.underlyings.values():
        yield "UnderlyingState", state
        if state.oracle is not None:
            yield "OracleState", state.oracle
            yield "IndexHistory", state.oracle.history
    for market in engine.markets.values():
        yield "Market", market
    for book in engine.books.values():
        yield "Book", book
        yield "_Side", book.bids
    for mine in engine.accounts.values():
        yield "Account", mine
        for ledger in mine.ledgers.values():
            yield "SubLedger", ledger
            for exposure in ledger.exposures.values():
                yield "Exposure", exposure
    for order in engine.orders.values():
        yield "Order", order
    # classes the scripted session has none of (auctions off, the lane's policy): fresh ones
    yield "AuctionState", AuctionState()
    yield "PriceHistory", PriceHistory(4)
    yield "KeeperAuction", KeeperAuction(1, "a", "BTC", "BTC_USDC-PERPETUAL", -1, 3, 9)


def test_every_attribute_of_the_state_is_handled() -> None:
    """A field added to the engine's state must be taught to the snapshot."""
    engine, _ = run_to(1, 110)
    seen = set()
    for class_name, obj in state_objects(engine):
        seen.add(class_name)
        names = attribute_names(obj)
        known = known_attributes(class_name)
        assert known <= names, f"{class_name} no longer has {sorted(known - names)}"
        assert CAPTURED[class_name] <= names
        assert names == known, f"{class_name}: {sorted(names - known)} are not handled"
    assert seen == set(CAPTURED)


def test_the_dynamic_margin_state_is_captured_field_for_field() -> None:
    import dataclasses

    from strikechain.engine.dynamic import DynamicState
    from strikechain.engine.snapshot import DynamicSnapshot

    fields = {field.name for field in dataclasses.fields(DynamicState)}
    assert set(DynamicSnapshot.__struct_fields__) == fields
