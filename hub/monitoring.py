"""What the hub tells Prometheus and container health checks.

On top of the broker layer's message metrics: the time each agency takes to answer, by
rating; the agencies that missed a deadline; reminders sent; and, read from the database at
each scrape, open and overdue contacts by rating, the seconds left to the nearest open
deadline by rating, the age of each agency's oldest open request and the outbox backlog.
``/readyz`` is ready when the broker connection is up, every consumer is attached, the hub
holds its prefix's lock (:mod:`hub.instance`) and the database is healthy: still the file at
its path (not deleted or replaced), with room on its disk, and taking a write; ``mash_ready``
tells Prometheus the same at each scrape, so an alert sees a hub that still serves metrics
but is not ready. A database fault is logged when it begins (``database_fault``, with what
is wrong) and when it ends.
"""

from __future__ import annotations

import inspect
import os
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog
from aio_pika.abc import AbstractRobustConnection

from broker.consumer import Consumer
from hub.reminders import SentReminder
from hub.settings import HubSettings
from hub.store import DatabaseFault, HubStore
from hub.views import contact_counts, nearest_open_deadlines, oldest_open_requests
from schemas.enums import Brag
from telemetry.metrics import Metrics
from telemetry.server import (
    OpsServer,
    broker_connected,
    consumers_attached,
    serve,
    serve_starting,
)

__all__ = ["MIN_FREE_BYTES", "HubMonitoring"]

log = structlog.get_logger("mash.hub")

# Below this much free space the database is as good as full: a batch of contacts would fail.
MIN_FREE_BYTES = 16 * 1024 * 1024


class HubMonitoring:
    def __init__(
        self, store: HubStore, settings: HubSettings, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics("hub")
        self.server: OpsServer | None = None
        self.database_fault: str | None = None
        # Every agency and rating starts at zero: Prometheus's increase() and rate() cannot
        # see a series that first appears at 1, so the first answer, missed deadline or
        # reminder of each would go uncounted on the dashboard and in the alerts.
        for agency in settings.agencies:
            for brag in Brag:
                self.metrics.answer_time.labels(agency, brag.value)
                self.metrics.deadlines_missed.labels(agency, brag.value)
                self.metrics.reminders_sent.labels(agency, brag.value)
        for category, doc in (
            ("open", "Contacts waiting for an agency's answer, deadline not yet passed."),
            ("overdue", "Contacts past their deadline with an agency still not answered."),
        ):
            self.metrics.gauge_from(
                f"mash_{category}_contacts", doc, ["brag"], self._counts(category)
            )
        self.metrics.gauge_from(
            "mash_outbox_messages",
            "Messages committed by the hub and not yet confirmed by the broker.",
            [],
            lambda: {(): float(store.outbox_size())},
        )
        # What the alert rules in monitoring/prometheus/ watch: a Red deadline near with
        # agencies outstanding, and an agency waited on longer than usual.
        self.metrics.gauge_from(
            "mash_next_deadline_seconds",
            "Seconds to the nearest deadline of an open contact (an agency still to answer).",
            ["brag"],
            self._next_deadline,
        )
        self.metrics.gauge_from(
            "mash_oldest_request_seconds",
            "Age of the agency's oldest unanswered request on an open contact.",
            ["agency", "brag"],
            self._oldest_request,
        )
        self.metrics.gauge_from(
            "mash_ready", "1 when /readyz would answer ready, else 0.", [], self._ready
        )

    def _counts(self, category: str) -> Callable[[], dict[tuple[str, ...], float]]:
        def read() -> dict[tuple[str, ...], float]:
            counts = contact_counts(self.store.db, self.clock())[category]
            return {(brag.value,): float(n) for brag, n in counts.items()}

        return read

    def _next_deadline(self) -> dict[tuple[str, ...], float]:
        now = self.clock()
        return {
            (brag.value,): (deadline - now).total_seconds()
            for brag, deadline in nearest_open_deadlines(self.store.db, now).items()
        }

    def _oldest_request(self) -> dict[tuple[str, ...], float]:
        now = self.clock()
        return {
            (agency, brag.value): (now - sent).total_seconds()
            for (agency, brag), sent in oldest_open_requests(self.store.db, now).items()
        }

    def _ready(self) -> dict[tuple[str, ...], float]:
        # The same checks as /readyz, run at each scrape. The hub's checks are synchronous;
        # one that is not cannot be awaited inside a scrape, so it counts as not ready
        # rather than passing unchecked.
        if self.server is None:
            return {(): 0.0}
        for check in self.server.checks.values():
            try:
                outcome = check()
            except Exception:
                return {(): 0.0}
            if inspect.isawaitable(outcome):
                if inspect.iscoroutine(outcome):
                    outcome.close()
                return {(): 0.0}
            if not outcome:
                return {(): 0.0}
        return {(): 1.0}

    def watch(self, connection: AbstractRobustConnection) -> None:
        connection.reconnect_callbacks.add(lambda *_: self.metrics.reconnects.inc())

    async def serve_starting(self, reason: str) -> None:
        """/healthz and /readyz from start-up: not ready, for ``reason``, until :meth:`serve`."""
        self.server = await serve_starting(
            self.settings.metrics_port, self.settings.metrics_host, self.metrics, reason
        )

    def waiting(self, reason: str) -> None:
        if self.server is not None:
            self.server.waiting(reason)

    async def serve(
        self,
        connection: AbstractRobustConnection,
        consumers: Sequence[Consumer],
        expected: int,
        holds_lock: Callable[[], bool] = lambda: True,
    ) -> None:
        checks = {
            "broker": lambda: broker_connected(connection),
            "consumers": lambda: consumers_attached(consumers, expected),
            "instance": holds_lock,
            "database": self.database_healthy,
        }
        if self.server is not None:
            self.server.use_checks(checks)
            return
        self.server = await serve(
            self.settings.metrics_port, self.settings.metrics_host, self.metrics, checks
        )

    def database_healthy(self) -> bool:
        fault = self._database_fault()
        if fault != self.database_fault:
            if fault is None:
                log.info("database_recovered")
            else:
                log.error("database_fault", fault=fault)
        self.database_fault = fault
        return fault is None

    def _database_fault(self) -> str | None:
        """What is wrong with the database, in words an operator can act on; None if nothing."""
        try:
            self.store.check_file()
            free = os.statvfs(self.store.path.parent)
            if free.f_bavail * free.f_frsize < MIN_FREE_BYTES:
                return f"the disk holding {self.store.path} is full"
            self.store.probe_write(self.clock())
        except DatabaseFault as exc:
            return str(exc)
        except (sqlite3.Error, OSError) as exc:
            return f"{self.store.path} does not take a write ({exc})"
        return None

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    # Hooks the hub calls -------------------------------------------------------------
    def answered(self, request_id: str) -> None:
        request = self.store.request(request_id)
        contact = self.store.contact(request.ref) if request else None
        if request is None or contact is None or request.answered_at is None:
            return
        seconds = (request.answered_at - request.sent_at).total_seconds()
        self.metrics.answer_time.labels(request.agency, contact.brag.value).observe(seconds)

    def deadlines_fired(self, refs: Sequence[str]) -> None:
        for ref in refs:
            contact = self.store.contact(ref)
            if contact is None:
                continue
            for request in self.store.requests_for(ref):
                if request.answered_at is None:
                    self.metrics.deadlines_missed.labels(request.agency, contact.brag.value).inc()

    def reminders_sent(self, sent: Sequence[SentReminder]) -> None:
        for reminder in sent:
            self.metrics.reminders_sent.labels(reminder.agency, reminder.brag.value).inc()
