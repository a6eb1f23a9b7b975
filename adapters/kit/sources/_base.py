"""What every record source offers an agency: the protocols behind ``adapters.kit.sources``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from adapters.kit.matching import CsvRow, ExportFile, PeopleExport
from adapters.kit.sources.csv import CsvSource
from mash.errors import MashError
from schemas.models import InformationRequest, Subject

__all__ = ["AgencyIndex", "RecordSource", "RecordView", "Records", "SourceUnavailable"]

I = TypeVar("I")  # noqa: E741 - an agency's index, whatever it builds from its records


class SourceUnavailable(MashError, ConnectionError):
    """The records cannot be read just now (the database is down or unreachable).

    A ``ConnectionError``, so the adapter's consumer holds the request and retries it rather
    than spending its delivery limit: the outage is the database's, not the message's. The
    message names the query and the kind of failure only, never a parameter (a child's name).
    """


class Records(Protocol):
    """One consistent set of an agency's records, read as its CSV export is read: the kinds
    of record by their export file's name (``people.csv``), each row's values as text."""

    def has(self, name: str) -> bool: ...

    def rows(self, name: str) -> list[CsvRow]: ...

    def people(self, name: str, id_column: str) -> PeopleExport: ...


class RecordView(Protocol):
    """A source opened for one agency's kinds of record and checked."""

    @property
    def fixed(self) -> bool:
        """True when every request sees the same records (an export read once), so the
        agency builds its index once; False when they are read for each request."""
        ...

    def records_for(self, subjects: Sequence[Subject]) -> AbstractContextManager[Records]:
        """Every record the request about ``subjects`` may need (all of them, for an export),
        read while the context is open (a database's transaction)."""
        ...


class RecordSource(Protocol):
    """Where an agency's records come from, before it is opened."""

    def open(self, kinds: Sequence[ExportFile]) -> RecordView:
        """Check the source holds every kind with its columns; raise
        :class:`~adapters.kit.matching.ExportError` with one line per problem if not."""
        ...


class AgencyIndex(Generic[I]):
    """An agency's index over its records (its people matcher, its findings by person),
    built by ``build`` from whatever source it was given: once for an export read at
    start-up, and for each request from a database, so that answers follow its records.

    ``source`` is what ``mash adapter NAME`` passes: ``None`` (the built-in fictional
    export in ``default``), a folder of CSV files (``--data DIR``) or any
    :class:`RecordSource` (``--source sql --config FILE``).
    """

    def __init__(
        self,
        source: Path | RecordSource | None,
        *,
        default: Path,
        kinds: Sequence[ExportFile],
        build: Callable[[Records], I],
    ) -> None:
        if source is None or isinstance(source, Path):
            source = CsvSource(source or default)
        self._view = source.open(kinds)
        self._build = build
        # Built now, so a bad value in an export stops the adapter at start-up.
        self._fixed: I | None = None
        if self._view.fixed:
            with self._view.records_for(()) as records:
                self._fixed = build(records)

    @property
    def view(self) -> RecordView:
        return self._view

    def close(self) -> None:
        """Release what the source holds open (a database's pooled connections)."""
        dispose = getattr(self._view, "dispose", None)
        if dispose is not None:
            dispose()

    def for_request(self, request: InformationRequest) -> I:
        if self._fixed is not None:
            return self._fixed
        with self._view.records_for(request.subjects) as records:
            return self._build(records)
