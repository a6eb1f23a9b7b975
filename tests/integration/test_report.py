"""``mash report`` read back after real exchanges on the real broker: answered on time,
answered late, missed and still pending, per agency and rating."""

from __future__ import annotations

import asyncio
import json

import pytest

from hub.client import HubClient
from hub.policy import BragPolicy, Window
from schemas.enums import Brag
from tests.ops_support import cli_env, mash_cli, wait_for
from tests.support import KnowsEveryone, Stack, make_contact

pytestmark = pytest.mark.broker

QUIET_BLUE = BragPolicy(blue=Window.parse("1s"), reminder_fractions=())


async def test_report_gives_counts_answer_times_and_deadlines_met_per_agency_and_rating(
    stack: Stack,
) -> None:
    hub = await stack.hub(QUIET_BLUE)
    await stack.adapters(["police", "health"])
    async with HubClient(stack.settings) as client:
        await client.submit(make_contact(Brag.AMBER, agencies=["police", "health"]))
        await client.submit(make_contact(Brag.BLUE, agencies=["police", "housing"]))
        await client.submit(make_contact(Brag.BLUE, agencies=["education"]))  # never answered
        await asyncio.sleep(1.2)  # both Blue deadlines pass
        await stack.adapter(KnowsEveryone("housing"))  # answers the Blue request late
        await client.submit(make_contact(Brag.GREEN, agencies=["housing"]))
        await client.submit(make_contact(Brag.RED, agencies=["education"]))  # still in time
    await wait_for(lambda: hub.store.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 5)
    env = cli_env(stack.settings)

    code, out, err = await mash_cli("report", "--since", "7d", "--json", env=env)

    assert (code, err) == (0, "")
    rows = {(r["agency"], r["brag"]): r for r in json.loads(out)["rows"]}
    counts = {
        key: (
            r["requests"],
            r["answered"],
            r["late"],
            r["missed"],
            r["pending"],
            r["deadlines_met"],
        )
        for key, r in rows.items()
    }
    assert counts == {
        ("education", "RED"): (1, 0, 0, 0, 1, None),
        ("education", "BLUE"): (1, 0, 0, 1, 0, 0.0),
        ("education", "ALL"): (2, 0, 0, 1, 1, 0.0),
        ("health", "AMBER"): (1, 1, 0, 0, 0, 1.0),
        ("health", "ALL"): (1, 1, 0, 0, 0, 1.0),
        ("housing", "GREEN"): (1, 1, 0, 0, 0, 1.0),
        ("housing", "BLUE"): (1, 1, 1, 0, 0, 0.0),
        ("housing", "ALL"): (2, 2, 1, 0, 0, 0.5),
        ("police", "AMBER"): (1, 1, 0, 0, 0, 1.0),
        ("police", "BLUE"): (1, 1, 0, 0, 0, 1.0),
        ("police", "ALL"): (2, 2, 0, 0, 0, 1.0),
        ("ALL", "ALL"): (7, 5, 1, 1, 1, 4 / 6),
    }
    late = rows[("housing", "BLUE")]
    assert late["median_seconds"] >= 1.0  # waited for the adapter to start
    assert rows[("police", "ALL")]["median_seconds"] < 1.0
    assert rows[("ALL", "ALL")]["p95_seconds"] >= rows[("ALL", "ALL")]["median_seconds"]
    assert rows[("education", "ALL")]["median_seconds"] is None

    code, text, _ = await mash_cli("report", env=env)
    assert code == 0
    assert "per agency and rating" in text
    assert any(
        line.split()[:3] == ["housing", "ALL", "2"] and "50%" in line for line in text.splitlines()
    )

    code, out, _ = await mash_cli("report", "--exchanges", "--json", env=env)
    assert code == 0
    record = json.loads(out)
    assert sorted(e["status"] for e in record) == [
        "answered",
        "answered",
        "answered",
        "answered",
        "late",
        "missed",
        "pending",
    ]
    assert all(set(e) >= {"ref", "agency", "sent_at", "brag", "answer_seconds"} for e in record)


async def test_report_refuses_an_unreadable_period_and_a_missing_database(stack: Stack) -> None:
    env = cli_env(stack.settings)
    code, _, err = await mash_cli("report", "--since", "last tuesday", env=env)
    assert code == 2
    assert err.startswith("error: --since 'last tuesday': use a period such as 7d")
    code, _, err = await mash_cli("report", env=env)
    assert code == 1
    assert err.strip().endswith("no hub database here (set MASH_DB_PATH or --db)")
