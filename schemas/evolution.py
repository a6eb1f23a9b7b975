"""The schema evolution gate: every schema stays readable both ways across a release.

The hub and the agencies' adapters are upgraded at different times, so for each schema the
current version is checked against the last released one (``schemas/released/<version>/``)
in both directions, in the terms schema registries use:

- ``backward``: the new schema reads data written with the released one (a hub upgraded
  before an agency, reading that agency's answers; a dead letter replayed after an upgrade).
- ``forward``: the released schema reads data written with the new one (an agency not yet
  upgraded, reading the new hub's requests).

The verdict is Apache Avro's own (:class:`avro.compatibility.ReaderWriterCompatibilityChecker`).
A removed schema is a break; a new one is not. A deliberate break is let through only by an
entry in ``schemas/released/accepted.toml`` naming the schema, the direction, the release it
breaks from and the reason, so the decision is reviewed with the change::

    [[accepted]]
    schema = "uk.mash.Contact"
    direction = "forward"
    released = "0.1.0"
    reason = "every adapter is upgraded before the hub (agreed at the MASH board, 2026-03)"
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import avro.compatibility as avro_compat
import avro.errors
import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
)

from mash.errors import MashError
from schemas.registry import SCHEMA_DIR, standalone_schemas

__all__ = [
    "ACCEPTED_FILE",
    "RELEASED_DIR",
    "Acceptance",
    "Direction",
    "EvolutionError",
    "EvolutionReport",
    "Incompatibility",
    "check",
    "latest_release",
    "release",
]

RELEASED_DIR = SCHEMA_DIR / "released"
ACCEPTED_FILE = "accepted.toml"

Direction = Literal["backward", "forward"]
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)
_READS = {
    "backward": "new reader, released writer",
    "forward": "released reader, new writer",
}
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class EvolutionError(MashError, ValueError):
    """The check cannot run: no release to compare with, an unreadable acceptance file, a bad
    version."""


@dataclass(frozen=True)
class Incompatibility:
    schema: str
    direction: Direction
    location: str  # Avro's pointer into the reader schema, e.g. /fields/5/type/items/fields/2
    path: str  # the same as field names, e.g. subjects[].nhs_number ('' at the top)
    kind: str  # avro's SchemaIncompatibilityType, or "removed"
    message: str

    def line(self) -> str:
        where = f"{self.location} ({self.path})" if self.path else self.location
        return (
            f"{self.schema} {self.direction} ({_READS[self.direction]}) at {where}:"
            f" {self.kind.replace('_', ' ')}: {self.message}"
        )


@dataclass(frozen=True)
class Acceptance:
    schema: str
    direction: Direction
    released: str
    reason: str

    def covers(self, incompatibility: Incompatibility, released: str) -> bool:
        return (
            self.schema == incompatibility.schema
            and self.direction == incompatibility.direction
            and self.released == released
        )


@dataclass(frozen=True)
class EvolutionReport:
    released: str  # the version compared with
    checked: int
    added: list[str] = field(default_factory=list)
    breaks: list[Incompatibility] = field(default_factory=list)
    accepted: list[tuple[Incompatibility, Acceptance]] = field(default_factory=list)
    unused: list[Acceptance] = field(default_factory=list)  # acceptances that match nothing

    @property
    def ok(self) -> bool:
        return not self.breaks


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def released_versions(released_dir: Path) -> list[str]:
    """Every released schema set, oldest first."""
    if not released_dir.is_dir():
        return []
    found = [p.name for p in released_dir.iterdir() if p.is_dir() and _VERSION.match(p.name)]
    return sorted(found, key=_version_key)


def latest_release(released_dir: Path) -> str:
    versions = released_versions(released_dir)
    if not versions:
        raise EvolutionError(
            f"no released schema set in {released_dir} (make one with 'mash schemas release')"
        )
    return versions[-1]


def read_acceptances(path: Path) -> list[Acceptance]:
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise EvolutionError(f"{path}: not readable TOML ({exc})") from None
    entries = data.get("accepted", [])
    if not isinstance(entries, list):
        raise EvolutionError(f"{path}: 'accepted' must be a list of [[accepted]] tables")
    out = []
    for number, entry in enumerate(entries, 1):
        missing = [
            key
            for key in ("schema", "direction", "released", "reason")
            if not isinstance(entry.get(key), str) or not entry[key].strip()
        ]
        if missing:
            raise EvolutionError(f"{path}: acceptance {number} lacks {', '.join(missing)}")
        if entry["direction"] not in DIRECTIONS:
            raise EvolutionError(
                f"{path}: acceptance {number} direction must be backward or forward,"
                f" not {entry['direction']!r}"
            )
        out.append(
            Acceptance(entry["schema"], entry["direction"], entry["released"], entry["reason"])
        )
    return out


class _Checker(ReaderWriterCompatibilityChecker):
    """Avro's checker, keeping each incompatibility's own location and message.

    The library merges the messages and locations of several incompatibilities into two
    unordered sets, and restarts the location at ``/`` inside a union; here each one is
    recorded where it is made (see :func:`_recording`) and a union keeps the location of the
    field that holds it.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # avro leaves it unannotated
        self._where: list[list[str]] = []

    def get_compatibility(
        self,
        reader: avro.schema.Schema,
        writer: avro.schema.Schema,
        reference_token: str = ReaderWriterCompatibilityChecker.ROOT_REFERENCE_TOKEN,
        location: list[str] | None = None,
    ) -> SchemaCompatibilityResult:
        if location is None and self._where:
            # A union's branches are compared in place, at the union's own location.
            *location, reference_token = self._where[-1]
        return super().get_compatibility(reader, writer, reference_token, location)

    def calculate_compatibility(
        self, reader: avro.schema.Schema, writer: avro.schema.Schema, location: list[str]
    ) -> SchemaCompatibilityResult:
        self._where.append(location)
        try:
            return super().calculate_compatibility(reader, writer, location)
        finally:
            self._where.pop()


