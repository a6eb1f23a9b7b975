"""Per-agency broker identities on the real broker: `mash broker provision` creates one user per
role, and RabbitMQ itself keeps each agency to its own requests and its own name. Users and
queues live under a prefix of this module's own and are deleted at the end."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
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
from broker.keyring import Keyring
from broker.publisher import Publisher, PublishFailed, PublishRefused
from broker.replay import REPLAYED_FROM
from broker.settings import BrokerSettings
from broker.signing import KEY_ID, OPERATOR
from broker.topology import Topology, TopologyRefused, declare, delete
from hub import audit
from hub.client import HubClient
from hub.service import HubService
from hub.settings import HubSettings
from schemas.codec import decode
from schemas.enums import PacketReason
from schemas.models import InformationRequest
from tests.ops_support import cli_env, wait_for
from tests.ops_support import mash_cli as run_mash
from tests.support import Keys, KnowsEveryone, PacketWatcher, make_contact, signed_publisher

pytestmark = pytest.mark.broker

ADMIN_URL = os.environ.get("MASH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def mash_cli(*args: str, prefix: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mash", *args],
        env={**os.environ, "MASH_PREFIX": prefix, **env},
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

    async def hub(self, **changes: Any) -> HubService:
        fresh = self.folder / f"hub-{uuid.uuid4().hex[:6]}.sqlite3"  # each test its own state
        # Each test's own state on one prefix: a new database on purpose ('mash hub --new').
        settings = self.settings("hub").model_copy(
            update={"db_path": fresh, "new_database": True, **changes}
        )
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
    assert gone.stdout.startswith("deleted 8 users")
    assert not users & broker_users()


@pytest.fixture
async def mash(provisioned: Mash) -> AsyncIterator[Mash]:
    yield provisioned
    await provisioned.stop_all()
    # What one test left queued must not be another's (each hub starts with a new database).
    await _purge_everything(provisioned.topology)


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
    assert set(users) == {"hub", "screening", "restricted", "operator", "police", "health",
                          "education", "housing"}  # fmt: skip
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


# Every role's effective permissions, tried on the broker against the topology table --------
async def _purge_everything(topology: Topology) -> None:
    """Empty every queue of this MASH (tests below put messages where the table allows)."""
    async with await aio_pika.connect(ADMIN_URL) as admin:
        for name in topology.all_queue_names():
            channel = await admin.channel()
            await (await channel.get_queue(name, ensure=False)).purge()
            await channel.close()


async def _depths(topology: Topology) -> dict[str, int]:
    depths = {}
    async with await aio_pika.connect(ADMIN_URL) as admin:
        channel = await admin.channel()
        for name in topology.all_queue_names():
            queue = await channel.declare_queue(name, passive=True)
            depths[name] = queue.declaration_result.message_count or 0
    return depths


async def _published(publisher: Publisher, exchange: str, key: str) -> bool:
    """True when the broker let this user publish there (routed or not), False if refused."""
    try:
        await publisher.publish(exchange, key, b"probe", message_id=f"probe-{uuid.uuid4()}")
    except PublishRefused:
        return False
    except PublishFailed:
        return True  # permitted, but no queue bound under that key (unroutable)
    return True


def _keys(topology: Topology, exchange: str) -> list[str]:
    """Routing keys that reach each queue bound to ``exchange`` (the dead exchange: each work
    queue's own name); an exchange with no queue in the table gets one key of its own."""
    keys = [key for q in topology.queues() for source, key in q.bindings if source == exchange]
    return sorted(set(keys)) or ["probe"]


def _table_allows_write(topology: Topology, role: str, exchange: str, key: str) -> bool:
    """What the topology table says, read directly: the role is one of the exchange's writers
    and, on the dead exchange, the key is the dead-letter route of a queue it reads."""
    spec = next(e for e in topology.exchanges() if e.name == exchange)
    if role not in spec.writers:
        return False
    if exchange == topology.dead:
        return any(q.name == key and role in q.readers for q in topology.queues())
    return True


async def test_no_role_can_publish_into_any_queue_through_the_default_exchange(
    mash: Mash,
) -> None:
    topology = mash.topology
    queues = topology.all_queue_names()
    before = await _depths(topology)
    for role in topology.roles():
        async with await mash.connection(role) as connection:
            publisher = Publisher(connection, attempts=1)
            let_through = [q for q in queues if await _published(publisher, "", q)]
        assert let_through == [], f"{role} may write the default exchange"
    # Nothing reached a queue: not a dead-letter queue, not the restricted file.
    assert await _depths(topology) == before


async def test_every_role_publishes_exactly_where_the_topology_table_says(mash: Mash) -> None:
    topology = mash.topology
    for role in topology.roles():
        async with await mash.connection(role) as connection:
            publisher = Publisher(connection, attempts=1)
            for exchange in topology.exchanges():
                for key in _keys(topology, exchange.name):
                    expected = _table_allows_write(topology, role, exchange.name, key)
                    actual = await _published(publisher, exchange.name, key)
                    assert actual is expected, f"{role} -> {exchange.name} {key!r}"


async def test_every_role_reads_exactly_the_queues_the_topology_table_says(mash: Mash) -> None:
    topology = mash.topology
    for role in topology.roles():
        async with await mash.connection(role) as connection:
            channel = await connection.channel()
            for spec in topology.queues():
                try:
                    await (await channel.get_queue(spec.name, ensure=False)).get(fail=False)
                    readable = True
                except aiormq.exceptions.ChannelAccessRefused:
                    readable = False
                    channel = await connection.channel()
                assert readable is (role in spec.readers), f"{role} reads {spec.name}"


async def test_only_the_screening_ui_binds_a_reply_queue_and_only_to_the_replies_exchange(
    mash: Mash,
) -> None:
    topology = mash.topology
    async with await mash.connection("screening") as connection:
        channel = await connection.channel()
        queue: aio_pika.abc.AbstractQueue = await channel.declare_queue(
            topology.reply_queue(uuid.uuid4().hex), exclusive=True, auto_delete=True
        )
        await queue.bind(topology.replies, routing_key=queue.name)
        for exchange in (topology.requests, topology.events, topology.restricted, topology.dead):
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await queue.bind(exchange, routing_key="#")
            channel = await connection.channel()
            queue = await channel.get_queue(queue.name, ensure=False)
    for role in ("hub", "police", "operator"):
        async with await mash.connection(role) as connection:
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await channel.declare_queue(
                    topology.reply_queue(uuid.uuid4().hex), exclusive=True, auto_delete=True
                )


async def test_the_hubs_user_can_reply_only_into_a_reply_queue(mash: Mash) -> None:
    topology = mash.topology
    targets = [topology.restricted_queue, f"{topology.answer_queue('urgent')}.dead"]
    before = await _depths(topology)
    async with await mash.connection("hub") as connection:
        publisher = Publisher(connection, attempts=1)
        for target in targets:
            # Whatever the hub's code did with a sender's reply_to, its broker user has no
            # route into these queues: unroutable through replies, refused through the default.
            with pytest.raises(PublishFailed) as unroutable:
                await publisher.publish(topology.replies, target, b"x", message_id="r1")
            assert not isinstance(unroutable.value, PublishRefused)
            with pytest.raises(PublishRefused):
                await publisher.publish("", target, b"x", message_id="r2")
    assert await _depths(topology) == before


async def test_a_reply_to_naming_the_restricted_file_delivers_nothing_there(mash: Mash) -> None:
    topology = mash.topology
    await mash.hub()
    targets = [topology.restricted_queue, f"{topology.answer_queue('urgent')}.dead"]
    sent: set[str] = set()
    with capture_logs() as logs:
        async with await mash.connection("screening") as connection:
            front_door = await signed_publisher(connection, mash.settings("screening"), OPERATOR)
            for target in targets:
                contact = make_contact()
                sent.add(contact.contact_id)
                await front_door.publish_model(
                    topology.contacts, "routine", contact, reply_to=target,
                    message_id=contact.contact_id,
                )  # fmt: skip

        def both_handled() -> bool:
            # Replied to nowhere, or refused whole: either way the hub is done with them.
            done = {"reply_not_delivered", "message_dead_lettered"}
            return {e.get("message_id") for e in logs if e["event"] in done} >= sent

        await wait_for(both_handled)
    depths = await _depths(topology)
    assert [depths[target] for target in targets] == [0, 0]


# Dead-letter replay under the operator's own broker user ---------------------------------
def _operator_env(mash: Mash, hub: HubService) -> dict[str, str]:
    return cli_env(mash.settings("operator"), MASH_DB_PATH=str(hub.settings.db_path))


async def _dead_reasons(queue: str, count: int) -> list[str]:
    reasons = [str((await take(queue)).headers[REASON]) for _ in range(count)]
    return sorted(reasons)


async def test_an_agencys_answer_refused_by_the_hub_is_recovered_by_the_operators_replay(
    mash: Mash, keys: Keys, tmp_path: Path
) -> None:
    topology = mash.topology
    # The hub's copy of the key registry does not have housing's key yet.
    hub_ring = tmp_path / "hub-keyring.json"
    full = Keyring.load(keys.keyring)
    Keyring(hub_ring, [e for e in full.entries() if e.owner != "housing"]).save()
    hub = await mash.hub(keyring=hub_ring)
    await mash.adapter("police")
    await mash.adapter("housing")
    watcher = await mash.watcher()
    async with HubClient(mash.settings("screening")) as client:
        reply = await client.submit(make_contact(agencies=["police", "housing"]))
    dead = f"{topology.answer_queue('routine')}.dead"
    refused = await take(dead, leave=True)
    assert refused.headers[REASON] == "unknown-key"

    # The cause is fixed: the registry reaches the hub (which looks at it once a second).
    shutil.copyfile(keys.keyring, hub_ring)
    housing_key = str(refused.headers[KEY_ID])
    ring = hub.credentials.verifier.keyring

    def hub_knows_housing() -> bool:
        ring.refresh()
        return ring.get(housing_key) is not None

    await wait_for(hub_knows_housing)
    # The operator replays it, as itself.
    code, out, err = await run_mash("dlq", "replay", "--all", env=_operator_env(mash, hub))
    assert code == 0, err
    assert out.strip() == (
        f"replayed {refused.message_id} from hub.answers.routine.dead to answers 'routine'"
    )

    packet = await watcher.next()
    assert packet.contact_ref == reply.contact_ref
    assert packet.reason is PacketReason.COMPLETE
    assert sorted(a.agency for a in packet.answers) == ["housing", "police"]
    [replayed] = [e for e in audit.entries(hub.store.connection) if e.action == "answer-replayed"]
    assert replayed.actor == f"{mash.prefix}-operator"
    assert replayed.contact_ref == reply.contact_ref
    assert replayed.detail["agency"] == "housing"
    assert replayed.detail["message_id"] == refused.message_id
    assert audit.verify(hub.store.connection)[1] is None


async def test_a_contact_refused_by_the_hub_is_taken_in_from_the_operators_replay(
    mash: Mash, keys: Keys, tmp_path: Path
) -> None:
    topology = mash.topology
    # The hub's copy of the key registry does not have the front door's key yet.
    hub_ring = tmp_path / "hub-keyring.json"
    full = Keyring.load(keys.keyring)
    Keyring(hub_ring, [e for e in full.entries() if e.owner != OPERATOR]).save()
    hub = await mash.hub(keyring=hub_ring)
    contact = make_contact(agencies=["police"])
    async with await mash.connection("screening") as connection:
        front_door = await signed_publisher(connection, mash.settings("screening"), OPERATOR)
        await front_door.publish_model(
            topology.contacts, "routine", contact, message_id=contact.contact_id
        )
    refused = await take(f"{topology.contact_queue('routine')}.dead", leave=True)
    assert refused.headers[REASON] == "unknown-key"

    shutil.copyfile(keys.keyring, hub_ring)
    operator_key = str(refused.headers[KEY_ID])
    ring = hub.credentials.verifier.keyring

    def hub_knows_the_front_door() -> bool:
        ring.refresh()
        return ring.get(operator_key) is not None

    await wait_for(hub_knows_the_front_door)
    code, _, err = await run_mash("dlq", "replay", contact.contact_id, env=_operator_env(mash, hub))
    assert code == 0, err

    await wait_for(lambda: hub.store.ref_for_contact_id(contact.contact_id) is not None)
    ref = hub.store.ref_for_contact_id(contact.contact_id)
    [replayed] = [e for e in audit.entries(hub.store.connection) if e.action == "contact-replayed"]
    assert (replayed.actor, replayed.contact_ref) == (f"{mash.prefix}-operator", ref)
    assert replayed.detail["message_id"] == contact.contact_id


async def test_the_operators_identity_is_accepted_for_replays_only_and_never_as_an_agency(
    mash: Mash,
) -> None:
    topology = mash.topology
    hub = await mash.hub()
    watcher = await mash.watcher()
    async with HubClient(mash.settings("screening")) as client:
        reply = await client.submit(make_contact(agencies=["housing"]))
    peeked = await take(topology.request_queue("housing", "routine"), leave=True)
    answer = AdapterService(KnowsEveryone("housing"), mash.settings("housing")).answer(
        decode(peeked.body, InformationRequest)
    )
    replay = {REPLAYED_FROM: f"{topology.answer_queue('routine')}.dead"}

    async def send(role: str, signer: str, headers: dict[str, str], message_id: str) -> None:
        async with await mash.connection(role) as connection:
            publisher = await signed_publisher(connection, mash.settings(role), signer)
            await publisher.publish_model(
                topology.answers, "routine", answer, message_id=message_id, headers=headers
            )

    # The operator's user without a replay's headers; another agency's user with them; the
    # operator replaying an answer for housing that police signed.
    await send("operator", "housing", {}, "not-a-replay")
    await send("police", "housing", replay, "replay-by-police")
    await send("operator", "police", replay, "signed-by-police")
    assert await _dead_reasons(f"{topology.answer_queue('routine')}.dead", 3) == [
        "broker-user-mismatch",
        "broker-user-mismatch",
        "sender-mismatch",
    ]
    assert reply.contact_ref is not None
    assert hub.store.requests_for(reply.contact_ref)[0].answered_at is None

    # A genuine replay: the operator's user, the replay's headers, housing's own signature.
    await send("operator", "housing", replay, answer.response_id)
    packet = await watcher.next()
    assert packet.contact_ref == reply.contact_ref
    assert [a.agency for a in packet.answers] == ["housing"]


# Provisioning again -------------------------------------------------------------------------
async def _logs_in(url: str) -> bool:
    try:
        async with await aio_pika.connect(url, timeout=10):
            return True
    except aio_pika.exceptions.ProbableAuthenticationError:
        return False


async def test_provisioning_again_re_keys_nobody_and_adding_an_agency_creates_only_its_user(
    tmp_path: Path,
) -> None:
    prefix = f"ids-{uuid.uuid4().hex[:8]}"
    with_probation = json.dumps(["police", "health", "education", "housing", "probation"])
    first, added, rotated = (tmp_path / f"{n}.json" for n in ("first", "added", "rotated"))
    settings = BrokerSettings(prefix=prefix, agencies=json.loads(with_probation))
    try:
        done = mash_cli("broker", "provision", "--credentials", str(first), prefix=prefix)
        assert done.returncode == 0, done.stderr
        before = {r: e["amqp_url"] for r, e in json.loads(first.read_text())["users"].items()}

        # Running it again changes no password, so needs nowhere to put one.
        done = mash_cli("broker", "provision", prefix=prefix)
        assert done.returncode == 0, done.stderr
        assert "unchanged (permissions brought up to date)" in done.stderr

        # A MASH adds probation: one new user, and the hub may now send it requests.
        done = mash_cli(
            "broker", "provision", "--only", "probation", "--credentials", str(added),
            prefix=prefix, MASH_AGENCIES=with_probation,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        [(role, entry)] = json.loads(added.read_text())["users"].items()
        assert (role, entry["user"]) == ("probation", f"{prefix}-probation")
        assert all([await _logs_in(url) for url in before.values()])
        topology = Topology(settings)
        async with await aio_pika.connect(before["hub"]) as hub:
            await Publisher(hub).publish(
                topology.requests, "probation.routine", b"x", message_id="to-probation"
            )
        async with await aio_pika.connect(entry["amqp_url"]) as probation:
            channel = await probation.channel()
            own = topology.request_queue("probation", "routine")
            queue = await channel.get_queue(own, ensure=False)
            message = await queue.get(timeout=5)
            await message.ack()
        assert message.message_id == "to-probation"

        # Rotation is asked for by name: police's old password stops working, nobody else's.
        done = mash_cli(
            "broker", "provision", "--only", "police", "--rotate", "--credentials",
            str(rotated), prefix=prefix, MASH_AGENCIES=with_probation,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert set(json.loads(rotated.read_text())["users"]) == {"police"}
        assert not await _logs_in(before["police"])
        assert await _logs_in(json.loads(rotated.read_text())["users"]["police"]["amqp_url"])
        assert await _logs_in(before["hub"])

        unknown = mash_cli("broker", "provision", "--only", "probaton", prefix=prefix)
        assert unknown.returncode == 2
        assert unknown.stderr.startswith("error: no role 'probaton' in this MASH")
    finally:
        mash_cli("broker", "deprovision", prefix=prefix, MASH_AGENCIES=with_probation)
        async with await aio_pika.connect(ADMIN_URL) as admin:
            await delete(admin, Topology(settings))
    assert not {f"{prefix}-{role}" for role in Topology(settings).roles()} & broker_users()
