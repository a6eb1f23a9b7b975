"""The dashboard and alert rules against the real thing: Debian's Prometheus server scrapes
a running hub and three agency adapters (real processes, as an operator runs them) and
RabbitMQ's own rabbitmq_prometheus plugin, using the shipped example scrape configuration and
alert rules; after a few contacts every panel of the shipped Grafana dashboard returns data,
and the alerts those contacts call for fire.

The whole test runs on a RabbitMQ node of its own: the machine's broker has no Prometheus
plugin and must not be reconfigured."""

from __future__ import annotations

import asyncio
import math
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
import yaml

from broker.signing import OPERATOR
from broker.topology import Topology
from faults.rabbit_node import RabbitNode, rabbitmq_available
from hub.client import HubClient
from hub.settings import HubSettings
from schemas.enums import Brag
from tests.monitoring_support import ALERTS, SCRAPE_CONFIG, dashboard_queries, promql
from tests.monitoring_support import dashboard as load_dashboard
from tests.ops_support import cli_env, free_port, wait_for
from tests.support import Keys, make_contact, signed_publisher

pytestmark = pytest.mark.broker

ANSWERING = ("police", "health", "education")  # housing runs no adapter: it never answers
# A Red contact due in 20 minutes is inside MashRedDeadlineNear's 30; a Blue one passes its
# deadline at once, so a deadline is missed within the test.
POLICY = {"MASH_BRAG_RED": "20m", "MASH_BRAG_BLUE": "2s"}


@pytest.fixture(scope="module")
def rabbit() -> Iterator[tuple[RabbitNode, int]]:
    unavailable = rabbitmq_available()
    if unavailable:
        pytest.skip(f"cannot start a RabbitMQ node of our own: {unavailable}")
    port = free_port()
    with RabbitNode(
        plugins=["rabbitmq_prometheus"], config=[f"prometheus.tcp.port = {port}"]
    ) as node:
        yield node, port


