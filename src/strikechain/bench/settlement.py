"""``strikechain bench settlement``: what settlement costs on a real node (anvil), per
transaction and per trade.

The workload is ``bench engine``'s stream (200 blocks of 1,000 transactions: post-only adds,
cancels and IOC takers on ten perpetuals, without signatures; every transaction counts, not
only fills), run through the engine and the batcher in batches of 10 blocks (10,000
transactions), and every batch posted and committed to ``Settlement.vy`` on a local anvil node
(installed and started here, :mod:`strikechain.settlement.anvil`). Gas is read from anvil's
receipts: titanoboa keeps storage warm and would understate it.

- ``bytes_per_tx``: compressed posted bytes per transaction (target <= 20);
  ``raw_codec_bytes_per_tx``, the reference, is the same blocks in the canonical codec,
  uncompressed.
- ``bytes_per_trade_at_10000``: posted bytes per fill, batches of 10,000 transactions.
- ``gas_per_trade_at_10000``: every gas unit of posting (calldata, chunks of at most 120 KB)
  and committing, per fill (the posting method is calldata; ``posting_method`` in the file);
  ``gas_per_trade_at_10000_blobs`` the same with the data in EIP-4844 blobs (the commit's
  gas only) and ``blob_gas_per_trade_at_10000`` the blob gas on top (blob gas is priced in
  its own market).
- ``commit_execution_gas``: the median commit's gas beyond the 21,000 base and its calldata
  (target <= 100k).
- ``withdraw_gas``: the median withdrawal claim's whole gas (target <= 120k), over 32 users
  claiming from one final batch; ``withdraw_gas_max`` is the worst claim (the first: it writes
  the fresh slots of the claimed bitmap).
- ``state_growth_bytes_per_batch``: contract storage added per committed batch (one slot).
"""

from __future__ import annotations

import statistics
from typing import Any, Final

from strikechain.bench.engine import Workload
from strikechain.engine import codec
from strikechain.engine.genesis import Genesis
from strikechain.engine.params import VenueConfig
from strikechain.engine.signing import keccak256
from strikechain.engine.txs import Block, Deposit, ListInstrument, Transaction, Withdraw
from strikechain.settlement.anvil import AnvilNode
from strikechain.settlement.batcher import Batcher, BatchPolicy, ClosedBatch
from strikechain.settlement.client import Committed, Settlement, SettlementParams, deploy
from strikechain.settlement.operator import Operator
from strikechain.settlement.records import genesis_record
from strikechain.settlement.rpc import RpcChain

BLOCKS_PER_BATCH: Final = 10
BLOB_BATCHES: Final = 3
CLAIMS: Final = 32
PARAMS: Final = SettlementParams(challenge_window_s=60, max_drift_ns=10**18)


def _batches(workload: Workload) -> tuple[Genesis, Any, list[ClosedBatch]]:
    genesis = Genesis(venue=VenueConfig(), margin="none")
    engine = genesis.build_engine()
    start = genesis_record(engine.state_root(), 0, 0)
    closed: list[ClosedBatch] = []
    batcher = Batcher(
        engine,
        start,
        closed.append,
        BatchPolicy(max_blocks=BLOCKS_PER_BATCH, max_interval_ns=10**18),
        genesis=codec.frame(codec.Kind.GENESIS, codec.encode_body(genesis)),
    )
    for block in workload.blocks:
        result = engine.apply(block)
        batcher.on_block(_Committed(block, result))
    batcher.close()
    return genesis, start, closed


class _Committed:
    __slots__ = ("block", "result")

    def __init__(self, block: Block, result: Any) -> None:
        self.block = block
        self.result = result


