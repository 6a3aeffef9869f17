"""Batches without a chain: records, withdrawal trees, posted data, the batcher, the verifier."""

from __future__ import annotations

import threading
import zlib
from typing import NamedTuple

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strikechain.engine.codes import RejectCode
from strikechain.engine.commitment import account_address
from strikechain.engine.engine import Engine
from strikechain.engine.events import BlockResult, Deposited
from strikechain.engine.genesis import Genesis, encode_genesis
from strikechain.engine.orders_signing import sign_order
from strikechain.engine.signing import address_of, keccak256
from strikechain.engine.txs import Block, PlaceOrder
from strikechain.settlement import data as batch_data
from strikechain.settlement.batcher import Batcher, BatchPolicy, ClosedBatch
from strikechain.settlement.records import (
    EMPTY_WITHDRAWAL_ROOT,
    RECORD_FIELDS,
    BatchRecord,
    Withdrawal,
    WithdrawalTree,
    genesis_record,
    verify_withdrawal,
)
from strikechain.settlement.verifier import DepositEvent, PostedBatch, verify_batches
from strikechain.sim.scripted import ScriptedSession, SessionParams


class Committed(NamedTuple):
    block: Block
    result: BlockResult


class Run(NamedTuple):
    genesis: BatchRecord
    batches: list[ClosedBatch]
    deposits: list[DepositEvent]
    engine: Engine


def run_session(blocks: int = 200, policy: BatchPolicy | None = None) -> Run:
    session = ScriptedSession(SessionParams(seed=5, blocks=blocks, transactions_per_block=40))
    genesis = Genesis(venue=session.venue)
    engine = genesis.build_engine()
    start = genesis_record(engine.state_root(), engine.height, engine.timestamp_ns)
    closed: list[ClosedBatch] = []
    batcher = Batcher(
        engine,
        start,
        closed.append,
        policy or BatchPolicy(max_blocks=40, max_interval_ns=10**15),
        genesis=encode_genesis(genesis),
    )
    deposits = []  # the contract's events: the deposits the engine credited
    for block in session.blocks():
        result = engine.apply(block)
        assert not result.rejected
        batcher.on_block(Committed(block, result))
        deposits += [
            DepositEvent(
                index=event.deposit_id,
                beneficiary=account_address(event.account),
                underlying=event.underlying,
                amount=event.amount,
            )
            for event in result.events
            if type(event) is Deposited
        ]
    batcher.close()
    return Run(start, closed, deposits, engine)


@pytest.fixture(scope="module")
def session_run() -> Run:
    return run_session()


def posted(run: Run) -> list[PostedBatch]:
    return [PostedBatch(record=batch.record, data=batch.data) for batch in run.batches]


# -- records and withdrawal trees --------------------------------------------------------------


def test_a_record_is_sixteen_words_hashed_as_abi_encode() -> None:
    record = BatchRecord(number=3, state_root=b"\x07" * 32, exit_total=2**255, committed_at=9)
    words = record.words()
    assert len(words) == 16 * 32 == len(RECORD_FIELDS) * 32
    assert words[:32] == (3).to_bytes(32, "big")
    assert words[64:96] == b"\x07" * 32
    assert record.hash() == keccak256(words)
    assert BatchRecord.from_tuple(record.as_tuple()) == record
    assert record.header().number == record.header().committed_at == 0
    with pytest.raises(ValueError, match="uint256"):
        BatchRecord(number=-1).words()
    with pytest.raises(ValueError, match="32 bytes"):
        BatchRecord(prev_root=b"short").words()


@settings(max_examples=25, deadline=None)
@given(amounts=st.lists(st.integers(1, 2**64), min_size=1, max_size=40), data=st.data())
def test_every_withdrawal_proves_its_own_leaf_only(amounts: list[int], data: st.DataObject) -> None:
    withdrawals = [
        Withdrawal(withdrawal_id=i + 1, account="0x" + f"{i:040x}", underlying="BTC", amount=a)
        for i, a in enumerate(amounts)
    ]
    tree = WithdrawalTree(withdrawals)
    root = tree.root()
    index = data.draw(st.integers(0, len(withdrawals) - 1))
    proof = tree.proof(index)
    assert verify_withdrawal(root, withdrawals[index], index, proof)
    forged = msgspec.structs.replace(withdrawals[index], amount=withdrawals[index].amount + 1)
    assert not verify_withdrawal(root, forged, index, proof)
    assert not verify_withdrawal(root, withdrawals[index], index ^ 1, proof)
    assert tree.total() == sum(amounts)


