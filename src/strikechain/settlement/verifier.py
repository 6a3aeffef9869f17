"""The verifier: rebuild the venue from posted data and check every committed batch.

The challenge window is only worth something if someone independent re-executes what the
operator posted. :func:`verify_batches` does it from the data alone: it builds the engine from
the genesis posted with batch 1, checks that it reproduces the genesis root the contract was
deployed with, applies every posted block, and at each batch's end recomputes every field of
the batch record (state root, block range and timestamps, deposit and forced-withdrawal
indices and totals, the withdrawal tree's root, the exit total) and compares it with what was
committed. Along the way it re-checks every signature the data carries: oracle reports (the
engine itself refuses a report its reporter did not sign, so replay reproduces that outcome)
and EIP-712-signed orders (the engine leaves those to the edges, so a signed order whose
signature does not recover its account is the operator's forgery: a divergence). Every deposit
and forced withdrawal the engine credited or served is compared with the contract's own
events, field by field: the operator cannot invent a deposit, skip one, or change its amount
without the verifier seeing it.

What it reports is the **first divergence** (batch, field, committed value, recomputed value),
because everything after a wrong root is built on it. :mod:`~strikechain.settlement.watch`
runs this as a daemon and vetoes the batch.

Trust model, in short (README "Settlement" says more): the challenge window guarantees that a
root nobody can reproduce from the posted data never becomes final while one honest verifier
watches; it does not guarantee that the operator's ordering was fair, nor that unsigned
orders were really sent by their accounts: orders authenticated by an API key's HMAC carry no
signature a third party can check (the verifier counts them as ``unsigned_orders``), while
signed orders and oracle reports are checked. A validity proof would replace the window with
a proof that the transition is correct, making roots final at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import msgspec

from strikechain.engine.codec import CodecError
from strikechain.engine.codes import Rejection
from strikechain.engine.commitment import account_address
from strikechain.engine.engine import Engine
from strikechain.engine.events import Deposited, Fill, ForcedWithdrawalServed, WithdrawalRequested
from strikechain.engine.genesis import decode_genesis
from strikechain.engine.oracle import OracleReport, ReportVerifier
from strikechain.engine.orders_signing import OrderVerifier
from strikechain.engine.txs import Block, PlaceOrder
from strikechain.settlement import data as batch_data
from strikechain.settlement.batcher import exit_total
from strikechain.settlement.records import BatchRecord, Withdrawal, WithdrawalTree


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    """The first place the posted data and a commitment disagree."""

    batch: int
    field: str
    committed: str = ""
    recomputed: str = ""
    message: str = ""


class DepositEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A deposit as the contract recorded it (its ``Deposited`` event)."""

    index: int
    beneficiary: str
    underlying: str
    amount: int


class ForcedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A forced-withdrawal request as the contract recorded it."""

    index: int
    account: str
    underlying: str
    amount: int


class PostedBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A committed record and the data posted for it (as read back from the chain)."""

    record: BatchRecord
    data: bytes


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    batches: int
    blocks: int
    transactions: int
    fills: int
    oracle_signatures: int
    signed_orders: int
    unsigned_orders: int
    """Orders without a signature (API-key authenticated): not checkable by a third party."""
    deposits_checked: int
    last_root: bytes = b""
    divergence: Divergence | None = None

    def with_divergence(self, divergence: Divergence) -> VerifyReport:
        return msgspec.structs.replace(self, divergence=divergence)


class _Replay:
    """The verifier's state while it walks the batches."""

    def __init__(self, deposits: Sequence[DepositEvent], forced: Sequence[ForcedRequest]) -> None:
        self.deposits = {event.index: event for event in deposits}
        self.forced = {event.index: event for event in forced}
        self.reports = ReportVerifier()
        self.orders = OrderVerifier()
        self.engine: Engine | None = None
        self.counts = {
            "blocks": 0,
            "transactions": 0,
            "fills": 0,
            "oracle_signatures": 0,
            "signed_orders": 0,
            "unsigned_orders": 0,
            "deposits_checked": 0,
        }


class _Diverged(Exception):
    def __init__(self, divergence: Divergence) -> None:
        self.divergence = divergence


def _fail(
    batch: int, field: str, committed: Any = "", recomputed: Any = "", message: str = ""
) -> NoReturn:
    def text(value: Any) -> str:
        return value.hex() if isinstance(value, bytes) else str(value)

    raise _Diverged(
        Divergence(
            batch=batch,
            field=field,
            committed=text(committed),
            recomputed=text(recomputed),
            message=message,
        )
    )


def verify_batches(
    genesis: BatchRecord,
    batches: Sequence[PostedBatch],
    deposits: Sequence[DepositEvent] = (),
    forced: Sequence[ForcedRequest] = (),
    *,
    on_batch: Callable[[BatchRecord, Engine], None] | None = None,
) -> VerifyReport:
    """Replay ``batches`` (in number order, starting at 1) from the genesis posted with the
    first, checking every record and signature; stop at the first divergence."""
    replay = _Replay(deposits, forced)
    last_root = genesis.state_root
    done = 0
    try:
        previous = genesis
        for posted in batches:
            _check_batch(replay, previous, posted)
            previous = posted.record
            last_root = previous.state_root
            done += 1
            if on_batch is not None and replay.engine is not None:
                on_batch(previous, replay.engine)
    except _Diverged as diverged:
        return msgspec.convert(
            {"ok": False, "batches": done, "last_root": last_root, **replay.counts},
            VerifyReport,
        ).with_divergence(diverged.divergence)
    return msgspec.convert(
        {"ok": True, "batches": done, "last_root": last_root, **replay.counts}, VerifyReport
    )


