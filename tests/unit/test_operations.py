"""Pure parts of the operator tooling: report arithmetic, periods, durations,
where the management API is, and the hub database's upgrade in place."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.store import SCHEMA_VERSION, HubStore
from hub.views import Exchange
from ops.report import parse_since, percentile, summarise
from ops.status import span
from schemas.enums import Brag

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.5
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 95) is None


def _exchange(agency: str, brag: Brag, status: str, seconds: float | None) -> Exchange:
    answered = None if seconds is None else NOW + timedelta(seconds=seconds)
    return Exchange(
        request_id=f"{agency}-{status}-{seconds}",
        ref="MASH-2026-000001",
        agency=agency,
        sent_at=NOW,
        sent_brag=brag,
        brag=brag,
        deadline=NOW + timedelta(hours=4),
        answered_at=answered,
        outcome="KNOWN" if answered else None,
        status=status,  # type: ignore[arg-type]
    )


def test_deadlines_met_counts_only_decided_requests() -> None:
    rows = summarise(
        [
            _exchange("police", Brag.RED, "answered", 600),
            _exchange("police", Brag.RED, "answered", 1200),
            _exchange("police", Brag.RED, "late", 18000),
            _exchange("police", Brag.RED, "missed", None),
            _exchange("police", Brag.RED, "pending", None),
        ]
    )
    red = next(r for r in rows if (r.agency, r.brag) == ("police", "RED"))
    assert (red.requests, red.answered, red.late, red.missed, red.pending) == (5, 3, 1, 1, 1)
    assert red.deadlines_met == 0.5  # 2 on time of 4 decided
    assert red.median_seconds == 1200
    assert [(r.agency, r.brag) for r in rows] == [
        ("police", "RED"),
        ("police", "ALL"),
        ("ALL", "ALL"),
    ]


def test_periods_are_read_as_durations_or_dates() -> None:
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("24h", NOW) == NOW - timedelta(hours=24)
    assert parse_since("2w", NOW) == NOW - timedelta(weeks=2)
    assert parse_since("2026-11-01", NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="use a period such as 7d"):
        parse_since("a week", NOW)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45s"), (600, "10m"), (3 * 3600 + 300, "3h05m"), (2 * 86400 + 4 * 3600, "2d4h")],
)
def test_durations_read_as_an_operator_would_say_them(seconds: int, text: str) -> None:
    assert span(seconds) == text
    assert span(-seconds) == "-" + text


def test_a_schema_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    HubStore(path).close()
    # Take the database back to what schema 1 had.
    db = sqlite3.connect(path)
    for table, column in (
        ("contacts", "traceparent"),
        ("outbox", "headers"),
        ("requests", "sent_brag"),
        ("requests", "brag"),
        ("requests", "deadline"),
        ("requests", "outcome"),
    ):
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.execute("DROP TABLE reminders")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()

    store = HubStore(path)

    version = store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert int(version[0]) == SCHEMA_VERSION == 4
    columns = {r[1] for r in store.db.execute("PRAGMA table_info(requests)")}
    assert {"sent_brag", "brag", "deadline", "outcome"} <= columns
    assert store.next_reminder() is None
    store.close()
