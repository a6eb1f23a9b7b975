"""Installed agency adapters, found through the ``mash.adapters`` entry point group, so a
separate package can add an agency without editing mash-hub."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import cast

from adapters.kit.agency import Agency

__all__ = ["GROUP", "UnknownAgency", "installed_agencies", "load_agency"]

GROUP = "mash.adapters"

AgencyFactory = Callable[[], Agency]


class UnknownAgency(LookupError):
    pass


def installed_agencies() -> dict[str, str]:
    """Agency name → the object path that provides it."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def load_agency(name: str) -> AgencyFactory:
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            return cast(AgencyFactory, ep.load())
    known = ", ".join(sorted(installed_agencies())) or "none"
    raise UnknownAgency(f"no adapter named {name!r} is installed (installed: {known})")
