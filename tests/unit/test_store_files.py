"""The hub's database at rest: owner-only folder and files, a database readable by others
refused with the fix, and references that take the year the hub accepted the contact and
never repeat."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.topology import Topology
from hub.correlator import Correlator
from hub.policy import BragPolicy
from hub.settings import HubSettings
from hub.store import DatabaseLock, HubStore, RefsNotReserved, StoreError
from tests.support import make_contact


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_is_owner_only_folder_and_files(tmp_path: Path) -> None:
    os.umask(0o022)
    path = tmp_path / "var" / "hub" / "hub.sqlite3"
    store = HubStore(path)
    with store.transaction() as db:  # the WAL and shared-memory files exist once it writes
        store.set_meta(db, "probe", "1")

    assert _mode(path.parent) == 0o700
    assert _mode(path.parent.parent) == 0o700
    for name in ("hub.sqlite3", "hub.sqlite3-wal", "hub.sqlite3-shm"):
        assert _mode(path.parent / name) == 0o600, name
    store.close()


def test_a_database_readable_by_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    HubStore(path).close()
    path.chmod(0o644)

    with pytest.raises(StoreError, match=rf"run chmod 600 {path}$"):
        HubStore(path)


def test_a_folder_open_to_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o755)

    with pytest.raises(StoreError, match=rf"run chmod 700 {folder}$"):
        HubStore(folder / "hub.sqlite3")
    assert not (folder / "hub.sqlite3").exists()


def test_older_wal_and_shared_memory_files_are_made_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    HubStore(path).close()
    wal = tmp_path / "hub.sqlite3-wal"
    wal.write_bytes(b"")
    wal.chmod(0o644)

    store = HubStore(path)

    assert _mode(wal) == 0o600
    store.close()


def test_mash_hub_on_a_readable_database_prints_one_line_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    HubStore(path).close()
    path.chmod(0o640)
    env = {**os.environ, "MASH_DB_PATH": str(path), "MASH_AMQP_URL": "amqp://127.0.0.1:1/"}

    done = subprocess.run(
        [sys.executable, "-m", "mash", "hub"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {path} is readable by other users (mode 0640); it holds children's data:"
        f" run chmod 600 {path}"
    ]


def test_a_second_lock_on_one_database_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    held = DatabaseLock(path)
    held.acquire()
    try:
        with pytest.raises(StoreError, match=rf"another hub is using .*pid {os.getpid()} started"):
            DatabaseLock(path).acquire()
    finally:
        held.release()
    DatabaseLock(path).acquire()  # free again once released


class _Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_a_reference_takes_the_year_the_hub_accepted_the_contact(tmp_path: Path) -> None:
    store = HubStore(tmp_path / "hub.sqlite3")
    clock = _Clock(datetime(2026, 1, 5, 10, tzinfo=UTC))
    settings = HubSettings(prefix="unit", db_path=store.path)
    correlator = Correlator(store, Topology(settings), BragPolicy(), settings.agencies, clock)
    late = make_contact().model_copy(update={"received_at": datetime(2025, 12, 30, tzinfo=UTC)})
    fresh = make_contact()
    fresh = fresh.model_copy(update={"received_at": clock.at - timedelta(hours=1)})

    first = correlator.accept_contact(late, "m1")
    second = correlator.accept_contact(fresh, "m2")

    assert (first.ref, second.ref) == ("MASH-2026-000001", "MASH-2026-000002")


def test_no_reference_is_issued_beyond_those_reserved_on_the_broker(tmp_path: Path) -> None:
    store = HubStore(tmp_path / "hub.sqlite3")
    store.reserve_refs(2026, 1)
    with store.transaction() as db:
        assert store.allocate_ref(db, 2026) == ("MASH-2026-000001", 1)
    store.reserve_refs(2026, 2000, floor=1500)  # a new database after one that reserved 1500
    with store.transaction() as db:
        assert store.allocate_ref(db, 2026) == ("MASH-2026-001501", 1501)
        with pytest.raises(RefsNotReserved):
            store.allocate_ref(db, 2027)  # a new year waits for its own reservation
