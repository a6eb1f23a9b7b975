"""Identity before disclosure, end to end: a contact naming one child with another pupil's
UPN gets nothing about her in its packet, and the packet says the identifier conflicts."""

from __future__ import annotations

import io
from datetime import date

from rich.console import Console

from adapters.education import EducationAgency
from hub.client import HubClient
from mash.screening import render_packet
from schemas.enums import MatchMethod, ResponseOutcome, SubjectRole
from schemas.models import Subject
from tests.support import Stack, make_contact

# The reported request: Zak Khan, with the UPN of Isabella Green (fictional, in pupils.csv).
ZAK_WITH_ISABELLAS_UPN = Subject(
    subject_id="S1",
    role=SubjectRole.CHILD,
    given_name="Zak",
    family_name="Khan",
    date_of_birth=date(2014, 1, 1),
    postcode="ZX1 1AA",
    upn="W302205713002",
)


async def test_another_pupils_upn_is_not_known_and_the_packet_flags_the_conflict(
    stack: Stack,
) -> None:
    await stack.hub()
    await stack.adapter(EducationAgency())
    watcher = await stack.watcher()
    contact = make_contact(agencies=["education"]).model_copy(
        update={"subjects": [ZAK_WITH_ISABELLAS_UPN]}
    )

    async with HubClient(stack.settings) as client:
        await client.submit(contact)
    packet = await watcher.next()

    [answer] = packet.answers
    assert answer.outcome is ResponseOutcome.NOT_KNOWN
    assert answer.findings is None and answer.strengths == []
    [match] = answer.matches
    assert (match.matched, match.record_id, match.identifier_conflict) == (
        False,
        None,
        MatchMethod.UPN,
    )
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render_packet(packet))
    shown = " ".join(console.file.getvalue().split())  # type: ignore[attr-defined]
    assert "the UPN given for S1 disagrees with its records" in shown
    for hers in ("Isabella", "Green", "Marrowfield", "PUP108307", "Jack", "Theo"):
        assert hers not in shown
