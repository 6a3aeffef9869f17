"""Every bound of the API's transport (:class:`ApiLimits`, one table, relations checked) and the
token bucket that enforces the call rate (:class:`RateLimiter`).

A bucket holds ``burst`` calls and refills at ``rate_per_s``; a call takes one. Levels are
integers (billionths of a call), refilled from a nanosecond clock, so no float enters. The
buckets are bounded (``buckets_max``): when full, buckets that have refilled completely are
dropped (a full bucket is the same as a new one); if none has, a new caller is refused rather
than someone's debt forgotten.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from strikechain.engine.invariant import invariant

UNIT: Final = 1_000_000_000
"""A bucket's level counts billionths of a call: ``rate_per_s`` of them refill per nanosecond
for every call per second."""


@dataclasses.dataclass(frozen=True, slots=True)
class ApiLimits:
    """The bounds of the JSON-RPC transport, its sessions and its credentials."""

    message_bytes_max: int = 32_768
    """One request: an HTTP body, a query string, a WebSocket message."""
    send_queue_max: int = 1_000
    """Messages waiting to be written to one WebSocket; past it the connection is closed
    (code 1008): a slow consumer is dropped, never buffered without bound."""
    sessions_max: int = 10_000
    """Open WebSocket connections."""
    subscriptions_per_session_max: int = 256
    channels_per_request_max: int = 64
    channel_chars_max: int = 128
    book_levels_max: int = 100
    """Price levels per side a book channel carries."""
    tokens_max: int = 100_000
    """Access/refresh token pairs held in memory, all keys together."""
    tokens_per_key_max: int = 32
    """Pairs of one key; a new one replaces the key's oldest."""
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 86_400
    key_rate_per_s: int = 20
    key_burst: int = 100
    ip_rate_per_s: int = 10
    """Calls that carry no valid credentials, by client address (``public/auth`` included)."""
    ip_burst: int = 50
    rate_buckets_max: int = 100_000

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            invariant(getattr(self, field.name) > 0, f"ApiLimits.{field.name} must be positive")
        invariant(self.tokens_per_key_max <= self.tokens_max, "tokens per key <= tokens")
        invariant(self.access_token_ttl_s <= self.refresh_token_ttl_s, "access TTL <= refresh TTL")
        invariant(
            self.channels_per_request_max <= self.subscriptions_per_session_max,
            "channels per request <= subscriptions per session",
        )
        invariant(
            self.channels_per_request_max < self.send_queue_max,
            "a subscribe's reply and its snapshots fit the send queue",
        )
        invariant(self.key_burst >= 1 and self.ip_burst >= 1, "a bucket holds one call at least")


class RateLimiter:
    """Token buckets by caller (an API key or a client address)."""

    def __init__(
        self, rate_per_s: int, burst: int, buckets_max: int, clock_ns: Callable[[], int]
    ) -> None:
        invariant(rate_per_s > 0 and burst > 0 and buckets_max > 0, "positive rate limits")
        self._rate = rate_per_s
        self._capacity = burst * UNIT
        self._buckets_max = buckets_max
        self._clock_ns = clock_ns
        self._buckets: OrderedDict[str, tuple[int, int]] = OrderedDict()
        """caller -> (level, at ns), least recently used first."""

    def allow(self, caller: str) -> bool:
        """Take one call from ``caller``'s bucket; False if it is empty (or no room is left)."""
        now = self._clock_ns()
        found = self._buckets.get(caller)
        if found is None:
            if len(self._buckets) >= self._buckets_max and not self._make_room(now):
                return False
            level = self._capacity
        else:
            level = self._level(found, now)
            self._buckets.move_to_end(caller)
        if level < UNIT:
            self._buckets[caller] = (level, now)
            return False
        self._buckets[caller] = (level - UNIT, now)
        return True

    def _level(self, bucket: tuple[int, int], now: int) -> int:
        level, at = bucket
        return min(self._capacity, level + max(0, now - at) * self._rate)

    def _make_room(self, now: int) -> bool:
        """Drop the least recently used buckets that have refilled; True if one went."""
        dropped = False
        while self._buckets:
            caller, bucket = next(iter(self._buckets.items()))
            if self._level(bucket, now) < self._capacity:
                break
            del self._buckets[caller]
            dropped = True
        return dropped

    def __len__(self) -> int:
        return len(self._buckets)
