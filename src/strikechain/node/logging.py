"""Structured logs: one JSON object per line, from the standard ``logging`` module.

Each line has ``ts`` (UTC, ISO 8601 with microseconds), ``level``, ``logger`` and ``msg``, then
the record's extra fields (``logger.info("block cut", extra={"height": 7})`` adds
``"height": 7``), then ``exc``/``stack`` when the record has them. An extra field named like one
of the first four keeps its value under the name with ``_`` appended. Values JSON cannot hold
are written as ``str(value)``. A message longer than ``max_message_chars`` is cut, and says so.

Importing this module changes nothing; :func:`configure` installs the handler, once per logger
(calling it again replaces the handler it installed before, leaving other handlers alone).
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import IO, Any, Final

MESSAGE_CHARS_MAX: Final = 8_192
_CORE_KEYS: Final = ("ts", "level", "logger", "msg")
_RECORD_ATTRIBUTES: Final = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}
_HANDLER_MARK: Final = "_strikechain_json_handler"


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module docstring)."""

    def __init__(self, max_message_chars: int = MESSAGE_CHARS_MAX) -> None:
        super().__init__()
        if max_message_chars <= 0:
            raise ValueError("max_message_chars must be positive")
        self.max_message_chars = max_message_chars

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if len(message) > self.max_message_chars:
            cut = len(message) - self.max_message_chars
            message = f"{message[: self.max_message_chars]}... ({cut} more characters)"
        timestamp = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        line: dict[str, Any] = {
            "ts": timestamp.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": message,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                line[f"{key}_" if key in _CORE_KEYS else key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":"))


def configure(
    level: int | str = logging.INFO,
    stream: IO[str] | None = None,
    *,
    logger: str = "",
    max_message_chars: int = MESSAGE_CHARS_MAX,
) -> logging.Handler:
    """Send ``logger``'s records (the root logger's by default) at ``level`` and above to
    ``stream`` (standard error by default) as JSON lines; the handler installed."""
    if isinstance(level, str):
        levels = logging.getLevelNamesMapping()
        if level.upper() not in levels:
            raise ValueError(f"unknown log level {level!r}: one of {', '.join(levels)}")
        level = levels[level.upper()]
    target = logging.getLogger(logger)
    for handler in list(target.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            target.removeHandler(handler)
            handler.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(max_message_chars))
    setattr(handler, _HANDLER_MARK, True)
    target.addHandler(handler)
    target.setLevel(level)
    return handler
