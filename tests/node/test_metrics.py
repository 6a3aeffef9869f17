"""The node's Prometheus metrics (parsed back from the text format) and its JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from strikechain.engine.invariant import InvariantViolation
from strikechain.node.logging import JsonFormatter, configure
from strikechain.node.metrics import (
    CHAIN_ERROR_KINDS_MAX,
    CONTENT_TYPE,
    OTHER_KIND,
    NodeMetrics,
)


def samples(metrics: NodeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the rendered text, by name and sorted labels."""
    text = metrics.render().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: NodeMetrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, tuple(sorted(labels.items())))]


def test_fresh_metrics_render() -> None:
    metrics = NodeMetrics()
    assert metrics.content_type == CONTENT_TYPE
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")
    families = {
        family.name: family.type
        for family in text_string_to_metric_families(metrics.render().decode())
        if not family.name.endswith("_created")  # prometheus_client's creation timestamps
    }
    assert families == {
        "strikechain_block_interval_seconds": "histogram",
        "strikechain_block_transactions": "histogram",
        "strikechain_block_log_sync_seconds": "histogram",
        "strikechain_blocks": "counter",
        "strikechain_ack_latency_seconds": "histogram",
        "strikechain_inbox_depth": "gauge",
        "strikechain_liquidation_backlog": "gauge",
        "strikechain_batches_committed": "counter",
        "strikechain_gas_spent": "counter",
        "strikechain_deferred_postponed": "counter",
        "strikechain_chain_errors": "counter",
        "strikechain_gc_pause_seconds": "histogram",
        "strikechain_gc_frozen_objects": "gauge",
    }
    assert value(metrics, "strikechain_blocks_total") == 0


def test_postponed_roots_are_counted() -> None:
    metrics = NodeMetrics()
    metrics.on_postponed()
    metrics.on_postponed()
    assert value(metrics, "strikechain_deferred_postponed_total") == 2


def test_each_instance_has_its_own_registry() -> None:
    first, second = NodeMetrics(), NodeMetrics()
    first.on_block(0.1, 3, 0.001)
    assert value(first, "strikechain_blocks_total") == 1
    assert value(second, "strikechain_blocks_total") == 0


def test_blocks() -> None:
    metrics = NodeMetrics()
    for interval_s, transactions, sync_s in [(0.1, 0, 0.0002), (0.1, 7, 0.0004), (0.25, 300, 0.03)]:
        metrics.on_block(interval_s, transactions, sync_s)
    assert value(metrics, "strikechain_blocks_total") == 3
    assert value(metrics, "strikechain_block_interval_seconds_count") == 3
    assert value(metrics, "strikechain_block_interval_seconds_sum") == pytest.approx(0.45)
    assert value(metrics, "strikechain_block_interval_seconds_bucket", le="0.1") == 2
    assert value(metrics, "strikechain_block_interval_seconds_bucket", le="0.25") == 3
    assert value(metrics, "strikechain_block_transactions_sum") == 307
    assert value(metrics, "strikechain_block_transactions_bucket", le="0.0") == 1
    assert value(metrics, "strikechain_block_transactions_bucket", le="10.0") == 2
    assert value(metrics, "strikechain_block_transactions_bucket", le="+Inf") == 3
    assert value(metrics, "strikechain_block_log_sync_seconds_sum") == pytest.approx(0.0306)
    assert value(metrics, "strikechain_block_log_sync_seconds_bucket", le="0.00025") == 1


def test_ack_latency_buckets_start_at_half_a_millisecond() -> None:
    metrics = NodeMetrics()
    for latency_s in (0.0003, 0.0005, 0.0007, 0.002, 0.2):
        metrics.on_ack(latency_s)
    assert value(metrics, "strikechain_ack_latency_seconds_count") == 5
    assert value(metrics, "strikechain_ack_latency_seconds_sum") == pytest.approx(0.2035)
    assert value(metrics, "strikechain_ack_latency_seconds_bucket", le="0.0005") == 2
    assert value(metrics, "strikechain_ack_latency_seconds_bucket", le="0.001") == 3
    assert value(metrics, "strikechain_ack_latency_seconds_bucket", le="0.0025") == 4


