"""``mash status`` read back against a running hub and adapters: on the machine's broker
(passive declares, no management plugin) and on a node of the test's own with the management
API (rates), where a cut connection also shows in the reconnect metric."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from broker.signing import OPERATOR
from broker.topology import Topology, delete
from faults.connections import close_connections
from faults.rabbit_node import RabbitNode
from hub.client import HubClient
from hub.policy import BragPolicy, Window
from hub.settings import HubSettings
from schemas.enums import Brag
from tests.ops_support import cli_env, free_port, mash_cli, scrape, wait_for
from tests.support import Stack, make_contact, signed_publisher

pytestmark = pytest.mark.broker

QUIET_BLUE = BragPolicy(blue=Window.parse("1s"), reminder_fractions=())


async def test_status_shows_queues_contacts_by_rating_oldest_requests_and_dead_letters(
    stack: Stack,
) -> None:
    await stack.hub(QUIET_BLUE)
    await stack.adapters(["police", "health", "education"])  # housing is not answering
    async with HubClient(stack.settings) as client:
        amber = await client.submit(make_contact(Brag.AMBER))
        blue = await client.submit(make_contact(Brag.BLUE, agencies=["police", "housing"]))
        await client.submit(make_contact(Brag.RED, agencies=["police"]))  # answered in full
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        # A genuine operator's signature, so it is the body the hub refuses.
        operator = await signed_publisher(connection, stack.settings, OPERATOR)
        await operator.publish(stack.topology.contacts, "urgent", b"not avro", message_id="bad-1")
    await asyncio.sleep(1.2)  # Blue's one-second deadline passes
    env = cli_env(stack.settings)

    code, out, err = await mash_cli("status", "--json", env=env)

    assert (code, err) == (0, "")
    shown = json.loads(out)
    assert shown["broker"]["source"] == "passive"
    queues = {q["name"]: q for q in shown["queues"]}
    assert queues["hub.contacts.urgent"]["consumers"] == 1
    assert (
        queues["housing.requests.routine"]["messages"],
        queues["housing.requests.routine"]["consumers"],
    ) == (2, 0)
    assert queues["police.requests.routine"]["consumers"] == 1
    assert shown["contacts"]["open"] == {"BLUE": 0, "RED": 0, "AMBER": 1, "GREEN": 0}
    assert shown["contacts"]["overdue"] == {"BLUE": 1, "RED": 0, "AMBER": 0, "GREEN": 0}
    [opened] = shown["open"]
    assert (opened["ref"], opened["brag"], opened["waiting_for"]) == (
        amber.contact_ref,
        "AMBER",
        ["housing"],
    )
    assert opened["seconds_left"] > 0
    [overdue] = shown["overdue"]
    assert (overdue["ref"], overdue["waiting_for"]) == (blue.contact_ref, ["housing"])
    assert overdue["seconds_left"] <= 0
    [oldest] = shown["oldest_unanswered"]
    assert (oldest["agency"], oldest["ref"], oldest["unanswered"]) == (
        "housing",
        amber.contact_ref,
        2,
    )
    assert shown["dead_letters"]["hub.contacts.urgent.dead"] == 1
    assert sum(shown["dead_letters"].values()) == 1

    code, text, _ = await mash_cli("status", env=env)
    assert code == 0
    for line in (
        "queues via passive declares",
        "management API not available",
        "Open contacts",
        "Overdue contacts",
        "Oldest unanswered request per agency",
        "Dead letters: 1  (hub.contacts.urgent.dead 1)",
    ):
        assert line in text
    assert str(amber.contact_ref) in text and str(blue.contact_ref) in text


async def test_status_watch_refreshes_until_interrupted(stack: Stack) -> None:
    await stack.hub()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        "status",
        "--watch",
        "--json",
        "--interval",
        "0.2",
        env=cli_env(stack.settings),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    first = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
    second = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
    process.send_signal(signal.SIGINT)
    await asyncio.wait_for(process.wait(), 30)
    assert second["taken_at"] > first["taken_at"]


async def test_status_without_a_hub_database_says_so_and_still_shows_queues(
    stack: Stack, tmp_path: Path
) -> None:
    await stack.hub()
    env = cli_env(stack.settings, MASH_DB_PATH=str(tmp_path / "nowhere.sqlite3"))
    code, out, err = await mash_cli("status", "--json", env=env)
    assert code == 1
    assert err.strip() == (
        f"error: {tmp_path / 'nowhere.sqlite3'}: no hub database here (set MASH_DB_PATH or --db)"
    )
    assert json.loads(out)["queues"]


@pytest.fixture
async def on_node(management_node: RabbitNode, tmp_path: Path) -> AsyncIterator[HubSettings]:
    settings = HubSettings(
        amqp_url=management_node.amqp_url,
        management_url=management_node.management_url,
        prefix=f"test-{uuid.uuid4().hex[:10]}",
        db_path=tmp_path / "hub.sqlite3",
    )
    yield settings
    async with await aio_pika.connect(settings.amqp_url) as connection:
        await delete(connection, Topology(settings))


def _close_hub_connections(node: RabbitNode, prefix: str) -> int:
    return close_connections(prefix, node=node.name, names=("mash-hub",))


async def test_status_reads_rates_from_the_management_api_and_reconnects_are_counted(
    on_node: HubSettings, management_node: RabbitNode
) -> None:
    stack = Stack(on_node)
    try:
        hub = await stack.hub(settings=on_node.model_copy(update={"metrics_port": free_port()}))
        await stack.adapters()
        env = cli_env(on_node)
        shown: dict[str, Any] = {}
        async with HubClient(on_node) as client:

            async def rates_shown() -> bool:
                await client.submit(make_contact())
                code, out, _ = await mash_cli("status", "--json", env=env)
                shown.update(json.loads(out))
                queues = {q["name"]: q for q in shown["queues"]}
                return code == 0 and (queues["hub.contacts.routine"]["in_rate"] or 0) > 0

            # The broker's statistics take some seconds to show a new queue's first rates.
            await wait_for(rates_shown, timeout=60)
        assert shown["broker"]["source"] == "management"
        queues = {q["name"]: q for q in shown["queues"]}
        routine = queues["hub.contacts.routine"]
        assert routine["consumers"] == 1
        assert routine["ready"] is not None and routine["unacked"] is not None
        assert routine["in_rate"] > 0

        code, text, _ = await mash_cli("status", env=env)
        assert code == 0
        assert "queues via management API" in text

        assert hub.monitoring.server is not None
        assert await asyncio.to_thread(_close_hub_connections, management_node, on_node.prefix) == 1

        async def reconnected() -> bool:
            assert hub.monitoring.server is not None
            figures = await scrape(hub.monitoring.server.url)
            return figures.value("mash_reconnects_total") == 1

        await wait_for(reconnected, timeout=30)
    finally:
        await stack.close()
