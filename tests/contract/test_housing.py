"""The housing adapter keeps the adapter contract."""

from __future__ import annotations

from datetime import date

from adapters.kit.contract import AdapterContract
from schemas.enums import SubjectRole
from schemas.models import Subject


class TestHousingContract(AdapterContract):
    agency = "housing"
    known_subject = Subject(
        subject_id="S1",
        role=SubjectRole.PARENT,
        given_name="Shanice",
        family_name="Mensah",
        date_of_birth=date(1986, 6, 15),
        postcode="ZX9 3QY",
    )
    other_known_subject = Subject(
        subject_id="S2",
        role=SubjectRole.CHILD,
        given_name="Jack",
        family_name="Murray",
        date_of_birth=date(2019, 4, 4),
        postcode="ZX8 7RP",
    )
    restricted_subject = None  # housing shares no restricted findings
