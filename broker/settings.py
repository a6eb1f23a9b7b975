"""Where the broker is and how this MASH's names are set apart on it.

Every setting is checked when the settings are read, so a process refuses to start on a bad
value with one line naming the variable (:class:`SettingsInvalid`), instead of a traceback at
start or, worse, a failure hours later when the value is first used.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import pydantic
from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from mash.errors import MashError

__all__ = [
    "AGENCY_NAME",
    "CONSOLE_INSTANCE",
    "DEFAULT_AGENCIES",
    "DEFAULT_CONSOLE_INSTANCE",
    "ENV_PREFIX",
    "MAX_AGENCIES",
    "BrokerSettings",
    "SettingsInvalid",
]

DEFAULT_AGENCIES: tuple[str, ...] = ("police", "health", "education", "housing")
ENV_PREFIX = "MASH_"
# An agency's name becomes part of queue names, routing keys and broker user names.
AGENCY_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
# One answer per agency goes into every packet; the packet budget (schemas.models) is
# computed for at most this many agencies.
MAX_AGENCIES = 10
# A console instance's name becomes part of its queues' names (broker.topology).
CONSOLE_INSTANCE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
DEFAULT_CONSOLE_INSTANCE = "main"
_INSTANCE_FORM = "lower case letters, digits and '-', starting with a letter (at most 32)"
_AGENCIES_FORM = 'a JSON list of agency names, e.g. ["police","health","education","housing"]'


class SettingsInvalid(MashError, ValueError):
    """A setting has a value the process cannot run with; the message is one line that
    names the variable and never repeats the value (a URL may carry a password)."""

    exit_code = 2  # a usage error, like a bad option


def _variable(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _describe(exc: pydantic.ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    # A check across fields names its variables itself.
    return f"{_variable(field) + ': ' if field else ''}{message}{more}"


def _check_url(value: str, schemes: tuple[str, str], example: str) -> str:
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 -- raises ValueError for a port that is not 0-65535
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc}); expected e.g. {example}") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"expected an {schemes[0]}:// or {schemes[1]}:// URL, e.g. {example}")
    return value.strip()


class BrokerSettings(BaseSettings):
    """Read from ``MASH_*`` environment variables.

    ``prefix`` names every exchange and queue of one MASH, so several boroughs (or test runs)
    share a broker without seeing each other; a vhost in ``amqp_url`` does the same with
    stronger separation.
    """

    # An empty variable means "not set": compose files often export one that way.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", env_ignore_empty=True)

    # One broker, or the nodes of a cluster comma-separated (or in ``amqp_urls``): every
    # connection starts at one of them and moves to the next when its node goes away. After
    # validation ``amqp_url`` is the first node and :attr:`brokers` lists them all.
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    amqp_urls: str = ""
    # Replicas of each quorum queue (x-quorum-initial-group-size) on a cluster; 0 leaves it to
    # the broker (every node it has at the time of declaring, up to its own limit).
    quorum_group_size: int = Field(0, ge=0, le=99)
    _brokers: tuple[str, ...] = PrivateAttr(default=())
    # Seconds one connection attempt may take, handshake included: a broker that accepts the
    # connection and never answers is a failure after this, never a hang.
    connect_timeout: float = Field(10.0, gt=0, le=300)
    # Queue names are at most 255 bytes; the prefix leaves room for the longest suffix.
    prefix: str = Field("mash", max_length=64)
    agencies: tuple[str, ...] = Field(DEFAULT_AGENCIES, min_length=1, max_length=MAX_AGENCIES)
    # A poison message is dead-lettered after this many deliveries instead of looping.
    delivery_limit: int = Field(5, ge=1, le=1000)
    # Bounds memory when a consumer is down: publishers are refused (and retry) past this.
    max_queue_length: int = Field(500_000, ge=1, le=100_000_000)
    publish_attempts: int = Field(6, ge=1, le=100)
    # Local development declares the topology from every process (as guest); provisioned,
    # least-privilege users may not, and only check passively that their queues exist.
    declare_topology: bool = True
    # Broker user of each role ({prefix}, {role}): what `mash broker provision` creates and
    # what the hub expects in the user_id of each agency's answers.
    broker_user_template: str = Field("{prefix}-{role}", min_length=1, max_length=200)
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
    signing_key: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", max_length=200)
    # Prometheus metrics, /healthz and /readyz for this process; 0 turns them off.
    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_host: str = Field("127.0.0.1", min_length=1, max_length=255)
    # RabbitMQ's management API for queue rates; empty means the broker's host with the AMQP
    # credentials (https on 15671 for an amqps:// broker, http on 15672 otherwise), "off"
    # means passive declares only.
    management_url: str = ""
    # The API takes the password in every request: over plain HTTP only to a loopback host,
    # unless this says so (broker.stats.management_api).
    management_plain_http: bool = False
    # How long, at most, a Red contact in hand holds a process's routine work back: the hub's
    # and every adapter's (broker.head_start). A Red contact must never wait behind the head
    # start itself: an hour is far past sense. 0 turns it off.
    red_head_start_s: float = Field(5.0, ge=0, le=3600, allow_inf_nan=False)
    # Every console instance (`mash console`, MASH_CONSOLE_INSTANCE) this MASH runs,
    # comma-separated: each has queues of its own and gets every packet and board event, so
    # two consoles never share out the packets between them.
    console_instances: Annotated[tuple[str, ...], NoDecode] = (DEFAULT_CONSOLE_INSTANCE,)

    def __init__(self, **values: Any) -> None:
        # pydantic-settings raises a multi-line ValidationError (or a SettingsError for a
        # value that is not JSON) from deep inside; every command shows one line instead.
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            raise SettingsInvalid(_describe(exc)) from None
        except SettingsError as exc:
            field = re.search(r'field "([a-z_]+)"', str(exc))
            name = _variable(field[1]) if field else "a MASH_ setting"
            form = _AGENCIES_FORM if field and field[1] == "agencies" else "a JSON value"
            raise SettingsInvalid(f"{name}: not in the expected form, {form}") from None

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError("use only letters, digits, '-' and '_' (no spaces), e.g. 'mash'")
        return value

    @field_validator("amqp_url", "amqp_urls")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        nodes = [node.strip() for node in value.split(",") if node.strip()]
        for node in nodes:
            _check_url(node, ("amqp", "amqps"), "amqp://user:password@host:5672/vhost")
        return ",".join(nodes)

    @model_validator(mode="after")
    def _one_cluster(self) -> BrokerSettings:
        nodes = (self.amqp_urls or self.amqp_url).split(",")
        first = urlsplit(nodes[0])
        for node in nodes[1:]:
            other = urlsplit(node)
            # One cluster is one set of credentials, one scheme and one vhost; a node that
            # differs is a typo that would only show when the first node fails.
            if (other.scheme, other.username, other.password, other.path.strip("/")) != (
                first.scheme,
                first.username,
                first.password,
                first.path.strip("/"),
            ):
                field = "amqp_urls" if self.amqp_urls else "amqp_url"
                raise ValueError(
                    f"{_variable(field)}: every node must have the same scheme, user, password "
                    "and vhost (only the host and port differ)"
                )
        self.amqp_url = nodes[0]
        self._brokers = tuple(nodes)
        return self

    @property
    def brokers(self) -> tuple[str, ...]:
        """Every node's URL, the first (``amqp_url``) first."""
        # A copy made with another amqp_url (model_copy(update=…)) is that one broker.
        if not self._brokers or self._brokers[0] != self.amqp_url:
            return (self.amqp_url,)
        return self._brokers

    @field_validator("management_url")
    @classmethod
    def _management_url(cls, value: str) -> str:
        if value.strip().lower() in ("", "off"):
            return value.strip()
        return _check_url(value, ("http", "https"), "http://host:15672")

    @field_validator("console_instances", mode="before")
    @classmethod
    def _instance_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("console_instances")
    @classmethod
    def _instance_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"name at least one console instance, e.g. {DEFAULT_CONSOLE_INSTANCE}")
        for name in value:
            if not CONSOLE_INSTANCE.match(name):
                raise ValueError(f"console instance {name[:40]!r}: {_INSTANCE_FORM}")
        if len(set(value)) != len(value):
            raise ValueError("a console instance is named twice")
        return value

    @field_validator("agencies", mode="before")
    @classmethod
    def _agency_list(cls, value: Any) -> Any:
        # The documented form is a JSON list; a JSON string or number parses but is not one.
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"expected {_AGENCIES_FORM}") from None
        if not isinstance(value, list | tuple) or not all(isinstance(a, str) for a in value):
            raise ValueError(f"expected {_AGENCIES_FORM}")
        return value

    @field_validator("agencies")
    @classmethod
    def _agency_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for agency in value:
            if not AGENCY_NAME.match(agency):
                raise ValueError(
                    f"agency name {agency[:40]!r} must be lower case letters, digits, '-' or "
                    "'_', starting with a letter (at most 40 characters)"
                )
        if len(set(value)) != len(value):
            raise ValueError("an agency is named twice")
        return value

    @field_validator("broker_user_template")
    @classmethod
    def _user_template(cls, value: str) -> str:
        try:
            example = value.format(prefix="mash", role="police")
        except (KeyError, IndexError, ValueError):
            raise ValueError("may use only {prefix} and {role}, e.g. '{prefix}-{role}'") from None
        if "{role}" not in value or not example.strip():
            raise ValueError("must contain {role}, e.g. '{prefix}-{role}'")
        return value
