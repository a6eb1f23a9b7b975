"""An agency's records from a folder of CSV exports, read once at start-up."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from adapters.kit.matching import ExportFile, ExportFolder
from schemas.models import Subject

__all__ = ["CsvSource"]


@dataclass(frozen=True)
class CsvSource:
    """A folder of CSV files, one per kind of record (columns in the agency's
    ``data/README.md``): ``mash adapter NAME --data DIR``."""

    folder: Path

    def open(self, kinds: Sequence[ExportFile]) -> _CsvView:
        # ExportFolder checks every file and column at once (ExportError, one line each).
        return _CsvView(ExportFolder(self.folder, kinds))


@dataclass(frozen=True)
class _CsvView:
    export: ExportFolder
    fixed: bool = True

    def records_for(self, subjects: Sequence[Subject]) -> AbstractContextManager[ExportFolder]:
        return nullcontext(self.export)
