"""An agency points its adapter at its own export: ``mash adapter NAME --data DIR`` or
``MASH_<NAME>_DATA``. A bad folder is refused at start with one line per problem; a good one
is what the adapter answers from."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from adapters.police.agency import DATA_DIR as POLICE_DATA
from adapters.registry import data_variable
from hub.client import HubClient
from schemas.enums import MatchMethod, ResponseOutcome, SubjectRole
from schemas.models import Subject
from tests.support import Stack, make_contact


def start_adapter(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mash", "adapter", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def refused(*args: str, env: dict[str, str] | None = None) -> list[str]:
    process = start_adapter(*args, env=env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err.decode()
    assert out == b""
    assert b"Traceback" not in err
    return err.decode().splitlines()


def test_the_data_variable_is_named_after_the_agency() -> None:
    assert data_variable("police") == "MASH_POLICE_DATA"
    assert data_variable("social-care") == "MASH_SOCIAL_CARE_DATA"


def test_a_bad_export_folder_is_refused_with_one_line_per_problem(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    shutil.copytree(POLICE_DATA, folder)
    (folder / "call_outs.csv").unlink()
    risks = folder / "risk_adults.csv"
    header, *rows = risks.read_text(encoding="utf-8").splitlines()
    risks.write_text("\n".join([header.replace("risk_summary", "risk"), *rows]) + "\n")

    lines = refused("police", "--data", str(folder))

    assert lines == [
        f"error: police export: {folder / 'call_outs.csv'}: file not found",
        f"error: police export: {risks}, line 1: missing column(s) risk_summary",
    ]


def test_a_bad_row_is_refused_with_its_file_line_and_column_but_not_its_value(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "export"
    shutil.copytree(POLICE_DATA, folder)
    people = folder / "people.csv"
    header, first, *rows = people.read_text(encoding="utf-8").splitlines()
    cells = first.split(",")
    cells[header.split(",").index("date_of_birth")] = "31/02/2014"
    people.write_text("\n".join([header, ",".join(cells), *rows]) + "\n")

    lines = refused("police", "--data", str(folder))

    assert lines == [
        f"error: police export: {people}, line 2, column 'date_of_birth': not an ISO date "
        "(YYYY-MM-DD)"
    ]
    assert "31/02/2014" not in "".join(lines)


@pytest.mark.parametrize("agency", ["police", "social-care"])
def test_the_environment_variable_names_the_folder(agency: str, tmp_path: Path) -> None:
    missing = tmp_path / "not-there"

    lines = refused(agency, env={data_variable(agency): str(missing)})

    assert lines == [f"error: {agency} export: {missing}: no such folder"]


# Fictional, in the unused ZX0 area, on no built-in record.
NEWCOMER = Subject(
    subject_id="S1",
    role=SubjectRole.CHILD,
    given_name="Tamsin",
    family_name="Quarrendon",
    date_of_birth=date(2015, 6, 21),
    postcode="ZX0 4QQ",
)


async def test_an_adapter_reads_the_folder_it_is_pointed_at(stack: Stack, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    shutil.copytree(POLICE_DATA, folder)
    with (folder / "people.csv").open("a", encoding="utf-8") as people:
        people.write("PN999001,Tamsin,Quarrendon,2015-06-21,ZX0 4QQ,LOC999001,,,\n")
    await stack.hub()
    watcher = await stack.watcher()
    adapter = start_adapter(
        "police",
        "--data",
        str(folder),
        "--log-format",
        "json",
        env={"MASH_PREFIX": stack.settings.prefix},
    )
    try:
        await _ready(adapter)
        contact = make_contact(agencies=["police"]).model_copy(update={"subjects": [NEWCOMER]})
        async with HubClient(stack.settings) as client:
            await client.submit(contact)
        packet = await watcher.next(timeout=30.0)
    finally:
        adapter.send_signal(signal.SIGTERM)
        adapter.communicate(timeout=30)

    [answer] = packet.answers
    assert answer.outcome is ResponseOutcome.KNOWN
    assert answer.matches[0].method is MatchMethod.NAME_DOB_POSTCODE
    assert answer.matches[0].record_id == "PN999001"


async def _ready(adapter: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until the adapter logs that it is consuming (its log is on stderr)."""
    assert adapter.stderr is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        line = await asyncio.wait_for(
            loop.run_in_executor(None, adapter.stderr.readline), deadline - loop.time()
        )
        if not line:
            break
        if b'"adapter_ready"' in line:
            return
    raise AssertionError(f"the adapter did not start (exit {adapter.poll()})")
