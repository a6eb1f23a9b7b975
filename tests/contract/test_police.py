"""The police adapter keeps the adapter contract (and seals its restricted intelligence)."""

from __future__ import annotations

from datetime import date

from adapters.kit.contract import AdapterContract
from schemas.enums import SubjectRole
from schemas.models import Subject


class TestPoliceContract(AdapterContract):
    agency = "police"
    known_subject = Subject(
        subject_id="S1",
        role=SubjectRole.CHILD,
        given_name="Sophia",
        family_name="Martin",
        date_of_birth=date(2012, 4, 15),
        postcode="ZX3 5SP",
    )
    other_known_subject = Subject(
        subject_id="S2",
        role=SubjectRole.PARENT,
        given_name="Rebecca",
        family_name="Davis",
        date_of_birth=date(1991, 11, 15),
        postcode="ZX1 9DH",
    )
    # restricted_intelligence.csv holds graded intelligence about him.
    restricted_subject = Subject(
        subject_id="S3",
        role=SubjectRole.CARER,
        given_name="Wayne",
        family_name="Carver",
        date_of_birth=date(1981, 7, 8),
        postcode="ZX4 7QD",
    )
