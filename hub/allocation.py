"""Screening for an allocated worker: a contact about a child who already has a social worker
or lead professional is sent directly on to them, as the MASH does, because they are the best
person to support the child.

Only children's social care holds allocations (``broker.topology.ALLOCATED_TEAM``), so only
its answer can route a contact; its findings are read here, by schema, and nowhere else in
the hub.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.topology import ALLOCATED_TEAM
from schemas.codec import DecodeError, decode, schema_name_of
from schemas.enums import SubjectRole
from schemas.models import AgencyResponse, AllocatedWorker, Contact, SocialCareFindings

__all__ = ["allocated_worker", "social_care_findings"]

# The children a contact is about; a parent's or sibling's worker is not the child's.
_THE_CHILD = (SubjectRole.CHILD, SubjectRole.UNBORN)


def social_care_findings(answer: AgencyResponse) -> SocialCareFindings | None:
    """The answer's findings when they are social care's; None otherwise or if unreadable."""
    if answer.findings is None:
        return None
    try:
        if schema_name_of(answer.findings) != SocialCareFindings.avro_name:
            return None
        return decode(answer.findings, SocialCareFindings)
    except DecodeError:
        # The answer was accepted; its findings are shown as they are, not trusted to route.
        return None


def allocated_worker(contact: Contact, answers: Iterable[AgencyResponse]) -> AllocatedWorker | None:
    """The worker allocated to the contact's child (the first child named, if several)."""
    children = [s.subject_id for s in contact.subjects if s.role in _THE_CHILD]
    workers: dict[str, AllocatedWorker] = {}
    for answer in answers:
        if answer.agency != ALLOCATED_TEAM:
            continue
        findings = social_care_findings(answer)
        for worker in findings.allocated_workers if findings else []:
            workers.setdefault(worker.subject_id, worker)
    return next((workers[c] for c in children if c in workers), None)
