"""Where the broker is and how this MASH's names are set apart on it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_AGENCIES", "BrokerSettings"]

DEFAULT_AGENCIES: tuple[str, ...] = ("police", "health", "education", "housing")


class BrokerSettings(BaseSettings):
    """Read from ``MASH_*`` environment variables.

    ``prefix`` names every exchange and queue of one MASH, so several boroughs (or test runs)
    share a broker without seeing each other; a vhost in ``amqp_url`` does the same with
    stronger separation.
    """

    model_config = SettingsConfigDict(env_prefix="MASH_", extra="ignore")

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    prefix: str = Field("mash", pattern=r"^[A-Za-z0-9_-]+$")
    agencies: tuple[str, ...] = DEFAULT_AGENCIES
    # A poison message is dead-lettered after this many deliveries instead of looping.
    delivery_limit: int = Field(5, ge=1)
    # Bounds memory when a consumer is down: publishers are refused (and retry) past this.
    max_queue_length: int = Field(500_000, ge=1)
    publish_attempts: int = Field(6, ge=1)
    # Local development declares the topology from every process (as guest); provisioned,
    # least-privilege users may not, and only check passively that their queues exist.
    declare_topology: bool = True
    # Broker user of each role ({prefix}, {role}): what `mash broker provision` creates and
    # what the hub expects in the user_id of each agency's answers.
    broker_user_template: str = "{prefix}-{role}"
    # TLS (amqps://): the CA that signed the broker's certificate, and this process's own
    # certificate and key. With a client certificate and no password in the URL, the broker
    # user is the certificate's common name (EXTERNAL authentication).
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The public key registry every process reads, and this process's own private keys.
    keyring: Path = Path("var/keys/keyring.json")
    key_dir: Path = Path("var/keys/private")
    # The restricted file's private keys: only its keeper's, never inside key_dir (the hub
    # refuses to start if it can read one there).
    restricted_key_dir: Path = Path("var/keys/restricted-file")
    # Which key this process signs with; by default its owner's newest active signing key.
    signing_key: str | None = None
    # Prometheus metrics, /healthz and /readyz for this process; 0 turns them off.
    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # RabbitMQ's management API for queue rates; empty means the broker's host on port 15672
    # with the AMQP credentials, "off" means passive declares only.
    management_url: str = ""
