"""``mash bench --quick``: a tiny run on the real broker, so the benchmark cannot rot.

Timings are never asserted here (they depend on the machine and on whatever else runs);
what is asserted is that the run completes and reports every figure the benchmark promises,
each with its unit and, where the issue sets one, its target, and leaves no queue behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import aio_pika
import pytest

from broker.settings import BrokerSettings

pytestmark = [pytest.mark.broker, pytest.mark.load]

THROUGHPUT = ["throughput.raw", "throughput.peer", "throughput.mash-hub"]
LATENCY = [
    f"latency.{flow}.{q}" for flow in ("raw", "peer", "mash-hub") for q in ("p50", "p95", "p99")
]
TARGETED = [
    "ratio.mashhub_raw",
    "ratio.mashhub_peer",
    "latency.p99_ratio",
    "priority.red_ms",
    "scale.start_to_ready_s",
    "scale.deadline_lag_p99_ms",
    "scale.rss_peak_mib",
]
COST = ["cost.send_us", "cost.receive_us", "cost.round_trip_us", "cost.json_round_trip_us"]


async def test_quick_bench_reports_every_figure_with_its_target_and_cleans_up() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        "bench",
        "--quick",
        "--json",
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    figures = report["figures"]

    assert report["errors"] == []
    for key in [*THROUGHPUT, *LATENCY, *TARGETED, *COST]:
        assert key in figures, key
        assert figures[key]["value"] is not None, key
        assert figures[key]["unit"], key
    for key in TARGETED:
        assert figures[key]["target"], key
        assert figures[key]["met"] in (True, False), key
    assert report["machine"]["rabbitmq"] != "unknown"
    assert set(report["details"]["message_bytes"]) >= {"contact", "request", "answer", "packet"}
    for prefix in report["details"]["prefixes"]:
        for queue in (f"{prefix}.contacts", f"{prefix}.hub.contacts.routine"):
            assert not await _queue_exists(queue), f"{queue} was left on the broker"


async def _queue_exists(name: str) -> bool:
    async with await aio_pika.connect(BrokerSettings().amqp_url) as connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return False
        return True
