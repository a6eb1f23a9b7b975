"""The hub's tamper-evident audit log: who did what to which contact, and when.

Every request sent, answer received, packet published, re-rating, deadline and restricted
read is appended in the same transaction as the effect it records. Each entry carries the
SHA-256 hash of the one before, so altering, removing or reordering any entry breaks every
hash after it; ``mash audit verify`` finds the first entry that does not fit. Entries carry
ids, agencies, ratings and times, never findings.

A hash chain alone does not stop someone who can write the database: they can rewrite an
entry and recompute every hash after it, or cut the newest entries off. So the hub signs a
:class:`Checkpoint` of the head (entry count, head hash, time) with its own key every few
minutes and sends it off the hub: to the events exchange and to a file an operator keeps
elsewhere. ``verify_against`` checks the chain against those checkpoints (and against head
hashes recorded by hand): a rewrite or truncation of anything a checkpoint covers is found.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature

from broker.keyring import Keyring
from mash.errors import MashError

__all__ = [
    "AUDIT_DDL",
    "GENESIS",
    "AuditEntry",
    "AuditProblem",
    "Checkpoint",
    "CheckpointError",
    "append",
    "append_checkpoint",
    "check_signature",
    "entries",
    "head",
    "make_checkpoint",
    "read_checkpoints",
    "verify",
    "verify_against",
]

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


# Checkpoints ------------------------------------------------------------------------------


class CheckpointError(MashError, ValueError):
    """A checkpoint file or a checkpoint that cannot be trusted; the message says which."""


class _Signs(Protocol):
    sender: str

    @property
    def key_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class Checkpoint:
    """The audit log's head at one moment, signed by the hub: ``count`` entries, the last
    one's hash ``head``."""

    count: int
    head: str
    at: str
    signer: str
    key_id: str
    signature: str

    def signed_bytes(self) -> bytes:
        return checkpoint_bytes(self.count, self.head, self.at, self.signer, self.key_id)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        data = json.loads(text)
        return cls(
            count=int(data["count"]),
            head=str(data["head"]),
            at=str(data["at"]),
            signer=str(data["signer"]),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
        )

    def as_detail(self) -> dict[str, str]:
        """As a HubEvent's detail (all strings)."""
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_detail(cls, detail: dict[str, str]) -> Checkpoint:
        return cls.from_json(json.dumps(detail))


def checkpoint_bytes(count: int, head_hash: str, at: str, signer: str, key_id: str) -> bytes:
    return "\n".join(
        ("mash-audit-checkpoint-v1", str(count), head_hash, at, signer, key_id)
    ).encode()


def head(db: sqlite3.Connection) -> tuple[int, str]:
    """(entry count, hash of the newest entry); seq runs from 1 without gaps."""
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def make_checkpoint(
    db: sqlite3.Connection, signer: _Signs, at: datetime | None = None
) -> Checkpoint:
    count, head_hash = head(db)
    when = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
    key_id = signer.key_id
    signature = signer.sign(checkpoint_bytes(count, head_hash, when, signer.sender, key_id))
    # The key may have changed inside sign() (a rotation): sign again with the one it used.
    if signer.key_id != key_id:
        return make_checkpoint(db, signer, at)
    return Checkpoint(
        count, head_hash, when, signer.sender, key_id, base64.b64encode(signature).decode()
    )


def check_signature(checkpoint: Checkpoint, keyring: Keyring, signer: str = "hub") -> None:
    """A checkpoint is believed only when the hub's signing key signed it. A retired key
    still proves checkpoints made before its retirement, so old ones keep their value."""
    entry = keyring.get(checkpoint.key_id)
    if entry is None or entry.purpose != "signing" or entry.owner != signer:
        raise CheckpointError(
            f"checkpoint of {checkpoint.at} is signed with {checkpoint.key_id}, "
            f"not a signing key of {signer}"
        )
    if checkpoint.signer != signer:
        raise CheckpointError(f"checkpoint of {checkpoint.at} names signer {checkpoint.signer}")
    if entry.retired_at is not None and checkpoint.at > entry.retired_at:
        raise CheckpointError(
            f"checkpoint of {checkpoint.at} is signed with {checkpoint.key_id}, "
            f"retired at {entry.retired_at}"
        )
    try:
        entry.ed25519().verify(
            base64.b64decode(checkpoint.signature, validate=True), checkpoint.signed_bytes()
        )
    except (InvalidSignature, ValueError):
        raise CheckpointError(
            f"checkpoint of {checkpoint.at} has a signature that does not verify"
        ) from None


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """One JSON line, appended and synced; the file is the operator's (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, (checkpoint.to_json() + "\n").encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_checkpoints(path: Path) -> list[Checkpoint]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror}") from None
    checkpoints = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            checkpoints.append(Checkpoint.from_json(line))
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{path} line {number} is not a checkpoint") from None
    return checkpoints


def verify_against(
    db: sqlite3.Connection,
    checkpoints: Iterable[Checkpoint] = (),
    expect: Iterable[str] = (),
) -> str | None:
    """What is wrong with the log given checkpoints and head hashes recorded off the hub
    (signatures already checked), or None. The chain itself is checked first."""
    count, problem, _ = verify(db)
    if problem is not None:
        return f"audit entry {problem.seq} {problem.reason} ({count} entries before it intact)"
    hashes = {seq: digest for seq, digest in db.execute("SELECT seq, hash FROM audit")}
    for checkpoint in sorted(checkpoints, key=lambda c: c.count):
        if checkpoint.count == 0:
            continue
        if checkpoint.count > count:
            return (
                f"the log has {count} entries but the checkpoint of {checkpoint.at} recorded "
                f"{checkpoint.count}: the newest entries were removed"
            )
        if hashes[checkpoint.count] != checkpoint.head:
            return (
                f"audit entry {checkpoint.count} does not match the checkpoint of "
                f"{checkpoint.at}: entries up to it were rewritten"
            )
    known = set(hashes.values())
    for digest in expect:
        if digest != GENESIS and digest not in known:
            return (
                f"no audit entry has hash {digest}: the log was rewritten or its newest "
                f"entries were removed"
            )
    return None
