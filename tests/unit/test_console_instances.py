"""Console instances: each named console has queues of its own for every packet and the
board's events, the first keeping the names consoles always had; names are checked."""

from __future__ import annotations

import pytest

from broker.settings import BrokerSettings, SettingsInvalid
from broker.topology import Topology
from console.settings import ConsoleSettings


def test_every_listed_instance_has_its_own_packet_and_event_queues() -> None:
    topology = Topology(BrokerSettings(prefix="boro", console_instances="main, duty"))
    names = {q.name for q in topology.queues()}

    assert {
        "boro.console.packets",
        "boro.console.events",
        "boro.console.duty.packets",
        "boro.console.duty.events",
    } <= names
    packets = {q.name: q for q in topology.queues()}
    assert packets["boro.console.duty.packets"].bindings == ((topology.packets, ""),)


def test_a_console_declares_its_own_instance_even_when_not_listed() -> None:
    settings = ConsoleSettings(prefix="boro", console_instance="site-b")

    assert Topology(settings).console_packet_queue == "boro.console.site-b.packets"
    assert "boro.console.site-b.events" in {q.name for q in Topology(settings).queues()}
    assert Topology(BrokerSettings(prefix="boro")).console_packet_queue == "boro.console.packets"


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"console_instance": "Site B"}, "MASH_CONSOLE_INSTANCE: lower case letters"),
        (
            {"console_instances": "main,main"},
            "MASH_CONSOLE_INSTANCES: a console instance is named twice",
        ),
        ({"console_instances": " , "}, "MASH_CONSOLE_INSTANCES: name at least one"),
        ({"console_instances": "main,x.y"}, "MASH_CONSOLE_INSTANCES: console instance 'x.y'"),
    ],
)
def test_a_bad_instance_name_is_one_line_naming_the_variable(
    values: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsInvalid) as refused:
        ConsoleSettings(**values)  # type: ignore[arg-type]

    assert str(refused.value).startswith(says) and "\n" not in str(refused.value)


def test_the_instances_come_from_the_environment_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MASH_CONSOLE_INSTANCES", "main,duty")
    monkeypatch.setenv("MASH_CONSOLE_INSTANCE", "duty")

    settings = ConsoleSettings()

    assert settings.console_instances == ("main", "duty") and settings.console_instance == "duty"
