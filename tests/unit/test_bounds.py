"""The packet budget: a packet built from the largest contact and answers the hub accepts
still fits the message limit and can be read, and anything larger is refused at intake."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pydantic
import pytest

from hub.chronology import MAX_HUB_ENTRIES, _agency_entries
from hub.intake import CONTACT_BUDGET_BYTES, OutOfBounds, check_contact
from schemas import models as m
from schemas.codec import MAX_MESSAGE_BYTES, decode, encode
from schemas.enums import (
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

WIDE = "\U0001f600"  # four bytes in UTF-8: the worst case for every character bound
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def text(length: int) -> str:
    return WIDE * length


def maximal_contact() -> m.Contact:
    subjects = [
        m.Subject(
            subject_id=f"S{i:02d}" + text(m.MAX_ID - 3),
            role=SubjectRole.CHILD,
            given_name=text(m.MAX_NAME),
            family_name=text(m.MAX_NAME),
            date_of_birth=date(2015, 1, 1),
            nhs_number="943 476 5919",
            upn="H302204115002",
            la_child_id=text(m.MAX_ID),
            address=text(m.MAX_ADDRESS),
            postcode="ZX9 9ZZ",
        )
        for i in range(m.MAX_SUBJECTS)
    ]
    return m.Contact(
        contact_id=text(m.MAX_ID),
        contact_ref="MASH-2026-000001",
        received_at=NOW,
        brag=Brag.AMBER,
        referrer=m.Referrer(
            kind=ReferrerKind.SCHOOL,
            organisation=text(m.MAX_LABEL),
            name=text(m.MAX_LABEL),
            role=text(m.MAX_LABEL),
        ),
        concerns_summary=text(m.MAX_SUMMARY),
        consent=Consent.GIVEN,
        lawful_basis=LawfulBasis.CONSENT,
        subjects=subjects,
        agencies=[f"agency{i}".ljust(m.MAX_AGENCY_NAME, "x") for i in range(10)],
    )


def maximal_findings() -> bytes:
    # Social care's findings feed the chronology too: the most entries, each as large as
    # the findings' byte bound allows.
    each = (m.MAX_FINDINGS_BYTES // m.MAX_FINDINGS_ITEMS - 16) // 16  # four strings, 4 B/char
    findings = m.SocialCareFindings(
        contacts=[
            m.SocialCareContact(
                subject_id=text(each),
                received_on=date(2020, 1, 1),
                source=text(each),
                category=text(each),
                outcome=text(each),
                referral=True,
            )
            for _ in range(m.MAX_FINDINGS_ITEMS)
        ]
    )
    data = encode(findings)
    assert m.MAX_FINDINGS_BYTES - 4096 < len(data) <= m.MAX_FINDINGS_BYTES
    return data


def maximal_answer(agency: str, findings: bytes) -> m.AgencyResponse:
    return m.AgencyResponse(
        response_id=text(m.MAX_ID),
        request_id=text(m.MAX_ID),
        contact_ref=text(m.MAX_ID),
        agency=agency,
        responded_at=NOW,
        outcome=ResponseOutcome.KNOWN,
        matches=[
            m.SubjectMatch(
                subject_id=text(m.MAX_ID),
                matched=True,
                method=MatchMethod.NHS_NUMBER,
                confidence=1.0,
                record_id=text(m.MAX_ID),
            )
            for _ in range(m.MAX_SUBJECTS)
        ],
        strengths=[text(m.MAX_STRENGTH)] * m.MAX_STRENGTHS,
        engagement=Engagement.ENGAGES_WELL,
        engagement_notes=text(m.MAX_NOTES),
        findings=findings,
        restricted=m.RestrictedEnvelope(
            key_id=text(m.MAX_ID),
            ephemeral_public_key=bytes(m.MAX_KEY_BYTES),
            nonce=bytes(m.MAX_KEY_BYTES),
            ciphertext=bytes(m.MAX_RESTRICTED_BYTES),
        ),
    )


def test_the_largest_accepted_contact_fits_its_budget() -> None:
    contact = maximal_contact()
    assert len(encode(contact)) <= CONTACT_BUDGET_BYTES
    check_contact(contact, NOW)  # accepted


def test_a_packet_from_maximal_accepted_inputs_fits_the_message_limit_and_decodes() -> None:
    contact = maximal_contact()
    findings = maximal_findings()
    answers = [maximal_answer(agency, findings) for agency in contact.agencies]
    hub_entries = [
        m.ChronologyEntry(
            on=date(2025, 1, 1),
            recorded_by="mash",
            source=ReferrerKind.SCHOOL.value.lower(),
            subject_id=text(m.MAX_ID),
            brag=Brag.AMBER,
            outcome="packet published at the deadline",
            contact_ref="MASH-2025-000001",
        )
        for _ in range(MAX_HUB_ENTRIES)
    ]
    agency = m.AllocatedWorker(
        subject_id=text(m.MAX_ID), name=text(m.MAX_ID), team=text(m.MAX_ID), role="SOCIAL_WORKER"
    )
    changes = [
        m.RatingChange(brag=Brag.RED, changed_at=NOW, deadline=NOW + timedelta(hours=4))
        for _ in range(m.MAX_RATING_CHANGES)
    ]
    packet = m.ScreeningPacket(
        packet_id=text(m.MAX_ID),
        contact_ref="MASH-2026-000001",
        version=1_000_000,
        reason=PacketReason.AMENDMENT,
        published_at=NOW,
        received_at=NOW,
        brag=Brag.RED,
        deadline=NOW,
        rating_history=changes,
        referrer=contact.referrer,
        concerns_summary=contact.concerns_summary,
        consent=contact.consent,
        lawful_basis=contact.lawful_basis,
        subjects=contact.subjects,
        answers=answers,
        late_agencies=list(contact.agencies),
        missing_agencies=list(contact.agencies),
        restricted_held=[
            m.RestrictedHolding(agency=a, reference=text(m.MAX_ID)) for a in contact.agencies
        ],
        allocated_worker=agency,
        chronology=hub_entries + _agency_entries(answers),
        chronology_omitted=1_000_000,
    )
    assert len(packet.chronology) == MAX_HUB_ENTRIES + 10 * m.MAX_FINDINGS_ITEMS
    data = encode(packet)
    assert len(data) <= MAX_MESSAGE_BYTES
    assert decode(data, m.ScreeningPacket) == packet


@pytest.mark.parametrize(
    "build",
    [
        lambda: (
            maximal_contact()
            .model_copy(update={"concerns_summary": "x"})
            .model_validate(
                {**maximal_contact().model_dump(), "concerns_summary": "x" * (m.MAX_SUMMARY + 1)}
            )
        ),
        lambda: m.AgencyResponse.model_validate(
            {
                **maximal_answer("police", b"").model_dump(),
                "findings": bytes(m.MAX_FINDINGS_BYTES + 1),
            }
        ),
        lambda: m.AgencyResponse.model_validate(
            {
                **maximal_answer("police", b"").model_dump(),
                "strengths": ["x"] * (m.MAX_STRENGTHS + 1),
            }
        ),
    ],
    ids=["long-concerns", "large-findings", "many-strengths"],
)
def test_a_field_past_its_bound_is_refused(build: object) -> None:
    with pytest.raises(pydantic.ValidationError):
        build()  # type: ignore[operator]


def test_a_contact_received_in_the_future_is_out_of_bounds() -> None:
    contact = maximal_contact().model_copy(update={"received_at": datetime(2999, 1, 1, tzinfo=UTC)})
    with pytest.raises(OutOfBounds) as refused:
        check_contact(contact, NOW)
    assert refused.value.reason == "received-in-future"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("date_of_birth", "2999-01-01", "date_of_birth is after the contact"),
        ("date_of_birth", "1850-01-01", "greater than or equal to 1900-01-01"),
        ("expected_date_of_delivery", "2999-01-01", "more than a year after the contact"),
    ],
)
def test_subject_dates_outside_sensible_bounds_are_refused(
    field: str, value: str, message: str
) -> None:
    data = maximal_contact().model_dump()
    data["subjects"][0][field] = value
    with pytest.raises(pydantic.ValidationError, match=message):
        m.Contact.model_validate(data)


def test_a_contact_received_before_2000_is_refused() -> None:
    data = maximal_contact().model_dump()
    data["received_at"] = "0001-01-01T00:00:00Z"
    with pytest.raises(pydantic.ValidationError, match="received_at"):
        m.Contact.model_validate(data)
