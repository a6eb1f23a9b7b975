"""The broker topology of one MASH, declared from one table.

Work is split into two lanes so that Red work never waits behind a backlog of lower-rated
work: each agency's requests, the hub's contact intake and the hub's answers each have an
``urgent`` queue (Red) and a ``routine`` queue (everything else), consumed on separate
channels. Quorum queues in this RabbitMQ do not support priorities, and a priority queue would
still make Red wait for the messages already prefetched; separate lanes do neither.

Every work queue is a durable quorum queue with a delivery limit and at-least-once dead
lettering to ``<queue>.dead`` through the ``dead`` exchange.

The table also says who may use each name: the roles that publish to an exchange
(``writers``) and the role that consumes a queue (``readers``). Roles are ``hub``,
``screening``, ``restricted``, ``operator`` (the hub operator's tools: ``mash dlq``, ``mash
status``) and one per agency; :mod:`broker.identities` turns the table into each role's
broker permissions, so a new queue cannot be added without deciding who reads it.

Nobody publishes to the default exchange: it reaches every queue by name, so a write
permission on it would open every queue, dead-letter queues and the restricted file
included. The hub's replies go through ``replies``, an exchange of their own, to which a
client binds its private reply queue under the queue's own name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection

from broker.settings import DEFAULT_CONSOLE_INSTANCE, BrokerSettings
from mash.errors import MashError
from schemas.enums import Brag, HubEventKind

__all__ = [
    "ALLOCATED_TEAM",
    "CONSOLE_EVENT_KINDS",
    "CONSOLE_PACKET_BACKLOG",
    "DIRECT_REPLY_TO",
    "HUB",
    "LANES",
    "OPERATOR_ROLE",
    "RESTRICTED",
    "SCREENING",
    "ExchangeSpec",
    "Lane",
    "QueueSpec",
    "Topology",
    "TopologyConflict",
    "TopologyRefused",
    "declare",
    "delete",
    "lane_for",
]

Lane = Literal["urgent", "routine"]
LANES: tuple[Lane, ...] = ("urgent", "routine")

# Roles besides the agencies (each agency is a role named after itself).
HUB = "hub"
SCREENING = "screening"  # the screening UI: submits contacts, re-rates, reads packets
RESTRICTED = "restricted"  # the keeper of the restricted file, and nobody else
# The hub operator: reads dead letters and events, replays dead letters through their normal
# path. Not the front door's `operator` signing key (broker.signing.OPERATOR): this role
# signs nothing, and a replay keeps its original sender's signature.
OPERATOR_ROLE = "operator"
# The agency whose social workers and lead professionals take contacts about children already
# allocated to them; it reads the allocated queue when it is one of this MASH's agencies.
ALLOCATED_TEAM = "social-care"


# RabbitMQ's direct reply-to: a client consuming it is answered without a queue of its own,
# but only through the default exchange, which reaches every queue; the hub does not use it.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


# Packets the console's own queue holds while the console is down (broker.topology.queues).
CONSOLE_PACKET_BACKLOG = 100_000

# The hub's event kinds (routing keys on the events exchange) the console's board follows.
CONSOLE_EVENT_KINDS = tuple(
    kind.value.lower()
    for kind in (
        HubEventKind.CONTACT_RECEIVED,
        HubEventKind.ANSWER_RECEIVED,
        HubEventKind.ANSWER_LATE,
        HubEventKind.PACKET_PUBLISHED,
        HubEventKind.DEADLINE_PASSED,
        HubEventKind.RERATED,
        HubEventKind.REMINDER_SENT,
        HubEventKind.DECIDED,
    )
)


def lane_for(brag: Brag) -> Lane:
    """Red work travels on the urgent lane; every other rating on the routine lane."""
    return "urgent" if Brag(brag) is Brag.RED else "routine"


@dataclass(frozen=True)
class ExchangeSpec:
    name: str
    kind: aio_pika.ExchangeType
    writers: frozenset[str] = frozenset()  # roles that publish to it


@dataclass(frozen=True)
class QueueSpec:
    name: str
    bindings: tuple[tuple[str, str], ...]  # (exchange, routing key)
    arguments: dict[str, Any] = field(default_factory=dict, hash=False)
    dead_letter_queue: str | None = None
    readers: frozenset[str] = frozenset()  # roles that consume it; none: operators only


class Topology:
    """Names and arguments for one MASH (one prefix), derived from one table."""

    def __init__(self, settings: BrokerSettings, agencies: Iterable[str] | None = None) -> None:
        self.settings = settings
        self.prefix = settings.prefix
        self.agencies = tuple(agencies if agencies is not None else settings.agencies)

    def name(self, short: str) -> str:
        return f"{self.prefix}.{short}"

    # Exchanges
    @property
    def contacts(self) -> str:
        return self.name("contacts")

    @property
    def commands(self) -> str:
        return self.name("commands")

    @property
    def requests(self) -> str:
        return self.name("requests")

    @property
    def answers(self) -> str:
        return self.name("answers")

    @property
    def packets(self) -> str:
        return self.name("packets")

    @property
    def events(self) -> str:
        return self.name("events")

    @property
    def allocated(self) -> str:
        """Contacts sent straight on to the child's allocated social worker or lead
        professional."""
        return self.name("allocated")

    @property
    def referrer(self) -> str:
        """Feedback to whoever raised a concern, once the MASH has decided it."""
        return self.name("referrer")

    @property
    def dead(self) -> str:
        return self.name("dead")

    @property
    def restricted(self) -> str:
        return self.name("restricted")

    @property
    def replies(self) -> str:
        """The hub's replies to a contact or command, routed by the client's reply queue name."""
        return self.name("replies")

    # Queues
    def contact_queue(self, lane: Lane) -> str:
        return self.name(f"hub.contacts.{lane}")

    def answer_queue(self, lane: Lane) -> str:
        return self.name(f"hub.answers.{lane}")

    @property
    def command_queue(self) -> str:
        return self.name("hub.commands")

    def request_queue(self, agency: str, lane: Lane) -> str:
        return self.name(f"{agency}.requests.{lane}")

    @property
    def packet_queue(self) -> str:
        return self.name("screening.packets")

    @property
    def restricted_queue(self) -> str:
        """The restricted file's own route: sealed restricted findings, nothing else."""
        return self.name("restricted.file")

    @property
    def allocated_queue(self) -> str:
        return self.name(f"{ALLOCATED_TEAM}.allocated")

    @property
    def event_queue(self) -> str:
        return self.name("ops.events")

    @property
    def referrer_queue(self) -> str:
        return self.name("referrer.feedback")

    @property
    def console_instances(self) -> tuple[str, ...]:
        """Every console instance whose queues this MASH keeps: MASH_CONSOLE_INSTANCES, and
        this process's own when it is a console."""
        own = getattr(self.settings, "console_instance", DEFAULT_CONSOLE_INSTANCE)
        return tuple(dict.fromkeys((*self.settings.console_instances, own)))

    def console_packet_queue_of(self, instance: str) -> str:
        """A console instance's own copy of every packet (the packets exchange is a fanout).
        The first console, ``main``, keeps the name consoles had before there were several."""
        if instance == DEFAULT_CONSOLE_INSTANCE:
            return self.name("console.packets")
        return self.name(f"console.{instance}.packets")

    def console_event_queue_of(self, instance: str) -> str:
        """The hub's events a console instance's board needs: answers, reminders, re-ratings."""
        if instance == DEFAULT_CONSOLE_INSTANCE:
            return self.name("console.events")
        return self.name(f"console.{instance}.events")

    @property
    def console_packet_queue(self) -> str:
        """This process's console instance's packets (``main`` for any other process)."""
        own = getattr(self.settings, "console_instance", DEFAULT_CONSOLE_INSTANCE)
        return self.console_packet_queue_of(own)

    @property
    def console_event_queue(self) -> str:
        own = getattr(self.settings, "console_instance", DEFAULT_CONSOLE_INSTANCE)
        return self.console_event_queue_of(own)

    @property
    def hub_instance_exchange(self) -> str:
        """Where the running hub writes its instance record (:mod:`hub.instance`)."""
        return self.name("hub.instance")

    @property
    def hub_instance_queue(self) -> str:
        """The one retained instance record: which hub, on which database, references reserved."""
        return self.name("hub.instance")

    @property
    def hub_lock_queue(self) -> str:
        """Exclusive to the running hub's connection (not in the table: it lives and dies
        with that connection), so a second hub on the prefix is refused."""
        return self.name("hub.lock")

    def reply_queue(self, token: str) -> str:
        """A private, exclusive queue for the hub's replies to one client, bound to
        :attr:`replies` under its own name (not in the table: it lives as long as the
        client's connection)."""
        return self.name(f"replies.{token}")

    def is_reply_queue(self, name: str) -> bool:
        """Whether the hub may answer to ``name``: one of this MASH's reply queues (one word
        after ``<prefix>.replies.``). Nothing else, so a sender cannot have the hub write
        into any other queue. Not RabbitMQ's direct reply-to (:data:`DIRECT_REPLY_TO`): it is
        reached only through the default exchange, which no role may write."""
        token = name.removeprefix(self.reply_queue(""))
        return token != name and bool(token) and "." not in token and len(name) <= 255

    @staticmethod
    def request_key(agency: str, lane: Lane) -> str:
        return f"{agency}.{lane}"

    def exchanges(self) -> list[ExchangeSpec]:
        direct, topic, fanout = (
            aio_pika.ExchangeType.DIRECT,
            aio_pika.ExchangeType.TOPIC,
            aio_pika.ExchangeType.FANOUT,
        )
        # The operator replays a dead letter to the exchange its work queue is bound to
        # (`mash dlq replay`), so it writes every exchange that feeds a work queue; what it
        # replays keeps its original signature, which the receiver still checks.
        hub, screening = frozenset({HUB, OPERATOR_ROLE}), frozenset({SCREENING, OPERATOR_ROLE})
        return [
            ExchangeSpec(self.contacts, direct, screening),
            ExchangeSpec(self.commands, direct, screening),
            ExchangeSpec(self.requests, topic, hub),
            ExchangeSpec(self.answers, direct, frozenset({*self.agencies, OPERATOR_ROLE})),
            ExchangeSpec(self.packets, fanout, hub),
            # The operator records each replay and purge here.
            ExchangeSpec(self.events, topic, hub),
            # Consumers dead-letter what they cannot handle. A topic exchange, so that each
            # role's topic permissions can limit it to the dead queues of what it reads.
            ExchangeSpec(self.dead, topic, frozenset(self.roles())),
            ExchangeSpec(self.restricted, direct, hub),
            ExchangeSpec(self.allocated, direct, hub),
            ExchangeSpec(self.referrer, direct, hub),
            # Only the hub replies; only the screening UI binds a (private) queue here.
            ExchangeSpec(self.replies, direct, frozenset({HUB})),
            ExchangeSpec(self.hub_instance_exchange, direct, frozenset({HUB})),
        ]

    def roles(self) -> list[str]:
        """Every role with a broker identity in this MASH."""
        clash = {HUB, SCREENING, RESTRICTED, OPERATOR_ROLE} & set(self.agencies)
        if clash:
            raise ValueError(f"agency name {sorted(clash)[0]!r} is reserved for a hub role")
        return [HUB, SCREENING, RESTRICTED, OPERATOR_ROLE, *self.agencies]

    def _console_queues(self, instance: str) -> list[QueueSpec]:
        packets = self.console_packet_queue_of(instance)
        events = self.console_event_queue_of(instance)
        specs: list[QueueSpec] = []
        console_packets = self._work_queue(packets, SCREENING, (self.packets, ""))
        # A full queue refuses publishes, and a fanout publish refused by one queue is refused
        # for all: a console left off must not hold every other screening client's packets
        # back at MASH_MAX_QUEUE_LENGTH, so its own queue holds months of a MASH's packets.
        console_packets.arguments["x-max-length"] = max(
            self.settings.max_queue_length, CONSOLE_PACKET_BACKLOG
        )
        specs.append(console_packets)
        # Its board follows the hub's events. Like ops.events the oldest are dropped rather
        # than letting a console that is down hold the hub's events back; the packets queue
        # above, which must lose nothing, refuses instead.
        specs.append(
            QueueSpec(
                name=events,
                readers=frozenset({SCREENING}),
                bindings=tuple((self.events, kind) for kind in CONSOLE_EVENT_KINDS),
                arguments={
                    "x-queue-type": "quorum",
                    "x-delivery-limit": self.settings.delivery_limit,
                    "x-dead-letter-exchange": self.dead,
                    "x-dead-letter-routing-key": events,
                    "x-max-length": 100_000,
                    "x-overflow": "drop-head",
                },
                dead_letter_queue=f"{events}.dead",
            )
        )
        return specs

    def _work_queue(self, name: str, reader: str | None, *bindings: tuple[str, str]) -> QueueSpec:
        return QueueSpec(
            name=name,
            readers=frozenset({reader} if reader else ()),
            bindings=bindings,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": self.settings.delivery_limit,
                "x-dead-letter-exchange": self.dead,
                "x-dead-letter-routing-key": name,
                "x-dead-letter-strategy": "at-least-once",
                # at-least-once dead lettering requires reject-publish; it is also what keeps
                # a publisher from losing messages when a queue is full.
                "x-overflow": "reject-publish",
                "x-max-length": self.settings.max_queue_length,
            },
            dead_letter_queue=f"{name}.dead",
        )

    def queues(self) -> list[QueueSpec]:
        specs: list[QueueSpec] = []
        for lane in LANES:
            specs.append(self._work_queue(self.contact_queue(lane), HUB, (self.contacts, lane)))
            specs.append(self._work_queue(self.answer_queue(lane), HUB, (self.answers, lane)))
        specs.append(self._work_queue(self.command_queue, HUB, (self.commands, "command")))
        for agency in self.agencies:
            for lane in LANES:
                specs.append(
                    self._work_queue(
                        self.request_queue(agency, lane),
                        agency,
                        (self.requests, self.request_key(agency, lane)),
                    )
                )
        specs.append(self._work_queue(self.packet_queue, SCREENING, (self.packets, "")))
        specs.append(self._work_queue(self.restricted_queue, RESTRICTED, (self.restricted, "file")))
        # Durable whether or not social care is one of the agencies: a MASH that adds it later
        # finds the queue there. Without it, nobody but operators may read the queue.
        team = ALLOCATED_TEAM if ALLOCATED_TEAM in self.agencies else OPERATOR_ROLE
        specs.append(self._work_queue(self.allocated_queue, team, (self.allocated, ALLOCATED_TEAM)))
        # The front door (the screening role, which submitted the contact) passes the
        # decision on to the referrer.
        specs.append(self._work_queue(self.referrer_queue, SCREENING, (self.referrer, "feedback")))
        # Each console instance (mash console) keeps its own copy of every packet, so it
        # never competes with another screening client, or another console, for one, and
        # survives being down.
        for instance in self.console_instances:
            specs.extend(self._console_queues(instance))
        # Operators read events when they want to; the oldest are dropped rather than
        # letting an unread event queue hold the hub back.
        specs.append(
            QueueSpec(
                name=self.event_queue,
                readers=frozenset({OPERATOR_ROLE}),
                bindings=((self.events, "#"),),
                arguments={
                    "x-queue-type": "quorum",
                    "x-max-length": 100_000,
                    "x-overflow": "drop-head",
                },
            )
        )
        # The hub's instance record: one message, the newest (hub.instance).
        specs.append(
            QueueSpec(
                name=self.hub_instance_queue,
                bindings=((self.hub_instance_exchange, "record"),),
                arguments={"x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "drop-head"},
                readers=frozenset({HUB}),
            )
        )
        dead = [
            QueueSpec(
                name=spec.dead_letter_queue,
                readers=frozenset({OPERATOR_ROLE}),
                bindings=((self.dead, spec.name),),
                arguments={"x-queue-type": "quorum"},
            )
            for spec in specs
            if spec.dead_letter_queue
        ]
        if self.settings.quorum_group_size:
            # On a cluster: how many nodes hold each queue's replicas (a majority of them must
            # be up for the queue to take messages).
            for spec in specs + dead:
                if spec.arguments.get("x-queue-type") == "quorum":
                    spec.arguments["x-quorum-initial-group-size"] = self.settings.quorum_group_size
        return specs + dead

    def dead_letter_queues(self) -> list[str]:
        return [spec.dead_letter_queue for spec in self.queues() if spec.dead_letter_queue]

    def all_queue_names(self) -> list[str]:
        return [spec.name for spec in self.queues()]


class TopologyRefused(MashError, PermissionError):
    """The broker user may not declare the topology (a provisioned, least-privilege user)."""


class TopologyConflict(MashError, ValueError):
    """A queue exists with other arguments than the settings now give it; RabbitMQ never
    changes a queue's arguments, so the setting must go back or the queue be declared anew."""


# The settings that become queue arguments, which the broker compares on every declare.
_QUEUE_SETTINGS = "MASH_DELIVERY_LIMIT, MASH_MAX_QUEUE_LENGTH or MASH_QUORUM_GROUP_SIZE"


async def declare(channel: AbstractChannel, topology: Topology) -> None:
    """Declare every exchange, queue and binding; idempotent, so every process may run it.

    Only an administrator (or ``guest`` in local development) may: provisioned identities
    have no configure permission, and their processes run with ``MASH_DECLARE_TOPOLOGY=false``.
    """
    exchanges = {}
    spec_name = ""
    try:
        for ex in topology.exchanges():
            exchanges[ex.name] = await channel.declare_exchange(ex.name, ex.kind, durable=True)
        for spec in topology.queues():
            spec_name = spec.name
            queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
            for exchange, key in spec.bindings:
                await queue.bind(exchanges[exchange], routing_key=key)
    except aiormq.exceptions.ChannelAccessRefused as exc:
        raise TopologyRefused(
            f"this broker user may not declare the topology ({exc});"
            " with provisioned users set MASH_DECLARE_TOPOLOGY=false"
            " (the topology comes from 'mash broker provision')"
        ) from None
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        reason = str(exc.args[0] if exc.args else exc).splitlines()[0]
        raise TopologyConflict(
            f"queue {spec_name} exists with other arguments than these settings give it"
            f" ({reason}): {_QUEUE_SETTINGS} changed after the queues were declared;"
            " set it back, or drain and delete the queue so it is declared anew"
        ) from None


async def delete(connection: AbstractConnection, topology: Topology) -> None:
    """Remove every queue and exchange of one MASH prefix (demos and tests clean up so)."""
    for name in topology.all_queue_names():
        channel = await connection.channel()
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await channel.queue_delete(name)
    for exchange in topology.exchanges():
        channel = await connection.channel()
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await channel.exchange_delete(exchange.name)
