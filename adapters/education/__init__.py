"""The education adapter's lookup: pupils on roll, attendance, exclusions, safeguarding
concerns and special educational needs."""

from adapters.education.agency import EducationAgency

__all__ = ["EducationAgency"]
