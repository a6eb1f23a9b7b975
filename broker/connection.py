"""Connections that recover by themselves after a broker restart or a network cut, over TLS
with a client certificate where the MASH is configured for it.

Three ways to authenticate, all from :class:`~broker.settings.BrokerSettings`:

- ``amqp://user:password@host/`` — local development (``guest``) or a provisioned user;
- ``amqps://user:password@host/`` with ``MASH_TLS_CA`` — the same, encrypted;
- ``amqps://host/`` with ``MASH_TLS_CA``, ``MASH_TLS_CERT`` and ``MASH_TLS_KEY`` and no password —
  mutual TLS with EXTERNAL authentication: the broker user is the certificate's common name,
  and no password exists to leak.
"""

from __future__ import annotations

import ssl
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

__all__ = [
    "BrokerConfigError",
    "BrokerRefused",
    "broker_user",
    "connect",
    "connection_url",
    "tls_context",
    "uses_external_auth",
]

log = structlog.get_logger("mash.broker")


class BrokerConfigError(ValueError):
    """The TLS settings do not make sense together, or a file they name cannot be read."""


class BrokerRefused(ConnectionError):
    """The broker could not be reached, or it refused this process's TLS or credentials."""


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


def connection_url(settings: BrokerSettings) -> URL:
    url = URL(settings.amqp_url)
    tls_settings = (settings.tls_ca, settings.tls_cert, settings.tls_key)
    if url.scheme != "amqps" and any(value is not None for value in tls_settings):
        # Never fall back to plain text because of a typo in the URL.
        raise BrokerConfigError("MASH_TLS_* is set but MASH_AMQP_URL is not amqps://")
    if uses_external_auth(settings):
        # The client library ignores the user under EXTERNAL; it is kept so that the
        # connection's URL names the user the broker sees (the publisher stamps it as user_id).
        url = url.with_user(broker_user(settings)).update_query(auth="external")
    return url


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


def _reason(exc: BaseException, url: URL) -> str:
    if isinstance(exc, aiormq.exceptions.AuthenticationError) and exc.args:
        # aiormq's own text is the two lists of mechanisms; say what they mean.
        wanted = url.query.get("auth", "plain").upper()
        return f"the broker accepts {exc.args[0]} authentication, not {wanted}"
    return f"{type(exc).__name__}: {exc}"


async def connect(settings: BrokerSettings, name: str) -> AbstractRobustConnection:
    """A robust connection: channels, queues and consumers are restored after it reconnects.

    ``name`` and the MASH prefix show in the management UI and ``rabbitmqctl
    list_connections`` as ``name:prefix``, so an operator can tell the hub from each adapter,
    and one MASH from another. A first connection that fails is one log event with
    the reason and :class:`BrokerRefused`; only later losses are retried in the background.
    """
    url = connection_url(settings)
    context = tls_context(settings)
    try:
        return await aio_pika.connect_robust(
            url,
            ssl_context=context,
            client_properties={"connection_name": f"{name}:{settings.prefix}"},
            reconnect_interval=1.0,
        )
    except (OSError, ssl.SSLError, aio_pika.exceptions.AMQPError) as exc:
        reason = _reason(exc, url)
        port = url.port or (5671 if url.scheme == "amqps" else 5672)
        where = f"{url.scheme}://{url.host}:{port}"
        # host and port only: the URL may carry a password.
        log.error(
            "broker_connection_refused",
            connection=name,
            broker=where,
            user=broker_user(settings),
            reason=reason,
        )
        raise BrokerRefused(f"{where} refused {name}: {reason}") from None
