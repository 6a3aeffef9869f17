"""strikechain.runtime: the one driver of the engine, for the lab and the node alike.

inbox -> block cutting -> engine -> block log -> sinks. The core does no I/O and reads no
clock: time is passed into every call, the log and the sinks are passed in. Parts: the bounded
inbox (:mod:`.inbox`), the block-production policy (:mod:`.selection`: which transactions;
:mod:`.cutting`: when), the driver (:mod:`.runtime`), the block log (:mod:`.log`, with the
SQLite adapter in :mod:`.sqlite_log` and the genesis record in :mod:`.genesis`), replay and
recovery (:mod:`.replay`), and the interfaces agents and clients use (:mod:`.gateway`).
"""

from strikechain.runtime.cutting import AnyOf, ByInterval, BySize, BySlot, CutReason, External
from strikechain.runtime.errors import BlockRefused, RuntimeCode, RuntimeRejection, RuntimeStopped
from strikechain.runtime.gateway import (
    Dispatcher,
    Gateway,
    LocalGateway,
    Notice,
    Outcome,
    Scheduler,
    Topic,
)
from strikechain.runtime.genesis import Genesis
from strikechain.runtime.inbox import Inbox, Pending, Receipt
from strikechain.runtime.log import BlockLog, BlockRecord, LogError, MemoryLog, SnapshotRecord
from strikechain.runtime.replay import ReplayReport, rebuild, replay
from strikechain.runtime.runtime import (
    BlockPolicy,
    Committed,
    Runtime,
    RuntimeConfig,
    Selected,
    Sink,
)
from strikechain.runtime.selection import ArrivalOrder, BaseFeeRule, FeePriority
from strikechain.runtime.sqlite_log import SqliteLog, Sync

__all__ = [
    "AnyOf",
    "ArrivalOrder",
    "BaseFeeRule",
    "BlockLog",
    "BlockPolicy",
    "BlockRecord",
    "BlockRefused",
    "ByInterval",
    "BySize",
    "BySlot",
    "Committed",
    "CutReason",
    "Dispatcher",
    "External",
    "FeePriority",
    "Gateway",
    "Genesis",
    "Inbox",
    "LocalGateway",
    "LogError",
    "MemoryLog",
    "Notice",
    "Outcome",
    "Pending",
    "Receipt",
    "ReplayReport",
    "Runtime",
    "RuntimeCode",
    "RuntimeConfig",
    "RuntimeRejection",
    "RuntimeStopped",
    "Scheduler",
    "Selected",
    "Sink",
    "SnapshotRecord",
    "SqliteLog",
    "Sync",
    "Topic",
    "rebuild",
    "replay",
]
