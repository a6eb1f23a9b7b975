"""Group commit: many decisions share one SQLite commit, a failing one is undone alone, and
Red work goes into the next commit ahead of routine work."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.group_commit import GroupCommit
from hub.store import HubStore


@pytest.fixture
def store(tmp_path: Path) -> HubStore:
    return HubStore(tmp_path / "hub.sqlite3")


def _mark(store: HubStore, order: list[str], name: str) -> str:
    with store.transaction() as db:
        store.mark_seen(db, name, datetime.now(UTC))
    order.append(name)
    return name


async def test_decisions_waiting_together_share_one_commit(store: HubStore) -> None:
    commits = GroupCommit(store, on_commit=lambda: None)
    commits.start()
    order: list[str] = []
    try:
        names = await asyncio.gather(
            *(commits.decide(functools.partial(_mark, store, order, f"m{i}")) for i in range(10))
        )
    finally:
        await commits.stop()
    assert names == [f"m{i}" for i in range(10)]
    assert commits.batches == 1 and commits.decisions == 10
    assert all(store.seen(n) for n in names)


async def test_a_failing_decision_is_undone_alone(store: HubStore) -> None:
    commits = GroupCommit(store, on_commit=lambda: None)
    commits.start()
    order: list[str] = []

    def failing() -> str:
        _mark(store, order, "bad")
        raise ValueError("refused")

    try:
        good, bad = await asyncio.gather(
            commits.decide(lambda: _mark(store, order, "good")),
            commits.decide(failing),
            return_exceptions=True,
        )
    finally:
        await commits.stop()
    assert good == "good" and isinstance(bad, ValueError)
    assert store.seen("good") and not store.seen("bad")


async def test_urgent_decisions_jump_the_routine_backlog(store: HubStore) -> None:
    commits = GroupCommit(store, on_commit=lambda: None, max_batch=2)
    commits.start()
    order: list[str] = []
    try:
        await asyncio.gather(
            *(
                commits.decide(functools.partial(_mark, store, order, f"routine-{i}"))
                for i in range(5)
            ),
            commits.decide(lambda: _mark(store, order, "red"), urgent=True),
        )
    finally:
        await commits.stop()
    assert order[0] == "red"
    assert order[1:] == [f"routine-{i}" for i in range(5)]
