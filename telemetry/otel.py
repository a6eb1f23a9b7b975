"""The OpenTelemetry SDK for one process: spans recorded always (their trace ids are in every
log line), exported only where the operator says.

- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and the other standard ``OTEL_EXPORTER_OTLP_*`` variables):
  spans go to that collector over OTLP/HTTP, in batches. Unset, nothing leaves the process.
- ``OTEL_SERVICE_NAME``: the service name spans carry; by default ``mash-hub``,
  ``mash-adapter-<agency>``, ``mash-console`` or ``mash-restricted``.
- ``MASH_TRACE_FILE``: every finished span as one JSON line in this file (tests and
  troubleshooting on one machine; it holds what spans hold: ids, agencies, ratings, timings).

A bad value is one line naming the variable (:class:`TracingSettingsInvalid`, exit 2).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from mash.errors import MashError

__all__ = ["FileSpanExporter", "TracingSettingsInvalid", "configure_tracing"]

_configured: list[str] = []


class TracingSettingsInvalid(MashError, ValueError):
    """An OpenTelemetry or trace-file setting the process cannot run with."""

    exit_code = 2


class FileSpanExporter(SpanExporter):
    """Finished spans as JSON lines: what a collector would receive, readable by a test."""

    def __init__(self, path: Path, service: str) -> None:
        self.service = service
        self._lock = threading.Lock()
        try:
            self._file: IO[str] = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise TracingSettingsInvalid(
                f"MASH_TRACE_FILE: cannot write {path}: {exc.strerror}"
            ) from None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            context = span.get_span_context()
            if context is None:
                continue
            lines.append(
                json.dumps(
                    {
                        "service": self.service,
                        "name": span.name,
                        "kind": span.kind.name,
                        "trace_id": format(context.trace_id, "032x"),
                        "span_id": format(context.span_id, "016x"),
                        "parent_span_id": (
                            format(span.parent.span_id, "016x") if span.parent else None
                        ),
                        "start_ns": span.start_time,
                        "end_ns": span.end_time,
                        "attributes": dict(span.attributes or {}),
                    }
                )
            )
        with self._lock:
            self._file.write("".join(line + "\n" for line in lines))
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def _check_endpoint(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TracingSettingsInvalid(
            "OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL,"
            " e.g. http://collector:4318"
        )


def configure_tracing(default_service: str) -> TracerProvider:
    """Set this process's tracer provider (once; later calls return the first)."""
    current = trace.get_tracer_provider()
    if _configured and isinstance(current, TracerProvider):
        return current
    service = os.environ.get("OTEL_SERVICE_NAME", "").strip() or default_service
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    trace_file = os.environ.get("MASH_TRACE_FILE", "").strip()
    if endpoint:
        _check_endpoint(endpoint)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if trace_file:
        # Written as each span ends, so a process killed by a test leaves what it did.
        provider.add_span_processor(
            SimpleSpanProcessor(FileSpanExporter(Path(trace_file), service))
        )
    if endpoint:
        # Imported only when used: the exporter pulls in protobuf and an HTTP client.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured.append(service)
    return provider
