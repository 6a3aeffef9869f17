"""The engine's state root: incremental equals from scratch, every sub-ledger's proof verifies
against it, and it moves with everything it commits to (balances, marks, books)."""

from __future__ import annotations

from functools import cache

import pytest

from strikechain.engine.codes import Rejection
from strikechain.engine.commitment import (
    LedgerTree,
    decode_leaf,
    ledger_leaf,
    system_leaf,
    verify_ledger,
)
from strikechain.engine.engine import Engine
from strikechain.engine.signing import keccak256
from strikechain.engine.snapshot import capture, rest_bytes, restore
from strikechain.engine.txs import Block, PlaceOrder, Side
from strikechain.sim import ScriptedSession, SessionParams

SESSION = SessionParams(seed=5, blocks=200, transactions_per_block=60, traders=36)


@cache
def blocks() -> tuple[Block, ...]:
    return tuple(ScriptedSession(SESSION).blocks())


def venue_engine() -> Engine:
    return Engine(venue=ScriptedSession(SESSION).venue)


def from_scratch(engine: Engine) -> bytes:
    """The root recomputed with no incremental state: every leaf encoded and hashed anew."""
    ledgers = [
        ledger
        for mine in engine.accounts.values()
        for ledger in mine.ledgers.values()
        if ledger.leaf_index
    ]
    tree = LedgerTree()
    tree.update(
        [(0, system_leaf(engine.fee_pool, engine.insurance_fund, 0, engine.dust))]
        + [(ledger.leaf_index, ledger_leaf(ledger)) for ledger in ledgers]
    )
    return tree.state_root(keccak256(rest_bytes(engine)))


def test_incremental_roots_equal_roots_from_scratch() -> None:
    engine = venue_engine()
    roots = []
    for block in blocks():
        assert not engine.apply(block).rejected
        if block.height % 7 == 0 or block.height in (1, 2, 3):
            root = engine.state_root()
            assert root == from_scratch(engine), block.height
            roots.append(root)
    assert len(set(roots)) == len(roots)  # every root commits to a different state
    assert engine.state_root() == engine.state_root()  # asking twice changes nothing


def test_leaf_indices_follow_first_funding_and_never_move() -> None:
    engine = venue_engine()
    first_seen: dict[tuple[str, str], int] = {}
    for block in blocks()[:60]:
        engine.apply(block)
        for mine in engine.accounts.values():
            for ledger in mine.ledgers.values():
                if ledger.leaf_index:
                    key = (ledger.account, ledger.underlying)
                    assert first_seen.setdefault(key, ledger.leaf_index) == ledger.leaf_index
    assert sorted(first_seen.values()) == list(range(1, len(first_seen) + 1))
    assert engine.next_leaf_index == len(first_seen) + 1


def test_every_leaf_proof_verifies_and_tampering_fails() -> None:
    engine = venue_engine()
    for block in blocks()[:120]:
        engine.apply(block)
    root = engine.state_root()
    checked = 0
    for mine in engine.accounts.values():
        for ledger in mine.ledgers.values():
            if not ledger.leaf_index:
                continue
            data = ledger_leaf(ledger)
            index, proof, rest = engine.ledger_proof(ledger.account, ledger.underlying)
            assert verify_ledger(data, index, proof, rest, root)
            leaf = decode_leaf(data)
            assert leaf.collateral == ledger.cash
            assert leaf.exit_value == max(0, ledger.cash + ledger.value)
            tampered = bytearray(data)
            tampered[127] ^= 1  # the collateral's lowest byte
            assert not verify_ledger(bytes(tampered), index, proof, rest, root)
            assert not verify_ledger(data, index + 1, proof, rest, root)
            assert not verify_ledger(data, index, proof, bytes(32), root)
            checked += 1
    assert checked > 30
    with pytest.raises(Rejection):
        engine.ledger_proof("nobody", "BTC")


def test_a_restored_engine_commits_to_the_same_state() -> None:
    engine = venue_engine()
    for block in blocks()[:90]:
        engine.apply(block)
    engine.state_root()
    for block in blocks()[90:130]:
        engine.apply(block)
    restored = restore(capture(engine), venue=ScriptedSession(SESSION).venue)
    assert restored.state_root() == engine.state_root()
    for block in blocks()[130:]:
        assert engine.apply(block) == restored.apply(block)
    assert restored.state_root() == engine.state_root()


def test_the_root_moves_with_marks_books_and_balances() -> None:
    engine = venue_engine()
    for block in blocks()[:100]:
        engine.apply(block)
    before = engine.state_root()
    # a resting order moves no money: only the hash of everything else changes
    holder = next(iter(engine.accounts))
    book = next(iter(engine.books))
    result = engine.apply(
        Block(
            height=engine.height + 1,
            timestamp_ns=engine.timestamp_ns,
            transactions=[
                PlaceOrder(
                    account=holder, instrument=book, side=Side.BUY, size_lots=1, price_ticks=1
                )
            ],
        )
    )
    assert [type(e).__name__ for e in result.events] == ["OrderAccepted"], result.events
    after = engine.state_root()
    assert after != before
    assert after == from_scratch(engine)
    # marks move every holder's exit value: the next session block brings reports
    for block in blocks()[100:102]:
        engine.apply(block)
    assert engine.state_root() == from_scratch(engine)
