"""Pydantic models: the Python side of the Avro contracts in ``schemas/``.

Each model names the Avro record it mirrors in ``avro_name``; ``tests/unit/test_schemas.py``
proves every model round-trips through its schema and that the two list the same fields.
Validation that a message must pass wherever it is read (identifier check digits, the lawful
basis matching consent) lives here, so the hub and every adapter apply the same rules.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.gb import nhs, upn

from schemas.enums import (
    AbuseCategory,
    AllocationRole,
    Brag,
    CaseType,
    CommandAction,
    Consent,
    Decision,
    Engagement,
    ExclusionKind,
    HubEventKind,
    LawfulBasis,
    MatchMethod,
    PacketReason,
    ReferrerKind,
    ResponseOutcome,
    SenProvision,
    SubjectRole,
    Tenure,
)

__all__ = [
    "AdultPosingRisk",
    "AeAttendance",
    "AgencyResponse",
    "AllocatedContact",
    "AllocatedWorker",
    "AntiSocialBehaviourReport",
    "AvroModel",
    "ChronologyEntry",
    "CommandReply",
    "Contact",
    "ContactCommand",
    "EducationFindings",
    "Exclusion",
    "GpRegistration",
    "HealthFindings",
    "HealthVisitorInvolvement",
    "HomelessnessApproach",
    "HospitalAdmission",
    "HouseholdMember",
    "HouseholdPupil",
    "HousingFindings",
    "HubEvent",
    "HubInstanceRecord",
    "InformationRequest",
    "Instant",
    "MissedAppointment",
    "OpenCase",
    "OutcomeNotice",
    "PoliceCallOut",
    "PoliceFindings",
    "PoliceIncident",
    "Pregnancy",
    "ProtectionPlan",
    "RatingChange",
    "Referrer",
    "ReferrerFeedback",
    "RequestReminder",
    "RestrictedEnvelope",
    "RestrictedFindings",
    "RestrictedHolding",
    "RestrictedItem",
    "RestrictedRecord",
    "SafeguardingConcern",
    "SchoolPlacement",
    "ScreeningPacket",
    "SocialCareContact",
    "SocialCareFindings",
    "SpecialEducationalNeeds",
    "Subject",
    "SubjectMatch",
    "Tenancy",
    "normalise_postcode",
]


# Bounds: every field of a contact and of an answer is bounded, so that a screening packet
# built from accepted inputs (the contact's fields, one answer per agency, the chronology
# derived from them and the rating history) always fits the 4 MiB message limit
# (schemas.codec.MAX_MESSAGE_BYTES) and can be read by every subscriber. The budget, worst
# case with four-byte UTF-8 characters everywhere:
#   contact fields              ~ 0.25 MiB  (concerns 20 000 chars, 30 subjects)
#   10 agencies x answer        ~ 2.1 MiB   (findings 128 KiB, restricted 32 KiB, strengths)
#   chronology from findings    ~ 1.3 MiB   (200 entries per answer, strings from findings)
#   hub chronology, ratings     ~ 0.05 MiB  (50 earlier contacts, 100 rating changes)
# tests/unit/test_bounds.py builds that maximal packet and proves it encodes under the limit.
MAX_ID = 100  # ids and references
MAX_NAME = 100  # a person's given or family name
MAX_LABEL = 200  # an organisation, a role, a category
MAX_ADDRESS = 300
MAX_SUMMARY = 20_000  # the referrer's account of the concerns
MAX_SUBJECTS = 30
MAX_CONTACT_AGENCIES = 10  # broker.settings.MAX_AGENCIES
MAX_AGENCY_NAME = 40
MAX_STRENGTHS = 20
MAX_STRENGTH = 500
MAX_NOTES = 2000
MAX_FINDINGS_BYTES = 128 * 1024
MAX_FINDINGS_ITEMS = 200  # per list in findings the hub reads (they feed the chronology)
MAX_RESTRICTED_BYTES = 32 * 1024
MAX_KEY_BYTES = 64
MAX_RATING_CHANGES = 100  # re-ratings of one contact
# Sensible dates: nobody in a contact was born before this, no contact arrived before this.
EARLIEST_BIRTH = date(1900, 1, 1)
EARLIEST_CONTACT = datetime(2000, 1, 1, tzinfo=UTC)
# A birth is "in the future" only once it is after the receiving date in every time zone.
_LATEST_ZONE = timedelta(hours=14)
_LONGEST_PREGNANCY = timedelta(days=366)

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
AgencyName = Annotated[str, Field(min_length=1, max_length=MAX_AGENCY_NAME)]


def _to_avro_instant(value: datetime) -> datetime:
    # Avro timestamp-millis keeps milliseconds in UTC; doing the same here makes a model
    # equal to itself after a round trip through the broker.
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


Instant = Annotated[AwareDatetime, AfterValidator(_to_avro_instant)]
"""An aware UTC datetime with millisecond precision (Avro ``timestamp-millis``)."""


class AvroModel(BaseModel):
    """A value that travels as an Avro record; immutable once built."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    avro_name: ClassVar[str]

    def to_avro(self) -> dict[str, Any]:
        return self.model_dump()


