"""Operator commands: ``mash status``, ``mash dlq ...``, ``mash report`` and ``mash health``.

Registered on the main ``mash`` app by :func:`register`. Each reads the hub's database
read-only and the broker through an ordinary AMQP connection; only ``dlq replay`` and ``dlq
purge`` change anything, and both are recorded (see :mod:`ops.deadletters`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import urlsplit

import typer
from rich.console import Console

from hub.settings import HubSettings

if TYPE_CHECKING:
    from ops.deadletters import DeadLetter, DeadLetters

__all__ = ["dlq_app", "register"]

dlq_app = typer.Typer(
    help="Dead letters: list, show, replay once fixed, purge.", no_args_is_help=True
)

T = TypeVar("T")

Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout")]
Db = Annotated[Path | None, typer.Option("--db", help="Hub database (default MASH_DB_PATH)")]
QueueOpt = Annotated[
    str | None,
    typer.Option("--queue", "-q", help="Only this work queue, e.g. hub.answers.routine"),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    from mash.cli import fail

    return fail(message, code)


def _settings(db: Path | None = None) -> HubSettings:
    return HubSettings() if db is None else HubSettings(db_path=db)


def _console() -> Console:
    console = Console(highlight=False)
    # Piped or captured output is not wrapped at rich's default of 80 columns.
    return console if console.is_terminal else Console(highlight=False, width=160)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=None, sort_keys=False))


def _quiet_amqp() -> None:
    # aiormq logs a failed connection itself; the command says it in one line instead.
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    logging.getLogger("aio_pika").setLevel(logging.CRITICAL)


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    from broker.publisher import PublishFailed
    from ops.connection import BrokerUnreachable

    _quiet_amqp()
    try:
        return asyncio.run(work())
    except BrokerUnreachable as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot reach the broker: {exc}") from None
    except PublishFailed as exc:
        raise _fail(f"the broker did not accept a message: {exc}") from None


# Status ---------------------------------------------------------------------------------
def status(
    as_json: Json = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes")] = 2.0,
    limit: Annotated[int, typer.Option(help="Contacts listed per section")] = 50,
    db: Db = None,
) -> None:
    """Queues, open and overdue contacts by rating, oldest request per agency, dead letters."""
    from ops.status import gather_status, render_status

    settings = _settings(db)
    console = _console()
    _quiet_amqp()
    # Ctrl-C ends a watch after the snapshot in hand, wherever it lands. Left to asyncio.run,
    # an interrupt during a snapshot cancels it, and a cancellation that arrives as a
    # connection completes can be lost (the watch then never ends: seen under load).
    interrupted = threading.Event()
    if watch:
        signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    while True:
        snapshot = asyncio.run(gather_status(settings, limit=limit))
        if as_json:
            _print_json(snapshot.to_json())
        else:
            if watch and console.is_terminal:
                console.clear()
            render_status(snapshot, console)
        if not watch or interrupted.wait(interval):
            break
    problems = [p for p in (snapshot.broker_error, snapshot.database_error) if p]
    if problems:
        raise _fail("; ".join(problems))


# Report ---------------------------------------------------------------------------------
def report(
    since: Annotated[str, typer.Option(help="Period: 7d, 24h, 90m, 2w, or a date")] = "7d",
    as_json: Json = False,
    exchanges: Annotated[
        bool, typer.Option("--exchanges", help="List every exchange instead of the summary")
    ] = False,
    db: Db = None,
) -> None:
    """Per agency and rating: requests, median and p95 answer time, share of deadlines met."""
    from hub.store import StoreError
    from hub.views import exchanges as read_exchanges
    from hub.views import open_readonly
    from ops.report import parse_since, render_report, summarise

    now = datetime.now(UTC)
    try:
        start = parse_since(since, now)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    try:
        connection = open_readonly(_settings(db).db_path)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    try:
        record = read_exchanges(connection, start, now)
    finally:
        connection.close()
    if exchanges:
        rows = [
            {
                "request_id": e.request_id,
                "ref": e.ref,
                "agency": e.agency,
                "sent_at": e.sent_at.isoformat(),
                "sent_brag": e.sent_brag.value if e.sent_brag else None,
                "brag": e.brag.value,
                "deadline": e.deadline.isoformat(),
                "answered_at": e.answered_at.isoformat() if e.answered_at else None,
                "answer_seconds": e.answer_seconds,
                "outcome": e.outcome,
                "status": e.status,
            }
            for e in record
        ]
        if as_json:
            _print_json(rows)
        elif not rows:
            typer.echo("No requests were sent in this period.")
        else:
            # Tab-separated with a header row naming each column, as the JSON keys do.
            typer.echo("\t".join(rows[0]))
            for row in rows:
                typer.echo("\t".join("" if v is None else str(v) for v in row.values()))
        return
    summary = summarise(record)
    if as_json:
        _print_json(
            {
                "since": start.isoformat(),
                "until": now.isoformat(),
                "rows": [r.to_json() for r in summary],
            }
        )
    else:
        render_report(summary, start, now, _console())


# Health ---------------------------------------------------------------------------------
def health(
    url: Annotated[
        str | None,
        typer.Argument(help="e.g. http://127.0.0.1:9100 (default: this host, MASH_METRICS_PORT)"),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait")] = 3.0,
) -> None:
    """Exit 0 if the process at URL is ready (/readyz), 1 if not: for scripts and containers."""
    if url is None:
        port = _settings().metrics_port
        if not port:
            raise _fail("give a URL, or set MASH_METRICS_PORT to this host's process's port", 2)
        url = f"http://127.0.0.1:{port}"
    if urlsplit(url).path in ("", "/"):
        url = url.rstrip("/") + "/readyz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        failed = [name for name, ok in body.get("checks", {}).items() if not ok]
        if body.get("reason"):  # still starting: say why (the broker not answering, say)
            raise _fail(f"{url}: not ready: {body['reason']}") from None
        raise _fail(f"{url}: not ready ({', '.join(failed) or exc.code})") from None
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot reach {url}: {exc}") from None
    checks = ", ".join(f"{name} ok" for name in body.get("checks", {}))
    typer.echo(
        f"{body.get('component', url)}: {body.get('status', 'ok')}"
        + (f" ({checks})" if checks else "")
    )


# Dead letters ---------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def _dead_letters(settings: HubSettings) -> AsyncIterator[DeadLetters]:
    from broker.logs import configure_logging
    from broker.topology import Topology
    from hub.store import HubStore
    from ops.connection import operator_connection
    from ops.deadletters import DeadLetters

    # Replays and purges log a structured line each (JSON, on stderr), and go in the hub's
    # audit log when its database is on this machine.
    configure_logging(json=True)
    # MASH_TLS_* as every process uses them: a certificate-only broker is reachable too.
    store = HubStore(settings.db_path) if settings.db_path.exists() else None
    try:
        connection = await operator_connection(settings, "mash-dlq")
    except BaseException:
        if store is not None:
            store.close()
        raise
    try:
        async with connection:
            yield DeadLetters(Topology(settings), connection, store)
    finally:
        if store is not None:
            store.close()


def _short(settings: HubSettings, name: str) -> str:
    return name.removeprefix(f"{settings.prefix}.")


@dlq_app.command("list")
def dlq_list(queue: QueueOpt = None, as_json: Json = False) -> None:
    """Every dead letter: message id, source queue, reason and when."""
    from ops.deadletters import NotFound

    settings = _settings()

    async def work() -> list[DeadLetter]:
        async with _dead_letters(settings) as letters:
            return await letters.letters(queue)

    try:
        found = _run(work)
    except NotFound as exc:
        raise _fail(str(exc), 2) from None
    if as_json:
        _print_json([letter.summary() for letter in found])
        return
    if not found:
        typer.echo("No dead letters.")
        return
    width = max(len("message id"), *(len(letter.message_id) for letter in found))
    typer.echo(f"{'message id':<{width}}  {'source queue':<28} {'reason':<22} dead-lettered UTC")
    for letter in found:
        when = letter.dead_at.strftime("%Y-%m-%d %H:%M:%S") if letter.dead_at else "-"
        typer.echo(
            f"{letter.message_id or '-':<{width}}  {_short(settings, letter.source_queue):<28} "
            f"{letter.reason:<22} {when}"
        )


@dlq_app.command("show")
def dlq_show(
    message_id: Annotated[str, typer.Argument(help="The message id 'mash dlq list' shows")],
    queue: QueueOpt = None,
    as_json: Json = False,
) -> None:
    """One dead letter's headers and reason. The body is child data and is never shown."""
    from ops.deadletters import NotFound

    settings = _settings()

    async def work() -> list[DeadLetter]:
        async with _dead_letters(settings) as letters:
            return await letters.show(message_id, queue)

    try:
        found = _run(work)
    except NotFound as exc:
        raise _fail(str(exc)) from None
    if as_json:
        _print_json([letter.summary() for letter in found])
        return
    for letter in found:
        summary = letter.summary()
        headers = summary.pop("headers")
        for key, value in summary.items():
            typer.echo(f"{key + ':':<14}{'' if value is None else value}")
        typer.echo("headers:")
        for key, value in sorted(headers.items()):
            typer.echo(f"  {key}: {json.dumps(value, default=str)}")


