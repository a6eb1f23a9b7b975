"""The mash-hub flow: the full cycle with every feature on, as deployed.

``python -m mash hub`` and ``python -m mash adapter <agency>`` for the four built-in
agencies run as separate processes under a prefix, a database and a key registry of the
flow's own: Avro on every message, Ed25519 signatures made and checked on every hop,
restricted findings sealed by the police adapter, SQLite (WAL, full sync) with the outbox
and processed ids, and the hash-chained audit log. The driver submits contacts as the front
door does (signed by the operator's key, with confirms) and reads packets from the
screening queue.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from bench.driver import Flow
from bench.processes import Child, spawn, wait_for_consumers
from bench.workload import BenchKeys, bench_contact, example_contacts, key_of_packet, make_keys
from broker.credentials import load_credentials
from broker.publisher import Publisher
from broker.signing import OPERATOR
from broker.topology import LANES, Lane, Topology, delete, lane_for
from hub.settings import HubSettings
from schemas.codec import decode_record, encode
from schemas.enums import Brag
from schemas.models import Contact, ScreeningPacket

__all__ = ["MashHubFlow"]


class MashHubFlow(Flow):
    name = "mash-hub"

    def __init__(
        self,
        amqp_url: str,
        prefix: str,
        workdir: Path,
        *,
        profile_dir: Path | None = None,
        db_path: Path | None = None,
        keys: BenchKeys | None = None,
    ) -> None:
        super().__init__(amqp_url, prefix, workdir)
        self.keys = keys or make_keys(workdir / "keys")
        self.settings = HubSettings(
            amqp_url=amqp_url,
            prefix=prefix,
            db_path=db_path or workdir / "hub.sqlite3",
            keyring=self.keys.keyring,
            key_dir=self.keys.key_dir,
        )
        self.topology = Topology(self.settings)
        self.profile_dir = profile_dir
        self.templates: list[Contact] = example_contacts()
        self.hub: Child | None = None
        self.adapters: list[Child] = []
        self._publisher: Publisher | None = None
        # Every packet as read, with its wall-clock arrival, when a scenario asks for them.
        self.keep_packets = False
        self.packets: list[tuple[float, dict[str, Any]]] = []
        self.env = {
            **os.environ,
            **self.keys.env(),
            "MASH_AMQP_URL": amqp_url,
            "MASH_PREFIX": prefix,
            "MASH_DB_PATH": str(self.settings.db_path),
        }

    def _profile(self, name: str) -> Path | None:
        return None if self.profile_dir is None else self.profile_dir / f"{name}.txt"

    def spawn_hub(self) -> Child:
        self.hub = spawn(
            "hub",
            ["-m", "mash", "hub", "--log-format", "json"],
            self.env,
            self.workdir,
            self._profile("hub"),
        )
        self.children.append(self.hub)
        return self.hub

    async def start_hub(self) -> None:
        if self._connection is None:
            await self.connect()
        self.spawn_hub()
        hub_queues = [self.topology.contact_queue(lane) for lane in LANES]
        hub_queues += [self.topology.answer_queue(lane) for lane in LANES]
        await wait_for_consumers(self.connection, hub_queues, self.children)
        self._publisher = Publisher(
            self.connection, signer=load_credentials(self.settings, OPERATOR).signer
        )
        await self.watch_packets(self.topology.packet_queue)

    async def start_adapters(self) -> None:
        for agency in self.settings.agencies:
            child = spawn(
                f"adapter-{agency}",
                ["-m", "mash", "adapter", agency, "--log-format", "json"],
                self.env,
                self.workdir,
                self._profile(f"adapter-{agency}") if agency == "police" else None,
            )
            self.adapters.append(child)
            self.children.append(child)
        queues = [
            self.topology.request_queue(agency, lane)
            for agency in self.settings.agencies
            for lane in LANES
        ]
        await wait_for_consumers(self.connection, queues, self.children)

    async def start(self) -> None:
        await self.start_hub()
        await self.start_adapters()

    def request_queues(self, lane: Lane = "routine") -> list[str]:
        return [self.topology.request_queue(a, lane) for a in self.settings.agencies]

    async def submit(self, key: str, index: int, brag: Brag | None = None) -> None:
        assert self._publisher is not None, "the hub has not started"
        contact = bench_contact(self.templates[index % len(self.templates)], key, brag)
        await self._publisher.publish(
            self.topology.contacts,
            lane_for(contact.brag),
            encode(contact),
            message_id=contact.contact_id,
            type_=contact.avro_name,
        )

    def packet_key(self, message: AbstractIncomingMessage) -> str:
        record = decode_record(message.body, ScreeningPacket.avro_name)
        if self.keep_packets:
            self.packets.append((time.time(), record))
        return key_of_packet(record)

    async def cleanup(self) -> None:
        await delete(self.connection, self.topology)
