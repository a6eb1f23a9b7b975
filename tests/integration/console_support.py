"""Helpers for the console's tests: the console served in-process on a free port, Debian's
chromium driven by Playwright, axe-core run in the page."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from console.app import create_app
from console.settings import ConsoleSettings
from console.store import ConsoleStore
from hub.settings import HubSettings

AXE = Path(__file__).resolve().parent.parent / "browser" / "vendor" / "axe.min.js"
CHROMIUM = os.environ.get("MASH_CHROMIUM", "/usr/bin/chromium")
# As the task's set-up says: Debian's chromium, never a browser Playwright downloads.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def chromium_missing() -> str | None:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return None
    return f"{CHROMIUM} not found: install Debian's chromium (make test does)"


def console_settings(hub: HubSettings, db: Path) -> ConsoleSettings:
    return ConsoleSettings(
        prefix=hub.prefix,
        amqp_url=hub.amqp_url,
        keyring=hub.keyring,
        key_dir=hub.key_dir,
        agencies=hub.agencies,
        console_db=db,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_console(settings: ConsoleSettings) -> AsyncIterator[tuple[str, ConsoleStore]]:
    """The console (feed, commands, web) on a free port; yields its address and store."""
    store = ConsoleStore(settings.console_db)
    port = _free_port()
    app = create_app(settings, store=store)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", store
    finally:
        server.should_exit = True
        await task
        store.close()


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": len(v["nodes"])}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def sign_in(page: Page, address: str, name: str, password: str) -> None:
    await page.goto(f"{address}/login")
    await page.fill("#username", name)
    await page.fill("#password", password)
    await page.click("button:has-text('Sign in')")
