"""The HTTP side every process serves: ``/metrics``, ``/healthz`` and ``/readyz``.

``/healthz`` answers 200 while the process's event loop runs: a container that fails it is
stuck and should be restarted. ``/readyz`` runs the process's readiness checks (broker
connected, consumers attached, database writable) and answers 200 only when all pass, 503
otherwise, with each check's result in a small JSON body an operator can read.

A process serves both from the moment it starts, before it has reached the broker: until its
checks are given (:meth:`OpsServer.use_checks`), ``/readyz`` answers 503 with status
``starting`` and the reason it is not ready yet (say, the broker not answering), so an
operator's ``mash health`` says why rather than "connection refused".
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from telemetry.metrics import Metrics

__all__ = [
    "Check",
    "OpsServer",
    "broker_connected",
    "consumers_attached",
    "serve",
    "serve_starting",
]

log = structlog.get_logger("mash.telemetry")

Check = Callable[[], bool | Awaitable[bool]]
_CHECK_TIMEOUT = 2.0


class OpsServer:
    def __init__(
        self,
        metrics: Metrics,
        checks: Mapping[str, Check],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.metrics = metrics
        self.checks = dict(checks)
        self.host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        # Why the process is not ready yet, while it starts; None once its checks are given.
        self.starting: str | None = None

    def waiting(self, reason: str) -> None:
        """Still starting, for ``reason`` (shown by /readyz)."""
        self.starting = reason

    def use_checks(self, checks: Mapping[str, Check]) -> None:
        """Started: from now on /readyz runs these checks."""
        self.checks = dict(checks)
        self.starting = None

    @property
    def port(self) -> int:
        """The port bound (useful when started with port 0)."""
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # Binding the socket here tells us the port when asked for any free one (port 0).
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()
        log.info("ops_server_started", component=self.metrics.component, port=self._port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def readiness(self) -> dict[str, bool]:
        results: dict[str, bool] = {}
        for name, check in self.checks.items():
            try:
                outcome = check()
                if inspect.isawaitable(outcome):
                    outcome = await asyncio.wait_for(outcome, _CHECK_TIMEOUT)
                results[name] = bool(outcome)
            except Exception as exc:  # a failing check means not ready, never a 500
                log.warning("readiness_check_failed", check=name, error=type(exc).__name__)
                results[name] = False
        return results

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "component": self.metrics.component})

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.starting is not None:
            starting = {
                "status": "starting",
                "component": self.metrics.component,
                "reason": self.starting,
                "checks": {"started": False},
            }
            return web.json_response(starting, status=503)
        checks = await self.readiness()
        ready = all(checks.values())
        body: dict[str, Any] = {
            "status": "ready" if ready else "not ready",
            "component": self.metrics.component,
            "checks": checks,
        }
        return web.json_response(body, status=200 if ready else 503)


class _Connection(Protocol):
    @property
    def is_closed(self) -> bool: ...


class _Channelled(Protocol):
    @property
    def channel(self) -> Any: ...


def broker_connected(connection: _Connection | None) -> bool:
    """The broker connection is open (a robust connection that is reconnecting is not)."""
    if connection is None or connection.is_closed:
        return False
    connected = getattr(connection, "connected", None)
    return connected.is_set() if isinstance(connected, asyncio.Event) else True


def consumers_attached(consumers: Sequence[_Channelled], expected: int) -> bool:
    """Every consumer has started and its channel is open."""
    return len(consumers) == expected and all(not c.channel.is_closed for c in consumers)


async def serve(
    port: int, host: str, metrics: Metrics, checks: Mapping[str, Check]
) -> OpsServer | None:
    """Start the ops server, or nothing when ``port`` is 0 (MASH_METRICS_PORT unset)."""
    if port == 0:
        return None
    server = OpsServer(metrics, checks, host=host, port=port)
    await server.start()
    return server


async def serve_starting(port: int, host: str, metrics: Metrics, reason: str) -> OpsServer | None:
    """Start the ops server before anything else, not ready for ``reason`` until its checks
    are given; nothing when ``port`` is 0."""
    if port == 0:
        return None
    server = OpsServer(metrics, {}, host=host, port=port)
    server.waiting(reason)
    await server.start()
    return server
