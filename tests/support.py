"""Helpers for integration tests: a running hub, adapters and a screening-UI subscriber,
all on the real broker under the test's own prefix."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from aio_pika.abc import AbstractConnection

from adapters.kit.agency import Agency, Lookup
from adapters.kit.service import AdapterService
from broker.credentials import load_credentials
from broker.keyring import default_restricted_dir
from broker.publisher import Publisher
from broker.settings import BrokerSettings
from broker.topology import Topology
from hub.policy import BragPolicy
from hub.service import HubService
from hub.settings import HubSettings
from schemas.enums import (
    Brag,
    Consent,
    Engagement,
    LawfulBasis,
    MatchMethod,
    ReferrerKind,
    SubjectRole,
)
from schemas.models import (
    Contact,
    InformationRequest,
    Referrer,
    ScreeningPacket,
    Subject,
    SubjectMatch,
)
from screening.client import ScreeningClient


@dataclass(frozen=True)
class Keys:
    keyring: Path
    key_dir: Path

    @property
    def restricted_dir(self) -> Path:
        """The restricted file's private keys: beside the key directory, never in it."""
        return default_restricted_dir(self.key_dir)


async def signed_publisher(
    connection: AbstractConnection, settings: BrokerSettings, sender: str
) -> Publisher:
    """A publisher that signs as ``sender``, for tests that publish by hand."""
    return Publisher(connection, signer=load_credentials(settings, sender).signer)


class KnowsEveryone:
    """Stands in for an agency's records (not for the broker): every subject is known."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.requests: list[InformationRequest] = []

    @property
    def name(self) -> str:
        return self._name

    def lookup(self, request: InformationRequest) -> Lookup:
        self.requests.append(request)
        return Lookup(
            matches=[
                SubjectMatch(
                    subject_id=s.subject_id,
                    matched=True,
                    method=MatchMethod.NAME_DOB_POSTCODE,
                    confidence=0.9,
                    record_id=f"{self._name}-{s.subject_id}",
                )
                for s in request.subjects
            ],
            strengths=["attends appointments"],
            engagement=Engagement.ENGAGES_WELL,
        )


def make_contact(brag: Brag = Brag.AMBER, agencies: Sequence[str] = ()) -> Contact:
    return Contact(
        contact_id=str(uuid.uuid4()),
        received_at=datetime.now(UTC),
        brag=brag,
        referrer=Referrer(kind=ReferrerKind.SCHOOL, organisation="Fictional Primary"),
        concerns_summary="Child arrived at school hungry three days running.",
        consent=Consent.GIVEN,
        lawful_basis=LawfulBasis.CONSENT,
        subjects=[
            Subject(
                subject_id="S1",
                role=SubjectRole.CHILD,
                given_name="Test",
                family_name="Child",
                date_of_birth=date(2016, 5, 4),
                postcode="ZX9 9ZZ",
            )
        ],
        agencies=list(agencies),
    )


class PacketWatcher:
    """The screening side, as the product's screening client receives: every packet from the
    durable packets queue, verified as the hub's, acked once it is in the test's queue."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.packets: asyncio.Queue[ScreeningPacket] = asyncio.Queue()
        self._client: ScreeningClient | None = None

    async def start(self) -> None:
        self._client = await ScreeningClient(self.settings, "test-screening").__aenter__()
        await self._client.subscribe(ScreeningPacket, self.packets.put)

    async def next(self, timeout: float = 15.0) -> ScreeningPacket:
        return await asyncio.wait_for(self.packets.get(), timeout)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()


class Stack:
    """Starts hubs, adapters and watchers for one test, and stops them all at the end."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.topology = Topology(settings)
        self._hubs: list[HubService] = []
        self._adapters: list[AdapterService] = []
        self._watchers: list[PacketWatcher] = []

    async def hub(
        self, policy: BragPolicy | None = None, *, settings: HubSettings | None = None
    ) -> HubService:
        service = HubService(settings or self.settings, policy or BragPolicy())
        await service.start()
        self._hubs.append(service)
        return service

    async def stop_hub(self, service: HubService) -> None:
        self._hubs.remove(service)
        await service.stop()

    async def adapter(
        self, agency: Agency, *, settings: BrokerSettings | None = None, answer_delay: float = 0.0
    ) -> AdapterService:
        service = AdapterService(agency, settings or self.settings, answer_delay=answer_delay)
        await service.start()
        self._adapters.append(service)
        return service

    async def adapters(self, names: Sequence[str] | None = None) -> list[AdapterService]:
        return [
            await self.adapter(KnowsEveryone(name)) for name in (names or self.settings.agencies)
        ]

    async def stop_adapter(self, service: AdapterService) -> None:
        self._adapters.remove(service)
        await service.stop()

    async def watcher(self) -> PacketWatcher:
        watcher = PacketWatcher(self.settings)
        await watcher.start()
        self._watchers.append(watcher)
        return watcher

    async def close(self) -> None:
        for watcher in self._watchers:
            await watcher.stop()
        for adapter in self._adapters:
            await adapter.stop()
        for hub in self._hubs:
            await hub.stop()
