"""The verifier daemon on the embedded chain: honest batches pass, a lying batch is vetoed inside
its window and the venue carries on, a lie found after its window is reported (never raised);
and a verifier that knows only the contract's address rebuilds the deployment from the chain."""

from __future__ import annotations

import msgspec
import pytest

from strikechain.engine.txs import Withdraw
from strikechain.settlement.client import AttachError, Committed, Settlement, attach
from strikechain.settlement.embedded import BoaChain
from strikechain.settlement.watch import Watcher
from tests.engine.venue import USDC
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


def commit_a_lie(venue: SettledVenue) -> tuple[Committed, object]:
    """Close the open batch, commit it with a state root nobody can reproduce."""
    venue.batcher.sink = lambda batch: None
    batch = venue.batcher.close()
    assert batch is not None
    lie = msgspec.structs.replace(batch.record, state_root=b"\x66" * 32)
    bad = venue.settlement.commit(venue.operator.tip, lie, batch.data)
    venue.operator.records.append(bad.record)
    venue.operator.batches[bad.record.number] = batch
    venue.batcher.sink = venue._commit
    return bad, batch


def test_honest_batches_pass_and_an_unchanged_tip_is_not_verified_again() -> None:
    venue = registered_venue()
    watcher = Watcher(venue.settlement, VERIFIER)
    report = watcher.poll()
    assert (report.ok, report.tip, report.batches, report.last_verified) == (True, 1, 1, 1)
    assert report.fresh and report.vetoed is None and report.divergence is None
    assert report.last_root == venue.operator.tip.state_root
    again = watcher.poll()
    assert not again.fresh and again.ok and again.batches == 0 and again.last_verified == 1
    venue.block(Withdraw(account=ALICE, underlying="BTC", amount=100 * USDC))
    venue.settle()
    report = watcher.poll()
    assert report.fresh and report.ok and report.tip == 2 and report.batches == 2


def test_a_lie_is_vetoed_inside_its_window_and_the_honest_batch_follows() -> None:
    venue = registered_venue()
    venue.block(Withdraw(account=ALICE, underlying="BTC", amount=700 * USDC))
    bad, batch = commit_a_lie(venue)
    # An address the governor never registered cannot veto: said plainly, tried again later.
    refused = Watcher(venue.settlement, BOB).poll()
    assert refused.divergence is not None and refused.divergence.batch == 2
    assert refused.vetoed is None and refused.veto_error == "not verifier"
    watcher = Watcher(venue.settlement, VERIFIER)
    report = watcher.poll()
    assert not report.ok and not report.final
    assert report.divergence is not None
    assert (report.divergence.batch, report.divergence.field) == (2, "state_root")
    assert report.divergence.committed == bad.record.state_root.hex()
    assert (report.vetoed, report.reverted_to, report.last_verified) == (2, 1, 1)
    assert venue.settlement.read("batch_count") == 1
    assert venue.operator.resync() == [bad.record]
    good = venue.operator.on_batch(batch)  # type: ignore[arg-type]
    assert good.record.number == 2
    report = watcher.poll()
    assert report.fresh and report.ok and report.tip == 2 and report.vetoed is None
    assert report.last_root == batch.record.state_root  # type: ignore[attr-defined]


def test_a_lie_found_after_its_window_is_reported_not_raised() -> None:
    venue = registered_venue()
    venue.block()
    bad, _ = commit_a_lie(venue)
    venue.wait_final()
    watcher = Watcher(venue.settlement, VERIFIER)
    report = watcher.poll()
    assert report.divergence is not None and report.divergence.batch == 2
    assert report.final and report.vetoed is None and not report.veto_error
    assert venue.settlement.read("batch_count") == 2  # nothing could undo it
    again = watcher.poll()
    assert not again.fresh and again.final and again.divergence == report.divergence
    assert venue.operator.tip == bad.record


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
    assert report.ok and report.tip == 1


def test_run_polls_until_told_to_stop() -> None:
    venue = registered_venue()
    seen: list[bool] = []
    last = Watcher(venue.settlement, VERIFIER).run(
        0, on_report=lambda r: seen.append(r.fresh), polls=3
    )
    assert last is not None and last.ok
    assert seen == [True, False, False]
