"""The hub's durable state in SQLite: contacts, requests, answers, deadlines, the ids of
messages already handled, and an outbox of messages still to publish.

Every change a message causes, and every message that change must send, is written in one
transaction; the outbox relay publishes afterwards and deletes a row only once the broker has
confirmed it. A crash at any point therefore loses nothing, and a message handled twice
(redelivered after a crash before its ack) finds its id already recorded and has no second
effect.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO

from hub.audit import AUDIT_DDL
from mash.errors import MashError
from schemas.enums import Brag

__all__ = [
    "OUTBOX_EVENTS",
    "OUTBOX_LANES",
    "OUTBOX_ROUTINE",
    "OUTBOX_URGENT",
    "SCHEMA_VERSION",
    "AnswerRow",
    "ContactRow",
    "DatabaseFault",
    "DatabaseLock",
    "EarlierContact",
    "EarlierSubject",
    "HubStore",
    "OutboxRow",
    "RefsNotReserved",
    "ReminderRow",
    "RequestRow",
    "RestrictedRow",
    "StoreError",
    "SubjectKeys",
    "database_fault",
    "describe_this_process",
    "from_ms",
    "owner_only_folder",
    "to_ms",
]

# Outbox lanes, most urgent first: Red work, other work, operators' events. The hub relays
# each lane on its own, so a backlog in one never delays a more urgent one.
OUTBOX_URGENT = 2
OUTBOX_ROUTINE = 1
OUTBOX_EVENTS = 0
OUTBOX_LANES = (OUTBOX_URGENT, OUTBOX_ROUTINE, OUTBOX_EVENTS)

SCHEMA_VERSION = 4

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
    ref TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL UNIQUE,
    year INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    brag TEXT NOT NULL,
    deadline INTEGER NOT NULL,
    state TEXT NOT NULL,              -- open | partial | complete
    deadline_done INTEGER NOT NULL DEFAULT 0,  -- 1 once the deadline needs no more action
    packet_version INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL,               -- the Contact, Avro single-object encoded
    UNIQUE (year, seq)
);
CREATE INDEX IF NOT EXISTS contacts_due ON contacts (deadline) WHERE deadline_done = 0;
CREATE TABLE IF NOT EXISTS rating_changes (
    ref TEXT NOT NULL REFERENCES contacts (ref),
    changed_at INTEGER NOT NULL,
    brag TEXT NOT NULL,
    deadline INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rating_changes_ref ON rating_changes (ref);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    ref TEXT NOT NULL REFERENCES contacts (ref),
    agency TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    sent_at INTEGER NOT NULL,
    answered_at INTEGER,
    late INTEGER NOT NULL DEFAULT 0,
    UNIQUE (ref, agency)
);
CREATE TABLE IF NOT EXISTS answers (
    response_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE REFERENCES requests (request_id),
    ref TEXT NOT NULL,
    agency TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    body BLOB NOT NULL               -- the AgencyResponse, Avro single-object encoded
);
CREATE INDEX IF NOT EXISTS answers_ref ON answers (ref);
CREATE TABLE IF NOT EXISTS restricted (
    reference TEXT PRIMARY KEY,
    ref TEXT NOT NULL REFERENCES contacts (ref),
    agency TEXT NOT NULL,
    response_id TEXT NOT NULL UNIQUE,
    received_at INTEGER NOT NULL,
    envelope BLOB NOT NULL            -- RestrictedEnvelope: ciphertext the hub cannot open
);
CREATE INDEX IF NOT EXISTS restricted_ref ON restricted (ref);
CREATE TABLE IF NOT EXISTS processed (message_id TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    exchange TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    type TEXT NOT NULL,
    correlation_id TEXT,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS reminders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ref TEXT NOT NULL REFERENCES contacts (ref),
    fraction REAL NOT NULL,
    due_at INTEGER NOT NULL,
    sent_at INTEGER,                  -- set once, in the transaction that queues the reminders
    agencies TEXT                     -- the agencies reminded, comma-separated; '' if none were
);
CREATE INDEX IF NOT EXISTS reminders_due ON reminders (due_at) WHERE sent_at IS NULL;
-- The children each contact is about, by identifier and normalised name and date of birth,
-- so a later contact finds the earlier ones about the same child (``hub.chronology``).
CREATE TABLE IF NOT EXISTS contact_subjects (
    ref TEXT NOT NULL REFERENCES contacts (ref),
    subject_id TEXT NOT NULL,
    nhs_number TEXT,
    upn TEXT,
    la_child_id TEXT,
    given_name TEXT NOT NULL,         -- normalised (adapters.kit.matching.normalise_name)
    family_name TEXT NOT NULL,
    date_of_birth TEXT,               -- ISO date
    PRIMARY KEY (ref, subject_id)
);
CREATE INDEX IF NOT EXISTS contact_subjects_nhs ON contact_subjects (nhs_number)
    WHERE nhs_number IS NOT NULL;
CREATE INDEX IF NOT EXISTS contact_subjects_upn ON contact_subjects (upn) WHERE upn IS NOT NULL;
CREATE INDEX IF NOT EXISTS contact_subjects_la ON contact_subjects (la_child_id)
    WHERE la_child_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS contact_subjects_dob ON contact_subjects (date_of_birth)
    WHERE date_of_birth IS NOT NULL;
"""

