"""`mash schemas check` lets compatible schema changes through and stops breaking ones with a
line naming each incompatibility; `mash schemas release` snapshots a schema set."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from mash.cli import app
from schemas.evolution import RELEASED_DIR
from schemas.registry import SCHEMA_DIR

Edit = Callable[[str, Callable[[dict[str, Any]], None]], None]


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of today's schemas and of the released sets, free to change."""
    schemas, released = tmp_path / "schemas", tmp_path / "released"
    schemas.mkdir()
    for path in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(path, schemas / path.name)
    shutil.copytree(RELEASED_DIR, released)
    return schemas, released


@pytest.fixture
def edit(dirs: tuple[Path, Path]) -> Edit:
    def change(name: str, how: Callable[[dict[str, Any]], None]) -> None:
        path = dirs[0] / f"{name}.avsc"
        schema = json.loads(path.read_text())
        how(schema)
        path.write_text(json.dumps(schema, indent=2))

    return change


def run_check(dirs: tuple[Path, Path], *extra: str) -> Result:
    schemas, released = dirs
    return CliRunner().invoke(
        app, ["schemas", "check", "--schemas", str(schemas), "--released", str(released), *extra]
    )


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def test_the_current_schemas_are_compatible_with_the_last_release() -> None:
    result = CliRunner().invoke(app, ["schemas", "check"])

    assert result.exit_code == 0, result.output
    assert "compatible both ways with release 0.1.0" in result.output


def test_removing_a_field_without_a_default_breaks_old_readers(
    dirs: tuple[Path, Path], edit: Edit
) -> None:
    edit(
        "uk.mash.Referrer",
        lambda s: s.update(fields=[f for f in s["fields"] if f["name"] != "kind"]),
    )

    result = run_check(dirs)

    assert result.exit_code == 1
    assert (
        "incompatible: uk.mash.Referrer forward (released reader, new writer) at /fields/0"
        " (kind): reader field missing default value: kind"
    ) in result.output


def test_changing_a_field_type_breaks_both_directions(dirs: tuple[Path, Path], edit: Edit) -> None:
    edit("uk.mash.ScreeningPacket", lambda s: field(s, "version").update(type="string"))

    result = run_check(dirs)

    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "uk.mash.ScreeningPacket" in line]
    assert any("backward" in line and "(version): type mismatch" in line for line in lines)
    assert any("forward" in line and "(version): type mismatch" in line for line in lines)


def test_a_break_inside_a_nested_record_is_located_at_its_field(
    dirs: tuple[Path, Path], edit: Edit
) -> None:
    edit("uk.mash.Referrer", lambda s: field(s, "organisation").update(type=["null", "int"]))

    result = run_check(dirs)

    assert result.exit_code == 1
    assert "uk.mash.Contact backward" in result.output
    assert "(referrer.organisation): missing union branch" in result.output


def test_adding_an_enum_symbol_without_an_enum_default_breaks_old_readers(
    dirs: tuple[Path, Path], edit: Edit
) -> None:
    edit("uk.mash.Brag", lambda s: s["symbols"].append("PURPLE"))

    result = run_check(dirs)

    assert result.exit_code == 1
    assert (
        "incompatible: uk.mash.Brag forward (released reader, new writer) at /symbols:"
        " missing enum symbols: {'PURPLE'}"
    ) in result.output
    assert "uk.mash.Brag backward" not in result.output


def test_adding_an_optional_field_with_a_default_passes(
    dirs: tuple[Path, Path], edit: Edit
) -> None:
    edit(
        "uk.mash.Contact",
        lambda s: s["fields"].append(
            {"name": "interpreter_needed", "type": ["null", "string"], "default": None}
        ),
    )

    result = run_check(dirs)

    assert result.exit_code == 0, result.output


def test_a_new_schema_passes_and_is_named(dirs: tuple[Path, Path]) -> None:
    (dirs[0] / "uk.mash.ProbationFindings.avsc").write_text(
        json.dumps({"type": "record", "name": "ProbationFindings", "namespace": "uk.mash",
                    "fields": [{"name": "on_licence", "type": "boolean"}]})
    )  # fmt: skip

    result = run_check(dirs)

    assert result.exit_code == 0, result.output
    # Among the schemas added since the release (social care's, until the next release).
    new = result.output.split(" new (", 1)[1]
    assert "uk.mash.ProbationFindings" in new


def test_removing_a_schema_is_a_break(dirs: tuple[Path, Path]) -> None:
    (dirs[0] / "uk.mash.HousingFindings.avsc").unlink()

    result = run_check(dirs)

    assert result.exit_code == 1
    assert "uk.mash.HousingFindings backward" in result.output
    assert "removed" in result.output


def test_a_reviewed_acceptance_lets_that_break_through_and_no_other(
    dirs: tuple[Path, Path], edit: Edit
) -> None:
    edit("uk.mash.Brag", lambda s: s["symbols"].append("PURPLE"))
    edit("uk.mash.HubEvent", lambda s: field(s, "event_id").update(type="int"))
    (dirs[1] / "accepted.toml").write_text(
        "[[accepted]]\n"
        'schema = "uk.mash.Brag"\n'
        'direction = "forward"\n'
        'released = "0.1.0"\n'
        'reason = "every reader upgraded first"\n'
    )

    result = run_check(dirs)

    assert result.exit_code == 1
    assert "accepted: uk.mash.Brag forward" in result.output
    assert "every reader upgraded first" in result.output
    assert "incompatible: uk.mash.Brag" not in result.output
    assert "incompatible: uk.mash.HubEvent" in result.output  # accepted for Brag only


def test_an_acceptance_against_another_release_does_not_apply(
    dirs: tuple[Path, Path], edit: Edit
) -> None:
    edit("uk.mash.Brag", lambda s: s["symbols"].append("PURPLE"))
    (dirs[1] / "accepted.toml").write_text(
        '[[accepted]]\nschema = "uk.mash.Brag"\ndirection = "forward"\n'
        'released = "0.0.9"\nreason = "an older decision"\n'
    )

    result = run_check(dirs)

    assert result.exit_code == 1
    assert "incompatible: uk.mash.Brag forward" in result.output
    assert "matches no break; remove it" in result.output


def test_an_unreadable_acceptance_file_is_refused_in_one_line(dirs: tuple[Path, Path]) -> None:
    (dirs[1] / "accepted.toml").write_text('[[accepted]]\nschema = "uk.mash.Brag"\n')

    result = run_check(dirs)

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {dirs[1] / 'accepted.toml'}: acceptance 1 lacks direction, released, reason"
    ]


def test_release_snapshots_the_schemas_and_refuses_an_existing_version(
    dirs: tuple[Path, Path], edit: Edit
) -> None:
    schemas, released = dirs
    edit("uk.mash.Brag", lambda s: s["symbols"].append("PURPLE"))
    args = ["--schemas", str(schemas), "--released", str(released)]

    made = CliRunner().invoke(app, ["schemas", "release", "0.2.0", *args])
    again = CliRunner().invoke(app, ["schemas", "release", "0.2.0", *args])
    older = CliRunner().invoke(app, ["schemas", "release", "0.1.5", *args])

    assert made.exit_code == 0, made.output
    assert sorted(p.name for p in (released / "0.2.0").iterdir()) == sorted(
        p.name for p in schemas.glob("*.avsc")
    )
    assert again.exit_code == 2
    assert "already exists" in again.output
    assert older.exit_code == 2
    assert "not newer than the last release 0.2.0" in older.output
    # The new release is the baseline now: the change it holds is no longer a break.
    assert run_check(dirs).exit_code == 0
