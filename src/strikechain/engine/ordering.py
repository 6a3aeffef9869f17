"""The order in which a block's transactions are applied: a consensus rule, not a sequencer's whim.

The engine, not the driver, decides how a block's transactions are sequenced, so a replica
replaying the block log applies them in the same order and a sequencer gains nothing by
reshuffling within a block.

- :attr:`OrderingPolicy.LANES` (the default): state updates (listings, oracle reports,
  deposits, withdrawals and transfers, the operator's halts and parameter changes) first; then
  what the engine does on its own from block time (order and market expiries, the oracle's
  aggregate and the marks, settlement, funding); then cancels; then liquidations (keepers'
  bids, then the engine's lane); then post-only orders; then every other order. Stable by
  position inside each lane. Makers' cancels therefore beat takers in the same block,
  liquidations beat new intake, and makers beat takers: the protections that continuous
  matching on a slow chain lacks.
- :attr:`OrderingPolicy.ARRIVAL`: the order of the block, after the engine's own work. The
  lab's baseline for a sequencer that does nothing clever.
- :attr:`OrderingPolicy.FEE_PRIORITY`: highest declared ``priority_fee`` first, stable, after
  the engine's own work: a layer-1 mempool where the highest bidder goes first.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from strikechain.engine.oracle import OracleReport
from strikechain.engine.txs import (
    Amend,
    Cancel,
    CancelAll,
    CancelParameterChange,
    DelistInstrument,
    Deposit,
    ForcedWithdrawal,
    LiquidationBid,
    ListInstrument,
    PlaceOrder,
    ScheduleParameterChange,
    SetMarginMode,
    SetMarketStatus,
    Transaction,
    Transfer,
    Withdraw,
)


class OrderingPolicy(enum.IntEnum):
    LANES = 1
    ARRIVAL = 2
    FEE_PRIORITY = 3


class Lane(enum.IntEnum):
    """Lanes of the default policy, in the order they run."""

    STATE = 0
    ENGINE = 1
    """The engine's own work from block time; no transaction sits here."""
    CANCELS = 2
    LIQUIDATIONS = 3
    """Keepers' bids in liquidation auctions (the baseline policy); the engine's own
    liquidation lane runs at the end of this lane."""
    POST_ONLY = 4
    ORDERS = 5


_FIXED_LANES: dict[type, Lane] = {
    ListInstrument: Lane.STATE,
    DelistInstrument: Lane.STATE,
    OracleReport: Lane.STATE,
    Deposit: Lane.STATE,
    Withdraw: Lane.STATE,
    ForcedWithdrawal: Lane.STATE,
    Transfer: Lane.STATE,
    SetMarginMode: Lane.STATE,
    SetMarketStatus: Lane.STATE,
    ScheduleParameterChange: Lane.STATE,
    CancelParameterChange: Lane.STATE,
    Cancel: Lane.CANCELS,
    CancelAll: Lane.CANCELS,
    LiquidationBid: Lane.LIQUIDATIONS,
}


_FIXED_LANE_NUMBERS: dict[type, int] = {kind: int(lane) for kind, lane in _FIXED_LANES.items()}
"""The same as plain ints: indexing a list with an enum member costs a method call."""


def lane_of(transaction: Transaction) -> Lane:
    """The lane of one transaction under :attr:`OrderingPolicy.LANES`."""
    fixed = _FIXED_LANES.get(type(transaction))
    if fixed is not None:
        return fixed
    if isinstance(transaction, PlaceOrder | Amend) and transaction.post_only:
        return Lane.POST_ONLY
    return Lane.ORDERS


def sequence(
    transactions: Sequence[Transaction], policy: OrderingPolicy
) -> tuple[list[int], list[int]]:
    """Positions to apply before and after the engine's own work, in application order."""
    if policy == OrderingPolicy.ARRIVAL:
        return [], list(range(len(transactions)))
    if policy == OrderingPolicy.FEE_PRIORITY:
        fees = [tx.priority_fee for tx in transactions]
        return [], sorted(range(len(transactions)), key=lambda i: -fees[i])
    lanes: list[list[int]] = [[] for _ in Lane]
    append = [lane.append for lane in lanes]
    fixed = _FIXED_LANE_NUMBERS
    post_only, orders = int(Lane.POST_ONLY), int(Lane.ORDERS)
    for index, tx in enumerate(transactions):
        lane = fixed.get(type(tx))
        if lane is None:
            lane = post_only if tx.post_only else orders  # type: ignore[union-attr]
        append[lane](index)
    after: list[int] = []
    for lane_number in (Lane.CANCELS, Lane.LIQUIDATIONS, Lane.POST_ONLY, Lane.ORDERS):
        after.extend(lanes[lane_number])
    return lanes[Lane.STATE], after
