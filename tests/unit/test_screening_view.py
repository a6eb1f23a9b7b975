"""The screening view shows findings of an agency that mash-hub has no model for (one added
by a separate package through ``mash.schemas``), from its registered schema."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest
from rich.console import Console

import schemas.registry
from mash.screening import _findings_lines, decode_findings, render_packet
from schemas.codec import decode, encode
from schemas.enums import MatchMethod, PacketReason, ResponseOutcome
from schemas.models import AgencyResponse, ScreeningPacket, SubjectMatch
from schemas.registry import SCHEMA_DIR, SchemaRegistry
from tests.support import make_contact

PROBATION = {
    "type": "record",
    "name": "ProbationFindings",
    "namespace": "uk.mash",
    "fields": [
        {"name": "under_supervision", "type": "boolean"},
        {"name": "order_type", "type": ["null", "string"], "default": None},
    ],
}


@pytest.fixture
def registry_with_probation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SchemaRegistry:
    (tmp_path / "uk.mash.ProbationFindings.avsc").write_text(json.dumps(PROBATION))
    registry = SchemaRegistry()
    registry.add_files(
        [*sorted(SCHEMA_DIR.glob("*.avsc")), tmp_path / "uk.mash.ProbationFindings.avsc"]
    )
    monkeypatch.setattr(schemas.registry, "_DEFAULT", registry)
    return registry


def test_findings_without_a_model_are_shown_from_their_schema(
    registry_with_probation: SchemaRegistry,
) -> None:
    entry = registry_with_probation.current("uk.mash.ProbationFindings")
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body, entry.parsed, {"under_supervision": True, "order_type": "Community order"}
    )
    data = b"\xc3\x01" + entry.fingerprint + body.getvalue()

    findings = decode_findings(data)

    assert findings == {"under_supervision": True, "order_type": "Community order"}
    assert _findings_lines(findings) == ["under supervision: True", "order type: Community order"]


def test_unreadable_findings_show_nothing(registry_with_probation: SchemaRegistry) -> None:
    assert decode_findings(b"\xc3\x01" + b"\x00" * 8 + b"junk") is None


def test_an_identifier_conflict_is_shown_for_a_person_to_check() -> None:
    contact = make_contact()
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    conflict = SubjectMatch(
        subject_id="S1",
        matched=False,
        method=MatchMethod.NONE,
        confidence=0.0,
        identifier_conflict=MatchMethod.UPN,
    )
    answer = AgencyResponse(
        response_id="r1",
        request_id="q1",
        contact_ref="MASH-2026-000001",
        agency="education",
        responded_at=now,
        outcome=ResponseOutcome.NOT_KNOWN,
        matches=[conflict],
    )
    packet = ScreeningPacket(
        packet_id="p1",
        contact_ref="MASH-2026-000001",
        version=1,
        reason=PacketReason.COMPLETE,
        published_at=now,
        received_at=now,
        brag=contact.brag,
        deadline=now,
        referrer=contact.referrer,
        concerns_summary=contact.concerns_summary,
        consent=contact.consent,
        lawful_basis=contact.lawful_basis,
        subjects=contact.subjects,
        answers=[decode(encode(answer), AgencyResponse)],  # as it travels
    )
    console = Console(file=io.StringIO(), width=200, color_system=None)

    console.print(render_packet(decode(encode(packet), ScreeningPacket)))

    shown = " ".join(console.file.getvalue().split())  # type: ignore[attr-defined]
    assert "Check identity education: the UPN given for S1 disagrees with its records" in shown
    assert "S1: UPN conflict, check by hand" in shown
