"""Does urgent work overtake a backlog? A Red contact submitted behind a queue of Green
requests, as after an outage of the agencies' adapters.

The backlog is built through the hub itself: with the adapters stopped, Green contacts are
submitted until the agencies' routine request queues hold ``4 x backlog`` requests. Then
the four adapters start, and as soon as they consume one Red contact is submitted; its
contact-to-packet time is the figure. The Green backlog then drains, and its drain time is
reported too (a backlog after an outage must drain in minutes, not hours).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.driver import saturate
from bench.mashhub import MashHubFlow
from bench.processes import BenchError, wait_for_depth
from schemas.enums import Brag

__all__ = ["PriorityResult", "run_priority"]

RED_KEY = "red-0"


@dataclass(frozen=True)
class PriorityResult:
    backlog_requests: int
    red_seconds: float | None
    green_packets_before_red: int
    backlog_drain_seconds: float | None
    # Where the Red contact spent its time: seconds after submission, step by step.
    red_timeline: list[tuple[str, float]]
    # Rows waiting in the hub's outbox when the Red contact was submitted, and at most.
    outbox_at_red: int
    outbox_peak: int


class _GreenFlow(MashHubFlow):
    """Every contact Green, whatever its example says."""

    async def submit(self, key: str, index: int, brag: Brag | None = None) -> None:
        await super().submit(key, index, brag or Brag.GREEN)


async def run_priority(
    amqp_url: str, prefix: str, workdir: Path, backlog_contacts: int, timeout: float = 900.0
) -> PriorityResult:
    flow = _GreenFlow(amqp_url, prefix, workdir)
    try:
        await flow.start_hub()
        # Submitted only: the packets come once the adapters are back.
        submit = asyncio.create_task(saturate(flow, backlog_contacts, "green", timeout=timeout))
        requests = backlog_contacts * len(flow.settings.agencies)
        await wait_for_depth(
            flow.connection, flow.request_queues("routine"), requests, flow.children, timeout
        )
        outbox = _OutboxWatch(flow.settings.db_path)
        await flow.start_adapters()
        outbox.start()
        before = len(flow.tracker.completed)
        flow.tracker.submit(RED_KEY)
        started = time.perf_counter()
        submitted_at = time.time()
        outbox_at_red = outbox.depth()
        await flow.submit(RED_KEY, 0, Brag.RED)
        red = await _wait_for(flow, RED_KEY, timeout)
        red_at = flow.tracker.completed.get(RED_KEY)
        greens_before = sum(
            1
            for key, at in flow.tracker.completed.items()
            if key != RED_KEY and red_at is not None and at < red_at
        )
        drained = await submit
        drain = (
            max(flow.tracker.completed[k] for k in flow.tracker.completed if k != RED_KEY) - started
            if drained.done == backlog_contacts
            else None
        )
    finally:
        with contextlib.suppress(NameError):
            outbox.stop()
        await flow.stop()
    return PriorityResult(
        backlog_requests=requests,
        red_seconds=red,
        green_packets_before_red=greens_before - before,
        backlog_drain_seconds=drain,
        red_timeline=_red_timeline(flow, submitted_at),
        outbox_at_red=outbox_at_red,
        outbox_peak=outbox.peak,
    )


class _OutboxWatch:
    """How many messages the hub has written but not yet published (read-only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    def depth(self) -> int:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        except sqlite3.Error:
            return 0
        finally:
            db.close()

    async def _watch(self) -> None:
        while True:
            self.peak = max(self.peak, await asyncio.to_thread(self.depth))
            await asyncio.sleep(0.2)

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _red_timeline(flow: MashHubFlow, submitted_at: float) -> list[tuple[str, float]]:
    """The Red contact's steps from the hub's audit log and the adapters' logs."""
    steps: list[tuple[str, float]] = []
    db = sqlite3.connect(flow.settings.db_path)
    try:
        row = db.execute("SELECT ref FROM contacts WHERE brag = 'RED'").fetchone()
        if row is None:
            return steps
        ref = str(row[0])
        for at, actor, action in db.execute(
            "SELECT at, actor, action FROM audit WHERE contact_ref = ? ORDER BY seq", (ref,)
        ):
            if action != "request-sent":
                label = f"hub: {action}" + (f" ({actor})" if actor != "hub" else "")
                steps.append((label, datetime.fromisoformat(at).timestamp() - submitted_at))
    finally:
        db.close()
    for child in flow.adapters:
        with contextlib.suppress(OSError):
            for line in child.log.read_text(errors="replace").splitlines():
                if ref in line and '"request_answered"' in line:
                    at = datetime.fromisoformat(json.loads(line)["timestamp"]).timestamp()
                    steps.append((f"{child.name}: answered", at - submitted_at))
    return sorted(steps, key=lambda step: step[1])


async def _wait_for(flow: MashHubFlow, key: str, timeout: float) -> float | None:
    deadline = time.perf_counter() + timeout
    while key not in flow.tracker.completed:
        flow.check_alive()
        if time.perf_counter() > deadline:
            raise BenchError(f"the Red contact's packet did not come within {timeout:g}s")
        await asyncio.sleep(0.005)
    return flow.tracker.completed[key] - flow.tracker.submitted[key]
