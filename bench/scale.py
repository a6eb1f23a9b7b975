"""How the hub copes with a lot of open work: 100,000 open contacts in its database, as after
a borough merger or a national roll-out.

1. **Build** the database through the store's own API (:class:`hub.store.HubStore`
   ``add_contact``, ``add_request``, ``mark_seen`` and :func:`hub.audit.append`, exactly
   the rows the hub writes when it accepts a contact and sends its four requests), in
   batches of 5,000 contacts per transaction with ``synchronous=OFF`` for the build only.
   The outbox is left empty, as it is once those requests were sent; every contact waits
   for four answers, with its deadline days away.
2. **Start to ready**: ``python -m mash hub`` on that database, from process start to its
   ``hub_ready`` log event (the database check, the deadline sweep, the outbox drain and
   the consumers all come before it).
3. **Deadlines**: with the hub running, a few thousand contacts get deadlines a few seconds
   ahead, spread evenly over a window (written to the database, as a re-rating would write
   them; the hub's deadline clock re-reads the next deadline at least once a second). The
   lag of each is the arrival of its DEADLINE packet on the screening queue minus its due
   time.
4. **Memory**: the hub's resident set, sampled every 50 ms and its peak (``VmHWM``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from bench.latency import summary
from bench.mashhub import MashHubFlow
from bench.processes import BenchError
from bench.workload import example_contacts
from broker.settings import DEFAULT_AGENCIES
from hub import audit
from hub.store import HubStore, to_ms
from schemas.codec import encode
from schemas.enums import PacketReason

__all__ = ["ScaleResult", "build_open_contacts", "run_scale"]

_BATCH = 5_000


@dataclass(frozen=True)
class ScaleResult:
    open_contacts: int
    build_seconds: float
    db_megabytes: float
    start_to_ready_seconds: float
    deadlines: int
    deadline_window_seconds: float
    deadline_lag_ms: dict[str, float]
    deadlines_fired: int
    # From the first deadline due to the last DEADLINE packet out.
    firing_seconds: float
    rss_peak_mb: float
    rss_at_ready_mb: float


def build_open_contacts(path: Path, count: int, now: datetime | None = None) -> None:
    """``count`` open contacts, each with four requests sent and no answer yet."""
    now = now or datetime.now(UTC)
    templates = example_contacts()
    store = HubStore(path)
    store.connection.execute("PRAGMA synchronous=OFF")  # the build only; the hub uses FULL
    agencies = list(DEFAULT_AGENCIES)
    for start in range(0, count, _BATCH):
        with store.transaction() as db:
            for index in range(start, min(count, start + _BATCH)):
                seq = index + 1
                ref = f"MASH-{now.year}-{seq:06d}"
                template = templates[index % len(templates)]
                deadline = now + timedelta(days=3)
                stored = template.model_copy(
                    update={
                        "contact_id": str(uuid.uuid4()),
                        "contact_ref": ref,
                        "received_at": now,
                        "agencies": agencies,
                    }
                )
                store.add_contact(
                    db,
                    ref=ref,
                    year=now.year,
                    seq=seq,
                    contact_id=stored.contact_id,
                    received_at=now,
                    brag=stored.brag,
                    deadline=deadline,
                    body=encode(stored),
                    referrer_kind=stored.referrer.kind.value,
                )
                audit.append(
                    db,
                    "operator",
                    "contact-received",
                    ref,
                    now,
                    brag=stored.brag.value,
                    consent=stored.consent.value,
                    lawful_basis=stored.lawful_basis.value,
                    deadline=deadline.isoformat(),
                )
                for agency in agencies:
                    request_id = str(uuid.uuid4())
                    store.add_request(db, request_id, ref, agency, now)
                    audit.append(
                        db,
                        "hub",
                        "request-sent",
                        ref,
                        now,
                        agency=agency,
                        request_id=request_id,
                        lawful_basis=stored.lawful_basis.value,
                    )
                store.mark_seen(db, stored.contact_id, now)
    store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def _set_deadlines(path: Path, count: int, lead: float, window: float) -> list[datetime]:
    """Bring ``count`` contacts' deadlines to ``lead`` seconds from now, spread over
    ``window`` seconds; one transaction, as the hub's own writes are."""
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        refs = [r[0] for r in db.execute("SELECT ref FROM contacts ORDER BY seq LIMIT ?", (count,))]
        start = datetime.now(UTC) + timedelta(seconds=lead)
        dues = [start + timedelta(seconds=window * i / max(count, 1)) for i in range(len(refs))]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "UPDATE contacts SET deadline = ? WHERE ref = ?",
            [(to_ms(due), ref) for due, ref in zip(dues, refs, strict=True)],
        )
        db.execute("COMMIT")
        return dues
    finally:
        db.close()