@asynccontextmanager
async def running(
    name: str, args: list[str], env: dict[str, str], logs: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A process whose output goes to a log file, stopped (SIGTERM, then SIGKILL) at the end."""
    with (logs / f"{name}.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def get_json(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with session.get(url, params=params) as reply:
        body = await reply.json(content_type=None)
        assert reply.status == 200, body
        return body


async def ready(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as reply:
            return reply.status == 200
    except aiohttp.ClientError:
        return False


def scrape_config(targets: dict[str, list[str]], prometheus_dir: Path) -> Path:
    """The shipped example configuration with this test's targets, scraped every second."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(ALERTS)]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": targets.pop(job["job_name"])}]
    assert targets == {}, "the example configuration lacks a job the test scrapes"
    path = prometheus_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def has_data(result: dict[str, Any]) -> bool:
    """Some series with some value that is a number (a quantile of nothing is NaN)."""
    for series in result["result"]:
        values = series.get("values") or [series["value"]]
        if any(not math.isnan(float(v)) for _, v in values):
            return True
    return False


async def test_every_dashboard_panel_returns_data_from_a_running_hub_and_adapters(
    rabbit: tuple[RabbitNode, int], tmp_path: Path, keys: Keys
) -> None:
    prometheus_binary = shutil.which("prometheus")
    if prometheus_binary is None:
        pytest.skip("no Prometheus server: `make promtool` installs Debian's prometheus package")
    node, rabbit_metrics_port = rabbit
    settings = HubSettings(
        prefix=f"test-{uuid.uuid4().hex[:10]}",
        amqp_url=node.amqp_url,
        db_path=tmp_path / "hub.sqlite3",
        keyring=keys.keyring,
        key_dir=keys.key_dir,
    )
    topology = Topology(settings)
    ports = {name: free_port() for name in ("hub", *ANSWERING)}
    base_env = cli_env(
        settings, MASH_KEYRING=str(keys.keyring), MASH_KEY_DIR=str(keys.key_dir), **POLICY
    )
    prometheus_port = free_port()
    prometheus_url = f"http://127.0.0.1:{prometheus_port}"
    prometheus_dir = tmp_path / "prometheus"
    prometheus_dir.mkdir()
    config = scrape_config(
        {
            "mash-hub": [f"127.0.0.1:{ports['hub']}"],
            "mash-adapters": [f"127.0.0.1:{ports[a]}" for a in ANSWERING],
            "rabbitmq": [f"127.0.0.1:{rabbit_metrics_port}"],
        },
        prometheus_dir,
    )

    async with AsyncExitStack() as stack, aiohttp.ClientSession() as session:
        mash = [sys.executable, "-m", "mash"]
        for name, port in ports.items():
            command = [*mash, "hub"] if name == "hub" else [*mash, "adapter", name]
            env = {**base_env, "MASH_METRICS_PORT": str(port)}
            await stack.enter_async_context(running(name, command, env, tmp_path))
        for port in ports.values():
            await wait_for(lambda p=port: ready(session, f"http://127.0.0.1:{p}/readyz"), 60)
        await stack.enter_async_context(
            running(
                "prometheus",
                [
                    prometheus_binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={prometheus_dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                ],
                {"PATH": "/usr/bin:/bin"},
                tmp_path,
            )
        )
        await wait_for(lambda: ready(session, f"{prometheus_url}/-/ready"), 60)
        api = f"{prometheus_url}/api/v1"

        async def every_target_up() -> bool:
            targets = (await get_json(session, f"{api}/targets"))["data"]["activeTargets"]
            return len(targets) == len(ports) + 1 and all(t["health"] == "up" for t in targets)

        await wait_for(every_target_up, 30)
        began = time.time()

        async def prometheus_sees(query: str, at_least: float) -> bool:
            found = (await get_json(session, f"{api}/query", query=query))["data"]["result"]
            return bool(found) and float(found[0]["value"][1]) >= at_least

        async with HubClient(settings) as client:
            # One answer per agency: Prometheus has already scraped its series at zero, so
            # even the first answer is a rate the answer-time panel can show.
            await client.submit(make_contact(Brag.AMBER, agencies=ANSWERING))
            await client.submit(make_contact(Brag.RED, agencies=["police", "housing"]))
            await client.submit(make_contact(Brag.BLUE, agencies=["police", "housing"]))
        async with await aio_pika.connect(settings.amqp_url) as connection:
            operator = await signed_publisher(connection, settings, OPERATOR)
            await operator.publish(topology.contacts, "routine", b"not avro", message_id="bad-1")
        await wait_for(lambda: prometheus_sees("sum(mash_answer_seconds_count)", 5), 30)
        await wait_for(lambda: prometheus_sees("sum(mash_deadlines_missed_total)", 1), 30)
        await wait_for(lambda: prometheus_sees("sum(mash_dead_letters_total)", 1), 30)

        queries = [
            (query, panel["instant"])
            for query, panel in zip(
                dashboard_queries(),
                (t for p in load_dashboard()["panels"] for t in p.get("targets", [])),
                strict=True,
            )
        ]
        assert len(queries) >= 10

        async def evaluate(expr: str, instant: bool) -> dict[str, Any]:
            now = time.time()
            text = promql(expr, rate_interval="15s", range_=f"{int(now - began) + 5}s")
            if instant:
                reply = await get_json(session, f"{api}/query", query=text, time=str(now))
            else:
                reply = await get_json(
                    session,
                    f"{api}/query_range",
                    query=text,
                    start=str(began),
                    end=str(now),
                    step="1",
                )
            assert reply["status"] == "success", (expr, reply)
            data: dict[str, Any] = reply["data"]
            return data

        async def every_panel_has_data() -> bool:
            return all([has_data(await evaluate(q.expr, instant)) for q, instant in queries])

        try:
            await wait_for(every_panel_has_data, 30)
        except TimeoutError:
            empty = [
                q.where for q, instant in queries if not has_data(await evaluate(q.expr, instant))
            ]
            pytest.fail(f"panels with no data: {empty}")

        # The rules load and evaluate without error on real series, and the alerts these
        # contacts call for fire: a Red contact due in 20 minutes with housing outstanding,
        # and the contact the hub dead-lettered.
        groups = (await get_json(session, f"{api}/rules"))["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert len(rules) >= 5
        assert [r["name"] for r in rules if r["health"] != "ok"] == []

        async def firing() -> set[tuple[str, str]]:
            alerts = (await get_json(session, f"{api}/alerts"))["data"]["alerts"]
            return {
                (a["labels"]["alertname"], a["labels"].get("brag") or a["labels"].get("queue", ""))
                for a in alerts
                if a["state"] == "firing"
            }

        expected = {
            ("MashRedDeadlineNear", "RED"),
            ("MashDeadLetterQueueGrowing", f"{topology.contact_queue('routine')}.dead"),
        }

        async def expected_firing() -> bool:
            return expected <= await firing()

        await wait_for(expected_firing, 30)
        assert not {name for name, _ in await firing()} & {"MashHubNotReady", "MashAdapterDown"}