_PATCH_LOCK = threading.Lock()


@contextmanager
def _recording(found: list[tuple[str, str, str]]) -> Iterator[None]:
    """Record every (kind, message, location) the checker finds, from its one constructor of
    an incompatibility. Probes of a union's branches are recorded too: the caller keeps only
    those that reach the final result."""
    original = avro_compat.incompatible

    def record(
        incompat_type: SchemaIncompatibilityType, message: str, location: list[str]
    ) -> SchemaCompatibilityResult:
        result = original(incompat_type, message, location)
        found.append((incompat_type.value, message, next(iter(result.locations))))
        return result

    with _PATCH_LOCK:
        avro_compat.incompatible = record
        try:
            yield
        finally:
            avro_compat.incompatible = original


def _field_path(reader: avro.schema.Schema, location: str) -> str:
    """Avro's ``/fields/5/type/items/fields/2`` as ``subjects[].nhs_number`` (best effort:
    '' where the pointer cannot be followed)."""
    tokens = [t for t in location.split("/") if t]
    node: Any = reader
    path = ""
    wants = {"fields": "record", "items": "array", "values": "map"}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if isinstance(node, avro.schema.UnionSchema) and token in wants:
            node = next((b for b in node.schemas if b.type == wants[token]), None)
            if node is None:
                return ""
        if token == "fields" and i + 1 < len(tokens) and isinstance(node, avro.schema.RecordSchema):
            fld = node.fields[int(tokens[i + 1])]
            path = f"{path}.{fld.name}" if path else fld.name
            node = fld
            i += 2
            continue
        if token == "type" and isinstance(node, avro.schema.Field):
            node = node.type
        elif token == "items" and isinstance(node, avro.schema.ArraySchema):
            node, path = node.items, f"{path}[]"
        elif token == "values" and isinstance(node, avro.schema.MapSchema):
            node, path = node.values, f"{path}{{}}"
        else:
            break  # symbols, name, size, a union branch: the path so far says where
        i += 1
    return path


