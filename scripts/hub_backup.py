"""Back up and restore the hub's state and its keys: ``python scripts/hub_backup.py``.

``backup DEST --db HUB_DB [--keyring FILE] [--keys DIR]`` writes a new folder DEST (mode 0700)
with a consistent copy of the hub's SQLite database taken by SQLite's online backup API (the
hub keeps running: a copy of the file with ``cp`` can catch a half-written transaction or miss
the write-ahead log), the key registry and the hub's private key folder, and a manifest with
each file's SHA-256 and the audit log's head (for ``mash audit verify --expect``).

``restore SRC --db HUB_DB [--keyring FILE] [--keys DIR]`` checks every hash and the database's
integrity, then puts each file in place. It never overwrites: the places must not exist (a
restore replaces state that is lost, never a live hub's). Start the hub afterwards; contacts
that were open in the backup carry on from where the backup left them.

One line and exit 1 on any problem (a missing file, a bad hash, a target that exists).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mash.errors import MashError

__all__ = ["BackupError", "backup", "restore"]

MANIFEST = "manifest.json"
DATABASE = "hub.sqlite3"
KEYRING = "keyring.json"
KEYS = "keys"


class BackupError(MashError):
    """The backup or restore cannot go ahead; the message says why, in one line."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _audit_head(db: Path) -> dict[str, Any]:
    # The hub's own code reads the head, so the manifest's value is what `mash audit verify`
    # computes; imported here so the script's other half needs nothing but the standard library.
    from hub import audit

    with sqlite3.connect(db) as connection:
        count, head = audit.head(connection)
    return {"entries": count, "head": head}


def backup(dest: Path, db: Path, keyring: Path | None = None, keys: Path | None = None) -> Path:
    """Write a backup of ``db`` (and the registry and key folder) to the new folder ``dest``."""
    if not db.is_file():
        raise BackupError(f"no hub database at {db}")
    for given in (keyring, keys):
        if given is not None and not given.exists():
            raise BackupError(f"{given} does not exist")
    try:
        dest.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        raise BackupError(f"{dest} exists; a backup goes to a new folder") from None
    # SQLite's backup API copies a consistent snapshot while the hub writes; read-only URI so
    # the backup can never change the live database.
    source = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    target = sqlite3.connect(dest / DATABASE)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    if keyring is not None:
        shutil.copy2(keyring, dest / KEYRING)
    if keys is not None:
        shutil.copytree(keys, dest / KEYS)
    files = sorted(p for p in dest.rglob("*") if p.is_file())
    for path in files:
        path.chmod(0o600)
    manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "audit": _audit_head(dest / DATABASE),
        "files": {str(p.relative_to(dest)): _sha256(p) for p in files},
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return dest / MANIFEST


def restore(src: Path, db: Path, keyring: Path | None = None, keys: Path | None = None) -> None:
    """Put the backup in ``src`` back at ``db`` (and the registry and key folder)."""
    try:
        manifest = json.loads((src / MANIFEST).read_text())
        files: dict[str, str] = manifest["files"]
    except (OSError, ValueError, KeyError) as exc:
        raise BackupError(f"{src} is not a backup (no readable {MANIFEST}: {exc})") from None
    for name, expected in files.items():
        path = src / name
        if not path.is_file() or _sha256(path) != expected:
            raise BackupError(f"{path} is missing or differs from the manifest; not restoring")
    with sqlite3.connect(f"file:{src / DATABASE}?mode=ro", uri=True) as check:
        result = check.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        raise BackupError(f"the backed-up database fails its integrity check: {result}")
    wanted: list[tuple[Path, Path]] = [(src / DATABASE, db)]
    if keyring is not None:
        if KEYRING not in files:
            raise BackupError(f"{src} holds no key registry")
        wanted.append((src / KEYRING, keyring))
    if keys is not None:
        if not (src / KEYS).is_dir():
            raise BackupError(f"{src} holds no key folder")
        wanted.append((src / KEYS, keys))
    for _, target in wanted:
        if target.exists():
            raise BackupError(f"{target} exists; restore only where the state was lost")
    for source, target in wanted:
        if not target.parent.exists():
            # A folder the restore makes is the owner's alone: the hub refuses a database in
            # a folder other users can open (it holds children's data).
            target.parent.mkdir(parents=True)
            target.parent.chmod(0o700)
        if source.is_dir():
            shutil.copytree(source, target)
            target.chmod(0o700)
        else:
            shutil.copy2(source, target)
    # The registry is public; the database and private keys are the owner's alone.
    db.chmod(0o600)
    if keys is not None:
        for path in keys.rglob("*"):
            path.chmod(0o700 if path.is_dir() else 0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Back up or restore the hub's state and keys.")
    parser.add_argument("action", choices=["backup", "restore"])
    parser.add_argument("folder", type=Path, help="the backup's folder")
    parser.add_argument("--db", type=Path, default=Path(os.environ.get("MASH_DB_PATH", "")))
    parser.add_argument("--keyring", type=Path, help="the key registry (keyring.json)")
    parser.add_argument("--keys", type=Path, help="the hub's private key folder")
    args = parser.parse_args(argv)
    if not str(args.db) or str(args.db) == ".":
        print("error: give --db (or set MASH_DB_PATH)", file=sys.stderr)
        return 2
    try:
        if args.action == "backup":
            manifest = backup(args.folder, args.db, args.keyring, args.keys)
            print(f"backed up to {args.folder}; manifest {manifest}")
        else:
            restore(args.folder, args.db, args.keyring, args.keys)
            print(f"restored {args.folder} to {args.db}; start the hub")
    except (BackupError, OSError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
