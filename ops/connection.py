"""How the operator's tools (``mash status``, ``mash dlq``) reach the broker.

As every other process does (:mod:`broker.connection`): the URL from ``MASH_AMQP_URL``, over
TLS with ``MASH_TLS_CA``, and with ``MASH_TLS_CERT``/``MASH_TLS_KEY`` and no password in the
URL as the certificate's common name (EXTERNAL), so a certificate-only broker is reachable.
Unlike a service, a command does not wait for the broker to come back: one attempt, bounded
by a timeout, and one clear line when it cannot be had.
"""

from __future__ import annotations

from aio_pika.abc import AbstractConnection

from broker.connection import BrokerConfigError, connect
from broker.settings import BrokerSettings
from mash.errors import MashError

__all__ = ["BrokerUnreachable", "operator_connection"]


class BrokerUnreachable(MashError, ConnectionError):
    """The broker could not be reached, refused the login, or the TLS settings are wrong."""


async def operator_connection(
    settings: BrokerSettings, name: str, timeout: float | None = None
) -> AbstractConnection:
    """One bounded attempt (``timeout``, else ``MASH_CONNECT_TIMEOUT``), said in one line."""
    if timeout is not None:
        settings = settings.model_copy(update={"connect_timeout": timeout})
    try:
        return await connect(settings, name, quiet=True)
    except (OSError, BrokerConfigError) as exc:
        # BrokerRefused (an OSError) already names the broker by host and port, never the
        # password, and says why: refused login, no vhost access, TLS, or no answer.
        raise BrokerUnreachable(str(exc) or type(exc).__name__) from None
