"""Schemas added by installed packages (``mash.schemas``): where they are found, and a name
two files define is refused rather than silently replaced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.registry import SCHEMA_DIR, SchemaRegistry, SchemaSourceError, _source_directory


def write_schema(folder: Path, doc: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "uk.mash.WidgetFindings.avsc"
    record = {"type": "record", "name": "WidgetFindings", "namespace": "uk.mash", "doc": doc}
    path.write_text(json.dumps({**record, "fields": []}), encoding="utf-8")
    return path


def test_an_entry_names_a_package_or_a_folder_inside_it() -> None:
    assert _source_directory("schemas") == SCHEMA_DIR
    assert _source_directory("adapters.police:data") == SCHEMA_DIR.parent / "adapters/police/data"


@pytest.mark.parametrize("value", ["no_such_package_here", "schemas:no/such/folder"])
def test_an_entry_that_names_no_folder_is_refused(value: str) -> None:
    with pytest.raises(SchemaSourceError):
        _source_directory(value)


def test_an_added_schema_may_refer_to_the_hubs_types(tmp_path: Path) -> None:
    extra = tmp_path / "uk.mash.WidgetCase.avsc"
    extra.write_text(
        json.dumps(
            {
                "type": "record",
                "name": "WidgetCase",
                "namespace": "uk.mash",
                "fields": [{"name": "subject", "type": "uk.mash.Subject"}],
            }
        ),
        encoding="utf-8",
    )
    registry = SchemaRegistry()

    registry.add_files([*sorted(SCHEMA_DIR.glob("*.avsc")), extra])

    assert "uk.mash.WidgetCase" in registry.names()


def test_a_name_defined_in_two_files_is_refused(tmp_path: Path) -> None:
    first = write_schema(tmp_path / "one", "first")
    second = write_schema(tmp_path / "two", "second")

    with pytest.raises(ValueError, match=r"uk\.mash\.WidgetFindings is defined in both"):
        SchemaRegistry().add_files([first, second])
