"""How the operator's tools (``mash status``, ``mash dlq``) reach the broker.

As every other process does (:mod:`broker.connection`): the URL from ``MASH_AMQP_URL``, over
TLS with ``MASH_TLS_CA``, and with ``MASH_TLS_CERT``/``MASH_TLS_KEY`` and no password in the
URL as the certificate's common name (EXTERNAL), so a certificate-only broker is reachable.
Unlike a service, a command does not wait for the broker to come back: one plain connection,
with a timeout, and one clear line when it cannot be had.
"""

from __future__ import annotations

import ssl

import aio_pika
from aio_pika.abc import AbstractConnection

from broker.connection import BrokerConfigError, connection_url, tls_context
from broker.settings import BrokerSettings

__all__ = ["BrokerUnreachable", "operator_connection"]


class BrokerUnreachable(ConnectionError):
    """The broker could not be reached, refused the login, or the TLS settings are wrong."""


async def operator_connection(
    settings: BrokerSettings, name: str, timeout: float = 10.0
) -> AbstractConnection:
    try:
        url = connection_url(settings)
        context = tls_context(settings)
    except BrokerConfigError as exc:
        raise BrokerUnreachable(str(exc)) from None
    try:
        return await aio_pika.connect(
            url,
            ssl_context=context,
            timeout=timeout,
            client_properties={"connection_name": f"{name}:{settings.prefix}"},
        )
    except (OSError, ssl.SSLError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
        port = url.port or (5671 if url.scheme == "amqps" else 5672)
        # Host and port only: the URL may carry a password.
        where = f"{url.scheme}://{url.host}:{port}"
        raise BrokerUnreachable(
            f"cannot reach the broker at {where}: {exc or type(exc).__name__}"
        ) from None
