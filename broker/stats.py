"""Queue figures for operators: depth, consumers and, where the broker can say, rates.

Two sources. RabbitMQ's management API (the ``rabbitmq_management`` plugin) gives depth,
ready and unacknowledged counts, consumers and message rates. Where the plugin is not
enabled, a passive declare of each queue over AMQP still gives depth and consumers, without
rates. :func:`queue_figures` tries the API first and falls back, saying which it used.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import aiohttp
from aio_pika.abc import AbstractConnection

from broker.settings import BrokerSettings

__all__ = [
    "ManagementApi",
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
    url: str  # e.g. http://127.0.0.1:15672, no trailing slash
    user: str
    password: str
    vhost: str


def management_api(settings: BrokerSettings) -> ManagementApi | None:
    """Where the management API should be, from MASH_MANAGEMENT_URL or the AMQP URL."""
    if settings.management_url.strip().lower() == "off":
        return None
    amqp = urlsplit(settings.amqp_url)
    vhost = unquote(amqp.path[1:]) if len(amqp.path) > 1 else "/"
    user, password = unquote(amqp.username or "guest"), unquote(amqp.password or "guest")
    if settings.management_url.strip():
        given = urlsplit(settings.management_url.strip())
        if given.username:
            user, password = unquote(given.username), unquote(given.password or "")
        netloc = given.hostname or "127.0.0.1"
        if given.port:
            netloc = f"{netloc}:{given.port}"
        url = f"{given.scheme or 'http'}://{netloc}{given.path.rstrip('/')}"
    else:
        url = f"http://{amqp.hostname or '127.0.0.1'}:15672"
    return ManagementApi(url, user, password, vhost)


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
    api = management_api(settings)
    note = "management API off (MASH_MANAGEMENT_URL=off)"
    if api is not None:
        try:
            return QueueReport("management", await management_figures(api, names))
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            note = f"management API not available at {api.url} ({type(exc).__name__})"
    return QueueReport("passive", await passive_figures(connection, names), note)
