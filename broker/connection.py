"""Connections that recover by themselves after a broker restart or a network cut, over TLS
with a client certificate where the MASH is configured for it.

Three ways to authenticate, all from :class:`~broker.settings.BrokerSettings`:

- ``amqp://user:password@host/`` — local development (``guest``) or a provisioned user;
- ``amqps://user:password@host/`` with ``MASH_TLS_CA`` — the same, encrypted;
- ``amqps://host/`` with ``MASH_TLS_CA``, ``MASH_TLS_CERT`` and ``MASH_TLS_KEY`` and no password —
  mutual TLS with EXTERNAL authentication: the broker user is the certificate's common name,
  and no password exists to leak.

On a RabbitMQ cluster ``MASH_AMQP_URL`` (or ``MASH_AMQP_URLS``) names every node,
comma-separated. A connection starts at one node and each reconnection attempt goes to the next
one (:class:`NodeRotatingConnection`), so a process follows the cluster when its node dies;
the quorum queues it consumes and publishes to live on the surviving nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractRobustConnection
from cryptography import x509
from cryptography.x509.oid import NameOID
from yarl import URL

from broker.settings import BrokerSettings
from mash.errors import MashError

__all__ = [
    "RETRY_MAX_S",
    "BrokerConfigError",
    "BrokerRefused",
    "NodeRotatingConnection",
    "broker_user",
    "connect",
    "connection_url",
    "tls_context",
    "uses_external_auth",
]

log = structlog.get_logger("mash.broker")


class BrokerConfigError(MashError, ValueError):
    """The TLS settings do not make sense together, or a file they name cannot be read."""


class BrokerRefused(MashError, ConnectionError):
    """The broker could not be reached in time, or it refused this process's TLS, credentials
    or vhost."""


# A broker that stays away is retried at least this often, and logged no more often.
RETRY_MAX_S = 30.0


def uses_external_auth(settings: BrokerSettings) -> bool:
    """A client certificate and no password: the certificate is the credential."""
    return settings.tls_cert is not None and URL(settings.amqp_url).password is None


@cache
def _common_name(cert: Path) -> str:
    try:
        certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError) as exc:
        raise BrokerConfigError(f"MASH_TLS_CERT {cert}: {exc}") from None
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise BrokerConfigError(f"MASH_TLS_CERT {cert} has no common name to log in as")
    return str(names[0].value)


def broker_user(settings: BrokerSettings) -> str:
    """The user name the broker knows this process by: the certificate's common name under
    EXTERNAL authentication, otherwise the URL's user (``guest`` when it names none, as the
    client library does)."""
    if uses_external_auth(settings):
        assert settings.tls_cert is not None
        return _common_name(settings.tls_cert)
    return URL(settings.amqp_url).user or "guest"


def connection_url(settings: BrokerSettings, node: str | None = None) -> URL:
    """The URL to connect to ``node`` (by default the first broker) with, checked."""
    try:
        url = URL(node or settings.amqp_url)
        url.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as exc:
        raise BrokerConfigError(f"MASH_AMQP_URL is not a URL: {exc}") from None
    if url.scheme not in ("amqp", "amqps") or not url.host:
        # Host and scheme only: the URL may carry a password.
        raise BrokerConfigError(
            "MASH_AMQP_URL must be amqp://user:password@host:port/vhost or amqps://…"
        )
    tls_settings = (settings.tls_ca, settings.tls_cert, settings.tls_key)
    if url.scheme != "amqps" and any(value is not None for value in tls_settings):
        # Never fall back to plain text because of a typo in the URL.
        raise BrokerConfigError("MASH_TLS_* is set but MASH_AMQP_URL is not amqps://")
    if uses_external_auth(settings):
        # The client library ignores the user under EXTERNAL; it is kept so that the
        # connection's URL names the user the broker sees (the publisher stamps it as user_id).
        url = url.with_user(broker_user(settings)).update_query(auth="external")
    return url


class NodeRotatingConnection(aio_pika.RobustConnection):
    """A robust connection over the nodes of a cluster: the first attempt goes to the first
    node given, and every later attempt (after a failed one, or after the connection to a node
    was lost) to the next, round the list.

    aio-pika's robust connection retries the one URL it was made with; every attempt starts by
    clearing ``transport``, so that is where the next node is chosen (aio-pika 9 and 10 alike;
    ``tests/integration/test_cluster.py`` proves it against a real cluster).
    """

    def __init__(self, nodes: Sequence[URL], **kwargs: object) -> None:
        if not nodes:
            raise ValueError("no broker node to connect to")
        self._nodes = tuple(nodes)
        self._turn = 0
        self._clears = 0
        super().__init__(self._nodes[0], **kwargs)  # type: ignore[arg-type]

    @property
    def url(self) -> URL:
        return self._nodes[self._turn]

    @url.setter
    def url(self, value: URL) -> None:
        for turn, node in enumerate(self._nodes):
            if (node.host, node.port) == (value.host, value.port):
                self._turn = turn
                if node != value:  # update_secret: the new password holds for every node
                    self._nodes = tuple(n.with_password(value.password) for n in self._nodes)
                return
        raise ValueError("not one of this connection's nodes")

    @property  # type: ignore[override]
    def transport(self) -> object:
        return self._transport

    @transport.setter
    def transport(self, value: object) -> None:
        if value is None:
            # The first clear is the constructor's, the second the first attempt's.
            self._clears += 1
            if self._clears > 2:
                self._turn = (self._turn + 1) % len(self._nodes)
        self._transport = value


def tls_context(settings: BrokerSettings) -> ssl.SSLContext | None:
    """Verifies the broker's certificate (and host name); presents ours if we have one."""
    if URL(settings.amqp_url).scheme != "amqps":
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(settings.tls_ca) if settings.tls_ca else None
        )
        if settings.tls_cert is not None:
            context.load_cert_chain(
                str(settings.tls_cert), str(settings.tls_key) if settings.tls_key else None
            )
    except (OSError, ssl.SSLError) as exc:
        raise BrokerConfigError(f"TLS files could not be loaded: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _where(url: URL) -> str:
    # Host and port only: the URL may carry a password.
    port = url.port or (5671 if url.scheme == "amqps" else 5672)
    return f"{url.scheme}://{url.host}:{port}"


def _refusal(exc: BaseException, url: URL, user: str) -> str | None:
    """Why the broker refused this process for good (credentials, vhost, TLS), or None for a
    failure worth retrying (refused or reset connection, no answer)."""
    if isinstance(exc, aiormq.exceptions.AuthenticationError) and exc.args:
        # aiormq's own text is the two lists of mechanisms; say what they mean.
        wanted = url.query.get("auth", "plain").upper()
        return f"the broker accepts {exc.args[0]} authentication, not {wanted}"
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError):
        return f"user {user} was refused: wrong password, or no such user"
    vhost = url.path[1:] or "/"
    if isinstance(exc, aiormq.exceptions.ConnectionNotAllowed) or (
        # aiormq reports the broker's Connection.Close in answer to Connection.Open only as
        # "Expected one of ['Connection.OpenOk'], got <Connection.Close object at 0x…>".
        isinstance(exc, aiormq.exceptions.InvalidFrameError)
        and "Connection.OpenOk" in str(exc)
        and "Connection.Close" in str(exc)
    ):
        return f"user {user} has no access to vhost {vhost} (or the vhost does not exist)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return None


