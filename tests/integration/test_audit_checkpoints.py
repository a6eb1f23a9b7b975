"""A running hub signs its audit log's head and sends it off the hub: to the events exchange
and to the operator's checkpoint file. Once it is there, a database writer who truncates
the log is found, even after the hub has stopped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aio_pika

from broker.keyring import Keyring
from hub import audit
from hub.client import HubClient
from schemas.codec import decode
from schemas.enums import HubEventKind
from schemas.models import HubEvent
from tests.support import Stack, make_contact


async def _checkpoint_events(stack: Stack) -> list[audit.Checkpoint]:
    found = []
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(stack.topology.event_queue, passive=True)
        while (message := await queue.get(fail=False)) is not None:
            event = decode(message.body, HubEvent)
            if event.kind is HubEventKind.AUDIT_CHECKPOINT:
                found.append(audit.Checkpoint.from_detail(event.detail))
    return found


async def test_running_hub_sends_signed_checkpoints_that_expose_a_later_truncation(
    stack: Stack, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "operator" / "checkpoints.jsonl"
    settings = stack.settings.model_copy(
        update={"audit_checkpoints": checkpoints, "audit_checkpoint_s": 0.2}
    )
    hub = await stack.hub(settings=settings)
    await stack.adapters()
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        await client.submit(make_contact())
    await watcher.next()
    await stack.stop_hub(hub)  # its last checkpoint covers everything it wrote

    ring = Keyring.load(stack.settings.keyring)
    in_file = audit.read_checkpoints(checkpoints)
    published = await _checkpoint_events(stack)
    connection = sqlite3.connect(hub.settings.db_path)
    count = audit.head(connection)[0]
    for checkpoint in in_file + published:
        audit.check_signature(checkpoint, ring)
    assert in_file[-1].count == count > 0
    assert [c.head for c in published] == [c.head for c in in_file]
    assert oct(checkpoints.stat().st_mode & 0o777) == "0o600"

    # A database writer removes the newest entries while the hub is down.
    connection.execute("DELETE FROM audit WHERE seq > ?", (count - 3,))
    connection.commit()
    assert audit.verify(connection)[1] is None  # the chain alone is fooled
    problem = audit.verify_against(connection, in_file)
    assert problem is not None and "the newest entries were removed" in problem
    connection.close()
