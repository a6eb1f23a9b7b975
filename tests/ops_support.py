"""Helpers for the operator-tooling tests: run the ``mash`` command against a test's own
prefix and database, scrape a Prometheus endpoint, wait for a condition."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from broker.settings import BrokerSettings
from hub.settings import HubSettings

__all__ = ["Scrape", "cli_env", "free_port", "mash_cli", "scrape", "wait_for"]


def free_port() -> int:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        return int(holder.getsockname()[1])


def cli_env(settings: BrokerSettings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASH_")}
    env.update(
        MASH_PREFIX=settings.prefix,
        MASH_AMQP_URL=settings.amqp_url,
        MASH_MANAGEMENT_URL=settings.management_url,
    )
    if isinstance(settings, HubSettings):
        env["MASH_DB_PATH"] = str(settings.db_path)
    env.update(extra)
    return env


async def mash_cli(
    *args: str, env: Mapping[str, str], stdin: bytes | None = None, timeout: float = 60
) -> tuple[int, str, str]:
    """Run ``python -m mash ARGS``; returns exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        *args,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin or b""), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Scrape:
    """One scrape of a ``/metrics`` endpoint: sample values by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of every sample called ``name`` whose labels include ``labels``."""
        return sum(
            value
            for sample, have, value in self.samples
            if sample == name and all(have.get(k) == v for k, v in labels.items())
        )


async def scrape(base_url: str) -> Scrape:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/metrics") as reply:
        assert reply.status == 200
        return Scrape(await reply.text())


async def wait_for(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.1)
