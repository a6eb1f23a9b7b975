"""Reading a contact from a JSON file, as ``mash contact submit`` and the demo do.

The file holds a contact without the fields the front door fills in: ``received_at`` is the
moment of submission, and ``contact_id`` (when the file has none) is derived from the file's
content, so submitting the same file twice is one contact, not two.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic

from schemas.models import Contact

__all__ = ["ContactFileError", "contact_from_json", "load_contact_file"]

_FILE_NAMESPACE = uuid.UUID("5a3e0d7e-8a51-4c3f-b0c4-7d9f1e2a6b38")


class ContactFileError(ValueError):
    """The file is not a valid contact; the message is one line for the user."""


def _describe(exc: pydantic.ValidationError) -> str:
    # Where and what, never the offending value: it may be a child's details.
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "contact"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def contact_from_json(data: Any, raw: bytes, now: datetime | None = None) -> Contact:
    if not isinstance(data, dict):
        raise ContactFileError("a contact file must hold one JSON object")
    fields = dict(data)
    fields.setdefault(
        "contact_id", str(uuid.uuid5(_FILE_NAMESPACE, hashlib.sha256(raw).hexdigest()))
    )
    fields.setdefault("received_at", (now or datetime.now(UTC)).isoformat())
    fields.pop("contact_ref", None)
    try:
        return Contact.model_validate(fields)
    except pydantic.ValidationError as exc:
        raise ContactFileError(f"invalid contact: {_describe(exc)}") from None


def load_contact_file(path: Path, now: datetime | None = None) -> Contact:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ContactFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        position = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ContactFileError(f"{path} is not valid JSON{position}") from None
    try:
        return contact_from_json(data, raw, now)
    except ContactFileError as exc:
        raise ContactFileError(f"{path}: {exc}") from None
