"""Backing up and restoring the hub's state and keys (scripts/hub_backup.py, as
docs/operating.md tells an operator to): a hub with open contacts is backed up while it runs,
destroyed (database, registry and private keys gone), restored, and every open contact still
completes on the real broker."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from broker.keyring import holder_dir
from hub.client import HubClient
from hub.settings import HubSettings
from schemas.enums import Brag, PacketReason
from schemas.models import ScreeningPacket
from scripts.hub_backup import BackupError, backup, main, restore
from tests.support import Keys, Stack, make_contact

pytestmark = pytest.mark.broker


def _own_keys(keys: Keys, folder: Path) -> tuple[Path, Path]:
    """A copy of the registry and of the hub's private keys that this test may destroy."""
    keyring, key_dir = folder / "keyring.json", folder / "private"
    folder.mkdir(mode=0o700)
    folder.chmod(0o700)  # the hub's own folder: other users may not open it
    shutil.copy(keys.keyring, keyring)
    shutil.copytree(holder_dir(keys.key_dir, "hub"), holder_dir(key_dir, "hub"))
    return keyring, key_dir


async def test_open_contacts_complete_after_backup_destruction_and_restore(
    stack: Stack, keys: Keys, tmp_path: Path
) -> None:
    live = tmp_path / "live"
    keyring, key_dir = _own_keys(keys, live)
    settings = HubSettings(
        **{
            **stack.settings.model_dump(),
            "db_path": live / "hub.sqlite3",
            "keyring": keyring,
            "key_dir": key_dir,
        }
    )
    hub = await stack.hub(settings=settings)
    early = await stack.adapters(["police", "health"])
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        replies = [await client.submit(make_contact(b)) for b in (Brag.RED, Brag.AMBER, Brag.GREEN)]
    refs = {r.contact_ref for r in replies if r.ok and r.contact_ref}
    assert len(refs) == 3
    # Police and health have answered and the hub has taken their answers in; education and
    # housing are not running, so every contact is open when the backup is taken.
    for _ in range(200):
        taken = all(len(hub.store.answers_for(ref)) == 2 for ref in refs)
        if taken and all(a.answered == 3 for a in early) and hub.store.outbox_size() == 0:
            break
        await asyncio.sleep(0.05)
    assert all(len(hub.store.answers_for(ref)) == 2 for ref in refs)

    saved = tmp_path / "backup"
    backup(saved, settings.db_path, keyring, key_dir)  # online: the hub is still running

    await stack.stop_hub(hub)
    shutil.rmtree(live)  # the hub's disk is lost: database, registry and private keys

    restore(saved, settings.db_path, keyring, key_dir)
    await stack.hub(settings=settings)
    await stack.adapters(["education", "housing"])

    packets: dict[str, ScreeningPacket] = {}
    while set(packets) != refs:
        packet = await watcher.next(timeout=30)
        packets[packet.contact_ref] = packet
    for packet in packets.values():
        assert packet.reason is PacketReason.COMPLETE
        assert sorted(a.agency for a in packet.answers) == sorted(stack.settings.agencies)
        assert packet.missing_agencies == []


async def test_a_restore_never_overwrites_a_hub_and_refuses_a_damaged_backup(
    stack: Stack, tmp_path: Path
) -> None:
    hub = await stack.hub()
    async with HubClient(stack.settings) as client:
        await client.submit(make_contact())
    saved = tmp_path / "backup"
    backup(saved, stack.settings.db_path)
    await stack.stop_hub(hub)

    with pytest.raises(BackupError, match="exists; restore only where the state was lost"):
        restore(saved, stack.settings.db_path)
    with pytest.raises(BackupError, match="exists; a backup goes to a new folder"):
        backup(saved, stack.settings.db_path)

    with (saved / "hub.sqlite3").open("r+b") as damaged:
        damaged.seek(200)
        damaged.write(b"\xff" * 16)
    elsewhere = tmp_path / "elsewhere" / "hub.sqlite3"
    with pytest.raises(BackupError, match="differs from the manifest"):
        restore(saved, elsewhere)
    assert not elsewhere.exists()


def test_the_command_line_says_what_is_wrong_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["restore", str(tmp_path / "nothing"), "--db", str(tmp_path / "hub.sqlite3")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "is not a backup" in err
