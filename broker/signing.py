"""Every message is signed by its sender (Ed25519) and verified by its receiver.

The signature covers the sender's name, the key id, the message id, the message type and a
SHA-256 digest of the body, so neither the body nor the headers that say who sent it can be
changed, and a signature cannot be lifted onto another message. The three headers travel
with the message unchanged through dead-lettering and replay.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.keyring import Keyring, KeyringError, load_private_key
from mash.errors import Rejected

__all__ = [
    "KEY_ID",
    "OPERATOR",
    "SENDER",
    "SIGNATURE",
    "SignatureRefused",
    "Signer",
    "SigningKeyUnavailable",
    "Verifier",
    "signer_for",
]

log = structlog.get_logger("mash.keys")

_RECHOOSE_S = 5.0

# The sender name the command line and other front-door systems sign contacts and
# commands with.
OPERATOR = "operator"
SENDER = "x-mash-sender"
KEY_ID = "x-mash-key-id"
SIGNATURE = "x-mash-signature"


class SignatureRefused(Rejected):
    """A message whose signature does not prove who sent it; ``reason`` goes in the
    dead-letter header."""


def _signed_bytes(sender: str, key_id: str, message_id: str, type_: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join(("mash-signature-v1", sender, key_id, message_id, type_, digest)).encode()


class SigningKeyUnavailable(KeyringError):
    """This process has no active signing key: its key was retired and no newer one whose
    private half it holds is in the registry. Nothing it would sign could be verified, so it
    signs nothing; consumers hold the message (it is a transient failure an operator fixes
    with ``mash keys generate``) instead of reporting success for it."""


class Signer:
    """Signs as ``sender`` with its newest active key whose private half this process holds.

    The registry's file is looked at again before each signature, so ``mash keys generate``
    and ``mash keys retire`` take effect in a running process: a new key is used from the
    next message on, and a retired key is never used again. A key pinned with
    ``MASH_SIGNING_KEY`` is used while it is active.
    """

    def __init__(
        self,
        sender: str,
        key_id: str,
        private_key: Ed25519PrivateKey,
        *,
        keyring: Keyring | None = None,
        key_dir: Path | None = None,
        pinned: bool = False,
    ) -> None:
        self.sender = sender
        self._key_id = key_id
        self._private = private_key
        # Without a registry (a test's fixed signer) the key never changes.
        self._keyring = keyring
        self._key_dir = key_dir
        self._pinned = pinned
        self._problem: str | None = None
        self._missing_private: str | None = None
        # Which registry version and when the key was last chosen: choosing may read a
        # private key file, so it is done when the registry changed or a few seconds passed
        # (a private key handed over after its public half), not on every message.
        self._seen: tuple[int, float] = (-1, 0.0)

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._private

    @property
    def problem(self) -> str | None:
        """Why this process cannot sign now (for /readyz), or None."""
        self.refresh()
        return self._problem

    def refresh(self) -> None:
        """Follow the registry: change to a newer key, or stop signing with a retired one."""
        if self._keyring is None:
            return
        try:
            # One stat() per signature (a few microseconds beside the signature's fifty): a
            # retirement must stop the very next message, not one a second later.
            self._keyring.refresh(force=True)
        except KeyringError as exc:
            # A registry being rewritten by hand: keep the key we have until it reads again.
            log.warning("keyring_unreadable", sender=self.sender, error=str(exc))
            return
        now = time.monotonic()
        generation, chosen_at = self._seen
        if generation == self._keyring.generation and now - chosen_at < _RECHOOSE_S:
            return
        self._seen = (self._keyring.generation, now)
        wanted = self._wanted()
        if wanted is None:
            if self._missing_private is not None:
                problem = (
                    f"signing key {self._key_id} of {self.sender} was retired and the private "
                    f"key of its successor {self._missing_private} is not in {self._key_dir}"
                )
            else:
                problem = (
                    f"signing key {self._key_id} of {self.sender} was retired and no active "
                    f"key of {self.sender} is in {self._keyring.path}: generate one with "
                    f"'mash keys generate {self.sender}'"
                )
            if problem != self._problem:
                log.error(
                    "signing_key_retired", sender=self.sender, key_id=self._key_id, reason=problem
                )
            self._problem = problem
            return
        if wanted != self._key_id:
            self._change_to(wanted)
        elif self._problem is not None:
            self._problem = None

    def _wanted(self) -> str | None:
        """The key to sign with: the newest active one whose private half we hold, else the
        current one while it is still active, else None."""
        assert self._keyring is not None
        current = self._keyring.get(self._key_id)
        still_active = current is not None and current.status == "active"
        if self._pinned:
            return self._key_id if still_active else None
        try:
            newest = self._keyring.current(self.sender, "signing").key_id
        except KeyringError:
            self._missing_private = None
            return None
        if newest == self._key_id or self._holds(newest):
            self._missing_private = None
            return newest
        # The registry has the new public key before this holder has its private half: go on
        # with the old key while it is active, and say why the new one is not used yet.
        if newest != self._missing_private:
            log.warning("signing_key_not_held", sender=self.sender, key_id=newest)
            self._missing_private = newest
        if still_active:
            return self._key_id
        return None

    def _holds(self, key_id: str) -> bool:
        try:
            self._load(key_id)
        except KeyringError:
            return False
        return True

    def _load(self, key_id: str) -> Ed25519PrivateKey:
        assert self._key_dir is not None
        private = load_private_key(self._key_dir, key_id, owner=self.sender)
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyringError(f"key {key_id} is not an Ed25519 signing key")
        return private

    def _change_to(self, key_id: str) -> None:
        private = self._load(key_id)
        log.info("signing_key_changed", sender=self.sender, old=self._key_id, new=key_id)
        self._key_id, self._private, self._problem = key_id, private, None

    async def watch(self, interval: float = 5.0) -> None:
        """Look at the registry every ``interval`` seconds even when nothing is sent, so a
        retirement is logged (and /readyz turns) without waiting for a message."""
        while True:
            self.refresh()
            await asyncio.sleep(interval)

    def sign(self, data: bytes) -> bytes:
        """A raw signature with the current key (an audit checkpoint, say)."""
        self.refresh()
        if self._problem is not None:
            raise SigningKeyUnavailable(self._problem)
        return self._private.sign(data)

    def headers(self, message_id: str, type_: str, body: bytes) -> dict[str, str]:
        self.refresh()
        if self._problem is not None:
            raise SigningKeyUnavailable(self._problem)
        signature = self._private.sign(
            _signed_bytes(self.sender, self._key_id, message_id, type_, body)
        )
        return {
            SENDER: self.sender,
            KEY_ID: self._key_id,
            SIGNATURE: base64.b64encode(signature).decode("ascii"),
        }


def signer_for(keyring: Keyring, key_dir: Path, sender: str, key_id: str | None = None) -> Signer:
    """The signer for ``sender``: its named key, or its newest active signing key; it follows
    the registry from then on."""
    entry = keyring.get(key_id) if key_id else keyring.current(sender, "signing")
    if entry is None:
        raise KeyringError(f"no key {key_id} in {keyring.path}")
    if entry.owner != sender or entry.purpose != "signing" or entry.status != "active":
        raise KeyringError(f"key {entry.key_id} is not an active signing key of {sender}")
    private = load_private_key(key_dir, entry.key_id, owner=sender)
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyringError(f"key {entry.key_id} is not an Ed25519 signing key")
    return Signer(
        sender, entry.key_id, private, keyring=keyring, key_dir=key_dir, pinned=key_id is not None
    )


class Verifier:
    """Checks a message's signature against the registry; returns the proven sender."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def verify(
        self,
        headers: Mapping[str, Any] | None,
        message_id: str | None,
        type_: str | None,
        body: bytes,
        allowed_senders: frozenset[str] | None = None,
    ) -> str:
        headers = headers or {}
        sender, key_id, signature = (headers.get(h) for h in (SENDER, KEY_ID, SIGNATURE))
        if not (sender and key_id and signature):
            raise SignatureRefused("missing-signature", "no x-mash signature headers")
        sender, key_id = str(sender), str(key_id)
        # One stat() of the registry per message (reloaded only when it changed): a key
        # retired a moment ago is refused from the next message, and a key generated a
        # moment ago is known to the first message signed with it.
        self.keyring.refresh(force=True)
        entry = self.keyring.get(key_id)
        if entry is None or entry.purpose != "signing":
            raise SignatureRefused("unknown-key", f"key {key_id} is not a registered signing key")
        if entry.status != "active":
            raise SignatureRefused("retired-key", f"key {key_id} was retired")
        if entry.owner != sender:
            raise SignatureRefused(
                "sender-mismatch", f"key {key_id} belongs to {entry.owner}, not {sender}"
            )
        if allowed_senders is not None and sender not in allowed_senders:
            raise SignatureRefused("sender-not-allowed", f"{sender} may not send here")
        try:
            raw = base64.b64decode(str(signature), validate=True)
            entry.ed25519().verify(
                raw, _signed_bytes(sender, key_id, message_id or "", type_ or "", body)
            )
        except (InvalidSignature, ValueError):
            raise SignatureRefused(
                "bad-signature", f"signature by {key_id} does not verify"
            ) from None
        return sender
