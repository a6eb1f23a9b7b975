"""The Grafana dashboard and the alert rules in ``monitoring/`` ask only for metrics the hub
and the adapters really export (so renaming a metric fails here, not on a blank panel at
3 a.m.), the dashboard imports into Grafana, and the hub's deadline and readiness gauges
say what the alerts need without naming a contact."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from adapters.kit.service import AdapterService
from adapters.registry import installed_agencies, load_agency
from broker.settings import BrokerSettings
from hub.monitoring import HubMonitoring
from hub.service import HubService
from hub.settings import HubSettings
from hub.store import HubStore
from schemas.enums import Brag
from telemetry.server import OpsServer
from tests.monitoring_support import (
    ALERTS,
    ALERTS_TEST,
    NOT_OURS,
    Query,
    alert_queries,
    dashboard,
    dashboard_queries,
    exported_names,
    metric_names,
)
from tests.ops_support import Scrape
from tests.support import Keys

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> set[str]:
    """What the hub and every installed adapter serve on /metrics, read from their own
    registries as the running processes build them."""
    folder = tmp_path_factory.mktemp("exported")
    settings = HubSettings(
        prefix="names", db_path=folder / "hub.sqlite3", keyring=keys.keyring, key_dir=keys.key_dir
    )
    hub = HubService(settings)
    try:
        names = exported_names(hub.monitoring.metrics.registry)
    finally:
        hub.store.close()
    for agency in installed_agencies():
        broker = BrokerSettings(prefix="names", keyring=keys.keyring, key_dir=keys.key_dir)
        adapter = AdapterService(load_agency(agency)(), broker)
        names |= exported_names(adapter.metrics.registry)
    return names


def _unknown(queries: list[Query], exported: set[str]) -> list[str]:
    return [
        f"{query.where}: {name}"
        for query in queries
        for name in sorted(metric_names(query.expr))
        if name not in exported and name not in NOT_OURS
    ]


def test_every_dashboard_panel_queries_only_metrics_the_code_exports(exported: set[str]) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 10
    assert _unknown(queries, exported) == []


def test_every_alert_rule_queries_only_metrics_the_code_exports(exported: set[str]) -> None:
    queries = alert_queries()
    assert {q.where for q in queries} >= {
        "alert MashRedDeadlineNear",
        "alert MashAgencySlowerThanUsual",
        "alert MashQueueWithoutConsumer",
        "alert MashDeadLettersGrowing",
        "alert MashHubNotReady",
    }
    assert _unknown(queries, exported) == []


def test_the_dashboard_shows_every_figure_an_operator_needs() -> None:
    used = {name for query in dashboard_queries() for name in metric_names(query.expr)}
    assert used >= {
        "mash_open_contacts",
        "mash_overdue_contacts",
        "mash_answer_seconds_bucket",
        "mash_deadlines_missed_total",
        "mash_dead_letters_total",
        "rabbitmq_detailed_queue_messages_ready",
        "rabbitmq_detailed_queue_consumers",
        "mash_reconnects_total",
    }


def test_a_renamed_metric_is_reported_with_the_query_that_uses_it(exported: set[str]) -> None:
    renamed = Query(
        "panel 'Answer time' A",
        "histogram_quantile(0.95, sum by (agency, le) "
        '(rate(mash_answer_time_seconds_bucket{agency=~"po.+"}[$__rate_interval])))'
        " > on (agency) group_left () mash_open_contacts offset 5m",
    )
    assert _unknown([renamed], exported) == [
        "panel 'Answer time' A: mash_answer_time_seconds_bucket"
    ]


def test_metric_names_leave_out_functions_labels_strings_and_durations() -> None:
    expr = (
        "sum by (queue, reason) (increase(mash_dead_letters_total[10m])) > 0"
        ' and on (queue) rabbitmq_detailed_queue_messages{queue=~".+\\\\.dead"} offset 1h'
        ' or absent(up{job="mash-hub"}) unless bool 1e3'
    )
    assert metric_names(expr) == {
        "mash_dead_letters_total",
        "rabbitmq_detailed_queue_messages",
        "up",
    }


def test_the_dashboard_imports_with_the_datasource_as_a_variable() -> None:
    board = dashboard()
    assert board["uid"] == "mash-hub" and board["id"] is None
    # Grafana 10.4 to 11 write schema 39 and migrate older dashboards on import.
    assert board["schemaVersion"] >= 39
    variables = board["templating"]["list"]
    assert [(v["name"], v["type"], v["query"]) for v in variables] == [
        ("datasource", "datasource", "prometheus")
    ]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HubStore]:
    opened = HubStore(tmp_path / "hub.sqlite3")
    yield opened
    opened.close()


def _contact(
    store: HubStore, brag: Brag, deadline: timedelta, sent: timedelta, agencies: dict[str, bool]
) -> str:
    """A contact received ``sent`` ago with its requests, answered where ``agencies`` says."""
    with store.transaction() as db:
        ref, seq = store.allocate_ref(db, NOW.year)
        store.add_contact(
            db,
            ref=ref,
            year=NOW.year,
            seq=seq,
            contact_id=uuid.uuid4().hex,
            received_at=NOW - sent,
            brag=brag,
            deadline=NOW + deadline,
            body=b"",
            referrer_kind="SCHOOL",
        )
        for agency, answered in agencies.items():
            request_id = uuid.uuid4().hex
            store.add_request(db, request_id, ref, agency, NOW - sent)
            if answered:
                store.add_answer(
                    db,
                    response_id=uuid.uuid4().hex,
                    request_id=request_id,
                    ref=ref,
                    agency=agency,
                    received_at=NOW,
                    late=False,
                    body=b"",
                )
    return ref


def test_hub_reports_the_nearest_open_deadline_and_oldest_open_request_without_refs(
    store: HubStore, tmp_path: Path
) -> None:
    refs = [
        # Red, due in 20 minutes, health still to answer: what MashRedDeadlineNear is for.
        _contact(
            store,
            Brag.RED,
            timedelta(minutes=20),
            timedelta(hours=3),
            {"police": True, "health": False},
        ),
        # A later Red one, police outstanding for an hour.
        _contact(store, Brag.RED, timedelta(hours=3), timedelta(hours=1), {"police": False}),
        # Red and due sooner, but everyone has answered: no deadline at risk.
        _contact(store, Brag.RED, timedelta(minutes=5), timedelta(hours=2), {"police": True}),
        # Overdue: counted as a missed deadline, never as slow for ever.
        _contact(store, Brag.AMBER, -timedelta(hours=1), timedelta(days=2), {"housing": False}),
    ]
    monitoring = HubMonitoring(store, HubSettings(db_path=tmp_path / "unused"), lambda: NOW)
    text = monitoring.metrics.exposition().decode()
    figures = Scrape(text)

    assert figures.value("mash_next_deadline_seconds", brag="RED") == 20 * 60
    assert [s for s in figures.samples if s[0] == "mash_next_deadline_seconds"] == [
        ("mash_next_deadline_seconds", {"brag": "RED"}, 1200.0)
    ]
    assert sorted(
        (labels["agency"], labels["brag"], value)
        for name, labels, value in figures.samples
        if name == "mash_oldest_request_seconds"
    ) == [("health", "RED", 3 * 3600.0), ("police", "RED", 3600.0)]
    for ref in refs:
        assert ref not in text


def test_the_hub_ready_gauge_follows_its_readiness_checks(store: HubStore, tmp_path: Path) -> None:
    monitoring = HubMonitoring(store, HubSettings(db_path=tmp_path / "unused"), lambda: NOW)
    assert Scrape(monitoring.metrics.exposition().decode()).value("mash_ready") == 0  # no server
    broker_up = True

    def failing() -> bool:
        raise OSError("disk gone")

    monitoring.server = OpsServer(
        monitoring.metrics, {"broker": lambda: broker_up, "database": lambda: True}
    )
    assert Scrape(monitoring.metrics.exposition().decode()).value("mash_ready") == 1
    broker_up = False
    assert Scrape(monitoring.metrics.exposition().decode()).value("mash_ready") == 0
    broker_up = True
    monitoring.server.checks["database"] = failing
    assert Scrape(monitoring.metrics.exposition().decode()).value("mash_ready") == 0


def test_a_fresh_hub_counts_every_agency_and_rating_from_zero(
    store: HubStore, tmp_path: Path
) -> None:
    # A series that first appears at 1 is no increase to Prometheus: the first missed
    # deadline would never show on the dashboard nor fire an alert.
    settings = HubSettings(db_path=tmp_path / "unused", agencies=("police", "housing"))
    monitoring = HubMonitoring(store, settings, lambda: NOW)
    figures = Scrape(monitoring.metrics.exposition().decode())
    for name in (
        "mash_deadlines_missed_total",
        "mash_answer_seconds_count",
        "mash_reminders_sent_total",
    ):
        assert sorted(
            (labels["agency"], labels["brag"], value)
            for sample, labels, value in figures.samples
            if sample == name
        ) == sorted((agency, brag.value, 0.0) for agency in ("housing", "police") for brag in Brag)


def test_every_metric_the_readme_names_is_exported(exported: set[str]) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    named = set(re.findall(r"`(mash_[a-z_]+)`", readme))
    assert len(named) >= 10
    # A histogram is named by its family (mash_answer_seconds), served as _bucket and _count.
    families = {re.sub(r"_(bucket|count|sum|created)$", "", name) for name in exported}
    assert sorted(named - exported - families) == []


def test_every_alert_has_unit_tests_that_see_it_fire_and_stay_quiet() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    cases = [
        case
        for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert sorted(alerts - fires) == []
    assert sorted(alerts - quiet) == []
