"""Operating a running venue: market halts and timelocked parameter changes.

The operator (``Limits.operator``) acts through ordinary transactions of the STATE lane
(:mod:`strikechain.engine.ordering`), so every action is in the block log, replayed, announced
in the block's events and covered by the state root. Anyone else is refused
(``NOT_AUTHORIZED``) and nothing changes.

Halts (:class:`~strikechain.engine.txs.SetMarketStatus`)
- A halted market refuses new orders and amends (``MARKET_HALTED``) and does no matching: no
  continuous fills, no batch auction, no uncrossing of a call auction. Cancels and cancel-all
  go on, resting orders stay where they are, good-till-time orders still expire.
- The liquidation lane does not trade on it: a position in a halted market is left out of the
  lane's IOC orders, the backstop pool and auto-deleveraging (a sub-ledger whose only positions
  are in halted markets waits in the queue, taking no slot), and a keeper auction on it neither
  starts nor ends until the market resumes.
- Expiry, settlement and funding still run on block time: they move no order and need no
  book, and a halt must not let a position dodge its funding or keep an option alive past its
  expiry. The operator may also delist a halted market (at the mark, as any delisting).
- Resumed, the market trades as before, in the trading mode it was halted in (a call auction
  whose time ran out during the halt uncrosses in the first block after the resume).

Parameter changes (:class:`~strikechain.engine.txs.ScheduleParameterChange`)
- A change replaces every parameter of one underlying (:class:`UnderlyingParams`) with new
  ones, no sooner than ``VenueConfig.parameter_timelock_ns`` after the block that schedules it
  (``TIMELOCK_TOO_SHORT``); at most ``Limits.max_pending_parameter_changes`` wait at once
  (``TOO_MANY_PENDING_CHANGES``). The operator may cancel one before it applies
  (:class:`~strikechain.engine.txs.CancelParameterChange`; ``UNKNOWN_CHANGE`` otherwise).
- It applies at the start of the first block whose time is at or after ``effective_at_ns``,
  before that block's transactions (changes due together in the order of their time, then of
  their id): fees, margin rates, position limits and the liquidity add-on of every market on
  the underlying; its funding, marks, portfolio margin, dynamic margin, liquidation and auction
  rules; then every sub-ledger on the underlying is re-margined at once (a new margin epoch)
  and health-checked at the end of that block, so a margin increase can queue a sub-ledger
  for liquidation there. That is what the notice is for.
- Any valid parameters may replace any others, with one exception: whether the underlying's
  markets have trading-mode auctions (``auctions`` None or not) is fixed at genesis, since
  turning them off would strand an auction in progress (``INVALID_PARAMETER_CHANGE``). Their
  rules may change; a new ``price_history_samples`` keeps the newest samples that fit.
- Funding: an interval change takes effect after the funding time already scheduled.
  Dynamic margin: turned off, the multiplier returns to 1x at once (a decrease never
  liquidates anyone by itself); turned on, the estimator starts at this block; changed, the
  estimator keeps its state and the new rules apply from this block.
- Oracle: the new registry, quorum, staleness, bands and settlement window apply from this
  block's aggregation; kept reports of reporters no longer registered are forgotten. A new
  surface grid (``log_moneyness_ppm``) forgets every kept report and vol node (they are on the
  old grid): option marks fall back to intrinsic value, and the breaker opens without a
  quorum, until reporters report on the new grid (in that very block, if they follow the
  announcement). The index history keeps its samples under the new bounds.
- The venue config stays the genesis value; the parameters in force are engine state (the
  snapshot keeps those that differ from the config).
"""

from __future__ import annotations

import msgspec

from strikechain.engine.params import UnderlyingParams


class ParameterChange(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """A scheduled parameter change, waiting for its time."""

    change_id: int
    underlying: str
    effective_at_ns: int
    """Block time from which the change is in force."""
    params: UnderlyingParams


def change_problem(current: UnderlyingParams, new: UnderlyingParams) -> str | None:
    """Why ``new`` may not replace ``current`` (None: it may)."""
    if (current.auctions is None) != (new.auctions is None):
        return (
            "trading-mode auctions are on or off for good (from genesis); a change may alter "
            "their rules, not turn them on or off"
        )
    return None


def due_changes(pending: dict[int, ParameterChange], now_ns: int) -> list[ParameterChange]:
    """The changes in force at block time ``now_ns``, in the order they apply: by time, then
    by id."""
    due = [change for change in pending.values() if change.effective_at_ns <= now_ns]
    due.sort(key=_application_order)
    return due


def _application_order(change: ParameterChange) -> tuple[int, int]:
    return change.effective_at_ns, change.change_id
