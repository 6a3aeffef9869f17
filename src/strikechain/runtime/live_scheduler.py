"""The agents' :class:`~strikechain.runtime.gateway.Scheduler` on the wall clock:
:class:`LiveScheduler`, for agents that trade on a live venue (in the node's process over a
:class:`~strikechain.runtime.gateway.LocalGateway`, or from another process over the client's
remote gateway). Times are the wall clock's nanoseconds since the epoch, the same time base as a
node's blocks; callbacks run on one event loop, one at a time, as the gateway protocol asks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class LiveScheduler:
    """A :class:`~strikechain.runtime.gateway.Scheduler` on ``loop`` and the wall clock."""

    __slots__ = ("_loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def now_ns(self) -> int:
        return time.time_ns()

    def call_at(self, when_ns: int, callback: Callable[[], None]) -> asyncio.TimerHandle:
        delay = max(0, when_ns - time.time_ns()) / 1e9
        return self._loop.call_later(delay, callback)

    def call_later(self, delay_ns: int, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self._loop.call_later(max(0, delay_ns) / 1e9, callback)
