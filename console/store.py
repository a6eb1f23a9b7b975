"""The console's own SQLite file (mode 0600): accounts, every packet by reference, the board's
state per contact, and the record of who saw and did what.

The console never reads the hub's database: it keeps what the broker brought it (packets
from ``console.packets``, the hub's events from ``console.events``), so it runs on another
machine with the screening role's broker identity only. Each message's id is recorded in the
same transaction as its effect, so a redelivery changes nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from schemas.codec import decode, encode
from schemas.enums import Brag
from schemas.models import ScreeningPacket

__all__ = ["BoardContact", "ConsoleStore", "User", "ViewRecord"]

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    name TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_name ON login_failures (name, at);
CREATE TABLE IF NOT EXISTS processed (message_id TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS packets (
    ref TEXT NOT NULL,
    version INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (ref, version)
);
CREATE TABLE IF NOT EXISTS contacts (
    ref TEXT PRIMARY KEY,
    brag TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    deadline INTEGER NOT NULL,
    agencies TEXT NOT NULL DEFAULT '[]',
    answered TEXT NOT NULL DEFAULT '[]',
    late TEXT NOT NULL DEFAULT '[]',
    reminded TEXT NOT NULL DEFAULT '[]',
    packet_version INTEGER NOT NULL DEFAULT 0,
    decision TEXT,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS activity (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    ref TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS activity_ref ON activity (ref, at);
"""


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str


@dataclass(frozen=True)
class BoardContact:
    """One contact as the board knows it from the hub's events and packets."""

    ref: str
    brag: Brag
    received_at: datetime
    deadline: datetime
    agencies: tuple[str, ...]
    answered: frozenset[str] = field(default_factory=frozenset)
    late: frozenset[str] = field(default_factory=frozenset)
    reminded: frozenset[str] = field(default_factory=frozenset)
    packet_version: int = 0
    decision: str | None = None


@dataclass(frozen=True)
class ViewRecord:
    at: datetime
    user: str
    action: str
    ref: str | None
    detail: dict[str, str]


