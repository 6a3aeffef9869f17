"""The settlement contract in Python terms, on any :class:`~strikechain.settlement.chain.Chain`.

:func:`deploy` puts the test token and ``Settlement.vy`` on a chain; :class:`Settlement` wraps
every call of the contract with engine-side types (records, withdrawals, leaves) and reads the
chain back: the live batch records (commits minus vetoes), the data posted for each, the
deposits and forced-withdrawal requests. Readers use only the chain (events and transaction
inputs), so a verifier that trusts nobody can use this class too; :func:`attach` rebuilds the
:class:`Deployment` such a verifier needs from the contract's address alone.

Addresses are ``0x`` + 40 lowercase hex digits throughout; an engine account that settles on
chain is named by its address in that form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from strikechain.engine.codes import Rejection
from strikechain.engine.genesis import decode_genesis
from strikechain.engine.signing import WORD_BYTES
from strikechain.settlement import data as batch_data
from strikechain.settlement.chain import Chain, ChainReverted, Log, Receipt
from strikechain.settlement.records import BatchRecord, Withdrawal, genesis_record
from strikechain.settlement.verifier import DepositEvent, ForcedRequest, PostedBatch

RECORD_TYPE: Final = (
    "("
    + ",".join(
        "bytes32" if name.endswith("root") or name == "data_hash" else "uint256"
        for name in BatchRecord.__struct_fields__
    )
    + ")"
)
"""The ABI type of ``struct Batch``, for decoding commit transactions."""
BLOB_BYTES: Final = 131_072


class SettlementParams(msgspec.Struct, frozen=True, kw_only=True):
    """The contract's constructor parameters (seconds of chain time unless named ``_ns``)."""

    challenge_window_s: int = 3_600
    verifier_timelock_s: int = 86_400
    forced_window_s: int = 7 * 86_400
    """StarkEx's: an ignored forced withdrawal lets anyone freeze after seven days."""
    max_batch_gap_s: int = 14 * 86_400
    max_drift_ns: int = 60 * 1_000_000_000
    """How far a batch's last block time may run ahead of the chain's clock."""


