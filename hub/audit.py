"""The hub's tamper-evident audit log: who did what to which contact, and when.

Every request sent, answer received, packet published, re-rating, deadline and restricted
read is appended in the same transaction as the effect it records. Each entry carries the
SHA-256 hash of the one before, so altering, removing or reordering any entry breaks every
hash after it; ``mash audit verify`` finds the first entry that does not fit. Entries carry
ids, agencies, ratings and times, never findings.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["AUDIT_DDL", "GENESIS", "AuditEntry", "AuditProblem", "append", "entries", "verify"]

GENESIS = "0" * 64

AUDIT_DDL = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    contact_ref TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ref ON audit (contact_ref);
"""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    contact_ref: str | None
    detail: dict[str, str]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    reason: str


def _digest(
    prev_hash: str, seq: int, at: str, actor: str, action: str, ref: str | None, detail: str
) -> str:
    material = json.dumps([prev_hash, seq, at, actor, action, ref, detail], separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def append(
    db: sqlite3.Connection,
    actor: str,
    action: str,
    contact_ref: str | None,
    at: datetime | None = None,
    **detail: str,
) -> None:
    """Append one entry; call inside the transaction that makes the change it records."""
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = (1, GENESIS) if row is None else (row[0] + 1, row[1])
    when = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
    body = json.dumps(detail, sort_keys=True, separators=(",", ":"))
    digest = _digest(prev_hash, seq, when, actor, action, contact_ref, body)
    db.execute(
        "INSERT INTO audit (seq, at, actor, action, contact_ref, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, when, actor, action, contact_ref, body, prev_hash, digest),
    )


def entries(db: sqlite3.Connection, contact_ref: str | None = None) -> Iterator[AuditEntry]:
    query = "SELECT seq, at, actor, action, contact_ref, detail, prev_hash, hash FROM audit"
    rows = (
        db.execute(query + " ORDER BY seq")
        if contact_ref is None
        else db.execute(query + " WHERE contact_ref = ? ORDER BY seq", (contact_ref,))
    )
    for seq, at, actor, action, ref, detail, prev_hash, digest in rows:
        yield AuditEntry(seq, at, actor, action, ref, json.loads(detail), prev_hash, digest)


def verify(db: sqlite3.Connection) -> tuple[int, AuditProblem | None, str]:
    """Walk the chain: (entries checked, the first problem or None, the head hash)."""
    expected_prev, expected_seq, count = GENESIS, 1, 0
    rows = db.execute(
        "SELECT seq, at, actor, action, contact_ref, detail, prev_hash, hash FROM audit"
        " ORDER BY rowid"
    )
    for seq, at, actor, action, ref, detail, prev_hash, digest in rows:
        if seq != expected_seq:
            return count, AuditProblem(seq, f"expected entry {expected_seq} here"), expected_prev
        if prev_hash != expected_prev:
            return count, AuditProblem(seq, "does not follow the entry before it"), expected_prev
        if _digest(prev_hash, seq, at, actor, action, ref, detail) != digest:
            return count, AuditProblem(seq, "its content was altered"), expected_prev
        expected_prev, expected_seq, count = digest, seq + 1, count + 1
    return count, None, expected_prev
