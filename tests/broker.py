"""Which RabbitMQ the tests run against, in this order:

1. ``MASH_TEST_AMQP_URL``, if set (taken as given: a broker named on purpose must be used);
2. the broker at ``MASH_AMQP_URL`` (default 127.0.0.1:5672), if it answers;
3. a RabbitMQ container started with testcontainers, where a Docker engine runs;
4. none: every test that needs a broker then fails with one line saying how to get one.
   A test suite that skipped them would pass while proving nothing.
"""

from __future__ import annotations

import importlib
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from broker.settings import BrokerSettings

__all__ = ["RABBITMQ_IMAGE", "TestBroker", "find_test_broker"]

RABBITMQ_IMAGE = "rabbitmq:3.13"  # quorum queues with delivery limits, as the hub declares


@dataclass
class TestBroker:
    __test__ = False  # not a test class, whatever pytest thinks of the name

    url: str | None
    source: str
    problem: str | None = None
    container: Any = None

    def stop(self) -> None:
        if self.container is not None:
            self.container.stop()
            self.container = None


def reachable(url: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(url)
    default_port = 5671 if parts.scheme == "amqps" else 5672
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), timeout=timeout
        ):
            return True
    except OSError:
        return False


def _docker_problem() -> str | None:
    """Why no container can be started here, or None when a Docker engine answers."""
    try:
        # By name: the repository's own docker/ folder must not shadow the Docker SDK.
        docker: Any = importlib.import_module("docker")
        docker.from_env().ping()
    except ImportError:
        return "the docker package is not installed"
    except Exception as exc:  # the SDK raises several types for "no engine"
        return f"no Docker engine answers ({type(exc).__name__})"
    return None


def _container() -> tuple[str, Any]:
    from testcontainers.community.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer(RABBITMQ_IMAGE).start()
    host = container.get_container_host_ip()
    port = container.get_exposed_port(container.port)
    url = f"amqp://{container.username}:{container.password}@{host}:{port}/"
    return url, container


def find_test_broker(
    environ: Mapping[str, str],
    *,
    docker_problem: Callable[[], str | None] = _docker_problem,
    start: Callable[[], tuple[str, Any]] = _container,
) -> TestBroker:
    explicit = environ.get("MASH_TEST_AMQP_URL")
    if explicit:
        return TestBroker(explicit, "MASH_TEST_AMQP_URL")
    local = environ.get("MASH_AMQP_URL") or BrokerSettings.model_fields["amqp_url"].default
    if reachable(local):
        return TestBroker(local, "local broker")
    problem = docker_problem()
    if problem is None:
        try:
            url, container = start()
            return TestBroker(url, "testcontainers", container=container)
        except Exception as exc:
            problem = f"the RabbitMQ container did not start ({type(exc).__name__}: {exc})"
    where = urlsplit(local).netloc.rpartition("@")[2]
    return TestBroker(
        None,
        "none",
        problem=(
            f"no RabbitMQ broker for the tests: nothing answers at {where} and {problem}; "
            "run 'make broker', set MASH_TEST_AMQP_URL, or start Docker"
        ),
    )
