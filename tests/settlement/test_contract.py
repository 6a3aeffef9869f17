"""The settlement contract and its test token, run in titanoboa's in-process EVM.

Python builds every record, hash, withdrawal tree and state-tree proof (contract_helpers and
strikechain.engine), so each accepted call also checks that both sides encode byte for byte.

Every revert reason of both contracts is asserted at least once (test_every_reason_is_tested
checks that each one appears in this file):

Settlement
- __init__: "zero token", "zero operator", "zero governor"
- set_operator: "not governor", "zero operator"
- propose_verifier: "not governor", "zero verifier", "already verifier"
- activate_verifier: "not proposed", "timelock"
- remove_verifier: "not governor", "unknown verifier"
- deposit: "frozen", "zero amount", "transfer failed" (a token returning False)
- request_forced_withdrawal: "frozen", "zero amount"
- post_data: "frozen", "not operator", "empty chunk"
- commit_batch: "frozen", "not operator", "prev mismatch", "number not zero",
  "committed_at not zero", "reserved not zero", "prev root", "first block", "block range",
  "timestamp order", "timestamp range", "timestamp drift", "deposit index low",
  "deposit index high", "deposited total", "forced index low", "forced index high",
  "withdrawn total", "data mismatch", "blob count", "pending data", "missing blob",
  "blob mismatch"
- veto: "frozen", "not verifier", "bad last final", "bad pending", "last not final",
  "pending final", "veto range"
- withdraw: "bad batch", "not final", "not yours", "claimed", "bad index", "bad proof"
- freeze_forced: "frozen", "bad request", "too early", "bad tip", "served", then the freeze's
  "bad last final", "last not final", "bad next", "next final"
- freeze_stale: "frozen", "bad tip", "not stale" (and the freeze's checks, shared)
- exit: "not frozen", "leaf size", "leaf offset", "leaf account", "not yours", "bad index",
  "exited", "bad proof"
- refund: "not frozen", "consumed", "bad deposit", "refunded"
- payouts (withdraw, exit, refund share one internal _pay): "transfer failed"
TestUSDC
- transfer / transferFrom / mint: "zero receiver", "insufficient balance",
  "insufficient allowance", "supply overflow"

Blobs: titanoboa sends no blob transactions and its transaction context raises on BLOBHASH, so
the blob tests swap in a context that returns chosen versioned hashes (what py-evm's Cancun
context does for a real type-3 transaction). A real blob-carrying commit is left to anvil.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boa
import boa.interpret
import pytest
from eth.vm.transaction_context import BaseTransactionContext

from strikechain.engine.commitment import LedgerTree
from tests.settlement.contract_helpers import (
    SETTLEMENT_PATH,
    TOKEN_PATH,
    ZERO32,
    ZERO_ADDRESS,
    ZERO_BATCH,
    Batch,
    Chain,
    LedgerLeaf,
    StateTree,
    Withdrawal,
    WithdrawalTree,
    accumulate,
    address_of,
    blob_data_hash,
    deposit_hash,
    forced_hash,
    genesis_record,
    golden_state_root,
    keccak,
    name32,
    word,
)

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "leaf_vectors.json"

T0 = 1_800_000_000
CHALLENGE = 1_000
TIMELOCK = 5_000
FORCED = 3_000
GAP = 10_000
DRIFT_NS = 5 * 10**9
GENESIS_HEIGHT = 100
GENESIS_TIMESTAMP_NS = (T0 - 1) * 10**9
GENESIS_STATE = StateTree([])
GENESIS = genesis_record(GENESIS_STATE.root, GENESIS_HEIGHT, GENESIS_TIMESTAMP_NS)

OPERATOR = "0x" + "11" * 20
GOVERNOR = "0x" + "22" * 20
VERIFIER = "0x" + "33" * 20
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
CAROL = "0x" + "c0" * 20
USERS = (ALICE, BOB, CAROL)
FUNDS = 10**12
MAX_UINT = 2**256 - 1
USDC = name32("USDC")

BAD_TOKEN = """
#pragma version 0.4.3
#pragma evm-version cancun
pull_ok: public(bool)

@external
def set_pull_ok(flag: bool):
    self.pull_ok = flag

@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    return self.pull_ok

@external
def transfer(receiver: address, amount: uint256) -> bool:
    return False

@view
@external
def balanceOf(owner: address) -> uint256:
    return 0
"""


def constructor_args(token: str, genesis: Batch = GENESIS) -> tuple[Any, ...]:
    return (
        token,
        OPERATOR,
        GOVERNOR,
        CHALLENGE,
        TIMELOCK,
        FORCED,
        GAP,
        DRIFT_NS,
        genesis.state_root,
        genesis.last_block,
        genesis.last_timestamp_ns,
    )


def events(contract: Any, name: str) -> list[Any]:
    return [event for event in contract.get_logs() if type(event).__name__ == name]


def only_event(contract: Any, name: str) -> Any:
    (event,) = events(contract, name)
    return event


# --- fixtures -----------------------------------------------------------------------------------


@dataclass
class World:
    token_deployer: Any
    settlement_deployer: Any
    token: Any
    settlement: Any


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # titanoboa 0.2.8 only computes a contract's source map on its disk-cache path (calls fail
    # with the cache disabled), so the cache is pointed at a fresh temporary folder instead.
    previous = boa.interpret._disk_cache
    boa.interpret.set_cache_dir(str(tmp_path_factory.mktemp("titanoboa-cache")))
    try:
        token_deployer = boa.load_partial(str(TOKEN_PATH))
        settlement_deployer = boa.load_partial(str(SETTLEMENT_PATH))
        with boa.env.anchor():
            boa.env.timestamp = T0
            token = token_deployer.deploy()
            settlement = settlement_deployer.deploy(*constructor_args(token.address))
            for user in USERS:
                token.mint(user, FUNDS)
                token.approve(settlement.address, MAX_UINT, sender=user)
            yield World(token_deployer, settlement_deployer, token, settlement)
    finally:
        boa.interpret._disk_cache = previous


@dataclass
class Harness:
    """The shared deployment seen through a fresh Python chain of records."""

    world: World
    chain: Chain
    committed: Any = None
    """The last commit's BatchCommitted event."""

    @property
    def token(self) -> Any:
        return self.world.token

    @property
    def s(self) -> Any:
        return self.world.settlement

    def commit(self, header: Batch | None = None, blob_count: int = 0, **changes: Any) -> Batch:
        if header is None:
            header = self.chain.header(**changes)
        self.s.commit_batch(self.chain.tip, header, blob_count, sender=OPERATOR)
        record = self.chain.accept(header, boa.env.timestamp)
        event = self.committed = only_event(self.s, "BatchCommitted")
        assert event.record_hash == record.record_hash()
        assert self.s.batch_hashes(record.number) == record.record_hash()
        assert self.s.batch_count() == record.number
        return record

    # The helpers read views before a call, never after: get_logs() reads the last call's.
    def deposit(self, depositor: str, amount: int, beneficiary: str | None = None) -> int:
        index = int(self.s.deposit_count()) + 1
        self.s.deposit(beneficiary or depositor, USDC, amount, sender=depositor)
        return index

    def request_forced(self, account: str, amount: int) -> tuple[int, int]:
        index = int(self.s.forced_count()) + 1
        self.s.request_forced_withdrawal(USDC, amount, sender=account)
        return index, boa.env.timestamp

    def post(self, *chunks: bytes) -> bytes:
        accumulator = self.s.data_accumulator()
        for chunk in chunks:
            self.s.post_data(chunk, sender=OPERATOR)
            accumulator = accumulate(accumulator, chunk)
        assert self.s.data_accumulator() == accumulator
        return accumulator

    def make_verifier(self) -> None:
        self.s.propose_verifier(VERIFIER, sender=GOVERNOR)
        boa.env.time_travel(seconds=TIMELOCK)
        self.s.activate_verifier(VERIFIER)

    def balance(self, who: str) -> int:
        return int(self.token.balanceOf(who))