def test_a_withdrawal_leaf_is_the_abi_encoding_of_its_four_fields() -> None:
    withdrawal = Withdrawal(withdrawal_id=7, account="0x" + "ab" * 20, underlying="ETH", amount=5)
    leaf = withdrawal.leaf()
    assert len(leaf) == 128
    assert leaf[:32] == (7).to_bytes(32, "big")
    assert leaf[32:64] == bytes(12) + bytes.fromhex("ab" * 20)
    assert leaf[64:96] == b"ETH".ljust(32, b"\x00")
    assert WithdrawalTree([]).root() == EMPTY_WITHDRAWAL_ROOT


# -- posted data -------------------------------------------------------------------------------


def test_posted_data_round_trips_and_hashes_chunk_by_chunk() -> None:
    value = batch_data.BatchData(number=1, genesis=b"g", blocks=[b"a" * 300_000, b"b"])
    raw = batch_data.encode(value)
    assert batch_data.decode(raw) == value
    parts = batch_data.chunks(raw, 1_000)
    assert b"".join(parts) == raw
    assert all(len(part) <= 1_000 for part in parts)
    expected = bytes(32)
    for part in parts:
        expected = keccak256(expected + keccak256(part))
    assert batch_data.calldata_hash(parts) == expected
    assert batch_data.chunks(b"") == [b""]
    with pytest.raises(ValueError, match="chunk size"):
        batch_data.chunks(raw, 120_001)


@settings(max_examples=40, deadline=None)
@given(
    number=st.integers(0, 2**40),
    genesis=st.binary(max_size=300),
    sizes=st.lists(st.integers(0, 70_000), max_size=40),
    extra=st.sampled_from([0, 15, 16, 65_535, 65_536]),
)
def test_the_streamed_body_is_the_canonical_msgpack_of_the_batch(
    number: int, genesis: bytes, sizes: list[int], extra: int
) -> None:
    """The posted data is made a block at a time (``body_parts``: the interpreter lock is
    never held for a whole batch); joined, the parts are msgpack's own one-shot encoding
    (every array-length header: fixarray, array16, array32 and every bin size), and the
    compressed stream decodes back to the batch."""
    blocks = [bytes([index % 251]) * size for index, size in enumerate(sizes)]
    blocks += [b"e"] * extra
    value = batch_data.BatchData(number=number, genesis=genesis, blocks=blocks)
    assert b"".join(batch_data.body_parts(value)) == msgspec.msgpack.encode(value)
    assert batch_data.decode(batch_data.encode(value)) == value


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: b"XXXX" + raw[4:],
        lambda raw: raw[:4] + b"\x09" + raw[5:],
        lambda raw: raw[:-3],
        lambda raw: raw + b"\x00",
        lambda raw: raw[:5] + zlib.compress(b"\x93\x01\xa1g\x90"),  # not canonical (str, not bin)
        lambda raw: raw[:5] + zlib.compress(b"\xc1"),
    ],
)
def test_malformed_posted_data_is_refused_with_a_stable_code(damage) -> None:  # type: ignore[no-untyped-def]
    raw = batch_data.encode(batch_data.BatchData(number=1, genesis=b"", blocks=[b"x"]))
    with pytest.raises(batch_data.DataError) as refused:
        batch_data.decode(damage(raw))
    assert refused.value.code == RejectCode.MALFORMED_BATCH_DATA


def test_a_decompression_bomb_is_refused_before_it_expands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_data, "MAX_DECODED_BYTES", 1_000)
    raw = batch_data.encode(batch_data.BatchData(number=1, genesis=b"", blocks=[bytes(10_000)]))
    with pytest.raises(batch_data.DataError, match="inflates beyond"):
        batch_data.decode(raw)


# -- the batcher and the verifier --------------------------------------------------------------


