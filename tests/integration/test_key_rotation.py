"""Rotating a running process's signing key, as an operator does it from the shell.

`mash keys generate police` while contacts flow: the running police adapter signs with the
new key from then on; `mash keys retire OLD` afterwards loses no answer. And an adapter
whose only key is retired says so (an error event, /readyz not ready), answers nothing it
would have refused, and answers everything once a new key is generated.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import aio_pika
import aiohttp
from structlog.testing import capture_logs

from broker.keyring import Keyring
from broker.settings import BrokerSettings
from faults.rabbit_node import free_port
from hub.client import HubClient
from schemas.models import ScreeningPacket
from tests.support import KnowsEveryone, PacketWatcher, Stack, make_contact


async def _mash(*args: str, settings: BrokerSettings) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        *args,
        env={
            **os.environ,
            "MASH_KEYRING": str(settings.keyring),
            "MASH_KEY_DIR": str(settings.key_dir),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


def _own_keys(stack: Stack, tmp_path: Path) -> None:
    # A registry of this test's own, so rotating keys does not touch other tests.
    shutil.copytree(stack.settings.key_dir, tmp_path / "private")
    shutil.copy(stack.settings.keyring, tmp_path / "keyring.json")
    stack.settings = stack.settings.model_copy(
        update={"keyring": tmp_path / "keyring.json", "key_dir": tmp_path / "private"}
    )


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while not condition():
        if loop.time() > give_up:
            return False
        await asyncio.sleep(0.05)
    return True


async def _dead_answers(stack: Stack) -> int:
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        total = 0
        for lane in ("urgent", "routine"):
            queue = await channel.declare_queue(
                stack.topology.answer_queue(lane) + ".dead", passive=True
            )
            total += queue.declaration_result.message_count or 0
        return total


async def _packets(watcher: PacketWatcher, count: int) -> list[ScreeningPacket]:
    return [await watcher.next(timeout=20.0) for _ in range(count)]


async def test_rotating_a_running_adapters_key_while_contacts_flow_loses_no_answer(
    stack: Stack, tmp_path: Path
) -> None:
    _own_keys(stack, tmp_path)
    await stack.hub()
    police = await stack.adapter(KnowsEveryone("police"))
    watcher = await stack.watcher()
    old = police.credentials.signer.key_id
    submitted: list[str] = []
    flowing = True

    async def submit_continuously() -> None:
        async with HubClient(stack.settings) as client:
            while flowing:
                reply = await client.submit(make_contact(agencies=["police"]))
                assert reply.contact_ref is not None
                submitted.append(reply.contact_ref)
                await asyncio.sleep(0.05)

    contacts = asyncio.create_task(submit_continuously())
    await _until(lambda: len(submitted) >= 5)
    created = await _mash("keys", "generate", "police", settings=stack.settings)
    new = created.split()[1].rstrip(";")
    # The documented step: wait until the running adapter signs with the new key...
    await _until(lambda: police.credentials.signer.key_id == new, timeout=10.0)
    await _mash("keys", "retire", old, settings=stack.settings)
    # ...and keep contacts flowing past the retirement.
    count = len(submitted)
    await _until(lambda: len(submitted) >= count + 20)
    flowing = False
    await contacts

    packets = await _packets(watcher, len(submitted))
    assert sorted(p.contact_ref for p in packets) == sorted(submitted)
    assert all([a.agency for a in p.answers] == ["police"] for p in packets)
    assert all(not p.missing_agencies for p in packets)
    assert police.credentials.signer.key_id == new
    assert await _dead_answers(stack) == 0


async def test_adapter_whose_only_key_is_retired_says_so_and_answers_once_a_new_key_comes(
    stack: Stack, tmp_path: Path
) -> None:
    _own_keys(stack, tmp_path)
    await stack.hub()
    port = free_port()
    police = await stack.adapter(
        KnowsEveryone("police"),
        settings=stack.settings.model_copy(update={"metrics_port": port}),
    )
    watcher = await stack.watcher()
    old = police.credentials.signer.key_id

    with capture_logs() as logs:
        await _mash("keys", "retire", old, settings=stack.settings)
        async with HubClient(stack.settings) as client:
            reply = await client.submit(make_contact(agencies=["police"]))
        # The adapter holds the request and says why, rather than answering into a refusal.
        ok = await _until(lambda: any(e["event"] == "handler_waiting" for e in logs))
        assert ok, [(e["event"], e.get("error"), e.get("reason")) for e in logs]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz") as response,
        ):
            status, body = response.status, await response.json()
        retired = [e for e in logs if e["event"] == "signing_key_retired"]
        answered = [e for e in logs if e["event"] == "request_answered"]

        assert retired and retired[0]["log_level"] == "error"
        assert "mash keys generate police" in retired[0]["reason"]
        assert status == 503 and body["checks"]["signing_key"] is False
        assert answered == [] and police.answered == 0

        # An operator generates a new key: the held request is answered, nothing was lost.
        await _mash("keys", "generate", "police", settings=stack.settings)
        packet = await watcher.next(timeout=30.0)

    assert packet.contact_ref == reply.contact_ref
    assert [a.agency for a in packet.answers] == ["police"]
    assert police.answered == 1
    assert await _dead_answers(stack) == 0
    assert Keyring.load(stack.settings.keyring).current("police", "signing").key_id != old