async def _ready(flow: MashHubFlow, timeout: float) -> None:
    assert flow.hub is not None
    deadline = time.monotonic() + timeout
    while True:
        flow.check_alive()
        with contextlib.suppress(OSError):
            for line in flow.hub.log.read_text(errors="replace").splitlines():
                if line.startswith("{") and json.loads(line).get("event") == "hub_ready":
                    return
        if time.monotonic() > deadline:
            raise BenchError(f"the hub was not ready within {timeout:g}s")
        await asyncio.sleep(0.02)


class _Memory:
    """The hub's resident set, sampled until stopped."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(0.05)

    def now(self) -> int:
        with contextlib.suppress(psutil.Error):
            return int(self.process.memory_info().rss)
        return 0

    def high_water(self) -> int:
        """The kernel's own peak (``VmHWM``): nothing between two samples escapes it."""
        with contextlib.suppress(OSError, psutil.Error):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return max(self.peak, int(line.split()[1]) * 1024)
        return self.peak

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def run_scale(
    amqp_url: str,
    prefix: str,
    workdir: Path,
    open_contacts: int,
    deadlines: int,
    *,
    lead: float = 3.0,
    window: float = 5.0,
    timeout: float = 300.0,
) -> ScaleResult:
    flow = MashHubFlow(amqp_url, prefix, workdir)
    db_path = flow.settings.db_path
    started = time.perf_counter()
    await asyncio.to_thread(build_open_contacts, db_path, open_contacts)
    build = time.perf_counter() - started
    megabytes = db_path.stat().st_size / 1e6
    memory: _Memory | None = None
    try:
        await flow.connect()
        spawned = time.perf_counter()
        hub = flow.spawn_hub()
        memory = _Memory(hub.pid)
        memory.start()
        await _ready(flow, timeout)
        ready = time.perf_counter() - spawned
        at_ready = memory.now()
        flow.keep_packets = True
        await flow.watch_packets(flow.topology.packet_queue)
        dues = await asyncio.to_thread(_set_deadlines, db_path, deadlines, lead, window)
        wait_until = time.monotonic() + lead + window + timeout
        while _fired(flow) < len(dues) and time.monotonic() < wait_until:
            flow.check_alive()
            await asyncio.sleep(0.1)
        fired = [
            (arrived, record["deadline"].timestamp())
            for arrived, record in flow.packets
            if record["reason"] == PacketReason.DEADLINE.value
        ]
        lags = [arrived - due for arrived, due in fired]
        span = max(a for a, _ in fired) - dues[0].timestamp() if fired and dues else 0.0
        return ScaleResult(
            open_contacts=open_contacts,
            build_seconds=build,
            db_megabytes=megabytes,
            start_to_ready_seconds=ready,
            deadlines=len(dues),
            deadline_window_seconds=window,
            deadline_lag_ms={k: v if k == "count" else v * 1000 for k, v in summary(lags).items()},
            deadlines_fired=len(lags),
            firing_seconds=span,
            rss_peak_mb=memory.high_water() / 2**20,
            rss_at_ready_mb=at_ready / 2**20,
        )
    finally:
        if memory is not None:
            memory.stop()
        await flow.stop()


def _fired(flow: MashHubFlow) -> int:
    return sum(1 for _, r in flow.packets if r["reason"] == PacketReason.DEADLINE.value)
