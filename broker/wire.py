"""Reading any message the broker accepts, however odd its properties.

RabbitMQ accepts message properties that the client library cannot decode: header tables
nested deeper than Python's recursion limit, header names that are not UTF-8, timestamps
beyond the year 9999, a delivery mode that is neither 1 nor 2. pamqp raises on such a content
header inside aiormq's frame reader, and the reader's failure closes the whole connection:
every consumer on it is cut off, the poison message is redelivered (and closes the connection
again) until its delivery limit, and every message prefetched around it is charged a
delivery each time. Any broker user who may publish to an exchange could stop every consumer
of its queues that way.

:func:`install` makes the decoding of a content header total. When pamqp cannot decode the
properties, each property is decoded on its own (every AMQP property's length is known
without decoding its content: tables and strings carry their length, the others are fixed),
the ones that decode are kept, and the headers table is replaced by one header,
:data:`UNPARSEABLE`, naming what could not be read. The frame then reaches the channel as a
normal delivery, and :class:`~broker.consumer.Consumer` dead-letters it with that reason and
acks it, without closing anything.

It patches one private function of pamqp (the one that decodes a content-header frame), so
:func:`install` checks the function is still there and fails loudly if a new pamqp moved it.
It runs when the ``broker`` package is imported, so every process of the project (hub,
adapters, the command line, the fault harness) reads messages the same way.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pamqp.exceptions
import pamqp.frame
from pamqp import commands, decode
from pamqp.header import ContentHeader

__all__ = ["UNPARSEABLE", "install", "installed", "tolerant_header_frame"]

# The one header a delivery carries when its own properties could not be decoded.
UNPARSEABLE = "x-mash-unparseable"

# A property's encoded length, read without decoding its content.
_FIXED = {"octet": 1, "timestamp": 8}

_original: Callable[[bytes], ContentHeader] | None = None


def _describe(name: str, exc: BaseException) -> str:
    """What went wrong, by kind only: a header's value may be anything, child data included."""
    cause: BaseException | None = exc
    while cause is not None:  # pamqp wraps the real failure in ValueError chains
        if isinstance(cause, RecursionError):
            return f"{name}: nested too deep"
        if isinstance(cause, UnicodeDecodeError):
            return f"{name}: not UTF-8"
        if isinstance(cause, OverflowError | OSError) or "out of range" in str(cause):
            return f"{name}: out of range"
        cause = cause.__cause__ or cause.__context__
    return f"{name}: {type(exc).__name__}"


def _length(data_type: str, data: bytes) -> int:
    if data_type in _FIXED:
        return _FIXED[data_type]
    if data_type == "shortstr":
        return 1 + data[0]
    if data_type == "table":
        return 4 + int(struct.unpack(">I", data[:4])[0])
    raise ValueError(f"no length rule for {data_type}")


def _decode_properties(flags: int, data: bytes) -> tuple[commands.Basic.Properties, list[str]]:
    """Each property on its own; those that fail are left unset and named in the result."""
    properties = commands.Basic.Properties()
    problems: list[str] = []
    for name in properties.__slots__:
        if not flags & properties.flags[name]:
            continue
        data_type = str(getattr(commands.Basic.Properties, "_" + name))
        length = _length(data_type, data)
        if length > len(data):
            raise ValueError(f"property {name} runs past the frame")
        value: Any
        try:
            _, value = decode.by_type(data[:length], data_type)
        except (ValueError, RecursionError, OverflowError, OSError, struct.error) as exc:
            problems.append(_describe(name, exc))
            value = None
        if name == "delivery_mode" and value not in (None, 1, 2):
            # aio-pika turns it into an enum and would raise in the consumer's callback.
            problems.append(f"delivery_mode: {value} is not 1 or 2")
            value = None
        if value is not None:
            setattr(properties, name, value)
        data = data[length:]
    return properties, problems


def tolerant_header_frame(frame_data: bytes) -> ContentHeader:
    """pamqp's decoding when it succeeds; otherwise the properties that can be read, with
    :data:`UNPARSEABLE` as the only header."""
    assert _original is not None, "install() first"
    try:
        header = _original(frame_data)
    except (pamqp.exceptions.UnmarshalingException, RecursionError, OverflowError, OSError):
        pass
    else:
        if header.properties.delivery_mode in (None, 1, 2):
            return header
    # The class, weight and body size must decode: without the body size the frames that
    # follow cannot be read, and a broker that sends such a frame is not one to talk to.
    class_id, weight, body_size = struct.unpack(">HHQ", frame_data[:12])
    offset, flags = ContentHeader._get_flags(frame_data[12:])
    try:
        properties, problems = _decode_properties(flags, frame_data[12 + offset :])
    except (ValueError, IndexError, struct.error) as exc:
        properties, problems = commands.Basic.Properties(), [f"properties: {exc}"]
    properties.headers = {UNPARSEABLE: "; ".join(problems) or "properties: unreadable"}
    header = ContentHeader(weight=weight, body_size=body_size, properties=properties)
    header.class_id = class_id
    return header


def installed() -> bool:
    return pamqp.frame._unmarshal_header_frame is tolerant_header_frame


def install() -> None:
    """Make every content header in this process decodable (idempotent)."""
    global _original
    if installed():
        return
    original = getattr(pamqp.frame, "_unmarshal_header_frame", None)
    if original is None:
        raise RuntimeError(
            "pamqp.frame._unmarshal_header_frame is gone: broker/wire.py must follow the new "
            "pamqp before a message with unreadable headers can be survived"
        )
    _original = original
    pamqp.frame._unmarshal_header_frame = tolerant_header_frame
