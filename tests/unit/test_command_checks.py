"""The hub's checks on commands and replies, on a clock the test moves: a command is handled
once whatever its outcome, refused when stale, and answered only to a reply queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.consumer import Rejected
from broker.identities import check_role_sender
from broker.settings import BrokerSettings
from broker.topology import SCREENING, Topology
from hub import audit
from hub.correlator import Correlator
from hub.policy import BragPolicy
from hub.store import HubStore
from schemas.enums import Brag, CommandAction
from schemas.models import ContactCommand
from tests.support import make_contact

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, during opening hours


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(tmp_path: Path, clock: Clock) -> Correlator:
    return Correlator(
        HubStore(tmp_path / "hub.sqlite3"),
        Topology(BrokerSettings(prefix="unit")),
        BragPolicy(),
        ("police", "health"),
        clock,
        command_max_age=timedelta(minutes=5),
    )


def _contact(hub: Correlator, brag: Brag = Brag.AMBER) -> str:
    contact = make_contact(brag).model_copy(update={"received_at": T0})
    return hub.accept_contact(contact, f"msg-{contact.contact_id}").ref


def _rerate(ref: str, brag: Brag, issued_at: datetime) -> ContactCommand:
    return ContactCommand(
        command_id=str(uuid.uuid4()),
        issued_at=issued_at,
        action=CommandAction.RERATE,
        contact_ref=ref,
        brag=brag,
    )


def _refusal(hub: Correlator, command: ContactCommand) -> str | None:
    result = hub.command(command, command.command_id)
    return None if result.refusal is None else result.refusal.reason


def test_a_rerating_that_changes_nothing_is_still_recorded_as_handled(
    hub: Correlator, clock: Clock
) -> None:
    ref = _contact(hub)
    clock.now = T0 + timedelta(minutes=1)
    same = _rerate(ref, Brag.AMBER, clock.now)
    assert _refusal(hub, same) is None
    assert hub.command(_rerate(ref, Brag.RED, clock.now), "red-1").reply.brag is Brag.RED

    assert _refusal(hub, same) == "replayed-command"
    row = hub.store.contact(ref)
    assert row is not None and row.brag is Brag.RED


@pytest.mark.parametrize(
    ("issued", "reason"),
    [
        (timedelta(minutes=4), None),  # within the five minutes
        (timedelta(minutes=6), "stale-command"),  # too long ago
        (timedelta(minutes=-2), "stale-command"),  # ahead of the hub's clock
    ],
)
def test_a_command_is_refused_when_issued_too_long_ago_or_ahead_of_the_hubs_clock(
    hub: Correlator, clock: Clock, issued: timedelta, reason: str | None
) -> None:
    ref = _contact(hub)
    clock.now = T0 + timedelta(minutes=10)
    assert _refusal(hub, _rerate(ref, Brag.RED, clock.now - issued)) == reason


def test_a_command_issued_before_the_contacts_last_change_is_refused(
    hub: Correlator, clock: Clock
) -> None:
    ref = _contact(hub)
    clock.now = T0 + timedelta(minutes=1)
    earlier = _rerate(ref, Brag.GREEN, clock.now)
    clock.now = T0 + timedelta(minutes=2)
    assert _refusal(hub, _rerate(ref, Brag.RED, clock.now)) is None

    assert _refusal(hub, earlier) == "stale-command"
    row = hub.store.contact(ref)
    assert row is not None and row.brag is Brag.RED


def test_every_refusal_is_audited_and_recorded_as_handled(hub: Correlator, clock: Clock) -> None:
    unknown = _rerate("MASH-2026-000999", Brag.RED, clock.now)
    assert _refusal(hub, unknown) == "unknown-reference"
    assert hub.store.seen(unknown.command_id)
    [entry] = [e for e in audit.entries(hub.store.db) if e.action == "command-refused"]
    assert entry.detail["reason"] == "unknown-reference"
    assert entry.detail["command_id"] == unknown.command_id


def test_a_refusal_found_before_the_command_was_read_is_recorded_too(
    hub: Correlator, clock: Clock
) -> None:
    ref = _contact(hub)
    command = _rerate(ref, Brag.RED, clock.now)
    result = hub.command(
        command, command.command_id, refusal=Rejected("broker-user-not-allowed", "police")
    )
    assert result.refusal is not None and result.refusal.reason == "broker-user-not-allowed"
    assert not result.reply.ok
    assert hub.store.seen(command.command_id)
    row = hub.store.contact(ref)
    assert row is not None and row.brag is Brag.AMBER


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("unit.replies.3f2a9c", True),
        # Direct reply-to goes through the default exchange, which no role may write.
        ("amq.rabbitmq.reply-to", False),
        ("amq.rabbitmq.reply-to.g1h2AA5yZXBseS00NjI3", False),
        ("unit.restricted.file", False),
        ("unit.hub.commands.dead", False),
        ("unit.replies.", False),
        ("unit.replies.a.b", False),  # not one of the reply queues, whatever comes after
        ("other.replies.3f2a9c", False),  # another MASH's
        ("amq.rabbitmq.reply-tox", False),
    ],
)
def test_the_hub_answers_only_to_reply_queues(name: str, allowed: bool) -> None:
    assert Topology(BrokerSettings(prefix="unit")).is_reply_queue(name) is allowed


@pytest.mark.parametrize(
    ("user", "allowed"),
    [("unit-screening", True), ("guest", True), ("unit-police", False), (None, False)],
)
def test_contacts_and_commands_come_only_from_the_screening_user(
    user: str | None, allowed: bool
) -> None:
    # The hub itself runs as guest here, as in local development.
    settings = BrokerSettings(prefix="unit", amqp_url="amqp://guest:guest@127.0.0.1:5672/")
    if allowed:
        check_role_sender(settings, user, SCREENING)
    else:
        with pytest.raises(Rejected, match="broker-user-not-allowed"):
            check_role_sender(settings, user, SCREENING)
