"""Sealing restricted findings for the MASH restricted file.

An adapter seals with the restricted file's current public key (X25519) and a fresh
ephemeral key; HKDF-SHA256 derives an AES-256-GCM key from the shared secret. The contact
reference, agency, response id and key id are bound as associated data, so a ciphertext
cannot be moved to another case, agency or answer without failing to open. Only the holder
of the restricted file's private key can open it: not the broker, not the hub, not the
screening team.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mash.errors import MashError
from schemas.models import RestrictedEnvelope

__all__ = ["SealError", "open_sealed", "seal"]

_INFO = b"mash restricted file v1"


class SealError(MashError, ValueError):
    """A sealed payload that cannot be opened with this key for this case."""


def _associated(contact_ref: str, agency: str, response_id: str, key_id: str) -> bytes:
    return "\x1f".join(("mash-restricted-v1", contact_ref, agency, response_id, key_id)).encode()


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_INFO
    ).derive(shared)


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal(
    plaintext: bytes,
    recipient: X25519PublicKey,
    key_id: str,
    *,
    contact_ref: str,
    agency: str,
    response_id: str,
) -> RestrictedEnvelope:
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = _raw(ephemeral.public_key())
    key = _key(ephemeral.exchange(recipient), ephemeral_raw, _raw(recipient))
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(
        nonce, plaintext, _associated(contact_ref, agency, response_id, key_id)
    )
    return RestrictedEnvelope(
        key_id=key_id, ephemeral_public_key=ephemeral_raw, nonce=nonce, ciphertext=ciphertext
    )


def open_sealed(
    envelope: RestrictedEnvelope,
    private_key: X25519PrivateKey,
    *,
    contact_ref: str,
    agency: str,
    response_id: str,
) -> bytes:
    try:
        ephemeral = X25519PublicKey.from_public_bytes(envelope.ephemeral_public_key)
        key = _key(
            private_key.exchange(ephemeral),
            envelope.ephemeral_public_key,
            _raw(private_key.public_key()),
        )
        return AESGCM(key).decrypt(
            envelope.nonce,
            envelope.ciphertext,
            _associated(contact_ref, agency, response_id, envelope.key_id),
        )
    except (InvalidTag, ValueError):
        raise SealError(
            f"restricted payload sealed with {envelope.key_id} does not open for "
            f"{contact_ref}/{agency}"
        ) from None
