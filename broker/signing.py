"""Every message is signed by its sender (Ed25519) and verified by its receiver.

The signature covers the sender's name, the key id, the message id, the message type and a
SHA-256 digest of the body, so neither the body nor the headers that say who sent it can be
changed, and a signature cannot be lifted onto another message. The three headers travel
with the message unchanged through dead-lettering and replay.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.keyring import Keyring, KeyringError, load_private_key

__all__ = [
    "KEY_ID",
    "OPERATOR",
    "SENDER",
    "SIGNATURE",
    "SignatureRefused",
    "Signer",
    "Verifier",
    "signer_for",
]

# The sender name the command line and other front-door systems sign contacts and
# commands with.
OPERATOR = "operator"
SENDER = "x-mash-sender"
KEY_ID = "x-mash-key-id"
SIGNATURE = "x-mash-signature"


class SignatureRefused(Exception):
    """A message whose signature does not prove who sent it; ``reason`` goes in the
    dead-letter header."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _signed_bytes(sender: str, key_id: str, message_id: str, type_: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join(("mash-signature-v1", sender, key_id, message_id, type_, digest)).encode()


@dataclass(frozen=True)
class Signer:
    sender: str
    key_id: str
    private_key: Ed25519PrivateKey

    def headers(self, message_id: str, type_: str, body: bytes) -> dict[str, str]:
        signature = self.private_key.sign(
            _signed_bytes(self.sender, self.key_id, message_id, type_, body)
        )
        return {
            SENDER: self.sender,
            KEY_ID: self.key_id,
            SIGNATURE: base64.b64encode(signature).decode("ascii"),
        }


def signer_for(keyring: Keyring, key_dir: Path, sender: str, key_id: str | None = None) -> Signer:
    """The signer for ``sender``: its named key, or its newest active signing key."""
    entry = keyring.get(key_id) if key_id else keyring.current(sender, "signing")
    if entry is None:
        raise KeyringError(f"no key {key_id} in {keyring.path}")
    if entry.owner != sender or entry.purpose != "signing" or entry.status != "active":
        raise KeyringError(f"key {entry.key_id} is not an active signing key of {sender}")
    private = load_private_key(key_dir, entry.key_id)
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyringError(f"key {entry.key_id} is not an Ed25519 signing key")
    return Signer(sender, entry.key_id, private)


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
        self.keyring.refresh()
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
