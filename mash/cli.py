"""The ``mash`` command: run the hub or an adapter, submit and re-rate contacts, run the demo.

Start-up is kept cheap: ``mash --help`` and a mistyped command answer in a fraction of a
second because nothing heavy (aio-pika, fastavro, cryptography, pydantic-settings, the
adapters' entry points) is imported until a command that needs it runs. The command groups
that live in other modules are listed in :data:`_LAZY` with their one-line help and are
imported only when invoked; ``tests/integration/test_cli.py`` checks that list against the
real commands so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core
import typer.main

# Typer carries its own copy of click; the root group below extends Typer's, so it uses that.
from typer import _click as click

from mash.errors import MashError

if TYPE_CHECKING:
    from adapters.kit.agency import Agency


def _register_bench(holder: typer.Typer) -> None:
    from mash.bench_cli import bench

    holder.command()(bench)


def _register_ops(holder: typer.Typer) -> None:
    from mash import ops_cli

    ops_cli.register(holder)  # status, dlq, report, health


def _sub_app(module: str, attribute: str, name: str) -> Callable[[typer.Typer], None]:
    def register(holder: typer.Typer) -> None:
        import importlib

        holder.add_typer(getattr(importlib.import_module(module), attribute), name=name)

    return register


def _register_adapter_app(holder: typer.Typer) -> None:
    _register_adapters()
    holder.add_typer(adapter_app, name="adapter")


# Commands imported only when run: name -> (how to register it, its one-line help for the
# command list). The help must match the command's own (a test checks it).
_LAZY: dict[str, tuple[Callable[[typer.Typer], None], str]] = {
    "adapter": (_register_adapter_app, "Run, list or create agency adapters."),
    "status": (
        _register_ops,
        "Queues, open and overdue contacts by rating, oldest request per agency, dead letters.",
    ),
    "dlq": (_register_ops, "Dead letters: list, show, replay once fixed, purge."),
    "report": (
        _register_ops,
        "Per agency and rating: requests, median and p95 answer time, share of deadlines met.",
    ),
    "health": (
        _register_ops,
        "Exit 0 if the process at URL is ready (/readyz), 1 if not: for scripts and containers.",
    ),
    "broker": (
        _sub_app("mash.broker_cli", "broker_app", "broker"),
        "Broker users (one per agency, hub, screening UI, restricted file) and permissions.",
    ),
    "keys": (
        _sub_app("mash.security_cli", "keys_app", "keys"),
        "Manage the signing and restricted-file key registry.",
    ),
    "restricted": (
        _sub_app("mash.security_cli", "restricted_app", "restricted"),
        "Read the MASH restricted file (audited).",
    ),
    "audit": (
        _sub_app("mash.security_cli", "audit_app", "audit"),
        "Verify and read the tamper-evident audit log.",
    ),
    "schemas": (
        _sub_app("mash.schemas_cli", "schemas_app", "schemas"),
        "Check the Avro schemas against the last release; release a schema set.",
    ),
    "console": (
        _sub_app("mash.console_cli", "console_app", "console"),
        "The MASH console: the screening team's board, packets and decisions.",
    ),
    "bench": (
        _register_bench,
        "Measure mash-hub against raw aio-pika and FastStream on the real broker, then "
        "priority, scale and per-message cost; print every figure with its target.",
    ),
}


def load_command(name: str) -> click.Command:
    """The real command behind a lazily listed name (imports its module)."""
    holder = typer.Typer()
    _LAZY[name][0](holder)
    command = typer.main.get_group(holder).commands[name]
    return command


class _LazyGroup(typer.core.TyperGroup):
    """The root group: lists the lazy commands by name and help, imports one only to run it
    (or to show its own ``--help``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in _LAZY if n not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in _LAZY:
            return super().get_command(ctx, cmd_name)
        # Only the command list asks for a command without resolving it: a stand-in that
        # carries the help is enough there.
        return typer.core.TyperCommand(cmd_name, help=_LAZY[cmd_name][1])

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in _LAZY and args[0] not in self.commands:
            self.add_command(load_command(args[0]), args[0])
        return super().resolve_command(ctx, args)


app = typer.Typer(
    help="mash-hub: a secure message-broker hub for Multi-Agency Safeguarding Hubs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_LazyGroup,
)
contact_app = typer.Typer(help="Submit and re-rate contacts.", no_args_is_help=True)
adapter_app = typer.Typer(help="Run, list or create agency adapters.", no_args_is_help=True)
app.add_typer(contact_app, name="contact")

LogFormat = Annotated[str, typer.Option("--log-format", help="json or console")]


def fail(message: str, code: int = 1) -> typer.Exit:
    # Plain text: one line however narrow the terminal, and easy to grep in scripts.
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _seconds(value: float) -> float:
    # A negative, zero, infinite or NaN wait is a typo, not a request to hang or fail at once.
    if not 0 < value <= 86_400:
        raise typer.BadParameter("must be more than 0 and at most 86400 seconds")
    return value


Timeout = Annotated[float, typer.Option(help="Seconds to wait for the hub", callback=_seconds)]


def _run(service: Coroutine[Any, Any, None]) -> None:
    async def until_signalled() -> None:
        # SIGTERM (a container stop, a supervisor) and Ctrl-C both end the service through
        # its own shutdown: consumers cancelled, the last commit flushed, connections closed.
        task = asyncio.ensure_future(service)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(until_signalled())
    except OSError as exc:  # refused by the broker (a bad TLS file is a MashError: main says it)
        raise fail(str(exc)) from None


@app.command()
def hub(
    db: Annotated[Path | None, typer.Option(help="SQLite file (default MASH_DB_PATH)")] = None,
    new: Annotated[
        bool,
        typer.Option(
            "--new",
            help="Begin a new, empty database although this prefix's hub has run before"
            " (the file must not exist; references continue after the old ones)",
        ),
    ] = False,
    log_format: LogFormat = "json",
) -> None:
    """Run the hub: take contacts in, fan requests out, assemble packets, keep deadlines.

    Only one hub runs per prefix, and only on the database the prefix's hub last ran on:
    a second hub, or a missing or different database, is refused with the reason.
    """
    from broker.logs import configure_logging
    from hub.policy import BragPolicy
    from hub.service import HubService
    from hub.settings import HubSettings
    from telemetry.otel import configure_tracing

    configure_logging(json=log_format == "json")
    configure_tracing("mash-hub")
    overrides: dict[str, Any] = {"new_database": True} if new else {}
    if db is not None:
        overrides["db_path"] = db
    settings = HubSettings(**overrides)
    try:
        policy = BragPolicy.from_env()
        service = HubService(settings, policy)
    except ValueError as exc:  # a bad BRAG window or calendar (other MashErrors: main says them)
        raise fail(str(exc)) from None
    _run(service.run_forever())


def _adapter_runner(agency: str) -> None:
    from adapters.registry import data_variable

    variable = data_variable(agency)  # MASH_POLICE_DATA; the source's beside it
    stem = variable.removesuffix("_DATA")
    # Defaults, not Annotated options: annotations are strings evaluated in the module's
    # globals, where this agency's variable names do not exist.
    data_option: Any = typer.Option(
        None,
        "--data",
        help="Folder of the agency's own CSV export (default: the built-in fictional one)",
        envvar=variable,
        show_envvar=True,
    )
    source_option: Any = typer.Option(
        "csv",
        "--source",
        help="Where the records are: csv (a folder of exports, --data) or sql (the agency's "
        "database, --config)",
        envvar=f"{stem}_SOURCE",
        show_envvar=True,
    )
    config_option: Any = typer.Option(
        None,
        "--config",
        help="With --source sql: the TOML file naming the database and its queries",
        envvar=f"{stem}_SQL_CONFIG",
        show_envvar=True,
    )

    def run(
        data: Path | None = data_option,
        source: str = source_option,
        config: Path | None = config_option,
        answer_delay: Annotated[
            float,
            typer.Option(
                help="Seconds to wait before answering (demos, fault tests)",
                envvar="MASH_ADAPTER_ANSWER_DELAY",
            ),
        ] = 0.0,
        log_format: LogFormat = "json",
    ) -> None:
        from adapters.kit.service import AdapterService
        from broker.logs import configure_logging
        from broker.settings import BrokerSettings
        from telemetry.otel import configure_tracing

        configure_logging(json=log_format == "json")
        configure_tracing(f"mash-adapter-{agency}")
        records = _load_records(agency, data, source, config)
        service = AdapterService(records, BrokerSettings(), answer_delay=answer_delay)
        _run(service.run_forever())

    run.__doc__ = f"Run the {agency} adapter against the broker."
    adapter_app.command(agency)(run)


def _load_records(
    agency: str,
    data: Path | None,
    source: str = "csv",
    config: Path | None = None,
) -> Agency:
    """The agency's records from ``data`` (or its built-in export), or from its database
    (``--source sql --config FILE``), or every problem with them, one line each, and exit 1:
    an IT team fixes them all before the next start."""
    import inspect

    from adapters.kit.matching import ExportError
    from adapters.kit.sources import reads_sources
    from adapters.registry import load_agency

    factory = load_agency(agency)
    argument: Any = data
    if source not in ("csv", "sql"):
        raise fail(f"--source must be csv or sql, not {source!r}")
    if source == "sql":
        if data is not None:
            raise fail("--data is the folder of a CSV export: with --source sql, use --config")
        if config is None:
            raise fail("--source sql needs --config FILE (the database and its queries)")
        if not reads_sources(factory):
            raise fail(f"the {agency} adapter does not read a database (--source sql)")
        from adapters.kit.sources.sql import SqlSource

        try:
            argument = SqlSource.from_file(config)
        except ExportError as exc:
            for problem in exc.problems:
                typer.echo(f"error: {agency} database: {problem}", err=True)
            raise typer.Exit(1) from None
    elif config is not None:
        raise fail("--config is for --source sql; a CSV export is named with --data")
    elif data is not None:
        try:
            inspect.signature(factory).bind(data)
        except TypeError:
            raise fail(f"the {agency} adapter does not read a data folder (--data)") from None
        except ValueError:
            pass  # no signature to inspect (a builtin): let the call say
    what = "database" if source == "sql" else "export"
    try:
        return factory(argument) if argument is not None else factory()
    except ExportError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {agency} {what}: {problem}", err=True)
        raise typer.Exit(1) from None
    except (ValueError, OSError) as exc:
        raise fail(f"{agency} {what}: {exc}") from None


def _register_adapters() -> None:
    # One subcommand per installed adapter, so 'mash adapter --help' lists them. Reading the
    # entry points imports every adapter package: done only when 'mash adapter' runs.
    from adapters.registry import installed_agencies

    known = {info.name for info in adapter_app.registered_commands}
    for agency in sorted(installed_agencies()):
        if agency not in ("list", "new") and agency not in known:
            _adapter_runner(agency)


@adapter_app.command("list")
def adapter_list() -> None:
    """List the installed agency adapters and the package each comes from."""
    from adapters.registry import installed_adapters

    adapters = installed_adapters()
    name_width = max((len(a.name) for a in adapters), default=0) + 2
    target_width = max((len(a.target) for a in adapters), default=0) + 2
    for a in adapters:
        line = f"{a.name:<{name_width}}{a.target:<{target_width}}{a.distribution} {a.version}"
        typer.echo(line.rstrip())


@adapter_app.command("new")
def adapter_new(
    name: Annotated[str, typer.Argument(help="The agency's name, e.g. youth_justice")],
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to create the package's folder")
    ] = Path("."),
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="csv: records from CSV exports; sql: also a sample configuration for "
            "reading the agency's database, and its test",
        ),
    ] = "csv",
) -> None:
    """Create a new agency adapter package: lookup, findings schema, fictional data, tests."""
    from adapters.kit.scaffold import ScaffoldError, new_adapter
    from adapters.registry import installed_agencies

    try:
        target = new_adapter(name, directory, installed=installed_agencies(), source=source)
    except ScaffoldError as exc:
        raise fail(str(exc), 2) from None
    except OSError as exc:
        raise fail(f"cannot write to {directory}: {exc.strerror or exc}") from None
    typer.echo(f"created {target}")
    typer.echo(f"next: pip install -e {target}, then pytest {target} (see its README.md)")


