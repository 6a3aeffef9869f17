"""The node's Prometheus metrics, in a registry of its own.

Each :class:`NodeMetrics` holds its own ``CollectorRegistry``: nothing is registered in
``prometheus_client``'s global one, so a process (or a test) may hold several nodes. The node
calls the ``on_*``/``set_*`` methods from its loop; :meth:`NodeMetrics.render` gives the text
exposition format for an HTTP ``/metrics`` handler, served with :data:`CONTENT_TYPE`.

Metrics (all named ``strikechain_*``; seconds and counts, as Prometheus names them)::

    block_interval_seconds     histogram  time between consecutive blocks
    block_transactions         histogram  transactions in each block
    block_log_sync_seconds     histogram  writing (and syncing) each block to the log
    blocks_total               counter
    ack_latency_seconds        histogram  submission received -> result acknowledged
    inbox_depth                gauge      transactions waiting for a block
    liquidation_backlog        gauge      accounts waiting to be liquidated
    batches_committed_total    counter    settlement batches the chain accepted
    gas_spent_total            counter    gas those batches cost
    chain_errors_total{kind}   counter    failed chain calls, by kind
    gc_pause_seconds           histogram  the node's scheduled garbage collections
    gc_frozen_objects          gauge      objects frozen out of routine collections

Limits: ``kind`` label values are ``[a-z0-9_]``, at most :data:`CHAIN_ERROR_KIND_CHARS_MAX`
characters, and at most :data:`CHAIN_ERROR_KINDS_MAX` distinct ones; any other kind is counted
as ``other``, so a label's cardinality never grows with what a chain says. (``prometheus_client``
also writes a ``*_created`` timestamp beside each counter and histogram.) The values observed
come from the node itself, never from a client: a negative one is a bug and raises.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from strikechain.engine.invariant import invariant

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The text exposition format :meth:`NodeMetrics.render` writes (what every Prometheus reads)."""

BLOCK_INTERVAL_BUCKETS_S: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
"""The node's block interval is 1 ms to 60 s (``node.block_interval_ms``)."""
TRANSACTIONS_BUCKETS: Final = (
    0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000,
)  # fmt: skip
"""Up to the engine's default ``max_transactions_per_block``."""
ACK_LATENCY_BUCKETS_S: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
"""From half a millisecond: an acknowledgement waits for its block and that block's log write."""
LOG_SYNC_BUCKETS_S: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
"""An fsync takes tens of microseconds on NVMe to tens of milliseconds on a network disk."""

CHAIN_ERROR_KINDS_MAX: Final = 32
CHAIN_ERROR_KIND_CHARS_MAX: Final = 32
OTHER_KIND: Final = "other"
_KIND: Final = re.compile(r"[a-z0-9_]+")


