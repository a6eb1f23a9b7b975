"""The health adapter's lookup: GP registrations, hospital and A&E, missed appointments,
pregnancies and health visiting."""

from adapters.health.agency import HealthAgency

__all__ = ["HealthAgency"]
