"""Per-agency broker identities on the real broker: `mash broker provision` creates one user per
role, and RabbitMQ itself keeps each agency to its own requests and its own name. Users and
queues live under a prefix of this module's own and are deleted at the end."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest
from structlog.testing import capture_logs

from adapters.kit.service import AdapterService
from broker.connection import connect
from broker.consumer import BROKER_USER, REASON, ConsumeRefused
from broker.publisher import Publisher, PublishRefused
from broker.topology import Topology, TopologyRefused, declare, delete
from hub.client import HubClient
from hub.service import HubService
from hub.settings import HubSettings
from schemas.codec import decode
from schemas.enums import PacketReason
from schemas.models import InformationRequest
from tests.support import KnowsEveryone, PacketWatcher, make_contact, signed_publisher

pytestmark = pytest.mark.broker

ADMIN_URL = os.environ.get("MASH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def mash_cli(*args: str, prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mash", *args],
        env={**os.environ, "MASH_PREFIX": prefix},
        capture_output=True,
        text=True,
        timeout=120,
    )


def broker_users() -> set[str]:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_users", "--no-table-headers"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split("\t")[0] for line in out.splitlines() if line.strip()}


@dataclass
class Mash:
    """One provisioned MASH: settings for each role, and what the test started with them."""

    prefix: str
    credentials: dict[str, Any]
    folder: Path
    credentials_file: Path
    running: list[HubService | AdapterService | PacketWatcher] = field(default_factory=list)

    @property
    def topology(self) -> Topology:
        return Topology(self.settings("hub"))

    def settings(self, role: str) -> HubSettings:
        return HubSettings(
            prefix=self.prefix,
            amqp_url=self.credentials["users"][role]["amqp_url"],
            declare_topology=False,
            db_path=self.folder / f"{role}.sqlite3",
        )

    async def connection(self, role: str) -> aio_pika.abc.AbstractRobustConnection:
        return await connect(self.settings(role), f"test-{role}")

    async def hub(self) -> HubService:
        fresh = self.folder / f"hub-{uuid.uuid4().hex[:6]}.sqlite3"  # each test its own state
        # Each test's own state on one prefix: a new database on purpose ('mash hub --new').
        settings = self.settings("hub").model_copy(update={"db_path": fresh, "new_database": True})
        service = HubService(settings)
        await service.start()
        self.running.append(service)
        return service

    async def adapter(self, agency: str, role: str | None = None) -> AdapterService:
        service = AdapterService(KnowsEveryone(agency), self.settings(role or agency))
        self.running.append(service)
        await service.start()
        return service

    async def watcher(self) -> PacketWatcher:
        watcher = PacketWatcher(self.settings("screening"))
        await watcher.start()
        self.running.append(watcher)
        return watcher

    async def stop_all(self) -> None:
        while self.running:
            await self.running.pop().stop()


@pytest.fixture(scope="module")
async def provisioned(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mash]:
    prefix = f"ids-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("identities")
    credentials_file = folder / "credentials.json"
    done = mash_cli("broker", "provision", "--credentials", str(credentials_file), prefix=prefix)
    assert done.returncode == 0, done.stderr
    mash = Mash(prefix, json.loads(credentials_file.read_text()), folder, credentials_file)
    users = {entry["user"] for entry in mash.credentials["users"].values()}
    try:
        yield mash
    finally:
        await mash.stop_all()
        gone = mash_cli("broker", "deprovision", prefix=prefix)
        async with await aio_pika.connect(ADMIN_URL) as admin:
            await delete(admin, mash.topology)
    # `mash broker deprovision` leaves none of this MASH's users behind.
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.startswith("deleted 7 users")
    assert not users & broker_users()


@pytest.fixture
async def mash(provisioned: Mash) -> AsyncIterator[Mash]:
    yield provisioned
    await provisioned.stop_all()


async def refused_reading(mash: Mash, role: str, queue: str) -> str | None:
    """The broker's refusal when ``role`` tries to take a message from ``queue``."""
    async with await mash.connection(role) as connection:
        channel = await connection.channel()
        try:
            await (await channel.get_queue(queue, ensure=False)).get(fail=False)
        except aiormq.exceptions.ChannelAccessRefused as exc:
            return str(exc)
    return None


