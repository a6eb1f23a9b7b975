"""Structured logs for every mash-hub process.

Log events carry ids, agencies, ratings and timings only; names, dates of birth, addresses
and findings never go to a log, whatever the level.

The client libraries (aio-pika, aiormq) log through the standard library, in plain text with
tracebacks, and aio-pika logs a WARNING each second while the broker is away. Their records
go through structlog instead: one JSON event (``library_log``) with the logger, the message
(credentials in a URL masked) and the exception's type, never a traceback; the same message
from the same logger at most once per :data:`REPEAT_WINDOW_S`, with the count suppressed.
"""

from __future__ import annotations

import logging
import re
import sys
import time

import structlog

from telemetry import tracing

__all__ = ["REPEAT_WINDOW_S", "LibraryLogs", "configure_logging"]

REPEAT_WINDOW_S = 30.0
_CREDENTIALS = re.compile(r"(\w+://[^:/@\s\"']+):[^@\s\"']*@")


class LibraryLogs(logging.Handler):
    """Standard-library records as structlog events: JSON, rate-limited, no tracebacks."""

    def __init__(self, window: float = REPEAT_WINDOW_S) -> None:
        super().__init__()
        self.window = window
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # The template, not the message: a reconnect attempt differs only in its numbers.
            key = (record.name, str(record.msg))
            now = time.monotonic()
            if now - self._last.get(key, -self.window) < self.window:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            fields: dict[str, object] = {
                "logger": record.name,
                "message": _CREDENTIALS.sub(r"\1:***@", record.getMessage())[:300],
            }
            if record.exc_info and record.exc_info[1] is not None:
                fields["error"] = type(record.exc_info[1]).__name__
            suppressed = self._suppressed.pop(key, 0)
            if suppressed:
                fields["repeats_suppressed"] = suppressed
            structlog.get_logger(record.name).log(record.levelno, "library_log", **fields)
        except Exception:  # a log line must never take the process down
            self.handleError(record)


def _add_trace_id(
    _: object, __: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """The current span's trace id on every line logged inside one (a handler binds its own;
    the outbox relay, the deadline clock and reminders run inside spans of their own)."""
    if "trace_id" not in event:
        found = tracing.trace_id()
        if found is not None:
            event["trace_id"] = found
    return event


def configure_logging(*, json: bool = True, level: str = "INFO") -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_trace_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # aio-pika and aiormq log reconnection chatter at INFO; warnings are what matter.
    root = logging.getLogger()
    root.handlers = [LibraryLogs()]
    root.setLevel(logging.WARNING)
