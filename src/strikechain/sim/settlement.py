"""The lab's venue settling on the embedded chain: what settlement costs a design, measured.

With ``[settlement] enabled = true`` a run deploys the settlement contract on titanoboa's EVM
(in-process: the lab's loop is virtual and may wait), makes every setup deposit on chain
first (the contract only lets a batch consume deposits it received), and adds the batcher to
the runtime's sinks; each batch is posted (calldata) and committed as it closes, the chain's
clock following the kernel's.

What it measures, per batch (the ``batches`` table) and in the metrics:

- ``settlement_latency_s_p50`` / ``_p99``: from each block's time to the time its batch is
  final: committed at the next chain block after the batch closes (``l1_block_s``), final a
  challenge window later. This is when a withdrawal requested in that block can be claimed.
- ``settlement_bytes_per_trade``, ``settlement_bytes_per_tx``: posted (compressed) bytes.
- ``settlement_gas_per_trade``: gas of posting and committing per fill, from the embedded
  chain's receipts. Calldata gas is exact; execution gas is understated (titanoboa keeps
  storage warm), so the published per-commit numbers are ``bench settlement``'s, on anvil.
- ``settlement_state_bytes``: contract storage written: one slot per batch and two per
  deposit (its hash and the running total).

The money check runs after every batch: what the contract holds equals every deposit made
on chain, and the engine's money plus what it paid out (withdrawals) and what it has not
credited yet equals the same.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from strikechain.engine.commitment import account_address
from strikechain.engine.engine import Engine
from strikechain.engine.genesis import Genesis, encode_genesis
from strikechain.engine.invariant import invariant
from strikechain.engine.txs import Deposit
from strikechain.settlement.batcher import Batcher, BatchPolicy, ClosedBatch
from strikechain.settlement.client import Settlement, SettlementParams, deploy
from strikechain.settlement.embedded import BoaChain
from strikechain.settlement.operator import Operator
from strikechain.settlement.records import genesis_record

NANOS_PER_SECOND: Final = 1_000_000_000
OPERATOR_ADDRESS: Final = account_address("strikechain-lab/operator")
GOVERNOR_ADDRESS: Final = account_address("strikechain-lab/governor")
SLOT_BYTES: Final = 32


class SettlementSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[settlement]``: whether the venue settles on the embedded chain, and how."""

    enabled: bool = False
    batch_blocks: int = 1_000
    """A batch closes after this many blocks..."""
    batch_interval_s: float = 10.0
    """... or once its blocks span this much block time, whichever comes first."""
    challenge_window_s: int = 600
    """Seconds a committed root waits before it is final (production venues use hours)."""
    l1_block_s: float = 12.0
    """The settlement chain's block time: a commit lands at its next block."""

    def __post_init__(self) -> None:
        invariant(self.batch_blocks > 0, "settlement.batch_blocks must be at least 1")
        invariant(self.batch_interval_s >= 0, "settlement.batch_interval_s must be >= 0")
        invariant(self.challenge_window_s >= 0, "settlement.challenge_window_s must be >= 0")
        invariant(self.l1_block_s > 0, "settlement.l1_block_s must be positive")


