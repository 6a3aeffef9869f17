"""The embedded chain's journal: a chain reopened on its journal is the same chain."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest

from strikechain.settlement.client import Settlement, deploy
from strikechain.settlement.embedded import BoaChain, ChainProcess, ChainUnavailable
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


class SlowChain(BoaChain):
    """A journaled chain whose clock reads hang while a flag file exists (a chain that stops
    answering)."""

    def __init__(self, journal: str, flag: str) -> None:
        super().__init__(timestamp=1_800_000_000, journal=journal)
        self.flag = Path(flag)

    def timestamp(self) -> int:
        while self.flag.exists():
            time.sleep(0.05)
        return super().timestamp()


def test_a_chain_process_that_stops_answering_is_restarted_from_its_journal(
    tmp_path: Path,
) -> None:
    journal, flag = tmp_path / "chain.journal", tmp_path / "hang"
    factory = functools.partial(SlowChain, str(journal), str(flag))
    chain = ChainProcess(factory, timeout_s=1.0)
    try:
        chain.advance(100, 3)
        assert chain.timestamp() == 1_800_000_100
        flag.touch()
        with pytest.raises(ChainUnavailable, match="did not answer timestamp"):
            chain.timestamp()
        flag.unlink()
        assert chain.timestamp() == 1_800_000_100  # a new child, the same chain
        assert chain.block_number() == 3
    finally:
        chain.close()