@contact_app.command("submit")
def contact_submit(
    file: Annotated[Path, typer.Argument(help="A contact as JSON (see examples/contacts/)")],
    timeout: Timeout = 30.0,
) -> None:
    """Validate a contact file, send it to the hub and print its MASH reference."""
    from broker.connection import BrokerConfigError
    from broker.settings import BrokerSettings
    from hub.client import HubClient, HubDidNotAnswer
    from hub.intake import load_contact_file
    from telemetry.otel import configure_tracing

    contact = load_contact_file(file)  # a bad file is a ContactFileError: main says it, exit 2
    configure_tracing("mash-cli")  # the contact's trace starts here, at its sending
    client = HubClient(BrokerSettings())

    async def submit() -> None:
        async with client:
            reply = await client.submit(contact, timeout)
        if not reply.ok:
            raise fail(f"the hub refused the contact: {reply.error}")
        deadline = reply.deadline.isoformat() if reply.deadline else "?"
        typer.echo(reply.contact_ref)
        typer.echo(f"rated {contact.brag.value}; answers due by {deadline}", err=True)

    try:
        asyncio.run(submit())
    except HubDidNotAnswer:
        # The contact is safely queued; the hub gives it a reference when it takes it. Print
        # what identifies it now, on stdout as a reference would be, so a script keeps it.
        typer.echo(contact.contact_id)
        raise fail(
            f"queued as contact {contact.contact_id}, but no hub answered within "
            f"{timeout:g}s; is 'mash hub' running? Submit the same file again later to get "
            "its MASH reference (it is not queued twice)",
            3,
        ) from None
    except (OSError, BrokerConfigError) as exc:
        raise fail(f"cannot reach the broker: {exc}") from None


