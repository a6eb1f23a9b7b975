"""Opening a contact's restricted findings: the restricted-file key and the keeper's store,
nothing of the hub's. Every read, and every refused read, is audited with the reader as the
process's own identity says: the operating-system account running it (never a name the
reader types, nor an environment variable they can set) and the key that opened it."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from broker.keyring import KeyringError, load_private_key
from broker.sealed import SealError, open_sealed
from hub import audit
from mash.errors import MashError
from restricted.store import KeeperStore
from schemas.codec import DecodeError, decode
from schemas.models import RestrictedEnvelope, RestrictedFindings

__all__ = ["OpenedRecord", "ReadRefused", "open_restricted", "reader_identity"]


class ReadRefused(MashError):
    """A read that could not be done; it is audited before this is raised."""


@dataclass(frozen=True)
class OpenedRecord:
    reference: str
    agency: str
    key_id: str
    findings: RestrictedFindings


def reader_identity() -> str:
    """The account this process runs as, from the kernel (the effective uid), not from
    LOGNAME or USER, which the reader can set to anything."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def open_restricted(
    store: KeeperStore, key_dir: Path, contact_ref: str, reader: str
) -> list[OpenedRecord]:
    records = store.records_for(contact_ref)
    if not records:
        raise ReadRefused(f"no restricted information is held for {contact_ref}")
    opened = []
    for record in records:
        key_id = "?"
        try:
            envelope = decode(record.envelope, RestrictedEnvelope)
            key_id = envelope.key_id
            private = load_private_key(key_dir, key_id)
            if not isinstance(private, X25519PrivateKey):
                raise KeyringError(f"{key_id} is not a restricted-file key")
            findings = decode(
                open_sealed(
                    envelope,
                    private,
                    contact_ref=record.contact_ref,
                    agency=record.agency,
                    response_id=record.response_id,
                ),
                RestrictedFindings,
            )
        except (KeyringError, SealError, DecodeError) as exc:
            with store.transaction() as db:
                audit.append(
                    db,
                    reader,
                    "restricted-read-refused",
                    contact_ref,
                    reference=record.reference,
                    key=key_id,
                )
            raise ReadRefused(str(exc)) from None
        with store.transaction() as db:
            audit.append(
                db, reader, "restricted-read", contact_ref, reference=record.reference, key=key_id
            )
        opened.append(OpenedRecord(record.reference, record.agency, key_id, findings))
    return opened
