"""The contacts a bench submits, and the byte sizes of the real flow's messages.

Contacts are the example contacts (the seeds' case studies and ordinary ones), cycled, each
with a contact id of its own: the built-in adapters match them against their fictional
records and answer with real findings (police seal restricted intelligence for both case
studies), so every byte and every step is the production one. The same few households are
looked up again and again; adapters keep no cache, so each lookup costs what a first would.

The bench key of a contact rides in its first subject's id (``<id>@<key>``), the one field
that comes back unchanged in the packet, so the driver can tell which contact a packet
answers.

:func:`measure_sizes` runs one contact of each kind through the real hub decisions and the
real adapters in this process (no broker), to give the raw and peer flows messages of the
same sizes.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from typing import Any

from adapters.kit.service import AdapterService
from adapters.registry import load_agency
from broker.keyring import Keyring, ensure_keys
from broker.settings import DEFAULT_AGENCIES
from broker.signing import OPERATOR, signer_for
from broker.topology import Topology
from hub.correlator import Correlator
from hub.intake import load_contact_file
from hub.policy import BragPolicy
from hub.settings import HubSettings
from hub.store import HubStore
from mash.demo import EXAMPLES
from schemas.codec import decode, encode
from schemas.enums import Brag
from schemas.models import Contact, InformationRequest, ScreeningPacket

__all__ = [
    "SENDERS",
    "BenchKeys",
    "Sizes",
    "bench_contact",
    "example_contacts",
    "key_of_packet",
    "make_keys",
    "measure_sizes",
]

SENDERS = ("hub", OPERATOR, *DEFAULT_AGENCIES)
_KEY_MARK = "@"


@dataclass(frozen=True)
class BenchKeys:
    keyring: Path
    key_dir: Path

    def env(self) -> dict[str, str]:
        return {"MASH_KEYRING": str(self.keyring), "MASH_KEY_DIR": str(self.key_dir)}


def make_keys(folder: Path) -> BenchKeys:
    """A key registry of its own: every sender signs, the restricted file seals."""
    ring = Keyring(folder / "keyring.json")
    ensure_keys(ring, folder / "private", SENDERS)
    ring.save()
    return BenchKeys(ring.path, folder / "private")


def example_contacts() -> list[Contact]:
    paths = sorted(EXAMPLES.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no example contacts in {EXAMPLES}")
    return [load_contact_file(path) for path in paths]


def bench_contact(template: Contact, key: str, brag: Brag | None = None) -> Contact:
    subjects = list(template.subjects)
    first = subjects[0]
    subjects[0] = first.model_copy(update={"subject_id": f"{first.subject_id}{_KEY_MARK}{key}"})
    return template.model_copy(
        update={
            "contact_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mash-bench/{key}")),
            "received_at": datetime.now(UTC),
            "subjects": subjects,
            "brag": brag or template.brag,
        }
    )


def key_of_packet(record: dict[str, Any]) -> str:
    """The bench key of a packet read with ``decode_record``."""
    subject_id = str(record["subjects"][0]["subject_id"])
    return subject_id.rsplit(_KEY_MARK, 1)[-1]


@dataclass(frozen=True)
class Sizes:
    """Mean body bytes of each message of one contact's cycle in the real flow."""

    contact: int
    request: int
    answer: int
    packet: int
    signature_headers: int

    def as_dict(self) -> dict[str, int]:
        return {
            "contact": self.contact,
            "request": self.request,
            "answer": self.answer,
            "packet": self.packet,
            "signature_headers": self.signature_headers,
        }


def measure_sizes(keys: BenchKeys) -> Sizes:
    """One contact of each example through the hub's decisions and the real adapters."""
    with tempfile.TemporaryDirectory(prefix="mash-bench-sizes-") as folder:
        settings = HubSettings(
            prefix="bench-sizes",
            db_path=Path(folder) / "hub.sqlite3",
            keyring=keys.keyring,
            key_dir=keys.key_dir,
        )
        store = HubStore(settings.db_path)
        correlator = Correlator(store, Topology(settings), BragPolicy(), settings.agencies)
        adapters = {
            name: AdapterService(load_agency(name)(), settings) for name in settings.agencies
        }
        sizes: dict[str, list[int]] = {"contact": [], "request": [], "answer": [], "packet": []}
        for index, template in enumerate(example_contacts()):
            contact = bench_contact(template, f"size-{index}")
            body = encode(contact)
            sizes["contact"].append(len(body))
            correlator.accept_contact(contact, contact.contact_id, OPERATOR)
            for row in _drain(store):
                if row[0] == InformationRequest.avro_name:
                    sizes["request"].append(len(row[1]))
                    request = decode(row[1], InformationRequest)
                    answer = adapters[request.agency].answer(request)
                    sizes["answer"].append(len(encode(answer)))
                    correlator.accept_answer(answer, answer.response_id, request.agency)
            for row in _drain(store):
                if row[0] == ScreeningPacket.avro_name:
                    sizes["packet"].append(len(row[1]))
        store.close()
    signer = signer_for(Keyring.load(keys.keyring), keys.key_dir, "hub")
    headers = signer.headers(str(uuid.uuid4()), InformationRequest.avro_name, b"")
    return Sizes(
        contact=round(mean(sizes["contact"])),
        request=round(mean(sizes["request"])),
        answer=round(mean(sizes["answer"])),
        packet=round(mean(sizes["packet"])),
        signature_headers=sum(len(k) + len(v) for k, v in headers.items()),
    )


def _drain(store: HubStore) -> list[tuple[str, bytes]]:
    rows = store.outbox(10_000)
    store.outbox_done([row.id for row in rows])
    return [(row.type, row.body) for row in rows]