class NodeMetrics:
    """The node's metrics, observed by the node's loop and rendered for Prometheus."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.content_type = CONTENT_TYPE
        registry = self.registry
        self._block_interval = Histogram(
            "strikechain_block_interval_seconds",
            "Time between consecutive blocks.",
            buckets=BLOCK_INTERVAL_BUCKETS_S,
            registry=registry,
        )
        self._block_transactions = Histogram(
            "strikechain_block_transactions",
            "Transactions in each block.",
            buckets=TRANSACTIONS_BUCKETS,
            registry=registry,
        )
        self._log_sync = Histogram(
            "strikechain_block_log_sync_seconds",
            "Time to write (and sync) each block to the block log.",
            buckets=LOG_SYNC_BUCKETS_S,
            registry=registry,
        )
        self._blocks = Counter("strikechain_blocks", "Blocks cut.", registry=registry)
        self._ack_latency = BulkHistogram(
            "strikechain_ack_latency_seconds",
            "Time from a submission's arrival to the acknowledgement of its result.",
            ACK_LATENCY_BUCKETS_S,
            registry,
        )
        self._inbox = Gauge(
            "strikechain_inbox_depth", "Transactions waiting for a block.", registry=registry
        )
        self._backlog = Gauge(
            "strikechain_liquidation_backlog",
            "Accounts waiting to be liquidated.",
            registry=registry,
        )
        self._batches = Counter(
            "strikechain_batches_committed",
            "Settlement batches the chain accepted.",
            registry=registry,
        )
        self._gas = Counter(
            "strikechain_gas_spent", "Gas spent committing batches.", registry=registry
        )
        self._postponed = Counter(
            "strikechain_deferred_postponed",
            "Deferred state roots or snapshots moved to the next block (it fell due first).",
            registry=registry,
        )
        self._chain_errors = Counter(
            "strikechain_chain_errors",
            "Failed chain calls, by kind.",
            labelnames=("kind",),
            registry=registry,
        )
        self._chain_error_kinds: dict[str, None] = {}
        self._gc_pause = Histogram(
            "strikechain_gc_pause_seconds",
            "The node's scheduled cyclic-garbage collections (between blocks).",
            buckets=LOG_SYNC_BUCKETS_S,
            registry=registry,
        )
        self._gc_frozen = Gauge(
            "strikechain_gc_frozen_objects",
            "Objects frozen out of routine collections.",
            registry=registry,
        )

    def on_block(self, interval_s: float, transactions: int, sync_s: float) -> None:
        """A block was cut ``interval_s`` after the previous one and written in ``sync_s``."""
        _check_non_negative(interval_s=interval_s, transactions=transactions, sync_s=sync_s)
        self._block_interval.observe(interval_s)
        self._block_transactions.observe(transactions)
        self._log_sync.observe(sync_s)
        self._blocks.inc()

    def on_ack(self, latency_s: float) -> None:
        self.on_acks((latency_s,))

    def on_acks(self, latencies_s: Sequence[float]) -> None:
        """A block's acknowledgements, ``latencies_s`` after their submissions arrived."""
        if latencies_s:
            _check_non_negative(latency_s=min(latencies_s))
            self._ack_latency.observe_many(latencies_s)

    def set_inbox(self, depth: int) -> None:
        _check_non_negative(depth=depth)
        self._inbox.set(depth)

    def set_backlog(self, accounts: int) -> None:
        _check_non_negative(accounts=accounts)
        self._backlog.set(accounts)

    def on_batch(self, gas: int) -> None:
        """A settlement batch was committed on chain for ``gas``."""
        _check_non_negative(gas=gas)
        self._batches.inc()
        self._gas.inc(gas)

    def on_collection(self, pause_s: float, frozen: int) -> None:
        """The node collected garbage for ``pause_s``; ``frozen`` objects are frozen now."""
        _check_non_negative(pause_s=pause_s, frozen=frozen)
        self._gc_pause.observe(pause_s)
        self._gc_frozen.set(frozen)

    def on_postponed(self) -> None:
        """A deferred root or snapshot was moved to the next block."""
        self._postponed.inc()

    def on_chain_error(self, kind: str) -> None:
        """A chain call failed; ``kind`` names how (``timeout``, ``reverted``, ``nonce``...)."""
        self._chain_errors.labels(kind=self._bounded_kind(kind)).inc()

    def render(self) -> bytes:
        """Every metric in the text exposition format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    def _bounded_kind(self, kind: str) -> str:
        known = self._chain_error_kinds
        if kind in known:
            return kind
        valid = len(kind) <= CHAIN_ERROR_KIND_CHARS_MAX and _KIND.fullmatch(kind) is not None
        if not valid or len(known) >= CHAIN_ERROR_KINDS_MAX:
            return OTHER_KIND
        known[kind] = None
        return kind


class BulkHistogram(Collector):
    """A histogram observed a block at a time: ``prometheus_client``'s ``Histogram.observe``
    takes a lock and walks its buckets per value, which cost the node ~10 us per
    acknowledgement (thousands a block); this counts a block's values in one pass. Rendered
    like any histogram (cumulative ``le`` buckets, ``_count``, ``_sum``)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = [*buckets, math.inf]
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        registry.register(self)

    def observe_many(self, values: Iterable[float]) -> None:
        bounds, counts = self._bounds, self._counts
        total = 0.0
        for value in values:
            counts[bisect_left(bounds, value)] += 1
            total += value
        self._sum += total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        cumulative = 0
        buckets = []
        for bound, count in zip(self._bounds, self._counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), float(cumulative)))
        yield HistogramMetricFamily(
            self._name, self._documentation, buckets=buckets, sum_value=self._sum
        )


def _check_non_negative(**values: float) -> None:
    for name, value in values.items():
        invariant(value >= 0, f"metrics: {name} is {value}, a negative value is a bug")
