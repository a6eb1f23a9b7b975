"""The key registry: every public key in the MASH, who owns it, what it is for and whether it
is still in use; private keys stay in each holder's own key directory.

Two purposes:

- ``signing`` (Ed25519): every sender (the hub, each agency's adapter, the operator's
  command line) signs what it publishes; receivers verify against this registry.
- ``restricted`` (X25519): adapters encrypt restricted findings for the MASH restricted
  file; only the holder of the private key (the restricted-file officer) can read them.

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

__all__ = [
    "RESTRICTED_OWNER",
    "KeyEntry",
    "Keyring",
    "KeyringError",
    "Purpose",
    "ensure_keys",
    "generate_key",
    "load_private_key",
]

Purpose = Literal["signing", "restricted"]
Status = Literal["active", "retired"]
RESTRICTED_OWNER = "restricted-file"


class KeyringError(ValueError):
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
        self._mtime = 0.0
        self._checked = 0.0

    @classmethod
    def load(cls, path: Path) -> Keyring:
        ring = cls(path)
        ring.reload()
        return ring

    def reload(self) -> None:
        try:
            stat = self.path.stat()
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = [KeyEntry(**item) for item in data["keys"]]
        except FileNotFoundError:
            raise KeyringError(
                f"no key registry at {self.path}; create one with 'mash keys init'"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyringError(f"{self.path} is not a valid key registry ({exc})") from None
        self._entries = {e.key_id: e for e in entries}
        self._mtime = stat.st_mtime

    def refresh(self) -> None:
        """Reload if the file changed, so a retirement takes effect without a restart; the
        file is looked at no more than once a second, not on every message."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime != self._mtime:
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
        self._mtime = self.path.stat().st_mtime

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


def _private_path(key_dir: Path, key_id: str) -> Path:
    return key_dir / f"{key_id}.pem"


def generate_key(
    keyring: Keyring, key_dir: Path, owner: str, purpose: Purpose
) -> tuple[KeyEntry, Path]:
    """Make a key pair: the private key goes to ``key_dir`` (mode 0600), the public key to
    the registry (which the caller saves)."""
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
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = _private_path(key_dir, key_id)
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


def load_private_key(key_dir: Path, key_id: str) -> Ed25519PrivateKey | X25519PrivateKey:
    path = _private_path(key_dir, key_id)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise KeyringError(f"no private key for {key_id} in {key_dir}") from None
    except (OSError, ValueError) as exc:
        raise KeyringError(f"{path} is not a readable private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise KeyringError(f"{path} is neither an Ed25519 nor an X25519 key")
    return key


def ensure_keys(keyring: Keyring, key_dir: Path, senders: Iterable[str]) -> list[KeyEntry]:
    """Give every sender a signing key and the restricted file a sealing key, where they have
    no active one yet; returns the keys made (the caller saves the registry)."""
    wanted: list[tuple[str, Purpose]] = [(sender, "signing") for sender in senders]
    wanted.append((RESTRICTED_OWNER, "restricted"))
    made = []
    for owner, purpose in wanted:
        try:
            keyring.current(owner, purpose)
        except KeyringError:
            made.append(generate_key(keyring, key_dir, owner, purpose)[0])
    return made
