"""The fault classes. Each runs a bounded load through the hub and all four adapters while
its fault is applied, lets the system settle, and returns the count.

Every class has the same goal: lost 0, duplicated effects 0, unexpected 0, every contact
exactly one final packet (amendments only for late answers), every due deadline fired exactly
once, every queue drained.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from broker.settings import BrokerSettings
from faults.connections import close_connections
from faults.harness import Harness
from faults.proxy import FaultyProxy
from faults.rabbit_cluster import RabbitCluster
from faults.rabbit_node import RabbitNode
from faults.verdict import Verdict
from schemas.enums import Brag

__all__ = ["SCENARIOS", "Scenario"]


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[int, Path], Awaitable[Verdict]]
    needs_own_broker: bool = False


async def _during(load: Awaitable[None], fault: Callable[[], Awaitable[None]]) -> None:
    """Run the load and the fault at the same time; the fault starts once load is flowing."""
    task = asyncio.ensure_future(load)
    await asyncio.sleep(0.3)
    await fault()
    await task


async def connections_closed(contacts: int, workdir: Path) -> Verdict:
    async with Harness("connections-closed", workdir) as run:
        await run.cluster.start_all()

        async def fault() -> None:
            for _ in range(3):
                run.faults_injected += await asyncio.to_thread(close_connections, run.prefix)
                await asyncio.sleep(1.0)

        await _during(run.submit(contacts), fault)
        await run.settle()
        return await run.verdict()


async def hub_killed(contacts: int, workdir: Path) -> Verdict:
    async with Harness("hub-sigkill", workdir) as run:
        await run.cluster.start_all()
        chance = random.Random(contacts)

        async def fault() -> None:
            for _ in range(4):
                await asyncio.sleep(chance.uniform(0.1, 1.0))
                run.cluster.kill("hub")
                run.faults_injected += 1
                await run.cluster.restart("hub")

        await _during(run.submit(contacts), fault)
        await run.settle()
        return await run.verdict()


async def adapter_killed(contacts: int, workdir: Path) -> Verdict:
    # Adapters that take a moment per request hold unacknowledged requests when killed.
    async with Harness("adapter-sigkill", workdir) as run:
        await run.cluster.start_all(("hub",))
        slow = {"MASH_ADAPTER_ANSWER_DELAY": "0.02"}
        for agency in run.cluster.agencies:
            run.cluster.start(agency, slow)
        for agency in run.cluster.agencies:
            await run.cluster.wait_ready(agency, 1)
        chance = random.Random(contacts)

        async def fault() -> None:
            for _ in range(4):
                await asyncio.sleep(chance.uniform(0.2, 1.0))
                victim = chance.choice(run.cluster.agencies)
                run.cluster.kill(victim)
                run.faults_injected += 1
                await run.cluster.restart(victim, slow)

        await _during(run.submit(contacts), fault)
        await run.settle()
        return await run.verdict()


async def network_faults(contacts: int, workdir: Path) -> Verdict:
    broker = urlsplit(BrokerSettings().amqp_url)
    proxy = FaultyProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
    port = await proxy.start()
    netloc = f"{broker.username}:{broker.password}@127.0.0.1:{port}"
    client_url = urlunsplit((broker.scheme, netloc, broker.path, broker.query, ""))
    try:
        async with Harness("network-cut-stall", workdir, client_url=client_url) as run:
            await run.cluster.start_all()

            async def fault() -> None:
                run.faults_injected += proxy.cut() > 0
                await asyncio.sleep(1.5)
                await proxy.stall(3.0)
                run.faults_injected += 1
                await asyncio.sleep(1.0)
                run.faults_injected += proxy.cut() > 0

            await _during(run.submit(contacts), fault)
            await run.settle()
            return await run.verdict()
    finally:
        await proxy.stop()


async def hub_down_across_deadline(contacts: int, workdir: Path) -> Verdict:
    # Blue contacts with a short window; housing is silent until after the deadline, and the
    # hub is killed once the other three have answered, before the deadline, and comes back
    # after it. The window leaves time for the load to be taken in first.
    window = max(4.0, contacts / 40)
    async with Harness(
        "hub-down-deadline", workdir, extra_env={"MASH_BRAG_BLUE": f"{window:g}s"}
    ) as run:
        await run.cluster.start_all(("hub", "police", "health", "education"))
        await run.submit(contacts, Brag.BLUE)
        await run.wait_for_answers(3 * contacts, timeout=window * 0.8)
        run.cluster.kill("hub")
        run.faults_injected += 1
        await asyncio.sleep(window + 1.0)
        await run.cluster.restart("hub")
        run.cluster.start("housing")
        await run.cluster.wait_ready("housing", 1)
        await run.settle(amendments_expected=True)
        return await run.verdict()


async def broker_restarted(contacts: int, workdir: Path) -> Verdict:
    # A RabbitMQ node of the run's own, so the machine's broker is never restarted.
    with RabbitNode() as node:
        url = f"amqp://guest:guest@127.0.0.1:{node.amqp_port}/"
        async with Harness("broker-restart", workdir, amqp_url=url) as run:
            await run.cluster.start_all()

            async def fault() -> None:
                for _ in range(2):
                    await asyncio.to_thread(node.restart)
                    run.faults_injected += 1
                    await asyncio.sleep(1.0)

            await _during(run.submit(contacts), fault)
            await run.settle()
            return await run.verdict()


async def unparseable_headers(contacts: int, workdir: Path) -> Verdict:
    # Messages whose headers the client library cannot read, mixed into the load on every
    # queue the hub and the adapters consume (issue 16.1). Each must be dead-lettered with its
    # reason while every good contact gets its packet, and no connection may be lost.
    async with Harness("unparseable-headers", workdir) as run:
        await run.cluster.start_all()
        topology = run.topology
        targets = [
            (topology.answers, "routine"),
            (topology.answers, "urgent"),
            (topology.contacts, "routine"),
            (topology.commands, "command"),
            *((topology.requests, f"{agency}.routine") for agency in run.cluster.agencies),
            *((topology.requests, f"{agency}.urgent") for agency in run.cluster.agencies),
        ]
        per_round = max(1, contacts // (5 * len(targets)))

        async def fault() -> None:
            for _ in range(5):
                for exchange, key in targets:
                    await run.publish_poison(per_round, exchange, key)
                await asyncio.sleep(0.2)

        await _during(run.submit(contacts), fault)
        await run.collect_poison()
        await run.settle()
        verdict = await run.verdict()
        return replace(verdict, connection_losses=run.connection_losses())


async def rabbit_leader_killed(contacts: int, workdir: Path) -> Verdict:
    # Three private nodes; every process is given all three and each queue has a replica on
    # each. The node leading the hub's contact queue dies by SIGKILL mid-load, comes back,
    # and the node leading it then dies too.
    with RabbitCluster() as cluster:
        async with Harness(
            "rabbit-leader-sigkill", workdir, amqp_url=cluster.amqp_urls, quorum_group_size=3
        ) as run:
            await run.cluster.start_all()
            queue = run.topology.contact_queue("routine")

            async def fault() -> None:
                for _ in range(2):
                    leader = await asyncio.to_thread(cluster.leader_of, "/", queue)
                    await asyncio.to_thread(leader.kill)
                    run.faults_injected += 1
                    await asyncio.sleep(2.0)
                    await asyncio.to_thread(leader.start_again)

            await _during(run.submit(contacts), fault)
            await run.settle()
            return await run.verdict()


async def rabbit_node_restarted(contacts: int, workdir: Path) -> Verdict:
    # The node every process connects to first is stopped and started again mid-load, as an
    # operator's rolling restart of the cluster would.
    with RabbitCluster() as cluster:
        async with Harness(
            "rabbit-node-restart", workdir, amqp_url=cluster.amqp_urls, quorum_group_size=3
        ) as run:
            await run.cluster.start_all()

            async def fault() -> None:
                await asyncio.to_thread(cluster.nodes[0].restart)
                run.faults_injected += 1

            await _during(run.submit(contacts), fault)
            await run.settle()
            return await run.verdict()


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("broker-restart", broker_restarted, needs_own_broker=True),
    Scenario("connections-closed", connections_closed),
    Scenario("hub-sigkill", hub_killed),
    Scenario("adapter-sigkill", adapter_killed),
    Scenario("network-cut-stall", network_faults),
    Scenario("hub-down-deadline", hub_down_across_deadline),
    Scenario("unparseable-headers", unparseable_headers),
    Scenario("rabbit-leader-sigkill", rabbit_leader_killed, needs_own_broker=True),
    Scenario("rabbit-node-restart", rabbit_node_restarted, needs_own_broker=True),
)
