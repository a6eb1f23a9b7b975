"""Prometheus metrics for one process: the hub or one adapter.

Each process keeps its metrics in a registry of its own (not the library's global one), so a
test that runs the hub and four adapters in one process still scrapes each one's own figures.
Labels carry message types, queues, agencies and ratings only: never a contact reference,
which would make one time series per child.

The broker layer reports through the small methods below; figures that live in the hub's
database (open contacts by rating) are read when Prometheus scrapes, through
:meth:`Metrics.gauge_from`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["AGENCY_HEADER", "Metrics", "agency_of"]

# Who a message is from (an answer) or for (a request, a reminder): the one label the broker
# layer cannot read from the queue name alone.
AGENCY_HEADER = "x-mash-agency"

# Handling is milliseconds; answers take minutes to days (Red: four hours, Blue: five
# working days).
_HANDLING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ANSWER_BUCKETS = tuple(
    float(s) for s in (1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 432000)
)


def agency_of(headers: Mapping[str, Any] | None) -> str:
    value = (headers or {}).get(AGENCY_HEADER, "")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


class _Callback(Collector):
    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: Callable[[], Mapping[tuple[str, ...], float]],
    ) -> None:
        self._name, self._doc, self._labels, self._read = name, documentation, labels, read

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self._name, self._doc, labels=list(self._labels))
        for values, value in sorted(self._read().items()):
            family.add_metric(list(values), value)
        yield family

    def describe(self) -> Iterable[Metric]:
        # Describing without reading keeps registration from touching the database.
        yield GaugeMetricFamily(self._name, self._doc, labels=list(self._labels))


class Metrics:
    """Every metric one process exposes on ``/metrics``."""

    def __init__(self, component: str) -> None:
        self.component = component
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "mash_messages_in",
            "Messages taken from a queue, by outcome (handled, dead_lettered, retried).",
            ["queue", "type", "agency", "outcome"],
            registry=r,
        )
        self.messages_out = Counter(
            "mash_messages_out",
            "Messages published and confirmed by the broker.",
            ["exchange", "type", "agency"],
            registry=r,
        )
        self.publish_failures = Counter(
            "mash_publish_failures",
            "Publishes the broker did not accept after every retry.",
            ["exchange"],
            registry=r,
        )
        self.handling = Histogram(
            "mash_handling_seconds",
            "Time from delivery to ack or dead letter.",
            ["queue", "type"],
            buckets=_HANDLING_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "mash_dead_letters",
            "Messages this process sent to a dead-letter queue, by reason.",
            ["queue", "reason"],
            registry=r,
        )
        self.reconnects = Counter(
            "mash_reconnects", "Times the broker connection was re-established.", registry=r
        )
        # The hub's.
        self.answer_time = Histogram(
            "mash_answer_seconds",
            "From a request being sent to the agency's answer reaching the hub.",
            ["agency", "brag"],
            buckets=_ANSWER_BUCKETS,
            registry=r,
        )
        self.deadlines_missed = Counter(
            "mash_deadlines_missed",
            "Agencies that had not answered when a contact's deadline passed.",
            ["agency", "brag"],
            registry=r,
        )
        self.reminders_sent = Counter(
            "mash_reminders_sent",
            "Reminders sent to agencies still outstanding before a deadline.",
            ["agency", "brag"],
            registry=r,
        )
        # An adapter's.
        self.reminders_received = Counter(
            "mash_reminders_received",
            "Reminders received from the hub for requests not yet answered.",
            ["agency", "brag"],
            registry=r,
        )

    def gauge_from(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: Callable[[], Mapping[tuple[str, ...], float]],
    ) -> None:
        """A gauge whose values ``read`` returns at every scrape, keyed by label values."""
        self.registry.register(_Callback(name, documentation, labels, read))

    # Hooks for the broker layer ------------------------------------------------------
    def consumed(
        self,
        queue: str,
        type_: str | None,
        headers: Mapping[str, Any] | None,
        outcome: str,
        seconds: float,
    ) -> None:
        kind = type_ or "unknown"
        self.messages_in.labels(queue, kind, agency_of(headers), outcome).inc()
        self.handling.labels(queue, kind).observe(seconds)

    def published(self, exchange: str, type_: str | None, headers: Mapping[str, Any]) -> None:
        self.messages_out.labels(exchange, type_ or "unknown", agency_of(headers)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
