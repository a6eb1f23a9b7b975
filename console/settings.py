"""The console's settings: ``MASH_CONSOLE_*`` beside the broker's ``MASH_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from broker.settings import BrokerSettings

__all__ = ["ConsoleSettings"]


class ConsoleSettings(BrokerSettings):
    """``MASH_CONSOLE_*`` and the broker's ``MASH_*`` settings."""

    console_db: Path = Path("var/console.sqlite3")
    console_host: str = "127.0.0.1"
    console_port: int = Field(8400, ge=0, le=65535)
    # Session cookies are Secure (sent over HTTPS only; browsers treat localhost as secure);
    # off only for a console reached over plain HTTP by another name, which it should not be.
    console_secure_cookies: bool = True