class LabSettlement:
    """The contract, the operator and the batcher of one run (see the module docstring)."""

    def __init__(
        self, section: SettlementSection, engine: Engine, genesis: Genesis, start_ns: int
    ) -> None:
        self.section = section
        self.engine = engine
        self.chain = BoaChain(timestamp=start_ns // NANOS_PER_SECOND)
        start = genesis_record(engine.state_root(), engine.height, engine.timestamp_ns)
        params = SettlementParams(
            challenge_window_s=section.challenge_window_s,
            max_drift_ns=10**18,  # the chain's clock follows the kernel's in whole seconds
        )
        deployment = deploy(
            self.chain,
            operator=OPERATOR_ADDRESS,
            governor=GOVERNOR_ADDRESS,
            genesis=start,
            params=params,
        )
        self.settlement = Settlement(self.chain, deployment)
        self.operator = Operator(self.settlement)
        self.batcher = Batcher(
            engine,
            start,
            self._commit,
            BatchPolicy(
                max_blocks=section.batch_blocks,
                max_interval_ns=int(section.batch_interval_s * NANOS_PER_SECOND),
            ),
            genesis=encode_genesis(genesis),
        )
        self.now_ns = start_ns
        self.rows: list[dict[str, Any]] = []
        self._block_times: list[tuple[int, int]] = []  # (height, time) of the open batch
        self.deposits = 0

    def deposit_on_chain(self, deposits: list[Deposit]) -> None:
        """Make each setup deposit on chain, in order, so their indices match the engine's."""
        for deposit in deposits:
            owner = account_address(deposit.beneficiary)
            self.settlement.mint(owner, deposit.amount)
            receipt = self.settlement.deposit(
                owner, deposit.underlying, deposit.amount, beneficiary=owner
            )
            (event,) = [log for log in receipt.logs if log.event == "Deposited"]
            invariant(event.args["index"] == deposit.deposit_id, "deposit indices diverged")
            self.deposits += 1

    def on_block(self, committed: Any) -> None:
        """The runtime's sink: note the block's time, then hand it to the batcher."""
        block = committed.block
        self.now_ns = block.timestamp_ns
        self._block_times.append((block.height, block.timestamp_ns))
        self.batcher.on_block(committed)

    def flush(self) -> None:
        """Close and commit the open batch (the run's end)."""
        self.batcher.close()

    def _commit(self, closed: ClosedBatch) -> None:
        section = self.section
        close_s = -(-self.now_ns // NANOS_PER_SECOND)
        blocks = -(-close_s // section.l1_block_s)
        landed_s = int(blocks * section.l1_block_s)
        behind = landed_s - self.chain.timestamp()
        if behind > 0:
            self.chain.advance(behind)
        committed = self.operator.on_batch(closed)
        self._check_money()
        final_ns = (committed.record.committed_at + section.challenge_window_s) * NANOS_PER_SECOND
        times = [time for height, time in self._block_times if height <= closed.record.last_block]
        self._block_times = [
            entry for entry in self._block_times if entry[0] > closed.record.last_block
        ]
        self.rows.append(
            {
                "batch": committed.record.number,
                "first_block": closed.record.first_block,
                "last_block": closed.record.last_block,
                "transactions": closed.transactions,
                "trades": closed.fills,
                "withdrawals": len(closed.withdrawals),
                "posted_bytes": committed.posted_bytes,
                "gas": committed.gas,
                "calldata_gas": sum(r.calldata_gas for r in committed.receipts),
                "committed_ns": committed.record.committed_at * NANOS_PER_SECOND,
                "final_ns": final_ns,
                "latency_s_min": (final_ns - max(times)) / NANOS_PER_SECOND,
                "latency_s_max": (final_ns - min(times)) / NANOS_PER_SECOND,
                "latencies_s": [(final_ns - t) / NANOS_PER_SECOND for t in times],
            }
        )

    def _check_money(self) -> None:
        settlement, engine = self.settlement, self.engine
        deposited = settlement.read("deposit_total")
        holdings = settlement.holdings()
        claimed = settlement.read("claimed_total")
        invariant(holdings == deposited - claimed, "the contract lost track of its money")
        money = engine.total_cash() + engine.fee_pool + engine.insurance_fund + engine.dust
        outstanding = engine.withdrawals_total - claimed
        uncredited = deposited - engine.deposits_total
        invariant(
            holdings == money + outstanding + uncredited,
            f"on chain {holdings}, in the engine {money} + {outstanding} owed + "
            f"{uncredited} uncredited",
        )

    def metrics(self) -> dict[str, float | int]:
        rows = self.rows
        if not rows:
            return {"settlement_batches": 0}
        import numpy as np

        latencies = np.array([value for row in rows for value in row["latencies_s"]])
        trades = sum(row["trades"] for row in rows)
        transactions = sum(row["transactions"] for row in rows)
        posted = sum(row["posted_bytes"] for row in rows)
        gas = sum(row["gas"] for row in rows)
        return {
            "settlement_batches": len(rows),
            "settlement_latency_s_p50": float(np.percentile(latencies, 50)),
            "settlement_latency_s_p99": float(np.percentile(latencies, 99)),
            "settlement_bytes_per_tx": posted / max(transactions, 1),
            "settlement_bytes_per_trade": posted / trades if trades else float("nan"),
            "settlement_gas_per_trade": gas / trades if trades else float("nan"),
            "settlement_posted_bytes": posted,
            "settlement_state_bytes": SLOT_BYTES * (len(rows) + 2 * self.deposits),
        }

    def frame(self) -> Any:
        import pandas as pd  # type: ignore[import-untyped]

        return pd.DataFrame(
            [{k: v for k, v in row.items() if k != "latencies_s"} for row in self.rows]
        )
