"""The hub and the four adapters as real operating-system processes, so a fault can kill one
with SIGKILL at any instruction, exactly as a crash would."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["Cluster"]


class Cluster:
    def __init__(self, workdir: Path, env: Mapping[str, str], agencies: tuple[str, ...]) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.agencies = agencies
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.kills = 0

    def _log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def _command(self, name: str) -> list[str]:
        args = ["hub"] if name == "hub" else ["adapter", name]
        return [sys.executable, "-m", "mash", *args, "--log-format", "json"]

    def start(self, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        handle = self._log(name).open("ab")
        self.processes[name] = subprocess.Popen(
            self._command(name),
            env={**os.environ, **self.env, **(extra_env or {})},
            stdout=handle,
            stderr=handle,
        )

    def ready_count(self, name: str) -> int:
        marker = b'"hub_ready"' if name == "hub" else b'"adapter_ready"'
        try:
            return self._log(name).read_bytes().count(marker)
        except FileNotFoundError:
            return 0

    async def wait_ready(self, name: str, starts: int, timeout: float = 120.0) -> None:
        """Wait until ``name`` has logged that it is ready ``starts`` times in all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.ready_count(name) < starts:
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}; see {self._log(name)}"
                )
            if loop.time() > deadline:
                raise TimeoutError(f"{name} not ready after {timeout}s; see {self._log(name)}")
            await asyncio.sleep(0.05)

    async def start_all(self, names: tuple[str, ...] | None = None) -> None:
        names = names or ("hub", *self.agencies)
        for name in names:
            self.start(name)
        for name in names:
            await self.wait_ready(name, 1)

    def kill(self, name: str) -> None:
        """SIGKILL: no handler runs, nothing is flushed or acked."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.kills += 1

    async def restart(self, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        starts = self.ready_count(name)
        self.start(name, extra_env)
        await self.wait_ready(name, starts + 1)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
