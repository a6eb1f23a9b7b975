"""The schema registry: every ``.avsc`` file in ``schemas/``, and in the folders installed
packages add through the ``mash.schemas`` entry point group (an agency's findings record),
indexed by name and fingerprint.

Files are named after the full name of the type they define (``uk.mash.Contact.avsc``) and
refer to each other's types by full name. The registry inlines those references so that each
named schema stands alone: its Parsing Canonical Form, and so its CRC-64-AVRO fingerprint, is
then the one any Avro implementation computes for the same schema.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import fastavro

from mash.errors import MashError

__all__ = [
    "ENTRY_POINT_GROUP",
    "SCHEMA_DIR",
    "RegisteredSchema",
    "SchemaRegistry",
    "SchemaSource",
    "SchemaSourceError",
    "crc64_avro",
    "default_registry",
    "installed_schema_sources",
    "standalone_schemas",
]

SCHEMA_DIR = Path(__file__).resolve().parent
# Installed packages add schemas (an agency's findings record) through this entry point
# group; each entry names a package, or ``package:folder`` for a folder inside it.
ENTRY_POINT_GROUP = "mash.schemas"

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_EMPTY64 = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY64 & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The Rabin fingerprint the Avro specification names CRC-64-AVRO."""
    fp = _EMPTY64
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


@dataclass(frozen=True)
class RegisteredSchema:
    name: str
    fingerprint: bytes  # 8 bytes, little-endian, as written after the C3 01 marker
    parsed: Any = field(repr=False)  # fastavro's parsed schema
    canonical: str = field(repr=False)
    source: Path | None = None


def _full_name(node: Mapping[str, Any], namespace: str | None) -> str:
    name = str(node["name"])
    if "." in name:
        return name
    ns = node.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def _named_types(node: Any, namespace: str | None) -> Iterator[tuple[str, Any]]:
    """Every named type a schema defines, nested ones included, so each is registered."""
    if isinstance(node, list):
        for branch in node:
            yield from _named_types(branch, namespace)
    elif isinstance(node, dict):
        kind = node.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            full = _full_name(node, namespace)
            # Standing alone, a nested type must carry the namespace it inherited.
            yield full, {**{k: v for k, v in node.items() if k != "namespace"}, "name": full}
            ns = full.rpartition(".")[0] or None
            for fld in node.get("fields", ()):
                yield from _named_types(fld["type"], ns)
        elif kind == "array":
            yield from _named_types(node["items"], namespace)
        elif kind == "map":
            yield from _named_types(node["values"], namespace)
        elif isinstance(kind, (dict, list)):
            yield from _named_types(kind, namespace)


def _inline(node: Any, library: Mapping[str, Any], namespace: str | None, seen: set[str]) -> Any:
    """Replace references to types defined in other files by their definitions (first use
    only, as Avro requires a name be defined once per schema)."""
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return node
        full = node if "." in node else (f"{namespace}.{node}" if namespace else node)
        if full in seen:
            return full
        if full not in library:
            raise KeyError(f"unknown Avro type {node!r}")
        return _inline(library[full], library, namespace, seen)
    if isinstance(node, list):
        return [_inline(branch, library, namespace, seen) for branch in node]
    if isinstance(node, dict):
        kind = node.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            full = _full_name(node, namespace)
            seen.add(full)
            ns = full.rpartition(".")[0] or None
            out = dict(node)
            if kind in ("record", "error"):
                out["fields"] = [
                    {**fld, "type": _inline(fld["type"], library, ns, seen)}
                    for fld in node["fields"]
                ]
            return out
        if kind == "array":
            return {**node, "items": _inline(node["items"], library, namespace, seen)}
        if kind == "map":
            return {**node, "values": _inline(node["values"], library, namespace, seen)}
        return {**node, "type": _inline(kind, library, namespace, seen)}
    raise TypeError(f"not an Avro schema node: {node!r}")


@dataclass(frozen=True)
class _Library:
    """Every named type defined in a set of files, and the file that defines it."""

    types: dict[str, Any]
    sources: dict[str, Path]
    own: dict[Path, str]  # each file's own (outermost) type

    @classmethod
    def read(cls, paths: Iterable[Path]) -> _Library:
        library = cls({}, {}, {})
        for path in paths:
            try:
                node = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path}: not a readable Avro schema ({exc})") from exc
            for full, named in _named_types(node, None):
                if full in library.sources and library.sources[full] != path:
                    # Two packages defining one name would make messages mean different
                    # things depending on which file was read last.
                    raise ValueError(
                        f"{full} is defined in both {library.sources[full]} and {path}"
                    )
                library.types[full] = named
                library.sources[full] = path
                library.own.setdefault(path, full)
        return library

    def inline(self, full: str) -> Any:
        return _inline(self.types[full], self.types, None, set())


