"""Publishing with publisher confirms, where an unroutable message is an error.

A publish returns only once the broker has confirmed the message; a nack (a full queue with
``reject-publish``), a return (no queue bound) or a lost connection is retried with backoff
and raised if it persists, so the caller never assumes a message was delivered that was not.

Every message carries ``user_id``: the broker user of the connection, which RabbitMQ checks
against the login, so a receiver knows who sent it. A message the broker refuses (no write
permission, or a ``user_id`` that is not ours) is not retried: :class:`PublishRefused` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from broker.signing import Signer
from mash.errors import MashError
from schemas.codec import encode
from schemas.models import AvroModel
from telemetry import tracing
from telemetry.metrics import Metrics

__all__ = ["CONTENT_TYPE", "PublishFailed", "PublishRefused", "Publisher"]

CONTENT_TYPE = "avro/binary"
log = structlog.get_logger("mash.broker")

_TRANSIENT = (
    aiormq.exceptions.DeliveryError,  # includes PublishError (returned as unroutable)
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.ConnectionClosed,
    aio_pika.exceptions.ChannelClosed,
    ConnectionError,
    asyncio.TimeoutError,
)


_REFUSED = (aiormq.exceptions.ChannelAccessRefused, aiormq.exceptions.ChannelPreconditionFailed)


class PublishFailed(MashError, RuntimeError):
    """The broker did not accept a message after every retry."""


class PublishRefused(PublishFailed):
    """The broker refused the message for good (permissions, or a user_id not ours)."""


def _connection_user(connection: AbstractConnection) -> str | None:
    # aio-pika keeps the URL it connected with; broker.connection puts the certificate's
    # common name there under EXTERNAL authentication, and the client logs in as guest
    # when the URL names no user.
    url = getattr(connection, "url", None)
    if url is None:
        return None
    return str(url.user) if url.user else (None if url.query.get("auth") else "guest")


class Publisher:
    """One confirming channel; safe to share between tasks (confirms are pipelined)."""

    def __init__(
        self,
        connection: AbstractConnection,
        *,
        signer: Signer | None = None,
        attempts: int = 6,
        confirm_timeout: float = 30.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._connection = connection
        self.signer = signer
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._attempts = attempts
        self._timeout = confirm_timeout
        self.user_id = _connection_user(connection)
        self._metrics = metrics

    async def _exchange(self, name: str) -> AbstractExchange:
        if self._channel is None or self._channel.is_closed:
            try:
                self._channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
            except RuntimeError as exc:
                # aio-pika's way of saying the connection is between nodes right now: retried.
                raise ConnectionError(f"no channel while the connection recovers: {exc}") from None
            self._exchanges.clear()
        if name not in self._exchanges:
            self._exchanges[name] = (
                self._channel.default_exchange
                if name == ""
                else await self._channel.get_exchange(name, ensure=False)
            )
        return self._exchanges[name]

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        type_: str | None = None,
        headers: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        persistent: bool = True,
        user_id: str | None = None,
        attempts: int | None = None,
        sign: bool = True,
    ) -> None:
        """``sign=False`` forwards a message that keeps its original sender's signature
        (a dead letter, a replay)."""
        all_headers = dict(headers or {})
        with tracing.publishing(all_headers, exchange, routing_key, message_id):
            await self._publish(
                body,
                all_headers,
                exchange,
                routing_key,
                message_id=message_id,
                type_=type_,
                correlation_id=correlation_id,
                reply_to=reply_to,
                persistent=persistent,
                user_id=user_id,
                attempts=attempts,
                sign=sign,
            )

    async def _publish(
        self,
        body: bytes,
        all_headers: dict[str, Any],
        exchange: str,
        routing_key: str,
        *,
        message_id: str,
        type_: str | None,
        correlation_id: str | None,
        reply_to: str | None,
        persistent: bool,
        user_id: str | None,
        attempts: int | None,
        sign: bool,
    ) -> None:
        if sign and self.signer is not None:
            all_headers.update(self.signer.headers(message_id, type_ or "", body))
        message = aio_pika.Message(
            body,
            content_type=CONTENT_TYPE,
            delivery_mode=(
                aio_pika.DeliveryMode.PERSISTENT
                if persistent
                else aio_pika.DeliveryMode.NOT_PERSISTENT
            ),
            message_id=message_id,
            type=type_,
            headers=all_headers,
            correlation_id=correlation_id,
            reply_to=reply_to,
            timestamp=datetime.now(UTC),
            user_id=user_id or self.user_id,
        )
        try:
            await self._send(message, exchange, routing_key, attempts or self._attempts)
        except _REFUSED as exc:
            reason = str(exc)  # the broker's own words, e.g. "ACCESS_REFUSED - ..."
            log.error(
                "publish_refused",
                exchange=exchange,
                routing_key=routing_key,
                message_id=message_id,
                user=message.user_id,
                reason=reason,
            )
            raise PublishRefused(
                f"{exchange}/{routing_key} message {message_id}: {reason}"
            ) from exc
        except _TRANSIENT as exc:
            if self._metrics is not None:
                self._metrics.publish_failures.labels(exchange).inc()
            raise PublishFailed(
                f"{exchange}/{routing_key} message {message_id}: {type(exc).__name__}"
            ) from exc
        if self._metrics is not None:
            self._metrics.published(exchange, type_, all_headers)

    async def _send(
        self, message: aio_pika.Message, exchange: str, routing_key: str, attempts: int
    ) -> None:
        try:
            # The usual case first, without the retry machinery's cost on every message.
            target = await self._exchange(exchange)
            await target.publish(message, routing_key, mandatory=True, timeout=self._timeout)
            return
        except _REFUSED:
            raise
        except _TRANSIENT:
            if attempts <= 1:
                raise
        await asyncio.sleep(0.1)
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(attempts - 1),
            wait=wait_exponential(multiplier=0.1, max=5.0),
            retry=retry_if_exception_type(_TRANSIENT) & retry_if_not_exception_type(_REFUSED),
            reraise=True,
        ):
            with attempt:
                log.warning(
                    "publish_retry",
                    exchange=exchange,
                    routing_key=routing_key,
                    message_id=message.message_id,
                    attempt=attempt.retry_state.attempt_number + 1,
                )
                target = await self._exchange(exchange)
                try:
                    await target.publish(
                        message, routing_key, mandatory=True, timeout=self._timeout
                    )
                except aiormq.exceptions.DeliveryError as exc:
                    # Only the channel this publish was nacked on: another task may have
                    # replaced it already, and its new one must not be closed in turn.
                    nacked = not isinstance(exc, aiormq.exceptions.PublishError)
                    if nacked and self._exchanges.get(exchange) is target:
                        await self._new_channel()
                    raise

    async def _new_channel(self) -> None:
        """Leave a channel the broker nacks for the next publish to open a new one.

        Measured on a three-node cluster: a channel restored after its node died was nacked by
        the surviving nodes for minutes (its quorum-queue state still named the dead leader),
        while a new channel on the same connection was accepted at once. Publishes in flight on
        the old channel fail and are retried; their message ids keep any repeat harmless.
        """
        channel, self._channel = self._channel, None
        self._exchanges.clear()
        if channel is not None and not channel.is_closed:
            with contextlib.suppress(Exception):
                await channel.close()

    async def publish_model(
        self,
        exchange: str,
        routing_key: str,
        model: AvroModel,
        *,
        message_id: str,
        **kwargs: Any,
    ) -> None:
        await self.publish(
            exchange,
            routing_key,
            encode(model),
            message_id=message_id,
            type_=model.avro_name,
            **kwargs,
        )

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
