"""Enumerations shared by every message: each mirrors an Avro enum in ``schemas/``."""

from enum import StrEnum

__all__ = [
    "AbuseCategory",
    "AllocationRole",
    "Brag",
    "CaseType",
    "CommandAction",
    "Consent",
    "Decision",
    "Engagement",
    "ExclusionKind",
    "HubEventKind",
    "LawfulBasis",
    "MatchMethod",
    "PacketReason",
    "ReferrerKind",
    "ResponseOutcome",
    "SenProvision",
    "SubjectRole",
    "Tenure",
]


class Brag(StrEnum):
    """The MASH manager's risk rating; it sets the deadline for every agency's answer."""

    BLUE = "BLUE"
    RED = "RED"
    AMBER = "AMBER"
    GREEN = "GREEN"


class Consent(StrEnum):
    GIVEN = "GIVEN"
    REFUSED = "REFUSED"
    NOT_SOUGHT = "NOT_SOUGHT"


class LawfulBasis(StrEnum):
    """Consent, a child protection enquiry (Children Act 1989 s47) or the duty to
    cooperate (Children Act 2004 s10)."""

    CONSENT = "CONSENT"
    S47_CHILD_PROTECTION = "S47_CHILD_PROTECTION"
    S10_COOPERATION = "S10_COOPERATION"


class SubjectRole(StrEnum):
    CHILD = "CHILD"
    UNBORN = "UNBORN"
    PARENT = "PARENT"
    CARER = "CARER"
    SIBLING = "SIBLING"
    ADULT_IN_HOUSEHOLD = "ADULT_IN_HOUSEHOLD"


class ReferrerKind(StrEnum):
    SCHOOL = "SCHOOL"
    GP = "GP"
    HEALTH = "HEALTH"
    POLICE = "POLICE"
    LOCAL_AUTHORITY = "LOCAL_AUTHORITY"
    NEIGHBOUR = "NEIGHBOUR"
    FAMILY = "FAMILY"
    SELF = "SELF"
    ANONYMOUS = "ANONYMOUS"
    OTHER = "OTHER"


class MatchMethod(StrEnum):
    NHS_NUMBER = "NHS_NUMBER"
    UPN = "UPN"
    LA_CHILD_ID = "LA_CHILD_ID"
    NAME_DOB_POSTCODE = "NAME_DOB_POSTCODE"
    NONE = "NONE"


class ResponseOutcome(StrEnum):
    KNOWN = "KNOWN"
    NOT_KNOWN = "NOT_KNOWN"


class Engagement(StrEnum):
    ENGAGES_WELL = "ENGAGES_WELL"
    ENGAGES_PARTIALLY = "ENGAGES_PARTIALLY"
    DOES_NOT_ENGAGE = "DOES_NOT_ENGAGE"
    UNKNOWN = "UNKNOWN"


class ExclusionKind(StrEnum):
    SUSPENSION = "SUSPENSION"
    PERMANENT = "PERMANENT"


class SenProvision(StrEnum):
    SEN_SUPPORT = "SEN_SUPPORT"
    EHC_PLAN = "EHC_PLAN"


class Tenure(StrEnum):
    COUNCIL = "COUNCIL"
    HOUSING_ASSOCIATION = "HOUSING_ASSOCIATION"
    PRIVATE_RENTED = "PRIVATE_RENTED"
    TEMPORARY_ACCOMMODATION = "TEMPORARY_ACCOMMODATION"
    OWNER_OCCUPIER = "OWNER_OCCUPIER"


class PacketReason(StrEnum):
    COMPLETE = "COMPLETE"
    DEADLINE = "DEADLINE"
    AMENDMENT = "AMENDMENT"


class HubEventKind(StrEnum):
    CONTACT_RECEIVED = "CONTACT_RECEIVED"
    REQUEST_SENT = "REQUEST_SENT"
    ANSWER_RECEIVED = "ANSWER_RECEIVED"
    ANSWER_LATE = "ANSWER_LATE"
    PACKET_PUBLISHED = "PACKET_PUBLISHED"
    DEADLINE_PASSED = "DEADLINE_PASSED"
    RERATED = "RERATED"
    REMINDER_SENT = "REMINDER_SENT"
    # Operators' actions on dead letters, kept with the hub's events for the audit trail.
    DEAD_LETTER_REPLAYED = "DEAD_LETTER_REPLAYED"
    DEAD_LETTERS_PURGED = "DEAD_LETTERS_PURGED"
    # The signed head of the audit log (hub.audit.Checkpoint), kept off the hub.
    AUDIT_CHECKPOINT = "AUDIT_CHECKPOINT"
    # The MASH manager's decision on a contact was recorded (hub.decisions).
    DECIDED = "DECIDED"


class CommandAction(StrEnum):
    RERATE = "RERATE"
    DECIDE = "DECIDE"


class Decision(StrEnum):
    """The MASH manager's decision on a contact (the seeds' step 4)."""

    NO_FURTHER_ACTION = "NO_FURTHER_ACTION"
    SIGNPOST = "SIGNPOST"  # to universal services
    EARLY_HELP = "EARLY_HELP"
    CHILD_IN_NEED_S17 = "CHILD_IN_NEED_S17"  # Children Act 1989 s17
    CHILD_PROTECTION_S47 = "CHILD_PROTECTION_S47"  # Children Act 1989 s47
    IMMEDIATE_PROTECTION = "IMMEDIATE_PROTECTION"


class CaseType(StrEnum):
    """An open case in children's social care, from early help to a child in care."""

    EARLY_HELP = "EARLY_HELP"
    CHILD_IN_NEED = "CHILD_IN_NEED"  # Children Act 1989 s17
    CHILD_PROTECTION = "CHILD_PROTECTION"
    LOOKED_AFTER = "LOOKED_AFTER"


class AbuseCategory(StrEnum):
    """The category a child protection plan is made under."""

    NEGLECT = "NEGLECT"
    PHYSICAL_ABUSE = "PHYSICAL_ABUSE"
    EMOTIONAL_ABUSE = "EMOTIONAL_ABUSE"
    SEXUAL_ABUSE = "SEXUAL_ABUSE"


class AllocationRole(StrEnum):
    SOCIAL_WORKER = "SOCIAL_WORKER"
    LEAD_PROFESSIONAL = "LEAD_PROFESSIONAL"  # early help: a named professional leads the plan
