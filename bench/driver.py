"""The load driver: what every flow offers it, a saturated run and a paced run.

- **Saturated**: submit N contacts as fast as the broker confirms them (a window of
  publishes in flight), and time from the first submission to the N-th packet.
- **Paced**: submit at a fixed rate, each contact at its scheduled moment whatever happened
  to the ones before (open loop), and record each contact's time to packet.

The driver is a process of its own; it reads packets from the flow's packet queue without
acks so that it costs the system under test as little as possible.

It does not use the product's screening client (:mod:`screening.client`) as the demo, the
tests and the fault harness do: the raw baseline flow's packets are not signed by the hub,
so the client would dead-letter them, and verifying and decoding every packet would be
counted against the system under test.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from bench.latency import Tracker, summary
from bench.processes import BenchError, Child, stop_all

__all__ = ["Flow", "Paced", "Saturated", "paced", "saturate"]


class Flow(abc.ABC):
    """One way of writing the contact cycle, running as separate processes."""

    name: str

    def __init__(self, amqp_url: str, prefix: str, workdir: Path) -> None:
        self.amqp_url = amqp_url
        self.prefix = prefix
        self.workdir = workdir
        # Owner-only: the hub refuses a database folder other accounts may open.
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.tracker = Tracker()
        self.children: list[Child] = []
        self._connection: AbstractRobustConnection | None = None
        self._packet_channel: AbstractChannel | None = None

    @property
    def connection(self) -> AbstractRobustConnection:
        assert self._connection is not None, "the flow has not started"
        return self._connection

    async def connect(self) -> AbstractRobustConnection:
        self._connection = await aio_pika.connect_robust(
            self.amqp_url, client_properties={"connection_name": f"mash-bench-{self.name}"}
        )
        return self._connection

    @abc.abstractmethod
    async def start(self) -> None:
        """Declare, start the processes, and return once they consume."""

    @abc.abstractmethod
    async def submit(self, key: str, index: int) -> None:
        """Publish contact ``key`` (the ``index``-th) and return once it is confirmed."""

    @abc.abstractmethod
    def packet_key(self, message: AbstractIncomingMessage) -> str:
        """Which contact a packet answers."""

    @abc.abstractmethod
    async def cleanup(self) -> None:
        """Delete every queue and exchange the flow declared."""

    async def watch_packets(self, queue: str) -> None:
        channel = self._packet_channel = await self.connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        await declared.consume(self._on_packet, no_ack=True)

    async def _on_packet(self, message: AbstractIncomingMessage) -> None:
        self.tracker.complete(self.packet_key(message))

    def check_alive(self) -> None:
        for child in self.children:
            if not child.alive():
                raise BenchError(f"{child.name} exited: {child.tail()}")

    async def stop(self) -> None:
        stop_all(self.children)
        if self._packet_channel is not None:
            # Before the queues go, so the broker has no consumer of ours to cancel.
            with contextlib.suppress(Exception):
                await self._packet_channel.close()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self.cleanup()
            await self._connection.close()


@dataclass(frozen=True)
class Saturated:
    contacts: int
    done: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Paced:
    rate: float
    contacts: int
    latencies: list[float]

    def summary_ms(self) -> dict[str, float]:
        return {k: v if k == "count" else v * 1000 for k, v in summary(self.latencies).items()}


async def _watchdog(flow: Flow, wait: asyncio.Task[bool]) -> None:
    while not wait.done():
        flow.check_alive()
        await asyncio.sleep(0.5)


async def _wait_all(flow: Flow, timeout: float) -> bool:
    wait = asyncio.create_task(flow.tracker.wait(timeout))
    guard = asyncio.create_task(_watchdog(flow, wait))
    try:
        done, _ = await asyncio.wait({wait, guard}, return_when=asyncio.FIRST_COMPLETED)
        if guard in done:
            guard.result()  # a process died: raise its BenchError
        return wait.result()
    finally:
        guard.cancel()
        wait.cancel()


async def saturate(
    flow: Flow, count: int, tag: str, *, window: int = 256, timeout: float = 300.0
) -> Saturated:
    keys = [f"{tag}-{i}" for i in range(count)]
    flow.tracker.expect(keys)
    gate = asyncio.Semaphore(window)

    async def one(index: int, key: str) -> None:
        async with gate:
            flow.tracker.submit(key)
            await flow.submit(key, index)

    started = time.perf_counter()
    await asyncio.gather(*(one(i, k) for i, k in enumerate(keys)))
    await _wait_all(flow, timeout)
    finished = [flow.tracker.completed[k] for k in keys if k in flow.tracker.completed]
    seconds = (max(finished) if finished else time.perf_counter()) - started
    return Saturated(count, len(finished), seconds)


async def paced(flow: Flow, rate: float, count: int, tag: str, *, timeout: float = 120.0) -> Paced:
    keys = [f"{tag}-{i}" for i in range(count)]
    flow.tracker.expect(keys)
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.05
    for index, key in enumerate(keys):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        flow.tracker.submit(key, due)  # the scheduled moment: no coordinated omission
        tasks.append(asyncio.create_task(flow.submit(key, index)))
    await asyncio.gather(*tasks)
    await _wait_all(flow, timeout)
    return Paced(rate, count, flow.tracker.latencies(keys))
