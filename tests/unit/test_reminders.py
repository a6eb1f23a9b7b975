"""Reminders before a deadline, decided by the hub's correlator on a clock the test moves:
who is reminded and when, exactly once, across a restart and a re-rating."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.settings import BrokerSettings
from broker.topology import Topology
from hub.correlator import Correlator
from hub.policy import BragPolicy
from hub.store import HubStore
from schemas.codec import decode
from schemas.enums import Brag, CommandAction, ResponseOutcome
from schemas.models import MAX_RATING_CHANGES, AgencyResponse, ContactCommand, RequestReminder
from tests.support import make_contact

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, during opening hours


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, **delta: float) -> None:
        self.now = T0 + timedelta(**delta)


def _hub(path: Path, clock: Clock, fractions: tuple[float, ...] = (0.5, 0.75)) -> Correlator:
    return Correlator(
        HubStore(path / "hub.sqlite3"),
        Topology(BrokerSettings(prefix="unit")),
        BragPolicy(reminder_fractions=fractions),
        ("police", "health"),
        clock,
    )


def _submit(hub: Correlator, brag: Brag) -> str:
    contact = make_contact(brag).model_copy(update={"received_at": T0})
    return hub.accept_contact(contact, f"msg-{contact.contact_id}").ref


def _sent_reminders(hub: Correlator) -> list[tuple[str, RequestReminder]]:
    rows = [r for r in hub.store.outbox() if r.type == RequestReminder.avro_name]
    hub.store.outbox_done([r.id for r in hub.store.outbox()])
    return [(r.routing_key, decode(r.body, RequestReminder)) for r in rows]


def _answer(hub: Correlator, ref: str, agency: str) -> None:
    request = next(r for r in hub.store.requests_for(ref) if r.agency == agency)
    response = AgencyResponse(
        response_id=f"resp-{request.request_id}",
        request_id=request.request_id,
        contact_ref=ref,
        agency=agency,
        responded_at=hub.clock(),
        outcome=ResponseOutcome.NOT_KNOWN,
    )
    hub.accept_answer(response, response.response_id, agency)


def _rerate(hub: Correlator, ref: str, brag: Brag) -> None:
    command = ContactCommand(
        command_id=f"rerate-{brag}",
        issued_at=hub.clock(),
        action=CommandAction.RERATE,
        contact_ref=ref,
        brag=brag,
    )
    hub.command(command, command.command_id)


def test_outstanding_agencies_are_reminded_at_half_and_three_quarters_of_the_window(
    tmp_path: Path,
) -> None:
    clock = Clock()
    hub = _hub(tmp_path, clock)
    ref = _submit(hub, Brag.RED)
    _sent_reminders(hub)  # the requests themselves

    clock.at(hours=1, minutes=59)
    assert hub.reminders.fire_due() == []

    clock.at(hours=2)
    hub.reminders.fire_due()
    first = _sent_reminders(hub)
    assert sorted((key, r.agency, r.fraction) for key, r in first) == [
        ("health.urgent", "health", 0.5),
        ("police.urgent", "police", 0.5),
    ]
    assert {(r.contact_ref, r.brag, r.deadline) for _, r in first} == {
        (ref, Brag.RED, T0 + timedelta(hours=4))
    }

    clock.at(hours=2, minutes=30)
    _answer(hub, ref, "police")
    clock.at(hours=3)
    hub.reminders.fire_due()
    assert [(r.agency, r.fraction) for _, r in _sent_reminders(hub)] == [("health", 0.75)]


def test_each_reminder_is_sent_once_even_after_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    hub = _hub(tmp_path, clock)
    _submit(hub, Brag.RED)
    clock.at(hours=2)
    assert len(hub.reminders.fire_due()) == 2
    assert hub.reminders.fire_due() == []
    hub.store.close()

    restarted = _hub(tmp_path, clock)
    assert restarted.reminders.fire_due() == []
    clock.at(hours=3)
    assert [r.fraction for r in restarted.reminders.fire_due()] == [0.75, 0.75]


def test_reminders_due_while_the_hub_was_down_are_sent_when_it_starts(tmp_path: Path) -> None:
    clock = Clock()
    hub = _hub(tmp_path, clock)
    _submit(hub, Brag.RED)
    hub.store.close()

    clock.at(hours=3, minutes=30)  # both reminder times passed, the deadline not yet
    restarted = _hub(tmp_path, clock)
    sent = restarted.reminders.fire_due()
    assert sorted((r.agency, r.fraction) for r in sent) == [
        ("health", 0.5),
        ("health", 0.75),
        ("police", 0.5),
        ("police", 0.75),
    ]


def test_rerating_recomputes_reminders_and_drops_times_already_past(tmp_path: Path) -> None:
    clock = Clock()
    hub = _hub(tmp_path, clock)
    ref = _submit(hub, Brag.AMBER)  # one working day: reminders at 14:07:30 and 16:11:15
    clock.at(hours=2, minutes=30)
    _rerate(hub, ref, Brag.RED)  # Red from arrival: 12:00 has passed, 13:00 has not

    assert [(r.fraction, r.due_at) for r in hub.store.reminders_for(ref)] == [
        (0.75, T0 + timedelta(hours=3))
    ]
    _sent_reminders(hub)
    clock.at(hours=3)
    hub.reminders.fire_due()
    sent = _sent_reminders(hub)
    assert sorted(key for key, _ in sent) == ["health.urgent", "police.urgent"]
    assert {(r.brag, r.fraction) for _, r in sent} == {(Brag.RED, 0.75)}


def test_nobody_is_reminded_once_every_agency_has_answered(tmp_path: Path) -> None:
    clock = Clock()
    hub = _hub(tmp_path, clock)
    ref = _submit(hub, Brag.RED)
    clock.at(hours=1)
    _answer(hub, ref, "police")
    _answer(hub, ref, "health")
    _sent_reminders(hub)

    clock.at(hours=3)
    assert hub.reminders.fire_due() == []
    assert _sent_reminders(hub) == []
    assert [r.agencies for r in hub.store.reminders_for(ref)] == [(), ()]


def test_reminder_fractions_come_from_the_environment() -> None:
    assert BragPolicy.from_env({}).reminder_fractions == (0.5, 0.75)
    env = {"MASH_REMINDER_FRACTIONS": "0.9, 0.25"}
    assert BragPolicy.from_env(env).reminder_fractions == (0.25, 0.9)
    assert BragPolicy.from_env({"MASH_REMINDER_FRACTIONS": "none"}).reminder_fractions == ()
    with pytest.raises(ValueError, match=r"MASH_REMINDER_FRACTIONS: 1\.5 is not between 0 and 1"):
        BragPolicy.from_env({"MASH_REMINDER_FRACTIONS": "0.5,1.5"})


def test_a_friday_1655_amber_contact_is_reminded_on_monday_not_at_the_weekend(
    tmp_path: Path,
) -> None:
    friday = datetime(2026, 11, 20, 16, 55, tzinfo=UTC)  # GMT: UK time is UTC in November
    clock = Clock()
    clock.now = friday
    hub = _hub(tmp_path, clock)
    contact = make_contact(Brag.AMBER).model_copy(update={"received_at": friday})
    ref = hub.accept_contact(contact, "msg-friday").ref
    monday = datetime(2026, 11, 23, tzinfo=UTC)
    assert [r.due_at for r in hub.store.reminders_for(ref)] == [
        monday + timedelta(hours=12, minutes=55),
        monday + timedelta(hours=14, minutes=55),
    ]
    _sent_reminders(hub)  # the requests themselves
    for hour in range(0, 24 * 3, 1):  # through the weekend to Monday morning
        clock.now = friday + timedelta(hours=hour)
        if clock.now >= monday + timedelta(hours=9):
            break
        assert hub.reminders.fire_due() == [], clock.now
    clock.now = monday + timedelta(hours=12, minutes=55)
    assert {r.fraction for r in hub.reminders.fire_due()} == {0.5}


def test_re_ratings_stop_at_the_packet_budgets_bound(tmp_path: Path) -> None:
    # Every re-rating travels in the packet's rating history: past the bound it is refused.
    clock = Clock()
    hub = _hub(tmp_path, clock)
    ref = _submit(hub, Brag.AMBER)
    ratings = (Brag.RED, Brag.AMBER)
    for n in range(MAX_RATING_CHANGES):  # the first rating is in the history too
        command = ContactCommand(
            command_id=f"rerate-{n}",
            issued_at=clock(),
            action=CommandAction.RERATE,
            contact_ref=ref,
            brag=ratings[n % 2],
        )
        result = hub.command(command, command.command_id)
        assert result.reply.ok == (n < MAX_RATING_CHANGES - 1), n
    assert result.refusal is not None and result.refusal.reason == "too-many-ratings"
    assert f"{ref} has had {MAX_RATING_CHANGES} ratings" in (result.reply.error or "")
    assert len(hub.store.rating_changes(ref)) == MAX_RATING_CHANGES
