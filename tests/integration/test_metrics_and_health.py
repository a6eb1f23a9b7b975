"""Metrics and health as Prometheus and a container runtime see them: each process's own
``/metrics`` scraped over HTTP after real traffic on the real broker, ``/healthz`` and
``/readyz``, and ``mash health`` exiting 0 or 1."""

from __future__ import annotations

import asyncio
import json
import sys

import aio_pika
import aiohttp
import pytest

from broker.signing import OPERATOR
from broker.topology import Topology
from faults.connections import close_connections
from hub.client import HubClient
from hub.policy import BragPolicy, Window
from hub.settings import HubSettings
from schemas.enums import Brag
from tests.ops_support import cli_env, free_port, mash_cli, scrape, wait_for
from tests.support import KnowsEveryone, Stack, make_contact, signed_publisher

pytestmark = pytest.mark.broker


def _with_port(settings: HubSettings) -> HubSettings:
    return settings.model_copy(update={"metrics_port": free_port()})


async def test_hub_and_adapter_metrics_count_their_own_traffic(stack: Stack) -> None:
    hub_settings = _with_port(stack.settings)
    police_settings = _with_port(stack.settings)
    hub = await stack.hub(BragPolicy(blue=Window.parse("1s")), settings=hub_settings)
    police = await stack.adapter(KnowsEveryone("police"), settings=police_settings)
    await stack.adapters(["health", "education"])  # housing stays silent
    assert hub.monitoring.server is not None and police.ops is not None
    topology = Topology(stack.settings)
    async with HubClient(stack.settings) as client:
        amber = await client.submit(make_contact(Brag.AMBER, agencies=["police", "health"]))
        await client.submit(make_contact(Brag.BLUE, agencies=["police", "housing"]))
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        # A genuine operator's signature, so it is the body the hub refuses.
        operator = await signed_publisher(connection, stack.settings, OPERATOR)
        await operator.publish(stack.topology.contacts, "routine", b"not avro", message_id="bad-1")

    hub_url, police_url = hub.monitoring.server.url, police.ops.url

    async def settled() -> bool:
        figures = await scrape(hub_url)
        return (
            figures.value("mash_deadlines_missed_total") == 1
            and figures.value("mash_dead_letters_total") == 1
            and figures.value("mash_answer_seconds_count") == 3
        )

    await wait_for(settled)
    hub_figures = await scrape(hub_url)
    police_figures = await scrape(police_url)
    routine_contacts = topology.contact_queue("routine")

    assert amber.contact_ref is not None
    assert (
        hub_figures.value(
            "mash_messages_in_total",
            queue=routine_contacts,
            type="uk.mash.Contact",
            outcome="handled",
        )
        == 2
    )
    assert (
        hub_figures.value(
            "mash_messages_in_total",
            queue=topology.answer_queue("routine"),
            type="uk.mash.AgencyResponse",
            agency="police",
            outcome="handled",
        )
        == 2
    )
    assert (
        hub_figures.value(
            "mash_messages_out_total",
            exchange=topology.requests,
            type="uk.mash.InformationRequest",
            agency="housing",
        )
        == 1
    )
    assert hub_figures.value("mash_handling_seconds_count", queue=routine_contacts) == 3
    assert (
        hub_figures.value(
            "mash_dead_letters_total", queue=routine_contacts, reason="not-single-object"
        )
        == 1
    )
    assert hub_figures.value("mash_answer_seconds_count", agency="police", brag="BLUE") == 1
    assert hub_figures.value("mash_deadlines_missed_total", agency="housing", brag="BLUE") == 1
    assert hub_figures.value("mash_overdue_contacts", brag="BLUE") == 1
    assert hub_figures.value("mash_open_contacts", brag="AMBER") == 0  # both answered
    # The adapter's figures are its own: police's requests in, police's answers out.
    assert (
        police_figures.value(
            "mash_messages_in_total",
            queue=topology.request_queue("police", "routine"),
            type="uk.mash.InformationRequest",
            agency="police",
            outcome="handled",
        )
        == 2
    )
    assert (
        police_figures.value("mash_messages_out_total", exchange=topology.answers, agency="police")
        == 2
    )
    assert police_figures.value("mash_messages_in_total", type="uk.mash.Contact") == 0
    async with aiohttp.ClientSession() as session, session.get(f"{police_url}/readyz") as reply:
        assert reply.status == 200
        assert await reply.json() == {
            "status": "ready",
            "component": "adapter-police",
            "checks": {"broker": True, "consumers": True, "signing_key": True},
        }


