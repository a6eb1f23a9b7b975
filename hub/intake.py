"""Reading a contact from a JSON file, as ``mash contact submit`` and the demo do, and the
checks every contact passes at the front door, from a file or off the broker.

The file holds a contact without the fields the front door fills in: ``received_at`` is the
moment of submission, and ``contact_id`` (when the file has none) is derived from the file's
content, so submitting the same file twice is one contact, not two.

A contact file is untrusted input: it is read only from a regular file (a FIFO or a device
would block or never end), at most :data:`MAX_FILE_BYTES` of it, and parsed with limits on
nesting and on the size of numbers, so any file gets one clear line, never a hang or a
traceback. Field bounds (``schemas.models``) keep every accepted contact inside the packet
budget; :func:`check_contact` adds what needs the clock: a contact cannot arrive from the
future.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic

from broker.files import FileRefused, read_regular_file
from mash.errors import MashError
from schemas.codec import encode
from schemas.models import Contact

__all__ = [
    "CONTACT_BUDGET_BYTES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "ContactFileError",
    "OutOfBounds",
    "check_contact",
    "contact_from_json",
    "load_contact_file",
    "parse_json",
]

_FILE_NAMESPACE = uuid.UUID("5a3e0d7e-8a51-4c3f-b0c4-7d9f1e2a6b38")
# A maximal contact (every field at its bound, four-byte characters) encodes to about
# 0.25 MiB; its JSON, with every character escaped, to about three times that.
MAX_FILE_BYTES = 1024 * 1024
# The contact's share of the packet budget (schemas.models): an encoded contact above it is
# refused, whatever its fields say.
CONTACT_BUDGET_BYTES = 320 * 1024
MAX_DEPTH = 16  # a contact is four levels deep
_MAX_NUMBER_CHARS = 32
# A submitter's clock may run a little ahead of the hub's; more than this is a wrong date.
MAX_CLOCK_SKEW = timedelta(hours=1)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class ContactFileError(MashError, ValueError):
    """The file is not a valid contact; the message is one line for the user."""

    exit_code = 2


class OutOfBounds(MashError, ValueError):
    """A well-formed contact the hub must not take: from the future, or over its budget.
    ``reason`` is the short code a dead letter carries."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def check_contact(contact: Contact, now: datetime) -> None:
    """Refuse what the fields alone cannot show wrong (see the module docstring)."""
    if contact.received_at > now + MAX_CLOCK_SKEW:
        raise OutOfBounds("received-in-future", "received_at is in the future")
    size = len(encode(contact))
    if size > CONTACT_BUDGET_BYTES:
        raise OutOfBounds(
            "contact-too-large",
            f"the contact encodes to {size} bytes, more than its {CONTACT_BUDGET_BYTES} budget",
        )


def _describe(exc: pydantic.ValidationError) -> str:
    # Where and what, never the offending value: it may be a child's details.
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "contact"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def contact_from_json(data: Any, raw: bytes, now: datetime | None = None) -> Contact:
    if not isinstance(data, dict):
        raise ContactFileError("a contact file must hold one JSON object")
    now = now or datetime.now(UTC)
    fields = dict(data)
    fields.setdefault(
        "contact_id", str(uuid.uuid5(_FILE_NAMESPACE, hashlib.sha256(raw).hexdigest()))
    )
    fields.setdefault("received_at", now.isoformat())
    fields.pop("contact_ref", None)
    try:
        contact = Contact.model_validate(fields)
    except pydantic.ValidationError as exc:
        raise ContactFileError(f"invalid contact: {_describe(exc)}") from None
    try:
        check_contact(contact, now)
    except OutOfBounds as exc:
        raise ContactFileError(f"invalid contact: {exc}") from None
    return contact


def _read_regular_file(path: Path) -> bytes:
    try:
        return read_regular_file(path, MAX_FILE_BYTES)
    except FileRefused as exc:
        raise ContactFileError(str(exc)) from None


def _depth(raw: bytes) -> int:
    deepest = depth = 0
    for bracket in _BRACKET.findall(_STRING.sub(b"", raw)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _parse_number(text: str) -> int | float:
    # Python's int() refuses more than 4300 digits with a ValueError, and float() turns
    # 1e999 into infinity: both are refused here, with the file named by the caller.
    if len(text) > _MAX_NUMBER_CHARS:
        raise ValueError("number too long")
    value = float(text) if any(c in text for c in ".eE") else int(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def parse_json(raw: bytes, name: str) -> Any:
    """Parse an untrusted JSON document with bounded nesting and numbers."""
    if _depth(raw) > MAX_DEPTH:
        raise ContactFileError(f"{name} is nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(
            raw,
            parse_int=_parse_number,
            parse_float=_parse_number,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        position = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ContactFileError(f"{name} is not valid JSON{position}") from None
    except (ValueError, RecursionError) as exc:
        raise ContactFileError(f"{name} is not a usable JSON document: {exc}") from None


def load_contact_file(path: Path, now: datetime | None = None) -> Contact:
    raw = _read_regular_file(path)
    data = parse_json(raw, str(path))
    try:
        return contact_from_json(data, raw, now)
    except ContactFileError as exc:
        raise ContactFileError(f"{path}: {exc}") from None
