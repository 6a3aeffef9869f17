"""Deposit, trade, commit, challenge window, withdraw with proof; veto and rollback; forced
withdrawal censored -> freeze -> exits, refunds and haircuts; money on chain equals money in
the engine after every final batch. On the embedded chain here (and, with the same harness, on
anvil in test_anvil_settlement.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from strikechain.engine.events import ForcedWithdrawalServed
from strikechain.engine.txs import Deposit, ForcedWithdrawal, Withdraw
from strikechain.settlement.chain import Chain, ChainReverted
from strikechain.settlement.embedded import BoaChain, ChainProcess
from strikechain.settlement.records import BatchRecord
from strikechain.settlement.recovery import RecoveryHalt, rebuild
from strikechain.settlement.rpc import RpcChain
from strikechain.settlement.verifier import verify_batches
from tests.engine.venue import BTC_PRICE, USDC, config
from tests.settlement.harness import ALICE, BOB, CAROL, PARAMS, VERIFIER, SettledVenue


def check_money(venue: SettledVenue) -> None:
    """On chain: every deposit minus every paid claim. Engine: its money, plus withdrawals it
    paid out that nobody has claimed yet, plus deposits it has not credited yet."""
    settlement = venue.settlement
    deposited = sum(event.amount for event in settlement.deposits())
    claimed = settlement.read("claimed_total")
    assert settlement.holdings() == deposited - claimed
    engine = venue.engine
    uncredited = deposited - engine.deposits_total
    assert settlement.holdings() == venue.money() + engine.withdrawals_total - claimed + uncredited


def traded_venue(chain: Chain) -> SettledVenue:
    venue = SettledVenue(chain)
    venue.fund(ALICE, 10_000 * USDC)
    venue.fund(BOB, 10_000 * USDC)
    venue.block()
    venue.trade(ALICE, BOB, 5)
    venue.block(Withdraw(account=ALICE, underlying="BTC", amount=1_000 * USDC))
    return venue


@pytest.fixture(params=["embedded", "anvil"])
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    """A fresh deployment per test: on titanoboa's EVM, or on the module's anvil node."""
    if request.param == "embedded":
        yield BoaChain()
        return
    node = request.getfixturevalue("anvil_node")
    yield RpcChain(node.url)


def test_deposit_trade_commit_wait_and_withdraw_with_a_proof(chain: Chain) -> None:
    venue = traded_venue(chain)
    assert venue.engine.get_ledger(ALICE, "BTC") is not None
    committed = venue.settle()
    record = committed.record
    assert record.number == 1
    assert record.deposit_index == 2
    assert record.deposited_total == 20_000 * USDC
    assert record.withdrawn_total == 1_000 * USDC
    check_money(venue)
    (withdrawal,) = venue.withdrawals()
    claim = venue.operator.withdrawal_claim(withdrawal.withdrawal_id)
    with pytest.raises(ChainReverted, match="not final"):
        venue.settlement.withdraw(claim.record, claim.withdrawal, claim.index, claim.proof)
    venue.wait_final()
    assert venue.operator.last_final() == record
    before = venue.settlement.balance(ALICE)
    venue.settlement.withdraw(claim.record, claim.withdrawal, claim.index, claim.proof)
    assert venue.settlement.balance(ALICE) == before + 1_000 * USDC
    check_money(venue)
    with pytest.raises(ChainReverted, match="claimed"):
        venue.settlement.withdraw(claim.record, claim.withdrawal, claim.index, claim.proof)
    stolen = msgspec.structs.replace(claim.withdrawal, account=BOB)
    with pytest.raises(ChainReverted):
        venue.settlement.withdraw(claim.record, stolen, claim.index, claim.proof)
    # Anyone holding only the chain rebuilds and checks every batch.
    posted = venue.settlement.posted()
    assert [p.record for p in posted] == venue.operator.records
    report = verify_batches(posted[0].record, posted[1:], venue.settlement.deposits())
    assert report.ok, report.divergence
    assert report.oracle_signatures > 0


@pytest.mark.parametrize("kind", ["in-process", "child", "anvil"])
def test_veto_inside_the_window(kind: str, request: pytest.FixtureRequest) -> None:
    chain: Chain
    if kind == "anvil":
        chain = RpcChain(request.getfixturevalue("anvil_node").url)
    else:
        chain = BoaChain() if kind == "in-process" else ChainProcess()
    try:
        venue = SettledVenue(chain)
        venue.settlement.propose_verifier(VERIFIER)
        chain.advance(PARAMS.verifier_timelock_s)
        venue.settlement.activate_verifier(VERIFIER, VERIFIER)
        venue.fund(ALICE, 5_000 * USDC)
        venue.block()
        honest = venue.settle()
        venue.wait_final()
        venue.block(Withdraw(account=ALICE, underlying="BTC", amount=700 * USDC))
        venue.batcher.sink = lambda batch: None
        batch = venue.batcher.close()
        assert batch is not None
        lie = msgspec.structs.replace(batch.record, state_root=b"\x66" * 32)
        bad = venue.settlement.commit(honest.record, lie, batch.data)
        venue.operator.records.append(bad.record)
        venue.operator.batches[2] = batch
        # The verifier replays the posted data: batch 2's root is not reproducible.
        report = verify_batches(
            venue.deployment.genesis, venue.settlement.posted()[1:], venue.settlement.deposits()
        )
        assert report.divergence is not None
        assert (report.divergence.batch, report.divergence.field) == (2, "state_root")
        claim = venue.operator.withdrawal_claim(1)
        venue.settlement.veto(VERIFIER, 2, honest.record, bad.record)
        assert venue.settlement.read("batch_count") == 1
        assert venue.operator.resync() == [bad.record]
        chain.advance(PARAMS.challenge_window_s + 1)
        with pytest.raises(ChainReverted, match="bad batch"):  # vetoed: nothing pays from it
            venue.settlement.withdraw(claim.record, claim.withdrawal, claim.index, claim.proof)
        # The operator re-commits the honest batch; after its window the claim pays.
        good = venue.operator.on_batch(batch)
        assert good.record.number == 2
        assert good.record.state_root == batch.record.state_root
        venue.wait_final()
        claim = venue.operator.withdrawal_claim(1)
        venue.settlement.withdraw(claim.record, claim.withdrawal, claim.index, claim.proof)
        assert venue.settlement.balance(ALICE) == 700 * USDC
        check_money(venue)
    finally:
        chain.close()


def test_a_censored_forced_withdrawal_freezes_and_everyone_exits(chain: Chain) -> None:
    venue = traded_venue(chain)
    venue.fund(CAROL, 3_000 * USDC)
    venue.block()  # Carol's deposit is credited (index 3)
    venue.settle()
    venue.wait_final()
    last_final = venue.operator.last_final()
    check_money(venue)
    # A deposit the engine never sees, and a forced withdrawal the operator ignores.
    venue.fund(CAROL, 777 * USDC)
    venue.settlement.request_forced_withdrawal(BOB, "BTC", 100 * USDC)
    ((request, requested_at),) = venue.settlement.forced_requests()
    tip = venue.operator.tip
    with pytest.raises(ChainReverted, match="too early"):
        venue.settlement.freeze_forced(CAROL, request, requested_at, tip, last_final, None)
    chain.advance(PARAMS.forced_window_s)
    venue.settlement.freeze_forced(CAROL, request, requested_at, tip, last_final, None)
    assert venue.settlement.read("frozen")
    with pytest.raises(ChainReverted, match="frozen"):
        venue.settlement.deposit(CAROL, "BTC", 1)
    # Every sub-ledger exits with the exit value its leaf records at the last final root.
    paid = {}
    for account in (ALICE, BOB, CAROL):
        leaf, index, proof, rest = venue.leaf(account)
        before = venue.settlement.balance(account)
        venue.settlement.exit(account, leaf, index, proof, rest)
        paid[account] = venue.settlement.balance(account) - before
        with pytest.raises(ChainReverted, match="exited"):
            venue.settlement.exit(account, leaf, index, proof, rest)
    exits = {
        account: int.from_bytes(venue.leaf(account)[0][128:160], "big")
        for account in (ALICE, BOB, CAROL)
    }
    assert paid == exits
    assert sum(exits.values()) == last_final.exit_total
    # The deposit no final root consumed is refunded in full to its depositor.
    pending = [d for d in venue.settlement.deposits() if d.index > last_final.deposit_index]
    assert [d.amount for d in pending] == [777 * USDC]
    before = venue.settlement.balance(CAROL)
    venue.settlement.refund(CAROL, pending[0], CAROL)
    assert venue.settlement.balance(CAROL) == before + 777 * USDC
    consumed = venue.settlement.deposits()[0]
    with pytest.raises(ChainReverted, match="consumed"):
        venue.settlement.refund(ALICE, consumed, ALICE)
    # Alice's final withdrawal is still claimable after the freeze.
    claim = venue.operator.withdrawal_claim(1)
    venue.settlement.withdraw(claim.record, claim.withdrawal, claim.index, claim.proof)
    # What is left is the venue's own money (fees), and nothing a user is owed.
    assert venue.settlement.holdings() == venue.engine.fee_pool + venue.engine.insurance_fund


def test_after_a_veto_the_venue_rolls_back_and_recommits_from_its_log(chain: Chain) -> None:
    """A corrupted engine commits a root the data does not produce; after the veto the operator
    rebuilds from the block log (recovery.rebuild), which refuses to go on from a live batch
    the log does not reproduce, and re-commits what the log does produce."""
    venue = SettledVenue(chain)
    venue.settlement.propose_verifier(VERIFIER)
    chain.advance(PARAMS.verifier_timelock_s)
    venue.settlement.activate_verifier(VERIFIER, VERIFIER)
    venue.fund(ALICE, 5_000 * USDC)
    venue.block()
    honest = venue.settle()
    venue.wait_final()
    venue.block(Withdraw(account=ALICE, underlying="BTC", amount=900 * USDC))
    venue.engine.next_order_id += 5  # the bug: a skipped counter, so an unreproducible root
    venue.block()
    bad = venue.settle()
    report = verify_batches(
        venue.deployment.genesis, venue.settlement.posted()[1:], venue.settlement.deposits()
    )
    assert report.divergence is not None
    assert (report.divergence.batch, report.divergence.field) == (2, "state_root")
    venue.settlement.veto(VERIFIER, 2, honest.record, bad.record)
    assert venue.operator.resync() == [bad.record]
    engine, batches = rebuild(venue.genesis, venue.blocks, venue.operator.tip)
    assert engine.next_order_id == venue.engine.next_order_id - 5
    assert [b.record.number for b in batches] == [2]
    assert batches[0].record.state_root != bad.record.state_root
    with pytest.raises(RecoveryHalt, match="predates"):  # a fault before the last live batch
        rebuild(venue.genesis, venue.blocks, bad.record)
    good = venue.operator.on_batch(batches[0])
    venue.wait_final()
    claim = venue.operator.withdrawal_claim(1)
    venue.settlement.withdraw(claim.record, claim.withdrawal, claim.index, claim.proof)
    assert venue.settlement.balance(ALICE) == 900 * USDC
    posted = venue.settlement.posted()
    assert posted[-1].record == good.record
    report = verify_batches(posted[0].record, posted[1:], venue.settlement.deposits())
    assert report.ok, report.divergence


def test_a_served_forced_withdrawal_pays_and_cannot_freeze(chain: Chain) -> None:
    venue = SettledVenue(chain)
    venue.fund(ALICE, 2_000 * USDC)
    venue.block()
    venue.settle()
    venue.settlement.request_forced_withdrawal(ALICE, "BTC", 300 * USDC)
    ((request, requested_at),) = venue.settlement.forced_requests()
    result = venue.block()  # the operator relays the request; the engine serves it
    (served,) = [e for e in result.events if isinstance(e, ForcedWithdrawalServed)]
    assert (served.request_id, served.amount) == (1, 300 * USDC)
    committed = venue.settle()
    assert committed.record.forced_index == 1
    chain.advance(PARAMS.forced_window_s)
    final = venue.operator.last_final()
    with pytest.raises(ChainReverted, match="served"):
        venue.settlement.freeze_forced(BOB, request, requested_at, committed.record, final, None)
    claim = venue.operator.withdrawal_claim(served.withdrawal_id)
    venue.settlement.withdraw(claim.record, claim.withdrawal, claim.index, claim.proof)
    assert venue.settlement.balance(ALICE) == 300 * USDC
    check_money(venue)


def test_the_relay_reads_each_chain_block_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator relays from where it left off: each call reads the contract's events of
    the blocks confirmed since the last one only, and relays each deposit and forced request
    once, in order, however many calls come between."""
    chain = BoaChain()
    venue = SettledVenue(chain)
    ranges: list[tuple[int, int | None]] = []
    read = chain.logs

    def logs(address: str, from_block: int = 0, to_block: int | None = None) -> list[Any]:
        ranges.append((from_block, to_block))
        return read(address, from_block, to_block)

    monkeypatch.setattr(chain, "logs", logs)
    venue.fund(ALICE, 1_000 * USDC)
    (first,) = venue.operator.relay()
    assert isinstance(first, Deposit)
    assert (first.deposit_id, first.amount) == (1, 1_000 * USDC)
    assert venue.operator.relay() == []  # nothing new: the chain is not read at all
    venue.fund(BOB, 500 * USDC)
    venue.settlement.request_forced_withdrawal(ALICE, "BTC", 30 * USDC)
    second, third = venue.operator.relay()
    assert isinstance(second, Deposit)
    assert isinstance(third, ForcedWithdrawal)
    assert (second.deposit_id, second.beneficiary, third.request_id) == (2, BOB.lower(), 1)
    assert len(ranges) == 2
    assert ranges[1][0] == ranges[0][1] + 1  # the second read starts after the first
    assert ranges[1][1] == chain.block_number() == venue.operator.scanned_block


