"""Installed agency adapters, found through the ``mash.adapters`` entry point group, so a
separate package can add an agency without editing mash-hub."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import cast

from adapters.kit.agency import Agency
from mash.errors import MashError

__all__ = [
    "GROUP",
    "InstalledAdapter",
    "UnknownAgency",
    "data_variable",
    "installed_adapters",
    "installed_agencies",
    "load_agency",
]

GROUP = "mash.adapters"

AgencyFactory = Callable[..., Agency]
"""An agency's class (or function): called with no argument it reads its built-in sample
export; called with a folder, that agency's own export in the same shape."""


def data_variable(name: str) -> str:
    """The environment variable naming an agency's export folder: ``MASH_POLICE_DATA``,
    ``MASH_SOCIAL_CARE_DATA`` (a hyphen is not allowed in a variable name)."""
    return f"MASH_{re.sub(r'[^A-Z0-9]', '_', name.upper())}_DATA"


class UnknownAgency(MashError, LookupError):
    pass


@dataclass(frozen=True)
class InstalledAdapter:
    """One ``mash.adapters`` entry: the agency, its object path and the package that
    declared it (so an operator can tell mash-hub's own adapters from an agency's)."""

    name: str
    target: str
    distribution: str
    version: str


def installed_adapters() -> list[InstalledAdapter]:
    """Every entry, sorted by agency name; two packages claiming one name both appear."""
    found = []
    for ep in entry_points(group=GROUP):
        dist = ep.dist
        found.append(
            InstalledAdapter(
                ep.name,
                ep.value,
                dist.name if dist is not None else "unknown package",
                dist.version if dist is not None else "",
            )
        )
    return sorted(found, key=lambda a: (a.name, a.distribution))


def installed_agencies() -> dict[str, str]:
    """Agency name → the object path that provides it."""
    return {a.name: a.target for a in installed_adapters()}


def load_agency(name: str) -> AgencyFactory:
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            return cast(AgencyFactory, ep.load())
    known = ", ".join(sorted(installed_agencies())) or "none"
    raise UnknownAgency(f"no adapter named {name!r} is installed (installed: {known})")
