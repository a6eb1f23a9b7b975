"""docker/rabbitmq/rabbitmq.conf.template, the broker configuration the compose file runs, on a
RabbitMQ node of this test's own (faults/rabbit_node.py): the definitions from
`mash broker definitions` are loaded at boot and no `guest` exists, certificates are the only
way in, and a message over the 4 MiB limit is refused while a normal one goes through."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest
from aio_pika.exceptions import ChannelClosed

from broker.connection import BrokerRefused, connect
from broker.provision import definitions, new_credentials
from broker.settings import BrokerSettings
from broker.topology import Topology
from faults.rabbit_node import RabbitNode, free_port, rabbitmq_available
from schemas.codec import MAX_MESSAGE_BYTES
from tests.tls import TestAuthority

TEMPLATE = Path(__file__).parents[2] / "docker" / "rabbitmq" / "rabbitmq.conf.template"
PREFIX = "hardened"
VHOST = "hardened"

pytestmark = pytest.mark.skipif(rabbitmq_available() is not None, reason=str(rabbitmq_available()))


def _config(node: RabbitNode, port: int) -> list[str]:
    """The template's settings as the compose file's start.sh renders them, with this node's
    paths; the node keeps its own log file (the test reads it) and has no management plugin."""
    text = (
        TEMPLATE.read_text()
        .replace("@AMQPS_PORT@", str(port))
        .replace("@ADMIN_USER@", f"{PREFIX}-admin")
        .replace("/etc/rabbitmq/mash/", str(node.path("mash")) + "/")
    )
    lines = [line.strip() for line in text.splitlines()]
    return [
        line
        for line in lines
        if line
        and not line.startswith("#")
        and not line.startswith(("log.", "management.", "listeners.tcp ", "loopback_users "))
    ]


class Hardened:
    def __init__(self, node: RabbitNode, port: int, ca: TestAuthority, certs: Path) -> None:
        self.node, self.port, self.ca, self.certs = node, port, ca, certs

    def settings(self, role: str) -> BrokerSettings:
        issued = self.ca.client(f"{PREFIX}-{role}")
        cert, key = self.certs / f"{role}.pem", self.certs / f"{role}.key"
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        return BrokerSettings(
            prefix=PREFIX,
            amqp_url=f"amqps://localhost:{self.port}/{VHOST}",
            tls_ca=self.certs / "ca.pem",
            tls_cert=cert,
            tls_key=key,
            declare_topology=False,
        )


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    port = free_port()
    node = RabbitNode(plugins=["rabbitmq_auth_mechanism_ssl"], tcp=False)
    node.config += _config(node, port)
    ca = TestAuthority()
    server = ca.server("localhost")
    node.write("mash/tls/ca.pem", ca.cert_pem, 0o644)
    node.write("mash/tls/server.pem", server.cert_pem, 0o644)
    node.write("mash/tls/server.key", server.key_pem, 0o600)
    settings = BrokerSettings(prefix=PREFIX, amqp_url=f"amqps://localhost:{port}/{VHOST}")
    topology = Topology(settings)
    document = definitions(topology, new_credentials(topology, passwords=False))
    node.write("mash/definitions.json", json.dumps(document), 0o600)
    certs = tmp_path_factory.mktemp("hardened-certs")
    (certs / "ca.pem").write_bytes(ca.cert_pem)
    with node:
        yield Hardened(node, port, ca, certs)


def test_definitions_are_loaded_at_boot_and_there_is_no_guest(hardened: Hardened) -> None:
    users = {line.split("\t")[0] for line in hardened.node.ctl("list_users").splitlines()}
    assert "guest" not in users
    assert {f"{PREFIX}-hub", f"{PREFIX}-police", f"{PREFIX}-screening"} <= users
    queues = hardened.node.ctl("list_queues", "-p", VHOST, "name")
    assert Topology(hardened.settings("hub")).packet_queue in queues


def test_the_limits_and_alarms_are_in_force(hardened: Hardened) -> None:
    def setting(name: str) -> str:
        return hardened.node.ctl("eval", f"application:get_env(rabbit, {name}).").strip()

    assert setting("max_message_size") == f"{{ok,{MAX_MESSAGE_BYTES}}}"
    assert setting("vm_memory_high_watermark") == "{ok,0.4}"
    assert setting("disk_free_limit") == '{ok,"2GB"}'
    # loopback_users is not checked here: RabbitNode's own `loopback_users = none` (its tests
    # connect from anywhere) overrides it; make docker-check checks it on the real broker.


async def test_a_certificate_is_the_only_way_in(hardened: Hardened) -> None:
    uncertified = hardened.settings("hub").model_copy(update={"tls_cert": None, "tls_key": None})
    with pytest.raises(BrokerRefused):
        await connect(uncertified, "no-certificate")
    connection = await connect(hardened.settings("hub"), "certified-hub")
    await connection.close()


async def test_a_message_over_the_limit_is_refused_and_one_within_it_delivered(
    hardened: Hardened,
) -> None:
    settings = hardened.settings("hub")
    topology = Topology(settings)
    connection = await connect(settings, "hub-sizes")
    try:
        channel = await connection.channel()
        requests = await channel.get_exchange(topology.requests, ensure=False)
        # The hub may write requests; the queue it routes to is police's routine lane.
        await requests.publish(
            aio_pika.Message(b"x" * 1024), routing_key=topology.request_key("police", "routine")
        )
        with pytest.raises(ChannelClosed, match="max size"):
            big = await connection.channel()
            exchange = await big.get_exchange(topology.requests, ensure=False)
            await exchange.publish(
                aio_pika.Message(b"x" * (MAX_MESSAGE_BYTES + 1)),
                routing_key=topology.request_key("police", "routine"),
            )
    finally:
        await connection.close()
    # The small one was confirmed: it is in police's queue (a quorum queue's count in
    # list_queues lags a moment behind, so look until it shows).
    police = topology.request_queue("police", "routine")
    for _ in range(50):
        depth = hardened.node.ctl("list_queues", "-p", VHOST, "name", "messages")
        if f"{police}\t1" in depth:
            break
        await asyncio.sleep(0.2)
    assert f"{police}\t1" in depth
