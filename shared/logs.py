"""Structured JSON logs that carry the correlation and case id and never a phone or ID number.

Standard-library loggers (ours, uvicorn's, aiokafka's) go through the same structlog
formatter, so every line is JSON. A last processor scrubs mainland mobile numbers and
resident ID numbers from every string value, wherever a careless caller put them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import structlog
from structlog.contextvars import bind_contextvars, reset_contextvars

from shared.privacy import scrub
from shared.tracing import log_ids

_configured = False

# The Kafka client says the same thing many times a second while the broker is away ("Unable
# connect to node", "Failed fetch messages", "Unable to update metadata" — about 20 lines a
# second in every service in CI's broker loss): one line per message per window is enough to
# see the outage, and the count of the ones held back says how long it lasted.
REPEAT_WINDOW_SECONDS = 30.0
REPEAT_LIMITED = ("aiokafka",)


class RepeatLimiter:
    """At most one line per (logger, message template) per window; the first line after a
    window tells how many like it were held back."""

    def __init__(self, window: float = REPEAT_WINDOW_SECONDS) -> None:
        self.window = window
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # key -> (window start, held back)

    def allow(self, key: tuple[str, str], now: float) -> int | None:
        """None to hold the line back, else how many like it were held back before it."""
        started, held = self._seen.get(key, (None, 0))
        if started is not None and now - started < self.window:
            self._seen[key] = (started, held + 1)
            return None
        if len(self._seen) > 1000:  # messages with variable templates: never grow without bound
            self._seen.clear()
        self._seen[key] = (now, 0)
        return held


class _RepeatFilter(logging.Filter):
    def __init__(self, limiter: RepeatLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(REPEAT_LIMITED):
            return True
        held = self.limiter.allow((record.name, str(record.msg)), time.monotonic())
        if held is None:
            return False
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last {self.limiter.window:.0f}s, not logged)"
        return True


def _scrub_processor(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {key: _scrub_value(value) for key, value in event_dict.items()}


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


def configure_logging(service: str, level: str = "INFO", *, json: bool = True) -> None:
    """Route structlog and the standard library through one JSON renderer (idempotent)."""
    global _configured
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        log_ids,  # trace_id/span_id under a span (nothing when tracing is off)
    ]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _scrub_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_RepeatFilter(RepeatLimiter()))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # Except the group coordinator's: joins, assignments and retried commits are few and are
    # what tells why a replica holds no partitions (issue #22's stall was silent without them).
    logging.getLogger("aiokafka.consumer.group_coordinator").setLevel(root.level)
    if not _configured:
        structlog.configure(
            processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
        _configured = True
    bind_contextvars(service=service)


@contextlib.contextmanager
def bind_event_context(event: Any) -> Iterator[None]:
    """Every log line written while handling an event names its case and correlation id."""
    tokens = bind_contextvars(
        case_id=getattr(event, "case_id", None),
        correlation_id=str(getattr(event, "correlation_id", "") or ""),
        event_id=str(getattr(event, "id", "")),
    )
    try:
        yield
    finally:
        reset_contextvars(**tokens)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
