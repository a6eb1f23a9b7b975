"""The whole cycle with the four built-in adapters and their fictional records, on the real
broker: the seeds' case study comes back as one packet with every agency's findings, and
nothing about the family reaches a log."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from adapters.education import EducationAgency
from adapters.health import HealthAgency
from adapters.housing import HousingAgency
from adapters.police import PoliceAgency
from hub.client import HubClient
from hub.intake import load_contact_file
from mash.screening import decode_findings
from schemas.enums import Brag, PacketReason, ResponseOutcome
from schemas.models import HealthFindings, HousingFindings, PoliceFindings
from tests.support import Stack

pytestmark = pytest.mark.broker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "contacts"


async def test_drugs_warrant_case_brings_back_every_agency_findings_and_no_log_leaks(
    stack: Stack,
) -> None:
    contact = load_contact_file(EXAMPLES / "case-17-year-old-drugs-warrant.json")
    with capture_logs() as logs:
        await stack.hub()
        for agency in (PoliceAgency(), HealthAgency(), EducationAgency(), HousingAgency()):
            await stack.adapter(agency)
        watcher = await stack.watcher()
        async with HubClient(stack.settings) as client:
            reply = await client.submit(contact)
        packet = await watcher.next()

    assert packet.contact_ref == reply.contact_ref
    assert packet.reason is PacketReason.COMPLETE
    answers = {a.agency: a for a in packet.answers}
    assert all(a.outcome is ResponseOutcome.KNOWN for a in answers.values())

    police = decode_findings(answers["police"].findings or b"")
    health = decode_findings(answers["health"].findings or b"")
    housing = decode_findings(answers["housing"].findings or b"")
    assert isinstance(police, PoliceFindings)
    assert isinstance(health, HealthFindings)
    assert isinstance(housing, HousingFindings)
    assert [r.relationship for r in police.adults_posing_risk] == ["stepfather"]
    assert any("gang" in i.category.lower() for i in police.incidents)
    assert health.admissions
    children = [m for m in housing.household_members if m.age is not None and m.age < 16]
    assert len(children) >= 2  # the younger siblings that turned the rating Red

    logged = repr(logs)
    for subject in contact.subjects:
        for value in (subject.given_name, subject.family_name, subject.postcode):
            assert value is None or value not in logged
        if subject.date_of_birth is not None:
            assert subject.date_of_birth.isoformat() not in logged
    assert "Class A" not in logged  # findings text


async def test_demo_prints_every_packet_and_exits_zero() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        "demo",
        "--exit-when-done",
        "--timeout",
        "90",
        env={**os.environ, "COLUMNS": "120"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 150)
    text = out.decode()
    assert process.returncode == 0, text[-2000:]
    rerated = re.search(
        rf"re-rated (MASH-\d{{4}}-\d{{6}}) {Brag.AMBER.value} → {Brag.RED.value}", text
    )
    assert rerated, text[-2000:]
    # The re-rating landed while agencies were still checking: its packet is Red, with history.
    assert re.search(rf"{rerated.group(1)}\s+{Brag.RED.value}\s+packet v1 \(complete\)", text)
    assert re.search(r"Ratings\s+AMBER at \d\d:\d\d → RED at \d\d:\d\d", text)
    packets = len(list(EXAMPLES.glob("*.json")))
    assert f"{packets} packets assembled" in text
    # The fifth agency answers; the attendance case goes to the child's lead professional;
    # the baby's second contact shows the first.
    assert "SOCIAL-CARE: known" in text
    assert re.search(r"MASH-\d{4}-\d{6} sent straight on to the allocated lead professional", text)
    assert "1 of them to this MASH" in text


async def test_a_demo_ended_by_sigterm_stops_its_processes_and_leaves_no_queue() -> None:
    from faults.rabbit_node import free_port

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        "demo",
        "--console-port",
        str(free_port()),
        env={**os.environ, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own group: the signal below reaches the demo alone
    )
    assert process.stdout is not None
    seen = b""
    while b"to stop the demo" not in seen:
        line = await asyncio.wait_for(process.stdout.readline(), 150)
        assert line, seen.decode()[-2000:]
        seen += line
    prefix = re.search(r"prefix (demo-[0-9a-f]{8})", seen.decode())
    assert prefix, seen.decode()[-2000:]

    process.terminate()
    rest, _ = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0, (seen + rest).decode()[-2000:]
    listed = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", "list_queues", "name", stdout=asyncio.subprocess.PIPE
    )
    names, _ = await asyncio.wait_for(listed.communicate(), 30)
    assert prefix.group(1) not in names.decode()
