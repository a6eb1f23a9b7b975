"""Mutual TLS on a RabbitMQ node of this module's own (the machine's broker is left alone): a
TLS listener only, client certificates required, EXTERNAL authentication with the
certificate's common name as the broker user. Plain and certificate-less connections are
refused; the hub, four adapters and the screening UI, each with its own certificate, complete
a contact cycle."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from adapters.kit.service import AdapterService
from broker.connection import BrokerRefused, connect
from broker.provision import new_credentials, provision
from broker.publisher import Publisher, PublishRefused
from broker.settings import BrokerSettings
from broker.topology import Topology
from faults.rabbit_node import RabbitNode, free_port, rabbitmq_available
from hub.client import HubClient
from hub.service import HubService
from hub.settings import HubSettings
from schemas.enums import PacketReason
from tests.support import KnowsEveryone, PacketWatcher, make_contact
from tests.tls import TestAuthority

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(rabbitmq_available() is not None, reason=str(rabbitmq_available())),
]

PREFIX = "tls"
AGENCIES = ("police", "health", "education", "housing")


@dataclass
class TlsMash:
    node: RabbitNode
    port: int
    ca: TestAuthority
    certs: Path
    running: list[HubService | AdapterService | PacketWatcher] = field(default_factory=list)

    def certified(self, user: str) -> tuple[Path, Path]:
        issued = self.ca.client(user)
        cert, key = self.certs / f"{user}.pem", self.certs / f"{user}.key"
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        key.chmod(0o600)
        return cert, key

    def settings(self, role: str | None, *, url: str | None = None) -> HubSettings:
        """Settings for ``role``'s certificate (None: no client certificate)."""
        cert, key = self.certified(f"{PREFIX}-{role}") if role else (None, None)
        return HubSettings(
            prefix=PREFIX,
            amqp_url=url or f"amqps://localhost:{self.port}/",
            tls_ca=self.certs / "ca.pem",
            tls_cert=cert,
            tls_key=key,
            declare_topology=False,
            db_path=self.certs / f"hub-{uuid.uuid4().hex[:6]}.sqlite3",
            new_database=True,  # each test's hub its own new state on the module's prefix
        )


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsMash]:
    ca = TestAuthority()
    port = free_port()
    node = RabbitNode(plugins=["rabbitmq_auth_mechanism_ssl"], tcp=False)
    node.config += [
        f"listeners.ssl.default = {port}",
        f"ssl_options.cacertfile = {node.path('tls/ca.pem')}",
        f"ssl_options.certfile = {node.path('tls/server.pem')}",
        f"ssl_options.keyfile = {node.path('tls/server.key')}",
        "ssl_options.verify = verify_peer",
        "ssl_options.fail_if_no_peer_cert = true",
        "auth_mechanisms.1 = EXTERNAL",
        "ssl_cert_login_from = common_name",
    ]
    server = ca.server("localhost")
    node.write("tls/ca.pem", ca.cert_pem, 0o644)
    node.write("tls/server.pem", server.cert_pem, 0o644)
    node.write("tls/server.key", server.key_pem, 0o600)
    certs = tmp_path_factory.mktemp("certs")
    (certs / "ca.pem").write_bytes(ca.cert_pem)
    with node:
        # Users for the certificates' common names, their permissions and the topology, as
        # `mash broker provision --no-passwords --node NODE` does.
        topology = Topology(BrokerSettings(prefix=PREFIX, agencies=AGENCIES))
        provisioning = time.monotonic()
        provision(topology, new_credentials(topology, passwords=False), node=node.name)
        print(
            f"\nTLS node {node.name}: started in {node.start_seconds:.1f}s, "
            f"provisioned in {time.monotonic() - provisioning:.1f}s"
        )
        yield TlsMash(node, port, ca, certs)


@pytest.fixture
async def tls(tls_node: TlsMash) -> AsyncIterator[TlsMash]:
    yield tls_node
    while tls_node.running:
        await tls_node.running.pop().stop()


async def test_a_plain_amqp_connection_is_refused_with_one_log_event(tls: TlsMash) -> None:
    settings = tls.settings(None, url=f"amqp://guest:guest@localhost:{tls.port}/")
    started = time.monotonic()
    with capture_logs() as logs, pytest.raises(BrokerRefused):
        await connect(settings.model_copy(update={"tls_ca": None}), "test-plain")
    assert time.monotonic() - started < 15
    [event] = [e for e in logs if e["log_level"] == "error"]
    assert event["event"] == "broker_connection_refused"
    assert event["connection"] == "test-plain"
    assert event["reason"]
    assert "guest" not in event["broker"]  # no credentials in the log


async def test_a_tls_connection_without_a_client_certificate_is_refused(tls: TlsMash) -> None:
    with pytest.raises(BrokerRefused):
        await connect(tls.settings(None), "test-no-cert")


async def test_a_password_is_no_way_in_when_certificates_are_required(tls: TlsMash) -> None:
    settings = tls.settings("police")
    with_password = settings.model_copy(
        update={"amqp_url": f"amqps://{PREFIX}-police:guessed@localhost:{tls.port}/"}
    )
    with pytest.raises(BrokerRefused, match="accepts EXTERNAL authentication, not PLAIN"):
        await connect(with_password, "test-password")


async def test_a_certificate_from_another_authority_is_refused(tls: TlsMash) -> None:
    stranger = TestAuthority("Somebody else's CA").client(f"{PREFIX}-police")
    settings = tls.settings("police")
    assert settings.tls_cert is not None and settings.tls_key is not None
    settings.tls_cert.write_bytes(stranger.cert_pem)
    settings.tls_key.write_bytes(stranger.key_pem)
    with pytest.raises(BrokerRefused):
        await connect(settings, "test-stranger")


async def test_a_certified_agency_is_still_held_to_its_own_permissions(tls: TlsMash) -> None:
    topology = Topology(tls.settings("police"))
    async with await connect(tls.settings("police"), "test-police") as connection:
        publisher = Publisher(connection)
        assert publisher.user_id == f"{PREFIX}-police"
        with pytest.raises(PublishRefused, match="ACCESS_REFUSED"):
            await publisher.publish(topology.requests, "health.urgent", b"x", message_id="r")


async def test_certified_hub_adapters_and_screening_ui_complete_a_cycle(tls: TlsMash) -> None:
    hub = HubService(tls.settings("hub"))
    tls.running.append(hub)
    await hub.start()
    for agency in AGENCIES:
        adapter = AdapterService(KnowsEveryone(agency), tls.settings(agency))
        tls.running.append(adapter)
        await adapter.start()
    screening = tls.settings("screening")
    watcher = PacketWatcher(screening)
    tls.running.append(watcher)
    await watcher.start()

    async with HubClient(screening) as client:
        reply = await client.submit(make_contact())
    packet = await watcher.next()

    assert reply.ok, reply.error
    assert packet.contact_ref == reply.contact_ref
    assert packet.reason is PacketReason.COMPLETE
    assert sorted(a.agency for a in packet.answers) == sorted(AGENCIES)
