"""Every bound of the engine in one table, with the relations between them asserted.

TigerBeetle's rule: put a limit on everything. External input over a limit is rejected with a
code; internal overflow is a bug. The table is a value, chosen by the venue's operator at genesis
(the venue's economics, not these bounds, change later, by timelocked parameter changes: see
:mod:`strikechain.engine.governance`); the relations below hold for every table, so a bad table
is refused before it can run.
"""

from __future__ import annotations

import msgspec

from strikechain.engine.invariant import invariant


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds on state and on the work of one block."""

    max_transactions_per_block: int = 10_000
    """A block with more transactions is rejected whole (``BLOCK_TOO_LARGE``)."""
    max_open_orders_per_account: int = 5_000
    """Across instruments; an options market maker quotes hundreds of strikes."""
    max_price_levels_per_side: int = 5_000
    """Per book side; an order that would open one more level is rejected."""
    max_fills_per_order: int = 1_000
    """A taker stops after this many fills; the remainder is cancelled (``FILL_LIMIT``)."""
    max_instruments: int = 10_000
    """Listed at once."""
    max_client_order_id_length: int = 64
    max_account_length: int = 64
    max_instrument_name_length: int = 64
    max_price_ticks: int = 10**15
    """Prices and sizes stay far below 2**63, so products of two fit in 128 bits."""
    max_size_lots: int = 10**12
    max_amount_minor: int = 10**15
    """Deposits, withdrawals and transfers: at most a billion USDC each."""
    max_oracle_reports_per_block: int = 1_000
    """Signature checks are the dearest work of a block; a block with more is rejected."""
    market_order_band_ppm: int = 50_000
    """A market order fills no further than this from the best opposite price (5%)."""
    operator: str = "operator"
    """The account allowed to list and delist instruments, halt and resume markets, and
    schedule parameter changes."""
    max_pending_parameter_changes: int = 16
    """Scheduled parameter changes not yet in force, across underlyings
    (``TOO_MANY_PENDING_CHANGES``); each is applied at a block's start, so this also bounds
    that work."""
    max_reason_length: int = 256
    """Characters of the reason a halt or resume gives (``MESSAGE_TOO_LARGE``)."""

    def __post_init__(self) -> None:
        positive = (
            self.max_transactions_per_block,
            self.max_open_orders_per_account,
            self.max_price_levels_per_side,
            self.max_fills_per_order,
            self.max_instruments,
            self.max_client_order_id_length,
            self.max_account_length,
            self.max_instrument_name_length,
            self.max_price_ticks,
            self.max_size_lots,
            self.max_amount_minor,
            self.max_oracle_reports_per_block,
            self.max_pending_parameter_changes,
            self.max_reason_length,
        )
        invariant(all(value > 0 for value in positive), "every limit must be positive")
        invariant(0 < self.market_order_band_ppm < 1_000_000, "the band is a fraction below 1")
        invariant(
            self.max_price_ticks < 2**62 and self.max_size_lots < 2**62,
            "prices and sizes must fit in signed 64-bit integers with room to spare",
        )
        invariant(
            self.max_price_levels_per_side <= self.max_open_orders_per_account * 1_000,
            "levels per side are bounded by the orders that can create them",
        )
        invariant(
            0 < len(self.operator) <= self.max_account_length, "the operator is a valid account"
        )


DEFAULT_LIMITS = Limits()
