"""Surfacing the hub's reminders in an adapter.

A reminder says the hub has not yet had this agency's answer to a request and how long is
left before the deadline. The adapter logs it (ids and timings only) and counts it, so the
agency's IT team sees it in their logs and dashboards; the request itself is answered as
usual when it arrives, so a reminder needs no reply.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from schemas.models import RequestReminder
from telemetry.metrics import Metrics

__all__ = ["surface_reminder"]

log = structlog.get_logger("mash.adapter")


def surface_reminder(reminder: RequestReminder, metrics: Metrics, now: datetime) -> None:
    metrics.reminders_received.labels(reminder.agency, reminder.brag.value).inc()
    log.warning(
        "reminder_received",
        agency=reminder.agency,
        ref=reminder.contact_ref,
        request_id=reminder.request_id,
        brag=reminder.brag.value,
        deadline=reminder.deadline.isoformat(),
        left_s=int((reminder.deadline - now).total_seconds()),
        fraction=reminder.fraction,
    )