def test_batches_chain_and_cover_every_block(session_run: Run) -> None:
    batches = session_run.batches
    assert len(batches) == -(-session_run.engine.height // 40) == 5
    previous = session_run.genesis
    for number, batch in enumerate(batches, start=1):
        record = batch.record
        assert record.number == number
        assert record.prev_root == previous.state_root
        assert record.first_block == previous.last_block + 1
        assert record.last_block - record.first_block < 40
        assert record.first_timestamp_ns >= previous.last_timestamp_ns
        assert record.committed_at == 0
        assert record.data_hash == bytes(32)
        assert bool(batch_data.decode(batch.data).genesis) == (number == 1)
        previous = record
    engine = session_run.engine
    assert previous.last_block == engine.height
    assert previous.state_root == engine.state_root()
    assert previous.deposit_index == engine.next_deposit_id - 1 == len(session_run.deposits)
    assert previous.withdrawn_total == engine.withdrawals_total
    assert sum(len(b.withdrawals) for b in batches) == engine.next_withdrawal_id - 1 > 0
    assert sum(batch.transactions for batch in batches) > 7_000


def test_a_closed_batch_compresses_its_data_once_on_first_read_in_any_thread() -> None:
    run = run_session(blocks=200)
    batch = run.batches[0]
    assert batch._data is None, "the close compressed the data (on the node's event loop)"
    content = batch._content
    assert content is not None
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(batch.data)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results[0] == batch_data.encode(content)
    assert all(result is results[0] for result in results)  # encoded once
    assert batch_data.decode(batch.data).blocks == content.blocks


def test_a_batch_closes_on_block_time_too() -> None:
    run = run_session(policy=BatchPolicy(max_blocks=1_000, max_interval_ns=20 * 10**9))
    assert len(run.batches) > 5
    for batch in run.batches[:-1]:
        record = batch.record
        assert record.last_timestamp_ns - record.first_timestamp_ns >= 20 * 10**9


def test_the_verifier_reproduces_every_batch(session_run: Run) -> None:
    report = verify_batches(session_run.genesis, posted(session_run), session_run.deposits)
    assert report.ok, report.divergence
    assert report.batches == 5
    assert report.blocks == session_run.engine.height
    assert report.deposits_checked == len(session_run.deposits)
    assert report.oracle_signatures > 0
    assert report.last_root == session_run.engine.state_root()


@pytest.mark.parametrize(
    "field",
    [
        "state_root",
        "first_timestamp_ns",
        "last_timestamp_ns",
        "deposit_index",
        "deposited_total",
        "withdrawal_root",
        "withdrawn_total",
        "exit_total",
        "forced_index",
    ],
)
def test_the_verifier_names_the_first_field_that_diverges(session_run: Run, field: str) -> None:
    batches = posted(session_run)
    record = batches[3].record
    value = getattr(record, field)
    wrong = (b"\x01" + value[1:]) if isinstance(value, bytes) else value + 1
    batches[3] = PostedBatch(
        record=msgspec.structs.replace(record, **{field: wrong}), data=batches[3].data
    )
    report = verify_batches(session_run.genesis, batches, session_run.deposits)
    assert not report.ok
    assert report.divergence is not None
    assert (report.divergence.batch, report.divergence.field) == (4, field)
    assert report.batches == 3


def test_the_verifier_catches_a_forged_deposit_and_damaged_data(session_run: Run) -> None:
    deposits = list(session_run.deposits)
    deposits[0] = msgspec.structs.replace(deposits[0], amount=deposits[0].amount + 1)
    report = verify_batches(session_run.genesis, posted(session_run), deposits)
    assert report.divergence is not None
    assert (report.divergence.batch, report.divergence.field) == (1, "deposit")
    batches = posted(session_run)
    batches[1] = PostedBatch(record=batches[1].record, data=batches[1].data[:-1])
    report = verify_batches(session_run.genesis, batches, session_run.deposits)
    assert report.divergence is not None
    assert (report.divergence.batch, report.divergence.field) == (2, "data")
    wrong_genesis = msgspec.structs.replace(session_run.genesis, state_root=bytes(32))
    report = verify_batches(wrong_genesis, posted(session_run), session_run.deposits)
    assert report.divergence is not None
    assert report.divergence.field == "state_root"
    assert report.divergence.batch == 0


def test_the_verifier_rejects_a_forged_signed_order() -> None:
    key = keccak256(b"signer")
    account = address_of(key)
    order = PlaceOrder(
        account=account, instrument="BTC_USDC-PERPETUAL", side=1, size_lots=1, price_ticks=1
    )
    genesis = Genesis(venue=ScriptedSession(SessionParams(seed=5, blocks=200)).venue)
    engine = genesis.build_engine()
    start = genesis_record(engine.state_root(), 0, 0)
    closed: list[ClosedBatch] = []
    batcher = Batcher(engine, start, closed.append, genesis=encode_genesis(genesis))
    signed = sign_order(order, key)
    forged = msgspec.structs.replace(signed, size_lots=2)
    for height, tx in enumerate((signed, forged), start=1):
        block = Block(height=height, timestamp_ns=height, transactions=[tx])
        batcher.on_block(Committed(block, engine.apply(block)))
        batcher.close()
    report = verify_batches(start, [PostedBatch(record=b.record, data=b.data) for b in closed])
    assert report.signed_orders == 2
    assert report.divergence is not None
    assert (report.divergence.batch, report.divergence.field) == (2, "signature")
