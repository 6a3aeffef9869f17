"""Stable rejection codes: what a transaction or block was refused for, by name.

A rejection is an expected outcome of bad input, not an error: the engine answers it with a
rejection event carrying one of these codes and a message a person can act on, and changes
nothing else. Codes are part of the public interface (APIs map them to their own error
numbers); a released code never changes meaning. :class:`Rejection` carries a code through the
edges (unit conversion, request parsing) that run before a transaction reaches the engine.
"""

from __future__ import annotations

import enum


class RejectCode(enum.StrEnum):
    """Why a transaction (or a whole block) was refused."""

    # Units and grids
    PRICE_NOT_ON_TICK = "PRICE_NOT_ON_TICK"
    SIZE_NOT_ON_LOT = "SIZE_NOT_ON_LOT"
    INVALID_NUMBER = "INVALID_NUMBER"
    PRICE_OUT_OF_RANGE = "PRICE_OUT_OF_RANGE"
    SIZE_OUT_OF_RANGE = "SIZE_OUT_OF_RANGE"
    # Instruments and markets
    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    INSTRUMENT_EXISTS = "INSTRUMENT_EXISTS"
    INVALID_INSTRUMENT = "INVALID_INSTRUMENT"
    MARKET_EXPIRED = "MARKET_EXPIRED"
    TOO_MANY_INSTRUMENTS = "TOO_MANY_INSTRUMENTS"
    NOT_AUTHORIZED = "NOT_AUTHORIZED"
    # Orders
    INVALID_ORDER = "INVALID_ORDER"
    POST_ONLY_WOULD_CROSS = "POST_ONLY_WOULD_CROSS"
    FOK_NOT_FILLABLE = "FOK_NOT_FILLABLE"
    NO_LIQUIDITY = "NO_LIQUIDITY"
    TOO_MANY_OPEN_ORDERS = "TOO_MANY_OPEN_ORDERS"
    TOO_MANY_PRICE_LEVELS = "TOO_MANY_PRICE_LEVELS"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    CLIENT_ORDER_ID_TOO_LONG = "CLIENT_ORDER_ID_TOO_LONG"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    NOT_YOUR_ORDER = "NOT_YOUR_ORDER"
    AMEND_BELOW_FILLED = "AMEND_BELOW_FILLED"
    ALREADY_EXPIRED = "ALREADY_EXPIRED"
    # Money, margin and positions
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"
    REDUCE_ONLY_WOULD_INCREASE = "REDUCE_ONLY_WOULD_INCREASE"
    WITHDRAWAL_EXCEEDS_FREE_COLLATERAL = "WITHDRAWAL_EXCEEDS_FREE_COLLATERAL"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    AMOUNT_OUT_OF_RANGE = "AMOUNT_OUT_OF_RANGE"
    UNKNOWN_UNDERLYING = "UNKNOWN_UNDERLYING"
    DUPLICATE_DEPOSIT = "DUPLICATE_DEPOSIT"
    DEPOSIT_OUT_OF_ORDER = "DEPOSIT_OUT_OF_ORDER"
    DUPLICATE_FORCED_WITHDRAWAL = "DUPLICATE_FORCED_WITHDRAWAL"
    FORCED_WITHDRAWAL_OUT_OF_ORDER = "FORCED_WITHDRAWAL_OUT_OF_ORDER"
    IN_LIQUIDATION_QUEUE = "IN_LIQUIDATION_QUEUE"
    # Stress, auctions and liquidation auctions
    STRESS_REDUCE_ONLY = "STRESS_REDUCE_ONLY"
    STRESS_TAKER_CAP = "STRESS_TAKER_CAP"
    MARKET_IN_AUCTION = "MARKET_IN_AUCTION"
    AUCTION_NOT_FOUND = "AUCTION_NOT_FOUND"
    BID_NOT_BETTER = "BID_NOT_BETTER"
    INSTRUMENT_HAS_POSITIONS = "INSTRUMENT_HAS_POSITIONS"
    # Operations: halts and timelocked parameter changes (see strikechain.engine.governance)
    MARKET_HALTED = "MARKET_HALTED"
    TIMELOCK_TOO_SHORT = "TIMELOCK_TOO_SHORT"
    TOO_MANY_PENDING_CHANGES = "TOO_MANY_PENDING_CHANGES"
    UNKNOWN_CHANGE = "UNKNOWN_CHANGE"
    INVALID_PARAMETER_CHANGE = "INVALID_PARAMETER_CHANGE"
    # Position limits (see strikechain.engine.position_limits)
    OPEN_INTEREST_CAP = "OPEN_INTEREST_CAP"
    POSITION_CAP = "POSITION_CAP"
    # Oracle and circuit breaker
    INVALID_ORACLE_REPORT = "INVALID_ORACLE_REPORT"
    UNKNOWN_REPORTER = "UNKNOWN_REPORTER"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    STALE_REPORT = "STALE_REPORT"
    REPORT_FROM_FUTURE = "REPORT_FROM_FUTURE"
    REPORT_NOT_NEWER = "REPORT_NOT_NEWER"
    NO_INDEX_PRICE = "NO_INDEX_PRICE"
    CIRCUIT_BREAKER_OPEN = "CIRCUIT_BREAKER_OPEN"
    # Blocks
    BLOCK_TOO_LARGE = "BLOCK_TOO_LARGE"
    BLOCK_OUT_OF_SEQUENCE = "BLOCK_OUT_OF_SEQUENCE"
    TIMESTAMP_BACKWARDS = "TIMESTAMP_BACKWARDS"
    MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"
    UNKNOWN_TRANSACTION = "UNKNOWN_TRANSACTION"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    # Encoding (see strikechain.engine.codec)
    MALFORMED_ENCODING = "MALFORMED_ENCODING"
    NON_CANONICAL_ENCODING = "NON_CANONICAL_ENCODING"
    # State commitment (see strikechain.engine.commitment)
    MALFORMED_LEAF = "MALFORMED_LEAF"
    # Snapshots (see strikechain.engine.snapshot)
    MALFORMED_SNAPSHOT = "MALFORMED_SNAPSHOT"
    SNAPSHOT_CONFIG_MISMATCH = "SNAPSHOT_CONFIG_MISMATCH"
    # Settlement (see strikechain.settlement)
    MALFORMED_BATCH_DATA = "MALFORMED_BATCH_DATA"
    CHAIN_REVERTED = "CHAIN_REVERTED"


