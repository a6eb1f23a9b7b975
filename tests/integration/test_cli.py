"""The ``mash`` command as a user meets it: one clear line and a non-zero exit for bad input,
a reference number for a good contact."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.support import Stack

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contacts"


async def mash(*args: str, prefix: str = "cli-unused") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        *args,
        env={**os.environ, "MASH_PREFIX": prefix},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def contact_json() -> dict[str, object]:
    return {
        "brag": "GREEN",
        "referrer": {"kind": "SCHOOL", "organisation": "Fictional Primary"},
        "concerns_summary": "Attendance has fallen to 70% this term.",
        "consent": "GIVEN",
        "lawful_basis": "CONSENT",
        "subjects": [
            {
                "subject_id": "S1",
                "role": "CHILD",
                "given_name": "Test",
                "family_name": "Pupil",
                "date_of_birth": "2015-09-01",
                "postcode": "ZX9 9ZZ",
            }
        ],
    }


async def test_help_lists_hub_adapter_contact_and_demo() -> None:
    code, out, _ = await mash("--help")
    assert code == 0
    for command in ("hub", "adapter", "contact", "demo"):
        assert command in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not valid JSON at line 1"),
        ("[]", "a contact file must hold one JSON object"),
        (None, "cannot read"),
    ],
    ids=["malformed-json", "not-an-object", "missing-file"],
)
async def test_bad_contact_file_gets_one_line_and_exit_2(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "contact.json"
    if content is not None:
        path.write_text(content)
    code, out, err = await mash("contact", "submit", str(path))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert expected in err


async def test_contact_with_bad_nhs_number_is_refused_without_echoing_it(tmp_path: Path) -> None:
    data = contact_json()
    data["subjects"][0]["nhs_number"] = "1234567890"  # type: ignore[index]
    path = tmp_path / "contact.json"
    path.write_text(json.dumps(data))
    code, _, err = await mash("contact", "submit", str(path))
    assert code == 2
    assert "subjects.0.nhs_number: Value error, NHS number fails its check digit" in err
    assert "1234567890" not in err


async def test_bad_rating_is_refused(stack: Stack) -> None:
    code, _, err = await mash("contact", "rerate", "MASH-2026-000001", "purple")
    assert code == 2
    assert "unknown rating 'purple'" in err


async def test_submit_prints_reference_and_rerate_reports_new_deadline(
    stack: Stack, tmp_path: Path
) -> None:
    await stack.hub()
    path = tmp_path / "contact.json"
    path.write_text(json.dumps(contact_json()))

    code, out, err = await mash("contact", "submit", str(path), prefix=stack.settings.prefix)
    assert code == 0, err
    ref = out.strip()
    assert ref.startswith("MASH-") and len(ref) == len("MASH-2026-000001")

    code, out, err = await mash("contact", "rerate", ref, "red", prefix=stack.settings.prefix)
    assert code == 0, err
    assert f"{ref} is now RED" in out

    code, _, err = await mash(
        "contact", "rerate", "MASH-2000-000009", "red", prefix=stack.settings.prefix
    )
    assert code == 1
    assert "unknown reference MASH-2000-000009" in err


async def test_submit_without_a_running_hub_says_it_is_queued(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "contact.json"
    path.write_text(json.dumps(contact_json()))
    code, out, err = await mash(
        "contact", "submit", str(path), "--timeout", "1", prefix=stack.settings.prefix
    )
    assert code == 3
    contact_id = out.strip()
    assert contact_id  # what was queued, on stdout where a reference would be
    assert f"queued as contact {contact_id}, but no hub answered within 1s" in err

    # Once a hub runs, submitting the same file again is the same contact: its reference.
    await stack.hub()
    code, out, err = await mash("contact", "submit", str(path), prefix=stack.settings.prefix)
    assert code == 0, err
    assert out.strip().startswith("MASH-")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("audit", "show", "MASH-2026-424242"), "no audit entries for MASH-2026-424242"),
        # No keeper's store here (MASH_RESTRICTED_STORE): the restricted file is not the hub's.
        (("restricted", "read", "MASH-2026-424242"), "no restricted file at"),
        (("keys", "retire", "nobody-20260101-000000"), "no key nobody-20260101-000000"),
        (("keys", "generate", "police", "--purpose", "secret"), "unknown purpose 'secret'"),
        (("adapter", "probation"), "No such command 'probation'"),
    ],
    ids=[
        "audit-unknown-ref",
        "restricted-unknown-ref",
        "retire-unknown",
        "bad-purpose",
        "no-adapter",
    ],
)
async def test_unknown_references_and_bad_arguments_get_one_clear_line(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], expected: str
) -> None:
    await stack.hub()  # so the hub database exists
    monkeypatch.setenv("MASH_DB_PATH", str(stack.settings.db_path))
    code, _, err = await mash(*args, prefix=stack.settings.prefix)
    assert code != 0
    assert expected in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"this is not a database at all, just text" * 100, "not a usable hub database"),
        (None, "written by a newer mash-hub"),
    ],
    ids=["corrupt", "newer-schema"],
)
async def test_hub_refuses_to_start_on_a_corrupt_or_newer_database(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    db = tmp_path / "hub.sqlite3"
    if content is None:
        with sqlite3.connect(db) as connection:
            connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            connection.execute("INSERT INTO meta VALUES ('schema_version', '999')")
    else:
        db.write_bytes(content)
    db.chmod(0o600)  # owner-only, as the hub requires: the content is what is refused here
    before = db.read_bytes()
    code, _, err = await mash("hub", "--db", str(db))
    assert code == 1
    assert err.count("\n") == 1 and expected in err
    assert db.read_bytes() == before  # refused, not started empty over it


async def test_a_failed_demo_keeps_the_log_folder_it_named() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        "demo",
        "--timeout",
        "1",  # far too short for every packet: the demo fails, as one might in the field
        env={**os.environ, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 150)
    text = out.decode()
    assert process.returncode == 1, text[-2000:]
    named = re.search(r"logs in (\S+)", text)
    kept = re.search(r"logs kept in (\S+)", text)
    assert named is not None and kept is not None, text[-2000:]
    folder = Path(kept[1])
    try:
        assert folder == Path(named[1])
        assert (folder / "hub.log").stat().st_size > 0  # the folder it named is there to read
    finally:
        shutil.rmtree(folder, ignore_errors=True)


HEAVY = ("aio_pika", "aiormq", "fastavro", "cryptography", "pydantic", "structlog", "adapters")


async def test_help_imports_nothing_heavy() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-X",
        "importtime",
        "-m",
        "mash",
        "--help",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    assert "keys" in out.decode() and "status" in out.decode()  # lazy groups are listed
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in err.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "mash" in imported
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_lazily_listed_commands_match_the_real_ones() -> None:
    import typer

    from mash import cli, ops_cli

    holder = typer.Typer()
    ops_cli.register(holder)
    registered = {c.name or c.callback.__name__ for c in holder.registered_commands if c.callback}
    registered |= {g.name for g in holder.registered_groups if g.name}
    assert registered <= set(cli._LAZY), "a new command in ops_cli needs a line in cli._LAZY"
    for name, (_, listed_help) in cli._LAZY.items():
        command = cli.load_command(name)
        assert command.name == name
        first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
        assert listed_help == first_paragraph, name


@pytest.mark.parametrize("command", [["dlq", "list"], ["report"], ["audit", "verify"], ["status"]])
async def test_an_unusable_hub_database_is_one_line_for_every_operator_command(
    tmp_path: Path, command: list[str]
) -> None:
    from tests.ops_support import mash_cli

    folder = tmp_path / "var"
    folder.mkdir(mode=0o700)
    database = folder / "hub.sqlite3"
    database.write_bytes(b"not a database, whatever its name says" * 10)
    database.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASH_")}
    env.update(MASH_DB_PATH=str(database), MASH_PREFIX=f"unusable-{tmp_path.name[-8:]}")

    code, _out, err = await mash_cli(*command, env=env)

    assert code != 0
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {database}: not a usable hub database (file is not a database)"]
