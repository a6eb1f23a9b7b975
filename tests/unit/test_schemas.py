"""The Avro contracts and their Python models agree, and the single-object encoding is the
one the Avro specification defines."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, date, datetime
from pathlib import Path

import fastavro
import pytest
from fastavro.utils import generate_one

from schemas import models
from schemas.codec import MAGIC, DecodeError, decode, encode
from schemas.enums import (
    AllocationRole,
    Brag,
    Consent,
    Engagement,
    LawfulBasis,
    MatchMethod,
    PacketReason,
    ReferrerKind,
    ResponseOutcome,
    SubjectRole,
)
from schemas.models import (
    AgencyResponse,
    AllocatedContact,
    AllocatedWorker,
    AvroModel,
    Contact,
    InformationRequest,
    PoliceFindings,
    PoliceIncident,
    Referrer,
    ScreeningPacket,
    Subject,
    SubjectMatch,
)
from schemas.registry import SCHEMA_DIR, SchemaRegistry, crc64_avro, default_registry

MODELS = sorted(
    (
        cls
        for cls in vars(models).values()
        if isinstance(cls, type) and issubclass(cls, AvroModel) and cls is not AvroModel
    ),
    key=lambda cls: cls.avro_name,
)
NOW = datetime(2026, 3, 10, 9, 30, 15, 123000, tzinfo=UTC)

SUBJECT = Subject(
    subject_id="S1",
    role=SubjectRole.CHILD,
    given_name="Ada",
    family_name="Example",
    date_of_birth=date(2012, 2, 29),
    nhs_number="999 000 0018",
    upn="X302200012001",
    la_child_id="LA-0001",
    address="1 Fictional Row",
    postcode="zx1 1aa",
)
CONTACT = Contact(
    contact_id="c-1",
    contact_ref="MASH-2026-000001",
    received_at=NOW,
    brag=Brag.AMBER,
    referrer=Referrer(
        kind=ReferrerKind.GP, organisation="Fictional Surgery", name="Dr A", role="GP"
    ),
    concerns_summary="Concern",
    consent=Consent.REFUSED,
    lawful_basis=LawfulBasis.S47_CHILD_PROTECTION,
    subjects=[SUBJECT],
    agencies=["police"],
)
RESPONSE = AgencyResponse(
    response_id="r-1",
    request_id="q-1",
    contact_ref="MASH-2026-000001",
    agency="police",
    responded_at=NOW,
    outcome=ResponseOutcome.KNOWN,
    matches=[
        SubjectMatch(subject_id="S1", matched=True, method=MatchMethod.NHS_NUMBER, confidence=1.0)
    ],
    strengths=["supportive grandparent"],
    engagement=Engagement.ENGAGES_PARTIALLY,
    engagement_notes="misses some visits",
    findings=encode(
        PoliceFindings(
            incidents=[
                PoliceIncident(
                    occurred_on=date(2025, 1, 2), category="drugs", summary="s", subject_ids=["S1"]
                )
            ]
        )
    ),
)
PACKET = ScreeningPacket(
    packet_id="p-1",
    contact_ref="MASH-2026-000001",
    version=1,
    reason=PacketReason.COMPLETE,
    published_at=NOW,
    received_at=NOW,
    brag=Brag.RED,
    deadline=NOW,
    referrer=CONTACT.referrer,
    concerns_summary="Concern",
    consent=Consent.GIVEN,
    lawful_basis=LawfulBasis.CONSENT,
    subjects=[SUBJECT],
    answers=[RESPONSE],
    late_agencies=["health"],
    missing_agencies=["housing"],
)
REQUEST = InformationRequest(
    request_id="q-1",
    revision=2,
    contact_ref="MASH-2026-000001",
    agency="health",
    brag=Brag.RED,
    deadline=NOW,
    issued_at=NOW,
    concerns_summary="Concern",
    consent=Consent.NOT_SOUGHT,
    lawful_basis=LawfulBasis.S10_COOPERATION,
    subjects=[SUBJECT],
)
ROUTED = AllocatedContact(
    contact_ref="MASH-2026-000001",
    routed_at=NOW,
    agency="social-care",
    worker=AllocatedWorker(
        subject_id="S1", name="Sam Worker", team="Team A", role=AllocationRole.SOCIAL_WORKER
    ),
    brag=Brag.AMBER,
    deadline=NOW,
    contact=CONTACT,
)
# Models whose validation random data would not pass (check digits, consent rules).
SAMPLES: dict[type[AvroModel], AvroModel] = {
    Subject: SUBJECT,
    Contact: CONTACT,
    InformationRequest: REQUEST,
    AgencyResponse: RESPONSE,
    ScreeningPacket: PACKET,
    AllocatedContact: ROUTED,
}


def _single_object(name: str, record: object) -> bytes:
    entry = default_registry().current(name)
    buffer = io.BytesIO(MAGIC + entry.fingerprint)
    buffer.seek(0, io.SEEK_END)
    fastavro.schemaless_writer(buffer, entry.parsed, record)
    return buffer.getvalue()


def test_every_schema_file_has_a_model_and_every_model_a_schema() -> None:
    records = {
        json.loads(p.read_text())["namespace"] + "." + json.loads(p.read_text())["name"]
        for p in SCHEMA_DIR.glob("*.avsc")
        if json.loads(p.read_text())["type"] == "record"
    }
    assert records <= {m.avro_name for m in MODELS}
    assert {m.avro_name for m in MODELS} <= set(default_registry().names())


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_model_lists_the_same_fields_as_its_schema(model: type[AvroModel]) -> None:
    schema = default_registry().current(model.avro_name).parsed
    assert [f["name"] for f in schema["fields"]] == list(model.model_fields)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_model_round_trips_through_its_schema(model: type[AvroModel]) -> None:
    if model in SAMPLES:
        instance = SAMPLES[model]
        assert decode(encode(instance), model) == instance
        return
    random.seed(model.avro_name)
    original = _single_object(
        model.avro_name, generate_one(default_registry().current(model.avro_name).parsed)
    )
    instance = decode(original, model)
    assert encode(instance) == original
    assert decode(encode(instance), model) == instance


def test_fingerprint_is_crc64_avro_of_the_parsing_canonical_form() -> None:
    entry = default_registry().current("uk.mash.Contact")
    assert crc64_avro(b"") == 0xC15D213AA4D7A795
    assert entry.fingerprint.hex() == fastavro.schema.fingerprint(entry.canonical, "CRC-64-AVRO")
    assert encode(CONTACT)[:10] == b"\xc3\x01" + entry.fingerprint


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not-single-object"),
        (b"{}", "not-single-object"),
        (b"\xc3\x01" + b"\x00" * 8 + b"x", "unknown-fingerprint"),
        (encode(CONTACT)[:20], "malformed-body"),
        (encode(CONTACT) + b"\x00", "malformed-body"),
        (encode(PACKET), "wrong-schema"),
    ],
    ids=["empty", "json", "unknown", "truncated", "trailing", "other-schema"],
)
def test_undecodable_messages_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(data, Contact)
    assert caught.value.reason == reason


def test_invalid_content_is_refused_without_quoting_values() -> None:
    bad = CONTACT.model_dump()
    bad["subjects"][0]["nhs_number"] = "1234567890"
    data = _single_object("uk.mash.Contact", bad)
    with pytest.raises(DecodeError) as caught:
        decode(data, Contact)
    assert caught.value.reason == "invalid-content"
    assert "subjects.0.nhs_number" in str(caught.value)
    assert "1234567890" not in str(caught.value)


def test_reader_resolves_a_message_from_an_older_writer_schema(tmp_path: Path) -> None:
    # An older agency wrote Referrer without the 'role' field; today's reader fills the default.
    old = json.loads((SCHEMA_DIR / "uk.mash.Referrer.avsc").read_text())
    old["fields"] = [f for f in old["fields"] if f["name"] != "role"]
    registry = SchemaRegistry.from_directory(SCHEMA_DIR)
    registry.add(old, current=False)
    old_entry = next(
        e
        for e in (registry.by_fingerprint(fp) for fp in registry._by_fingerprint)
        if e is not None and e.name == "uk.mash.Referrer" and "role" not in e.canonical
    )
    buffer = io.BytesIO()
    fastavro.schemaless_writer(
        buffer, old_entry.parsed, {"kind": "GP", "organisation": "X", "name": None}
    )
    data = MAGIC + old_entry.fingerprint + buffer.getvalue()

    referrer = decode(data, Referrer, registry)

    assert referrer == Referrer(kind=ReferrerKind.GP, organisation="X", role=None)


def test_lawful_basis_must_match_consent() -> None:
    fields = CONTACT.model_dump()
    fields["consent"] = Consent.GIVEN
    with pytest.raises(ValueError, match="lawful_basis"):
        Contact.model_validate(fields)
