"""How the tests find their RabbitMQ: an explicit URL first, then the local broker, then a
testcontainers broker where Docker runs, else a failure that says how to get one."""

from __future__ import annotations

import socket

import pytest

from tests.broker import find_test_broker


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends


def _no_docker() -> str:
    return "no Docker engine answers (FileNotFoundError)"


def _must_not_start() -> tuple[str, object]:
    raise AssertionError("no container may start while a broker is at hand")


def test_an_explicit_test_broker_url_is_used_as_given() -> None:
    found = find_test_broker(
        {"MASH_TEST_AMQP_URL": "amqp://u:p@broker.invalid:5672/v"}, start=_must_not_start
    )
    assert (found.url, found.source, found.problem) == (
        "amqp://u:p@broker.invalid:5672/v",
        "MASH_TEST_AMQP_URL",
        None,
    )


def test_a_broker_that_answers_is_used_before_any_container() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"amqp://guest:guest@127.0.0.1:{listener.getsockname()[1]}/"
        found = find_test_broker({"MASH_AMQP_URL": url}, start=_must_not_start)
    assert (found.url, found.source) == (url, "local broker")


def test_without_a_broker_a_container_is_started_where_docker_runs() -> None:
    url = f"amqp://guest:guest@127.0.0.1:{_closed_port()}/"
    container = object()
    found = find_test_broker(
        {"MASH_AMQP_URL": url},
        docker_problem=lambda: None,
        start=lambda: ("amqp://guest:guest@127.0.0.1:49153/", container),
    )
    assert (found.url, found.source, found.container) == (
        "amqp://guest:guest@127.0.0.1:49153/",
        "testcontainers",
        container,
    )


@pytest.mark.parametrize("docker", ["missing", "broken"])
def test_with_no_broker_at_all_the_problem_says_how_to_get_one(docker: str) -> None:
    port = _closed_port()

    def broken_start() -> tuple[str, object]:
        raise RuntimeError("image pull refused")

    found = find_test_broker(
        {"MASH_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{port}/"},
        docker_problem=_no_docker if docker == "missing" else (lambda: None),
        start=broken_start,
    )
    assert found.url is None and found.problem is not None
    assert f"nothing answers at 127.0.0.1:{port}" in found.problem
    assert "make broker" in found.problem and "MASH_TEST_AMQP_URL" in found.problem
    cause = "no Docker engine" if docker == "missing" else "image pull refused"
    assert cause in found.problem
