"""Avro single-object encoding: ``C3 01``, the writer schema's 8-byte CRC-64-AVRO
fingerprint (little-endian), then the Avro binary body.

A reader looks the fingerprint up in the registry to find the writer's schema and resolves
it against its own, so an agency on an older schema version can still be read.
"""

from __future__ import annotations

import io
from typing import Any, TypeVar

import fastavro
import pydantic

from mash.errors import Rejected
from schemas.models import AvroModel
from schemas.registry import SchemaRegistry, default_registry

__all__ = ["MAGIC", "DecodeError", "decode", "encode", "fingerprint_of", "schema_name_of"]

MAGIC = b"\xc3\x01"
_HEADER = len(MAGIC) + 8
# Large enough for any genuine packet; anything bigger is refused before it is parsed.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

M = TypeVar("M", bound=AvroModel)


class DecodeError(Rejected, ValueError):
    """A message that cannot be read; ``reason`` is a short code for the dead-letter header."""


def encode(model: AvroModel, registry: SchemaRegistry | None = None) -> bytes:
    entry = (registry or default_registry()).current(model.avro_name)
    buffer = io.BytesIO()
    buffer.write(MAGIC)
    buffer.write(entry.fingerprint)
    fastavro.schemaless_writer(buffer, entry.parsed, model.to_avro())
    return buffer.getvalue()


def fingerprint_of(data: bytes) -> bytes:
    if len(data) < _HEADER or data[:2] != MAGIC:
        raise DecodeError("not-single-object", "message does not start with the Avro marker C3 01")
    return data[2:_HEADER]


def schema_name_of(data: bytes, registry: SchemaRegistry | None = None) -> str:
    fingerprint = fingerprint_of(data)
    entry = (registry or default_registry()).by_fingerprint(fingerprint)
    if entry is None:
        raise DecodeError("unknown-fingerprint", f"no schema has fingerprint {fingerprint.hex()}")
    return entry.name


def decode_record(
    data: bytes, reader_name: str, registry: SchemaRegistry | None = None
) -> dict[str, Any]:
    registry = registry or default_registry()
    if len(data) > MAX_MESSAGE_BYTES:
        raise DecodeError("oversized", f"{len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    fingerprint = fingerprint_of(data)
    writer = registry.by_fingerprint(fingerprint)
    if writer is None:
        raise DecodeError("unknown-fingerprint", f"no schema has fingerprint {fingerprint.hex()}")
    reader = registry.current(reader_name)
    if writer.name != reader.name:
        raise DecodeError("wrong-schema", f"expected {reader.name}, got {writer.name}")
    body = io.BytesIO(data[_HEADER:])
    try:
        record = fastavro.schemaless_reader(
            body,
            writer.parsed,
            None if writer.fingerprint == reader.fingerprint else reader.parsed,
        )
    except Exception as exc:  # fastavro raises many types on bad bytes
        raise DecodeError("malformed-body", type(exc).__name__) from None
    if body.tell() != len(data) - _HEADER:
        raise DecodeError("malformed-body", "trailing bytes after the record")
    if not isinstance(record, dict):
        raise DecodeError("malformed-body", "not a record")
    return record


def decode(data: bytes, model: type[M], registry: SchemaRegistry | None = None) -> M:
    record = decode_record(data, model.avro_name, registry)
    try:
        return model.model_validate(record)
    except pydantic.ValidationError as exc:
        # Field names only: the values may be a child's details.
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        raise DecodeError("invalid-content", "invalid fields: " + ", ".join(fields)) from None
