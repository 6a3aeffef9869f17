"""A venue that settles on a chain: the engine, the batcher, the operator and the contract.

Blocks carry signed oracle reports (tests.engine.venue's reporters), the operator's relayed
deposits and forced withdrawals, and whatever the test sends. ``settle()`` closes the open
batch and commits it; ``wait_final()`` moves the chain past the challenge window.
"""

from __future__ import annotations

from typing import Final

from strikechain.engine.commitment import ledger_leaf
from strikechain.engine.engine import Engine
from strikechain.engine.events import BlockResult, WithdrawalRequested
from strikechain.engine.genesis import Genesis, encode_genesis
from strikechain.engine.oracle import OracleReport, sign_report
from strikechain.engine.params import VenueConfig
from strikechain.engine.signing import address_of, keccak256
from strikechain.engine.txs import Block, ListInstrument, PlaceOrder, PostOnly, Transaction
from strikechain.settlement.batcher import Batcher, BatchPolicy
from strikechain.settlement.chain import Chain
from strikechain.settlement.client import Committed, Settlement, SettlementParams, deploy
from strikechain.settlement.operator import Operator
from strikechain.settlement.records import genesis_record
from tests.engine.venue import BTC_PERP, BTC_PRICE, KEYS, SECOND, START, USDC, btc_perp, config

OPERATOR: Final = "0x" + "0e" * 20
GOVERNOR: Final = "0x" + "90" * 20
VERIFIER: Final = "0x" + "fe" * 20
ALICE: Final = "0x" + "a1" * 20
BOB: Final = "0x" + "b0" * 20
CAROL: Final = "0x" + "c0" * 20
PARAMS: Final = SettlementParams(
    challenge_window_s=600,
    verifier_timelock_s=3_600,
    forced_window_s=1_800,
    max_batch_gap_s=7_200,
    max_drift_ns=30 * SECOND,
)
TICKS: Final = BTC_PRICE * 2 // USDC  # tick 0.5 USDC


class SettledVenue:
    def __init__(
        self,
        chain: Chain,
        *,
        blobs: bool = False,
        confirmations: int = 0,
        venue: VenueConfig | None = None,
        operator: str = OPERATOR,
    ) -> None:
        self.chain = chain
        self.genesis = Genesis(venue=venue or config())
        self.prices = {"BTC": BTC_PRICE, "ETH": 4_000 * USDC}
        self.engine: Engine = self.genesis.build_engine()
        self.now = START
        if chain.timestamp() < START // SECOND:
            chain.advance(START // SECOND - chain.timestamp())
        start = genesis_record(self.engine.state_root(), 0, self.engine.timestamp_ns)
        self.deployment = deploy(
            chain, operator=operator, governor=GOVERNOR, genesis=start, params=PARAMS
        )
        self.settlement = Settlement(chain, self.deployment)
        self.operator = Operator(self.settlement, blobs=blobs, confirmations=confirmations)
        self.batcher = Batcher(
            self.engine,
            start,
            self._commit,
            BatchPolicy(max_blocks=10_000, max_interval_ns=10**18),
            genesis=encode_genesis(self.genesis),
        )
        self.committed: list[Committed] = []
        self.results: list[BlockResult] = []
        self.blocks: list[Block] = []
        """Every block applied: the venue's block log."""
        self.block(ListInstrument(account="operator", instrument=btc_perp()), report=False)

    def _commit(self, closed: object) -> None:
        self.committed.append(self.operator.on_batch(closed))  # type: ignore[arg-type]

    def reports(self) -> list[Transaction]:
        return [
            sign_report(
                OracleReport(
                    account=address_of(key),
                    underlying=underlying,
                    timestamp_ns=self.now,
                    price=price,
                    confidence=USDC,
                ),
                key,
            )
            for underlying, price in self.prices.items()
            for key in KEYS
        ]

    def block(self, *transactions: Transaction, report: bool = True) -> BlockResult:
        """One engine block: relayed chain events, reports, then ``transactions``."""
        self.now += SECOND
        txs = [*self.operator.relay(), *(self.reports() if report else []), *transactions]
        block = Block(height=self.engine.height + 1, timestamp_ns=self.now, transactions=txs)
        result = self.engine.apply(block)
        assert not result.rejected, result.reason
        self.engine.check()
        self.batcher.on_block(_Committed(block, result))
        self.results.append(result)
        self.blocks.append(block)
        return result

    def settle(self) -> Committed:
        """Close the open batch and commit it (the chain's clock caught up first)."""
        behind = -(-self.now // SECOND) - self.chain.timestamp()
        if behind > 0:
            self.chain.advance(behind)
        closed = self.batcher.close()
        assert closed is not None
        return self.committed[-1]

    def wait_final(self) -> None:
        self.chain.advance(PARAMS.challenge_window_s + 1)

    def fund(self, account: str, amount: int, underlying: str = "BTC") -> None:
        """Mint, deposit on chain, and let the next block credit it."""
        self.settlement.mint(account, amount)
        self.settlement.deposit(account, underlying, amount)

    def trade(self, buyer: str, seller: str, lots: int, ticks: int = TICKS) -> BlockResult:
        return self.block(
            PlaceOrder(
                account=seller,
                instrument=BTC_PERP,
                side=-1,
                price_ticks=ticks,
                size_lots=lots,
                post_only=PostOnly.REJECT,
            ),
            PlaceOrder(
                account=buyer, instrument=BTC_PERP, side=1, price_ticks=ticks, size_lots=lots
            ),
        )

    def withdrawals(self) -> list[WithdrawalRequested]:
        return [e for r in self.results for e in r.events if isinstance(e, WithdrawalRequested)]

    def money(self) -> int:
        """Everything the engine holds: sub-ledgers' cash and the venue's own balances."""
        engine = self.engine
        return engine.total_cash() + engine.fee_pool + engine.insurance_fund + engine.dust

    def leaf(self, account: str, underlying: str = "BTC") -> tuple[bytes, int, list[bytes], bytes]:
        """The account's leaf now, with its index, proof and rest hash (after a state root)."""
        self.engine.state_root()
        index, proof, rest = self.engine.ledger_proof(account, underlying)
        ledger = self.engine.get_ledger(account, underlying)
        assert ledger is not None
        return ledger_leaf(ledger), index, proof, rest


class _Committed:
    __slots__ = ("block", "result")

    def __init__(self, block: Block, result: BlockResult) -> None:
        self.block = block
        self.result = result


def key_of(name: str) -> bytes:
    return keccak256(name.encode())
