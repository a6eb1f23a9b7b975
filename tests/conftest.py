"""Shared fixtures. Integration and contract tests run against the real RabbitMQ, found as
``tests/broker.py`` says; each test gets its own name prefix and removes every queue and
exchange it declared."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest

from broker.keyring import Keyring, ensure_keys
from broker.settings import DEFAULT_AGENCIES
from broker.signing import OPERATOR
from broker.topology import Topology, delete
from faults.rabbit_node import RabbitNode, rabbitmq_available
from hub.settings import HubSettings
from telemetry.otel import configure_tracing
from tests.broker import TestBroker, find_test_broker
from tests.support import Keys, Stack

SENDERS = ("hub", OPERATOR, *DEFAULT_AGENCIES, "social-care")

_BROKER = pytest.StashKey[TestBroker]()
# Tests here talk to RabbitMQ; the unit tests never do.
_NEEDS_BROKER = ("integration", "contract")


def pytest_configure(config: pytest.Config) -> None:
    # Most tests run the hub and adapters in this process: record their spans (nothing is
    # exported) so that trace ids exist, as in every `mash` process (telemetry.otel).
    configure_tracing("mash-tests")
    found = find_test_broker(os.environ)
    config.stash[_BROKER] = found
    if found.url is not None:
        # Settings, command-line subprocesses and the fault harness all read it from here.
        os.environ["MASH_AMQP_URL"] = found.url


def pytest_report_header(config: pytest.Config) -> str:
    found = config.stash[_BROKER]
    return f"broker: {found.source}" + (f" ({found.problem})" if found.problem else "")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _BROKER in config.stash:
        config.stash[_BROKER].stop()


def pytest_runtest_setup(item: pytest.Item) -> None:
    found = item.config.stash[_BROKER]
    if found.problem is not None and any(part in _NEEDS_BROKER for part in item.path.parts):
        pytest.fail(found.problem, pytrace=False)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """One key registry for the test session: every sender and the restricted file."""
    folder = tmp_path_factory.mktemp("keys")
    ring = Keyring(folder / "keyring.json")
    ensure_keys(ring, folder / "private", SENDERS)
    ring.save()
    return Keys(ring.path, folder / "private")


@pytest.fixture(autouse=True)
def key_environment(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings and command-line subprocesses read the registry from the environment.
    monkeypatch.setenv("MASH_KEYRING", str(keys.keyring))
    monkeypatch.setenv("MASH_KEY_DIR", str(keys.key_dir))
    monkeypatch.setenv("MASH_RESTRICTED_KEY_DIR", str(keys.restricted_dir))


@pytest.fixture
async def hub_settings(tmp_path: Path, keys: Keys) -> AsyncIterator[HubSettings]:
    settings = HubSettings(
        prefix=f"test-{uuid.uuid4().hex[:10]}",
        db_path=tmp_path / "hub.sqlite3",
        keyring=keys.keyring,
        key_dir=keys.key_dir,
    )
    yield settings
    async with await aio_pika.connect(settings.amqp_url) as connection:
        await delete(connection, Topology(settings))


@pytest.fixture
async def stack(hub_settings: HubSettings) -> AsyncIterator[Stack]:
    running = Stack(hub_settings)
    yield running
    await running.close()


@pytest.fixture(scope="session")
def management_node() -> Iterator[RabbitNode]:
    """A RabbitMQ node of the session's own with the management plugin (the machine's broker
    has none, and must not be reconfigured)."""
    unavailable = rabbitmq_available()
    if unavailable:
        pytest.skip(f"cannot start a RabbitMQ node of our own: {unavailable}")
    with RabbitNode(management=True) as node:
        yield node