# Columns added after schema 1, each (table, column, definition). Added when missing, so a
# database of any earlier version is brought up to date in place.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # The W3C traceparent the contact arrived with; its messages carry the same trace id.
    ("contacts", "traceparent", "TEXT"),
    # Message headers (JSON): trace context and the agency a message is for.
    ("outbox", "headers", "TEXT"),
    # The operational record of each exchange (see ``mash report``): the rating when the
    # request was sent, and the rating, deadline and outcome the answer was measured against.
    ("requests", "sent_brag", "TEXT"),
    ("requests", "brag", "TEXT"),
    ("requests", "deadline", "INTEGER"),
    ("requests", "outcome", "TEXT"),
    # Red work is published before routine work, and both before operators' events, so a
    # backlog in the outbox never holds a Red contact back.
    ("outbox", "priority", "INTEGER NOT NULL DEFAULT 1"),
    # Schema 3: the role of the allocated worker a contact was sent straight on to, if any.
    ("contacts", "routed_to", "TEXT"),
    # Schema 4: who referred (the Referrer's kind), which is all a later contact's chronology
    # needs of this one: decoding the whole stored contact for it was most of a packet's cost.
    ("contacts", "referrer_kind", "TEXT"),
)


class StoreError(MashError, RuntimeError):
    """The database cannot be used as the hub's store."""


class DatabaseFault(StoreError):
    """The database is no longer the file at its path (deleted or replaced), or cannot take a
    write. Transient for the hub: the work in hand is held, unacknowledged, until it is back."""


class RefsNotReserved(StoreError):
    """Every reference number reserved on the broker for this year has been issued; the hub
    reserves more in the background (:mod:`hub.instance`), so the contact is retried."""


# Child data at rest: nobody but the hub's own account may read the folder or the files.
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def owner_only_folder(folder: Path) -> None:
    """Create ``folder`` (and any missing parent) 0700, or refuse one others may open.

    Only the folder the files sit in is checked: a parent such as ``/srv`` is the
    administrator's to lay out, and the files themselves are created 0600.
    """
    missing = []
    for part in (folder, *folder.parents):
        if part.exists():
            break
        missing.append(part)
    for part in reversed(missing):
        # mkdir(mode=) is filtered by the umask and parents=True ignores it: one by one.
        part.mkdir(mode=0o700)
        part.chmod(0o700)
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & _OTHERS:
        raise StoreError(
            f"{folder} is open to other users (mode {mode:04o}); it holds children's data:"
            f" run chmod 700 {folder}"
        )


