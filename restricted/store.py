"""The keeper's own store: every sealed record the hub forwarded, and who read what.

One SQLite file, owner-only (folder 0700, file and journal 0600), full sync: a record is
acked on the broker only once it is here. Records are keyed on the answer they came with,
so a redelivered record is stored once. Reads go to an audit log of the keeper's own, hash
chained as the hub's is (:mod:`hub.audit`).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hub import audit
from mash.errors import MashError
from schemas.codec import encode
from schemas.models import RestrictedRecord

__all__ = ["KeeperStore", "KeeperStoreError", "StoredRecord"]

_DDL = """
CREATE TABLE IF NOT EXISTS records (
    response_id TEXT PRIMARY KEY,
    reference TEXT NOT NULL,
    contact_ref TEXT NOT NULL,
    agency TEXT NOT NULL,
    received_at TEXT NOT NULL,
    envelope BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_ref ON records (contact_ref);
"""


class KeeperStoreError(MashError):
    """The keeper's store cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class StoredRecord:
    reference: str
    contact_ref: str
    agency: str
    response_id: str
    received_at: str
    envelope: bytes


class KeeperStore:
    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        if not path.exists():
            if not create:
                raise KeeperStoreError(
                    f"no restricted file at {path} (set MASH_RESTRICTED_STORE, or run "
                    f"'mash restricted receive' to fill it)"
                )
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeeperStoreError(
                f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}"
            )
        # SQLite makes its journal with the database's mode; the umask covers the rest.
        previous = os.umask(0o077)
        try:
            self.connection = sqlite3.connect(path, isolation_level=None)
            self.connection.execute("PRAGMA busy_timeout=10000")
            self.connection.execute("PRAGMA synchronous=FULL")
            self.connection.executescript(_DDL + audit.AUDIT_DDL)
        except sqlite3.DatabaseError as exc:
            raise KeeperStoreError(f"{path}: not a usable restricted file ({exc})") from None
        finally:
            os.umask(previous)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def add(self, record: RestrictedRecord, message_id: str) -> bool:
        """Store a record (durably, before its ack); False if it was already here."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO records"
                " (response_id, reference, contact_ref, agency, received_at, envelope)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.response_id,
                    record.reference,
                    record.contact_ref,
                    record.agency,
                    record.received_at.isoformat(),
                    encode(record.envelope),
                ),
            )
            stored = cursor.rowcount == 1
            if stored:
                audit.append(
                    db,
                    "hub",
                    "restricted-received",
                    record.contact_ref,
                    reference=record.reference,
                    message_id=message_id,
                )
        return stored

    def records_for(self, contact_ref: str) -> list[StoredRecord]:
        rows = self.connection.execute(
            "SELECT reference, contact_ref, agency, response_id, received_at, envelope"
            " FROM records WHERE contact_ref = ? ORDER BY received_at, reference",
            (contact_ref,),
        )
        return [StoredRecord(*row) for row in rows]

    def close(self) -> None:
        self.connection.close()