def _post_all(node: AnvilNode, start: Any, batches: list[ClosedBatch]) -> dict[str, float]:
    operator = node.accounts[1]
    chain = RpcChain(node.url, keys={operator.address: bytes.fromhex(operator.private_key[2:])})
    deployment = deploy(
        chain,
        operator=operator.address,
        governor=node.accounts[0].address,
        genesis=start,
        params=PARAMS,
    )
    settlement = Settlement(chain, deployment)
    previous = start
    calldata: list[Committed] = []
    blobs: list[Committed] = []
    for index, batch in enumerate(batches):
        use_blobs = index >= len(batches) - BLOB_BATCHES
        committed = settlement.commit(previous, batch.record, batch.data, blobs=use_blobs)
        (blobs if use_blobs else calldata).append(committed)
        previous = committed.record
    posted_fills = [b.fills for b in batches[: len(calldata)]]
    blob_fills = [b.fills for b in batches[len(calldata) :]]
    blob_gas = sum(
        int(chain.web3.eth.get_transaction_receipt(c.commit.tx_hash).get("blobGasUsed", 0))
        for c in blobs
    )
    return {
        "gas_per_trade_at_10000": sum(c.gas for c in calldata) / sum(posted_fills),
        "gas_per_trade_at_10000_blobs": sum(c.gas for c in blobs) / sum(blob_fills),
        "blob_gas_per_trade_at_10000": blob_gas / sum(blob_fills),
        "commit_execution_gas": statistics.median(c.commit.execution_gas for c in calldata + blobs),
        "commit_execution_gas_max": max(c.commit.execution_gas for c in calldata + blobs),
    }


def _claims(node: AnvilNode) -> dict[str, float]:
    """32 users deposit, withdraw in one block, and claim from the final batch."""
    chain = RpcChain(node.url)
    genesis = Genesis(venue=VenueConfig(), margin="none")
    engine = genesis.build_engine()
    start = genesis_record(engine.state_root(), 0, 0)
    deployment = deploy(
        chain,
        operator=node.accounts[1].address,
        governor=node.accounts[0].address,
        genesis=start,
        params=PARAMS,
    )
    settlement = Settlement(chain, deployment)
    operator = Operator(settlement)
    batcher = Batcher(engine, start, operator.on_batch, BatchPolicy(max_blocks=1_000))
    users = ["0x" + keccak256(f"bench-user-{i}".encode())[-20:].hex() for i in range(CLAIMS)]
    for user in users:
        settlement.mint(user, 1_000_000)
        settlement.deposit(user, "M0", 1_000_000)
    listing = ListInstrument(account="operator", instrument=Workload(blocks=1).instruments[0])
    first: list[Transaction] = [listing, *operator.relay()]
    assert all(type(tx) in (ListInstrument, Deposit) for tx in first)
    now = chain.timestamp() * 10**9
    withdrawals: list[Transaction] = [
        Withdraw(account=user, underlying="M0", amount=400_000) for user in users
    ]
    for height, txs in enumerate((first, withdrawals), start=1):
        block = Block(height=height, timestamp_ns=now + height, transactions=txs)
        batcher.on_block(_Committed(block, engine.apply(block)))
    batcher.close()
    chain.advance(PARAMS.challenge_window_s + 1)
    gas = []
    for withdrawal_id in range(1, CLAIMS + 1):
        claim = operator.withdrawal_claim(withdrawal_id)
        receipt = settlement.withdraw(claim.record, claim.withdrawal, claim.index, claim.proof)
        gas.append(receipt.gas_used)
    return {"withdraw_gas": statistics.median(gas), "withdraw_gas_max": max(gas)}


def run() -> dict[str, float]:
    workload = Workload()
    _, start, batches = _batches(workload)
    transactions = sum(b.transactions for b in batches)
    fills = sum(b.fills for b in batches)
    posted = sum(len(b.data) for b in batches)
    raw = sum(len(codec.encode_block(block)) for block in workload.blocks)
    metrics: dict[str, float] = {
        "bytes_per_tx": posted / transactions,
        "raw_codec_bytes_per_tx": raw / transactions,
        "bytes_per_trade_at_10000": posted / fills,
        "transactions": transactions,
        "trades": fills,
        "batches": len(batches),
        "state_growth_bytes_per_batch": 32,
    }
    with AnvilNode() as node:
        metrics.update(_post_all(node, start, batches))
        metrics.update(_claims(node))
    return metrics
