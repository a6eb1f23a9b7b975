"""The nodes of a RabbitMQ cluster in one setting: every node listed, checked as one cluster,
each quorum queue's replica count, and a connection that moves to the next node on each
attempt."""

from __future__ import annotations

import pytest
from yarl import URL

from broker.connection import NodeRotatingConnection, connection_url
from broker.settings import BrokerSettings, SettingsInvalid
from broker.topology import Topology

NODES = "amqp://u:p@node1:5672/mash, amqp://u:p@node2:5673/mash,amqp://u:p@node3:5674/mash"


def test_a_comma_separated_url_names_every_node_and_the_first_is_the_url() -> None:
    settings = BrokerSettings(amqp_url=NODES)

    assert settings.brokers == (
        "amqp://u:p@node1:5672/mash",
        "amqp://u:p@node2:5673/mash",
        "amqp://u:p@node3:5674/mash",
    )
    assert settings.amqp_url == "amqp://u:p@node1:5672/mash"


def test_the_nodes_may_be_given_in_their_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASH_AMQP_URLS", NODES)

    assert len(BrokerSettings().brokers) == 3
    assert BrokerSettings().amqp_url.endswith("node1:5672/mash")


def test_one_broker_is_a_cluster_of_one() -> None:
    assert BrokerSettings().brokers == ("amqp://guest:guest@127.0.0.1:5672/",)


@pytest.mark.parametrize(
    "other",
    [
        "amqp://u:other@node2:5672/mash",  # another password
        "amqp://v:p@node2:5672/mash",  # another user
        "amqp://u:p@node2:5672/elsewhere",  # another vhost
        "amqps://u:p@node2:5671/mash",  # another scheme
    ],
)
def test_nodes_that_are_not_one_cluster_are_refused_in_one_line_without_the_password(
    other: str,
) -> None:
    with pytest.raises(SettingsInvalid) as refused:
        BrokerSettings(amqp_url=f"amqp://u:p@node1:5672/mash,{other}")

    message = str(refused.value)
    assert message.startswith("MASH_AMQP_URL: every node must have the same")
    assert "\n" not in message and "other" not in message


def test_a_bad_node_url_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsInvalid, match=r"^MASH_AMQP_URL: expected an amqp://"):
        BrokerSettings(amqp_url="amqp://u:p@node1:5672/,http://node2/")


def test_quorum_queues_get_the_replica_count_when_one_is_set() -> None:
    plain = Topology(BrokerSettings()).queues()
    three = Topology(BrokerSettings(quorum_group_size=3)).queues()

    assert all("x-quorum-initial-group-size" not in q.arguments for q in plain)
    quorum = [q for q in three if q.arguments.get("x-queue-type") == "quorum"]
    assert quorum and len(quorum) == len(three)
    assert {q.arguments["x-quorum-initial-group-size"] for q in quorum} == {3}


async def test_each_attempt_after_the_first_goes_to_the_next_node() -> None:
    settings = BrokerSettings(amqp_url=NODES)
    nodes = [connection_url(settings, node) for node in settings.brokers]
    connection = NodeRotatingConnection(nodes)
    seen = []
    # What aio-pika's robust connection does before each attempt: clear the transport.
    for _ in range(4):
        connection.transport = None
        seen.append(connection.url.host)

    assert seen == ["node1", "node2", "node3", "node1"]


async def test_a_new_password_holds_for_every_node() -> None:
    nodes = [URL("amqp://u:p@node1:5672/"), URL("amqp://u:p@node2:5673/")]
    connection = NodeRotatingConnection(nodes)

    connection.url = connection.url.with_password("rotated")
    connection.transport = None
    connection.transport = None

    assert connection.url.host == "node2" and connection.url.password == "rotated"
