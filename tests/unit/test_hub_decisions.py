"""The hub's decisions in-process, on a clock the test moves and no broker: what the
correlator writes to its outbox (the messages it will send) for a contact's whole cycle per
rating, a deadline with a silent agency, a late answer, a re-rating, duplicates, unknown and
mismatched answers, and a hub restarted on its database. The same behaviours are tested
through RabbitMQ elsewhere (tests/integration/test_hub_cycle.py, test_decisions.py,
test_end_to_end.py); here they run in well under a second each, without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.settings import BrokerSettings
from broker.topology import Topology
from hub.correlator import Correlator
from hub.policy import BragPolicy
from hub.store import HubStore
from mash.errors import Rejected
from schemas.codec import decode
from schemas.enums import Brag, CommandAction, PacketReason, ResponseOutcome
from schemas.models import (
    AgencyResponse,
    AvroModel,
    Contact,
    ContactCommand,
    InformationRequest,
    ScreeningPacket,
)
from tests.support import make_contact

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, during opening hours
AGENCIES = ("police", "health", "education", "housing")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _contact(brag: Brag) -> Contact:
    # Received as the test's clock starts: the hub refuses a contact from its future.
    return make_contact(brag).model_copy(update={"received_at": T0})


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _hub(folder: Path, clock: Clock) -> Correlator:
    return Correlator(
        HubStore(folder / "hub.sqlite3"),
        Topology(BrokerSettings(prefix="unit")),
        BragPolicy(),
        AGENCIES,
        clock,
    )


@pytest.fixture
def hub(tmp_path: Path, clock: Clock) -> Correlator:
    return _hub(tmp_path, clock)


def _sent(hub: Correlator) -> list[tuple[str, str, object]]:
    """Take the outbox as the relay would: (exchange, routing key, decoded message)."""
    rows = hub.store.outbox(limit=10_000)
    hub.store.outbox_done([r.id for r in rows])
    models: dict[str, type[AvroModel]] = {
        InformationRequest.avro_name: InformationRequest,
        ScreeningPacket.avro_name: ScreeningPacket,
    }
    return [
        (r.exchange, r.routing_key, decode(r.body, models[r.type]) if r.type in models else r.type)
        for r in rows
    ]


def _requests(sent: list[tuple[str, str, object]]) -> dict[str, tuple[str, InformationRequest]]:
    return {m.agency: (key, m) for _, key, m in sent if isinstance(m, InformationRequest)}


def _packets(sent: list[tuple[str, str, object]]) -> list[ScreeningPacket]:
    return [m for _, _, m in sent if isinstance(m, ScreeningPacket)]


def _answer(hub: Correlator, request: InformationRequest, *, known: bool = False) -> str:
    response = AgencyResponse(
        response_id=f"resp-{request.request_id}",
        request_id=request.request_id,
        contact_ref=request.contact_ref,
        agency=request.agency,
        responded_at=hub.clock(),
        outcome=ResponseOutcome.KNOWN if known else ResponseOutcome.NOT_KNOWN,
    )
    return hub.accept_answer(response, f"msg-{response.response_id}", request.agency)


@pytest.mark.parametrize(
    ("brag", "lane"), [(Brag.RED, "urgent"), (Brag.AMBER, "routine"), (Brag.GREEN, "routine")]
)
def test_a_contact_asks_every_agency_on_its_lane_and_four_answers_make_one_complete_packet(
    hub: Correlator, clock: Clock, brag: Brag, lane: str
) -> None:
    accepted = hub.accept_contact(_contact(brag), "msg-contact")
    requests = _requests(_sent(hub))

    assert set(requests) == set(AGENCIES)
    assert {key for key, _ in requests.values()} == {f"{a}.{lane}" for a in AGENCIES}
    assert accepted.deadline > T0
    clock.now = T0 + timedelta(minutes=30)
    for n, (_, request) in enumerate(requests.values()):
        assert _answer(hub, request) == "recorded"
        packets = _packets(_sent(hub))
        assert packets == [] if n < len(AGENCIES) - 1 else len(packets) == 1
    [packet] = packets
    assert (packet.contact_ref, packet.version, packet.reason) == (
        accepted.ref,
        1,
        PacketReason.COMPLETE,
    )
    assert sorted(a.agency for a in packet.answers) == sorted(AGENCIES)
    assert packet.missing_agencies == [] and packet.late_agencies == []


def test_the_deadline_publishes_what_is_in_naming_the_silent_agency_once(
    hub: Correlator, clock: Clock
) -> None:
    accepted = hub.accept_contact(_contact(Brag.RED), "msg-contact")
    requests = _requests(_sent(hub))
    for agency in ("police", "health", "education"):
        _answer(hub, requests[agency][1])
    _sent(hub)

    clock.now = accepted.deadline - timedelta(seconds=1)
    assert hub.fire_due_deadlines() == []
    clock.now = accepted.deadline + timedelta(seconds=1)
    fired = hub.fire_due_deadlines()
    again = hub.fire_due_deadlines()

    [packet] = _packets(_sent(hub))
    assert fired == [accepted.ref] and again == []
    assert packet.reason is PacketReason.DEADLINE
    assert packet.missing_agencies == ["housing"]


def test_an_answer_after_the_deadline_is_an_amendment_marked_late(
    hub: Correlator, clock: Clock
) -> None:
    accepted = hub.accept_contact(_contact(Brag.RED), "msg-contact")
    requests = _requests(_sent(hub))
    for agency in ("police", "health", "education"):
        _answer(hub, requests[agency][1])
    clock.now = accepted.deadline + timedelta(minutes=1)
    hub.fire_due_deadlines()
    _sent(hub)

    clock.now = accepted.deadline + timedelta(minutes=20)
    _answer(hub, requests["housing"][1], known=True)

    [amendment] = _packets(_sent(hub))
    assert (amendment.version, amendment.reason) == (2, PacketReason.AMENDMENT)
    assert amendment.late_agencies == ["housing"] and amendment.missing_agencies == []


def test_re_rating_to_red_moves_the_deadline_and_asks_again_on_the_urgent_lane(
    hub: Correlator, clock: Clock
) -> None:
    accepted = hub.accept_contact(_contact(Brag.GREEN), "msg-contact")
    _sent(hub)
    clock.now = T0 + timedelta(minutes=5)
    command = ContactCommand(
        command_id="rerate-1",
        issued_at=clock.now,
        action=CommandAction.RERATE,
        contact_ref=accepted.ref,
        brag=Brag.RED,
        rationale="Police check found a recent incident at the address",
        issued_by="amy",
    )

    result = hub.command(command, "msg-rerate")

    row = hub.store.contact(accepted.ref)
    assert result.reply.ok and result.now_red
    assert row is not None and row.brag is Brag.RED and row.deadline < accepted.deadline
    assert {key.split(".")[1] for key, _ in _requests(_sent(hub)).values()} == {"urgent"}


def test_a_contact_sent_twice_is_one_contact_with_one_set_of_requests(
    hub: Correlator,
) -> None:
    contact = _contact(Brag.AMBER)
    first = hub.accept_contact(contact, "msg-1")
    sent = _sent(hub)
    again = hub.accept_contact(contact, "msg-2")  # the referrer's retry, a new message id

    assert (again.ref, again.created, first.created) == (first.ref, False, True)
    assert len(_requests(sent)) == len(AGENCIES) and _sent(hub) == []
    assert hub.store.count_contacts() == 1


def test_an_answer_delivered_twice_has_one_effect(hub: Correlator) -> None:
    hub.accept_contact(_contact(Brag.AMBER), "msg-contact")
    request = _requests(_sent(hub))["police"][1]

    assert _answer(hub, request) == "recorded"
    assert _answer(hub, request) == "duplicate"
    assert len(hub.store.answers_for(request.contact_ref)) == 1


def test_answers_to_no_request_or_for_another_agency_are_refused_with_their_reason(
    hub: Correlator,
) -> None:
    hub.accept_contact(_contact(Brag.AMBER), "msg-contact")
    police = _requests(_sent(hub))["police"][1]
    unknown = police.model_copy(update={"request_id": "no-such-request"})

    with pytest.raises(Rejected) as refused:
        _answer(hub, unknown)
    assert refused.value.reason == "unknown-request"
    forged = AgencyResponse(
        response_id="resp-forged",
        request_id=police.request_id,
        contact_ref=police.contact_ref,
        agency="police",
        responded_at=T0,
        outcome=ResponseOutcome.NOT_KNOWN,
    )
    with pytest.raises(Rejected) as mismatch:
        hub.accept_answer(forged, "msg-forged", "health")  # signed by health
    assert mismatch.value.reason == "sender-mismatch"
    assert hub.store.answers_for(police.contact_ref) == []


def test_a_hub_restarted_on_its_database_fires_the_deadline_it_had_and_takes_late_answers(
    tmp_path: Path, clock: Clock
) -> None:
    first = _hub(tmp_path, clock)
    accepted = first.accept_contact(_contact(Brag.RED), "msg-contact")
    requests = _requests(_sent(first))
    _answer(first, requests["police"][1])
    _sent(first)
    first.store.close()  # the hub stops (or dies) before the deadline

    clock.now = accepted.deadline + timedelta(seconds=5)
    second = _hub(tmp_path, clock)
    assert second.fire_due_deadlines() == [accepted.ref]
    [packet] = _packets(_sent(second))
    assert sorted(packet.missing_agencies) == ["education", "health", "housing"]
    assert [a.agency for a in packet.answers] == ["police"]
    assert _answer(second, requests["health"][1]) == "recorded"
    [amendment] = _packets(_sent(second))
    assert (amendment.version, amendment.late_agencies) == (2, ["health"])
