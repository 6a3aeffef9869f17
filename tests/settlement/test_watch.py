"""The verifier daemon on the embedded chain: honest batches pass, a lying batch is vetoed inside
its window and the venue carries on, a lie found after its window is reported (never raised);
and a verifier that knows only the contract's address rebuilds the deployment from the chain."""

from __future__ import annotations

import msgspec
import pytest

from strikechain.engine.genesis import Genesis, encode_genesis
from strikechain.engine.txs import Withdraw
from strikechain.settlement.batcher import ClosedBatch
from strikechain.settlement.client import AttachError, Committed, Settlement, attach
from strikechain.settlement.embedded import BoaChain
from strikechain.settlement.watch import Watcher
from tests.engine.venue import USDC, config
from tests.settlement.harness import ALICE, BOB, PARAMS, VERIFIER, SettledVenue


def registered_venue() -> SettledVenue:
    """A venue with VERIFIER active and one honest, final batch."""
    venue = SettledVenue(BoaChain())
    venue.settlement.propose_verifier(VERIFIER)
    venue.chain.advance(PARAMS.verifier_timelock_s)
    venue.settlement.activate_verifier(VERIFIER, VERIFIER)
    venue.fund(ALICE, 5_000 * USDC)
    venue.block()
    venue.settle()
    venue.wait_final()
    return venue


def commit_a_lie(venue: SettledVenue) -> tuple[Committed, ClosedBatch]:
    """Close the open batch, commit it with a state root nobody can reproduce (the operator
    keeps the honest batch, to re-commit after a veto)."""
    sink, venue.batcher.sink = venue.batcher.sink, lambda batch: None
    batch = venue.batcher.close()
    venue.batcher.sink = sink
    assert batch is not None
    lie = msgspec.structs.replace(batch.record, state_root=b"\x66" * 32)
    bad = venue.settlement.commit(venue.operator.tip, lie, batch.data)
    venue.operator.records.append(bad.record)
    venue.operator.batches[bad.record.number] = batch
    return bad, batch


def test_honest_batches_pass_and_an_unchanged_tip_is_not_verified_again() -> None:
    venue = registered_venue()
    watcher = Watcher(venue.settlement, VERIFIER)
    report = watcher.poll()
    assert (report.ok, report.tip, report.batches, report.last_verified) == (True, 1, 1, 1)
    assert report.fresh
    assert report.vetoed is None
    assert report.divergence is None
    assert report.last_root == venue.operator.tip.state_root
    again = watcher.poll()
    assert not again.fresh
    assert again.ok
    assert again.batches == 0
    assert again.last_verified == 1
    venue.block(Withdraw(account=ALICE, underlying="BTC", amount=100 * USDC))
    venue.settle()
    report = watcher.poll()
    assert report.fresh
    assert report.ok
    assert report.tip == 2
    assert report.batches == 2


def test_a_lie_is_vetoed_inside_its_window_and_the_honest_batch_follows() -> None:
    venue = registered_venue()
    venue.block(Withdraw(account=ALICE, underlying="BTC", amount=700 * USDC))
    bad, batch = commit_a_lie(venue)
    # An address the governor never registered cannot veto: said plainly, tried again later.
    refused = Watcher(venue.settlement, BOB).poll()
    assert refused.divergence is not None
    assert refused.divergence.batch == 2
    assert refused.vetoed is None
    assert refused.veto_error == "not verifier"
    watcher = Watcher(venue.settlement, VERIFIER)
    report = watcher.poll()
    assert not report.ok
    assert not report.final
    assert report.divergence is not None
    assert (report.divergence.batch, report.divergence.field) == (2, "state_root")
    assert report.divergence.committed == bad.record.state_root.hex()
    assert (report.vetoed, report.reverted_to, report.last_verified) == (2, 1, 1)
    assert venue.settlement.read("batch_count") == 1
    assert venue.operator.resync() == [bad.record]
    good = venue.operator.on_batch(batch)
    assert good.record.number == 2
    report = watcher.poll()
    assert report.fresh
    assert report.ok
    assert report.tip == 2
    assert report.vetoed is None
    assert report.last_root == batch.record.state_root


def test_a_lie_found_after_its_window_is_reported_not_raised() -> None:
    venue = registered_venue()
    venue.block()
    bad, _ = commit_a_lie(venue)
    venue.wait_final()
    watcher = Watcher(venue.settlement, VERIFIER)
    report = watcher.poll()
    assert report.divergence is not None
    assert report.divergence.batch == 2
    assert report.final
    assert report.vetoed is None
    assert not report.veto_error
    assert venue.settlement.read("batch_count") == 2  # nothing could undo it
    again = watcher.poll()
    assert not again.fresh
    assert again.final
    assert again.divergence == report.divergence
    assert venue.operator.tip == bad.record


def test_a_posted_genesis_other_than_the_deployed_one_is_reported_not_vetoed() -> None:
    venue = SettledVenue(BoaChain())
    venue.batcher.genesis = encode_genesis(Genesis(venue=config(liquidation=None)))
    venue.fund(ALICE, 1_000 * USDC)
    venue.block()
    venue.settle()
    report = Watcher(venue.settlement, VERIFIER).poll()
    assert report.divergence is not None
    assert (report.divergence.batch, report.divergence.field) == (0, "state_root")
    assert report.final
    assert report.vetoed is None
    assert not report.veto_error
    with pytest.raises(AttachError, match="GENESIS_MISMATCH"):
        attach(venue.chain, venue.deployment.settlement)


def test_attach_rebuilds_the_deployment_from_the_address_alone() -> None:
    venue = SettledVenue(BoaChain())
    with pytest.raises(AttachError, match="GENESIS_UNKNOWN"):
        attach(venue.chain, venue.deployment.settlement)
    venue.fund(ALICE, 1_000 * USDC)
    venue.block()
    venue.settle()
    deployment = attach(venue.chain, venue.deployment.settlement.upper().replace("0X", "0x"))
    assert deployment == msgspec.structs.replace(venue.deployment, block=0)
    stranger = Settlement(venue.chain, deployment)
    assert stranger.records() == venue.operator.records
    report = Watcher(stranger, VERIFIER).poll()
    assert report.ok
    assert report.tip == 1


def test_run_polls_until_told_to_stop() -> None:
    venue = registered_venue()
    seen: list[bool] = []
    last = Watcher(venue.settlement, VERIFIER).run(
        0, on_report=lambda r: seen.append(r.fresh), polls=3
    )
    assert last is not None
    assert last.ok
    assert seen == [True, False, False]
