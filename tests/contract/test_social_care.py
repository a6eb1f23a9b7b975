"""The children's social care adapter keeps the adapter contract."""

from __future__ import annotations

from datetime import date

from adapters.kit.contract import AdapterContract
from schemas.enums import SubjectRole
from schemas.models import Subject


class TestSocialCareContract(AdapterContract):
    agency = "social-care"
    # Two earlier school contacts, an open early help case and a lead professional.
    known_subject = Subject(
        subject_id="S1",
        role=SubjectRole.CHILD,
        given_name="Olivia",
        family_name="Bennett",
        date_of_birth=date(2016, 11, 30),
        postcode="ZX2 5HB",
        la_child_id="LA302-640226",  # so the identity tests try the LA child id
    )
    other_known_subject = Subject(
        subject_id="S2",
        role=SubjectRole.CHILD,
        given_name="Harper",
        family_name="Lewis",
        date_of_birth=date(2026, 7, 13),
        postcode="ZX3 8PA",
    )
