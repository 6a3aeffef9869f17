"""strikechain.engine: the venue as a pure, deterministic state machine.

``Engine.apply(block) -> BlockResult`` is the only way venue state changes. The engine reads
no clock, environment or randomness; the same state and block give the same events on every
machine. Parts: books and matching (:mod:`.book`, :mod:`.engine`, :mod:`.auction`), the order of
a block (:mod:`.ordering`), transactions and events as values (:mod:`.txs`, :mod:`.events`),
instruments (:mod:`.instruments`, :mod:`.chain`, :mod:`.calendar`), units (:mod:`.units`),
limits (:mod:`.limits`) and rejection codes (:mod:`.codes`).
"""

from strikechain.engine.codes import CancelReason, RejectCode, Rejection
from strikechain.engine.engine import Engine
from strikechain.engine.events import BlockResult, Event
from strikechain.engine.instruments import Instrument, InstrumentKind, MatchingMode, OptionType
from strikechain.engine.limits import DEFAULT_LIMITS, Limits
from strikechain.engine.ordering import OrderingPolicy
from strikechain.engine.txs import (
    Amend,
    Block,
    Cancel,
    CancelAll,
    DelistInstrument,
    ListInstrument,
    OrderType,
    PlaceOrder,
    PostOnly,
    SelfTrade,
    Side,
    TimeInForce,
    Transaction,
)

__all__ = [
    "DEFAULT_LIMITS",
    "Amend",
    "Block",
    "BlockResult",
    "Cancel",
    "CancelAll",
    "CancelReason",
    "DelistInstrument",
    "Engine",
    "Event",
    "Instrument",
    "InstrumentKind",
    "Limits",
    "ListInstrument",
    "MatchingMode",
    "OptionType",
    "OrderType",
    "OrderingPolicy",
    "PlaceOrder",
    "PostOnly",
    "RejectCode",
    "Rejection",
    "SelfTrade",
    "Side",
    "TimeInForce",
    "Transaction",
]
