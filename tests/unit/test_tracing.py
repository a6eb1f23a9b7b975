"""Trace context through message headers (telemetry.tracing) and the SDK's set-up
(telemetry.otel): a published message's receiver is its child, a contact's stored context
wins for what is sent on its behalf, a bad header starts a new trace, and a bad setting is
one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import Span

from telemetry import tracing
from telemetry.otel import FileSpanExporter, TracingSettingsInvalid


def _parent(span: Span) -> int | None:
    assert isinstance(span, ReadableSpan)  # the SDK's span, as configured for the tests
    return span.parent.span_id if span.parent else None


STORED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_receiver_of_a_published_message_is_the_publish_spans_child() -> None:
    headers: dict[str, object] = {}
    with tracing.publishing(headers, "mash.requests", "police.routine", "m-1") as sent:
        pass
    with tracing.consuming(headers, "mash.police.requests.routine", "m-1") as received:
        pass

    sent_context, received_context = sent.get_span_context(), received.get_span_context()
    assert received_context.trace_id == sent_context.trace_id
    assert _parent(received) == sent_context.span_id
    assert str(headers[tracing.TRACEPARENT]).startswith(
        f"00-{sent_context.trace_id:032x}-{sent_context.span_id:016x}-"
    )


def test_a_message_sent_for_a_contact_continues_the_contacts_stored_trace() -> None:
    headers = tracing.headers_for(STORED)
    # Even while handling something else.
    with tracing.span("elsewhere"), tracing.publishing(headers, "mash.packets", "", "m-2") as sent:
        pass

    assert tracing.trace_id_of(headers[tracing.TRACEPARENT]) == tracing.trace_id_of(STORED)
    assert _parent(sent) == int("00f067aa0ba902b7", 16)


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
    ],
)
def test_a_missing_or_invalid_traceparent_starts_a_new_trace(value: object) -> None:
    with tracing.consuming({tracing.TRACEPARENT: value}, "q", "m-3") as received:
        assert tracing.trace_id() == f"{received.get_span_context().trace_id:032x}"

    assert _parent(received) is None
    assert tracing.trace_id_of(value if isinstance(value, str) else None) is None


def test_the_trace_id_of_a_stored_traceparent_is_what_logs_show() -> None:
    assert tracing.trace_id_of(STORED) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert tracing.headers_for(None) == {}  # outside any span, with nothing stored


def test_finished_spans_go_to_the_trace_file_as_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    provider = TracerProvider()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(path, "mash-test")))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("outer"),
        tracer.start_as_current_span("inner", attributes={"mash.agency": "police"}),
    ):
        pass
    provider.shutdown()

    inner, outer = (json.loads(line) for line in path.read_text().splitlines())
    assert (inner["name"], outer["name"]) == ("inner", "outer")
    assert inner["parent_span_id"] == outer["span_id"] and outer["parent_span_id"] is None
    assert inner["trace_id"] == outer["trace_id"] and inner["service"] == "mash-test"
    assert inner["attributes"] == {"mash.agency": "police"}


def test_an_unwritable_trace_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(TracingSettingsInvalid, match=r"^MASH_TRACE_FILE: cannot write"):
        FileSpanExporter(tmp_path / "no" / "such" / "folder" / "spans.jsonl", "mash-test")


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT: expected"),
        ("MASH_TRACE_FILE", "/proc/no-such/spans.jsonl", "MASH_TRACE_FILE: cannot write"),
    ],
)
def test_a_bad_tracing_setting_stops_a_process_with_one_line_and_exit_2(
    variable: str, value: str, says: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mash", "adapter", "police"],
        env={"PATH": "/usr/bin:/bin", variable: value, "MASH_KEYRING": str(tmp_path / "k")},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert says in line and "Traceback" not in done.stderr


def test_a_line_logged_inside_a_span_carries_its_trace_id_and_one_outside_none() -> None:
    from broker.logs import _add_trace_id

    with tracing.span("relay"):
        inside = _add_trace_id(None, "info", {"event": "outbox_relayed"})
        expected = tracing.trace_id()
    outside = _add_trace_id(None, "info", {"event": "hub_ready"})
    bound = {"event": "answer_received", "trace_id": "a" * 32}

    assert expected is not None and inside["trace_id"] == expected
    assert "trace_id" not in outside
    assert _add_trace_id(None, "info", dict(bound)) == bound  # a handler's own binding stays
