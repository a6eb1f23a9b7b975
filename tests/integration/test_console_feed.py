"""The console never misses a packet: packets published while it is down wait on its own
durable queue and are stored when it starts; any of them can be looked up by reference, by
several officers at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest
from argon2 import PasswordHasher
from playwright.async_api import expect

from broker.topology import Topology, delete
from console.auth import Accounts, Role
from console.store import ConsoleStore
from hub.client import HubClient
from hub.settings import HubSettings
from tests.integration.console_support import (
    browser,
    chromium_missing,
    console_settings,
    serve_console,
    sign_in,
)
from tests.support import Stack, make_contact

PASSWORD = "a long enough password"


async def _stored(store: ConsoleStore, refs: list[str], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while any(store.packet(ref) is None for ref in refs):
            await asyncio.sleep(0.05)


@pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")
async def test_packets_published_while_the_console_is_down_are_there_when_it_starts(
    stack: Stack, hub_settings: HubSettings, tmp_path: Path
) -> None:
    settings = console_settings(hub_settings, tmp_path / "console.sqlite3")
    accounts = Accounts(ConsoleStore(settings.console_db), PasswordHasher(time_cost=1))
    for name in ("officer-a", "officer-b"):
        accounts.add(name, Role.SCREENING_OFFICER, PASSWORD, datetime.now(UTC))
    await stack.hub()
    await stack.adapters()
    watcher = await stack.watcher()
    # The console has run once (its queue is in the topology the hub declares), then stops.
    async with serve_console(settings):
        pass
    async with HubClient(hub_settings) as client:
        refs = [str((await client.submit(make_contact())).contact_ref) for _ in range(3)]
    for _ in refs:
        await watcher.next()  # every packet is out while the console is down

    async with serve_console(settings) as (address, store), browser() as chromium:
        await _stored(store, refs)
        pages = []
        for name in ("officer-a", "officer-b"):
            page = await (await chromium.new_context()).new_page()
            await sign_in(page, address, name, PASSWORD)
            pages.append(page)
        for page in pages:
            for ref in refs:
                await expect(page.locator(f"tr[data-ref='{ref}']")).to_be_visible()
        # Looked up by reference, by both at once.
        for page in pages:
            await page.fill("#ref", refs[1].lower())
        await asyncio.gather(*(page.click("button:has-text('Find')") for page in pages))
        for page in pages:
            await expect(page.locator("h1")).to_contain_text(refs[1])
            await expect(page.locator("table").first).to_contain_text("Test Child")
        viewers = {r.user for r in store.activity(refs[1]) if r.action == "packet-viewed"}
        assert viewers == {"officer-a", "officer-b"}


async def test_two_console_instances_each_get_every_packet_even_one_that_was_down(
    stack: Stack, hub_settings: HubSettings, tmp_path: Path
) -> None:
    # A second console (another site, a stand-by) is an instance of its own: had the two
    # shared one queue, each would hold about half the packets.
    main = console_settings(hub_settings, tmp_path / "main.sqlite3")
    duty = console_settings(hub_settings, tmp_path / "duty.sqlite3").model_copy(
        update={"console_instance": "duty"}
    )
    hub = hub_settings.model_copy(update={"console_instances": ("main", "duty")})
    await stack.hub(settings=hub)  # declares both instances' queues
    await stack.adapters()
    watcher = await stack.watcher()
    try:
        async with serve_console(main) as (_, main_store):
            async with HubClient(hub_settings) as client:
                refs = [str((await client.submit(make_contact())).contact_ref) for _ in range(4)]
            for _ in refs:
                await watcher.next()  # every packet is out while the duty console is down
            await _stored(main_store, refs)
        async with serve_console(duty) as (_, duty_store):
            await _stored(duty_store, refs)
    finally:
        # The fixture removes the prefix's usual queues; the duty console's are extra.
        async with await aio_pika.connect(hub.amqp_url) as connection:
            await delete(connection, Topology(hub))

    assert Topology(duty).console_packet_queue.endswith(".console.duty.packets")
    assert Topology(main).console_packet_queue.endswith(".console.packets")
