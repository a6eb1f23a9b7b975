"""Queue figures for operators: depth, consumers and, where the broker can say, rates.

Two sources. RabbitMQ's management API (the ``rabbitmq_management`` plugin) gives depth,
ready and unacknowledged counts, consumers and message rates. Where the plugin is not
enabled, a passive declare of each queue over AMQP still gives depth and consumers, without
rates. :func:`queue_figures` tries the API first and falls back, saying which it used.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import aiohttp
from aio_pika.abc import AbstractConnection

from broker.connection import uses_external_auth
from broker.settings import BrokerSettings
from mash.errors import MashError

__all__ = [
    "ManagementApi",
    "ManagementRefused",
    "QueueFigures",
    "QueueReport",
    "management_api",
    "management_figures",
    "passive_figures",
    "queue_figures",
]

Source = Literal["management", "passive"]


@dataclass(frozen=True)
class QueueFigures:
    name: str
    exists: bool = True
    messages: int = 0
    consumers: int = 0
    ready: int | None = None
    unacked: int | None = None
    in_rate: float | None = None  # messages published to the queue per second
    out_rate: float | None = None  # messages delivered to consumers per second
    ack_rate: float | None = None


@dataclass(frozen=True)
class QueueReport:
    source: Source
    queues: list[QueueFigures]
    note: str = ""

    def by_name(self) -> dict[str, QueueFigures]:
        return {q.name: q for q in self.queues}


@dataclass(frozen=True)
class ManagementApi:
    url: str  # e.g. https://broker.example:15671, no trailing slash
    user: str
    password: str = field(repr=False)
    vhost: str
    # HTTPS: verifies the API's certificate with MASH_TLS_CA and presents MASH_TLS_CERT.
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)


class ManagementRefused(MashError, ValueError):
    """Reading the management API would expose the broker credentials; the reason says how
    to allow it."""


# RabbitMQ's management listener ports: plain HTTP and HTTPS.
HTTP_PORT, HTTPS_PORT = 15672, 15671


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _https_context(settings: BrokerSettings) -> ssl.SSLContext:
    """The broker's CA (MASH_TLS_CA), host name checked, and our certificate if we have one
    (a management listener with verify_peer asks for it)."""
    try:
        context = ssl.create_default_context(
            cafile=str(settings.tls_ca) if settings.tls_ca else None
        )
        if settings.tls_cert is not None:
            context.load_cert_chain(
                str(settings.tls_cert), str(settings.tls_key) if settings.tls_key else None
            )
    except (OSError, ssl.SSLError) as exc:
        raise ManagementRefused(f"TLS files for the management API: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def management_api(settings: BrokerSettings) -> ManagementApi | None:
    """Where the management API is and how to log in, from MASH_MANAGEMENT_URL or the AMQP URL;
    None when it is turned off (``MASH_MANAGEMENT_URL=off``).

    The API takes the user and password in every request (HTTP Basic), so: an ``amqps://``
    broker's API is read over HTTPS (port 15671), verified with ``MASH_TLS_CA``; plain HTTP
    is used only to a loopback host, or elsewhere when ``MASH_MANAGEMENT_PLAIN_HTTP=true``
    says so. Otherwise, and for a certificate login (no password to give), this raises
    :class:`ManagementRefused` and the caller goes without the API.
    """
    given = settings.management_url.strip()
    if given.lower() == "off":
        return None
    amqp = urlsplit(settings.amqp_url)
    vhost = unquote(amqp.path[1:]) if len(amqp.path) > 1 else "/"
    user: str | None = unquote(amqp.username) if amqp.username else None
    password: str | None = unquote(amqp.password) if amqp.password is not None else None
    if given:
        target = urlsplit(given)
        if target.scheme not in ("http", "https") or not target.hostname:
            raise ManagementRefused(
                f"MASH_MANAGEMENT_URL must be an http:// or https:// URL (or off), not {given!r}"
            )
        if target.username:
            user, password = unquote(target.username), unquote(target.password or "")
        scheme, host = target.scheme, target.hostname
        port = target.port or (HTTPS_PORT if scheme == "https" else HTTP_PORT)
        path = target.path.rstrip("/")
    else:
        scheme = "https" if amqp.scheme == "amqps" else "http"
        host = amqp.hostname or "127.0.0.1"
        port, path = (HTTPS_PORT if scheme == "https" else HTTP_PORT), ""
    if user is None and password is None:
        if uses_external_auth(settings):
            # The certificate logs in over AMQP; the API takes a user and password only.
            raise ManagementRefused(
                "a certificate login has no password for the management API"
                " (give one in MASH_MANAGEMENT_URL, or set it to off)"
            )
        user, password = "guest", "guest"  # what the AMQP client logs in with, too
    netloc = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{netloc}:{port}{path}"
    if scheme == "http" and not _loopback(host) and not settings.management_plain_http:
        raise ManagementRefused(
            f"not sending the broker password in clear to {url}: use https"
            " (an amqps:// broker, or MASH_MANAGEMENT_URL=https://...),"
            " or set MASH_MANAGEMENT_PLAIN_HTTP=true"
        )
    return ManagementApi(
        url,
        user or "",
        password or "",
        vhost,
        _https_context(settings) if scheme == "https" else None,
    )


def _basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _rate(stats: dict[str, Any], key: str) -> float:
    details = stats.get(key) or {}
    return float(details.get("rate", 0.0))


async def management_figures(
    api: ManagementApi, names: Sequence[str], timeout: float = 3.0
) -> list[QueueFigures]:
    """Figures for ``names`` from the management API; raises if it cannot be read."""
    found: dict[str, dict[str, Any]] = {}
    page = 1
    async with aiohttp.ClientSession(
        headers={"Authorization": _basic_auth(api.user, api.password)},
        timeout=aiohttp.ClientTimeout(total=timeout),
    ) as session:
        wanted = set(names)
        while True:
            async with session.get(
                f"{api.url}/api/queues/{quote(api.vhost, safe='')}",
                params={"page": str(page), "page_size": "500"},
                # True: aiohttp's default verification (unused for plain HTTP).
                ssl=api.ssl_context if api.ssl_context is not None else True,
            ) as response:
                response.raise_for_status()
                body = await response.json()
            for item in body.get("items", []):
                if item.get("name") in wanted:
                    found[item["name"]] = item
            if page >= int(body.get("page_count", 1)):
                break
            page += 1
    figures = []
    for name in names:
        item = found.get(name)
        if item is None:
            figures.append(QueueFigures(name, exists=False))
            continue
        stats = item.get("message_stats") or {}
        figures.append(
            QueueFigures(
                name=name,
                messages=int(item.get("messages") or 0),
                consumers=int(item.get("consumers") or 0),
                ready=int(item.get("messages_ready") or 0),
                unacked=int(item.get("messages_unacknowledged") or 0),
                in_rate=_rate(stats, "publish_details"),
                out_rate=_rate(stats, "deliver_get_details"),
                ack_rate=_rate(stats, "ack_details"),
            )
        )
    return figures


async def passive_figures(
    connection: AbstractConnection, names: Sequence[str]
) -> list[QueueFigures]:
    """Depth and consumers of each queue by passive declare: no plugin needed, no rates."""
    figures = []
    channel = await connection.channel()
    try:
        for name in names:
            try:
                queue = await channel.declare_queue(name, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                # A missing queue closes the channel (404); carry on with a new one.
                figures.append(QueueFigures(name, exists=False))
                channel = await connection.channel()
                continue
            result = queue.declaration_result
            figures.append(
                QueueFigures(
                    name=name,
                    messages=int(result.message_count or 0),
                    consumers=int(result.consumer_count or 0),
                )
            )
    finally:
        with contextlib.suppress(Exception):
            await channel.close()
    return figures


async def queue_figures(
    settings: BrokerSettings, connection: AbstractConnection, names: Sequence[str]
) -> QueueReport:
    """The management API's figures if it answers, otherwise passive declares."""
    note = "management API off (MASH_MANAGEMENT_URL=off)"
    try:
        api = management_api(settings)
    except ManagementRefused as exc:
        api, note = None, f"management API not used: {exc}"
    if api is not None:
        try:
            return QueueReport("management", await management_figures(api, names))
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            note = f"management API not available at {api.url} ({type(exc).__name__})"
    return QueueReport("passive", await passive_figures(connection, names), note)
