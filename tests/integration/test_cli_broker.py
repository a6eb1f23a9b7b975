"""The command line against a broker it cannot use (issues 16.4 and 17.10): a URL that is no
URL, a closed port, a broker that never answers the handshake, a user with no permission on
the vhost. Each command fails within its connect timeout with one clear line and a non-zero
exit, never a traceback or a hang."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest

from broker.topology import Topology, declare
from hub.settings import HubSettings
from tests.integration.test_metrics_and_health import SilentBroker
from tests.ops_support import cli_env, free_port, mash_cli

pytestmark = pytest.mark.broker

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contacts"
TIMEOUT_S = 1.0
COMMANDS = {
    "submit": ["contact", "submit", str(EXAMPLE / "amber-baby-domestic-abuse-police.json")],
    "dlq": ["dlq", "list"],
    "status": ["status", "--json"],
}


@pytest.fixture(scope="module")
def stranger() -> Iterator[str]:
    """A broker user with no permission on any vhost (created and deleted here)."""
    name = f"test-wire-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_user", name, "pw"], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_user", name], capture_output=True)


@pytest.fixture
async def silent() -> AsyncIterator[str]:
    async with SilentBroker() as url:
        yield url


# Refused by settings validation, before status has anything to report as JSON.
SETTINGS_ERRORS = frozenset({"garbage", "bad-port"})


def _urls(silent: str, stranger: str) -> dict[str, tuple[str, str]]:
    """Each unusable broker, and what its one line must say."""
    return {
        # Settings validation names the variable before any connection is tried.
        "garbage": ("garbage", "MASH_AMQP_URL"),
        "bad-port": ("amqp://guest:guest@127.0.0.1:99999/", "MASH_AMQP_URL"),
        "closed-port": (f"amqp://guest:guest@127.0.0.1:{free_port()}/", "cannot connect"),
        "silent": (silent, f"no answer to the AMQP handshake within {TIMEOUT_S:g}s"),
        "no-vhost-permission": (
            f"amqp://{stranger}:pw@127.0.0.1:5672/",
            f"broker refused mash-{{name}}: user {stranger} has no access to vhost /",
        ),
    }


@pytest.mark.parametrize("broker", ["garbage", "bad-port", "closed-port", "silent"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_a_command_fails_in_bounded_time_with_one_line_on_an_unusable_broker(
    hub_settings: HubSettings, silent: str, stranger: str, command: str, broker: str
) -> None:
    await _one_line(hub_settings, silent, stranger, command, broker)


@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_a_missing_vhost_permission_is_one_clear_line(
    hub_settings: HubSettings, silent: str, stranger: str, command: str
) -> None:
    await _one_line(hub_settings, silent, stranger, command, "no-vhost-permission")


async def _one_line(
    settings: HubSettings, silent: str, stranger: str, command: str, broker: str
) -> None:
    url, says = _urls(silent, stranger)[broker]
    names = {"submit": "cli", "dlq": "dlq", "status": "status"}
    says = says.replace("{name}", names[command])
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    env = cli_env(
        settings,
        MASH_AMQP_URL=url,
        MASH_CONNECT_TIMEOUT=str(TIMEOUT_S),
        MASH_KEYRING=str(settings.keyring),
        MASH_KEY_DIR=str(settings.key_dir),
    )
    started = time.monotonic()
    code, out, err = await asyncio.wait_for(mash_cli(*COMMANDS[command], env=env), 30)
    elapsed = time.monotonic() - started

    assert code != 0
    assert "Traceback" not in err + out
    assert elapsed < 15  # interpreter start-up plus one bounded attempt
    if command == "status" and broker not in SETTINGS_ERRORS:
        # status reports each problem in its JSON and the broker's first in one error line.
        assert says in json.loads(out)["broker"]["error"]
        [line] = [line for line in err.splitlines() if line.startswith("error:")]
    else:
        [line] = err.splitlines()
    assert says in line, line


@pytest.mark.parametrize(
    "command",
    [COMMANDS["submit"], ["hub", "--new"], ["adapter", "police"], ["console"]],
    ids=["submit", "hub", "adapter", "console"],
)
async def test_a_queue_setting_changed_after_the_queues_exist_is_one_line_naming_the_queue(
    hub_settings: HubSettings, command: list[str]
) -> None:
    # RabbitMQ refuses to declare a queue again with other arguments (PRECONDITION_FAILED):
    # MASH_DELIVERY_LIMIT, MASH_MAX_QUEUE_LENGTH or MASH_QUORUM_GROUP_SIZE changed on a running
    # deployment. The command must say so, not print the client library's traceback.
    env = cli_env(
        hub_settings,
        MASH_KEYRING=str(hub_settings.keyring),
        MASH_KEY_DIR=str(hub_settings.key_dir),
    )
    async with await aio_pika.connect(hub_settings.amqp_url) as connection:
        await declare(await connection.channel(), Topology(hub_settings))  # as it was

    hub_settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    code, out, err = await asyncio.wait_for(
        mash_cli(*command, env={**env, "MASH_DELIVERY_LIMIT": "7"}), 60
    )

    assert code != 0
    assert "Traceback" not in err + out
    [line] = err.splitlines()
    assert "x-delivery-limit" in line and f"{hub_settings.prefix}." in line
    assert "MASH_DELIVERY_LIMIT" in line
