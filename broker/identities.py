"""Who is who on the broker: one user per role, and what each user may touch.

A MASH has a broker user for the hub, the screening UI, the keeper of the restricted file
and each agency (names from ``MASH_BROKER_USER_TEMPLATE``, ``{prefix}-{role}`` by default,
e.g. ``mash-police``). Their permissions are derived from the topology table
(:mod:`broker.topology`: who writes each exchange, who reads each queue), never written by
hand, so a queue added to the table is closed to everyone until a reader is named:

- **configure**: nobody; the topology is declared by the administrator who provisions the
  users (or imported as definitions). The screening UI may create its private reply queues,
  and the hub its exclusive lock queue (one hub per prefix, :mod:`hub.instance`).
- **write**: the exchanges the role publishes to. An agency writes only ``answers`` (and the
  ``dead`` exchange, for requests it cannot read); RabbitMQ checks each message's
  ``user_id`` against the login, so an agency cannot answer as another. Nobody writes the
  default exchange, which reaches every queue by name: the hub replies through the
  ``replies`` exchange, where only the screening UI binds its private reply queues (write
  on those queues, read on that exchange).
- **read**: the queues the role consumes. An agency reads only its own request queues;
  nobody but the screening UI reads packets, nobody but the restricted role reads the
  restricted file, and only the operator role reads the dead-letter queues and events.
- **topic**: on topic exchanges, the routing keys the role may use: each role may
  dead-letter only into the dead-letter queues of the queues it reads.

The hub then refuses an answer whose claimed agency is not its sender's (:func:`check_sender`),
and a contact or command that the screening role's user did not send (:func:`check_role_sender`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import aio_pika

from broker.connection import broker_user
from broker.consumer import Rejected
from broker.settings import BrokerSettings
from broker.topology import HUB, SCREENING, Topology

__all__ = [
    "Permissions",
    "TopicPermission",
    "agency_for_user",
    "agency_user",
    "all_permissions",
    "check_role_sender",
    "check_sender",
    "permissions_for",
    "user_name",
]

NOTHING = "^$"


@dataclass(frozen=True)
class TopicPermission:
    exchange: str
    write: str
    read: str


@dataclass(frozen=True)
class Permissions:
    """One user's permissions in one vhost: regular expressions over resource names."""

    role: str
    user: str
    configure: str
    write: str
    read: str
    topics: tuple[TopicPermission, ...] = ()


def user_name(settings: BrokerSettings, role: str) -> str:
    return settings.broker_user_template.format(prefix=settings.prefix, role=role)


def agency_user(settings: BrokerSettings, agency: str) -> str:
    """The broker user whose ``user_id`` an answer from ``agency`` must carry."""
    return user_name(settings, agency)


def agency_for_user(settings: BrokerSettings, user: str) -> str | None:
    """The agency a broker user belongs to, or None when it is no agency's."""
    for agency in settings.agencies:
        if agency_user(settings, agency) == user:
            return agency
    return None


def _any_of(patterns: Iterable[str]) -> str:
    unique = sorted(set(patterns))
    return f"^({'|'.join(unique)})$" if unique else NOTHING


def _names(names: Iterable[str]) -> list[str]:
    return [re.escape(name) for name in names]


def _topic_key(binding: str) -> str:
    """A topic binding key as a regular expression over the routing keys it matches."""
    words = []
    for word in binding.split("."):
        words.append(".*" if word == "#" else "[^.]+" if word == "*" else re.escape(word))
    return r"\.".join(words)


def permissions_for(topology: Topology, role: str) -> Permissions:
    if role not in topology.roles():
        raise ValueError(f"unknown role {role!r}")
    exchanges = topology.exchanges()
    queues = topology.queues()
    reads = [q for q in queues if role in q.readers]
    writes = [e for e in exchanges if role in e.writers]
    configure, write, read = NOTHING, _names(e.name for e in writes), _names(q.name for q in reads)
    if role == SCREENING:
        # The request/reply plumbing outside the table: `mash contact submit` declares a
        # private reply queue (<prefix>.replies.<token>) and binds it to the replies exchange
        # (queue.bind needs write on the queue and read on the exchange).
        replies = re.escape(topology.reply_queue("")) + "[^.]+"
        configure = f"^{replies}$"
        read += [replies, re.escape(topology.replies)]
        write.append(replies)
    if role == HUB:
        # Its lock, an exclusive queue only the hub's own connection declares (hub.instance).
        configure = f"^{re.escape(topology.hub_lock_queue)}$"
    topics = []
    for exchange in writes:
        if exchange.kind is not aio_pika.ExchangeType.TOPIC:
            continue
        if exchange.name == topology.dead:
            keys = _names(q.name for q in reads if q.dead_letter_queue)
        else:
            keys = [
                _topic_key(key)
                for q in queues
                for source, key in q.bindings
                if source == exchange.name
            ]
        topics.append(TopicPermission(exchange.name, write=_any_of(keys), read=NOTHING))
    return Permissions(
        role=role,
        user=user_name(topology.settings, role),
        configure=configure,
        write=_any_of(write),
        read=_any_of(read),
        topics=tuple(topics),
    )


def all_permissions(topology: Topology) -> list[Permissions]:
    return [permissions_for(topology, role) for role in topology.roles()]


def check_sender(settings: BrokerSettings, user_id: str | None, agency: str) -> None:
    """Refuse (dead-letter) an answer claiming ``agency`` that its agency's user did not send.

    ``user_id`` is what RabbitMQ validated against the sender's login. When the hub itself
    runs as the same user as the sender (local development, everyone ``guest``) the broker
    cannot tell them apart, and the answer is let through to the hub's other checks.
    """
    expected = agency_user(settings, agency)
    if user_id == expected or (user_id is not None and user_id == broker_user(settings)):
        return
    raise Rejected(
        "broker-user-mismatch",
        f"answer as {agency} sent by broker user {user_id or '(none)'}, expected {expected}",
    )


def check_role_sender(settings: BrokerSettings, user_id: str | None, role: str) -> None:
    """Refuse (dead-letter) a message that only ``role`` may send, sent by another broker user.

    Contacts and commands come from the screening role (the front door signs them as the
    operator). The broker's permissions already keep agencies off those exchanges; this is
    the hub's own check of the same rule, so a permission granted by mistake is not enough.
    As in :func:`check_sender`, the hub's own user passes (local development as ``guest``).
    """
    expected = user_name(settings, role)
    if user_id == expected or (user_id is not None and user_id == broker_user(settings)):
        return
    raise Rejected(
        "broker-user-not-allowed",
        f"only {expected} may send this; sent by broker user {user_id or '(none)'}",
    )
