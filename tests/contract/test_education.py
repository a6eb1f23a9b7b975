"""The education adapter keeps the adapter contract."""

from __future__ import annotations

from datetime import date

from adapters.kit.contract import AdapterContract
from schemas.enums import SubjectRole
from schemas.models import Subject


class TestEducationContract(AdapterContract):
    agency = "education"
    known_subject = Subject(
        subject_id="S1",
        role=SubjectRole.CHILD,
        given_name="Ella",
        family_name="Ward",
        date_of_birth=date(2011, 2, 18),
        postcode="ZX6 2ZL",
        upn="H302204115002",
    )
    other_known_subject = Subject(
        subject_id="S2",
        role=SubjectRole.CHILD,
        given_name="Ava",
        family_name="Bailey",
        date_of_birth=date(2016, 4, 16),
        postcode="ZX3 4YA",
        upn="T302206820004",
    )
    restricted_subject = None  # education shares no restricted findings
