"""The contact's chronology: is this the first concern about the child, or part of a pattern?

All concerns, however low, come through the hub, so that repeated low-level concerns from
different agencies show up as a pattern rather than being lost. A packet therefore lists,
oldest first:

- this hub's own earlier contacts about the same child, with their rating, who referred and
  what became of them (``recorded_by`` is ``mash``);
- the earlier contacts and referrals an agency answered with (children's social care's
  ``SocialCareFindings.contacts``).

Entries carry labels (date, source, category, rating, outcome), never the concern's text.

**The same child.** Earlier contacts are found by the children they were about (subjects
with role CHILD, UNBORN or SIBLING), with the rule the adapters use
(:mod:`adapters.kit.matching`): a different NHS number, Unique Pupil Number or local
authority child id of the same kind is a different child, whatever the names say; otherwise
it is the same child only when the date of birth is the same and the names are the same
(``same_name``: alike as whole names and as given names). A shared identifier alone links
nothing: an identifier copied onto the wrong child's contact would otherwise put another
child's history in this child's packet.
"""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from adapters.kit.matching import normalise_name, same_name
from hub.allocation import social_care_findings
from hub.decisions import decided_outcomes
from hub.store import ContactRow, HubStore, SubjectKeys
from schemas.enums import AllocationRole, SubjectRole
from schemas.models import AgencyResponse, ChronologyEntry, Contact

__all__ = ["HUB_SOURCE", "MAX_HUB_ENTRIES", "chronology", "same_child", "subject_keys"]

HUB_SOURCE = "mash"
MAX_HUB_ENTRIES = 50
_UK = ZoneInfo("Europe/London")
_CHILDREN = (SubjectRole.CHILD, SubjectRole.UNBORN, SubjectRole.SIBLING)
_STRONG = ("nhs_number", "upn", "la_child_id")
_STATES = {
    "open": "checks under way",
    "partial": "packet published at the deadline",
    "complete": "packet published",
}
_ROUTED = {
    AllocationRole.SOCIAL_WORKER.value: "sent to the allocated social worker",
    AllocationRole.LEAD_PROFESSIONAL.value: "sent to the allocated lead professional",
}


def _compact(value: str | None) -> str | None:
    # As the adapters compare identifiers: no spaces or hyphens, upper case.
    if value is None:
        return None
    compact = "".join(c for c in value if c.isalnum()).upper()
    return compact or None


def subject_keys(contact: Contact) -> list[SubjectKeys]:
    """The children of a contact, as the chronology looks for them again."""
    return [
        SubjectKeys(
            subject_id=s.subject_id,
            nhs_number=_compact(s.nhs_number),
            upn=_compact(s.upn),
            la_child_id=_compact(s.la_child_id),
            given_name=normalise_name(s.given_name),
            family_name=normalise_name(s.family_name),
            date_of_birth=s.date_of_birth,
        )
        for s in contact.subjects
        if s.role in _CHILDREN
    ]


def same_child(a: SubjectKeys, b: SubjectKeys) -> bool:
    """The rule in the module docstring."""
    for kind in _STRONG:
        mine, theirs = getattr(a, kind), getattr(b, kind)
        if mine is not None and theirs is not None and mine != theirs:
            return False  # two identifiers of one kind are two children
    if a.date_of_birth is None or a.date_of_birth != b.date_of_birth:
        return False
    return same_name(a.given_name, a.family_name, b.given_name, b.family_name)


def _hub_entries(
    store: HubStore, row: ContactRow, contact: Contact
) -> tuple[list[ChronologyEntry], int]:
    """The most recent ``MAX_HUB_ENTRIES`` earlier contacts about the same children, and how
    many older ones were left out (a child referred hundreds of times would otherwise make
    every packet, and every amendment, carry and rebuild its whole history)."""
    found: list[tuple[str, str]] = []  # (earlier contact, child), oldest first
    seen: set[str] = set()
    for child in subject_keys(contact):
        for earlier in store.earlier_subjects(row.ref, child):
            if earlier.ref in seen or not same_child(child, earlier.keys):
                continue
            seen.add(earlier.ref)
            found.append((earlier.ref, child.subject_id))
    kept = found[-MAX_HUB_ENTRIES:]
    refs = [ref for ref, _ in kept]
    shown, decided = store.earlier_contacts(refs), decided_outcomes(store, refs)
    entries: list[ChronologyEntry] = []
    for ref, subject_id in kept:
        other = shown.get(ref)
        if other is None:
            continue
        # The MASH's decision is the contact's outcome; until then, what the hub did with it.
        outcome = (
            decided.get(other.ref)
            or _ROUTED.get(other.routed_to or "")
            or _STATES.get(other.state, other.state)
        )
        entries.append(
            ChronologyEntry(
                on=other.received_at.astimezone(_UK).date(),
                recorded_by=HUB_SOURCE,
                source=other.referrer_kind.lower(),
                subject_id=subject_id,
                brag=other.brag,
                outcome=outcome,
                contact_ref=other.ref,
            )
        )
    return entries, len(found) - len(kept)


def _agency_entries(answers: Iterable[AgencyResponse]) -> list[ChronologyEntry]:
    entries: list[ChronologyEntry] = []
    for answer in answers:
        findings = social_care_findings(answer)
        for c in findings.contacts if findings else []:
            outcome = f"referral: {c.outcome}" if c.referral else c.outcome
            entries.append(
                ChronologyEntry(
                    on=c.received_on,
                    recorded_by=answer.agency,
                    source=c.source,
                    subject_id=c.subject_id,
                    category=c.category,
                    outcome=outcome,
                )
            )
    return entries


def chronology(
    store: HubStore, row: ContactRow, contact: Contact, answers: Iterable[AgencyResponse]
) -> tuple[list[ChronologyEntry], int]:
    """Earlier concerns about the contact's subjects, oldest first, and how many of this
    hub's older contacts were left out."""
    hub_entries, omitted = _hub_entries(store, row, contact)
    entries = hub_entries + _agency_entries(answers)
    return sorted(entries, key=lambda e: (e.on, e.recorded_by, e.contact_ref or "")), omitted
