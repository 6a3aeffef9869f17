"""An inbox's records: a sender's :class:`Receipt` and a waiting transaction (:class:`Pending`).

Frozen Structs apart from :mod:`strikechain.runtime.inbox`, which is compiled (mypyc compiles
no msgspec Struct).
"""

from __future__ import annotations

import msgspec

from strikechain.engine.txs import Transaction


class Receipt(msgspec.Struct, frozen=True, gc=False):
    """What a sender gets back: its transaction's place in the inbox."""

    sequence: int
    arrival_ns: int


class Pending(msgspec.Struct, frozen=True, gc=False):
    """A transaction waiting in the inbox."""

    sequence: int
    arrival_ns: int
    tx: Transaction