class SchemaRegistry:
    """Named schemas by full name (the current version) and by fingerprint (every version
    known, so a reader can resolve an older writer's message against its own schema)."""

    def __init__(self) -> None:
        self._current: dict[str, RegisteredSchema] = {}
        self._by_fingerprint: dict[bytes, RegisteredSchema] = {}

    @classmethod
    def from_directory(cls, *directories: Path) -> SchemaRegistry:
        registry = cls()
        for directory in directories:
            registry.add_files(sorted(directory.glob("*.avsc")))
        return registry

    def add_files(self, paths: Iterable[Path], *, current: bool = True) -> None:
        library = _Library.read(paths)
        for full in library.types:
            self.add(library.inline(full), source=library.sources[full], current=current)

    def add(self, schema: Any, *, source: Path | None = None, current: bool = True) -> None:
        parsed = fastavro.parse_schema(schema, _write_hint=False)
        canonical = fastavro.schema.to_parsing_canonical_form(parsed)
        fingerprint = crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little")
        name = parsed["name"] if isinstance(parsed, dict) else str(parsed)
        entry = RegisteredSchema(name, fingerprint, parsed, canonical, source)
        self._by_fingerprint.setdefault(fingerprint, entry)
        if current:
            self._current[name] = entry

    def current(self, name: str) -> RegisteredSchema:
        try:
            return self._current[name]
        except KeyError:
            raise KeyError(f"no schema named {name!r} in the registry") from None

    def by_fingerprint(self, fingerprint: bytes) -> RegisteredSchema | None:
        return self._by_fingerprint.get(fingerprint)

    def names(self) -> list[str]:
        return sorted(self._current)


def standalone_schemas(directory: Path) -> dict[str, Any]:
    """Each ``.avsc`` file's own type in ``directory``, by full name, with every reference to
    another file's type inlined: JSON that any Avro implementation can parse on its own."""
    library = _Library.read(sorted(directory.glob("*.avsc")))
    return {full: library.inline(full) for full in library.own.values()}


class SchemaSourceError(MashError, ValueError):
    """A ``mash.schemas`` entry point that does not name a folder of schemas."""


@dataclass(frozen=True)
class SchemaSource:
    """A folder of ``.avsc`` files an installed package adds through ``mash.schemas``."""

    name: str
    directory: Path
    distribution: str  # the package that declared it, so a clash can be traced


def _source_directory(value: str) -> Path:
    package, _, folder = value.partition(":")
    try:
        root = importlib.resources.files(package.strip())
    except (ImportError, TypeError) as exc:
        raise SchemaSourceError(f"cannot import {package.strip()!r} ({exc})") from None
    # A folder on disk: installed and editable packages both are, and the registry reads
    # files by path so that each schema records where it came from.
    directory = Path(str(root.joinpath(*folder.strip().split("/")) if folder.strip() else root))
    if not directory.is_dir():
        raise SchemaSourceError(f"{directory} is not a folder")
    return directory


def installed_schema_sources() -> list[SchemaSource]:
    """Every installed ``mash.schemas`` entry, its folder resolved."""
    sources = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        distribution = ep.dist.name if ep.dist is not None else "unknown package"
        try:
            directory = _source_directory(ep.value)
        except SchemaSourceError as exc:
            raise SchemaSourceError(
                f"{ENTRY_POINT_GROUP} entry {ep.name!r} of {distribution}: {exc}"
            ) from None
        sources.append(SchemaSource(ep.name, directory, distribution))
    return sources


_DEFAULT: SchemaRegistry | None = None


def default_registry() -> SchemaRegistry:
    """The registry built from ``schemas/`` and every installed ``mash.schemas`` folder
    (loaded once per process). All files are read together, so an added schema may refer to
    the hub's own types (``uk.mash.Subject``) by name."""
    global _DEFAULT
    if _DEFAULT is None:
        folders = [SCHEMA_DIR]
        folders += [s.directory for s in installed_schema_sources() if s.directory != SCHEMA_DIR]
        registry = SchemaRegistry()
        registry.add_files(p for folder in folders for p in sorted(folder.glob("*.avsc")))
        _DEFAULT = registry
    return _DEFAULT
