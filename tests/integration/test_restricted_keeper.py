"""The keeper of the restricted file, run as its officer would: `mash restricted receive` as a
process of its own on the real broker, then `mash restricted read` with only the
restricted-file key and the keeper's store. The hub's database is not needed, and the reader
is whoever the operating system says runs the command."""

from __future__ import annotations

import asyncio
import os
import pwd
import sqlite3
import stat
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest

from broker.consumer import REASON
from broker.publisher import Publisher
from broker.signing import OPERATOR
from hub.client import HubClient
from restricted.keeper import Keeper, KeeperSettings
from schemas.models import RestrictedEnvelope, RestrictedRecord
from tests.integration.test_security import CANARY, HoldsRestricted
from tests.support import Stack, make_contact, signed_publisher


@dataclass
class Officer:
    """The restricted-file officer's side: its store, its key and its environment."""

    store: Path
    env: dict[str, str]

    async def mash(self, *args: str, **extra: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mash",
            *args,
            env={**os.environ, **self.env, **extra},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    def records(self) -> int:
        if not self.store.exists():
            return 0
        with sqlite3.connect(self.store) as db:
            try:
                return int(db.execute("SELECT count(*) FROM records").fetchone()[0])
            except sqlite3.OperationalError:
                return 0


@pytest.fixture
def officer(stack: Stack, tmp_path: Path) -> Officer:
    store = tmp_path / "keeper" / "restricted.sqlite3"
    return Officer(
        store,
        {
            "MASH_PREFIX": stack.settings.prefix,
            "MASH_RESTRICTED_STORE": str(store),
            # The hub's database is nowhere the officer can find it.
            "MASH_DB_PATH": str(tmp_path / "no-hub" / "hub.sqlite3"),
        },
    )


@pytest.fixture
async def keeper_process(officer: Officer) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        "restricted",
        "receive",
        env={**os.environ, **officer.env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    yield process
    if process.returncode is None:
        process.terminate()
        await process.wait()


async def _until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while not condition():
        assert loop.time() < give_up, "timed out"
        await asyncio.sleep(0.1)


async def test_restricted_findings_reach_the_keepers_store_and_read_without_the_hub_database(
    stack: Stack, officer: Officer, keeper_process: asyncio.subprocess.Process
) -> None:
    hub = await stack.hub()
    await stack.adapter(HoldsRestricted("police"))
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact(agencies=["police"]))
    ref = str(reply.contact_ref)
    await watcher.next()
    await _until(lambda: officer.records() == 1)
    # The hub is gone and its database with it: the officer needs neither.
    await stack.stop_hub(hub)
    for path in hub.settings.db_path.parent.glob(hub.settings.db_path.name + "*"):
        path.unlink()

    # Whatever name the reader puts in the environment, the kernel says who they are.
    code, out, err = await officer.mash("restricted", "read", ref, LOGNAME="mallory", USER="x")
    _, log, _ = await officer.mash("restricted", "log", ref)

    unknown = await officer.mash("restricted", "read", "MASH-2026-424242")
    assert code == 0, err
    assert f"RF-{ref}-police from police" in out and CANARY in out
    assert unknown[0] == 1
    assert unknown[2] == "error: no restricted information is held for MASH-2026-424242\n"
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert f" {me} " in log and "restricted-read" in log and "restricted-received" in log
    assert "mallory" not in log and CANARY not in log
    assert stat.S_IMODE(officer.store.stat().st_mode) == 0o600
    assert stat.S_IMODE(officer.store.parent.stat().st_mode) == 0o700
    # A queue with a consumer that takes every record: it no longer only grows.
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(stack.topology.restricted_queue, passive=True)
        assert queue.declaration_result.message_count == 0
        assert queue.declaration_result.consumer_count == 1


async def test_reader_cannot_name_themselves(officer: Officer) -> None:
    code, _, err = await officer.mash("restricted", "read", "MASH-2026-000001", "--reader", "x")

    assert code == 2
    assert "No such option: --reader" in err


async def test_read_without_the_restricted_key_is_refused_and_audited(
    stack: Stack, officer: Officer, keeper_process: asyncio.subprocess.Process, tmp_path: Path
) -> None:
    await stack.hub()
    await stack.adapter(HoldsRestricted("police"))
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact(agencies=["police"]))
    await watcher.next()
    await _until(lambda: officer.records() == 1)
    empty = tmp_path / "no-keys"
    empty.mkdir()

    code, _, err = await officer.mash(
        "restricted", "read", str(reply.contact_ref), MASH_RESTRICTED_KEY_DIR=str(empty)
    )
    _, log, _ = await officer.mash("restricted", "log", str(reply.contact_ref))

    assert code == 1
    assert err.startswith("error: no private key for restricted-file-")
    assert "restricted-read-refused" in log


async def test_keeper_stores_only_what_the_hub_signed_and_each_record_once(
    stack: Stack, tmp_path: Path
) -> None:
    settings = KeeperSettings(
        **stack.settings.model_dump(include={"prefix", "keyring", "key_dir", "amqp_url"}),
        restricted_store=tmp_path / "keeper" / "restricted.sqlite3",
    )
    keeper = Keeper(settings)
    await keeper.start()
    record = RestrictedRecord(
        reference="RF-MASH-2026-000009-police",
        contact_ref="MASH-2026-000009",
        agency="police",
        response_id="r-9",
        received_at=datetime.now(UTC),
        envelope=RestrictedEnvelope(
            key_id="k", ephemeral_public_key=b"e", nonce=b"n", ciphertext=b"c"
        ),
    )
    try:
        async with await aio_pika.connect(stack.settings.amqp_url) as connection:
            hub: Publisher = await signed_publisher(connection, stack.settings, "hub")
            operator = await signed_publisher(connection, stack.settings, OPERATOR)
            for message_id in ("twice-1", "twice-1"):
                await hub.publish_model(
                    stack.topology.restricted, "file", record, message_id=message_id
                )
            await operator.publish_model(
                stack.topology.restricted, "file", record, message_id="forged-1"
            )
            channel = await connection.channel()
            dead = await channel.declare_queue(
                stack.topology.restricted_queue + ".dead", passive=True
            )
            message = await _get(dead)
    finally:
        await keeper.stop()

    assert message.message_id == "forged-1"
    assert message.headers[REASON] == "sender-not-allowed"
    assert keeper.received == 1
    with sqlite3.connect(settings.restricted_store) as db:
        assert db.execute("SELECT count(*) FROM records").fetchone()[0] == 1


async def _get(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    for _ in range(200):
        message = await queue.get(fail=False)
        if message is not None:
            await message.ack()
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing in {queue.name}")
