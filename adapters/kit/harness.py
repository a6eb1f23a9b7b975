"""One agency adapter on the real broker, with the hub's side played by the test: what the
contract tests (:mod:`adapters.kit.contract`) drive.

The harness makes its own key registry (the hub, the agency and the restricted file), its own
name prefix on the broker (so nothing else sharing the broker is touched, and everything is
removed at the end), runs the installed adapter (found through ``mash.adapters``, as ``mash
adapter NAME`` finds it) in an :class:`~adapters.kit.service.AdapterService`, publishes
signed requests as the hub would, and collects the answers and dead letters.

Everything asynchronous runs on an event loop of the harness's own, in a background thread,
and the methods tests call are plain functions: a package's contract tests then need no
asyncio plugin or loop configuration, and the adapter keeps its connection alive (heartbeats,
reconnects) between one test and the next.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.kit.agency import Agency
from adapters.kit.service import AdapterService
from adapters.registry import load_agency
from broker.connection import connect
from broker.keyring import (
    RESTRICTED_OWNER,
    Keyring,
    default_restricted_dir,
    ensure_keys,
    load_private_key,
)
from broker.publisher import Publisher
from broker.settings import BrokerSettings
from broker.signing import SIGNATURE, Verifier, signer_for
from broker.topology import Lane, Topology, declare, delete, lane_for
from mash.errors import MashError
from schemas.codec import DecodeError, decode, encode
from schemas.enums import Brag, Consent, LawfulBasis
from schemas.models import AgencyResponse, InformationRequest, Subject

__all__ = ["Answer", "ContractHarness", "DeadLetter", "HarnessError"]

T = TypeVar("T")

HUB_SENDER = "hub"


class HarnessError(MashError, RuntimeError):
    """The harness could not do what a test asked (no broker, nothing answered in time)."""


@dataclass(frozen=True)
class Answer:
    """One answer message as the hub would receive it."""

    response: AgencyResponse
    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    type: str | None
    lane: Lane


@dataclass(frozen=True)
class DeadLetter:
    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    queue: str

    @property
    def reason(self) -> str:
        value = self.headers.get("x-mash-reason", "")
        return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class _Inbox:
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    undecodable: list[bytes] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="mash-contract-loop", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise HarnessError(f"gave up after {timeout:g} s") from None

    def stop(self) -> None:
        async def cancel_rest() -> None:
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.run(cancel_rest(), 10.0)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10.0)
        self.loop.close()


class ContractHarness:
    """The adapter for ``agency`` running against the broker at ``amqp_url`` (by default
    ``MASH_AMQP_URL``), its keys and state under ``workdir``."""

    def __init__(
        self,
        agency: str,
        workdir: Path,
        *,
        amqp_url: str | None = None,
        records: Agency | None = None,
    ) -> None:
        self.agency_name = agency
        self.workdir = workdir
        ring = Keyring(workdir / "keys" / "keyring.json")
        ensure_keys(ring, workdir / "keys" / "private", (HUB_SENDER, agency))
        ring.save()
        self.keyring = ring
        overrides: dict[str, Any] = {} if amqp_url is None else {"amqp_url": amqp_url}
        self.settings = BrokerSettings(
            prefix=f"contract-{agency}-{uuid.uuid4().hex[:8]}",
            agencies=(agency,),
            keyring=ring.path,
            key_dir=workdir / "keys" / "private",
            signing_key=None,
            metrics_port=0,
            declare_topology=True,
            **overrides,
        )
        self.topology = Topology(self.settings)
        self.verifier = Verifier(ring)
        # The installed adapter unless the test brings its own (the kit's own tests do).
        self.agency: Agency = records if records is not None else load_agency(agency)()
        self.service: AdapterService | None = None
        self._loop = _LoopThread()
        self._inbox = _Inbox()
        self._connection: AbstractRobustConnection | None = None
        self._publisher: Publisher | None = None
        self._contacts = 0

    # --- Life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()
        try:
            self._loop.run(self._start(), 30.0)
        except BaseException:
            self.stop()
            raise

    async def _start(self) -> None:
        self._connection = await connect(self.settings, "mash-contract-hub")
        channel = await self._connection.channel()
        await declare(channel, self.topology)
        await channel.close()
        self._publisher = Publisher(
            self._connection,
            signer=signer_for(self.keyring, self.settings.key_dir, HUB_SENDER),
            attempts=3,
        )
        listen = await self._connection.channel()
        for lane in ("urgent", "routine"):
            answers = await listen.declare_queue(self.topology.answer_queue(lane), passive=True)
            await answers.consume(self._answer_handler(lane))
            dead_name = f"{self.topology.request_queue(self.agency_name, lane)}.dead"
            dead = await listen.declare_queue(dead_name, passive=True)
            await dead.consume(self._dead_handler(dead_name))
        self.service = AdapterService(self.agency, self.settings)
        await self.service.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.run(self._stop(), 30.0)
        self._loop.stop()

    async def _stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await delete(self._connection, self.topology)
            await self._connection.close()

    def __enter__(self) -> ContractHarness:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- What the hub receives ------------------------------------------------------------

    def _answer_handler(self, lane: Lane) -> Any:
        async def on_answer(message: AbstractIncomingMessage) -> None:
            try:
                response = decode(message.body, AgencyResponse)
            except DecodeError:
                self._inbox.undecodable.append(message.body)
            else:
                answer = Answer(
                    response,
                    message.body,
                    dict(message.headers or {}),
                    message.message_id,
                    message.type,
                    lane,
                )
                self._inbox.answers.setdefault(response.request_id, []).append(answer)
            await message.ack()

        return on_answer

    def _dead_handler(self, queue: str) -> Any:
        async def on_dead(message: AbstractIncomingMessage) -> None:
            self._inbox.dead.append(
                DeadLetter(message.body, dict(message.headers or {}), message.message_id, queue)
            )
            await message.ack()

        return on_dead

    # --- Requests, as the hub sends them ---------------------------------------------------

    def request(self, *subjects: Subject, brag: Brag = Brag.AMBER) -> InformationRequest:
        """A request for ``subjects`` with a fresh request id and contact reference."""
        self._contacts += 1
        now = datetime.now(UTC)
        return InformationRequest(
            request_id=f"contract-{uuid.uuid4().hex}",
            contact_ref=f"MASH-CONTRACT-{self._contacts:06d}",
            agency=self.agency_name,
            brag=brag,
            deadline=now + timedelta(hours=4),
            issued_at=now,
            concerns_summary="Contract test: a fictional request about fictional people.",
            consent=Consent.GIVEN,
            lawful_basis=LawfulBasis.CONSENT,
            subjects=list(subjects),
        )

    def send(self, request: InformationRequest, *, message_id: str | None = None) -> None:
        """Publish ``request`` signed by the hub; the same ``message_id`` twice is what a
        redelivery looks like to the adapter."""
        self.send_body(
            encode(request),
            lane=lane_for(request.brag),
            message_id=message_id or request.request_id,
            type_=InformationRequest.avro_name,
        )

    def send_body(
        self,
        body: bytes,
        *,
        lane: Lane = "routine",
        message_id: str | None = None,
        type_: str = InformationRequest.avro_name,
        spoil_signature: bool = False,
    ) -> str:
        """Publish any body signed by the hub (``spoil_signature``: a signature that does not
        verify); returns the message id."""
        message_id = message_id or f"contract-{uuid.uuid4().hex}"
        self._loop.run(self._send(body, lane, message_id, type_, spoil_signature), 30.0)
        return message_id

    async def _send(
        self, body: bytes, lane: Lane, message_id: str, type_: str, spoil: bool
    ) -> None:
        assert self._publisher is not None and self._publisher.signer is not None
        headers: dict[str, Any] = {}
        sign = True
        if spoil:
            headers = self._publisher.signer.headers(message_id, type_, body)
            raw = bytearray(base64.b64decode(headers[SIGNATURE]))
            raw[0] ^= 0xFF
            headers[SIGNATURE] = base64.b64encode(bytes(raw)).decode("ascii")
            sign = False
        await self._publisher.publish(
            self.topology.requests,
            self.topology.request_key(self.agency_name, lane),
            body,
            message_id=message_id,
            type_=type_,
            headers=headers,
            sign=sign,
        )

    # --- Waiting for what comes back ---------------------------------------------------------

    def answers(
        self, request_ids: list[str], *, timeout: float = 15.0, settle: float = 0.5
    ) -> dict[str, list[Answer]]:
        """Every answer to each request: waits until each has one, then ``settle`` seconds
        more so that a second answer, if the adapter sends one, is counted too."""
        return self._loop.run(self._answers(request_ids, timeout, settle), timeout + settle + 5)

    async def _answers(
        self, request_ids: list[str], timeout: float, settle: float
    ) -> dict[str, list[Answer]]:
        deadline = time.monotonic() + timeout
        while not all(self._inbox.answers.get(r) for r in request_ids):
            if time.monotonic() > deadline:
                missing = [r for r in request_ids if not self._inbox.answers.get(r)]
                raise HarnessError(
                    f"{self.agency_name} did not answer {len(missing)} of {len(request_ids)} "
                    f"requests within {timeout:g} s"
                )
            await asyncio.sleep(0.02)
        await asyncio.sleep(settle)
        return {r: list(self._inbox.answers[r]) for r in request_ids}

    def answer(self, request: InformationRequest, *, settle: float = 0.0) -> Answer:
        """Send ``request`` and return its one answer."""
        self.send(request)
        return self.answers([request.request_id], settle=settle)[request.request_id][0]

    def dead_letters(self, message_ids: list[str], *, timeout: float = 15.0) -> list[DeadLetter]:
        """The dead letters of those messages, once every one has arrived."""
        return self._loop.run(self._dead_letters(message_ids, timeout), timeout + 5)

    async def _dead_letters(self, message_ids: list[str], timeout: float) -> list[DeadLetter]:
        deadline = time.monotonic() + timeout
        while True:
            found = [d for d in self._inbox.dead if d.message_id in message_ids]
            if {d.message_id for d in found} >= set(message_ids):
                return found
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"{len(message_ids) - len(found)} message(s) were not dead-lettered "
                    f"within {timeout:g} s"
                )
            await asyncio.sleep(0.02)

    def answered_request_ids(self) -> set[str]:
        async def snapshot() -> set[str]:  # read on the loop that writes it
            return set(self._inbox.answers)

        return self._loop.run(snapshot(), 10.0)

    def undecodable_answers(self) -> list[bytes]:
        async def snapshot() -> list[bytes]:
            return list(self._inbox.undecodable)

        return self._loop.run(snapshot(), 10.0)

    # --- Keys ------------------------------------------------------------------------------

    def restricted_private_key(self) -> X25519PrivateKey:
        """The restricted file's private key: what the restricted-file officer holds."""
        entry = self.keyring.current(RESTRICTED_OWNER, "restricted")
        key = load_private_key(default_restricted_dir(self.settings.key_dir), entry.key_id)
        assert isinstance(key, X25519PrivateKey)
        return key

    # --- Faults ----------------------------------------------------------------------------

    @property
    def adapter_connection_name(self) -> str:
        """As :func:`broker.connection.connect` names the adapter's connection."""
        return f"mash-adapter-{self.agency_name}:{self.settings.prefix}"

    def close_adapter_connection(self) -> int:
        """Cut the adapter's own connection under it, as a network failure or a broker
        operator's close would, and return how many were cut (1).

        The AMQP connection beneath the adapter's robust connection is closed with an error,
        which the adapter cannot tell from a dropped connection: it must reconnect and
        consume again by itself. Done through the connection rather than by asking a broker
        node (``rabbitmqctl`` reaches only the machine's default node, and a broker in a
        container or elsewhere not at all), so it works on whatever broker the test uses.
        """

        async def cut() -> int:
            connection = self.service.connection if self.service is not None else None
            transport = connection.transport if connection is not None else None
            if transport is None or transport.connection.is_closed:
                return 0
            await transport.connection.close(ConnectionResetError("contract test: connection cut"))
            return 1

        return self._loop.run(cut(), 30.0)
