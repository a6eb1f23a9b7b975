"""The police adapter's lookup: nominal records, incidents, call-outs, adults posing risk."""

from adapters.police.agency import PoliceAgency

__all__ = ["PoliceAgency"]