async def take(
    queue: str, timeout: float = 10.0, *, leave: bool = False
) -> aio_pika.abc.AbstractIncomingMessage:
    """A message from ``queue``, read with the administrator's account (and left there)."""
    async with await aio_pika.connect(ADMIN_URL) as admin:
        channel = await admin.channel()
        source = await channel.get_queue(queue, ensure=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = await source.get(fail=False)
            if message is not None:
                await (message.nack(requeue=True) if leave else message.ack())
                return message
            await asyncio.sleep(0.1)
    raise AssertionError(f"nothing arrived on {queue}")


def test_provisioning_hands_each_role_a_password_in_a_file_only_its_owner_reads(
    provisioned: Mash,
) -> None:
    assert stat.S_IMODE(provisioned.credentials_file.stat().st_mode) == 0o600
    users = {role: entry["user"] for role, entry in provisioned.credentials["users"].items()}
    assert users["police"] == f"{provisioned.prefix}-police"
    assert set(users) == {"hub", "screening", "restricted", "police", "health", "education",
                          "housing"}  # fmt: skip
    assert set(users.values()) <= broker_users()


async def test_a_full_cycle_runs_with_each_role_on_its_own_user(mash: Mash) -> None:
    await mash.hub()
    for agency in ("police", "health", "education", "housing"):
        await mash.adapter(agency)
    watcher = await mash.watcher()
    async with HubClient(mash.settings("screening")) as client:
        reply = await client.submit(make_contact())
    assert reply.ok, reply.error

    packet = await watcher.next()

    assert packet.contact_ref == reply.contact_ref
    assert packet.reason is PacketReason.COMPLETE
    assert sorted(a.agency for a in packet.answers) == ["education", "health", "housing", "police"]


async def test_an_agency_cannot_consume_another_agencys_requests(mash: Mash) -> None:
    # The police adapter's user, running code that asks for health's queue.
    with capture_logs() as logs, pytest.raises(ConsumeRefused, match="ACCESS_REFUSED") as refused:
        await mash.adapter("health", role="police")
    assert f"{mash.prefix}.health.requests" in str(refused.value)
    [event] = [e for e in logs if e["log_level"] == "error"]
    assert event["event"] == "consume_refused"
    assert "ACCESS_REFUSED" in event["reason"]


async def test_an_adapter_whose_queues_were_never_provisioned_says_so(mash: Mash) -> None:
    # The police user pointed at a MASH prefix that was never provisioned.
    settings = mash.settings("police").model_copy(update={"prefix": f"{mash.prefix}-unknown"})
    service = AdapterService(KnowsEveryone("police"), settings)
    try:
        with pytest.raises(ConsumeRefused, match="NOT_FOUND"):
            await service.start()
    finally:
        await service.stop()


async def test_an_agency_cannot_publish_as_another_agency(mash: Mash) -> None:
    health_user = mash.credentials["users"]["health"]["user"]
    async with await mash.connection("police") as connection:
        publisher = Publisher(connection)
        started = time.monotonic()
        with capture_logs() as logs, pytest.raises(PublishRefused, match="PRECONDITION") as refused:
            await publisher.publish(
                mash.topology.answers, "routine", b"x", message_id="as-health", user_id=health_user
            )
        assert time.monotonic() - started < 5  # refused at once, not retried until a timeout
        assert "user_id property set to" in str(refused.value)
        assert [e["event"] for e in logs] == ["publish_refused"]  # one event, no retries
        # The same publisher goes on publishing as itself.
        await publisher.publish(mash.topology.answers, "routine", b"x", message_id="as-police")
    message = await take(mash.topology.answer_queue("routine"))
    assert message.message_id == "as-police"
    assert message.user_id == f"{mash.prefix}-police"


@pytest.mark.parametrize(
    "queue",
    ["packet_queue", "restricted_queue", "event_queue", "hub_answers", "dead_letters"],
)
async def test_an_agency_cannot_read_packets_the_restricted_file_or_hub_queues(
    mash: Mash, queue: str
) -> None:
    topology = mash.topology
    names = {
        "packet_queue": topology.packet_queue,
        "restricted_queue": topology.restricted_queue,
        "event_queue": topology.event_queue,
        "hub_answers": topology.answer_queue("urgent"),
        "dead_letters": topology.request_queue("police", "urgent") + ".dead",
    }
    refusal = await refused_reading(mash, "police", names[queue])
    assert refusal is not None and "ACCESS_REFUSED" in refusal


async def test_an_agency_cannot_send_requests_packets_or_restricted_payloads(mash: Mash) -> None:
    topology = mash.topology
    async with await mash.connection("police") as connection:
        publisher = Publisher(connection)
        for exchange, key in [
            (topology.requests, "health.urgent"),
            (topology.packets, ""),
            (topology.restricted, ""),
            (topology.contacts, "urgent"),
        ]:
            with pytest.raises(PublishRefused, match="ACCESS_REFUSED"):
                await publisher.publish(exchange, key, b"x", message_id=f"to-{exchange}")


async def test_an_agency_cannot_declare_queues_or_the_topology(mash: Mash) -> None:
    async with await mash.connection("police") as connection:
        with pytest.raises(TopologyRefused, match="MASH_DECLARE_TOPOLOGY=false"):
            await declare(await connection.channel(), mash.topology)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            channel = await connection.channel()
            await channel.declare_queue(f"{mash.prefix}.police.mine", durable=True)


async def test_an_agency_dead_letters_only_its_own_requests(mash: Mash) -> None:
    topology = mash.topology
    own = topology.request_queue("police", "routine")
    async with await mash.connection("police") as connection:
        publisher = Publisher(connection)
        with pytest.raises(PublishRefused, match="ACCESS_REFUSED"):
            await publisher.publish(
                topology.dead, topology.answer_queue("routine"), b"x", message_id="fake-dead"
            )
        await publisher.publish(topology.dead, own, b"x", message_id="own-dead")
    assert (await take(f"{own}.dead")).message_id == "own-dead"


async def test_only_the_keeper_of_the_restricted_file_reads_what_the_hub_files(
    mash: Mash,
) -> None:
    topology = mash.topology
    async with await mash.connection("hub") as connection:
        await Publisher(connection).publish(topology.restricted, "file", b"sealed", message_id="r1")
    for role in ("hub", "screening", "police"):
        assert await refused_reading(mash, role, topology.restricted_queue) is not None, role
    async with await mash.connection("restricted") as connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.restricted_queue, ensure=False)
        message = await queue.get(timeout=5)
        await message.ack()
    assert message.body == b"sealed"
    assert message.user_id == f"{mash.prefix}-hub"


