"""Creating a MASH's broker users, their permissions and its topology, in one import.

Everything is one RabbitMQ *definitions* document (users with salted password hashes,
permissions, topic permissions, exchanges, queues with their arguments, bindings), built from
the topology table and :mod:`broker.identities`. ``mash broker definitions`` writes it for an
operator to import (``rabbitmqctl import_definitions``, the management UI, or
``load_definitions`` at boot); ``mash broker provision`` pipes it to ``rabbitmqctl
import_definitions -`` on the broker's host, so no password appears on a command line, in a
file or in a log. Passwords come from :mod:`secrets` and are shown once, in a credentials
file only its owner can read (or on standard output).

Provisioning again is safe beside running processes: users that already exist keep their
passwords (only their permissions are brought up to date), so adding an agency creates one
new user and re-keys nobody; ``rotate`` issues new passwords, for every user or the roles
named by ``only``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from yarl import URL

from broker.identities import Permissions, all_permissions
from broker.settings import BrokerSettings
from broker.topology import OPERATOR_ROLE, Topology
from mash.errors import MashError

__all__ = [
    "Credential",
    "ProvisionError",
    "credentials_document",
    "definitions",
    "deprovision",
    "existing_users",
    "new_credentials",
    "password_hash",
    "provision",
    "vhost_of",
    "write_private",
]

HASHING = "rabbit_password_hashing_sha256"


class ProvisionError(MashError, RuntimeError):
    """``rabbitmqctl`` is missing or the broker refused the change."""


@dataclass(frozen=True)
class Credential:
    role: str
    user: str
    password: str | None  # None: certificate (EXTERNAL) login only

    def __repr__(self) -> str:  # never print a password by accident
        return f"Credential(role={self.role!r}, user={self.user!r})"


def vhost_of(settings: BrokerSettings) -> str:
    path = URL(settings.amqp_url).path
    return "/" if path in ("", "/") else path[1:]


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))
    with a four-byte random salt."""
    salt = secrets.token_bytes(4) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode()


def new_credentials(
    topology: Topology,
    *,
    passwords: bool = True,
    existing: Collection[str] = (),
    only: Collection[str] | None = None,
    rotate: bool = False,
) -> list[Credential]:
    """Credentials for the users to create or re-key: every role's user that does not exist
    yet, and with ``rotate`` the existing ones too; ``only`` limits both to those roles."""
    roles = topology.roles()
    unknown = sorted(set(only or ()) - set(roles))
    if unknown:
        raise ValueError(f"no role {unknown[0]!r} in this MASH (roles: {', '.join(roles)})")
    return [
        Credential(p.role, p.user, secrets.token_urlsafe(32) if passwords else None)
        for p in all_permissions(topology)
        if (only is None or p.role in only) and (rotate or p.user not in existing)
    ]


# The operator's `mash status` reads queue figures from the management API, which needs a tag.
_TAGS = {OPERATOR_ROLE: ["management"]}