def normalise_postcode(value: str) -> str:
    """Upper case with a single space before the inward code, as agencies' systems differ."""
    compact = "".join(value.split()).upper()
    return f"{compact[:-3]} {compact[-3:]}" if len(compact) > 3 else compact


class Subject(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.Subject"

    subject_id: str = Field(min_length=1, max_length=MAX_ID)
    role: SubjectRole
    given_name: str | None = Field(None, max_length=MAX_NAME)
    family_name: str | None = Field(None, max_length=MAX_NAME)
    date_of_birth: date | None = Field(None, ge=EARLIEST_BIRTH)
    expected_date_of_delivery: date | None = Field(None, ge=EARLIEST_BIRTH)
    nhs_number: str | None = Field(None, max_length=20)
    upn: str | None = Field(None, max_length=20)
    la_child_id: str | None = Field(None, max_length=MAX_ID)
    address: str | None = Field(None, max_length=MAX_ADDRESS)
    postcode: str | None = Field(None, max_length=16)

    @field_validator("nhs_number")
    @classmethod
    def _valid_nhs_number(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(nhs.validate(value))
        except StdnumError:
            raise ValueError("NHS number fails its check digit") from None

    @field_validator("upn")
    @classmethod
    def _valid_upn(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(upn.validate(value))
        except StdnumError:
            raise ValueError("Unique Pupil Number is not valid") from None

    @field_validator("postcode")
    @classmethod
    def _normal_postcode(cls, value: str | None) -> str | None:
        return None if value is None else normalise_postcode(value)


class Referrer(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.Referrer"

    kind: ReferrerKind
    organisation: str | None = Field(None, max_length=MAX_LABEL)
    name: str | None = Field(None, max_length=MAX_LABEL)
    role: str | None = Field(None, max_length=MAX_LABEL)


class Contact(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.Contact"

    contact_id: str = Field(min_length=1, max_length=MAX_ID)
    contact_ref: str | None = Field(None, max_length=MAX_ID)
    received_at: Instant = Field(ge=EARLIEST_CONTACT)
    brag: Brag
    referrer: Referrer
    concerns_summary: str = Field(min_length=1, max_length=MAX_SUMMARY)
    consent: Consent
    lawful_basis: LawfulBasis
    subjects: list[Subject] = Field(min_length=1, max_length=MAX_SUBJECTS)
    agencies: list[AgencyName] = Field([], max_length=MAX_CONTACT_AGENCIES)

    @model_validator(mode="after")
    def _consistent(self) -> Contact:
        if (self.consent is Consent.GIVEN) != (self.lawful_basis is LawfulBasis.CONSENT):
            raise ValueError(
                "lawful_basis must be CONSENT when consent is GIVEN, and S47_CHILD_PROTECTION "
                "or S10_COOPERATION when consent was refused or not sought"
            )
        if not any(s.role in (SubjectRole.CHILD, SubjectRole.UNBORN) for s in self.subjects):
            raise ValueError("a contact must name at least one CHILD or UNBORN subject")
        ids = [s.subject_id for s in self.subjects]
        if len(ids) != len(set(ids)):
            raise ValueError("subject_id values must be unique within a contact")
        # Dates are checked against the contact's own receipt, so a stored contact stays
        # valid for ever; the receipt itself is checked against the clock at intake.
        received = (self.received_at + _LATEST_ZONE).date()
        for s in self.subjects:
            if s.date_of_birth is not None and s.date_of_birth > received:
                raise ValueError(f"subject {s.subject_id}: date_of_birth is after the contact")
            due = s.expected_date_of_delivery
            if due is not None and due > received + _LONGEST_PREGNANCY:
                raise ValueError(
                    f"subject {s.subject_id}: expected_date_of_delivery is more than a year "
                    "after the contact"
                )
        return self


class InformationRequest(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.InformationRequest"

    request_id: str
    revision: int = 0
    contact_ref: str
    agency: str
    brag: Brag
    deadline: Instant
    issued_at: Instant
    concerns_summary: str
    consent: Consent
    lawful_basis: LawfulBasis
    subjects: list[Subject] = []


class RequestReminder(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.RequestReminder"

    request_id: str
    contact_ref: str
    agency: str
    brag: Brag
    deadline: Instant
    sent_at: Instant
    fraction: float = Field(0.5, gt=0.0, lt=1.0)


class SubjectMatch(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.SubjectMatch"

    subject_id: str = Field(max_length=MAX_ID)
    matched: bool
    method: MatchMethod
    confidence: float = Field(ge=0.0, le=1.0)
    record_id: str | None = Field(None, max_length=MAX_ID)
    # Set only on an unmatched subject: the identifier the agency holds for someone whose
    # date of birth or name disagree, so the packet asks a person to check by hand.
    identifier_conflict: MatchMethod | None = None


class RestrictedEnvelope(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.RestrictedEnvelope"

    key_id: str = Field(max_length=MAX_ID)
    ephemeral_public_key: bytes = Field(max_length=MAX_KEY_BYTES)
    nonce: bytes = Field(max_length=MAX_KEY_BYTES)
    ciphertext: bytes = Field(max_length=MAX_RESTRICTED_BYTES)


class RestrictedItem(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.RestrictedItem"

    category: str
    summary: str
    subject_ids: list[str] = []


class RestrictedFindings(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.RestrictedFindings"

    items: list[RestrictedItem] = []


class RestrictedRecord(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.RestrictedRecord"

    reference: str
    contact_ref: str
    agency: str
    response_id: str
    received_at: Instant
    envelope: RestrictedEnvelope


class RestrictedHolding(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.RestrictedHolding"

    agency: str
    reference: str


class AgencyResponse(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.AgencyResponse"

    response_id: Id
    request_id: Id
    contact_ref: Id
    agency: AgencyName
    responded_at: Instant
    outcome: ResponseOutcome
    matches: list[SubjectMatch] = Field([], max_length=MAX_SUBJECTS)
    strengths: list[Annotated[str, Field(max_length=MAX_STRENGTH)]] = Field(
        [], max_length=MAX_STRENGTHS
    )
    engagement: Engagement = Engagement.UNKNOWN
    engagement_notes: str | None = Field(None, max_length=MAX_NOTES)
    findings: bytes | None = Field(None, max_length=MAX_FINDINGS_BYTES)
    restricted: RestrictedEnvelope | None = None


class PoliceIncident(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.PoliceIncident"

    occurred_on: date
    category: str
    summary: str
    subject_ids: list[str] = []


class PoliceCallOut(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.PoliceCallOut"

    occurred_on: date
    reason: str
    domestic_abuse: bool = False


class AdultPosingRisk(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.AdultPosingRisk"

    name: str
    relationship: str
    risk_summary: str


class PoliceFindings(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.PoliceFindings"

    incidents: list[PoliceIncident] = []
    call_outs: list[PoliceCallOut] = []
    adults_posing_risk: list[AdultPosingRisk] = []


class GpRegistration(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.GpRegistration"

    subject_id: str
    practice: str
    registered_since: date | None = None


class HospitalAdmission(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.HospitalAdmission"

    subject_id: str
    admitted_on: date
    reason: str


class AeAttendance(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.AeAttendance"

    subject_id: str
    attended_on: date
    reason: str


class MissedAppointment(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.MissedAppointment"

    subject_id: str
    due_on: date
    service: str


class HealthVisitorInvolvement(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.HealthVisitorInvolvement"

    team: str
    involvement: str


class Pregnancy(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.Pregnancy"

    subject_id: str
    weeks: int
    expected_date_of_delivery: date | None = None
    previous_children_in_care: bool = False
    booked_antenatal: bool = False


class HealthFindings(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.HealthFindings"

    registrations: list[GpRegistration] = []
    admissions: list[HospitalAdmission] = []
    ae_attendances: list[AeAttendance] = []
    missed_appointments: list[MissedAppointment] = []
    health_visitor: HealthVisitorInvolvement | None = None
    pregnancy: Pregnancy | None = None


class SchoolPlacement(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.SchoolPlacement"

    name: str
    year_group: int | None = None


class Exclusion(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.Exclusion"

    excluded_on: date
    kind: ExclusionKind
    days: int = 0
    reason: str


class SafeguardingConcern(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.SafeguardingConcern"

    raised_on: date
    summary: str


class SpecialEducationalNeeds(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.SpecialEducationalNeeds"

    provision: SenProvision
    needs: str


class HouseholdPupil(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.HouseholdPupil"

    name: str
    year_group: int | None = None
    school: str
    safeguarding_concerns: list[SafeguardingConcern] = []


class EducationFindings(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.EducationFindings"

    school: SchoolPlacement | None = None
    attendance_percent: float | None = None
    exclusions: list[Exclusion] = []
    safeguarding_concerns: list[SafeguardingConcern] = []
    sen: SpecialEducationalNeeds | None = None
    household_pupils: list[HouseholdPupil] = []


class Tenancy(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.Tenancy"

    tenure: Tenure
    started_on: date | None = None
    address: str


class HouseholdMember(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.HouseholdMember"

    name: str
    age: int | None = None
    relationship: str


class HomelessnessApproach(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.HomelessnessApproach"

    presented_on: date
    reason: str
    outcome: str


class AntiSocialBehaviourReport(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.AntiSocialBehaviourReport"

    reported_on: date
    summary: str


class HousingFindings(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.HousingFindings"

    tenancy: Tenancy | None = None
    household_members: list[HouseholdMember] = []
    homelessness: list[HomelessnessApproach] = []
    overcrowded: bool = False
    arrears_pounds: float | None = None
    anti_social_behaviour: list[AntiSocialBehaviourReport] = []


class AllocatedWorker(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.AllocatedWorker"

    subject_id: str
    name: str
    team: str
    role: AllocationRole
    allocated_on: date | None = None


class SocialCareContact(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.SocialCareContact"

    subject_id: str
    received_on: date
    source: str
    category: str
    outcome: str
    referral: bool = False


class OpenCase(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.OpenCase"

    subject_id: str
    case_type: CaseType
    opened_on: date


class ProtectionPlan(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.ProtectionPlan"

    subject_id: str
    category: AbuseCategory
    started_on: date
    ended_on: date | None = None


class SocialCareFindings(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.SocialCareFindings"

    # Bounded: each contact becomes a chronology entry in the packet.
    contacts: list[SocialCareContact] = Field([], max_length=MAX_FINDINGS_ITEMS)
    open_cases: list[OpenCase] = Field([], max_length=MAX_FINDINGS_ITEMS)
    protection_plans: list[ProtectionPlan] = Field([], max_length=MAX_FINDINGS_ITEMS)
    allocated_workers: list[AllocatedWorker] = Field([], max_length=MAX_FINDINGS_ITEMS)


class ChronologyEntry(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.ChronologyEntry"

    on: date
    recorded_by: str
    source: str
    subject_id: str | None = None
    category: str | None = None
    brag: Brag | None = None
    outcome: str | None = None
    contact_ref: str | None = None


class RatingChange(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.RatingChange"

    brag: Brag
    changed_at: Instant
    deadline: Instant
    rationale: str | None = None


class ScreeningPacket(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.ScreeningPacket"

    packet_id: str
    contact_ref: str
    version: int
    reason: PacketReason
    published_at: Instant
    received_at: Instant
    brag: Brag
    deadline: Instant
    rating_history: list[RatingChange] = []
    referrer: Referrer
    concerns_summary: str
    consent: Consent
    lawful_basis: LawfulBasis
    subjects: list[Subject] = []
    answers: list[AgencyResponse] = []
    late_agencies: list[str] = []
    missing_agencies: list[str] = []
    restricted_held: list[RestrictedHolding] = []
    allocated_worker: AllocatedWorker | None = None
    chronology: list[ChronologyEntry] = []
    chronology_omitted: int = 0


class AllocatedContact(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.AllocatedContact"

    contact_ref: str
    routed_at: Instant
    agency: str
    worker: AllocatedWorker
    brag: Brag
    deadline: Instant
    contact: Contact


class HubEvent(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.HubEvent"

    event_id: str
    occurred_at: Instant
    contact_ref: str | None = None
    kind: HubEventKind
    brag: Brag | None = None
    agency: str | None = None
    detail: dict[str, str] = {}


class HubInstanceRecord(AvroModel):
    """Which hub last ran for a prefix, on which database, with the references it reserved
    (:mod:`hub.instance`). Map keys are years, as Avro map keys are strings."""

    avro_name: ClassVar[str] = "uk.mash.HubInstanceRecord"

    database_id: str
    database: str
    instance: str
    refs: dict[str, int] = {}
    written_at: Instant


class ContactCommand(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.ContactCommand"

    command_id: str
    issued_at: Instant
    action: CommandAction
    contact_ref: str
    brag: Brag | None = None
    rationale: str | None = None
    decision: Decision | None = None
    issued_by: str | None = None


class ReferrerFeedback(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.ReferrerFeedback"

    feedback_id: str
    contact_ref: str
    decided_at: Instant
    decision: Decision
    referrer: Referrer
    message: str


class OutcomeNotice(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.OutcomeNotice"

    notice_id: str
    contact_ref: str
    agency: str
    request_id: str
    decided_at: Instant
    decision: Decision


class CommandReply(AvroModel):
    avro_name: ClassVar[str] = "uk.mash.CommandReply"

    command_id: str
    ok: bool
    contact_ref: str | None = None
    brag: Brag | None = None
    deadline: Instant | None = None
    error: str | None = None