def _check_batch(replay: _Replay, previous: BatchRecord, posted: PostedBatch) -> None:
    record = posted.record
    number = record.number
    if number != previous.number + 1:
        _fail(number, "number", previous.number + 1, number, "batches must follow one another")
    try:
        data = batch_data.decode(posted.data)
        blocks = data.decoded_blocks()
    except (Rejection, CodecError) as error:
        _fail(number, "data", message=str(error))
    if data.number != number:
        _fail(number, "data.number", number, data.number)
    if replay.engine is None:
        replay.engine = _genesis_engine(replay, number, data.genesis, previous)
    elif data.genesis:
        _fail(number, "data.genesis", message="only batch 1 posts a genesis")
    engine = replay.engine
    if record.prev_root != previous.state_root:
        _fail(number, "prev_root", record.prev_root, previous.state_root)
    if not blocks:
        _fail(number, "blocks", message="a batch covers at least one block")
    withdrawals: list[Withdrawal] = []
    for block in blocks:
        withdrawals.extend(_apply(replay, engine, number, block))
    expected = _recomputed(engine, blocks, withdrawals)
    for field in (
        "state_root",
        "first_block",
        "last_block",
        "first_timestamp_ns",
        "last_timestamp_ns",
        "deposit_index",
        "deposited_total",
        "forced_index",
        "withdrawal_root",
        "withdrawn_total",
        "exit_total",
    ):
        if getattr(record, field) != expected[field]:
            _fail(number, field, getattr(record, field), expected[field])


def _genesis_engine(replay: _Replay, number: int, raw: bytes, genesis: BatchRecord) -> Engine:
    if number != 1 or not raw:
        _fail(number, "data.genesis", message="batch 1 must post the genesis record")
    try:
        venue_genesis = decode_genesis(raw)
        signing = venue_genesis.venue.signing  # the venue's EIP-712 domain, for both kinds
        replay.reports = ReportVerifier(signing)
        replay.orders = OrderVerifier(signing)
        engine = venue_genesis.build_engine(replay.reports)
    except (Rejection, CodecError) as error:
        _fail(number, "data.genesis", message=str(error))
    root = engine.state_root()
    if root != genesis.state_root:
        _fail(
            0, "state_root", genesis.state_root, root, "the posted genesis is not the deployed one"
        )
    return engine


def _apply(replay: _Replay, engine: Engine, number: int, block: Block) -> list[Withdrawal]:
    counts = replay.counts
    for tx in block.transactions:
        kind = type(tx)
        if kind is OracleReport:  # the engine refuses a badly signed one: replay shows it
            counts["oracle_signatures"] += 1
            replay.reports.signer(tx)  # type: ignore[arg-type]
        elif kind is PlaceOrder:
            if tx.signature:  # type: ignore[union-attr]
                counts["signed_orders"] += 1
                if not replay.orders.verify(tx):  # type: ignore[arg-type]
                    _fail(
                        number,
                        "signature",
                        message=f"order in block {block.height} is not signed by {tx.account}",
                    )
            else:
                counts["unsigned_orders"] += 1
    result = engine.apply(block)
    if result.rejected:
        _fail(number, "block", message=f"block {block.height} refused: {result.reason}")
    counts["blocks"] += 1
    counts["transactions"] += len(block.transactions)
    withdrawals = []
    for event in result.events:
        if isinstance(event, Fill):
            counts["fills"] += 1
        elif isinstance(event, WithdrawalRequested):
            withdrawals.append(Withdrawal.from_event(event))
        elif isinstance(event, Deposited):
            _check_deposit(replay, number, event)
        elif isinstance(event, ForcedWithdrawalServed):
            _check_forced(replay, number, event)
    return withdrawals


def _check_deposit(replay: _Replay, number: int, credited: Deposited) -> None:
    """A deposit the engine credited must be the contract's deposit of that index, to the
    address the engine account commits to (a relayed deposit the engine refused changed
    nothing, so it needs no check)."""
    event = replay.deposits.get(credited.deposit_id)
    relayed = (account_address(credited.account), credited.underlying, credited.amount)
    if event is None or relayed != (event.beneficiary.lower(), event.underlying, event.amount):
        _fail(
            number,
            "deposit",
            event,
            relayed,
            f"deposit {credited.deposit_id} does not match the contract's event",
        )
    replay.counts["deposits_checked"] += 1


def _check_forced(replay: _Replay, number: int, served: ForcedWithdrawalServed) -> None:
    """A forced withdrawal the engine served must be the contract's request of that index."""
    event = replay.forced.get(served.request_id)
    relayed = (account_address(served.account), served.underlying, served.requested)
    if event is None or relayed != (event.account.lower(), event.underlying, event.amount):
        _fail(
            number,
            "forced_withdrawal",
            event,
            relayed,
            f"forced withdrawal {served.request_id} does not match the contract's request",
        )


def _recomputed(
    engine: Engine, blocks: list[Block], withdrawals: list[Withdrawal]
) -> dict[str, Any]:
    return {
        "state_root": engine.state_root(),
        "first_block": blocks[0].height,
        "last_block": blocks[-1].height,
        "first_timestamp_ns": blocks[0].timestamp_ns,
        "last_timestamp_ns": blocks[-1].timestamp_ns,
        "deposit_index": engine.next_deposit_id - 1,
        "deposited_total": engine.deposits_total,
        "forced_index": engine.next_forced_id - 1,
        "withdrawal_root": WithdrawalTree(withdrawals).root(),
        "withdrawn_total": engine.withdrawals_total,
        "exit_total": exit_total(engine.accounts.values()),
    }
