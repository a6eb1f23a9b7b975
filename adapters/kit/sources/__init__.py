"""Where an agency's records come from: a folder of CSV exports, or the agency's database.

::

    RecordSource            open(kinds) -> RecordView, checked: ExportError, one line a problem
    ├── CsvSource           a folder of CSV files, read once at start-up     (sources/csv.py)
    └── SqlSource           the agency's own queries, for each request,      (sources/sql.py)
                            read-only, every parameter bound

    RecordView.records_for(subjects) -> Records   has(name) / rows(name) / people(name, id)
    AgencyIndex             an agency's index built from its Records: once, or per request
    SourceUnavailable       (ConnectionError) the database is down: the request is held

An agency reads its records the same way from either (``Records``: kinds of record by their
export file's name, rows of text as a CSV cell holds), so the matching and the answer are the
same whichever it is given. ``sources.sql`` is imported only when asked for, so an adapter on
CSV exports needs no database library loaded.
"""

from __future__ import annotations

from adapters.kit.sources._base import (
    AgencyIndex,
    Records,
    RecordSource,
    RecordView,
    SourceUnavailable,
)
from adapters.kit.sources.csv import CsvSource

__all__ = [
    "AgencyIndex",
    "CsvSource",
    "RecordSource",
    "RecordView",
    "Records",
    "SourceUnavailable",
    "reads_sources",
]


def reads_sources(factory: object) -> bool:
    """Whether an agency's class takes any :class:`RecordSource` (it declares the kinds of
    record it reads as ``record_kinds``), not only a folder of CSV exports."""
    return bool(getattr(factory, "record_kinds", None))