def _refuse_if_others_can_read(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & _OTHERS:
        raise StoreError(
            f"{path} is readable by other users (mode {mode:04o}); it holds children's data:"
            f" run chmod 600 {path}"
        )


class DatabaseLock:
    """An exclusive lock on ``<database>.lock`` for the life of one hub process, naming the
    holder (host, pid, start time) so a second hub on the same database can say who has it.

    ``flock`` is released by the kernel when the process dies, however it dies.
    """

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        import fcntl

        owner_only_folder(self.path.parent)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        handle = os.fdopen(descriptor, "r+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = handle.readline().strip() or "another process"
            handle.close()
            raise StoreError(
                f"another hub is using {self.path.with_suffix('')}: {holder}; stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(describe_this_process() + "\n")
        handle.flush()
        self._file = handle

    def record_database(self, store: HubStore) -> None:
        """Note which file the hub has open, so ``mash status`` can tell if it was replaced."""
        if self._file is not None and store.identity is not None:
            device, inode = store.identity
            self._file.write(f"database {device}:{inode} pid {os.getpid()}\n")
            self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


def database_fault(path: Path, min_free: int) -> str | None:
    """A fault of the hub's database as seen from outside the hub (``mash status``), in
    words an operator can act on; None when none is seen.

    The hub notes in ``<database>.lock`` which file it has open and its pid; a file deleted
    or replaced under a hub that is still running is the fault the hub cannot see by itself
    on a restart, and it stops taking work while it lasts (:meth:`HubStore.check_file`).
    """
    lock = path.with_name(path.name + ".lock")
    running: tuple[int, int] | None = None
    try:
        for line in lock.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if len(words) == 4 and words[0] == "database" and _alive(int(words[3])):
                device, inode = words[1].split(":")
                running = (int(device), int(inode))
    except (OSError, ValueError):
        pass
    try:
        found = path.stat()
    except FileNotFoundError:
        # With no hub running, a missing file is the reader's own error to report.
        return f"{path} was deleted under the running hub" if running is not None else None
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror})"
    if running is not None and (found.st_dev, found.st_ino) != running:
        return f"{path} was replaced by another file under the running hub"
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        return f"{path} is read-only"
    free = os.statvfs(path.parent)
    if free.f_bavail * free.f_frsize < min_free:
        return f"the disk holding {path} is full"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def describe_this_process(started: datetime | None = None) -> str:
    """How one hub names itself to another: host, pid and start time."""
    at = (started or _STARTED).isoformat(timespec="seconds")
    return f"host {socket.gethostname()} pid {os.getpid()} started {at}"


_STARTED = datetime.now(UTC)


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


@dataclass(frozen=True)
class ContactRow:
    ref: str
    contact_id: str
    received_at: datetime
    brag: Brag
    deadline: datetime
    state: str
    deadline_done: bool
    packet_version: int
    body: bytes
    routed_to: str | None = None


@dataclass(frozen=True)
class SubjectKeys:
    """A child of a contact as the chronology finds them again: identifiers as given, the
    name normalised, the date of birth."""

    subject_id: str
    nhs_number: str | None
    upn: str | None
    la_child_id: str | None
    given_name: str
    family_name: str
    date_of_birth: date | None


@dataclass(frozen=True)
class EarlierSubject:
    """A child of an earlier contact who may be the same child."""

    ref: str
    keys: SubjectKeys


@dataclass(frozen=True)
class EarlierContact:
    """An earlier contact as a chronology entry needs it."""

    ref: str
    received_at: datetime
    brag: Brag
    state: str
    routed_to: str | None
    referrer_kind: str


@dataclass(frozen=True)
class RequestRow:
    request_id: str
    ref: str
    agency: str
    revision: int
    sent_at: datetime
    answered_at: datetime | None
    late: bool


@dataclass(frozen=True)
class AnswerRow:
    response_id: str
    request_id: str
    agency: str
    received_at: datetime
    body: bytes


@dataclass(frozen=True)
class RestrictedRow:
    reference: str
    ref: str
    agency: str
    response_id: str
    received_at: datetime
    envelope: bytes


@dataclass(frozen=True)
class OutboxRow:
    id: int
    message_id: str
    exchange: str
    routing_key: str
    type: str
    correlation_id: str | None
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReminderRow:
    id: int
    ref: str
    fraction: float
    due_at: datetime
    sent_at: datetime | None
    agencies: tuple[str, ...]


def _contact(row: sqlite3.Row) -> ContactRow:
    return ContactRow(
        ref=row["ref"],
        contact_id=row["contact_id"],
        received_at=from_ms(row["received_at"]),
        brag=Brag(row["brag"]),
        deadline=from_ms(row["deadline"]),
        state=row["state"],
        deadline_done=bool(row["deadline_done"]),
        packet_version=row["packet_version"],
        body=row["body"],
        routed_to=row["routed_to"],
    )


def _request(row: sqlite3.Row) -> RequestRow:
    return RequestRow(
        request_id=row["request_id"],
        ref=row["ref"],
        agency=row["agency"],
        revision=row["revision"],
        sent_at=from_ms(row["sent_at"]),
        answered_at=None if row["answered_at"] is None else from_ms(row["answered_at"]),
        late=bool(row["late"]),
    )


def _reminder(row: sqlite3.Row) -> ReminderRow:
    return ReminderRow(
        id=row["id"],
        ref=row["ref"],
        fraction=row["fraction"],
        due_at=from_ms(row["due_at"]),
        sent_at=None if row["sent_at"] is None else from_ms(row["sent_at"]),
        agencies=tuple(a for a in (row["agencies"] or "").split(",") if a),
    )


class HubStore:
    """A single-writer SQLite store. WAL with full sync: a committed transaction survives a
    crash of the process or the machine."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        owner_only_folder(self.path.parent)
        _refuse_if_others_can_read(self.path)
        # Created here, 0600, rather than by SQLite with the umask's 0644; SQLite gives the
        # WAL and shared-memory files the database file's mode. Older ones are corrected.
        self.created = False
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self.created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot be created ({exc.strerror})") from None
        for suffix in ("-wal", "-shm"):
            companion = self.path.with_name(self.path.name + suffix)
            if companion.exists():
                companion.chmod(0o600)
        self._depth = 0  # open transactions: 1 for a transaction, more for savepoints
        self.identity: tuple[int, int] | None = None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            # The command line (restricted reads, replays) may write while the hub runs.
            self._db.execute("PRAGMA busy_timeout=10000")
            integrity = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if integrity != "ok":
                raise StoreError(f"{self.path}: the database is corrupt ({integrity})")
            # Checked before anything is written, so a refused file is left exactly as it was.
            self._check_version()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable hub database ({exc})") from None
        self._migrate()
        # The file this connection writes to; if the path later names another file, or none,
        # the hub's writes would go where nobody will ever read them (check_file).
        found = os.stat(self.path)
        self.identity = (found.st_dev, found.st_ino)
        if self.meta("database_id") is None:
            with self.transaction() as db:
                self.set_meta(db, "database_id", str(uuid.uuid4()))

    def _check_version(self) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer mash-hub (schema {version}, this one "
                    f"knows {SCHEMA_VERSION}); refusing to start"
                )
        elif tables - {"sqlite_sequence"}:
            raise StoreError(f"{self.path}: not a mash-hub database")

    def _stored_version(self) -> int:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if "meta" not in tables:
            return SCHEMA_VERSION  # a new database: nothing to bring up to date
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        before = self._stored_version()
        # executescript commits on its own, so the DDL runs outside the transaction helper.
        self._db.executescript(_DDL + AUDIT_DDL)
        with self.transaction() as db:
            for table, column, definition in _ADDED_COLUMNS:
                present = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            db.execute("CREATE INDEX IF NOT EXISTS outbox_order ON outbox (priority DESC, id)")
            if before < 3:
                self._index_earlier_subjects(db)
            if before < 4:
                self._note_referrers(db)
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def _index_earlier_subjects(self, db: sqlite3.Connection) -> None:
        """Schema 3: index the children of contacts taken before the chronology existed."""
        # Imported here: the chronology reads the store, the store needs only its keys.
        from hub.chronology import subject_keys
        from schemas.codec import decode
        from schemas.models import Contact

        for ref, body in db.execute("SELECT ref, body FROM contacts").fetchall():
            self.add_contact_subjects(db, ref, subject_keys(decode(body, Contact)))

    def _note_referrers(self, db: sqlite3.Connection) -> None:
        """Schema 4: the referrer's kind of every contact taken before it was a column."""
        from schemas.codec import decode
        from schemas.models import Contact

        rows = db.execute("SELECT ref, body FROM contacts WHERE referrer_kind IS NULL")
        for ref, body in rows.fetchall():
            kind = decode(body, Contact).referrer.kind.value
            db.execute("UPDATE contacts SET referrer_kind = ? WHERE ref = ?", (kind, ref))

    def close(self) -> None:
        self._db.close()

    def discard(self) -> None:
        """Close and delete a database this store created and nothing was taken into: the hub
        refused to start on it (see :mod:`hub.instance`)."""
        assert self.created, "only a database this store created may be discarded"
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)

    # Identity ------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def database_id(self) -> str:
        """Made once, when the database is created; a restored backup keeps it."""
        value = self.meta("database_id")
        assert value is not None
        return value

    def check_file(self) -> None:
        """Raise :class:`DatabaseFault` unless the path still names the file this store has
        open: deleted, or replaced (a restore, a move) under the running hub, it does not."""
        if self.identity is None:
            return
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            raise DatabaseFault(f"{self.path} was deleted under the running hub") from None
        except OSError as exc:
            raise DatabaseFault(f"{self.path} cannot be checked ({exc.strerror})") from None
        if (found.st_dev, found.st_ino) != self.identity:
            raise DatabaseFault(f"{self.path} was replaced by another file under the running hub")

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for read-only views (:mod:`hub.views`); writes go through methods."""
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction; inside another one, a savepoint, so a batch of decisions commits
        once while each can still fail alone."""
        depth = self._depth
        if depth == 0:
            self.check_file()
        self._db.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT s{depth}")
        self._depth += 1
        try:
            yield self._db
        except BaseException:
            self._depth = depth
            if depth == 0:
                self._db.execute("ROLLBACK")
            else:
                self._db.execute(f"ROLLBACK TO s{depth}")
                self._db.execute(f"RELEASE s{depth}")
            raise
        else:
            self._depth = depth
            try:
                self._db.execute("COMMIT" if depth == 0 else f"RELEASE s{depth}")
            except sqlite3.Error:
                # A commit that fails (a full disk) leaves nothing half-done behind it.
                if depth == 0 and self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            if depth == 0:
                # Committed, but perhaps into a file deleted meanwhile: the caller must not
                # acknowledge work whose only record nobody will read again.
                self.check_file()

    # Idempotency ---------------------------------------------------------------------
    def seen(self, message_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM processed WHERE message_id = ?", (message_id,))
        return row.fetchone() is not None

    def mark_seen(self, db: sqlite3.Connection, message_id: str, at: datetime) -> None:
        db.execute(
            "INSERT OR IGNORE INTO processed (message_id, at) VALUES (?, ?)",
            (message_id, to_ms(at)),
        )

    # Contacts ------------------------------------------------------------------------
    def ref_for_contact_id(self, contact_id: str) -> str | None:
        row = self._db.execute(
            "SELECT ref FROM contacts WHERE contact_id = ?", (contact_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def allocate_ref(self, db: sqlite3.Connection, year: int) -> tuple[str, int]:
        """The next reference of ``year`` (the year the hub accepts the contact).

        Numbers never go back: they continue from the highest ever issued in this database
        or, for a database begun with ``mash hub --new``, from the highest the prefix's
        previous database had reserved on the broker (``ref_floor``). Once a hub has
        reserved numbers on the broker (``ref_ceiling``), it issues none beyond them.
        """
        row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM contacts WHERE year = ?", (year,))
        seq = max(int(row.fetchone()[0]), self.ref_floor(year)) + 1
        ceiling = self.ref_ceiling(year)
        if ceiling is not None and seq > ceiling:
            raise RefsNotReserved(f"references of {year} are reserved up to {ceiling}")
        return f"MASH-{year}-{seq:06d}", seq

    def ref_floor(self, year: int) -> int:
        return int(self.meta(f"ref_floor:{year}") or 0)

    def ref_ceiling(self, year: int) -> int | None:
        """The highest number reserved on the broker for ``year``; None while this database
        has never reserved any (a store used without a hub, as in tools and unit tests)."""
        value = self.meta(f"ref_ceiling:{year}")
        if value is not None:
            return int(value)
        return 0 if self.meta("refs_reserved") else None

    def refs_issued(self, year: int) -> int:
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM contacts WHERE year = ?", (year,)
        ).fetchone()
        return max(int(row[0]), self.ref_floor(year))

    def reserve_refs(self, year: int, ceiling: int, floor: int | None = None) -> None:
        """Record numbers reserved on the broker (and, for a new database, where to begin)."""
        with self.transaction() as db:
            if floor is not None and floor > self.ref_floor(year):
                self.set_meta(db, f"ref_floor:{year}", str(floor))
            current = self.ref_ceiling(year) or 0
            self.set_meta(db, f"ref_ceiling:{year}", str(max(current, ceiling)))
            self.set_meta(db, "refs_reserved", "1")

    def reserved_years(self) -> dict[int, int]:
        rows = self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'ref_ceiling:%'")
        return {int(key.split(":", 1)[1]): int(value) for key, value in rows}

    def add_contact(
        self,
        db: sqlite3.Connection,
        *,
        ref: str,
        year: int,
        seq: int,
        contact_id: str,
        received_at: datetime,
        brag: Brag,
        deadline: datetime,
        body: bytes,
        referrer_kind: str,
        traceparent: str | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO contacts (ref, contact_id, year, seq, received_at, brag, deadline,"
            " state, body, referrer_kind, traceparent)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
            (
                ref,
                contact_id,
                year,
                seq,
                to_ms(received_at),
                brag.value,
                to_ms(deadline),
                body,
                referrer_kind,
                traceparent,
            ),
        )
        self.add_rating_change(db, ref, received_at, brag, deadline)

    def add_rating_change(
        self, db: sqlite3.Connection, ref: str, at: datetime, brag: Brag, deadline: datetime
    ) -> None:
        db.execute(
            "INSERT INTO rating_changes (ref, changed_at, brag, deadline) VALUES (?, ?, ?, ?)",
            (ref, to_ms(at), brag.value, to_ms(deadline)),
        )

    def rating_changes(self, ref: str) -> list[tuple[datetime, Brag, datetime]]:
        rows = self._db.execute(
            "SELECT changed_at, brag, deadline FROM rating_changes WHERE ref = ? ORDER BY rowid",
            (ref,),
        )
        return [(from_ms(r[0]), Brag(r[1]), from_ms(r[2])) for r in rows]

    def traceparent(self, ref: str) -> str | None:
        row = self._db.execute("SELECT traceparent FROM contacts WHERE ref = ?", (ref,))
        found = row.fetchone()
        return None if found is None else found[0]

    def contact(self, ref: str) -> ContactRow | None:
        row = self._db.execute("SELECT * FROM contacts WHERE ref = ?", (ref,)).fetchone()
        return None if row is None else _contact(row)

    def update_contact(
        self,
        db: sqlite3.Connection,
        ref: str,
        *,
        state: str | None = None,
        brag: Brag | None = None,
        deadline: datetime | None = None,
        deadline_done: bool | None = None,
        packet_version: int | None = None,
    ) -> None:
        changes: dict[str, object] = {}
        if state is not None:
            changes["state"] = state
        if brag is not None:
            changes["brag"] = brag.value
        if deadline is not None:
            changes["deadline"] = to_ms(deadline)
        if deadline_done is not None:
            changes["deadline_done"] = int(deadline_done)
        if packet_version is not None:
            changes["packet_version"] = packet_version
        if changes:
            assignments = ", ".join(f"{column} = ?" for column in changes)
            db.execute(f"UPDATE contacts SET {assignments} WHERE ref = ?", (*changes.values(), ref))

    def set_routed(self, db: sqlite3.Connection, ref: str, role: str) -> None:
        db.execute("UPDATE contacts SET routed_to = ? WHERE ref = ?", (role, ref))

    # Subjects, for the chronology ---------------------------------------------------------
    def add_contact_subjects(
        self, db: sqlite3.Connection, ref: str, subjects: Sequence[SubjectKeys]
    ) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO contact_subjects (ref, subject_id, nhs_number, upn,"
            " la_child_id, given_name, family_name, date_of_birth)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    ref,
                    s.subject_id,
                    s.nhs_number,
                    s.upn,
                    s.la_child_id,
                    s.given_name,
                    s.family_name,
                    s.date_of_birth.isoformat() if s.date_of_birth else None,
                )
                for s in subjects
            ],
        )

    def earlier_subjects(self, ref: str, subject: SubjectKeys) -> list[EarlierSubject]:
        """Children of contacts received before ``ref`` who share an identifier or the date
        of birth with ``subject``: the candidates the chronology then decides on."""
        row = self._db.execute("SELECT received_at FROM contacts WHERE ref = ?", (ref,))
        found = row.fetchone()
        if found is None:
            return []
        dob = subject.date_of_birth.isoformat() if subject.date_of_birth else None
        rows = self._db.execute(
            "SELECT s.* FROM contact_subjects s JOIN contacts c ON c.ref = s.ref"
            " WHERE (c.received_at, c.ref) < (?, ?)"
            " AND (s.nhs_number = ? OR s.upn = ? OR s.la_child_id = ? OR s.date_of_birth = ?)"
            " ORDER BY c.received_at, c.ref",
            (found[0], ref, subject.nhs_number, subject.upn, subject.la_child_id, dob),
        )
        return [
            EarlierSubject(
                ref=r["ref"],
                keys=SubjectKeys(
                    subject_id=r["subject_id"],
                    nhs_number=r["nhs_number"],
                    upn=r["upn"],
                    la_child_id=r["la_child_id"],
                    given_name=r["given_name"],
                    family_name=r["family_name"],
                    date_of_birth=(
                        date.fromisoformat(r["date_of_birth"]) if r["date_of_birth"] else None
                    ),
                ),
            )
            for r in rows
        ]

    def earlier_contacts(self, refs: Sequence[str]) -> dict[str, EarlierContact]:
        """What a chronology shows of each of ``refs``, in one query and without the stored
        contact (decoding up to 50 of them per packet was most of a packet's cost)."""
        if not refs:
            return {}
        rows = self._db.execute(
            "SELECT ref, received_at, brag, state, routed_to, referrer_kind FROM contacts"
            f" WHERE ref IN ({','.join('?' * len(refs))})",
            tuple(refs),
        )
        return {
            r["ref"]: EarlierContact(
                ref=r["ref"],
                received_at=from_ms(r["received_at"]),
                brag=Brag(r["brag"]),
                state=r["state"],
                routed_to=r["routed_to"],
                referrer_kind=r["referrer_kind"],
            )
            for r in rows
        }

    def due_refs(self, now: datetime, limit: int = 500) -> list[str]:
        rows = self._db.execute(
            "SELECT ref FROM contacts WHERE deadline_done = 0 AND deadline <= ?"
            " ORDER BY deadline LIMIT ?",
            (to_ms(now), limit),
        )
        return [r[0] for r in rows]

    def next_deadline(self) -> datetime | None:
        row = self._db.execute(
            "SELECT MIN(deadline) FROM contacts WHERE deadline_done = 0"
        ).fetchone()
        return None if row[0] is None else from_ms(row[0])

    def count_contacts(self, state: str | None = None) -> int:
        if state is None:
            return int(self._db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0])
        row = self._db.execute("SELECT COUNT(*) FROM contacts WHERE state = ?", (state,))
        return int(row.fetchone()[0])

    # Requests and answers ------------------------------------------------------------
    def add_request(
        self, db: sqlite3.Connection, request_id: str, ref: str, agency: str, sent_at: datetime
    ) -> None:
        db.execute(
            "INSERT INTO requests (request_id, ref, agency, sent_at, sent_brag)"
            " VALUES (?, ?, ?, ?, (SELECT brag FROM contacts WHERE ref = ?))",
            (request_id, ref, agency, to_ms(sent_at), ref),
        )

    def bump_revision(self, db: sqlite3.Connection, request_id: str) -> int:
        db.execute(
            "UPDATE requests SET revision = revision + 1 WHERE request_id = ?", (request_id,)
        )
        row = db.execute("SELECT revision FROM requests WHERE request_id = ?", (request_id,))
        return int(row.fetchone()[0])

    def request(self, request_id: str) -> RequestRow | None:
        row = self._db.execute(
            "SELECT * FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()
        return None if row is None else _request(row)

    def requests_for(self, ref: str) -> list[RequestRow]:
        rows = self._db.execute("SELECT * FROM requests WHERE ref = ? ORDER BY rowid", (ref,))
        return [_request(r) for r in rows]

    def add_answer(
        self,
        db: sqlite3.Connection,
        *,
        response_id: str,
        request_id: str,
        ref: str,
        agency: str,
        received_at: datetime,
        late: bool,
        body: bytes,
        outcome: str | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO answers (response_id, request_id, ref, agency, received_at, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (response_id, request_id, ref, agency, to_ms(received_at), body),
        )
        # The rating and deadline in force when the answer came are what it is judged by.
        db.execute(
            "UPDATE requests SET answered_at = ?, late = ?, outcome = ?,"
            " brag = (SELECT brag FROM contacts WHERE ref = requests.ref),"
            " deadline = (SELECT deadline FROM contacts WHERE ref = requests.ref)"
            " WHERE request_id = ?",
            (to_ms(received_at), int(late), outcome, request_id),
        )

    def answers_for(self, ref: str) -> list[AnswerRow]:
        rows = self._db.execute(
            "SELECT response_id, request_id, agency, received_at, body FROM answers"
            " WHERE ref = ? ORDER BY rowid",
            (ref,),
        )
        return [AnswerRow(r[0], r[1], r[2], from_ms(r[3]), r[4]) for r in rows]

    # Restricted file (ciphertext only) ---------------------------------------------
    def add_restricted(
        self,
        db: sqlite3.Connection,
        *,
        reference: str,
        ref: str,
        agency: str,
        response_id: str,
        received_at: datetime,
        envelope: bytes,
    ) -> None:
        db.execute(
            "INSERT INTO restricted (reference, ref, agency, response_id, received_at, envelope)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (reference, ref, agency, response_id, to_ms(received_at), envelope),
        )

    def restricted_for(self, ref: str) -> list[RestrictedRow]:
        rows = self._db.execute(
            "SELECT reference, ref, agency, response_id, received_at, envelope FROM restricted"
            " WHERE ref = ? ORDER BY rowid",
            (ref,),
        )
        return [RestrictedRow(r[0], r[1], r[2], r[3], from_ms(r[4]), r[5]) for r in rows]

    @property
    def connection(self) -> sqlite3.Connection:
        """For readers such as the audit log; writes go through :meth:`transaction`."""
        return self._db

    # Outbox --------------------------------------------------------------------------
    def enqueue(
        self,
        db: sqlite3.Connection,
        *,
        message_id: str,
        exchange: str,
        routing_key: str,
        type_: str,
        body: bytes,
        correlation_id: str | None = None,
        headers: dict[str, str] | None = None,
        priority: int = 1,
    ) -> None:
        db.execute(
            "INSERT INTO outbox (message_id, exchange, routing_key, type, correlation_id, body,"
            " headers, priority) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message_id,
                exchange,
                routing_key,
                type_,
                correlation_id,
                body,
                json.dumps(headers) if headers else None,
                priority,
            ),
        )

    def outbox(self, limit: int = 256, priority: int | None = None) -> list[OutboxRow]:
        """The oldest rows waiting, most urgent lane first, or of one lane only."""
        columns = "id, message_id, exchange, routing_key, type, correlation_id, body, headers"
        if priority is None:
            rows = self._db.execute(
                f"SELECT {columns} FROM outbox ORDER BY priority DESC, id LIMIT ?", (limit,)
            )
        else:
            rows = self._db.execute(
                f"SELECT {columns} FROM outbox WHERE priority = ? ORDER BY id LIMIT ?",
                (priority, limit),
            )
        return [
            OutboxRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]) if r[7] else {})
            for r in rows
        ]

    def outbox_done(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self.transaction() as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def outbox_size(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    # Reminders -----------------------------------------------------------------------
    def replace_reminders(
        self, db: sqlite3.Connection, ref: str, times: Sequence[tuple[float, datetime]]
    ) -> None:
        """Schedule ``ref``'s reminders anew; those already sent stay as a record."""
        db.execute("DELETE FROM reminders WHERE ref = ? AND sent_at IS NULL", (ref,))
        db.executemany(
            "INSERT INTO reminders (ref, fraction, due_at) VALUES (?, ?, ?)",
            [(ref, fraction, to_ms(at)) for fraction, at in times],
        )

    def due_reminders(self, now: datetime, limit: int = 500) -> list[ReminderRow]:
        rows = self._db.execute(
            "SELECT * FROM reminders WHERE sent_at IS NULL AND due_at <= ? ORDER BY due_at LIMIT ?",
            (to_ms(now), limit),
        )
        return [_reminder(r) for r in rows]

    def reminder(self, reminder_id: int) -> ReminderRow | None:
        row = self._db.execute("SELECT * FROM reminders WHERE id = ?", (reminder_id,))
        found = row.fetchone()
        return None if found is None else _reminder(found)

    def mark_reminder_sent(
        self, db: sqlite3.Connection, reminder_id: int, at: datetime, agencies: Sequence[str]
    ) -> None:
        db.execute(
            "UPDATE reminders SET sent_at = ?, agencies = ? WHERE id = ?",
            (to_ms(at), ",".join(agencies), reminder_id),
        )

    def next_reminder(self) -> datetime | None:
        row = self._db.execute("SELECT MIN(due_at) FROM reminders WHERE sent_at IS NULL")
        value = row.fetchone()[0]
        return None if value is None else from_ms(value)

    def reminders_for(self, ref: str) -> list[ReminderRow]:
        rows = self._db.execute("SELECT * FROM reminders WHERE ref = ? ORDER BY due_at", (ref,))
        return [_reminder(r) for r in rows]

    # Readiness -----------------------------------------------------------------------
    def probe_write(self, at: datetime) -> None:
        """Write and commit one row: the database is writable only if this returns."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('ready_probe', ?)",
                (str(to_ms(at)),),
            )
