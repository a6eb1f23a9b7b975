"""``mash broker``: the MASH's broker users, their permissions and its topology."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from broker.settings import BrokerSettings
from broker.topology import Topology

if TYPE_CHECKING:
    from broker.provision import Credential

__all__ = ["broker_app"]

broker_app = typer.Typer(
    help="Broker users (one per agency, hub, screening UI, restricted file) and permissions.",
    no_args_is_help=True,
)

Node = Annotated[
    str | None, typer.Option("--node", "-n", help="RabbitMQ node (default: the local node)")
]
Credentials = Annotated[
    str | None,
    typer.Option(
        "--credentials",
        help="New file (mode 0600) for the generated passwords, or '-' for standard output",
    ),
]
NoPasswords = Annotated[
    bool,
    typer.Option("--no-passwords", help="Users log in with client certificates only (EXTERNAL)"),
]
WithTopology = Annotated[
    bool,
    typer.Option("--topology/--no-topology", help="Include the exchanges, queues and bindings"),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _topology() -> Topology:
    try:
        topology = Topology(BrokerSettings())
        topology.roles()  # refuses an agency named like a hub role
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    return topology


def _check_destination(credentials: str | None, no_passwords: bool) -> None:
    if credentials is None and not no_passwords:
        raise _fail(
            "the new passwords would be lost: give --credentials FILE (or '-'), "
            "or --no-passwords for certificate-only users",
            2,
        )
    if credentials not in (None, "-") and Path(credentials).exists():
        raise _fail(f"{credentials} exists; credentials are written once, to a new file", 2)


def _hand_out(topology: Topology, credentials: str | None, creds: Sequence[Credential]) -> None:
    """Save or print the passwords; a file is written before the broker learns them, so a
    failure here never leaves users whose passwords nobody has."""
    from broker.provision import credentials_document, write_private

    if credentials is None:
        return
    text = json.dumps(credentials_document(topology.settings, creds), indent=2) + "\n"
    if credentials == "-":
        sys.stdout.write(text)
        return
    try:
        write_private(Path(credentials), text)
    except OSError as exc:
        raise _fail(f"cannot write {credentials}: {exc.strerror}") from None
    typer.echo(f"passwords written to {credentials} (mode 0600)", err=True)


def _forget(credentials: str | None) -> None:
    if credentials not in (None, "-"):
        with contextlib.suppress(OSError):
            Path(credentials).unlink()


Only = Annotated[
    list[str] | None,
    typer.Option(
        "--only",
        help="Create or re-key only this role's user (an agency, hub, screening, restricted,"
        " operator); repeat for more",
    ),
]
Rotate = Annotated[
    bool,
    typer.Option("--rotate", help="New passwords for existing users too (all, or --only's)"),
]


@broker_app.command("provision")
def provision_command(
    node: Node = None,
    credentials: Credentials = None,
    no_passwords: NoPasswords = False,
    topology_too: WithTopology = True,
    only: Only = None,
    rotate: Rotate = False,
) -> None:
    """Create this MASH's broker users with least-privilege permissions, and its topology, on
    the broker at hand (run on the broker's host). Users that exist keep their passwords and
    get their permissions brought up to date, so running processes keep working; --rotate
    issues new passwords."""
    from broker.provision import ProvisionError, existing_users, new_credentials, provision

    topology = _topology()
    try:
        existing = existing_users(topology, node=node)
    except ProvisionError as exc:
        raise _fail(str(exc)) from None
    try:
        creds = new_credentials(
            topology,
            passwords=not no_passwords,
            existing=existing,
            only=set(only) if only else None,
            rotate=rotate,
        )
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    keep = existing - {c.user for c in creds}
    if any(c.password for c in creds):
        _check_destination(credentials, no_passwords)
    elif credentials not in (None, "-"):
        typer.echo(f"no new passwords: {credentials} not written", err=True)
        credentials = None
    if credentials != "-":
        _hand_out(topology, credentials, creds)
    try:
        provision(topology, creds, node=node, include_topology=topology_too, keep=keep)
    except ProvisionError as exc:
        _forget(credentials)  # these passwords were never valid
        raise _fail(str(exc)) from None
    if credentials == "-":
        _hand_out(topology, credentials, creds)
    made = [c.user for c in creds if c.user not in existing]
    rekeyed = [c.user for c in creds if c.user in existing]
    summary = [
        f"created {', '.join(made)}" if made else "",
        f"re-keyed {', '.join(rekeyed)}" if rekeyed else "",
        f"unchanged (permissions brought up to date) {', '.join(sorted(keep))}" if keep else "",
    ]
    typer.echo(
        f"provisioned MASH {topology.prefix!r}: " + "; ".join(part for part in summary if part),
        err=True,
    )


@broker_app.command("definitions")
def definitions_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="definitions.json to write")],
    credentials: Credentials = None,
    no_passwords: NoPasswords = False,
    topology_too: WithTopology = True,
) -> None:
    """Write the users, permissions and topology as RabbitMQ definitions to import
    (rabbitmqctl import_definitions, or load_definitions in rabbitmq.conf)."""
    from broker.provision import definitions, new_credentials, write_private

    topology = _topology()
    _check_destination(credentials, no_passwords)
    if output.exists():
        raise _fail(f"{output} exists; choose a new file", 2)
    creds = new_credentials(topology, passwords=not no_passwords)
    document = definitions(topology, creds, include_topology=topology_too)
    try:
        # It holds password hashes: readable by its owner only, like the passwords.
        write_private(output, json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror}") from None
    _hand_out(topology, credentials, creds)
    typer.echo(f"definitions for {len(creds)} users written to {output}", err=True)


@broker_app.command("deprovision")
def deprovision_command(node: Node = None) -> None:
    """Delete this MASH's broker users (its queues are left for an operator to drain)."""
    from broker.provision import ProvisionError, deprovision

    try:
        deleted = deprovision(_topology(), node=node)
    except ProvisionError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"deleted {len(deleted)} users" + (": " + ", ".join(deleted) if deleted else ""))


@broker_app.command("permissions")
def permissions_command() -> None:
    """Show each broker user and what it may configure, write and read."""
    from broker.identities import all_permissions

    for p in all_permissions(_topology()):
        typer.echo(f"{p.user}  ({p.role})")
        typer.echo(f"  configure  {p.configure}")
        typer.echo(f"  write      {p.write}")
        typer.echo(f"  read       {p.read}")
        for t in p.topics:
            typer.echo(f"  topic      {t.exchange}: write {t.write}")
