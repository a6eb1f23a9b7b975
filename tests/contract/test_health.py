"""The health adapter keeps the adapter contract."""

from __future__ import annotations

from datetime import date

from adapters.kit.contract import AdapterContract
from schemas.enums import SubjectRole
from schemas.models import Subject


class TestHealthContract(AdapterContract):
    agency = "health"
    known_subject = Subject(
        subject_id="S1",
        role=SubjectRole.CHILD,
        given_name="Joseph",
        family_name="Campbell",
        date_of_birth=date(2016, 4, 16),
        postcode="ZX5 2LJ",
        nhs_number="999 620 8222",
    )
    other_known_subject = Subject(
        subject_id="S2",
        role=SubjectRole.CHILD,
        given_name="Freya",
        family_name="Anderson",
        date_of_birth=date(2026, 10, 4),
        postcode="ZX5 2LJ",
        nhs_number="999 218 3233",
    )
    restricted_subject = None  # health shares no restricted findings
