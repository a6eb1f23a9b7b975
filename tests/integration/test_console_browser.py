"""The MASH console in a real browser (Debian's chromium through Playwright) against the real
hub, the four agencies' adapters on their fictional records, and the broker: a manager signs
in, watches the seeds' case studies arrive and their gauges fill, re-rates one with a
rationale while agencies are still checking, reads the packets, records decisions, and the
referrer's feedback and each agency's outcome notice arrive on their queues."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aio_pika
import pytest
from playwright.async_api import Page, expect

from adapters.education import EducationAgency
from adapters.health import HealthAgency
from adapters.housing import HousingAgency
from adapters.police import PoliceAgency
from broker.keyring import Keyring
from broker.signing import Verifier
from broker.topology import Topology
from hub import audit
from hub.client import HubClient
from hub.intake import load_contact_file
from hub.settings import HubSettings
from mash.demo import EXAMPLES
from schemas.codec import decode
from schemas.enums import Decision
from schemas.models import ReferrerFeedback
from tests.integration.console_support import (
    axe_violations,
    browser,
    chromium_missing,
    console_settings,
    serve_console,
    sign_in,
)
from tests.support import Stack

PASSWORD = "correct horse battery staple"
SCREENSHOTS = os.environ.get("MASH_CONSOLE_SCREENSHOTS")  # a folder: write docs' screenshots
# The agencies take a moment each, as their checks would; education and housing are slow
# enough for the manager to re-rate while they are still checking, as in the seeds.
DELAYS = {"police": 0.3, "health": 0.6, "education": 6.0, "housing": 6.5}


def _add_user(name: str, role: str, db: Path) -> None:
    # Through the command line, as an administrator would.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mash",
            "console",
            "user",
            "add",
            name,
            "--role",
            role,
            "--db",
            str(db),
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


async def _gauges(page: Page, ref: str) -> dict[str, str]:
    tags = page.locator(f"tr[data-ref='{ref}'] [data-gauge]")
    return {
        str(await tag.get_attribute("data-agency")): str(await tag.get_attribute("data-gauge"))
        for tag in await tags.all()
    }


async def _fill_in(page: Page, choice: str, rationale_field: str, rationale: str) -> None:
    await page.check(choice)
    await page.fill(rationale_field, rationale)


@pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")
async def test_a_manager_sees_the_board_fill_reads_packets_rerates_and_decides(
    stack: Stack, hub_settings: HubSettings, tmp_path: Path
) -> None:
    settings = console_settings(hub_settings, tmp_path / "console.sqlite3")
    _add_user("mmanager", "mash-manager", settings.console_db)
    hub = await stack.hub()
    adapters = {}
    for agency in (PoliceAgency(), HealthAgency(), EducationAgency(), HousingAgency()):
        adapters[agency.name] = await stack.adapter(agency, answer_delay=DELAYS[agency.name])
    topology = Topology(hub_settings)
    verifier = Verifier(Keyring.load(hub_settings.keyring))

    async with serve_console(settings) as (address, store), browser() as chromium:
        page = await chromium.new_page(viewport={"width": 1280, "height": 900})
        await sign_in(page, address, "mmanager", PASSWORD)
        await expect(page.locator("h1")).to_have_text("Open contacts")
        assert await axe_violations(page) == []

        async with HubClient(hub_settings, name="test-front-door") as front_door:
            teenager = load_contact_file(EXAMPLES / "case-17-year-old-drugs-warrant.json")
            baby = load_contact_file(EXAMPLES / "case-unborn-baby-gp.json")
            reply = await front_door.submit(teenager)
            accepted = time.monotonic()  # the hub has committed the contact and its event
            assert reply.contact_ref is not None
            ref = reply.contact_ref
            # The contact appears on the open board without a reload, within a second.
            row = page.locator(f"tr[data-ref='{ref}']")
            await expect(row).to_be_visible(timeout=5000)
            shown_after = time.monotonic() - accepted
            print(f"contact on the board {shown_after * 1000:.0f} ms after the hub took it")
            assert shown_after < 1.0
            await expect(row.locator("[data-testid=brag]")).to_have_text("AMBER")
            # Police and health answer first: their gauges fill while the others check.
            await expect(row.locator("[data-agency=police]")).to_have_attribute(
                "data-gauge", "answered", timeout=5000
            )
            await expect(row.locator("[data-agency=health]")).to_have_attribute(
                "data-gauge", "answered", timeout=5000
            )
            gauges = await _gauges(page, ref)
            assert gauges["education"] == "outstanding" and gauges["housing"] == "outstanding"
            baby_reply = await front_door.submit(baby)
            assert baby_reply.contact_ref is not None
            baby_ref = baby_reply.contact_ref

        # The manager opens the contact while education and housing are still checking and
        # re-rates it to Red, with the rationale the procedure requires.
        await page.click(f"a:has-text('{ref}')")
        await expect(page.locator("[data-testid=pending]")).to_be_visible()
        await page.click("button:has-text('Re-rate')")  # no rating, no rationale: refused
        await expect(page.locator(".govuk-error-summary")).to_be_visible()
        rationale = "Police and health checks show younger siblings in the house"
        await _fill_in(page, "#brag-RED", "#rerate-rationale", rationale)
        await page.click("button:has-text('Re-rate')")
        await expect(page.locator(".govuk-notification-banner")).to_be_visible()
        await expect(page.locator("[data-testid=packet-brag]")).to_have_text("RED")

        # Back on the board, the packet arrives once every agency has answered.
        await page.click("a:has-text('Board')")
        row = page.locator(f"tr[data-ref='{ref}']")
        await expect(row.locator("[data-testid=brag]")).to_have_text("RED", timeout=5000)
        await expect(row.locator("[data-testid=version]")).to_have_text("version 1", timeout=20_000)
        assert set((await _gauges(page, ref)).values()) == {"answered"}
        await expect(page.locator(f"tr[data-ref='{baby_ref}'] [data-testid=version]")).to_have_text(
            "version 1", timeout=20_000
        )
        if SCREENSHOTS:
            await page.screenshot(path=str(Path(SCREENSHOTS) / "console-board.png"))

        # The packet: people by name, agencies in order, the rating history with rationale,
        # restricted information only as its marker.
        await page.click(f"a:has-text('{ref}')")
        await expect(page.locator("h1")).to_contain_text(ref)
        people = page.locator("table").first
        await expect(people).to_contain_text("Reece HOLLOWAY")
        await expect(people).to_contain_text("Donna Holloway")
        agencies = [
            await s.get_attribute("data-agency")
            for s in await page.locator("section.console-agency").all()
        ]
        assert agencies == ["police", "health", "education", "housing"]
        history = page.locator("[data-testid=rating-history]")
        await expect(history).to_contain_text("AMBER")
        await expect(history).to_contain_text("RED from")
        await expect(history).to_contain_text(rationale)
        restricted = page.locator("[data-testid=restricted]")
        if await restricted.count():
            await expect(restricted.first).to_contain_text("RF-")
        assert await axe_violations(page) == []
        if SCREENSHOTS:
            await page.screenshot(
                path=str(Path(SCREENSHOTS) / "console-packet.png"), full_page=True
            )
        viewed = [r for r in store.activity(ref) if r.action == "packet-viewed"]
        assert viewed and viewed[-1].user == "mmanager"

        # The decision, with its rationale.
        feedback_queue = await _referrer_queue(hub_settings)
        decision_rationale = "Section 47 enquiry: exploitation risk and siblings at home"
        await _fill_in(
            page, "#decision-CHILD_PROTECTION_S47", "#decide-rationale", decision_rationale
        )
        await page.click("button:has-text('Record the decision')")
        await expect(page.locator(".govuk-notification-banner")).to_be_visible()
        await expect(page.locator("[data-testid=decision]")).to_have_text(
            "child protection enquiry (s47)", timeout=5000
        )

        # The referrer hears the outcome, signed by the hub; no rationale travels with it.
        message = await asyncio.wait_for(feedback_queue.get(), 10)
        verifier.verify(
            message.headers, message.message_id, message.type, message.body, frozenset({"hub"})
        )
        feedback = decode(message.body, ReferrerFeedback)
        assert feedback.contact_ref == ref
        assert feedback.decision is Decision.CHILD_PROTECTION_S47
        assert feedback.referrer.organisation == "ZX Constabulary"
        assert decision_rationale not in feedback.message
        await message.ack()
        # Every agency that was asked receives its outcome notice on its request queue.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
            any(n.contact_ref == ref for n in a.notices) for a in adapters.values()
        ):
            await asyncio.sleep(0.05)
        for name, adapter in adapters.items():
            notices = [n for n in adapter.notices if n.contact_ref == ref]
            assert [n.decision for n in notices] == [Decision.CHILD_PROTECTION_S47], name

        # The hub's audit log names the manager, and the decided contact leaves the board.
        entries = [e for e in audit.entries(hub.store.connection, ref) if e.action == "decided"]
        assert entries and entries[0].detail["by"] == "mmanager"
        assert entries[0].detail["rationale"] == decision_rationale
        await page.click("a:has-text('Board')")
        await expect(page.locator(f"tr[data-ref='{ref}']")).to_have_count(0, timeout=5000)
        await expect(page.locator(f"tr[data-ref='{baby_ref}']")).to_be_visible()
    del topology


async def _referrer_queue(
    settings: HubSettings,
) -> asyncio.Queue[aio_pika.abc.AbstractIncomingMessage]:
    found: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
    connection = await aio_pika.connect(settings.amqp_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(Topology(settings).referrer_queue, passive=True)
    await queue.consume(found.put)
    return found