@pytest.fixture
def h(world: World) -> Any:
    with boa.env.anchor():
        yield Harness(world, Chain([GENESIS], time_span_ns=1_000))


@pytest.fixture
def blobs(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The versioned hashes BLOBHASH sees while the test runs (empty: no blobs)."""
    carried: list[bytes] = []
    monkeypatch.setattr(
        BaseTransactionContext, "blob_versioned_hashes", property(lambda _self: list(carried))
    )
    return carried


# --- TestUSDC -----------------------------------------------------------------------------------


def test_token_metadata_mint_and_transfers(h: Harness) -> None:
    token = h.token
    assert (token.name(), token.symbol(), token.decimals()) == ("Test USD Coin", "tUSDC", 6)
    supply = token.totalSupply()
    token.mint(CAROL, 5, sender=BOB)
    mint = only_event(token, "Transfer")
    assert (address_of(mint.sender), address_of(mint.receiver), mint.value) == (
        ZERO_ADDRESS,
        CAROL,
        5,
    )
    assert token.totalSupply() == supply + 5
    assert token.transfer(BOB, 7, sender=CAROL)
    assert (h.balance(BOB), h.balance(CAROL)) == (FUNDS + 7, FUNDS - 2)
    assert token.approve(ALICE, 10, sender=BOB)
    approval = only_event(token, "Approval")
    assert (address_of(approval.owner), address_of(approval.spender), approval.value) == (
        BOB,
        ALICE,
        10,
    )
    assert token.transferFrom(BOB, CAROL, 4, sender=ALICE)
    assert token.allowance(BOB, ALICE) == 6
    # an allowance of max_value is unlimited and stays so
    assert token.allowance(ALICE, h.s.address) == MAX_UINT
    token.transferFrom(ALICE, BOB, 1, sender=h.s.address)
    assert token.allowance(ALICE, h.s.address) == MAX_UINT


def test_token_reverts(h: Harness) -> None:
    token = h.token
    with boa.reverts("insufficient balance"):
        token.transfer(BOB, FUNDS + 1, sender=ALICE)
    with boa.reverts("zero receiver"):
        token.transfer(ZERO_ADDRESS, 1, sender=ALICE)
    with boa.reverts("insufficient allowance"):
        token.transferFrom(ALICE, BOB, 1, sender=BOB)
    token.approve(BOB, FUNDS + 5, sender=ALICE)
    with boa.reverts("insufficient balance"):
        token.transferFrom(ALICE, BOB, FUNDS + 1, sender=BOB)
    with boa.reverts("zero receiver"):
        token.mint(ZERO_ADDRESS, 1)
    with boa.reverts("supply overflow"):
        token.mint(ALICE, MAX_UINT - token.totalSupply() + 1)
    token.mint(ALICE, MAX_UINT - token.totalSupply())
    assert token.totalSupply() == MAX_UINT


# --- construction and roles ---------------------------------------------------------------------


def test_constructor_stores_genesis_and_parameters(h: Harness) -> None:
    s = h.s
    assert s.batch_count() == 0
    assert s.batch_hashes(0) == GENESIS.record_hash()
    assert s.record_hash(GENESIS) == GENESIS.record_hash()
    assert s.is_final(GENESIS)
    assert address_of(s.token()) == address_of(h.token.address)
    assert (address_of(s.operator()), address_of(s.governor())) == (OPERATOR, GOVERNOR)
    assert (s.challenge_window(), s.verifier_timelock(), s.forced_window()) == (
        CHALLENGE,
        TIMELOCK,
        FORCED,
    )
    assert (s.max_batch_gap(), s.max_drift_ns(), s.deployed_at()) == (GAP, DRIFT_NS, T0)
    assert (s.haircut_num(), s.haircut_den(), s.frozen()) == (1, 1, False)
    # the record hash is keccak of the 16 words, whatever their values
    odd = Batch(
        *(keccak(bytes([i])) if isinstance(v, bytes) else i**40 for i, v in enumerate(GENESIS))
    )
    assert s.record_hash(odd) == keccak(b"".join(word(v) for v in odd)) == odd.record_hash()


@pytest.mark.parametrize(
    ("position", "reason"), [(0, "zero token"), (1, "zero operator"), (2, "zero governor")]
)
def test_constructor_rejects_zero_addresses(h: Harness, position: int, reason: str) -> None:
    args = list(constructor_args(h.token.address))
    args[position] = ZERO_ADDRESS
    with boa.reverts(reason):
        h.world.settlement_deployer.deploy(*args)


def test_governor_changes_operator(h: Harness) -> None:
    with boa.reverts("not governor"):
        h.s.set_operator(ALICE, sender=OPERATOR)
    with boa.reverts("zero operator"):
        h.s.set_operator(ZERO_ADDRESS, sender=GOVERNOR)
    h.s.set_operator(BOB, sender=GOVERNOR)
    event = only_event(h.s, "OperatorChanged")
    assert (address_of(event.previous), address_of(event.operator)) == (OPERATOR, BOB)
    with boa.reverts("not operator"):
        h.s.commit_batch(GENESIS, h.chain.header(), 0, sender=OPERATOR)
    h.s.commit_batch(GENESIS, h.chain.header(), 0, sender=BOB)
    assert h.s.batch_count() == 1


def test_verifier_registration_is_timelocked(h: Harness) -> None:
    s = h.s
    with boa.reverts("not governor"):
        s.propose_verifier(VERIFIER, sender=VERIFIER)
    with boa.reverts("zero verifier"):
        s.propose_verifier(ZERO_ADDRESS, sender=GOVERNOR)
    with boa.reverts("not proposed"):
        s.activate_verifier(VERIFIER)
    s.propose_verifier(VERIFIER, sender=GOVERNOR)
    ready_at = T0 + TIMELOCK
    assert only_event(s, "VerifierProposed").ready_at == ready_at == s.verifier_ready_at(VERIFIER)
    boa.env.time_travel(seconds=TIMELOCK - 1)
    with boa.reverts("timelock"):
        s.activate_verifier(VERIFIER)
    boa.env.time_travel(seconds=1)
    s.activate_verifier(VERIFIER, sender=ALICE)  # anyone activates once the timelock is over
    assert address_of(only_event(s, "VerifierActivated").verifier) == VERIFIER
    assert s.is_verifier(VERIFIER)
    with boa.reverts("not proposed"):
        s.activate_verifier(VERIFIER)
    with boa.reverts("already verifier"):
        s.propose_verifier(VERIFIER, sender=GOVERNOR)
    with boa.reverts("not governor"):
        s.remove_verifier(VERIFIER, sender=ALICE)
    s.remove_verifier(VERIFIER, sender=GOVERNOR)
    assert address_of(only_event(s, "VerifierRemoved").verifier) == VERIFIER
    assert not s.is_verifier(VERIFIER)
    with boa.reverts("unknown verifier"):
        s.remove_verifier(VERIFIER, sender=GOVERNOR)
    # removing also cancels a proposal that is still in its timelock
    s.propose_verifier(BOB, sender=GOVERNOR)
    s.remove_verifier(BOB, sender=GOVERNOR)
    boa.env.time_travel(seconds=TIMELOCK)
    with boa.reverts("not proposed"):
        s.activate_verifier(BOB)


# --- deposits, forced requests, data ------------------------------------------------------------


def test_deposits_are_numbered_hashed_and_logged(h: Harness) -> None:
    s = h.s
    held = h.balance(s.address)
    s.deposit(CAROL, USDC, 250, sender=ALICE)
    event = only_event(s, "Deposited")
    assert (event.index, address_of(event.depositor), address_of(event.beneficiary)) == (
        1,
        ALICE,
        CAROL,
    )
    assert (event.underlying, event.amount) == (USDC, 250)
    transfer = only_event(s, "Transfer")
    assert (address_of(transfer.sender), address_of(transfer.receiver), transfer.value) == (
        ALICE,
        address_of(s.address),
        250,
    )
    assert h.deposit(BOB, 40) == 2
    assert s.deposit_count() == 2
    assert s.deposit_total() == 290
    assert [s.deposit_totals(i) for i in range(3)] == [0, 250, 290]
    assert s.deposit_hashes(1) == deposit_hash(1, ALICE, CAROL, USDC, 250)
    assert s.deposit_hashes(2) == deposit_hash(2, BOB, BOB, USDC, 40)
    assert h.balance(s.address) == held + 290
    assert h.balance(ALICE) == FUNDS - 250
    with boa.reverts("zero amount"):
        s.deposit(ALICE, USDC, 0, sender=ALICE)
    h.token.approve(s.address, 0, sender=BOB)
    with boa.reverts("insufficient allowance"):
        s.deposit(BOB, USDC, 1, sender=BOB)


def test_forced_requests_are_numbered_hashed_and_logged(h: Harness) -> None:
    s = h.s
    boa.env.time_travel(seconds=7)
    assert h.request_forced(BOB, 33) == (1, T0 + 7)
    event = only_event(s, "ForcedWithdrawalRequested")
    assert (event.index, address_of(event.account), event.underlying) == (1, BOB, USDC)
    assert (event.amount, event.requested_at) == (33, T0 + 7)
    assert s.forced_hashes(1) == forced_hash(1, BOB, USDC, 33, T0 + 7)
    assert h.request_forced(ALICE, 1)[0] == 2 == s.forced_count()
    with boa.reverts("zero amount"):
        s.request_forced_withdrawal(USDC, 0, sender=ALICE)


def test_post_data_accumulates_and_a_commit_consumes_it(h: Harness) -> None:
    s = h.s
    chunks = (b"\x01" * 100, bytes(range(256)) * 3, b"tail")
    accumulator = h.post(*chunks)
    assert s.data_chunks() == 3
    s.post_data(b"more", sender=OPERATOR)
    posted = only_event(s, "DataPosted")
    accumulator = accumulate(accumulator, b"more")
    assert (posted.accumulator, posted.chunk_hash, posted.length) == (
        accumulator,
        keccak(b"more"),
        4,
    )
    with boa.reverts("data mismatch"):
        h.commit(data_hash=ZERO32)
    record = h.commit(data_hash=accumulator)
    assert h.committed.data_hash == accumulator == record.data_hash
    assert (s.data_accumulator(), s.data_chunks()) == (ZERO32, 0)
    # the next batch posted nothing: its data hash is zero
    with boa.reverts("data mismatch"):
        h.commit(data_hash=accumulator)
    h.commit()
    big = bytes(range(256)) * 468 + b"x" * 192  # 120000 bytes, the largest chunk
    assert len(big) == 120_000
    assert h.post(big) == accumulate(ZERO32, big)


def test_post_data_rejections(h: Harness) -> None:
    with boa.reverts("not operator"):
        h.s.post_data(b"x", sender=ALICE)
    with boa.reverts("empty chunk"):
        h.s.post_data(b"", sender=OPERATOR)


def test_a_token_that_returns_false_fails_transfers(h: Harness) -> None:
    bad = boa.loads(BAD_TOKEN)
    s = h.world.settlement_deployer.deploy(*constructor_args(bad.address))
    with boa.reverts("transfer failed"):
        s.deposit(ALICE, USDC, 5, sender=ALICE)
    bad.set_pull_ok(True)
    s.deposit(ALICE, USDC, 5, sender=ALICE)
    boa.env.time_travel(seconds=GAP)
    s.freeze_stale(GENESIS, GENESIS, ZERO_BATCH)
    with boa.reverts("transfer failed"):
        s.refund(1, ALICE, ALICE, USDC, 5)


# --- commits ------------------------------------------------------------------------------------


def test_commits_chain_records(h: Harness) -> None:
    s = h.s
    h.deposit(ALICE, 100)
    h.deposit(BOB, 50)
    h.request_forced(ALICE, 10)
    first = h.commit(deposit_index=1, deposited_total=100)
    assert first.number == 1
    assert first.committed_at == T0 == s.last_commit_at()
    event = h.committed
    assert (event.number, event.state_root, event.withdrawal_root) == (
        1,
        first.state_root,
        first.withdrawal_root,
    )
    assert (event.data_hash, event.committed_at) == (ZERO32, T0)
    boa.env.time_travel(seconds=60)
    second = h.commit(deposit_index=2, deposited_total=150, forced_index=1, withdrawn_total=9)
    assert second.prev_root == first.state_root
    assert second.first_block == first.last_block + 1
    assert (second.number, second.committed_at, s.last_commit_at()) == (2, T0 + 60, T0 + 60)
    # a batch may be a single block and keep the previous timestamp
    tip = h.chain.tip
    third = h.commit(
        last_block=tip.last_block + 1,
        first_timestamp_ns=tip.last_timestamp_ns,
        last_timestamp_ns=tip.last_timestamp_ns,
    )
    assert third.first_block == third.last_block
    assert [s.batch_hashes(n) for n in range(4)] == [r.record_hash() for r in h.chain.records]


def test_commit_timestamp_drift_bound_is_inclusive(h: Harness) -> None:
    bound = boa.env.timestamp * 10**9 + DRIFT_NS
    with boa.reverts("timestamp drift"):
        h.commit(last_timestamp_ns=bound + 1)
    h.commit(last_timestamp_ns=bound)


def _prepared(h: Harness) -> None:
    """A tip that consumed deposit 1 of 2, served forced request 1 of 2, withdrew 7."""
    h.deposit(ALICE, 100)
    h.deposit(BOB, 50)
    h.request_forced(ALICE, 10)
    h.request_forced(BOB, 20)
    h.commit(deposit_index=1, deposited_total=100, forced_index=1, withdrawn_total=7)


Case = Callable[[Chain], tuple[Batch, Batch, int, str]]


def _with(**changes: Any) -> Case:
    return lambda chain: (chain.tip, chain.header(**changes), 0, OPERATOR)


def _relative(make: Callable[[Batch], dict[str, Any]]) -> Case:
    return lambda chain: (chain.tip, chain.header(**make(chain.tip)), 0, OPERATOR)


COMMIT_REJECTIONS: list[tuple[str, Case]] = [
    ("not operator", lambda chain: (chain.tip, chain.header(), 0, ALICE)),
    (
        "prev mismatch",
        lambda chain: (chain.tip._replace(exit_total=1), chain.header(), 0, OPERATOR),
    ),
    ("prev mismatch", lambda chain: (chain.records[0], chain.header(), 0, OPERATOR)),
    ("number not zero", _with(number=2)),
    ("committed_at not zero", _with(committed_at=T0)),
    ("reserved not zero", _with(reserved=1)),
    ("prev root", _with(prev_root=keccak(b"elsewhere"))),
    ("first block", _relative(lambda tip: {"first_block": tip.last_block + 2})),
    ("first block", _relative(lambda tip: {"first_block": tip.last_block})),
    ("block range", _relative(lambda tip: {"last_block": tip.last_block})),
    ("timestamp order", _relative(lambda tip: {"first_timestamp_ns": tip.last_timestamp_ns - 1})),
    ("timestamp range", _relative(lambda tip: {"last_timestamp_ns": tip.last_timestamp_ns})),
    ("timestamp drift", _with(last_timestamp_ns=T0 * 10**9 + DRIFT_NS + 1)),
    ("deposit index low", _with(deposit_index=0, deposited_total=0)),
    ("deposit index high", _with(deposit_index=3, deposited_total=150)),
    ("deposited total", _with(deposit_index=2, deposited_total=149)),
    ("deposited total", _with(deposit_index=1, deposited_total=101)),
    ("forced index low", _with(forced_index=0)),
    ("forced index high", _with(forced_index=3)),
    ("withdrawn total", _with(withdrawn_total=6)),
    ("data mismatch", _with(data_hash=keccak(b"never posted"))),
    ("blob count", lambda chain: (chain.tip, chain.header(), 7, OPERATOR)),
]


@pytest.mark.parametrize(
    ("reason", "case"),
    COMMIT_REJECTIONS,
    ids=[f"{i}-{r}" for i, (r, _) in enumerate(COMMIT_REJECTIONS)],
)
def test_commit_rejections(h: Harness, reason: str, case: Case) -> None:
    _prepared(h)
    prev, header, blob_count, sender = case(h.chain)
    with boa.reverts(reason):
        h.s.commit_batch(prev, header, blob_count, sender=sender)
    # the same tip still takes a valid header, including every deposit and request
    h.commit(deposit_index=2, deposited_total=150, forced_index=2)


# --- blobs --------------------------------------------------------------------------------------


def test_blob_commits(h: Harness, blobs: list[bytes]) -> None:
    versioned = [b"\x01" + keccak(bytes([i]))[1:] for i in range(3)]
    with boa.reverts("missing blob"):
        h.commit(blob_count=1, data_hash=blob_data_hash(versioned[:1]))
    blobs.extend(versioned[:2])
    with boa.reverts("missing blob"):
        h.commit(blob_count=3, data_hash=blob_data_hash(versioned))
    with boa.reverts("blob mismatch"):
        h.commit(blob_count=2, data_hash=blob_data_hash(versioned[1::-1]))
    with boa.reverts("blob mismatch"):
        h.commit(blob_count=1, data_hash=blob_data_hash(versioned[:2]))
    record = h.commit(blob_count=2, data_hash=blob_data_hash(versioned[:2]))
    assert record.data_hash == keccak(versioned[0] + versioned[1])
    h.post(b"calldata chunk")
    with boa.reverts("pending data"):
        h.commit(blob_count=2, data_hash=blob_data_hash(versioned[:2]))
    blobs[:] = versioned + versioned
    with boa.reverts("blob count"):
        h.commit(blob_count=7, data_hash=blob_data_hash(blobs[:7]))


# --- finality and veto --------------------------------------------------------------------------


def test_batches_become_final_after_the_challenge_window(h: Harness) -> None:
    record = h.commit()
    assert not h.s.is_final(record)
    boa.env.time_travel(seconds=CHALLENGE - 1)
    assert not h.s.is_final(record)
    boa.env.time_travel(seconds=1)
    assert h.s.is_final(record)
    assert not h.s.is_final(record._replace(committed_at=0))
    assert not h.s.is_final(record._replace(number=2))


def test_veto_reverts_to_the_last_final_batch_and_commits_resume(h: Harness) -> None:
    s = h.s
    h.make_verifier()
    first = h.commit()
    boa.env.time_travel(seconds=CHALLENGE)
    tree = WithdrawalTree([Withdrawal(1, ALICE, USDC, 5)])
    second = h.commit(withdrawal_root=tree.root, withdrawn_total=5)
    third = h.commit()
    h.post(b"data of a batch to come")
    s.veto(3, first, second, sender=VERIFIER)
    event = only_event(s, "Vetoed")
    assert (event.bad, event.reverted_to, event.root) == (3, 1, first.state_root)
    assert s.batch_count() == 1
    assert (s.data_accumulator(), s.data_chunks()) == (ZERO32, 0)
    assert not s.is_final(second)
    boa.env.time_travel(seconds=CHALLENGE)
    with boa.reverts("bad batch"):
        s.withdraw(*tree.claim_args(second, 0), sender=ALICE)
    with boa.reverts("prev mismatch"):
        s.commit_batch(third, h.chain.header(), 0, sender=OPERATOR)
    h.chain.revert_to(1)
    replacement = h.commit(state_root=keccak(b"honest state"))
    assert replacement.number == 2
    assert s.batch_hashes(2) == replacement.record_hash() != second.record_hash()
    h.commit()
    assert s.batch_count() == 3


def test_veto_rejections(h: Harness) -> None:
    s = h.s
    h.make_verifier()
    first = h.commit()
    boa.env.time_travel(seconds=CHALLENGE)
    second = h.commit()
    third = h.commit()
    with boa.reverts("not verifier"):
        s.veto(2, first, second, sender=ALICE)
    with boa.reverts("bad last final"):
        s.veto(2, first._replace(exit_total=1), second, sender=VERIFIER)
    with boa.reverts("bad pending"):
        s.veto(3, first, third, sender=VERIFIER)
    with boa.reverts("bad pending"):
        s.veto(2, first, second._replace(state_root=ZERO32), sender=VERIFIER)
    with boa.reverts("last not final"):
        s.veto(3, second, third, sender=VERIFIER)
    with boa.reverts("veto range"):
        s.veto(1, first, second, sender=VERIFIER)
    with boa.reverts("veto range"):
        s.veto(4, first, second, sender=VERIFIER)
    boa.env.time_travel(seconds=CHALLENGE)
    with boa.reverts("pending final"):
        s.veto(3, first, second, sender=VERIFIER)


# --- withdrawals --------------------------------------------------------------------------------


def _withdrawal_batch(h: Harness) -> tuple[WithdrawalTree, Batch]:
    h.deposit(ALICE, 1_000)
    h.deposit(BOB, 1_000)
    tree = WithdrawalTree(
        [
            Withdrawal(11, ALICE, USDC, 300),
            Withdrawal(12, BOB, USDC, 200),
            Withdrawal(300, ALICE, name32("ETH"), 1),
        ]
    )
    record = h.commit(
        deposit_index=2,
        deposited_total=2_000,
        withdrawal_root=tree.root,
        withdrawn_total=tree.total,
    )
    return tree, record


def test_withdrawals_pay_with_python_proofs(h: Harness) -> None:
    s = h.s
    tree, record = _withdrawal_batch(h)
    with boa.reverts("not final"):
        s.withdraw(*tree.claim_args(record, 0), sender=ALICE)
    boa.env.time_travel(seconds=CHALLENGE)
    before = {who: h.balance(who) for who in (ALICE, BOB)}
    for index, withdrawal in enumerate(tree.withdrawals):
        s.withdraw(*tree.claim_args(record, index), sender=withdrawal.account)
        event = only_event(s, "Withdrawn")
        assert (event.withdrawal_id, address_of(event.account), event.batch_number) == (
            withdrawal.withdrawal_id,
            withdrawal.account,
            1,
        )
        assert (event.underlying, event.amount, event.paid) == (
            withdrawal.underlying,
            withdrawal.amount,
            withdrawal.amount,
        )
        assert s.is_claimed(withdrawal.withdrawal_id)
    assert h.balance(ALICE) == before[ALICE] + 301
    assert h.balance(BOB) == before[BOB] + 200
    assert s.claimed_total() == 501
    assert s.claimed(0) == (1 << 11) | (1 << 12)
    assert s.claimed(1) == 1 << (300 - 256)
    assert not s.is_claimed(13)


def test_withdrawal_rejections(h: Harness) -> None:
    s = h.s
    tree, record = _withdrawal_batch(h)
    boa.env.time_travel(seconds=CHALLENGE)
    batch, wid, account, underlying, amount, index, proof = tree.claim_args(record, 0)
    with boa.reverts("not yours"):
        s.withdraw(batch, wid, account, underlying, amount, index, proof, sender=BOB)
    with boa.reverts("bad index"):
        s.withdraw(batch, wid, account, underlying, amount, 1 << 16, proof, sender=ALICE)
    tampered_proof = [proof[0], keccak(b"sibling"), *proof[2:]]
    bad_proofs = [
        (wid + 1, account, underlying, amount, index, proof),
        (wid, BOB, underlying, amount, index, proof),
        (wid, account, name32("ETH"), amount, index, proof),
        (wid, account, underlying, amount + 1, index, proof),
        (wid, account, underlying, amount, index + 2, proof),
        (wid, account, underlying, amount, index, tampered_proof),
    ]
    for args in bad_proofs:
        with boa.reverts("bad proof"):
            s.withdraw(batch, *args, sender=args[1])
    with boa.reverts("bad proof"):
        s.withdraw(batch, 12, BOB, USDC, 200, 0, tree.proof(1), sender=BOB)
    # the record itself: any field changed (roots, timestamps, deposit index ...) is not it
    for position, value in enumerate(record):
        changed = (value + 1) if isinstance(value, int) else keccak(value)
        forged = Batch(*record[:position], changed, *record[position + 1 :])
        with boa.reverts("bad batch"):
            s.withdraw(forged, wid, account, underlying, amount, index, proof, sender=ALICE)
    s.withdraw(batch, wid, account, underlying, amount, index, proof, sender=ALICE)
    with boa.reverts("claimed"):
        s.withdraw(batch, wid, account, underlying, amount, index, proof, sender=ALICE)


# --- freeze -------------------------------------------------------------------------------------


def test_freeze_stale_after_the_batch_gap(h: Harness) -> None:
    s = h.s
    boa.env.time_travel(seconds=GAP - 1)
    with boa.reverts("not stale"):
        s.freeze_stale(GENESIS, GENESIS, ZERO_BATCH)
    boa.env.time_travel(seconds=1)
    first = h.commit()  # a commit restarts the gap
    boa.env.time_travel(seconds=GAP - 1)
    with boa.reverts("not stale"):
        s.freeze_stale(first, first, ZERO_BATCH)
    boa.env.time_travel(seconds=1)
    with boa.reverts("bad tip"):
        s.freeze_stale(GENESIS, GENESIS, first)
    with boa.reverts("bad tip"):
        s.freeze_stale(first._replace(committed_at=0), first, ZERO_BATCH)
    s.freeze_stale(first, first, ZERO_BATCH, sender=CAROL)
    event = only_event(s, "Frozen")
    assert (event.last_final, event.exit_root, event.exit_deposit_index) == (
        1,
        first.state_root,
        0,
    )
    assert (event.forced_index, event.haircut_num, event.haircut_den) == (0, 1, 1)
    assert event.frozen_at == T0 + 2 * GAP == s.frozen_at()
    assert s.frozen()
    assert s.exit_root() == first.state_root


def test_freeze_stale_from_deployment(h: Harness) -> None:
    boa.env.time_travel(seconds=GAP)
    h.s.freeze_stale(GENESIS, GENESIS, ZERO_BATCH)
    assert h.s.exit_root() == GENESIS.state_root


def test_frozen_contract_takes_no_more_state(h: Harness) -> None:
    s = h.s
    h.make_verifier()
    index, requested_at = h.request_forced(ALICE, 5)
    first = h.commit()
    boa.env.time_travel(seconds=GAP)
    s.freeze_stale(first, first, ZERO_BATCH)
    calls: list[Callable[[], Any]] = [
        lambda: s.commit_batch(first, h.chain.header(), 0, sender=OPERATOR),
        lambda: s.post_data(b"x", sender=OPERATOR),
        lambda: s.veto(1, GENESIS, first, sender=VERIFIER),
        lambda: s.deposit(ALICE, USDC, 1, sender=ALICE),
        lambda: s.request_forced_withdrawal(USDC, 1, sender=ALICE),
        lambda: s.freeze_stale(first, first, ZERO_BATCH),
        lambda: s.freeze_forced(index, ALICE, USDC, 5, requested_at, first, first, ZERO_BATCH),
    ]
    for call in calls:
        with boa.reverts("frozen"):
            call()


def test_ignored_forced_withdrawal_freezes(h: Harness) -> None:
    s = h.s
    index, requested_at = h.request_forced(ALICE, 40)
    args = (index, ALICE, USDC, 40, requested_at)
    first = h.commit()
    boa.env.time_travel(seconds=CHALLENGE)
    with boa.reverts("too early"):
        s.freeze_forced(*args, first, first, ZERO_BATCH)
    second = h.commit()
    boa.env.time_travel(seconds=FORCED - CHALLENGE)
    third = h.commit()  # pending when the freeze comes
    with boa.reverts("bad request"):
        s.freeze_forced(index, ALICE, USDC, 41, requested_at, third, second, third)
    with boa.reverts("bad request"):
        s.freeze_forced(index, BOB, USDC, 40, requested_at, third, second, third)
    with boa.reverts("bad request"):
        s.freeze_forced(index + 1, ALICE, USDC, 40, requested_at, third, second, third)
    with boa.reverts("bad tip"):
        s.freeze_forced(*args, second, second, third)
    with boa.reverts("bad last final"):
        s.freeze_forced(*args, third, second._replace(deposit_index=1), third)
    with boa.reverts("last not final"):
        s.freeze_forced(*args, third, third, ZERO_BATCH)
    with boa.reverts("next final"):
        s.freeze_forced(*args, third, first, second)
    with boa.reverts("bad next"):
        s.freeze_forced(*args, third, second, ZERO_BATCH)
    with boa.reverts("bad next"):
        s.freeze_forced(*args, third, second, first)
    with boa.reverts("bad next"):
        s.freeze_forced(*args, third, second, third._replace(exit_total=1))
    s.freeze_forced(*args, third, second, third, sender=BOB)
    event = only_event(s, "Frozen")
    assert (event.last_final, event.forced_index, event.exit_root) == (2, 1, second.state_root)
    assert s.frozen_at() == boa.env.timestamp
    # the pending batch stays pending: time is frozen for finality
    boa.env.time_travel(seconds=10 * CHALLENGE)
    assert s.is_final(second)
    assert not s.is_final(third)


def test_a_served_forced_withdrawal_cannot_freeze(h: Harness) -> None:
    index, requested_at = h.request_forced(BOB, 40)
    served = h.commit(forced_index=1)
    boa.env.time_travel(seconds=FORCED)
    with boa.reverts("served"):
        h.s.freeze_forced(index, BOB, USDC, 40, requested_at, served, served, ZERO_BATCH)


# --- after a freeze: exits, refunds, withdrawals, haircut ---------------------------------------


@dataclass
class Frozen:
    state: StateTree
    bob_tree: WithdrawalTree
    exit_batch: Batch
    alice_tree: WithdrawalTree
    pending: Batch


def _frozen(h: Harness, alice_value: int, bob_value: int, bob_claims_early: bool) -> Frozen:
    """Deposits 1000 (alice) and 500 (bob) consumed by batch 1, whose state gives them the
    exit values and bob a withdrawal of 200; batch 2 (alice withdraws 100) is pending when an
    ignored forced request freezes the contract; carol's 300 for bob, deposited after, is
    unconsumed."""
    h.deposit(ALICE, 1_000)
    h.deposit(BOB, 500)
    index, requested_at = h.request_forced(ALICE, 50)
    state = StateTree(
        [
            LedgerLeaf(ALICE, "USDC", alice_value, alice_value),
            LedgerLeaf(BOB, "USDC", -5, bob_value),
        ]
    )
    bob_tree = WithdrawalTree([Withdrawal(1, BOB, USDC, 200)])
    exit_batch = h.commit(
        state_root=state.root,
        deposit_index=2,
        deposited_total=1_500,
        withdrawal_root=bob_tree.root,
        withdrawn_total=200,
        exit_total=state.exit_total,
    )
    boa.env.time_travel(seconds=CHALLENGE)
    if bob_claims_early:
        h.s.withdraw(*bob_tree.claim_args(exit_batch, 0), sender=BOB)
    alice_tree = WithdrawalTree([Withdrawal(2, ALICE, USDC, 100)])
    boa.env.time_travel(seconds=FORCED - CHALLENGE)
    pending = h.commit(withdrawal_root=alice_tree.root, withdrawn_total=300)
    h.deposit(CAROL, 300, beneficiary=BOB)
    h.s.freeze_forced(index, ALICE, USDC, 50, requested_at, pending, exit_batch, pending)
    return Frozen(state, bob_tree, exit_batch, alice_tree, pending)


def test_exits_refunds_and_withdrawals_after_a_solvent_freeze(h: Harness) -> None:
    s = h.s
    f = _frozen(h, alice_value=800, bob_value=400, bob_claims_early=True)
    event = only_event(s, "Frozen")
    # holdings 1800 - 200 paid - 300 refundable; claims 1200 of exit values, nothing owed
    assert (event.refundable, event.holdings, event.claims) == (300, 1_300, 1_200)
    assert (s.haircut_num(), s.haircut_den(), s.exit_deposit_index()) == (1, 1, 2)
    before = {who: h.balance(who) for who in USERS}
    s.exit(*f.state.exit_args(1), sender=ALICE)
    exited = only_event(s, "Exited")
    assert (exited.index, address_of(exited.account), exited.underlying) == (1, ALICE, USDC)
    assert (exited.exit_value, exited.paid) == (800, 800)
    assert s.is_exited(1)
    with boa.reverts("exited"):
        s.exit(*f.state.exit_args(1), sender=ALICE)
    with boa.reverts("not yours"):
        s.exit(*f.state.exit_args(2), sender=ALICE)
    s.exit(*f.state.exit_args(2), sender=BOB)
    with boa.reverts("claimed"):
        s.withdraw(*f.bob_tree.claim_args(f.exit_batch, 0), sender=BOB)
    with boa.reverts("not final"):
        s.withdraw(*f.alice_tree.claim_args(f.pending, 0), sender=ALICE)
    # carol's deposit (for bob) never entered the engine: refunded to her in full, once
    s.refund(3, CAROL, BOB, USDC, 300, sender=BOB)
    refunded = only_event(s, "Refunded")
    assert (refunded.index, address_of(refunded.depositor), refunded.amount) == (3, CAROL, 300)
    assert s.is_refunded(3)
    with boa.reverts("refunded"):
        s.refund(3, CAROL, BOB, USDC, 300)
    with boa.reverts("consumed"):
        s.refund(2, BOB, BOB, USDC, 500)
    with boa.reverts("bad deposit"):
        s.refund(3, CAROL, CAROL, USDC, 300)
    with boa.reverts("bad deposit"):
        s.refund(4, CAROL, BOB, USDC, 300)
    assert h.balance(ALICE) == before[ALICE] + 800
    assert h.balance(BOB) == before[BOB] + 400
    assert h.balance(CAROL) == before[CAROL] + 300
    assert h.balance(s.address) == 1_800 - 200 - 800 - 400 - 300


def test_insolvent_freeze_pays_everyone_pro_rata(h: Harness) -> None:
    s = h.s
    f = _frozen(h, alice_value=900, bob_value=700, bob_claims_early=False)
    event = only_event(s, "Frozen")
    # holdings 1800 - 300 refundable; claims 1600 of exit values + 200 of bob's withdrawal
    assert (event.refundable, event.holdings, event.claims) == (300, 1_500, 1_800)
    assert (event.haircut_num, event.haircut_den) == (1_500, 1_800)
    assert (s.haircut_num(), s.haircut_den()) == (1_500, 1_800)
    before = {who: h.balance(who) for who in USERS}
    s.exit(*f.state.exit_args(1), sender=ALICE)
    assert only_event(s, "Exited").paid == 900 * 1_500 // 1_800 == 750
    s.exit(*f.state.exit_args(2), sender=BOB)
    assert only_event(s, "Exited").paid == 700 * 1_500 // 1_800 == 583
    s.withdraw(*f.bob_tree.claim_args(f.exit_batch, 0), sender=BOB)
    withdrawn = only_event(s, "Withdrawn")
    assert (withdrawn.amount, withdrawn.paid) == (200, 200 * 1_500 // 1_800)
    s.refund(3, CAROL, BOB, USDC, 300)
    assert h.balance(ALICE) == before[ALICE] + 750
    assert h.balance(BOB) == before[BOB] + 583 + 166
    assert h.balance(CAROL) == before[CAROL] + 300
    assert h.balance(s.address) == 1_800 - 750 - 583 - 166 - 300 == 1


def test_exit_and_refund_need_a_freeze(h: Harness) -> None:
    h.deposit(ALICE, 10)
    with boa.reverts("not frozen"):
        h.s.exit(*GENESIS_STATE.exit_args(0), sender=ALICE)
    with boa.reverts("not frozen"):
        h.s.refund(1, ALICE, ALICE, USDC, 10)


def test_exit_checks_the_leaf_and_its_proof(h: Harness) -> None:
    s = h.s
    f = _frozen(h, alice_value=800, bob_value=400, bob_claims_early=True)
    leaf, index, proof, rest = f.state.exit_args(1)
    with boa.reverts("leaf size"):
        s.exit(f.state.leaves[0], 0, proof, rest, sender=ALICE)  # the system leaf
    with boa.reverts("leaf size"):
        s.exit(leaf + b"\x00", index, proof, rest, sender=ALICE)
    with boa.reverts("leaf size"):
        s.exit(leaf[:192], index, proof, rest, sender=ALICE)
    with boa.reverts("leaf offset"):
        s.exit(word(0x40) + leaf[32:], index, proof, rest, sender=ALICE)
    with boa.reverts("leaf account"):
        s.exit(leaf[:32] + b"\x01" + leaf[33:], index, proof, rest, sender=ALICE)
    with boa.reverts("bad index"):
        s.exit(leaf, 0, proof, rest, sender=ALICE)
    with boa.reverts("bad index"):
        s.exit(leaf, 1 << 32, proof, rest, sender=ALICE)
    richer = leaf[:128] + word(801) + leaf[160:]
    for args in (
        (richer, index, proof, rest),
        (leaf, 3, proof, rest),
        (leaf, index, [*proof[:5], keccak(b"x"), *proof[6:]], rest),
        (leaf, index, proof, keccak(b"other rest")),
    ):
        with boa.reverts("bad proof"):
            s.exit(*args, sender=ALICE)
    s.exit(leaf, index, proof, rest, sender=ALICE)


# --- golden vectors -----------------------------------------------------------------------------


def test_golden_leaves_exit(h: Harness) -> None:
    """tests/golden/leaf_vectors.json: the tree rebuilt from its leaves, then every ledger leaf
    exits from a contract whose genesis is that state (the system leaf cannot)."""
    document = json.loads(GOLDEN.read_text())
    rest = bytes.fromhex(document["rest_hash"][2:])
    root = bytes.fromhex(document["state_root"][2:])
    entries = document["leaves"]
    leaves = [bytes.fromhex(entry["leaf_data"][2:]) for entry in entries]
    assert [entry["index"] for entry in entries] == list(range(len(entries)))
    tree = LedgerTree.from_leaves(leaves)
    assert tree.tree_root() == bytes.fromhex(document["tree_root"][2:])
    assert tree.state_root(rest) == golden_state_root(tree.tree_root(), rest) == root
    for entry in entries:
        assert [p.hex() for p in tree.proof(entry["index"])] == [p[2:] for p in entry["proof"]]

    token = h.world.token_deployer.deploy()
    genesis = genesis_record(root, GENESIS_HEIGHT, GENESIS_TIMESTAMP_NS)
    s = h.world.settlement_deployer.deploy(*constructor_args(token.address, genesis))
    boa.env.time_travel(seconds=GAP)
    s.freeze_stale(genesis, genesis, ZERO_BATCH)
    assert s.exit_root() == root

    def exit_args(entry: dict[str, Any]) -> tuple[Any, ...]:
        proof = [bytes.fromhex(p[2:]) for p in entry["proof"]]
        return (bytes.fromhex(entry["leaf_data"][2:]), entry["index"], proof, rest)

    with boa.reverts("leaf size"):
        s.exit(*exit_args(entries[0]), sender=ALICE)
    # leaf 4 is worth every token there can be: hold them all, exit it first, send some back
    largest = entries[4]["fields"]
    assert largest["exit_value"] == MAX_UINT
    token.mint(s.address, MAX_UINT)
    owner = largest["address"]
    s.exit(*exit_args(entries[4]), sender=owner)
    assert only_event(s, "Exited").paid == MAX_UINT == token.balanceOf(owner)
    token.transfer(s.address, 10**12, sender=owner)
    for entry in entries[1:4]:
        fields = entry["fields"]
        s.exit(*exit_args(entry), sender=fields["address"])
        event = only_event(s, "Exited")
        assert (event.index, address_of(event.account)) == (entry["index"], fields["address"])
        assert event.paid == fields["exit_value"] == token.balanceOf(fields["address"])
        assert event.underlying == name32(fields["underlying"])
    with boa.reverts("exited"):
        s.exit(*exit_args(entries[2]), sender=entries[2]["fields"]["address"])


# --- gas ----------------------------------------------------------------------------------------


def _calldata_gas(calldata: bytes) -> int:
    return sum(16 if byte else 4 for byte in calldata)


def _measure(function: Any, *args: Any, sender: str) -> tuple[int, int]:
    """(execution gas as titanoboa reports it, that plus the intrinsic 21000 and calldata).

    titanoboa keeps slots and accounts warm from one call to the next; a transaction starts
    with all of them cold. ``boa.env.reset_gas_used()`` would make them cold by replacing
    py-evm's journal of accesses, which loses the checkpoints the test's anchors revert to,
    so the journal is swapped for a fresh one during the call and put back after it.
    """
    account_db = boa.env.evm.vm.state._account_db
    journal = account_db._journal_accessed_state
    account_db._reset_access_counters()
    used = boa.env.get_gas_used()
    try:
        function(*args, sender=sender)
    finally:
        account_db._journal_accessed_state = journal
    execution = int(boa.env.get_gas_used() - used)
    return execution, execution + 21_000 + _calldata_gas(function.prepare_calldata(*args))


def test_gas_of_commit_and_withdraw(h: Harness) -> None:
    s = h.s
    tree, record = _withdrawal_batch(h)
    h.commit()
    rows = {}
    rows["commit_batch (empty batch)"] = _measure(
        s.commit_batch, h.chain.tip, h.chain.header(), 0, sender=OPERATOR
    )
    h.chain.accept(h.chain.header(), boa.env.timestamp)
    h.deposit(ALICE, 5)
    data = h.post(b"\x07" * 1_000, b"\x08" * 1_000)
    header = h.chain.header(deposit_index=3, deposited_total=2_005, data_hash=data)
    rows["commit_batch (deposit + 2 data chunks)"] = _measure(
        s.commit_batch, h.chain.tip, header, 0, sender=OPERATOR
    )
    h.chain.accept(header, boa.env.timestamp)
    assert s.batch_hashes(h.chain.count) == h.chain.tip.record_hash()
    rows["post_data (1000 bytes)"] = _measure(s.post_data, b"\x09" * 1_000, sender=OPERATOR)
    rows["deposit"] = _measure(s.deposit, BOB, USDC, 77, sender=BOB)
    boa.env.time_travel(seconds=CHALLENGE)
    rows["withdraw (first claim)"] = _measure(s.withdraw, *tree.claim_args(record, 0), sender=ALICE)
    rows["withdraw (second claim)"] = _measure(s.withdraw, *tree.claim_args(record, 1), sender=BOB)
    print()
    for name, (execution, total) in rows.items():
        print(f"gas {name:40s} execution {execution:7d}  with intrinsic+calldata {total:7d}")
    commit_execution = rows["commit_batch (deposit + 2 data chunks)"][0]
    assert 20_000 < rows["commit_batch (empty batch)"][0] <= commit_execution < 100_000
    assert 30_000 < rows["withdraw (first claim)"][1] < 150_000


# --- the list at the top is complete ------------------------------------------------------------


def test_every_reason_is_tested() -> None:
    """Each reason string in either contract appears, quoted, in this file."""
    code = Path(__file__).read_text().split('"""', 2)[2]  # without the module docstring
    for path in (SETTLEMENT_PATH, TOKEN_PATH):
        reasons = set(re.findall(r',\s*"([^"]+)"$', path.read_text(), re.MULTILINE))
        assert len(reasons) > 3, path
        missing = sorted(reason for reason in reasons if f'"{reason}"' not in code)
        assert not missing, f"{path.name}: untested reasons {missing}"
