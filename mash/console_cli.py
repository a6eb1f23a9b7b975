"""``mash console``: serve the screening team's web console; ``mash console user add``."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from mash.errors import MashError

__all__ = ["console_app"]

console_app = typer.Typer(
    help="The MASH console: the screening team's board, packets and decisions.\n\n"
    "Without a command, serve it (http://127.0.0.1:8400 by default) until interrupted.",
    invoke_without_command=True,
)
user_app = typer.Typer(help="Console accounts.", no_args_is_help=True)
console_app.add_typer(user_app, name="user")

_ROLES = "screening-officer, mash-manager, hub-operator or auditor"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@console_app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address (default MASH_CONSOLE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default MASH_CONSOLE_PORT, 8400)")] = None,
    db: Annotated[Path | None, typer.Option(help="Its store (default MASH_CONSOLE_DB)")] = None,
) -> None:
    """Serve the console (http://127.0.0.1:8400 by default) until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from broker.logs import configure_logging
    from broker.settings import SettingsInvalid
    from console.app import create_app
    from console.feed import check_broker
    from console.settings import ConsoleSettings
    from telemetry.otel import configure_tracing

    configure_logging(json=True)
    configure_tracing("mash-console")
    try:
        settings = ConsoleSettings()
    except SettingsInvalid as exc:
        raise _fail(str(exc), 2) from None
    updates = {
        k: v
        for k, v in (("console_host", host), ("console_port", port), ("console_db", db))
        if v is not None
    }
    settings = settings.model_copy(update=updates)
    try:
        asyncio.run(check_broker(settings))
        app = create_app(settings)
    except MashError as exc:  # the console or its keys cannot be used
        raise _fail(str(exc)) from None
    if _port_taken(settings.console_host, settings.console_port):
        raise _fail(f"port {settings.console_port} on {settings.console_host} is in use")
    uvicorn.run(
        app,
        host=settings.console_host,
        port=settings.console_port,
        log_level="warning",
        access_log=False,  # paths carry contact references, not for every log
        # Open live boards would otherwise hold a shutdown until every browser goes away.
        timeout_graceful_shutdown=3,
    )


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The account's user name")],
    role: Annotated[str, typer.Option("--role", help=_ROLES)],
    db: Annotated[Path | None, typer.Option(help="The console's store (MASH_CONSOLE_DB)")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Add an account (or set its role and password). The password is asked for, read from
    standard input with --password-stdin, or taken from MASH_CONSOLE_PASSWORD."""
    from console.auth import Accounts, Role
    from console.settings import ConsoleSettings
    from console.store import ConsoleStore

    try:
        chosen = Role(role)
    except ValueError:
        raise _fail(f"unknown role {role!r}: choose {_ROLES}", 2) from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.environ.get("MASH_CONSOLE_PASSWORD"):
        password = os.environ["MASH_CONSOLE_PASSWORD"]
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    from broker.settings import SettingsInvalid

    try:
        store = ConsoleStore(db or ConsoleSettings().console_db)
    except SettingsInvalid as exc:
        raise _fail(str(exc), 2) from None
    try:
        Accounts(store).add(name, chosen, password, datetime.now(UTC))
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    finally:
        store.close()
    typer.echo(f"{name} can sign in as {chosen.label.lower()}")
