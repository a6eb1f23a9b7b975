"""What an agency plugs into the adapter kit: a name and a way to answer a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from schemas.enums import Engagement
from schemas.models import AvroModel, InformationRequest, RestrictedItem, SubjectMatch

__all__ = ["Agency", "Lookup"]


@dataclass(frozen=True)
class Lookup:
    """An agency's answer before it is put in the response envelope."""

    matches: list[SubjectMatch]
    findings: AvroModel | None = None
    strengths: list[str] = field(default_factory=list)
    engagement: Engagement = Engagement.UNKNOWN
    engagement_notes: str | None = None
    # Shared with the MASH but not beyond it: sealed for the restricted file before sending.
    restricted: list[RestrictedItem] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return any(m.matched for m in self.matches)


class Agency(Protocol):
    """One agency's records, behind the lookup its adapter calls for each request."""

    @property
    def name(self) -> str: ...

    def lookup(self, request: InformationRequest) -> Lookup: ...