@dlq_app.command("replay")
def dlq_replay(
    message_ids: Annotated[list[str] | None, typer.Argument(help="Message ids to replay")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead letter")] = False,
    queue: QueueOpt = None,
) -> None:
    """Send dead letters back through their normal path (same message id); recorded."""
    from broker.publisher import Publisher
    from ops.deadletters import NotFound, Replayed, select_all, select_ids

    ids = list(message_ids or [])
    if bool(ids) == replay_all:
        raise _fail("give message ids to replay, or --all", 2)
    settings = _settings()

    async def work() -> list[Replayed]:
        async with _dead_letters(settings) as letters:
            publisher = Publisher(letters.connection, attempts=settings.publish_attempts)
            chosen = select_all() if replay_all else select_ids(ids)
            return await letters.replay(publisher, chosen, queue)

    try:
        replayed = _run(work)
    except NotFound as exc:
        raise _fail(str(exc), 2) from None
    for item in replayed:
        typer.echo(
            f"replayed {item.letter.message_id} from {_short(settings, item.letter.dead_queue)}"
            f" to {_short(settings, item.exchange)} '{item.routing_key}'"
        )
    missing = sorted(set(ids) - {item.letter.message_id for item in replayed})
    if missing:
        raise _fail(f"no dead letter with message id {', '.join(missing)}")
    if replay_all and not replayed:
        typer.echo("No dead letters to replay.")


@dlq_app.command("purge")
def dlq_purge(
    queue: QueueOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Delete dead letters for good (all, or one queue's), after asking; recorded."""
    from broker.publisher import Publisher
    from ops.deadletters import NotFound

    settings = _settings()

    async def counts() -> dict[str, int]:
        async with _dead_letters(settings) as letters:
            chosen = set(letters.dead_queues(queue))
            return {q: n for q, n in (await letters.counts()).items() if q in chosen and n}

    async def purge() -> dict[str, int]:
        async with _dead_letters(settings) as letters:
            publisher = Publisher(letters.connection, attempts=settings.publish_attempts)
            return await letters.purge(publisher, queue)

    try:
        waiting = _run(counts)
    except NotFound as exc:
        raise _fail(str(exc), 2) from None
    total = sum(waiting.values())
    if not total:
        typer.echo("No dead letters to purge.")
        return
    where = ", ".join(f"{_short(settings, q)} ({n})" for q, n in waiting.items())
    if not yes:
        try:
            confirmed = typer.confirm(f"Delete {total} dead letters from {where} for good?")
        except typer.Abort:
            confirmed = False
        if not confirmed:
            raise _fail("purge cancelled; nothing deleted")
    purged = _run(purge)
    typer.echo(f"purged {sum(purged.values())} dead letters")


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(report)
    app.command()(health)
    app.add_typer(dlq_app, name="dlq")
