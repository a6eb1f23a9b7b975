"""Traces across the hub and the adapters with OpenTelemetry, linked through message headers.

A contact is one trace. Every message carries the W3C ``traceparent`` of the span that sent
it (``publish``); the receiver's ``consume`` span is that span's child and its ``handle`` span
the consume span's, so the trace runs referrer → hub → each agency's adapter → hub → packet.
The hub stores the context it accepted a contact under, so what it sends later for that
contact from no incoming message (a deadline's packet, a reminder, the outbox after a
restart) continues the same trace.

Span attributes are ids, agencies, ratings, queue names and timings only, as in the logs:
never a contact reference or anything about a child. The provider and its exporters are set
up once per process by :func:`telemetry.otel.configure_tracing`; without it spans are
not recorded, and the header passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "TRACEPARENT",
    "consuming",
    "headers_for",
    "publishing",
    "span",
    "trace_id",
    "trace_id_of",
    "traceparent",
]

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER = "mash-hub"


def _tracer() -> trace.Tracer:
    # Looked up each time: the provider is configured after modules are imported.
    return trace.get_tracer(_TRACER)


def _carrier(headers: Mapping[str, Any] | None) -> dict[str, str]:
    value = (headers or {}).get(TRACEPARENT)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return {TRACEPARENT: value} if isinstance(value, str) else {}


def _context_of(value: str | None) -> otel_context.Context | None:
    """The context a ``traceparent`` value names, or None when it is absent or invalid."""
    if not value:
        return None
    extracted = _PROPAGATOR.extract({TRACEPARENT: value})
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None
    return extracted


def traceparent() -> str | None:
    """The current span as a ``traceparent`` value (None outside any recorded span)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


def trace_id() -> str | None:
    """The current trace's id in hex, as logs show it."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def trace_id_of(value: str | None) -> str | None:
    """The trace id in a stored ``traceparent`` value."""
    found = _context_of(value)
    if found is None:
        return None
    return format(trace.get_current_span(found).get_span_context().trace_id, "032x")


def headers_for(stored: str | None) -> dict[str, str]:
    """Headers for a message sent on a contact's behalf: the contact's own trace (stored
    when it was accepted), else the current one."""
    value = stored if _context_of(stored) is not None else traceparent()
    return {TRACEPARENT: value} if value else {}


@contextmanager
def span(
    name: str, attributes: Mapping[str, str | int | float | bool] | None = None
) -> Iterator[Span]:
    """An internal span under the current one (``handle``, ``lookup``, ``hub.commit``)."""
    with _tracer().start_as_current_span(name, attributes=dict(attributes or {})) as current:
        yield current


@contextmanager
def consuming(
    headers: Mapping[str, Any] | None, queue: str, message_id: str | None
) -> Iterator[Span]:
    """The ``consume`` span of one delivery, the child of the span that published it (a new
    trace when the message carried no valid ``traceparent``)."""
    parent = _PROPAGATOR.extract(_carrier(headers))
    attributes: dict[str, str] = {
        "messaging.system": "rabbitmq",
        "messaging.operation": "process",
        "messaging.destination.name": queue,
    }
    if message_id:
        attributes["messaging.message.id"] = message_id
    with _tracer().start_as_current_span(
        "consume", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as current:
        yield current


@contextmanager
def publishing(
    headers: dict[str, Any], exchange: str, routing_key: str, message_id: str
) -> Iterator[Span]:
    """The ``publish`` span of one message, under the ``traceparent`` the caller put in
    ``headers`` (a contact's stored trace) or else the current span; ``headers`` then carry
    this span's own context, so the receiver's consume span is its child."""
    given = _context_of(_carrier(headers).get(TRACEPARENT))
    with _tracer().start_as_current_span(
        "publish",
        context=given,  # None: the current context
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation": "publish",
            "messaging.destination.name": exchange,
            "messaging.rabbitmq.destination.routing_key": routing_key,
            "messaging.message.id": message_id,
        },
    ) as current:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        if TRACEPARENT in carrier:
            headers[TRACEPARENT] = carrier[TRACEPARENT]
        yield current
