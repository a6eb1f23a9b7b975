"""A RabbitMQ cluster of its own: three private nodes (:class:`~faults.rabbit_node.RabbitNode`)
with their own names, ports, data and Erlang cookie, formed by ``classic_config`` peer
discovery, stopped at the end. The machine's broker node is never touched.

Forming takes about 20 to 25 seconds on a 2-core machine (the nodes start side by side; the
first to boot forms the cluster and the others join it), so share one cluster between the
tests of a module.
"""

from __future__ import annotations

import secrets
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

from faults.rabbit_node import RabbitNode, RabbitNodeError

__all__ = ["RabbitCluster"]


class RabbitCluster:
    def __init__(self, size: int = 3, *, start_timeout: float = 120.0) -> None:
        tag = uuid.uuid4().hex[:6]
        names = [f"mashcl{tag}-{n}@localhost" for n in range(1, size + 1)]
        self.cookie = secrets.token_hex(16).upper()
        discovery = [
            "cluster_formation.peer_discovery_backend = classic_config",
            *(
                f"cluster_formation.classic_config.nodes.{n} = {name}"
                for n, name in enumerate(names, 1)
            ),
            # Quorum queues want a majority; partitions heal by themselves on one machine.
            "cluster_partition_handling = pause_minority",
        ]
        self.nodes = [
            RabbitNode(name=name, config=discovery, cookie=self.cookie, start_timeout=start_timeout)
            for name in names
        ]
        self.form_seconds: float | None = None

    @property
    def amqp_urls(self) -> str:
        """Every node, comma-separated: the value of ``MASH_AMQP_URL`` for this cluster."""
        return ",".join(node.amqp_url for node in self.nodes)

    def start(self) -> None:
        began = time.monotonic()
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            failures = [f for f in pool.map(_start, self.nodes) if f is not None]
        if failures:
            raise RabbitNodeError(failures[0])
        self.nodes[0].ctl("await_online_nodes", str(len(self.nodes)), "--timeout", "60", timeout=70)
        self.form_seconds = time.monotonic() - began

    def running(self) -> list[str]:
        """The node names the cluster reports running, asked of any node that answers."""
        for node in self.nodes:
            if node.pid() is None:
                continue
            try:
                status = node.ctl("eval", "rabbit_nodes:all_running().", timeout=20)
            except (RabbitNodeError, subprocess.SubprocessError):
                continue
            return sorted(part.strip(" []'\n") for part in status.split(",") if "@" in part)
        return []

    def leader_of(self, vhost: str, queue: str) -> RabbitNode:
        """The node that leads a quorum queue's replicas now."""
        for node in self.nodes:
            if node.pid() is None:
                continue
            try:
                listing = node.ctl("list_queues", "-p", vhost, "name", "leader", timeout=20)
            except RabbitNodeError:
                continue
            for line in listing.splitlines():
                name, _, leader = line.partition("\t")
                if name == queue:
                    return next(n for n in self.nodes if n.name == leader.strip())
        raise RabbitNodeError(f"no node leads {queue}")

    def stop(self) -> None:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(RabbitNode.stop, self.nodes))

    def __enter__(self) -> RabbitCluster:
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


def _start(node: RabbitNode) -> str | None:
    try:
        node.start()
    except (RabbitNodeError, subprocess.SubprocessError, OSError) as exc:
        return f"{node.name}: {exc}"
    return None