@contact_app.command("rerate")
def contact_rerate(
    ref: Annotated[str, typer.Argument(help="MASH reference, e.g. MASH-2026-000042")],
    rating: Annotated[str, typer.Argument(help="blue, red, amber or green")],
    timeout: Timeout = 30.0,
) -> None:
    """Change a contact's BRAG rating; the deadline is recomputed from its arrival time."""
    from broker.connection import BrokerConfigError
    from broker.settings import BrokerSettings
    from hub.client import HubClient, HubDidNotAnswer
    from schemas.enums import Brag

    try:
        brag = Brag(rating.upper())
    except ValueError:
        raise fail(f"unknown rating {rating!r}: use blue, red, amber or green", 2) from None

    client = HubClient(BrokerSettings())

    async def rerate() -> None:
        async with client:
            reply = await client.rerate(ref, brag, timeout)
        if not reply.ok:
            raise fail(reply.error or "the hub refused the re-rating")
        deadline = reply.deadline.isoformat() if reply.deadline else "?"
        typer.echo(f"{reply.contact_ref} is now {brag.value}; answers due by {deadline}")

    try:
        asyncio.run(rerate())
    except HubDidNotAnswer:
        raise fail(f"no hub answered within {timeout:g}s; is 'mash hub' running?", 3) from None
    except (OSError, BrokerConfigError) as exc:
        raise fail(f"cannot reach the broker: {exc}") from None