def definitions(
    topology: Topology,
    credentials: Sequence[Credential],
    *,
    include_topology: bool = True,
    keep: Collection[str] = (),
) -> dict[str, Any]:
    """The definitions document RabbitMQ imports. The default vhost is left as it is.

    ``credentials`` are the users created or re-keyed; ``keep`` names users of this MASH that
    exist already and stay as they are (their password untouched) but whose permissions are
    brought up to date, e.g. the hub's when an agency is added.
    """
    vhost = vhost_of(topology.settings)
    users = {c.user: c for c in credentials}
    grants: list[Permissions] = [
        p for p in all_permissions(topology) if p.user in users or p.user in keep
    ]
    document: dict[str, Any] = {
        "users": [
            {
                "name": c.user,
                # An empty hash: no password will ever do; only a certificate logs in.
                "password_hash": password_hash(c.password) if c.password else "",
                "hashing_algorithm": HASHING,
                "tags": _TAGS.get(c.role, []),
                "limits": {},
            }
            for c in credentials
        ],
        "vhosts": [] if vhost == "/" else [{"name": vhost}],
        "permissions": [
            {
                "user": p.user,
                "vhost": vhost,
                "configure": p.configure,
                "write": p.write,
                "read": p.read,
            }
            for p in grants
        ],
        "topic_permissions": [
            {
                "user": p.user,
                "vhost": vhost,
                "exchange": t.exchange,
                "write": t.write,
                "read": t.read,
            }
            for p in grants
            for t in p.topics
        ],
        "exchanges": [],
        "queues": [],
        "bindings": [],
    }
    if include_topology:
        document["exchanges"] = [
            {
                "name": e.name,
                "vhost": vhost,
                "type": e.kind.value,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for e in topology.exchanges()
        ]
        document["queues"] = [
            {
                "name": q.name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": dict(q.arguments),
            }
            for q in topology.queues()
        ]
        document["bindings"] = [
            {
                "source": exchange,
                "vhost": vhost,
                "destination": q.name,
                "destination_type": "queue",
                "routing_key": key,
                "arguments": {},
            }
            for q in topology.queues()
            for exchange, key in q.bindings
        ]
    return document


def credentials_document(
    settings: BrokerSettings, credentials: Sequence[Credential]
) -> dict[str, Any]:
    """What each role's operator needs to connect: user, password and a ready URL."""
    base = URL(settings.amqp_url)
    users: dict[str, Any] = {}
    for c in credentials:
        entry: dict[str, Any] = {"user": c.user}
        if c.password is not None:
            entry["password"] = c.password
            entry["amqp_url"] = str(base.with_user(c.user).with_password(c.password))
        users[c.role] = entry
    return {
        "prefix": settings.prefix,
        "vhost": vhost_of(settings),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "note": "Give each role only its own entry. Shown once: the broker keeps only hashes.",
        "users": users,
    }


def write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only; never overwrite an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _rabbitmqctl(node: str | None, *args: str, stdin: str | None = None) -> None:
    command = shutil.which("rabbitmqctl")
    if command is None:
        raise ProvisionError("rabbitmqctl not found; run this on the broker's host")
    argv = [command, "-q", *(["-n", node] if node else []), *args]
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise ProvisionError(
            f"rabbitmqctl {args[0]} failed: {lines[0] if lines else done.returncode}"
        )


def existing_users(topology: Topology, *, node: str | None = None) -> set[str]:
    """This MASH's users that the broker already has."""
    command = shutil.which("rabbitmqctl")
    if command is None:
        raise ProvisionError("rabbitmqctl not found; run this on the broker's host")
    argv = [command, "-q", *(["-n", node] if node else []), "list_users", "--formatter", "json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise ProvisionError(f"rabbitmqctl list_users failed: {lines[0] if lines else ''}")
    try:
        listed = {str(entry["user"]) for entry in json.loads(done.stdout or "[]")}
    except (ValueError, KeyError, TypeError):
        raise ProvisionError("rabbitmqctl list_users: unexpected output") from None
    return listed & {p.user for p in all_permissions(topology)}


def provision(
    topology: Topology,
    credentials: Sequence[Credential],
    *,
    node: str | None = None,
    include_topology: bool = True,
    keep: Collection[str] = (),
) -> None:
    """Import the users, their permissions and (by default) the topology into the broker;
    users in ``keep`` keep their passwords and get their permissions brought up to date."""
    document = definitions(topology, credentials, include_topology=include_topology, keep=keep)
    # No file argument: rabbitmqctl reads the document from standard input.
    _rabbitmqctl(node, "import_definitions", "--format", "json", stdin=json.dumps(document))


def deprovision(topology: Topology, *, node: str | None = None) -> list[str]:
    """Delete every user of this MASH; returns the users that existed and are gone."""
    command = shutil.which("rabbitmqctl")
    if command is None:
        raise ProvisionError("rabbitmqctl not found; run this on the broker's host")
    users = [p.user for p in all_permissions(topology)]
    # rabbitmqctl starts an Erlang VM per call: deleting in parallel keeps this quick.
    running = {
        user: subprocess.Popen(
            [command, "-q", *(["-n", node] if node else []), "delete_user", user],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for user in users
    }
    deleted = []
    for user, process in running.items():
        out, err = process.communicate(timeout=120)
        if process.returncode == 0:
            deleted.append(user)
        elif "no_such_user" not in out + err and "does not exist" not in out + err:
            raise ProvisionError(f"rabbitmqctl delete_user {user} failed: {err.strip()}")
    return deleted
