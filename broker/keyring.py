"""The key registry: every public key in the MASH, who owns it, what it is for and whether it
is still in use; private keys stay in each holder's own key directory.

Two purposes:

- ``signing`` (Ed25519): every sender (the hub, each agency's adapter, the operator's
  command line) signs what it publishes; receivers verify against this registry.
- ``restricted`` (X25519): adapters encrypt restricted findings for the MASH restricted
  file; only the holder of the private key (the restricted-file officer) can read them.

Private keys: each holder's in a folder of its own (``<key dir>/<holder>/<key id>.pem``),
and the restricted file's outside the key directory altogether (``default_restricted_dir``),
so that the hub's key directory never holds a key that opens the restricted file.

A retired key no longer signs or encrypts, and a message signed by it is refused; a
retired restricted key still decrypts what was sealed for it, so rotation loses nothing.
The registry is a JSON file that operators distribute to every process; processes notice
when it changes.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from broker.files import read_regular_file
from mash.errors import MashError

__all__ = [
    "RESTRICTED_OWNER",
    "KeyEntry",
    "Keyring",
    "KeyringError",
    "Purpose",
    "default_restricted_dir",
    "ensure_keys",
    "export_holder",
    "generate_key",
    "holder_dir",
    "load_private_key",
    "private_key_path",
    "readable_restricted_keys",
]

Purpose = Literal["signing", "restricted"]
Status = Literal["active", "retired"]
RESTRICTED_OWNER = "restricted-file"


class KeyringError(MashError, ValueError):
    """A key is missing, unreadable or of the wrong kind; the message says which."""


@dataclass(frozen=True)
class KeyEntry:
    key_id: str
    owner: str
    purpose: Purpose
    public_key: str  # base64 of the raw 32-byte public key
    created_at: str
    status: Status = "active"
    retired_at: str | None = None

    @property
    def raw_public_key(self) -> bytes:
        return base64.b64decode(self.public_key)

    def ed25519(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.raw_public_key)

    def x25519(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(self.raw_public_key)


class Keyring:
    """The public half of every key, read from (and written to) one JSON file."""

    def __init__(self, path: Path, entries: list[KeyEntry] | None = None) -> None:
        self.path = path
        self._entries = {e.key_id: e for e in entries or []}
        # The file's identity as last read: a save replaces the file (a new inode), so a
        # change is seen even within one tick of the file system's clock.
        self._stamp: tuple[int, int, int] = (0, 0, 0)
        self._checked = 0.0
        # Goes up on every (re)load, so holders of derived state know to look again.
        self.generation = 0

    @classmethod
    def load(cls, path: Path) -> Keyring:
        ring = cls(path)
        ring.reload()
        return ring

    def reload(self) -> None:
        try:
            stat = self.path.stat()
            # MASH_KEYRING may name a FIFO or a device: never block on it or read it whole.
            data = json.loads(read_regular_file(self.path, 16 * 1024 * 1024))
            entries = [KeyEntry(**item) for item in data["keys"]]
        except FileNotFoundError:
            raise KeyringError(
                f"no key registry at {self.path}; create one with 'mash keys init'"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyringError(f"{self.path} is not a valid key registry ({exc})") from None
        self._entries = {e.key_id: e for e in entries}
        self._stamp = _stamp(stat)
        self.generation += 1

    def refresh(self, *, force: bool = False) -> None:
        """Reload if the file changed, so a new key or a retirement takes effect without a
        restart; the file is looked at no more than once a second, not on every message,
        unless ``force`` (a key id not seen yet)."""
        now = time.monotonic()
        if not force and now - self._checked < 1.0:
            return
        self._checked = now
        try:
            stamp = _stamp(self.path.stat())
        except OSError:
            return
        if stamp != self._stamp:
            self.reload()

    def save(self) -> None:
        # Folders it creates (var/, var/keys/) are the owner's alone: var/ also holds the hub's
        # database, which refuses to start in a folder others may open (hub.store).
        missing = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
        for folder in reversed(missing):
            folder.mkdir(mode=0o700)
            folder.chmod(0o700)
        payload = {"keys": [asdict(e) for e in self._entries.values()]}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        temporary.replace(self.path)
        self._stamp = _stamp(self.path.stat())
        self.generation += 1

    def get(self, key_id: str) -> KeyEntry | None:
        return self._entries.get(key_id)

    def entries(self) -> list[KeyEntry]:
        return sorted(self._entries.values(), key=lambda e: (e.owner, e.created_at, e.key_id))

    def add(self, entry: KeyEntry) -> None:
        self._entries[entry.key_id] = entry

    def retire(self, key_id: str) -> KeyEntry:
        entry = self._entries.get(key_id)
        if entry is None:
            raise KeyringError(f"no key {key_id} in {self.path}")
        retired = replace(entry, status="retired", retired_at=datetime.now(UTC).isoformat())
        self._entries[key_id] = retired
        return retired

    def current(self, owner: str, purpose: Purpose) -> KeyEntry:
        """The newest active key an owner has for a purpose."""
        candidates = [
            e
            for e in self._entries.values()
            if e.owner == owner and e.purpose == purpose and e.status == "active"
        ]
        if not candidates:
            raise KeyringError(f"no active {purpose} key for {owner} in {self.path}")
        return max(candidates, key=lambda e: (e.created_at, e.key_id))


def _stamp(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_mtime_ns, stat.st_ino, stat.st_size)


def holder_dir(key_dir: Path, owner: str) -> Path:
    """Each holder's private keys have a folder of their own under the key directory, so one
    holder's keys can be handed over (``mash keys export-holder``) without the others'."""
    return key_dir / owner


def generate_key(
    keyring: Keyring,
    key_dir: Path,
    owner: str,
    purpose: Purpose,
    *,
    folder: Path | None = None,
) -> tuple[KeyEntry, Path]:
    """Make a key pair: the private key goes to the owner's own folder (``folder``, else
    ``key_dir/<owner>``; mode 0700, the file 0600), the public key to the registry (which
    the caller saves)."""
    now = datetime.now(UTC)
    key_id = f"{owner}-{now:%Y%m%d}-{secrets.token_hex(3)}"
    private: Ed25519PrivateKey | X25519PrivateKey = (
        Ed25519PrivateKey.generate() if purpose == "signing" else X25519PrivateKey.generate()
    )
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    target = folder if folder is not None else holder_dir(key_dir, owner)
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.chmod(0o700)
    path = target / f"{key_id}.pem"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    entry = KeyEntry(
        key_id=key_id,
        owner=owner,
        purpose=purpose,
        public_key=base64.b64encode(raw_public).decode("ascii"),
        created_at=now.isoformat(),
    )
    keyring.add(entry)
    return entry, path


def private_key_path(key_dir: Path, key_id: str, owner: str | None = None) -> Path | None:
    """Where a private key is: in its owner's folder under ``key_dir``, or in ``key_dir``
    itself (a holder's folder handed over and pointed at directly)."""
    candidates = [key_dir / f"{key_id}.pem"]
    if owner is not None:
        candidates.insert(0, holder_dir(key_dir, owner) / f"{key_id}.pem")
    else:
        candidates.extend(sorted(key_dir.glob(f"*/{key_id}.pem")))
    return next((path for path in candidates if path.is_file()), None)


def load_private_key(
    key_dir: Path, key_id: str, owner: str | None = None
) -> Ed25519PrivateKey | X25519PrivateKey:
    path = private_key_path(key_dir, key_id, owner)
    if path is None:
        raise KeyringError(f"no private key for {key_id} in {key_dir}")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise KeyringError(f"{path} is not a readable private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise KeyringError(f"{path} is neither an Ed25519 nor an X25519 key")
    return key


def readable_restricted_keys(key_dir: Path) -> list[Path]:
    """Every restricted-file private key this process can open under ``key_dir``: the hub
    must find none (it forwards the restricted file but may never read it)."""
    found: list[Path] = []
    if not key_dir.is_dir():
        return found
    for path in sorted(key_dir.rglob("*.pem")):
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError):
            continue  # unreadable to us, or not a private key: not a leak
        if isinstance(key, X25519PrivateKey):
            found.append(path)
    return found


def default_restricted_dir(key_dir: Path) -> Path:
    """Where the restricted file's private key is made when no folder is named: beside the
    key directory, never inside it, so the hub's key directory never holds it."""
    return key_dir.parent / RESTRICTED_OWNER


def ensure_keys(
    keyring: Keyring,
    key_dir: Path,
    senders: Iterable[str],
    *,
    restricted_dir: Path | None = None,
) -> list[KeyEntry]:
    """Give every sender a signing key (in ``key_dir/<sender>``) and the restricted file a
    sealing key (in ``restricted_dir``, outside ``key_dir``), where they have no active one
    yet; returns the keys made (the caller saves the registry)."""
    made = []
    for sender in senders:
        try:
            keyring.current(sender, "signing")
        except KeyringError:
            made.append(generate_key(keyring, key_dir, sender, "signing")[0])
    try:
        keyring.current(RESTRICTED_OWNER, "restricted")
    except KeyringError:
        folder = restricted_dir or default_restricted_dir(key_dir)
        made.append(
            generate_key(keyring, key_dir, RESTRICTED_OWNER, "restricted", folder=folder)[0]
        )
    return made


def export_holder(
    keyring: Keyring, holder: str, source: Path, destination: Path, *, remove: bool = False
) -> list[Path]:
    """Copy one holder's private keys (from its folder ``source``) and the public registry
    into ``destination``, a new folder of mode 0700, for hand-over; with ``remove`` the
    source copies are deleted once written, so this machine no longer holds them."""
    keys = [e for e in keyring.entries() if e.owner == holder]
    if not keys:
        raise KeyringError(f"{holder} has no keys in {keyring.path}")
    files = [source / f"{e.key_id}.pem" for e in keys if (source / f"{e.key_id}.pem").is_file()]
    if not files:
        raise KeyringError(f"no private key of {holder} in {source}")
    if destination.exists() and any(destination.iterdir()):
        raise KeyringError(f"{destination} is not empty; export into a new folder")
    target = destination / holder
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    destination.chmod(0o700)
    target.chmod(0o700)
    written = []
    for path in files:
        copy = target / path.name
        descriptor = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(path.read_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        written.append(copy)
    registry = Keyring(destination / "keyring.json", keyring.entries())
    registry.save()
    if remove:
        for path in files:
            path.unlink()
    return written
