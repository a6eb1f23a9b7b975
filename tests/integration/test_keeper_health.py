"""The restricted-file keeper answers /readyz like every other process, so its container (and
any supervisor) can tell whether it is consuming; `mash health` exits 0 for it."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from restricted.keeper import Keeper, KeeperSettings
from tests.ops_support import cli_env, free_port, mash_cli
from tests.support import Stack

pytestmark = pytest.mark.broker


async def test_the_keeper_is_ready_once_it_consumes_and_passes_mash_health(
    stack: Stack, tmp_path: Path
) -> None:
    port = free_port()
    settings = KeeperSettings(
        **stack.settings.model_dump(include={"prefix", "keyring", "key_dir", "amqp_url"}),
        restricted_store=tmp_path / "keeper" / "restricted.sqlite3",
        metrics_port=port,
    )
    keeper = Keeper(settings)
    await keeper.start()
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as reply:
            assert reply.status == 200
            assert await reply.json() == {
                "status": "ready",
                "component": "restricted-keeper",
                "checks": {"broker": True, "consumers": True},
            }
        code, out, _ = await mash_cli("health", url, env=cli_env(settings))
        assert code == 0
        assert out.strip() == "restricted-keeper: ready (broker ok, consumers ok)"
    finally:
        await keeper.stop()