def test_gauges_and_batches() -> None:
    metrics = NodeMetrics()
    metrics.set_inbox(120)
    metrics.set_inbox(40)
    metrics.set_backlog(3)
    metrics.on_batch(180_000)
    metrics.on_batch(95_500)
    assert value(metrics, "strikechain_inbox_depth") == 40
    assert value(metrics, "strikechain_liquidation_backlog") == 3
    assert value(metrics, "strikechain_batches_committed_total") == 2
    assert value(metrics, "strikechain_gas_spent_total") == 275_500


def test_chain_errors_by_kind_with_bounded_labels() -> None:
    metrics = NodeMetrics()
    metrics.on_chain_error("timeout")
    metrics.on_chain_error("timeout")
    metrics.on_chain_error("reverted")
    for bad in ("Timeout", "rpc error: -32000", "x" * 33, ""):
        metrics.on_chain_error(bad)
    assert value(metrics, "strikechain_chain_errors_total", kind="timeout") == 2
    assert value(metrics, "strikechain_chain_errors_total", kind="reverted") == 1
    assert value(metrics, "strikechain_chain_errors_total", kind=OTHER_KIND) == 4
    for index in range(2 * CHAIN_ERROR_KINDS_MAX):
        metrics.on_chain_error(f"kind_{index}")
    kinds = {
        dict(labels)["kind"]
        for (name, labels) in samples(metrics)
        if name == "strikechain_chain_errors_total"
    }
    assert len(kinds) <= CHAIN_ERROR_KINDS_MAX + 1
    assert OTHER_KIND in kinds


@pytest.mark.parametrize(
    "observe",
    [
        lambda m: m.on_block(-0.1, 1, 0.0),
        lambda m: m.on_block(0.1, -1, 0.0),
        lambda m: m.on_block(0.1, 1, math.nan),
        lambda m: m.on_ack(-1e-6),
        lambda m: m.set_inbox(-1),
        lambda m: m.set_backlog(-1),
        lambda m: m.on_batch(-5),
    ],
)
def test_negative_values_are_bugs(observe: Callable[[NodeMetrics], None]) -> None:
    metrics = NodeMetrics()
    with pytest.raises(InvariantViolation):
        observe(metrics)


# -- JSON logs ----------------------------------------------------------------------------------


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    name = "strikechain.test_json_logs"
    stream = io.StringIO()
    configure("debug", stream, logger=name)
    logger = logging.getLogger(name)
    logger.propagate = False
    yield logger, stream
    for installed in [h for h in logger.handlers if isinstance(h.formatter, JsonFormatter)]:
        logger.removeHandler(installed)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_json_lines(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    logger.info("block %d cut", 7, extra={"height": 7, "state_root": "0xab", "level": "x"})
    logger.debug("multi\nline", extra={"path": __import__("pathlib").Path("/data")})
    logger.warning("unicode: µs ✓")
    first, second, third = lines(stream)
    assert set(first) == {"ts", "level", "logger", "msg", "height", "state_root", "level_"}
    assert first["level"] == "INFO"
    assert first["logger"] == "strikechain.test_json_logs"
    assert first["msg"] == "block 7 cut"
    assert first["height"] == 7
    assert first["level_"] == "x"
    assert isinstance(first["ts"], str)
    assert first["ts"].endswith("Z")
    assert second["msg"] == "multi\nline"
    assert second["path"] == "/data"
    assert second["level"] == "DEBUG"
    assert third["msg"] == "unicode: µs ✓"


def test_json_exception_and_level(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    configure(logging.WARNING, stream, logger=logger.name)
    ours = [h for h in logger.handlers if isinstance(h.formatter, JsonFormatter)]
    assert len(ours) == 1, "configure replaces the handler it installed"
    logger.info("dropped")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("chain call failed", extra={"kind": "timeout"})
    (line,) = lines(stream)
    assert line["level"] == "ERROR"
    assert line["kind"] == "timeout"
    assert isinstance(line["exc"], str)
    assert "RuntimeError: boom" in line["exc"]


def test_long_messages_are_cut() -> None:
    record = logging.LogRecord("n", logging.INFO, "p", 1, "x" * 100, None, None)
    line = json.loads(JsonFormatter(max_message_chars=10).format(record))
    assert line["msg"] == "x" * 10 + "... (90 more characters)"


def test_unknown_level_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure("loud", io.StringIO(), logger="strikechain.test_unknown_level")
