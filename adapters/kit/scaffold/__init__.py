"""``mash adapter new NAME``: a new agency adapter as a package of its own, ready to install.

The package it writes holds the agency's lookup over a small fictional CSV export, its
findings record (``uk.mash.<Name>Findings``, an Avro schema and the pydantic models), its
``mash.adapters`` and ``mash.schemas`` entry points, and tests: the lookup on its own, and
the adapter contract (:mod:`adapters.kit.contract`) against the real broker. Installed as it
is written, every test passes; the agency's developer then swaps in their own records.

The agency reads either source (:mod:`adapters.kit.sources`): its CSV folder, or its own
database through a configuration of queries. ``source="sql"`` (``mash adapter new NAME
--source sql``) also writes that configuration's sample (``sql/source.toml``), the fictional
database it reads (``sql/schema.sql``) and a test that builds it in SQLite and checks every
answer is the one the CSV export gives.

Templates are the ``templates/`` folder beside this module (package data), and
``templates-sql/`` for the SQL source's extra files, with ``{{name}}``,
``{{Name}}``, ``{{NAME}}``, ``{{title}}``, ``{{Title}}``, ``{{package}}`` and
``{{distribution}}`` filled in, in file contents and in file names; ``package/`` becomes the
package's own folder and ``.tmpl`` is dropped.
"""

from __future__ import annotations

import keyword
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from adapters.registry import data_variable
from mash.errors import MashError

__all__ = ["SOURCES", "AdapterNames", "ScaffoldError", "adapter_names", "new_adapter"]

SOURCES = ("csv", "sql")
"""What ``mash adapter new --source`` offers: the records from CSV exports, or from the
agency's database too (a sample configuration of queries and a test of it)."""

# Words joined by single hyphens or underscores, as the built-in "social-care": the agency
# keeps the name as given (queues, broker user, entry point, `mash adapter NAME`), and the
# Python package and environment variable read each separator as an underscore.
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_MAX_LENGTH = 30
# Names with another meaning on the broker (hub roles) or on the command line.
_RESERVED = frozenset({"hub", "screening", "restricted", "operator", "list", "new", "kit", "dead"})


class ScaffoldError(MashError, ValueError):
    """The name or the destination cannot be used; the message says why, in one line."""


@dataclass(frozen=True)
class AdapterNames:
    """One agency's name in each place it appears."""

    name: str  # the agency: queues, broker user, `mash adapter NAME`, entry point
    variable: str  # its export folder's environment variable: MASH_YOUTH_JUSTICE_DATA
    class_name: str  # CamelCase, for classes and the Avro record name
    title: str  # in prose: "youth justice"
    package: str  # the import package
    distribution: str  # the pip package

    def substitutions(self) -> dict[str, str]:
        return {
            "{{name}}": self.name,
            "{{Name}}": self.class_name,
            "{{NAME}}": self.variable.removeprefix("MASH_").removesuffix("_DATA"),
            "{{title}}": self.title,
            "{{Title}}": self.title[:1].upper() + self.title[1:],
            "{{package}}": self.package,
            "{{distribution}}": self.distribution,
        }


def adapter_names(name: str, installed: Iterable[str] = ()) -> AdapterNames:
    """Check ``name`` and derive the others; :class:`ScaffoldError` if it cannot be used."""
    if not _NAME.match(name):
        raise ScaffoldError(
            f"{name!r} is not a valid agency name: use lower-case letters and digits, words "
            "joined by single hyphens or underscores, starting with a letter (e.g. "
            "youth-justice)"
        )
    if len(name) > _MAX_LENGTH:
        raise ScaffoldError(f"{name!r} is longer than {_MAX_LENGTH} characters")
    words = re.split(r"[-_]", name)
    snake = "_".join(words)
    if snake in _RESERVED or keyword.iskeyword(snake):
        raise ScaffoldError(f"{name!r} is reserved; choose another agency name")
    for other in installed:
        # "youth-justice" and "youth_justice" would be one Python package and distribution.
        if "_".join(re.split(r"[-_]", other)) == snake:
            raise ScaffoldError(f"an adapter named {other!r} is already installed")
    return AdapterNames(
        name=name,
        variable=data_variable(name),
        class_name="".join(word.capitalize() for word in words),
        title=" ".join(words),
        package=f"mash_adapter_{snake}",
        distribution=f"mash-adapter-{'-'.join(words)}",
    )


def _templates(folder: str = "templates") -> Traversable:
    return files(__name__).joinpath(folder)


def _walk(
    folder: Traversable, parts: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _walk(entry, (*parts, entry.name))
        elif entry.name.endswith(".tmpl"):
            yield (*parts, entry.name.removesuffix(".tmpl")), entry.read_text(encoding="utf-8")


def _fill(text: str, substitutions: dict[str, str]) -> str:
    for token, value in substitutions.items():
        text = text.replace(token, value)
    return text


def new_adapter(
    name: str, parent: Path, installed: Iterable[str] = (), source: str = "csv"
) -> Path:
    """Write the adapter package for ``name`` as ``parent/<distribution>`` and return it;
    ``source="sql"`` adds the database configuration's sample and its test.

    Refuses a destination that exists; writes into a temporary folder beside it first, so a
    failure leaves nothing half-made.
    """
    if source not in SOURCES:
        raise ScaffoldError(f"--source must be {' or '.join(SOURCES)}, not {source!r}")
    names = adapter_names(name, installed)
    target = parent / names.distribution
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another --dir or remove it")
    if not parent.is_dir():
        raise ScaffoldError(f"{parent} is not a folder")
    substitutions = names.substitutions()
    staging = Path(tempfile.mkdtemp(prefix=f".{names.distribution}-", dir=parent))
    try:
        folders = [_templates()] + ([_templates("templates-sql")] if source == "sql" else [])
        for parts, text in (entry for folder in folders for entry in _walk(folder)):
            relative = [names.package if p == "package" else p for p in parts]
            path = staging.joinpath(*(_fill(p, substitutions) for p in relative))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_fill(text, substitutions), encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp's 0700 is for the staging only
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
