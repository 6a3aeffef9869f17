"""The embedded chain's journal: a chain reopened on its journal is the same chain."""

from __future__ import annotations

from pathlib import Path

from strikechain.settlement.client import Settlement, deploy
from strikechain.settlement.embedded import BoaChain
from strikechain.settlement.records import genesis_record

ALICE = "0x" + "a1" * 20
OPERATOR = "0x" + "0e" * 20


def test_a_journaled_chain_reopens_with_the_same_state(tmp_path: Path) -> None:
    journal = tmp_path / "chain.journal"
    chain = BoaChain(timestamp=1_800_000_000, journal=journal)
    deployment = deploy(
        chain, operator=OPERATOR, governor=OPERATOR, genesis=genesis_record(b"\x01" * 32, 0, 0)
    )
    settlement = Settlement(chain, deployment)
    settlement.mint(ALICE, 500)
    settlement.deposit(ALICE, "BTC", 200)
    chain.advance(60, 5)
    before = (chain.timestamp(), chain.block_number(), chain.logs(deployment.settlement))
    chain.close()
    with journal.open("ab") as file:  # a record cut short by a crash
        file.write(b"\x00\x00\x01\x00partial")
    again = BoaChain(timestamp=0, journal=journal)  # the journal's clock wins
    reopened = Settlement(again, deployment)
    assert (again.timestamp(), again.block_number(), again.logs(deployment.settlement)) == before
    assert reopened.balance(ALICE) == 300
    assert reopened.holdings() == 200
    reopened.deposit(ALICE, "BTC", 100)  # it goes on from there
    assert [d.index for d in reopened.deposits()] == [1, 2]
    again.close()
    third = BoaChain(journal=journal)
    assert [d.amount for d in Settlement(third, deployment).deposits()] == [200, 100]
    third.close()
