"""Talking to a running hub over the broker: submit a contact, re-rate one, record the
decision on one.

Each call publishes (with confirms) and waits for the hub's reply on a private reply queue.
If the hub does not answer in time the message is still safely queued; the caller is told so.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import TracebackType

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from broker.connection import connect
from broker.credentials import load_credentials
from broker.publisher import Publisher
from broker.settings import BrokerSettings
from broker.signing import OPERATOR, SignatureRefused
from broker.topology import Topology, declare, lane_for
from mash.errors import MashError
from schemas.codec import DecodeError, decode, encode
from schemas.enums import Brag, CommandAction, Decision
from schemas.models import CommandReply, Contact, ContactCommand

__all__ = ["HubClient", "HubDidNotAnswer"]


_HUB = frozenset({"hub"})


class HubDidNotAnswer(MashError, TimeoutError):
    """The message is queued, but no hub replied within the timeout."""

    exit_code = 3


class HubClient:
    def __init__(self, settings: BrokerSettings, name: str = "mash-cli") -> None:
        self.settings = settings
        self.topology = Topology(settings)
        self.name = name
        self.credentials = load_credentials(settings, OPERATOR)
        self._connection: AbstractRobustConnection | None = None
        self._publisher: Publisher | None = None
        self._reply_queue = ""
        self._waiting: dict[str, asyncio.Future[CommandReply]] = {}

    async def __aenter__(self) -> HubClient:
        # One bounded attempt; the command says a refusal in one line itself.
        self._connection = await connect(self.settings, self.name, quiet=True)
        try:
            await self._open(self._connection)
        except BaseException:
            # The command says why in one line; a connection left open would add the
            # client library's own traceback to it at exit.
            await self._connection.close()
            raise
        return self

    async def _open(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        if self.settings.declare_topology:
            await declare(channel, self.topology)
        queue = await channel.declare_queue(
            self.topology.reply_queue(uuid.uuid4().hex), exclusive=True, auto_delete=True
        )
        # The hub replies through the replies exchange under the queue's own name.
        await queue.bind(self.topology.replies, routing_key=queue.name)
        self._reply_queue = queue.name
        await queue.consume(self._on_reply, no_ack=True)
        self._publisher = Publisher(
            connection,
            signer=self.credentials.signer,
            attempts=self.settings.publish_attempts,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._waiting.pop(message.correlation_id or "", None)
        if future is None or future.done():
            return
        try:
            self.credentials.verifier.verify(
                message.headers, message.message_id, message.type, message.body, _HUB
            )
            future.set_result(decode(message.body, CommandReply))
        except (DecodeError, SignatureRefused) as exc:
            future.set_exception(exc)

    async def _call(
        self, exchange: str, key: str, body: bytes, type_: str, message_id: str, timeout: float
    ) -> CommandReply:
        assert self._publisher is not None, "use HubClient in 'async with'"
        correlation_id = str(uuid.uuid4())
        future: asyncio.Future[CommandReply] = asyncio.get_running_loop().create_future()
        self._waiting[correlation_id] = future
        await self._publisher.publish(
            exchange,
            key,
            body,
            message_id=message_id,
            type_=type_,
            correlation_id=correlation_id,
            reply_to=self._reply_queue,
        )
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise HubDidNotAnswer(message_id) from None
        finally:
            self._waiting.pop(correlation_id, None)

    async def submit(self, contact: Contact, timeout: float = 30.0) -> CommandReply:
        return await self._call(
            self.topology.contacts,
            lane_for(contact.brag),
            encode(contact),
            contact.avro_name,
            contact.contact_id,
            timeout,
        )

    async def rerate(
        self,
        ref: str,
        brag: Brag,
        timeout: float = 30.0,
        *,
        rationale: str | None = None,
        issued_by: str | None = None,
    ) -> CommandReply:
        command = ContactCommand(
            command_id=str(uuid.uuid4()),
            issued_at=datetime.now(UTC),
            action=CommandAction.RERATE,
            contact_ref=ref,
            brag=brag,
            rationale=rationale,
            issued_by=issued_by,
        )
        return await self._command(command, timeout)

    async def decide(
        self,
        ref: str,
        decision: Decision,
        rationale: str,
        issued_by: str | None = None,
        timeout: float = 30.0,
    ) -> CommandReply:
        """Record the MASH's decision on a contact (hub.decisions)."""
        command = ContactCommand(
            command_id=str(uuid.uuid4()),
            issued_at=datetime.now(UTC),
            action=CommandAction.DECIDE,
            contact_ref=ref,
            decision=decision,
            rationale=rationale,
            issued_by=issued_by,
        )
        return await self._command(command, timeout)

    async def _command(self, command: ContactCommand, timeout: float) -> CommandReply:
        return await self._call(
            self.topology.commands,
            "command",
            encode(command),
            command.avro_name,
            command.command_id,
            timeout,
        )
