"""``mash status`` read back against a running hub and adapters: on the machine's broker
(passive declares, no management plugin) and on a node of the test's own with the management
API (rates), where a cut connection also shows in the reconnect metric."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from broker.connection import connect
from broker.provision import new_credentials, provision
from broker.publisher import Publisher
from broker.settings import BrokerSettings
from broker.signing import OPERATOR
from broker.topology import Topology, delete
from faults.connections import close_connections
from faults.rabbit_node import RabbitNode, rabbitmq_available
from hub.client import HubClient
from hub.policy import BragPolicy, Window
from hub.settings import HubSettings
from hub.store import HubStore
from schemas.enums import Brag
from tests.ops_support import cli_env, free_port, mash_cli, scrape, wait_for
from tests.support import Stack, make_contact, signed_publisher
from tests.tls import TestAuthority

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


# With no pause between snapshots the interrupt lands inside one: under load such an interrupt
# was once lost (a cancellation arriving as a connection completed) and the watch never ended.
@pytest.mark.parametrize("interval", ["0.2", "0"])
async def test_status_watch_refreshes_until_interrupted(stack: Stack, interval: str) -> None:
    await stack.hub()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        "status",
        "--watch",
        "--json",
        "--interval",
        interval,
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


# The broker password and the management API ---------------------------------------------
def _non_loopback_address() -> str | None:
    """This machine's address on its network (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if ipaddress.ip_address(address).is_loopback else address


class Eavesdropper:
    """A listener on the machine's network address that records whatever is sent to it and
    answers 503, as a machine on the path between `mash status` and the broker could."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.received += await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def start(self, host: str) -> str:
        self.server = await asyncio.start_server(self._serve, host, 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://{host}:{port}/"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_status_never_sends_the_password_in_clear_to_another_machine(stack: Stack) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")
    await stack.hub()
    listener = Eavesdropper()
    url = await listener.start(address)
    try:
        env = cli_env(stack.settings, MASH_MANAGEMENT_URL=url)
        code, out, _ = await mash_cli("status", "--json", env=env)
        assert code == 0
        shown = json.loads(out)
        assert shown["broker"]["source"] == "passive"
        assert "not sending the broker password in clear" in shown["broker"]["note"]
        assert listener.received == b""

        # Told to, it does: what the listener would have read every time.
        env["MASH_MANAGEMENT_PLAIN_HTTP"] = "true"
        code, out, _ = await mash_cli("status", "--json", env=env)
        assert code == 0
        assert json.loads(out)["broker"]["source"] == "passive"  # the listener said 503
        assert b"Authorization: Basic " + base64.b64encode(b"guest:guest") in listener.received
    finally:
        await listener.stop()


# A certificate-only broker with its management API on HTTPS only ---------------------------
TLS_PREFIX = "tlsops"


@dataclass
class TlsBroker:
    node: RabbitNode
    amqp_port: int
    https_port: int
    ca: TestAuthority
    folder: Path
    passwords: dict[str, str]

    def certified(self, role: str) -> dict[str, str]:
        """MASH_TLS_* for ``role``'s own certificate (common name: its broker user)."""
        issued = self.ca.client(f"{TLS_PREFIX}-{role}")
        cert, key = self.folder / f"{role}.pem", self.folder / f"{role}.key"
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        key.chmod(0o600)
        return {
            "MASH_TLS_CA": str(self.folder / "ca.pem"),
            "MASH_TLS_CERT": str(cert),
            "MASH_TLS_KEY": str(key),
        }

    def env(self, role: str, *, password: bool, **extra: str) -> dict[str, str]:
        login = f"{TLS_PREFIX}-{role}:{self.passwords[role]}@" if password else ""
        settings = HubSettings(
            prefix=TLS_PREFIX,
            amqp_url=f"amqps://{login}localhost:{self.amqp_port}/",
            db_path=self.folder / "hub.sqlite3",
        )
        return cli_env(settings, **self.certified(role), **extra)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    unavailable = rabbitmq_available()
    if unavailable:
        pytest.skip(f"cannot start a RabbitMQ node of our own: {unavailable}")
    ca, folder = TestAuthority(), tmp_path_factory.mktemp("tls-ops")
    amqp_port, https_port = free_port(), free_port()
    node = RabbitNode(plugins=["rabbitmq_auth_mechanism_ssl", "rabbitmq_management"], tcp=False)
    tls = [
        f"cacertfile = {node.path('tls/ca.pem')}",
        f"certfile = {node.path('tls/server.pem')}",
        f"keyfile = {node.path('tls/server.key')}",
        "verify = verify_peer",
        "fail_if_no_peer_cert = true",
    ]
    node.config += [
        f"listeners.ssl.default = {amqp_port}",
        *(f"ssl_options.{line}" for line in tls),
        "auth_mechanisms.1 = EXTERNAL",
        "auth_mechanisms.2 = PLAIN",
        "ssl_cert_login_from = common_name",
        # The API on HTTPS only, and only for a client with a certificate from the CA.
        f"management.ssl.port = {https_port}",
        *(f"management.ssl.{line}" for line in tls),
    ]
    server = ca.server("localhost")
    node.write("tls/ca.pem", ca.cert_pem, 0o644)
    node.write("tls/server.pem", server.cert_pem, 0o644)
    node.write("tls/server.key", server.key_pem, 0o600)
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    with node:
        topology = Topology(BrokerSettings(prefix=TLS_PREFIX))
        credentials = new_credentials(topology)
        provision(topology, credentials, node=node.name)
        HubStore(folder / "hub.sqlite3").close()  # an empty hub database to report on
        passwords = {c.role: c.password for c in credentials if c.password}
        yield TlsBroker(node, amqp_port, https_port, ca, folder, passwords)