def _failure(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer to the AMQP handshake within {timeout:g}s"
    return f"{type(exc).__name__}: {exc}"


def _watch(connection: NodeRotatingConnection, name: str) -> None:
    """Connection losses and recoveries as one JSON event each (the client library's own
    reconnection chatter is rate-limited by broker.logs), naming the node of the moment."""

    def lost(_: object, exc: BaseException | None = None) -> None:
        if exc is None or isinstance(exc, asyncio.CancelledError):
            return  # closed by this process
        log.warning(
            "broker_connection_lost",
            connection=name,
            broker=_where(connection.url),
            error=type(exc).__name__,
        )

    def back(*_: object) -> None:
        log.info("broker_reconnected", connection=name, broker=_where(connection.url))

    connection.close_callbacks.add(lost)
    connection.reconnect_callbacks.add(back)


async def connect(
    settings: BrokerSettings,
    name: str,
    *,
    retry: bool = False,
    on_retry: Callable[[str], None] | None = None,
    quiet: bool = False,
) -> AbstractRobustConnection:
    """A robust connection: channels, queues and consumers are restored after it reconnects.

    ``name`` and the MASH prefix show in the management UI and ``rabbitmqctl
    list_connections`` as ``name:prefix``, so an operator can tell the hub from each adapter,
    and one MASH from another.

    Every attempt is bounded by ``MASH_CONNECT_TIMEOUT``, so a broker that accepts the TCP
    connection and never answers the handshake is a failure, not a hang. A refusal for good
    (credentials, vhost permission, TLS) is one log event and :class:`BrokerRefused` at once.
    Any other failure is the same unless ``retry`` (services: the hub, the adapters), which
    retries with a growing delay (at most :data:`RETRY_MAX_S`), logging one
    ``broker_connect_retry`` event per attempt and telling ``on_retry`` why (for /readyz).
    Later losses are retried in the background and logged as JSON events. A command-line
    client passes ``quiet``: it says the one line itself, and its stdout is its answer.
    """
    nodes = [connection_url(settings, node) for node in settings.brokers]
    context = tls_context(settings)
    user = broker_user(settings)
    if quiet:
        # aiormq logs a failed connection itself, before we can say it in one line.
        for library in ("aiormq", "aio_pika"):
            logging.getLogger(library).setLevel(logging.CRITICAL)
    timeout = settings.connect_timeout
    delay, attempt = 1.0, 0
    while True:
        attempt += 1
        # Each first attempt starts at the next node, so a dead first node costs one attempt.
        start = (attempt - 1) % len(nodes)
        url = nodes[start]
        where = _where(url)
        connection = NodeRotatingConnection(
            nodes[start:] + nodes[:start],
            ssl_context=context,
            client_properties={"connection_name": f"{name}:{settings.prefix}"},
            reconnect_interval=1.0,
        )
        try:
            await asyncio.wait_for(
                connection.connect(timeout=timeout),  # each later reconnection too
                timeout + 1.0,
            )
        except asyncio.CancelledError:
            # Stopped mid-attempt (Ctrl-C, a service stopping): aio-pika's retry task swallows
            # its own cancellation and would keep the event loop from ever closing.
            with contextlib.suppress(Exception):
                await connection.close()
            raise
        except (OSError, ssl.SSLError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
            # Its own retry task must not outlive a failed first attempt.
            with contextlib.suppress(Exception):
                await connection.close()
            refusal = _refusal(exc, url, user)
            reason = refusal or _failure(exc, timeout)
            # Every node is tried once before a command-line client gives up, and before a
            # service starts waiting between attempts.
            next_node = attempt % len(nodes) != 0
            if refusal is None and (retry or next_node):
                if on_retry is not None:
                    on_retry(reason)
                wait = 0.0 if next_node else delay
                log.warning(
                    "broker_connect_retry",
                    connection=name,
                    broker=where,
                    user=user,
                    attempt=attempt,
                    reason=reason,
                    retry_in_s=wait,
                )
                if not next_node:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
                continue
            if not quiet:
                log.error(
                    "broker_connection_refused",
                    connection=name,
                    broker=where,
                    user=user,
                    reason=reason,
                )
            if refusal is not None:
                raise BrokerRefused(f"broker refused {name}: {refusal}") from None
            if len(nodes) > 1:
                where = "any of " + ", ".join(_where(node) for node in nodes)
            raise BrokerRefused(f"cannot connect {name} to {where}: {reason}") from None
        _watch(connection, name)
        if attempt > 1:
            log.info("broker_connected", connection=name, broker=where, attempts=attempt)
        return connection
