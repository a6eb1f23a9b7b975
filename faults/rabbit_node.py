"""A RabbitMQ node of its own, for tests and fault runs: its own node name, ports and
directory, stopped at the end; the machine's broker is never touched.

Tests that must configure a broker (TLS listeners, plugins, authentication mechanisms) start
one of these instead of touching the machine's broker. The node runs from the installed
``rabbitmq-server`` as the ``rabbitmq`` user, with every file (config, enabled plugins, data,
logs, pid) under a temporary directory that user owns; ``rabbitmqctl -n NODE`` talks to it
through the machine's epmd and Erlang cookie, as it does to the machine's own node.

Typical use::

    node = RabbitNode(plugins=["rabbitmq_management"], config=[f"management.tcp.port = {p}"])
    node.write("tls/ca.pem", ca_pem)       # files the config refers to: node.path("tls/ca.pem")
    with node:                             # start() ... stop()
        node.ctl("list_users")

Starting is the slow part (measured by :attr:`RabbitNode.start_seconds`); share a node
between the tests of one module where they can.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from mash.errors import MashError

__all__ = ["RabbitNode", "RabbitNodeError", "free_port", "rabbitmq_available"]

RABBIT_USER = "rabbitmq"


class RabbitNodeError(MashError, RuntimeError):
    """The node did not start, or a ``rabbitmqctl`` command against it failed."""


# rabbitmqctl takes its own Erlang distribution port from this range; a node must not.
_CTL_DIST_PORTS = range(35672, 35683)


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _CTL_DIST_PORTS:
            return port


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed child of ours lingers as a zombie until reaped; it is not running.
    with contextlib.suppress(OSError):
        return " Z " not in Path(f"/proc/{pid}/stat").read_text()
    return False


def rabbitmq_available() -> str | None:
    """Why a private node cannot run here, or None when it can."""
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        return "rabbitmq-server is not installed"
    try:
        pwd.getpwnam(RABBIT_USER)
    except KeyError:
        return f"no {RABBIT_USER!r} user"
    if os.geteuid() != 0:
        return "starting a node as the rabbitmq user needs root"
    return None


class RabbitNode:
    """One private node. ``config`` lines go into its ``rabbitmq.conf`` after the listener
    lines; ``tcp=False`` leaves it without a plain AMQP listener."""

    def __init__(
        self,
        *,
        plugins: Iterable[str] = (),
        config: Iterable[str] = (),
        tcp: bool = True,
        management: bool = False,
        name: str | None = None,
        start_timeout: float = 90.0,
        cookie: str | None = None,
        amqp_port: int | None = None,
    ) -> None:
        self.name = name or f"mashtest-{uuid.uuid4().hex[:8]}@localhost"
        # A cookie of its own keeps a private cluster apart from the machine's node (which
        # uses the machine's cookie) even though they share epmd.
        self.cookie = cookie
        self.plugins = list(plugins)
        self.config = list(config)
        self.management_port: int | None = None
        if management:
            self.management_port = free_port()
            self.plugins.append("rabbitmq_management")
            self.config.append(f"management.tcp.port = {self.management_port}")
        self.amqp_port: int | None = (amqp_port or free_port()) if tcp else None
        self.dist_port = free_port()
        self.start_timeout = start_timeout
        self.start_seconds: float | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="mash-rabbit-"))
        self._started = False

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def management_url(self) -> str:
        return f"http://guest:guest@127.0.0.1:{self.management_port}/"

    def path(self, relative: str) -> Path:
        return self.dir / relative

    def write(self, relative: str, content: bytes | str, mode: int = 0o600) -> Path:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        target.chmod(mode)
        return target

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.path("mnesia")),
            RABBITMQ_LOG_BASE=str(self.path("log")),
            RABBITMQ_CONFIG_FILE=str(self.path("rabbitmq.conf")),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.path("enabled_plugins")),
            RABBITMQ_PID_FILE=str(self.path("rabbit.pid")),
            # Without this the node would also read the machine node's advanced.config.
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.path("advanced.config")),
        )
        if self.cookie:
            env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = f"-setcookie {self.cookie}"
        return env

    def start(self) -> None:
        lines = [
            f"listeners.tcp.default = {self.amqp_port}"
            if self.amqp_port is not None
            else "listeners.tcp = none",
            "loopback_users = none",
            "log.file.level = info",
            *self.config,
        ]
        self.write("rabbitmq.conf", "\n".join(lines) + "\n")
        self.write("enabled_plugins", f"[{','.join(self.plugins)}].\n")
        for sub in ("mnesia", "log"):
            self.path(sub).mkdir(exist_ok=True)
        entry = pwd.getpwnam(RABBIT_USER)
        for root, dirs, files in os.walk(self.dir):
            for item in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(item, entry.pw_uid, entry.pw_gid)
        began = time.monotonic()
        # The installed wrapper runs the server as the rabbitmq user and keeps RABBITMQ_*.
        subprocess.run(
            ["rabbitmq-server", "-detached"],
            env=self._environment(),
            check=True,
            capture_output=True,
            timeout=30,
        )
        self._started = True
        try:
            self.ctl(
                "wait",
                str(self.path("rabbit.pid")),
                "--timeout",
                str(int(self.start_timeout)),
                timeout=self.start_timeout + 10,
            )
        except RabbitNodeError as exc:
            raise RabbitNodeError(f"{exc}\n{self.log_tail()}") from None
        self.start_seconds = time.monotonic() - began

    def ctl(self, *args: str, input: str | None = None, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n NODE ARGS`` and return its output; raise on failure."""
        cookie = ["--erlang-cookie", self.cookie] if self.cookie else []
        command = ["rabbitmqctl", "-q", "-n", self.name, *cookie, *args]
        try:
            done = subprocess.run(
                command, input=input, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise RabbitNodeError(f"rabbitmqctl {args[0]} timed out after {timeout:g}s") from None
        if done.returncode != 0:
            raise RabbitNodeError(
                f"rabbitmqctl {' '.join(args)} failed: {(done.stderr or done.stdout).strip()}"
            )
        return done.stdout

    def log_tail(self, lines: int = 30) -> str:
        logs = sorted(self.path("log").glob("*.log"))
        if not logs:
            return "(no node log)"
        return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:])

    def restart(self) -> float:
        """Stop the node and start it again on the same ports and data, as an operator's
        restart or a crash-and-recover would; returns the seconds it was down."""
        began = time.monotonic()
        self.ctl("stop", str(self.path("rabbit.pid")), timeout=60)
        self._started = False
        self.start()
        return time.monotonic() - began

    def pid(self) -> int | None:
        """The node's Erlang VM, while it runs."""
        with contextlib.suppress(OSError, ValueError):
            return int(self.path("rabbit.pid").read_text().strip())
        return None

    def kill(self) -> None:
        """SIGKILL the node's VM, as a machine dying would; :meth:`start_again` brings it back
        on the same ports and data."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _running(pid):
                time.sleep(0.1)
        self._started = False

    def start_again(self) -> None:
        """Start a stopped or killed node on its ports and data (its cluster takes it back)."""
        with contextlib.suppress(OSError):
            self.path("rabbit.pid").unlink()
        self.start()

    def stop(self) -> None:
        try:
            if self._started:
                with contextlib.suppress(RabbitNodeError):
                    # Given the pid file, stop waits for the Erlang VM itself to exit.
                    self.ctl("stop", str(self.path("rabbit.pid")), timeout=60)
                self._started = False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RabbitNode:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