class Deployment(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    settlement: str
    operator: str
    governor: str
    params: SettlementParams
    genesis: BatchRecord
    block: int
    """The chain block the contract was deployed in (readers start there)."""


def underlying_word(name: str) -> bytes:
    return name.encode("utf-8").ljust(WORD_BYTES, b"\x00")


def underlying_name(word: bytes) -> str:
    return word.rstrip(b"\x00").decode("utf-8")


def deploy(
    chain: Chain,
    *,
    operator: str,
    governor: str,
    genesis: BatchRecord,
    params: SettlementParams | None = None,
) -> Deployment:
    """Deploy the test token and the settlement contract; ``genesis`` is batch 0."""
    params = params if params is not None else SettlementParams()
    token = chain.deploy("TestUSDC", (), governor)
    start = chain.block_number()
    settlement = chain.deploy(
        "Settlement",
        (
            token,
            operator,
            governor,
            params.challenge_window_s,
            params.verifier_timelock_s,
            params.forced_window_s,
            params.max_batch_gap_s,
            params.max_drift_ns,
            genesis.state_root,
            genesis.last_block,
            genesis.last_timestamp_ns,
        ),
        governor,
    )
    return Deployment(
        token=token,
        settlement=settlement,
        operator=operator.lower(),
        governor=governor.lower(),
        params=params,
        genesis=genesis,
        block=start,
    )


class Committed(msgspec.Struct, frozen=True, kw_only=True):
    """A batch the contract accepted: its record as stored, and what posting it cost."""

    record: BatchRecord
    receipts: list[Receipt]
    posted_bytes: int
    method: str
    """``calldata`` or ``blobs``."""

    @property
    def commit(self) -> Receipt:
        return self.receipts[-1]

    @property
    def gas(self) -> int:
        return sum(receipt.gas_used for receipt in self.receipts)


class Settlement:
    """Calls and reads of one deployment (see the module docstring)."""

    def __init__(self, chain: Chain, deployment: Deployment) -> None:
        self.chain = chain
        self.deployment = deployment
        self.address = deployment.settlement
        self.token = deployment.token

    # -- token (a development token: anyone may mint) ---------------------------------------

    def mint(self, to: str, amount: int) -> Receipt:
        return self.chain.transact(self.token, "mint", (to, amount), self.deployment.governor)

    def balance(self, owner: str) -> int:
        return int(self.chain.call(self.token, "balanceOf", (owner,)))

    def holdings(self) -> int:
        return self.balance(self.address)

    # -- users -------------------------------------------------------------------------------

    def deposit(self, sender: str, underlying: str, amount: int, beneficiary: str = "") -> Receipt:
        """Approve and deposit ``amount`` for ``beneficiary`` (default: the sender)."""
        self.chain.transact(self.token, "approve", (self.address, amount), sender)
        return self.chain.transact(
            self.address,
            "deposit",
            (beneficiary or sender, underlying_word(underlying), amount),
            sender,
        )

    def withdraw(
        self, record: BatchRecord, withdrawal: Withdrawal, index: int, proof: Sequence[bytes]
    ) -> Receipt:
        """Claim ``withdrawal`` (leaf ``index`` of ``record``'s tree), sent by its account."""
        return self.chain.transact(
            self.address,
            "withdraw",
            (
                record.as_tuple(),
                withdrawal.withdrawal_id,
                withdrawal.account,
                withdrawal.underlying_word(),
                withdrawal.amount,
                index,
                list(proof),
            ),
            withdrawal.account,
        )

    def request_forced_withdrawal(self, sender: str, underlying: str, amount: int) -> Receipt:
        return self.chain.transact(
            self.address,
            "request_forced_withdrawal",
            (underlying_word(underlying), amount),
            sender,
        )

    def exit(
        self, sender: str, leaf: bytes, index: int, proof: Sequence[bytes], rest_hash: bytes
    ) -> Receipt:
        return self.chain.transact(
            self.address, "exit", (leaf, index, list(proof), rest_hash), sender
        )

    def refund(self, sender: str, deposit: DepositEvent, depositor: str) -> Receipt:
        return self.chain.transact(
            self.address,
            "refund",
            (
                deposit.index,
                depositor,
                deposit.beneficiary,
                underlying_word(deposit.underlying),
                deposit.amount,
            ),
            sender,
        )

    # -- the operator ------------------------------------------------------------------------

    def commit(
        self, previous: BatchRecord, header: BatchRecord, data: bytes, *, blobs: bool = False
    ) -> Committed:
        """Post ``data`` (calldata chunks, or blobs carried by the commit itself) and commit
        ``header`` (its ``data_hash`` is set here) after ``previous``."""
        operator = self.deployment.operator
        receipts: list[Receipt] = []
        if blobs:
            from strikechain.settlement import blobs as blob_codec

            payloads = blob_codec.pack(data)
            hashes = blob_codec.versioned_hashes(payloads)
            header = msgspec.structs.replace(
                header.header(), data_hash=batch_data.blob_hash(hashes)
            )
            receipt = self.chain.transact(
                self.address,
                "commit_batch",
                (previous.as_tuple(), header.as_tuple(), len(payloads)),
                operator,
                blobs=tuple(payloads),
            )
        else:
            parts = batch_data.chunks(data)
            receipts.extend(
                self.chain.transact(self.address, "post_data", (part,), operator) for part in parts
            )
            header = msgspec.structs.replace(
                header.header(), data_hash=batch_data.calldata_hash(parts)
            )
            receipt = self.chain.transact(
                self.address,
                "commit_batch",
                (previous.as_tuple(), header.as_tuple(), 0),
                operator,
            )
        receipts.append(receipt)
        event = _only(receipt.logs, "BatchCommitted")
        record = msgspec.structs.replace(
            header, number=event.args["number"], committed_at=event.args["committed_at"]
        )
        return Committed(
            record=record,
            receipts=receipts,
            posted_bytes=len(data),
            method="blobs" if blobs else "calldata",
        )

    # -- verifiers and anyone ----------------------------------------------------------------

    def propose_verifier(self, verifier: str) -> Receipt:
        return self.chain.transact(
            self.address, "propose_verifier", (verifier,), self.deployment.governor
        )

    def activate_verifier(self, verifier: str, sender: str) -> Receipt:
        return self.chain.transact(self.address, "activate_verifier", (verifier,), sender)

    def veto(
        self, verifier: str, bad: int, last_final: BatchRecord, first_pending: BatchRecord
    ) -> Receipt:
        return self.chain.transact(
            self.address,
            "veto",
            (bad, last_final.as_tuple(), first_pending.as_tuple()),
            verifier,
        )

    def freeze_forced(
        self,
        sender: str,
        request: ForcedRequest,
        requested_at: int,
        tip: BatchRecord,
        last_final: BatchRecord,
        following: BatchRecord | None,
    ) -> Receipt:
        return self.chain.transact(
            self.address,
            "freeze_forced",
            (
                request.index,
                request.account,
                underlying_word(request.underlying),
                request.amount,
                requested_at,
                tip.as_tuple(),
                last_final.as_tuple(),
                _successor(following),
            ),
            sender,
        )

    def freeze_stale(
        self,
        sender: str,
        tip: BatchRecord,
        last_final: BatchRecord,
        following: BatchRecord | None,
    ) -> Receipt:
        return self.chain.transact(
            self.address,
            "freeze_stale",
            (
                tip.as_tuple(),
                last_final.as_tuple(),
                _successor(following),
            ),
            sender,
        )

    # -- reading the chain -------------------------------------------------------------------

    def read(self, name: str, *args: Any) -> Any:
        return self.chain.call(self.address, name, args)

    def logs(self, from_block: int | None = None, to_block: int | None = None) -> list[Log]:
        """The contract's events from ``from_block`` (its deployment's block if None) to
        ``to_block`` (the latest if None)."""
        start = self.deployment.block if from_block is None else from_block
        return self.chain.logs(self.address, start, to_block)

    def records(self) -> list[BatchRecord]:
        """The live batch records in order, genesis first (commits minus vetoed ones), as
        anyone can rebuild them from the chain: events and the commit transactions' inputs."""
        return [entry.record for entry in self.posted()]

    def posted(self) -> list[PostedBatch]:
        """Every live batch with the data posted for it (genesis first, with no data)."""
        live = [PostedBatch(record=self.deployment.genesis, data=b"")]
        for entry in history(self.chain, self.address, self.deployment.block):
            if isinstance(entry, Vetoed):
                del live[entry.reverted_to + 1 :]
            else:
                del live[entry.record.number :]
                live.append(entry)
        return live

    def deposits(self, confirmations: int = 0) -> list[DepositEvent]:
        """Every deposit with at least ``confirmations`` blocks on top of its own."""
        last = self.chain.block_number() - confirmations
        return [
            deposit_event(log)
            for log in self.logs()
            if log.event == "Deposited" and log.block_number <= last
        ]

    def depositors(self) -> dict[int, str]:
        return {
            log.args["index"]: log.args["depositor"]
            for log in self.logs()
            if log.event == "Deposited"
        }

    def forced_requests(self, confirmations: int = 0) -> list[tuple[ForcedRequest, int]]:
        """Every forced-withdrawal request and the chain time it was made at."""
        last = self.chain.block_number() - confirmations
        return [
            forced_request(log)
            for log in self.logs()
            if log.event == "ForcedWithdrawalRequested" and log.block_number <= last
        ]


def deposit_event(log: Log) -> DepositEvent:
    """A ``Deposited`` event's deposit."""
    return DepositEvent(
        index=log.args["index"],
        beneficiary=log.args["beneficiary"],
        underlying=underlying_name(log.args["underlying"]),
        amount=log.args["amount"],
    )


def forced_request(log: Log) -> tuple[ForcedRequest, int]:
    """A ``ForcedWithdrawalRequested`` event's request and the chain time it was made at."""
    return (
        ForcedRequest(
            index=log.args["index"],
            account=log.args["account"],
            underlying=underlying_name(log.args["underlying"]),
            amount=log.args["amount"],
        ),
        log.args["requested_at"],
    )


class Vetoed(msgspec.Struct, frozen=True, kw_only=True):
    """A veto as the chain recorded it: every batch after ``reverted_to`` was discarded."""

    bad: int
    reverted_to: int


def history(chain: Chain, address: str, from_block: int = 0) -> list[PostedBatch | Vetoed]:
    """Every commit (its record and the data posted for it) and every veto of the settlement
    contract at ``address``, in chain order, read from events and transaction inputs or
    blobs alone: vetoed commits included (what is live is for the caller to fold)."""
    out: list[PostedBatch | Vetoed] = []
    chunks: list[bytes] = []
    for log in chain.logs(address, from_block):
        if log.event == "DataPosted":
            chunks.append(_post_data_input(chain.transaction_input(log.tx_hash)))
        elif log.event == "BatchCommitted":
            header = _commit_header(chain.transaction_input(log.tx_hash))
            record = msgspec.structs.replace(
                header, number=log.args["number"], committed_at=log.args["committed_at"]
            )
            if chunks:
                posted = b"".join(chunks)
            else:
                from strikechain.settlement import blobs as blob_codec

                posted = blob_codec.unpack(chain.blobs(log.tx_hash))
            out.append(PostedBatch(record=record, data=posted))
            chunks = []
        elif log.event == "Vetoed":
            out.append(Vetoed(bad=log.args["bad"], reverted_to=log.args["reverted_to"]))
            chunks = []
    return out


# -- a verifier that knows only the contract's address --------------------------------------------


class AttachError(Exception):
    """A deployment that cannot be rebuilt from the chain; ``code`` is stable:
    ``NOT_A_SETTLEMENT_CONTRACT``, ``GENESIS_UNKNOWN`` (no batch 1 yet: the genesis is posted
    with it), ``GENESIS_MISMATCH`` (no posted genesis hashes to the deployed batch 0)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@runtime_checkable
class _KnowsContracts(Protocol):
    """A chain that must be told an existing contract's ABI (:class:`RpcChain`)."""

    def attach(self, contract: str, address: str) -> None: ...


_PARAM_VIEWS: Final = {
    "challenge_window": "challenge_window_s",
    "verifier_timelock": "verifier_timelock_s",
    "forced_window": "forced_window_s",
    "max_batch_gap": "max_batch_gap_s",
    "max_drift_ns": "max_drift_ns",
}
"""The contract's parameter views and the :class:`SettlementParams` field each fills."""


def attach(chain: Chain, address: str, *, from_block: int = 0) -> Deployment:
    """The :class:`Deployment` at ``address``, rebuilt from the chain alone: parameters from
    the contract's views, the genesis record from the genesis posted with batch 1 (checked
    against the contract's ``batch_hashes(0)``). ``from_block``: where readers start (the
    deployment block or earlier).

    Raises :class:`AttachError` before any batch 1 was committed (until then the genesis is
    only a hash), or when no posted genesis is the deployed one (batch 1 lied about it)."""
    address = address.lower()
    if isinstance(chain, _KnowsContracts):
        chain.attach("Settlement", address)
    try:
        views = {
            name: chain.call(address, name)
            for name in ("token", "operator", "governor", *_PARAM_VIEWS)
        }
        genesis_hash = bytes(chain.call(address, "batch_hashes", (0,)))
    except ChainReverted as error:
        raise AttachError(
            "NOT_A_SETTLEMENT_CONTRACT",
            f"{address} does not answer as a settlement contract: {error.message}",
        ) from None
    if isinstance(chain, _KnowsContracts):
        chain.attach("TestUSDC", views["token"])
    genesis = _posted_genesis(chain, address, from_block, genesis_hash)
    return Deployment(
        token=str(views["token"]).lower(),
        settlement=address,
        operator=str(views["operator"]).lower(),
        governor=str(views["governor"]).lower(),
        params=SettlementParams(
            **{field: int(views[view]) for view, field in _PARAM_VIEWS.items()}
        ),
        genesis=genesis,
        block=from_block,
    )


def _posted_genesis(chain: Chain, address: str, from_block: int, expected: bytes) -> BatchRecord:
    """Batch 0's record, from the genesis posted with a batch 1 (any: a vetoed one is as good,
    since the record is checked against the deployed hash)."""
    firsts = [
        entry
        for entry in history(chain, address, from_block)
        if isinstance(entry, PostedBatch) and entry.record.number == 1
    ]
    if not firsts:
        raise AttachError(
            "GENESIS_UNKNOWN",
            f"{address} has no batch 1 since block {from_block}: the genesis is posted with it "
            "(until then the contract holds only its hash)",
        )
    for posted in firsts:
        try:
            engine = decode_genesis(batch_data.decode(posted.data).genesis).build_engine()
        except Rejection:  # malformed data or genesis (a CodecError is one too)
            continue
        record = genesis_record(engine.state_root(), engine.height, engine.timestamp_ns)
        if record.hash() == expected:
            return record
    raise AttachError(
        "GENESIS_MISMATCH",
        f"no genesis posted with batch 1 of {address} hashes to the deployed batch 0 "
        f"({expected.hex()})",
    )


def _successor(following: BatchRecord | None) -> tuple[int | bytes, ...]:
    """The record after the last final one, or the all-zero record the contract takes when
    the last final record is the tip."""
    return (following or BatchRecord(withdrawal_root=bytes(32))).as_tuple()


def _only(logs: list[Log], event: str) -> Log:
    found = [log for log in logs if log.event == event]
    if len(found) != 1:
        raise ValueError(f"expected one {event} event, found {len(found)}")
    return found[0]


def _post_data_input(calldata: bytes) -> bytes:
    from eth_abi import decode

    (chunk,) = decode(["bytes"], calldata[4:])
    return bytes(chunk)


def _commit_header(calldata: bytes) -> BatchRecord:
    from eth_abi import decode

    _, header, _ = decode([RECORD_TYPE, RECORD_TYPE, "uint256"], calldata[4:])
    return BatchRecord.from_tuple([bytes(v) if isinstance(v, bytes) else int(v) for v in header])