async def test_ready_process_passes_health_check_and_a_disconnected_one_fails_it(
    stack: Stack,
) -> None:
    hub = await stack.hub(settings=_with_port(stack.settings))
    assert hub.monitoring.server is not None
    url = hub.monitoring.server.url
    env = cli_env(stack.settings)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/healthz") as reply:
            assert reply.status == 200
        async with session.get(f"{url}/readyz") as reply:
            assert reply.status == 200
            assert (await reply.json())["checks"] == {
                "broker": True,
                "consumers": True,
                "instance": True,
                "database": True,
                "signing_key": True,
            }

        code, out, _ = await mash_cli("health", url, env=env)
        assert code == 0
        assert (
            out.strip()
            == "hub: ready (broker ok, consumers ok, instance ok, database ok, signing_key ok)"
        )
        port = str(hub.monitoring.server.port)  # a container's check: this host, its own port
        code, out, _ = await mash_cli("health", env={**env, "MASH_METRICS_PORT": port})
        ready = "hub: ready (broker ok, consumers ok, instance ok, database ok, signing_key ok)"
        assert (code, out.strip()) == (0, ready)

        assert hub._connection is not None
        await hub._connection.close()  # the broker is gone for good: no reconnect
        async with session.get(f"{url}/readyz") as reply:
            assert reply.status == 503
            checks = (await reply.json())["checks"]
        assert checks == {
            "broker": False,
            "consumers": False,
            "instance": False,  # the broker dropped the hub's lock with its connection
            "database": True,
            "signing_key": True,
        }

        code, _, err = await mash_cli("health", url, env=env)
        assert code == 1
        assert err.strip() == f"error: {url}/readyz: not ready (broker, consumers, instance)"

    await stack.stop_hub(hub)
    code, _, err = await mash_cli("health", url, env=env)
    assert code == 1
    assert err.startswith(f"error: cannot reach {url}/readyz")


async def test_metrics_port_zero_serves_nothing(stack: Stack) -> None:
    hub = await stack.hub()
    adapter = await stack.adapter(KnowsEveryone("police"))
    assert hub.monitoring.server is None
    assert adapter.ops is None


class SilentBroker:
    """A TCP listener that accepts connections and never says a word: a broker stuck before
    the AMQP handshake (issue 17.6)."""

    def __init__(self) -> None:
        self.accepted = 0
        self._held: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._held.append(writer)

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"amqp://guest:guest@127.0.0.1:{port}/"

    async def __aexit__(self, *_: object) -> None:
        for writer in self._held:
            writer.close()
        assert self._server is not None
        self._server.close()


async def _events(stream: asyncio.StreamReader, lines: list[str], wanted: int) -> None:
    """Read stderr lines until ``wanted`` connection retries were logged."""
    while sum("broker_connect_retry" in line for line in lines) < wanted:
        line = await stream.readline()
        if not line:
            return
        lines.append(line.decode())


@pytest.mark.parametrize("command", [["hub"], ["adapter", "police"]])
async def test_a_process_whose_broker_never_answers_logs_json_retries_and_is_not_ready(
    hub_settings: HubSettings, command: list[str]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with SilentBroker() as silent_url:
        env = cli_env(
            hub_settings,
            MASH_AMQP_URL=silent_url,
            MASH_METRICS_PORT=str(port),
            MASH_CONNECT_TIMEOUT="0.5",
            MASH_KEYRING=str(hub_settings.keyring),
            MASH_KEY_DIR=str(hub_settings.key_dir),
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mash", *command, env=env, stderr=asyncio.subprocess.PIPE
        )
        assert process.stderr is not None
        lines: list[str] = []
        try:
            await asyncio.wait_for(_events(process.stderr, lines, 2), 30)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{url}/healthz") as reply:
                    assert reply.status == 200
                async with session.get(f"{url}/readyz") as reply:
                    assert reply.status == 503
                    body = await reply.json()
            code, _, err = await mash_cli("health", url, env=env)
        finally:
            process.terminate()
            rest = await asyncio.wait_for(process.stderr.read(), 30)
            await process.wait()

    events = [json.loads(line) for line in lines + rest.decode().splitlines() if line.strip()]
    retries = [e for e in events if e["event"] == "broker_connect_retry"]
    assert len(retries) >= 2
    assert all(e["level"] == "warning" for e in retries)
    assert "no answer to the AMQP handshake within 0.5s" in retries[0]["reason"]
    assert "guest" not in retries[0]["broker"]
    assert [e["retry_in_s"] for e in retries[:2]] == [1.0, 2.0]  # rate-limited: backing off
    assert body["status"] == "starting"
    assert "no answer to the AMQP handshake" in body["reason"]
    assert code == 1
    assert "not ready" in err and "no answer to the AMQP handshake" in err
    assert "refused" not in err


async def test_a_lost_connection_is_logged_as_json_events_without_tracebacks(
    hub_settings: HubSettings,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = cli_env(
        hub_settings,
        MASH_METRICS_PORT=str(port),
        MASH_KEYRING=str(hub_settings.keyring),
        MASH_KEY_DIR=str(hub_settings.key_dir),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mash", "hub", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:

        async def ready() -> bool:
            code, _, _ = await mash_cli("health", url, env=env)
            return code == 0

        await wait_for(ready, 60)
        assert await asyncio.to_thread(close_connections, hub_settings.prefix) >= 1

        async def reconnected() -> bool:
            return (await scrape(url)).value("mash_reconnects_total") >= 1

        await wait_for(reconnected, 60)
        await wait_for(ready, 60)
    finally:
        process.terminate()
        err = (await asyncio.wait_for(process.stderr.read(), 30)).decode()
        await process.wait()

    events = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line JSON
    names = [e["event"] for e in events]
    assert "broker_connection_lost" in names
    assert "broker_reconnected" in names
    assert "Traceback" not in err
