"""The console's settings: ``MASH_CONSOLE_*`` beside the broker's ``MASH_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from broker.settings import (
    _INSTANCE_FORM,
    CONSOLE_INSTANCE,
    DEFAULT_CONSOLE_INSTANCE,
    BrokerSettings,
)

__all__ = ["ConsoleSettings"]


class ConsoleSettings(BrokerSettings):
    """``MASH_CONSOLE_*`` and the broker's ``MASH_*`` settings."""

    # Which console this is: its queues (every packet, the board's events) are its own, so a
    # second console (another site, a stand-by) gets every packet too. List every instance
    # in MASH_CONSOLE_INSTANCES for `mash broker provision` and the hub to declare.
    console_instance: str = DEFAULT_CONSOLE_INSTANCE
    console_db: Path = Path("var/console.sqlite3")
    console_host: str = "127.0.0.1"
    console_port: int = Field(8400, ge=0, le=65535)
    # Session cookies are Secure (sent over HTTPS only; browsers treat localhost as secure);
    # off only for a console reached over plain HTTP by another name, which it should not be.
    console_secure_cookies: bool = True

    @field_validator("console_instance")
    @classmethod
    def _instance(cls, value: str) -> str:
        if not CONSOLE_INSTANCE.match(value):
            raise ValueError(_INSTANCE_FORM)
        return value
