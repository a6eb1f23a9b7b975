"""broker.wire: a content header the client library cannot decode becomes a delivery flagged
unparseable (what could be read kept), never an exception in the connection's frame reader."""

from __future__ import annotations

import struct

import pamqp.frame
from pamqp import commands
from pamqp.header import ContentHeader

from broker import wire
from faults.poison import KINDS, poison


def _header_frame(flags: int, properties: bytes, body_size: int = 5) -> bytes:
    return struct.pack(">HHQH", 60, 0, body_size, flags) + properties


def test_the_wire_decoder_is_installed_by_importing_the_broker_layer() -> None:
    assert wire.installed()
    assert pamqp.frame._unmarshal_header_frame is wire.tolerant_header_frame


def test_every_unreadable_kind_is_flagged_with_its_reason_and_keeps_its_message_id() -> None:
    reasons = {}
    for kind in KINDS:
        sample = poison(kind, f"id-{kind}")
        header = wire.tolerant_header_frame(_header_frame(sample.flags, sample.properties, 10))
        assert header.body_size == 10
        assert header.properties.message_id == f"id-{kind}"
        assert header.properties.delivery_mode == 2
        assert set(header.properties.headers or {}) == {wire.UNPARSEABLE}
        reasons[kind] = (header.properties.headers or {})[wire.UNPARSEABLE]
    assert reasons == {
        "nested": "headers: nested too deep",
        "non-utf8-name": "headers: not UTF-8",
        "timestamp": "headers: out of range; timestamp: out of range",
    }


def test_a_readable_header_is_decoded_exactly_as_the_client_library_does() -> None:
    properties = commands.Basic.Properties(
        headers={"x-a": 1, "nested": {"b": [1, "two"]}}, message_id="m-1", delivery_mode=2
    )
    header = wire.tolerant_header_frame(ContentHeader(0, 7, properties).marshal())
    assert header.properties.headers == {"x-a": 1, "nested": {"b": [1, "two"]}}
    assert header.properties.message_id == "m-1"
    assert header.body_size == 7


def test_a_delivery_mode_the_client_library_cannot_represent_is_flagged() -> None:
    flags = commands.Basic.Properties.flags
    frame = _header_frame(flags["delivery_mode"] | flags["message_id"], bytes([7, 1]) + b"m")
    header = wire.tolerant_header_frame(frame)
    assert header.properties.delivery_mode is None
    assert header.properties.message_id == "m"
    assert header.properties.headers == {wire.UNPARSEABLE: "delivery_mode: 7 is not 1 or 2"}


def test_a_non_utf8_message_id_is_dropped_and_the_rest_kept() -> None:
    flags = commands.Basic.Properties.flags
    frame = _header_frame(flags["message_id"] | flags["user_id"], b"\x02\xff\xfe\x05guest")
    header = wire.tolerant_header_frame(frame)
    assert header.properties.message_id is None
    assert header.properties.user_id == "guest"
    assert header.properties.headers == {wire.UNPARSEABLE: "message_id: not UTF-8"}
