"""Broker identities: each role's permissions, derived from the topology table, let it touch
exactly what it needs. RabbitMQ matches these regular expressions (PCRE) as Python's re does
for the constructs used here; tests/integration/test_identities.py checks them on the broker."""

from __future__ import annotations

import re

import pytest

from broker.consumer import Rejected
from broker.identities import (
    agency_for_user,
    agency_user,
    all_permissions,
    check_sender,
    permissions_for,
    user_name,
)
from broker.settings import BrokerSettings
from broker.topology import Topology

SETTINGS = BrokerSettings(prefix="boro", amqp_url="amqp://boro-hub:pw@broker.example:5672/")
TOPOLOGY = Topology(SETTINGS)
AGENCIES = ("police", "health", "education", "housing")


def allowed(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None


def queues_readable_by(role: str) -> set[str]:
    read = permissions_for(TOPOLOGY, role).read
    return {name for name in TOPOLOGY.all_queue_names() if allowed(read, name)}


def exchanges_writable_by(role: str) -> set[str]:
    write = permissions_for(TOPOLOGY, role).write
    return {e.name for e in TOPOLOGY.exchanges() if allowed(write, e.name)}


def dead_letter_keys(role: str) -> set[str]:
    topics = {t.exchange: t for t in permissions_for(TOPOLOGY, role).topics}
    if TOPOLOGY.dead not in topics:
        return set()
    return {q for q in TOPOLOGY.all_queue_names() if allowed(topics[TOPOLOGY.dead].write, q)}


def test_every_role_has_a_user_named_after_the_mash_and_the_role() -> None:
    users = [p.user for p in all_permissions(TOPOLOGY)]
    assert users == [
        "boro-hub",
        "boro-screening",
        "boro-restricted",
        "boro-operator",
        "boro-police",
        "boro-health",
        "boro-education",
        "boro-housing",
    ]


def test_user_names_follow_the_configured_template() -> None:
    settings = BrokerSettings(prefix="boro", broker_user_template="{role}.{prefix}")
    assert user_name(settings, "hub") == "hub.boro"
    assert agency_user(settings, "police") == "police.boro"
    assert agency_for_user(settings, "police.boro") == "police"
    assert agency_for_user(settings, "hub.boro") is None


@pytest.mark.parametrize("agency", AGENCIES)
def test_an_agency_reads_only_its_own_requests(agency: str) -> None:
    assert queues_readable_by(agency) == {
        f"boro.{agency}.requests.urgent",
        f"boro.{agency}.requests.routine",
    }


@pytest.mark.parametrize("agency", AGENCIES)
def test_an_agency_writes_only_answers_and_its_own_dead_letters(agency: str) -> None:
    assert exchanges_writable_by(agency) == {"boro.answers", "boro.dead"}
    assert dead_letter_keys(agency) == {
        f"boro.{agency}.requests.urgent",
        f"boro.{agency}.requests.routine",
    }


def test_only_the_screening_ui_reads_packets() -> None:
    readers = {r for r in TOPOLOGY.roles() if "boro.screening.packets" in queues_readable_by(r)}
    assert readers == {"screening"}


def test_only_the_restricted_role_reads_the_restricted_file_and_only_the_hub_writes_it() -> None:
    readers = {r for r in TOPOLOGY.roles() if TOPOLOGY.restricted_queue in queues_readable_by(r)}
    writers = {r for r in TOPOLOGY.roles() if TOPOLOGY.restricted in exchanges_writable_by(r)}
    assert readers == {"restricted"}
    assert writers == {"hub", "operator"}  # the operator only replays what the hub signed
    assert queues_readable_by("restricted") == {"boro.restricted.file"}


def test_only_social_care_reads_contacts_routed_to_allocated_workers() -> None:
    with_social_care = Topology(SETTINGS, (*AGENCIES, "social-care"))
    readers = {
        role
        for role in with_social_care.roles()
        if allowed(permissions_for(with_social_care, role).read, "boro.social-care.allocated")
    }
    assert readers == {"social-care"}
    writers = {
        role
        for role in with_social_care.roles()
        if allowed(permissions_for(with_social_care, role).write, "boro.allocated")
    }
    assert writers == {"hub", "operator"}  # the operator only replays what the hub signed
    # Without social care among the agencies the queue is for operators only.
    assert {
        role for role in TOPOLOGY.roles() if TOPOLOGY.allocated_queue in queues_readable_by(role)
    } == {"operator"}


def test_no_role_reads_dead_letters_or_events_they_are_for_operators() -> None:
    for role in TOPOLOGY.roles():
        readable = queues_readable_by(role)
        if role == "operator":
            continue
        assert not {q for q in readable if q.endswith(".dead")}, role
        assert TOPOLOGY.event_queue not in readable, role


def test_nobody_may_configure_but_the_screening_ui_its_private_reply_queues() -> None:
    for p in all_permissions(TOPOLOGY):
        names = [*TOPOLOGY.all_queue_names(), *(e.name for e in TOPOLOGY.exchanges())]
        assert not any(allowed(p.configure, n) for n in names), p.role
        assert allowed(p.configure, "boro.replies.3f9a") is (p.role == "screening")


def test_the_hub_reads_its_own_queues_and_publishes_requests_packets_and_replies() -> None:
    assert queues_readable_by("hub") == {
        "boro.hub.contacts.urgent",
        "boro.hub.contacts.routine",
        "boro.hub.answers.urgent",
        "boro.hub.answers.routine",
        "boro.hub.commands",
        "boro.hub.instance",
    }
    assert exchanges_writable_by("hub") == {
        "boro.requests",
        "boro.packets",
        "boro.events",
        "boro.restricted",
        "boro.allocated",
        "boro.referrer",
        "boro.hub.instance",
        "boro.dead",
        "boro.replies",
    }
    hub = permissions_for(TOPOLOGY, "hub")
    assert not allowed(hub.write, "amq.default")  # it would reach every queue by name
    # The hub may create its exclusive lock queue and nothing else.
    assert allowed(hub.configure, "boro.hub.lock")
    assert not allowed(hub.configure, "boro.hub.contacts.urgent")
    requests = next(t for t in hub.topics if t.exchange == "boro.requests")
    assert allowed(requests.write, "police.urgent")
    assert not allowed(requests.write, "probation.urgent")


def test_the_screening_ui_submits_contacts_and_commands_and_reads_packets() -> None:
    assert exchanges_writable_by("screening") == {"boro.contacts", "boro.commands", "boro.dead"}
    # The console (mash console) is the screening UI too: its own copy of every packet, the
    # hub's events for its board, and the decisions' feedback it passes on to referrers.
    assert queues_readable_by("screening") == {
        "boro.screening.packets",
        "boro.console.packets",
        "boro.console.events",
        "boro.referrer.feedback",
    }


def test_every_console_instance_reads_its_own_queues_and_no_other_role_reads_them() -> None:
    # A second console (MASH_CONSOLE_INSTANCES) logs in as the screening UI too; without a
    # grant on its own queues it would be refused at its first packet.
    topology = Topology(BrokerSettings(prefix="boro", console_instances="main,duty"))
    duty = {"boro.console.duty.packets", "boro.console.duty.events"}
    for role in topology.roles():
        read = permissions_for(topology, role).read
        readable = {name for name in duty if allowed(read, name)}
        assert readable == (duty if role == "screening" else set()), role


def test_a_name_that_merely_starts_like_a_granted_one_is_not_granted() -> None:
    police = permissions_for(TOPOLOGY, "police")
    assert not allowed(police.read, "boro.police.requests.urgent.dead")
    assert not allowed(police.read, "boroXpolice.requests.urgent")


def test_an_agency_named_like_a_hub_role_is_refused() -> None:
    topology = Topology(BrokerSettings(prefix="boro", agencies=("police", "hub")))
    with pytest.raises(ValueError, match="reserved"):
        all_permissions(topology)


def test_an_answer_from_its_own_agency_user_is_accepted() -> None:
    check_sender(SETTINGS, "boro-police", "police")


def test_an_answer_claiming_another_agency_is_refused_with_both_names() -> None:
    with pytest.raises(Rejected) as refused:
        check_sender(SETTINGS, "boro-housing", "police")
    assert refused.value.reason == "broker-user-mismatch"
    assert "boro-housing" in refused.value.detail
    assert "boro-police" in refused.value.detail


def test_an_answer_without_a_user_id_is_refused() -> None:
    with pytest.raises(Rejected, match="broker-user-mismatch"):
        check_sender(SETTINGS, None, "police")


def test_a_shared_development_user_cannot_be_told_apart_and_is_let_through() -> None:
    guest = BrokerSettings(prefix="boro")  # everyone is guest
    check_sender(guest, "guest", "police")
    with pytest.raises(Rejected):
        check_sender(guest, "boro-health", "police")
