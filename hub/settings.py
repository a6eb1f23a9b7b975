"""The hub's settings, from ``MASH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from broker.settings import BrokerSettings

__all__ = ["HubSettings"]


class HubSettings(BrokerSettings):
    db_path: Path = Path("var/hub.sqlite3")
    # Start on a new, empty database although this prefix's hub has run before ('mash hub
    # --new'); refused if the file exists. Without it a missing database stops the hub.
    new_database: bool = False
    # Signed checkpoints of the audit log's head (hub.audit): how often, and a file they are
    # appended to, which an operator keeps (or copies) off the hub's machine.
    audit_checkpoint_s: float = Field(300.0, gt=0, allow_inf_nan=False)
    audit_checkpoints: Path | None = None
    # Urgent lanes keep a small prefetch so a Red message is never queued behind many
    # prefetched ones inside the hub itself.
    # AMQP's prefetch count is a 16-bit number.
    urgent_prefetch: int = Field(16, ge=1, le=65535)
    routine_prefetch: int = Field(64, ge=1, le=65535)
    outbox_batch: int = Field(256, ge=1, le=100_000)
    # A command (re-rating) issued longer ago than this is refused as stale, so a captured
    # command cannot be replayed later (hub.correlator.COMMAND_MAX_AGE).
    command_max_age_s: float = Field(300.0, gt=0, allow_inf_nan=False)
