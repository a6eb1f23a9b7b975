"""Child processes for a flow (as in production: one per component), and waiting until
they consume.

A process can be started under ``py-spy record`` so the run leaves a profile of it; py-spy
writes its file when the profiled process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import psutil
from aio_pika.abc import AbstractConnection

from mash.errors import MashError

__all__ = [
    "DISRUPTIONS",
    "BenchError",
    "Child",
    "queue_state",
    "spawn",
    "stop_all",
    "wait_for_consumers",
    "wait_for_depth",
]


# Connections force-closed by someone else (another suite on a shared broker, an operator)
# while a flow ran: its figures are then not clean, and the report says so.
DISRUPTIONS: list[str] = []
_FORCED = "CONNECTION_FORCED"


class BenchError(MashError, RuntimeError):
    """A bench step could not be carried out; the message says which and why."""


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    profiled: bool = False

    @property
    def pid(self) -> int:
        """The Python process itself (under py-spy it is py-spy's child)."""
        if not self.profiled:
            return self.popen.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                children = psutil.Process(self.popen.pid).children()
                if children:
                    return int(children[0].pid)
            time.sleep(0.05)
        raise BenchError(f"{self.name}: py-spy did not start its process")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def spawn(
    name: str,
    args: list[str],
    env: Mapping[str, str],
    logdir: Path,
    profile: Path | None = None,
) -> Child:
    """Run ``python <args>`` with its output in ``logdir/<name>.log``."""
    log = logdir / f"{name}.log"
    command = [sys.executable, *args]
    if profile is not None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        command = [spy, "record", "--rate", "100", "--format", "raw", "--full-filenames"]
        command += ["-o", str(profile)]
        command += ["--", sys.executable, *args]
    with log.open("ab") as handle:
        popen = subprocess.Popen(command, env=dict(env), stdout=handle, stderr=handle)
    return Child(name, popen, log, profiled=profile is not None)


def stop_all(children: Iterable[Child], timeout: float = 15.0) -> None:
    """Terminate each process (the Python one, so py-spy writes its profile) and wait."""
    children = list(children)
    for child in children:
        if child.alive():
            with contextlib.suppress(ProcessLookupError, psutil.Error, BenchError):
                psutil.Process(child.pid).terminate()
    for child in children:
        try:
            child.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.popen.kill()
            child.popen.wait(timeout=5)
        with contextlib.suppress(OSError):
            forced = child.log.read_text(errors="replace").count(_FORCED)
            if forced:
                DISRUPTIONS.append(f"{child.log.parent.name}/{child.name}: {forced} forced closes")


async def queue_state(connection: AbstractConnection, queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of a queue; a passive declare, on a channel of its own
    because a missing queue closes the channel."""
    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        result = declared.declaration_result
        return int(result.message_count or 0), int(result.consumer_count or 0)
    except aio_pika.exceptions.ChannelClosed:
        return 0, 0
    finally:
        with contextlib.suppress(Exception):
            await channel.close()


def _check(children: Iterable[Child]) -> None:
    for child in children:
        if not child.alive():
            raise BenchError(
                f"{child.name} exited with status {child.popen.returncode}: {child.tail()}"
            )


async def wait_for_consumers(
    connection: AbstractConnection,
    queues: Iterable[str],
    children: Iterable[Child],
    timeout: float = 60.0,
) -> None:
    """Until every queue has a consumer: the processes behind them are ready for work."""
    queues, children = list(queues), list(children)
    deadline = time.monotonic() + timeout
    while True:
        _check(children)
        states = [await queue_state(connection, q) for q in queues]
        if all(consumers > 0 for _, consumers in states):
            return
        if time.monotonic() > deadline:
            idle = [q for q, (_, c) in zip(queues, states, strict=True) if c == 0]
            raise BenchError(f"no consumer on {', '.join(idle)} after {timeout:g}s")
        await asyncio.sleep(0.1)


async def wait_for_depth(
    connection: AbstractConnection,
    queues: Iterable[str],
    depth: int,
    children: Iterable[Child],
    timeout: float,
) -> None:
    """Until the queues hold ``depth`` messages between them."""
    queues, children = list(queues), list(children)
    deadline = time.monotonic() + timeout
    while True:
        _check(children)
        total = sum([(await queue_state(connection, q))[0] for q in queues])
        if total >= depth:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{total} of {depth} messages queued after {timeout:g}s")
        await asyncio.sleep(0.2)
