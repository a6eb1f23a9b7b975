"""Messages the broker accepts and the client library cannot read.

A client library refuses to build these (its encoder recurses, or checks its input), so they
are written frame by frame on a socket of our own: the AMQP handshake, a channel in confirm
mode, then for each message a ``basic.publish`` method frame (pamqp), a content-header frame
built by hand, and the body. The broker's confirm says it accepted the message.

Kinds, each a real way one agency's broker user could stop every consumer of a queue
(issue 16.1): a header table nested deeper than Python's recursion limit, a header name that
is not UTF-8, a header timestamp and a ``timestamp`` property past the year 9999.
(A delivery mode other than 1 or 2 the broker refuses itself.)
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pamqp.frame
from pamqp import commands
from pamqp.base import Frame
from pamqp.body import ContentBody
from pamqp.heartbeat import Heartbeat
from yarl import URL

from mash.errors import MashError

__all__ = ["KINDS", "Poison", "PoisonRefused", "poison", "publish_poison"]

_CHANNEL = 1
_FRAME_HEADER = 2


class PoisonRefused(MashError, RuntimeError):
    """The broker did not accept the message (so it is no test of a consumer)."""


@dataclass(frozen=True)
class Poison:
    kind: str
    message_id: str
    flags: int  # Basic.Properties flags of the encoded properties below
    properties: bytes


def _short(text: bytes) -> bytes:
    return bytes([len(text)]) + text


def _table(entries: bytes) -> bytes:
    return struct.pack(">I", len(entries)) + entries


def _nested(depth: int) -> bytes:
    inner = b""
    for _ in range(depth):
        inner = _short(b"n") + b"F" + _table(inner)
    return _table(inner)


_FLAGS = commands.Basic.Properties.flags
_FAR_FUTURE = struct.pack(">Q", 2**63 - 1)  # milliseconds since 1970: far past year 9999


def poison(kind: str, message_id: str) -> Poison:
    """One unreadable message of ``kind`` (see :data:`KINDS`), carrying ``message_id``."""
    delivery = bytes([2])  # persistent, so it survives on the quorum queue like real work
    mid = _short(message_id.encode())
    flags = _FLAGS["headers"] | _FLAGS["delivery_mode"] | _FLAGS["message_id"]
    if kind == "nested":
        table = _nested(2_000)
    elif kind == "non-utf8-name":
        table = _table(_short(b"\xff\xfe-name") + b"S" + struct.pack(">I", 1) + b"x")
    elif kind == "timestamp":
        table = _table(_short(b"when") + b"T" + _FAR_FUTURE)
        flags |= _FLAGS["timestamp"]
        return Poison(kind, message_id, flags, table + delivery + mid + _FAR_FUTURE)
    else:
        raise ValueError(f"unknown poison kind {kind!r}")
    return Poison(kind, message_id, flags, table + delivery + mid)


KINDS: tuple[str, ...] = ("nested", "non-utf8-name", "timestamp")


def _frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce"


class _Wire:
    def __init__(self, url: URL, timeout: float) -> None:
        self.sock = socket.create_connection((url.host or "127.0.0.1", url.port or 5672), timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def method(self, frame: Frame, channel: int = 0) -> None:
        self.send(pamqp.frame.marshal(frame, channel))

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise PoisonRefused("the broker closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def receive(self) -> object:
        head = self._read(7)
        _, _, size = struct.unpack(">BHI", head)
        _, _, frame = pamqp.frame.unmarshal(head + self._read(size + 1))
        if isinstance(frame, commands.Connection.Close | commands.Channel.Close):
            raise PoisonRefused(f"{frame.reply_code} {frame.reply_text}")
        return frame

    def expect(self, kind: type) -> object:
        while True:
            frame = self.receive()
            if isinstance(frame, kind):
                return frame
            if not isinstance(frame, Heartbeat):
                raise PoisonRefused(f"expected {kind.__name__}, got {type(frame).__name__}")


def publish_poison(
    amqp_url: str,
    exchange: str,
    routing_key: str,
    messages: Iterable[Poison],
    body: bytes = b"unreadable",
    timeout: float = 10.0,
) -> Sequence[str]:
    """Publish each message and wait for the broker's confirm; returns the confirmed ids.

    Blocking (a plain socket): call it through :func:`asyncio.to_thread` from async code.
    """
    url = URL(amqp_url)
    wire = _Wire(url, timeout)
    confirmed: list[str] = []
    try:
        wire.send(b"AMQP\x00\x00\x09\x01")
        wire.expect(commands.Connection.Start)
        user, password = url.user or "guest", url.password or "guest"
        wire.method(
            commands.Connection.StartOk(
                client_properties={"connection_name": "mash-faults-poison"},
                mechanism="PLAIN",
                response=f"\0{user}\0{password}",
            )
        )
        tune = wire.expect(commands.Connection.Tune)
        assert isinstance(tune, commands.Connection.Tune)
        wire.method(commands.Connection.TuneOk(tune.channel_max or 0, tune.frame_max or 131072, 0))
        vhost = url.path[1:] if len(url.path) > 1 else "/"
        wire.method(commands.Connection.Open(virtual_host=vhost))
        wire.expect(commands.Connection.OpenOk)
        wire.method(commands.Channel.Open(), _CHANNEL)
        wire.expect(commands.Channel.OpenOk)
        wire.method(commands.Confirm.Select(), _CHANNEL)
        wire.expect(commands.Confirm.SelectOk)
        for message in messages:
            wire.method(
                commands.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=True),
                _CHANNEL,
            )
            header = struct.pack(">HHQH", 60, 0, len(body), message.flags) + message.properties
            wire.send(_frame(_FRAME_HEADER, _CHANNEL, header))
            wire.send(pamqp.frame.marshal(ContentBody(body), _CHANNEL))
            reply = wire.receive()
            if isinstance(reply, commands.Basic.Return):
                raise PoisonRefused(f"unroutable: {reply.reply_text}")
            if not isinstance(reply, commands.Basic.Ack):
                raise PoisonRefused(f"not confirmed: {type(reply).__name__}")
            confirmed.append(message.message_id)
        wire.method(
            commands.Connection.Close(reply_code=200, reply_text="done", class_id=0, method_id=0)
        )
        wire.expect(commands.Connection.CloseOk)
    finally:
        wire.sock.close()
    return confirmed