class CancelReason(enum.StrEnum):
    """Why a resting (or partly executed) order left the book without filling."""

    REQUESTED = "REQUESTED"
    """The owner cancelled it (cancel, cancel-all, or the remainder of an IOC/market order)."""
    IMMEDIATE_OR_CANCEL = "IMMEDIATE_OR_CANCEL"
    """The unfilled remainder of an IOC, FOK or market order."""
    SELF_TRADE = "SELF_TRADE"
    """Self-trade prevention removed it, per the taker's mode."""
    MARKET_EXPIRED = "MARKET_EXPIRED"
    """Its instrument expired."""
    DELISTED = "DELISTED"
    """Its instrument was delisted."""
    FILL_LIMIT = "FILL_LIMIT"
    """A taker reached the limit on fills per order; the remainder is cancelled."""
    PRICE_BAND = "PRICE_BAND"
    """A market order's remainder met the protection band."""
    REDUCE_ONLY = "REDUCE_ONLY"
    """A reduce-only order met a position too small to reduce further."""
    LIQUIDATION = "LIQUIDATION"
    """Its sub-ledger fell below maintenance margin and entered the liquidation queue."""
    PRICE_MONITORING = "PRICE_MONITORING"
    """An immediate order's remainder, when its next fill would have left the price-monitoring
    band: the market went into an auction instead."""


class Rejection(Exception):
    """A refusal raised at an edge (unit conversion, parsing), carrying a :class:`RejectCode`."""

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