async def test_an_answer_claiming_another_agency_is_dead_lettered_and_the_real_one_counts(
    mash: Mash,
) -> None:
    topology = mash.topology
    await mash.hub()
    await mash.adapter("police")
    watcher = await mash.watcher()
    async with HubClient(mash.settings("screening")) as client:
        reply = await client.submit(make_contact(agencies=["police", "health"]))
    # Police learns of health's request (here through the administrator: the broker would not
    # let police read it) and, holding a stolen copy of health's signing key, answers it as
    # health, correctly signed, on its own broker connection. Only its login gives it away.
    peeked = await take(topology.request_queue("health", "routine"), leave=True)
    request = decode(peeked.body, InformationRequest)
    forged = AdapterService(KnowsEveryone("health"), mash.settings("health")).answer(request)
    with capture_logs() as logs:
        async with await mash.connection("police") as connection:
            as_health = await signed_publisher(connection, mash.settings("police"), "health")
            await as_health.publish_model(topology.answers, "routine", forged, message_id="forged")
        dead = await take(topology.answer_queue("routine") + ".dead")
    assert dead.headers[REASON] == "broker-user-mismatch"
    [event] = [e for e in logs if e["event"] == "message_dead_lettered"]
    assert event["reason"] == "broker-user-mismatch"
    assert dead.headers[BROKER_USER] == f"{mash.prefix}-police"

    # The hub kept going: health's own answer completes the packet.
    await mash.adapter("health")
    packet = await watcher.next()
    assert packet.contact_ref == reply.contact_ref
    assert packet.reason is PacketReason.COMPLETE
    assert sorted(a.agency for a in packet.answers) == ["health", "police"]