def test_a_stale_operator_lets_anyone_freeze(chain: Chain) -> None:
    venue = SettledVenue(chain)
    venue.fund(ALICE, 1_000 * USDC)
    venue.block()
    venue.settle()
    venue.wait_final()
    tip = venue.operator.tip
    with pytest.raises(ChainReverted, match="not stale"):
        venue.settlement.freeze_stale(BOB, tip, tip, None)
    chain.advance(PARAMS.max_batch_gap_s)
    venue.settlement.freeze_stale(BOB, tip, tip, None)
    leaf, index, proof, rest = venue.leaf(ALICE)
    venue.settlement.exit(ALICE, leaf, index, proof, rest)
    assert venue.settlement.balance(ALICE) == 1_000 * USDC


def test_an_insolvent_venue_pays_exits_pro_rata(chain: Chain) -> None:
    """Alice's loss outruns her collateral and nothing liquidates her (liquidation off): the
    exit values (bankrupt Alice at 0, Bob with his whole gain) claim more than the contract
    holds, so every exit is paid floor(value x holdings / claims)."""
    venue = SettledVenue(chain, venue=config(liquidation=None))
    venue.fund(ALICE, 1_000 * USDC)
    venue.fund(BOB, 3_000 * USDC)
    venue.block()
    venue.trade(ALICE, BOB, 150)  # 15,000 USDC of BTC, long for Alice
    venue.prices["BTC"] = BTC_PRICE * 9 // 10  # -10%: Alice loses 1,500 on 1,000
    for _ in range(3):
        venue.block()
    venue.settle()
    venue.wait_final()
    final = venue.operator.last_final()
    holdings = venue.settlement.holdings()
    assert final.exit_total > holdings
    alice_leaf = venue.leaf(ALICE)[0]
    assert int.from_bytes(alice_leaf[96:128], "big", signed=True) < 0 or (
        int.from_bytes(alice_leaf[128:160], "big") == 0
    )
    chain.advance(PARAMS.max_batch_gap_s)
    venue.settlement.freeze_stale(CAROL, final, final, None)
    num, den = venue.settlement.read("haircut_num"), venue.settlement.read("haircut_den")
    assert (num, den) == (holdings, final.exit_total)
    paid = 0
    for account in (ALICE, BOB):
        leaf, index, proof, rest = venue.leaf(account)
        value = int.from_bytes(leaf[128:160], "big")
        before = venue.settlement.balance(account)
        if value:
            venue.settlement.exit(account, leaf, index, proof, rest)
        got = venue.settlement.balance(account) - before
        assert got == value * num // den
        paid += got
    assert holdings - paid < 2  # everything shared out, up to rounding (in the contract's favour)


def test_records_survive_a_round_trip_through_the_chain(chain: Chain) -> None:
    venue = traded_venue(chain)
    venue.settle()
    venue.block()
    venue.settle()
    records = venue.settlement.records()
    assert records == venue.operator.records
    assert all(isinstance(record, BatchRecord) for record in records)
    assert [r.number for r in records] == [0, 1, 2]