@app.command()
def demo(
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every packet", callback=_seconds)
    ] = 120.0,
    keep: Annotated[bool, typer.Option(help="Keep the demo's queues and database")] = False,
    exit_when_done: Annotated[
        bool,
        typer.Option(help="Exit once every packet has arrived, without the console (tests)"),
    ] = False,
    console_port: Annotated[int, typer.Option(help="Port of the demo's MASH console")] = 8400,
) -> None:
    """Run the hub, five adapters and the MASH console, submit the seeds' case studies, print
    the packets, and keep running for the console until interrupted."""
    from rich.console import Console

    from mash.demo import run_demo

    async def until_signalled() -> int:
        # Ctrl-C is how the demo is meant to end, and SIGTERM (a terminal closed, `timeout`,
        # a supervisor) ends it the same way: through its own clean-up, which stops the
        # processes it started and deletes every queue and exchange it declared.
        task = asyncio.ensure_future(
            run_demo(
                timeout=timeout,
                keep=keep,
                console=Console(),
                exit_when_done=exit_when_done,
                console_port=console_port,
            )
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            return 0

    raise typer.Exit(asyncio.run(until_signalled()))


@app.command()
def asyncapi(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")
    ] = None,
) -> None:
    """Write the AsyncAPI 3.0 description of every channel and message (YAML)."""
    from broker.asyncapi import render

    text = render()
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc}") from None
    typer.echo(f"wrote {output}")


def main() -> None:
    try:
        # Not standalone: usage errors come back here to be printed as one line, like every
        # other bad input, instead of click's framed box.
        code = app(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        if exc.format_message():  # rich has printed the help already, while building it
            exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # a bad option, argument or command name
        typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except MashError as exc:
        # A failure mash-hub knows and a command did not say itself (an unusable database,
        # key registry or setting: a bad setting exits 2): one line, never a traceback.
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
