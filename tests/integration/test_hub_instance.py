"""One hub per prefix, on the prefix's own database: real ``mash hub`` processes on the real
broker, attacked as an operator who starts a second hub, deletes the database or restarts on
an empty one would."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from hub import monitoring
from hub.client import HubClient
from hub.instance import RESERVE, InstanceRefused
from hub.service import HubService
from hub.settings import HubSettings
from schemas.codec import encode
from schemas.models import HubInstanceRecord
from tests.ops_support import cli_env, free_port, mash_cli
from tests.support import Stack, make_contact

pytestmark = pytest.mark.broker


@dataclass
class HubProcess:
    process: asyncio.subprocess.Process
    port: int
    stderr: list[str] = field(default_factory=list)

    @property
    def readyz(self) -> str:
        return f"http://127.0.0.1:{self.port}/readyz"


@dataclass
class Hubs:
    """``mash hub`` processes of one test; every one left running is killed at the end."""

    settings: HubSettings
    running: list[HubProcess] = field(default_factory=list)

    def env(self, db: Path | None = None, port: int = 0) -> dict[str, str]:
        extra = {
            "MASH_METRICS_PORT": str(port),
            "MASH_KEYRING": str(self.settings.keyring),
            "MASH_KEY_DIR": str(self.settings.key_dir),
        }
        if db is not None:
            extra["MASH_DB_PATH"] = str(db)
        return cli_env(self.settings, **extra)

    async def start(self, *args: str, db: Path | None = None) -> HubProcess:
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mash",
            "hub",
            *args,
            env=self.env(db, port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        hub = HubProcess(process, port)
        self.running.append(hub)
        return hub

    async def ready(self, *args: str, db: Path | None = None) -> HubProcess:
        hub = await self.start(*args, db=db)
        for _ in range(300):
            if hub.process.returncode is not None:
                break
            if await _status(hub.readyz) == 200:
                return hub
            await asyncio.sleep(0.1)
        raise AssertionError(f"the hub never became ready: {await self.stop(hub)}")

    async def refused(self, *args: str, db: Path | None = None) -> tuple[int, str]:
        """Run a hub expected to refuse: its exit code and what it printed on stderr."""
        code, _, err = await mash_cli("hub", *args, env=self.env(db), timeout=60)
        return code, err

    async def stop(self, hub: HubProcess, sig: int = signal.SIGTERM) -> str:
        if hub.process.returncode is None:
            hub.process.send_signal(sig)
        assert hub.process.stderr is not None
        err = await asyncio.wait_for(hub.process.stderr.read(), 30)
        await hub.process.wait()
        self.running.remove(hub)
        return err.decode()


@pytest.fixture
async def hubs(hub_settings: HubSettings) -> AsyncIterator[Hubs]:
    running = Hubs(hub_settings)
    yield running
    for hub in list(running.running):
        await running.stop(hub, signal.SIGKILL)


async def _status(url: str) -> int:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as reply:
            return reply.status
    except aiohttp.ClientError:
        return 0


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    return errors[0]


async def test_a_second_hub_on_the_same_database_refuses_and_names_the_first(hubs: Hubs) -> None:
    first = await hubs.ready()

    code, err = await hubs.refused()

    line = _one_line(err)
    assert code == 1
    assert "another hub" in line
    assert f"pid {first.process.pid}" in line
    assert await _status(first.readyz) == 200  # the first hub carries on


async def test_a_second_hub_on_another_database_refuses_and_names_the_first(
    hubs: Hubs, tmp_path: Path
) -> None:
    first = await hubs.ready()
    other = tmp_path / "other" / "hub.sqlite3"

    code, err = await hubs.refused(db=other)

    line = _one_line(err)
    assert code == 1
    assert f"another hub is already running for prefix {hubs.settings.prefix!r}" in line
    assert f"pid {first.process.pid}" in line
    assert not other.exists()  # refused before it took anything in
    assert await _status(first.readyz) == 200


async def test_the_prefix_is_free_again_once_its_hub_is_killed(hubs: Hubs) -> None:
    first = await hubs.ready()
    await hubs.stop(first, signal.SIGKILL)

    second = await hubs.ready()

    assert await _status(second.readyz) == 200


async def test_references_are_never_issued_twice_by_two_hubs_started_on_one_prefix(
    hubs: Hubs, tmp_path: Path
) -> None:
    await hubs.ready()
    await hubs.refused(db=tmp_path / "second.sqlite3")
    refs = []
    async with HubClient(hubs.settings) as client:
        for _ in range(5):
            reply = await client.submit(make_contact())
            refs.append(reply.contact_ref)
    assert len(set(refs)) == 5


async def test_a_hub_refuses_to_start_on_a_missing_database_once_the_prefix_has_run(
    hubs: Hubs,
) -> None:
    first = await hubs.ready()
    async with HubClient(hubs.settings) as client:
        earlier = await client.submit(make_contact())
    await hubs.stop(first)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{hubs.settings.db_path}{suffix}").unlink(missing_ok=True)

    code, err = await hubs.refused()

    line = _one_line(err)
    assert code == 1
    assert f"{hubs.settings.db_path} does not exist" in line
    assert "mash hub --new" in line
    assert not hubs.settings.db_path.exists()  # nothing silently started from empty

    await hubs.ready("--new")
    async with HubClient(hubs.settings) as client:
        later = await client.submit(make_contact())
    assert earlier.contact_ref is not None and later.contact_ref is not None
    # The new database continues after every number the old one had reserved.
    assert int(later.contact_ref.rsplit("-", 1)[1]) > RESERVE
    assert later.contact_ref != earlier.contact_ref


async def test_new_is_refused_when_the_database_exists(hubs: Hubs) -> None:
    first = await hubs.ready()
    await hubs.stop(first)

    code, err = await hubs.refused("--new")

    assert code == 1
    assert "already exists" in _one_line(err)


async def test_a_hub_refuses_a_database_that_is_not_its_prefixs(
    stack: Stack, tmp_path: Path
) -> None:
    hub = await stack.hub()
    await stack.stop_hub(hub)
    stranger = HubSettings(prefix="another-mash", db_path=tmp_path / "b" / "hub.sqlite3")
    HubService(stranger).store.close()  # a database of another MASH, with its own id
    for suffix in (".lock",):
        Path(f"{stranger.db_path}{suffix}").unlink()

    with pytest.raises(InstanceRefused, match="is not the database the hub for prefix"):
        await stack.hub(settings=stack.settings.model_copy(update={"db_path": stranger.db_path}))


async def test_a_deleted_database_makes_the_hub_unready_and_it_takes_no_work(
    stack: Stack, hubs: Hubs
) -> None:
    port = free_port()
    settings = stack.settings.model_copy(update={"metrics_port": port})
    await stack.hub(settings=settings)
    readyz = f"http://127.0.0.1:{port}/readyz"
    assert await _status(readyz) == 200

    os.unlink(settings.db_path)

    assert await _status(readyz) == 503
    async with HubClient(stack.settings) as client:
        with pytest.raises(TimeoutError):  # held, unacknowledged, not taken into a lost file
            await client.submit(make_contact(), timeout=3)
    _, out, _ = await mash_cli("status", env=hubs.env())
    assert "was deleted under the running hub" in out


async def test_a_replaced_database_makes_the_hub_unready(stack: Stack) -> None:
    port = free_port()
    settings = stack.settings.model_copy(update={"metrics_port": port})
    await stack.hub(settings=settings)
    readyz = f"http://127.0.0.1:{port}/readyz"
    copy = settings.db_path.with_name("copy.sqlite3")
    copy.write_bytes(settings.db_path.read_bytes())
    copy.chmod(0o600)

    copy.replace(settings.db_path)  # a restore, a move: another file at the same path

    assert await _status(readyz) == 503


async def test_the_hub_takes_its_lock_back_after_a_reconnect(stack: Stack, tmp_path: Path) -> None:
    hub = await stack.hub()
    assert hub._connection is not None
    reconnected = asyncio.Event()
    hub._connection.reconnect_callbacks.add(lambda *_: reconnected.set())

    # A network cut: the broker drops the connection, and its exclusive lock with it.
    underlying = hub._connection.transport
    assert underlying is not None
    await underlying.connection.close(ConnectionError("cut"))
    await asyncio.wait_for(reconnected.wait(), 30)
    for _ in range(100):
        if hub.instance.holds_lock:
            break
        await asyncio.sleep(0.1)

    assert hub.instance.holds_lock
    other = stack.settings.model_copy(update={"db_path": tmp_path / "2" / "hub.sqlite3"})
    with pytest.raises(InstanceRefused, match="another hub is already running"):
        await stack.hub(settings=other)


async def test_a_hub_that_finds_another_holding_its_prefix_after_a_reconnect_stops(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await stack.hub()
    assert hub._lost is not None  # what run_forever waits on: set, the hub stops
    # Another hub took the prefix while this one's connection was down: it holds the lock and
    # has written its own record.
    other = HubInstanceRecord(
        database_id="another-database",
        database="/elsewhere/hub.sqlite3",
        instance="host elsewhere pid 4242 started 2026-12-04T21:00:00+00:00",
        written_at=datetime.now(UTC),
    )
    await hub.publisher.publish(
        stack.topology.hub_instance_exchange,
        "record",
        encode(other),
        message_id="other-record",
        type_=HubInstanceRecord.avro_name,
    )

    async def locked_by_the_other() -> bool:
        return False

    monkeypatch.setattr(hub.instance, "_lock", locked_by_the_other)
    hub.instance._reconnected()

    with pytest.raises(InstanceRefused, match=r"another hub took prefix .* pid 4242"):
        await asyncio.wait_for(asyncio.shield(hub._lost), 10)
    assert not hub.instance.holds_lock


async def test_a_full_disk_makes_the_hub_unready(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    settings = stack.settings.model_copy(update={"metrics_port": port})
    hub = await stack.hub(settings=settings)
    readyz = f"http://127.0.0.1:{port}/readyz"
    assert await _status(readyz) == 200

    # Nothing the disk has left is enough: the hub needs more than the whole disk holds.
    disk = os.statvfs(settings.db_path.parent)
    monkeypatch.setattr(monitoring, "MIN_FREE_BYTES", 2 * disk.f_blocks * disk.f_frsize)

    assert await _status(readyz) == 503
    assert hub.monitoring.database_fault == f"the disk holding {settings.db_path} is full"
