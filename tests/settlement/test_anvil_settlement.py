"""Settlement on anvil only: data posted as EIP-4844 blobs and read back by a verifier, and
deposits credited only once confirmed (a reorganized deposit is never credited)."""

from __future__ import annotations

import pytest

from strikechain.engine.events import Deposited
from strikechain.engine.txs import Withdraw
from strikechain.settlement.anvil import AnvilNode
from strikechain.settlement.rpc import RpcChain
from strikechain.settlement.verifier import verify_batches
from tests.engine.venue import USDC
from tests.settlement.harness import ALICE, BOB, SettledVenue


def test_batches_posted_as_blobs_are_rebuilt_from_the_chain(anvil_node: AnvilNode) -> None:
    operator = anvil_node.accounts[1]
    chain = RpcChain(
        anvil_node.url, keys={operator.address: bytes.fromhex(operator.private_key[2:])}
    )
    assert chain.supports_blobs
    venue = SettledVenue(chain, blobs=True, operator=operator.address.lower())
    venue.fund(ALICE, 2_000 * USDC)
    venue.fund(BOB, 2_000 * USDC)
    venue.block()
    venue.trade(ALICE, BOB, 3)
    venue.block(Withdraw(account=BOB, underlying="BTC", amount=250 * USDC))
    committed = venue.settle()
    assert committed.method == "blobs"
    assert len(committed.receipts) == 1  # no calldata posting: the commit carries the blobs
    assert committed.commit.blob_versioned_hashes
    posted = venue.settlement.posted()
    assert posted[1].data == venue.operator.batches[1].data
    report = verify_batches(posted[0].record, posted[1:], venue.settlement.deposits())
    assert report.ok, report.divergence
    venue.wait_final()
    claim = venue.operator.withdrawal_claim(1)
    venue.settlement.withdraw(claim.record, claim.withdrawal, claim.index, claim.proof)
    assert venue.settlement.balance(BOB) == 250 * USDC


def test_a_reorganized_deposit_is_never_credited(anvil_node: AnvilNode) -> None:
    chain = RpcChain(anvil_node.url)
    venue = SettledVenue(chain, confirmations=3)
    venue.fund(ALICE, 1_000 * USDC)  # mint, approve, deposit: three blocks
    assert venue.settlement.deposits() != []
    assert venue.operator.relay() == []  # not confirmed yet
    anvil_node.reorg(2)  # the approve and the deposit blocks are replaced by empty ones
    assert venue.settlement.deposits() == []
    anvil_node.mine(5)
    assert venue.operator.relay() == []
    venue.fund(ALICE, 400 * USDC)
    anvil_node.mine(3)
    result = venue.block()
    credited = [e for e in result.events if isinstance(e, Deposited)]
    assert [(e.deposit_id, e.amount) for e in credited] == [(1, 400 * USDC)]
    assert venue.engine.get_ledger(ALICE, "BTC").cash == 400 * USDC  # type: ignore[union-attr]
    venue.block()
    assert venue.engine.deposits_total == 400 * USDC


@pytest.mark.parametrize("blobs", [False])
def test_gas_of_a_commit_and_a_withdrawal_on_anvil(anvil_node: AnvilNode, blobs: bool) -> None:
    """The published numbers come from here (bench settlement); this pins their order."""
    venue = SettledVenue(RpcChain(anvil_node.url), blobs=blobs)
    venue.fund(ALICE, 1_000 * USDC)
    venue.block()
    venue.block(Withdraw(account=ALICE, underlying="BTC", amount=100 * USDC))
    committed = venue.settle()
    assert committed.commit.execution_gas <= 100_000
    venue.wait_final()
    claim = venue.operator.withdrawal_claim(1)
    receipt = venue.settlement.withdraw(claim.record, claim.withdrawal, claim.index, claim.proof)
    assert receipt.gas_used <= 120_000