async def test_status_reads_an_amqps_brokers_management_api_over_https(
    tls_broker: TlsBroker,
) -> None:
    https = f"https://localhost:{tls_broker.https_port}/"
    env = tls_broker.env("operator", password=True, MASH_MANAGEMENT_URL=https)
    code, out, err = await mash_cli("status", "--json", env=env)
    assert (code, err) == (0, "")
    shown = json.loads(out)
    assert shown["broker"]["source"] == "management"
    queues = {q["name"]: q for q in shown["queues"]}
    assert queues["hub.contacts.routine"]["exists"]
    assert queues["hub.contacts.routine"]["ready"] == 0

    # Left to itself, it looks for the API on the HTTPS port, never on plain HTTP.
    del env["MASH_MANAGEMENT_URL"]
    code, out, _ = await mash_cli("status", "--json", env=env)
    assert code == 0
    note = json.loads(out)["broker"]["note"]
    assert note.startswith("management API not available at https://localhost:15671")


async def test_status_and_dlq_work_with_a_certificate_and_no_password(
    tls_broker: TlsBroker,
) -> None:
    topology = Topology(BrokerSettings(prefix=TLS_PREFIX))
    files = tls_broker.certified("hub")
    hub = HubSettings(
        prefix=TLS_PREFIX,
        amqp_url=f"amqps://localhost:{tls_broker.amqp_port}/",
        tls_ca=Path(files["MASH_TLS_CA"]),
        tls_cert=Path(files["MASH_TLS_CERT"]),
        tls_key=Path(files["MASH_TLS_KEY"]),
    )
    async with await connect(hub, "test-hub") as connection:
        await Publisher(connection).publish(
            topology.dead, topology.answer_queue("routine"), b"x", message_id="dead-over-tls"
        )
    env = tls_broker.env("operator", password=False)

    code, out, err = await mash_cli("status", "--json", env=env)
    assert (code, err) == (0, "")
    shown = json.loads(out)
    assert shown["broker"]["source"] == "passive"
    assert "certificate login has no password for the management API" in shown["broker"]["note"]
    assert shown["dead_letters"]["hub.answers.routine.dead"] == 1

    code, out, err = await mash_cli("dlq", "list", env=env)
    assert code == 0, err
    assert out.splitlines()[1].split()[:3] == ["dead-over-tls", "hub.answers.routine", "unknown"]

    # Without the CA the broker's certificate cannot be checked: one line, no traceback.
    del env["MASH_TLS_CA"]
    code, out, err = await mash_cli("dlq", "list", env=env)
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith("error: cannot connect mash-dlq to ")
    assert f"amqps://localhost:{tls_broker.amqp_port}" in line
    assert "CERTIFICATE_VERIFY_FAILED" in line
