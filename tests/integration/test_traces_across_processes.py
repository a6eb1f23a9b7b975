"""One contact is one OpenTelemetry trace across the processes that handle it: the referrer's
`mash contact submit`, the hub and the four adapters, each a real process writing its spans
to a file of its own (MASH_TRACE_FILE, telemetry.otel). Every span's parent is in the trace,
each adapter's consume span is the child of a hub publish span (the header crossed the
broker), and no span carries the contact's reference or the child's name. The standard
OTEL_EXPORTER_OTLP_ENDPOINT sends them to a collector (a stand-in one here)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from faults.harness import Harness
from tests.ops_support import free_port, mash_cli

pytestmark = pytest.mark.broker

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contacts"
CONTACT = EXAMPLE / "amber-baby-domestic-abuse-police.json"
AGENCIES = ("police", "health", "education", "housing")


@asynccontextmanager
async def _collector() -> AsyncIterator[tuple[str, list[tuple[str, str]]]]:
    """A stand-in OpenTelemetry collector: records each OTLP/HTTP request it receives."""
    received: list[tuple[str, str]] = []

    async def take(request: web.Request) -> web.Response:
        await request.read()
        received.append((request.path, request.content_type))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/{tail:.*}", take)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()


def _spans(folder: Path) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        spans.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return spans


async def test_one_contact_is_one_trace_across_the_submitter_the_hub_and_four_adapters(
    tmp_path: Path,
) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    async with Harness("traces", tmp_path) as run:
        for name in ("hub", *AGENCIES):
            run.cluster.start(name, {"MASH_TRACE_FILE": str(traces / f"{name}.jsonl")})
        for name in ("hub", *AGENCIES):
            await run.cluster.wait_ready(name, 1)
        async with _collector() as (endpoint, received):
            code, out, err = await mash_cli(
                "contact",
                "submit",
                str(CONTACT),
                env={
                    **run.cluster.env,
                    "MASH_TRACE_FILE": str(traces / "submit.jsonl"),
                    "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                },
            )
        # The standard variable switches the OTLP exporter on: the spans were posted.
        assert [path for path, _ in received] == ["/v1/traces"]
        assert received[0][1].startswith("application/x-protobuf")
        assert code == 0, err
        found = re.search(r"MASH-\d{4}-\d+", out)
        assert found is not None, out
        ref = found[0]
        give_up = time.monotonic() + 60
        while not any(p.contact_ref == ref for p in run.packets.deliveries):
            assert time.monotonic() < give_up, "no packet for the contact"
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # the packet's publish span ends on its confirm

    spans = _spans(traces)
    [sent] = [s for s in spans if s["service"] == "mash-cli" and s["name"] == "publish"]
    trace = [s for s in spans if s["trace_id"] == sent["trace_id"]]
    by_id = {s["span_id"]: s for s in trace}
    services = {s["service"] for s in trace}

    # One trace reaches every process that handled the contact.
    assert services == {"mash-cli", "mash-hub", *(f"mash-adapter-{a}" for a in AGENCIES)}
    # Its only root is the submitter's publish; every other span's parent is in the trace.
    assert [s for s in trace if s["parent_span_id"] not in by_id] == [sent]
    assert sent["parent_span_id"] is None
    for agency in AGENCIES:
        mine = [s for s in trace if s["service"] == f"mash-adapter-{agency}"]
        assert {"consume", "handle", "lookup", "publish"} <= {s["name"] for s in mine}
        for consume in (s for s in mine if s["name"] == "consume"):
            parent = by_id[consume["parent_span_id"]]
            assert (parent["service"], parent["name"]) == ("mash-hub", "publish")
    hub = [s for s in trace if s["service"] == "mash-hub"]
    assert {"consume", "handle", "hub.commit", "publish"} <= {s["name"] for s in hub}
    answers = [
        s
        for s in hub
        if s["name"] == "consume" and by_id[s["parent_span_id"]]["service"] != "mash-cli"
    ]
    assert {by_id[s["parent_span_id"]]["service"] for s in answers} == {
        f"mash-adapter-{a}" for a in AGENCIES
    }
    assert any(
        s["name"] == "publish"
        and s["attributes"]["messaging.destination.name"].endswith(".packets")
        for s in hub
    )
    # Ids, agencies, ratings, queues and timings only: nothing about the contact or child.
    contact = json.loads(CONTACT.read_text())
    private = {ref, contact["concerns_summary"]} | {
        part
        for subject in contact["subjects"]
        for part in (subject["given_name"], subject["family_name"])
    }
    values = [str(v) for s in spans for v in s["attributes"].values()]
    assert not [v for v in values if any(p in v for p in private)]
