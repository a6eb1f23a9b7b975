"""A Red contact's head start: routine work waits while it is in hand, and never longer than
the limit, which the hub and every adapter read from one setting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.kit.service import AdapterService
from broker.head_start import HeadStart
from broker.settings import BrokerSettings, SettingsInvalid
from hub.policy import BragPolicy
from hub.service import HubService
from hub.settings import HubSettings
from tests.support import KnowsEveryone


async def _waits(head_start: HeadStart, seconds: float = 0.05) -> bool:
    try:
        await asyncio.wait_for(head_start.routine_turn(), seconds)
    except TimeoutError:
        return True
    return False


async def test_routine_work_waits_until_the_red_contact_is_released() -> None:
    head_start = HeadStart(limit=60)
    head_start.hold("MASH-2026-000001")
    assert await _waits(head_start)
    head_start.release("MASH-2026-000001")
    assert not await _waits(head_start)


async def test_routine_work_waits_for_every_red_contact_in_hand() -> None:
    head_start = HeadStart(limit=60)
    head_start.hold("MASH-2026-000001")
    head_start.hold("MASH-2026-000002")
    head_start.release("MASH-2026-000001")
    assert await _waits(head_start)
    head_start.release("MASH-2026-000002")
    assert not await _waits(head_start)


async def test_a_red_contact_holds_routine_work_back_no_longer_than_the_limit() -> None:
    head_start = HeadStart(limit=0.2)
    head_start.hold("MASH-2026-000001")  # its packet never comes (a silent agency)
    assert await _waits(head_start, 0.05)
    await asyncio.wait_for(head_start.routine_turn(), 1.0)
    assert not head_start.holding


async def test_a_zero_limit_turns_the_head_start_off() -> None:
    head_start = HeadStart(limit=0)
    head_start.hold("MASH-2026-000001")
    assert not await _waits(head_start)


async def test_releasing_an_unknown_contact_changes_nothing() -> None:
    head_start = HeadStart(limit=60)
    head_start.hold("MASH-2026-000001")
    head_start.release("MASH-2026-000099")
    assert await _waits(head_start)


async def test_a_red_contacts_own_work_does_not_wait_for_the_head_start() -> None:
    head_start = HeadStart(limit=60)
    head_start.hold("MASH-2026-000001")
    assert await _waits(head_start)  # anyone else's routine work waits
    assert not await _waits_for(head_start, "MASH-2026-000001")


async def test_routine_work_for_a_contact_goes_on_once_it_is_re_rated_to_red() -> None:
    head_start = HeadStart(limit=60)
    head_start.hold("MASH-2026-000001")
    waiting = asyncio.create_task(head_start.routine_turn("MASH-2026-000002"))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    head_start.hold("MASH-2026-000002")  # re-rated to Red while its answers were held
    await asyncio.wait_for(waiting, 1.0)
    assert head_start.holding


async def _waits_for(head_start: HeadStart, ref: str, seconds: float = 0.05) -> bool:
    try:
        await asyncio.wait_for(head_start.routine_turn(ref), seconds)
    except TimeoutError:
        return True
    return False


def test_the_hub_and_an_adapter_both_take_their_limit_from_the_one_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MASH_RED_HEAD_START_S", "0.5")
    adapter = AdapterService(KnowsEveryone("police"), BrokerSettings())
    hub = HubService(HubSettings(db_path=tmp_path / "hub.sqlite3", new_database=True), BragPolicy())
    try:
        assert adapter.head_start.limit == 0.5  # it was 5 s whatever the setting said
        assert hub.head_start.limit == 0.5
    finally:
        hub.store.close()


@pytest.mark.parametrize("value", ["-1", "3601", "nan", "soon"])
def test_an_adapter_refuses_a_bad_head_start_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MASH_RED_HEAD_START_S", value)
    with pytest.raises(SettingsInvalid) as refused:
        BrokerSettings()  # what 'mash adapter' reads
    assert str(refused.value).startswith("MASH_RED_HEAD_START_S: ")
    assert "\n" not in str(refused.value)
