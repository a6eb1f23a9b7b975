"""W3C trace context (``traceparent``) carried in message headers.

A contact gets one trace id when it enters the hub (or when a client submits it); every
message sent on its behalf -- each agency's request, the agency's answer, each packet --
carries that trace id with a span id of its own, so one contact's path can be followed across
the hub and every adapter by searching the logs for its ``trace_id``.

Format (https://www.w3.org/TR/trace-context/): ``00-<32 hex trace id>-<16 hex parent id>-<2
hex flags>``. A header that does not parse is ignored and a new trace started, as the
specification asks.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["TRACEPARENT", "TraceContext", "current", "from_headers", "use"]

TRACEPARENT = "traceparent"

_PATTERN = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_current: ContextVar[TraceContext | None] = ContextVar("mash_trace", default=None)


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    @classmethod
    def new(cls) -> TraceContext:
        return cls(secrets.token_hex(16), secrets.token_hex(8))

    @classmethod
    def parse(cls, value: object) -> TraceContext | None:
        """The context in a ``traceparent`` value, or None when it is absent or invalid."""
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if not isinstance(value, str):
            return None
        match = _PATTERN.match(value.strip())
        # All-zero ids are invalid by the specification.
        if match is None or set(match[1]) == {"0"} or set(match[2]) == {"0"}:
            return None
        return cls(match[1], match[2], match[3])

    def child(self) -> TraceContext:
        """The same trace, a new span: what a message sent on this trace's behalf carries."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags)

    @property
    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def headers(self) -> dict[str, str]:
        return {TRACEPARENT: self.header}


def from_headers(headers: Mapping[str, Any] | None) -> TraceContext | None:
    return TraceContext.parse((headers or {}).get(TRACEPARENT))


def current() -> TraceContext | None:
    """The trace of the message being handled in this task, if it carried one."""
    return _current.get()


def use(context: TraceContext | None) -> None:
    """Make ``context`` the current trace for the rest of this task (one task per message)."""
    _current.set(context)