class ConsoleStore:
    """One SQLite file; safe to share between the web server's threads and the feed."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Packets hold children's information: the file is the console's account's alone,
        # from the moment it exists (WAL side files are created with the same mode).
        old = os.umask(0o077)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_DDL)
        self._lock = threading.RLock()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # Secrets --------------------------------------------------------------------------
    def secret(self, name: str) -> str:
        """A random secret made once and kept (the session cookie's signing key)."""
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
            if row is not None:
                return str(row[0])
            value = secrets.token_urlsafe(48)
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (name, value))
            return value

    # Accounts -------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password_hash: str, at: datetime) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET role = excluded.role,"
                " password_hash = excluded.password_hash",
                (name, role, password_hash, _ms(at)),
            )
            db.execute(
                "INSERT INTO activity (at, user, action, ref, detail) VALUES (?, ?, ?, ?, ?)",
                (
                    _ms(at),
                    "mash console user add",
                    "user-added",
                    None,
                    json.dumps({"user": name, "role": role}),
                ),
            )

    def user(self, name: str) -> User | None:
        rows = self._query("SELECT name, role, password_hash FROM users WHERE name = ?", (name,))
        return User(str(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None

    def set_password_hash(self, name: str, password_hash: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name))

    def login_failures_since(self, name: str, since: datetime) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM login_failures WHERE name = ? AND at >= ?", (name, _ms(since))
        )
        return int(str(rows[0][0]))

    def login_failed(self, name: str, at: datetime) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO login_failures (name, at) VALUES (?, ?)", (name, _ms(at)))

    def login_succeeded(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM login_failures WHERE name = ?", (name,))

    # The record of who saw and did what -------------------------------------------------
    def record(self, user: str, action: str, ref: str | None, at: datetime, **detail: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO activity (at, user, action, ref, detail) VALUES (?, ?, ?, ?, ?)",
                (_ms(at), user, action, ref, json.dumps(detail, sort_keys=True)),
            )

    def activity(self, ref: str | None = None) -> list[ViewRecord]:
        sql = "SELECT at, user, action, ref, detail FROM activity"
        args: tuple[object, ...] = ()
        if ref is not None:
            sql += " WHERE ref = ?"
            args = (ref,)
        rows = self._query(sql + " ORDER BY id", args)
        return [
            ViewRecord(
                _at(int(str(r[0]))),
                str(r[1]),
                str(r[2]),
                None if r[3] is None else str(r[3]),
                json.loads(str(r[4])),
            )
            for r in rows
        ]

    # Messages, once each ----------------------------------------------------------------
    def seen(self, db: sqlite3.Connection, message_id: str, at: datetime) -> bool:
        """Whether this message was handled; records it as handled if not (inside ``db``)."""
        found = db.execute("SELECT 1 FROM processed WHERE message_id = ?", (message_id,))
        if found.fetchone() is not None:
            return True
        db.execute("INSERT INTO processed (message_id, at) VALUES (?, ?)", (message_id, _ms(at)))
        return False

    # Packets ----------------------------------------------------------------------------
    def add_packet(self, db: sqlite3.Connection, packet: ScreeningPacket, at: datetime) -> None:
        db.execute(
            "INSERT OR IGNORE INTO packets (ref, version, received_at, body) VALUES (?, ?, ?, ?)",
            (packet.contact_ref, packet.version, _ms(at), encode(packet)),
        )
        # A packet says everything about its contact: the board takes its word, except that a
        # decision (only ever from an event) is kept.
        answered = sorted(a.agency for a in packet.answers)
        agencies = sorted({*answered, *packet.missing_agencies})
        db.execute(
            "INSERT INTO contacts (ref, brag, received_at, deadline, agencies, answered, late,"
            " packet_version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (ref) DO UPDATE SET brag = excluded.brag,"
            " deadline = excluded.deadline, agencies = excluded.agencies,"
            " answered = excluded.answered, late = excluded.late,"
            " packet_version = MAX(contacts.packet_version, excluded.packet_version),"
            " updated_at = excluded.updated_at"
            " WHERE excluded.packet_version >= contacts.packet_version",
            (
                packet.contact_ref,
                packet.brag.value,
                _ms(packet.received_at),
                _ms(packet.deadline),
                json.dumps(agencies),
                json.dumps(answered),
                json.dumps(sorted(packet.late_agencies)),
                packet.version,
                _ms(at),
            ),
        )

    def packet(self, ref: str, version: int | None = None) -> ScreeningPacket | None:
        if version is None:
            rows = self._query(
                "SELECT body FROM packets WHERE ref = ? ORDER BY version DESC LIMIT 1", (ref,)
            )
        else:
            rows = self._query(
                "SELECT body FROM packets WHERE ref = ? AND version = ?", (ref, version)
            )
        body = rows[0][0] if rows else None
        return decode(body, ScreeningPacket) if isinstance(body, bytes) else None

    def packet_versions(self, ref: str) -> list[int]:
        rows = self._query("SELECT version FROM packets WHERE ref = ? ORDER BY version", (ref,))
        return [int(str(r[0])) for r in rows]

    # The board --------------------------------------------------------------------------
    def contact(self, ref: str) -> BoardContact | None:
        found = [c for c in self._contacts("WHERE ref = ?", (ref,))]
        return found[0] if found else None

    def open_contacts(self) -> list[BoardContact]:
        return self._contacts("WHERE decision IS NULL", ())

    def _contacts(self, where: str, args: tuple[object, ...]) -> list[BoardContact]:
        rows = self._query(
            "SELECT ref, brag, received_at, deadline, agencies, answered, late, reminded,"
            f" packet_version, decision FROM contacts {where}",
            args,
        )
        return [
            BoardContact(
                ref=str(r[0]),
                brag=Brag(str(r[1])),
                received_at=_at(int(str(r[2]))),
                deadline=_at(int(str(r[3]))),
                agencies=tuple(json.loads(str(r[4]))),
                answered=frozenset(json.loads(str(r[5]))),
                late=frozenset(json.loads(str(r[6]))),
                reminded=frozenset(json.loads(str(r[7]))),
                packet_version=int(str(r[8])),
                decision=None if r[9] is None else str(r[9]),
            )
            for r in rows
        ]

    def contact_received(
        self,
        db: sqlite3.Connection,
        ref: str,
        brag: Brag,
        received_at: datetime,
        deadline: datetime,
        agencies: list[str],
    ) -> None:
        db.execute(
            "INSERT INTO contacts (ref, brag, received_at, deadline, agencies, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ref) DO NOTHING",
            (
                ref,
                brag.value,
                _ms(received_at),
                _ms(deadline),
                json.dumps(sorted(agencies)),
                _ms(received_at),
            ),
        )

    def _add_to(self, db: sqlite3.Connection, ref: str, column: str, agency: str) -> None:
        row = db.execute(f"SELECT {column} FROM contacts WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            return  # the contact's packet brings everything when it comes
        values = sorted({*json.loads(row[0]), agency})
        db.execute(f"UPDATE contacts SET {column} = ? WHERE ref = ?", (json.dumps(values), ref))

    def answered(self, db: sqlite3.Connection, ref: str, agency: str, late: bool) -> None:
        self._add_to(db, ref, "answered", agency)
        if late:
            self._add_to(db, ref, "late", agency)

    def reminded(self, db: sqlite3.Connection, ref: str, agencies: list[str]) -> None:
        for agency in agencies:
            self._add_to(db, ref, "reminded", agency)

    def rerated(self, db: sqlite3.Connection, ref: str, brag: Brag, deadline: datetime) -> None:
        db.execute(
            "UPDATE contacts SET brag = ?, deadline = ? WHERE ref = ?",
            (brag.value, _ms(deadline), ref),
        )

    def decided(self, db: sqlite3.Connection, ref: str, decision: str) -> None:
        db.execute("UPDATE contacts SET decision = ? WHERE ref = ?", (decision, ref))
