"""The shipped Grafana dashboard and Prometheus rules (``monitoring/``) as the tests read
them: every query, the metric names a query uses, and the names the code really exports."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

__all__ = [
    "ALERTS",
    "ALERTS_TEST",
    "DASHBOARD",
    "NOT_OURS",
    "SCRAPE_CONFIG",
    "Query",
    "alert_queries",
    "dashboard",
    "dashboard_queries",
    "exported_names",
    "metric_names",
    "promql",
]

MONITORING = Path(__file__).resolve().parents[1] / "monitoring"
DASHBOARD = MONITORING / "grafana" / "mash-hub.json"
ALERTS = MONITORING / "prometheus" / "alerts.yml"
ALERTS_TEST = MONITORING / "prometheus" / "alerts_test.yml"
SCRAPE_CONFIG = MONITORING / "prometheus" / "prometheus.yml"

# Series the queries may use that no mash-hub process exports: RabbitMQ's rabbitmq_prometheus
# plugin on /metrics/detailed (queue_coarse_metrics and queue_consumer_count families), and
# Prometheus's own `up`. Listed by hand, so a typo here is as visible as one in a query.
NOT_OURS = frozenset(
    {
        "rabbitmq_detailed_queue_messages_ready",
        "rabbitmq_detailed_queue_messages_unacked",
        "rabbitmq_detailed_queue_messages",
        "rabbitmq_detailed_queue_consumers",
        "up",
    }
)


@dataclass(frozen=True)
class Query:
    where: str  # "panel 'Queue depth' A" or "alert MashHubNotReady"
    expr: str


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for panel in panels:
        found.append(panel)
        found.extend(_panels(panel.get("panels", [])))  # a collapsed row holds its panels
    return found


def dashboard_queries() -> list[Query]:
    return [
        Query(f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in _panels(dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def alert_queries() -> list[Query]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [
        Query(f"alert {rule.get('alert') or rule.get('record')}", rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "offset", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# A name not glued to a number, duration or template variable, and not a function call.
_NAME = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels, strings
    and durations left out)."""
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    return {name for name in _NAME.findall(text) if name.lower() not in _KEYWORDS}


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def exported_names(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry's metrics serve, whether or not a labelled one has a
    sample yet (a counter no one has incremented still has its name)."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def promql(expr: str, *, rate_interval: str = "15s", range_: str = "5m") -> str:
    """A dashboard query as Grafana sends it to Prometheus: its own variables filled in."""
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace("$__range", range_)
        .replace("$__interval", rate_interval)
    )