def _standalone(directory: Path) -> dict[str, Any]:
    try:
        return standalone_schemas(directory)
    except KeyError as exc:  # a reference to a type no file defines
        raise EvolutionError(f"{directory}: {exc.args[0]}") from None
    except ValueError as exc:
        raise EvolutionError(str(exc)) from None


def compare(
    name: str, reader_json: Any, writer_json: Any, direction: Direction
) -> list[Incompatibility]:
    """Every reason ``reader_json`` cannot read what ``writer_json`` wrote."""
    reader = avro.schema.parse(json.dumps(reader_json))
    writer = avro.schema.parse(json.dumps(writer_json))
    found: list[tuple[str, str, str]] = []
    with _recording(found):
        result = _Checker().get_compatibility(reader, writer)
    if result.compatibility is not SchemaCompatibilityType.incompatible:
        return []
    kinds = {kind.value for kind in result.incompatibilities}
    seen: set[tuple[str, str, str]] = set()
    out = []
    for kind, message, location in found:
        final = kind in kinds and message in result.messages and location in result.locations
        if final and (kind, message, location) not in seen:
            seen.add((kind, message, location))
            path = _field_path(reader, location)
            out.append(Incompatibility(name, direction, location, path, kind, message))
    if not out:  # never expected; still say something rather than pass a break
        for message in sorted(result.messages):
            out.append(Incompatibility(name, direction, "/", "", "incompatible", message))
    return out


def check(
    schema_dir: Path = SCHEMA_DIR,
    released_dir: Path = RELEASED_DIR,
    *,
    version: str | None = None,
    accepted_file: Path | None = None,
) -> EvolutionReport:
    """Compare every schema in ``schema_dir`` with the release ``version`` (the latest in
    ``released_dir`` by default), honouring the acceptances in ``accepted_file``."""
    version = version or latest_release(released_dir)
    old_dir = released_dir / version
    if not old_dir.is_dir():
        raise EvolutionError(f"no released schema set {version} in {released_dir}")
    old, new = _standalone(old_dir), _standalone(schema_dir)
    acceptances = read_acceptances(accepted_file or released_dir / ACCEPTED_FILE)

    found: list[Incompatibility] = []
    for name in sorted(old):
        if name not in new:
            found.append(
                Incompatibility(
                    name,
                    "backward",
                    "/",
                    "",
                    "removed",
                    f"no {name}.avsc any more; messages written with it cannot be read",
                )
            )
            continue
        try:
            found += compare(name, new[name], old[name], "backward")
            found += compare(name, old[name], new[name], "forward")
        except avro.errors.AvroException as exc:
            raise EvolutionError(f"{name}: Avro cannot parse it ({exc})") from None

    breaks, accepted = [], []
    used: set[Acceptance] = set()
    for item in found:
        cover = next((a for a in acceptances if a.covers(item, version)), None)
        if cover is None:
            breaks.append(item)
        else:
            accepted.append((item, cover))
            used.add(cover)
    return EvolutionReport(
        released=version,
        checked=len(new),
        added=sorted(set(new) - set(old)),
        breaks=breaks,
        accepted=accepted,
        unused=[a for a in acceptances if a not in used],
    )


def release(version: str, schema_dir: Path = SCHEMA_DIR, released_dir: Path = RELEASED_DIR) -> Path:
    """Snapshot the current schemas as release ``version``; an existing or older version is
    refused, as a release is a fixed point that later schemas are checked against."""
    if not _VERSION.match(version):
        raise EvolutionError(f"version {version!r} is not MAJOR.MINOR.PATCH")
    target = released_dir / version
    if target.exists():
        raise EvolutionError(f"schema release {version} already exists in {released_dir}")
    versions = released_versions(released_dir)
    if versions and _version_key(version) <= _version_key(versions[-1]):
        raise EvolutionError(f"version {version} is not newer than the last release {versions[-1]}")
    sources = sorted(schema_dir.glob("*.avsc"))
    if not sources:
        raise EvolutionError(f"no .avsc files in {schema_dir}")
    _standalone(schema_dir)  # every reference resolves: a release must stand alone
    target.mkdir(parents=True)
    for source in sources:
        shutil.copy2(source, target / source.name)
    return target
