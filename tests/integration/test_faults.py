"""A short run of every fault class, so none can rot: ``make faults`` runs the full load.

Each asserts the goal a user would check in the table: nothing lost, nothing doubled,
nothing unexpected, one final packet per contact, every due deadline fired once, every
queue drained."""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.scenarios import SCENARIOS, Scenario
from faults.verdict import table

pytestmark = [pytest.mark.broker, pytest.mark.faults]

CONTACTS = 30


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_fault_class_loses_nothing_and_doubles_nothing(
    scenario: Scenario, tmp_path: Path
) -> None:
    verdict = await scenario.run(CONTACTS, tmp_path)
    print("\n" + table([verdict]))
    assert verdict.attempted == verdict.confirmed == CONTACTS
    assert verdict.faults_injected > 0
    assert (verdict.lost, verdict.duplicated, verdict.unexpected) == (0, 0, 0)
    assert (verdict.final_packets_min, verdict.final_packets_max) == (1, 1)
    assert verdict.deadlines_fired == verdict.deadlines_due
    assert verdict.queues_non_empty == 0
