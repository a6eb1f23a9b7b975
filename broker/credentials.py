"""What a process needs to speak on the broker as itself: the key registry, its own signer,
and a verifier for what it receives."""

from __future__ import annotations

from dataclasses import dataclass

from broker.keyring import Keyring
from broker.settings import BrokerSettings
from broker.signing import Signer, Verifier, signer_for

__all__ = ["Credentials", "load_credentials"]


@dataclass(frozen=True)
class Credentials:
    keyring: Keyring
    signer: Signer
    verifier: Verifier


def load_credentials(settings: BrokerSettings, sender: str) -> Credentials:
    """Raises :class:`~broker.keyring.KeyringError` with one clear line when a key is missing."""
    keyring = Keyring.load(settings.keyring)
    signer = signer_for(keyring, settings.key_dir, sender, settings.signing_key)
    return Credentials(keyring, signer, Verifier(keyring))
