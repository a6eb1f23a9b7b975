"""The housing adapter's lookup: residents, tenancies, homelessness approaches and
anti-social behaviour."""

from adapters.housing.agency import HousingAgency

__all__ = ["HousingAgency"]
