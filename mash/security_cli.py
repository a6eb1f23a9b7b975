"""``mash keys``, ``mash restricted`` and ``mash audit``: the key registry, the restricted
file and the audit log, from the shell."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from rich.console import Console

from broker.keyring import (
    RESTRICTED_OWNER,
    Keyring,
    KeyringError,
    ensure_keys,
    export_holder,
    generate_key,
    holder_dir,
)
from broker.settings import BrokerSettings
from broker.signing import OPERATOR
from hub import audit
from hub.settings import HubSettings
from hub.store import HubStore, StoreError
from mash.errors import MashError

__all__ = ["audit_app", "keys_app", "restricted_app"]

keys_app = typer.Typer(
    help="Manage the signing and restricted-file key registry.", no_args_is_help=True
)
restricted_app = typer.Typer(help="Read the MASH restricted file (audited).", no_args_is_help=True)
audit_app = typer.Typer(help="Verify and read the tamper-evident audit log.", no_args_is_help=True)

out = Console()


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _keyring(settings: BrokerSettings, *, create: bool = False) -> Keyring:
    if create and not settings.keyring.exists():
        return Keyring(settings.keyring)
    try:
        return Keyring.load(settings.keyring)
    except KeyringError as exc:
        raise _fail(str(exc)) from None


@keys_app.command("init")
def keys_init() -> None:
    """Create keys for the hub, the operator, every agency and the restricted file
    (skipping any that already have an active key); each holder's in its own folder."""
    settings = BrokerSettings()
    ring = _keyring(settings, create=True)
    made = ensure_keys(
        ring,
        settings.key_dir,
        ["hub", OPERATOR, *settings.agencies],
        restricted_dir=settings.restricted_key_dir,
    )
    for entry in made:
        typer.echo(f"created {entry.key_id} ({entry.purpose})")
    ring.save()
    typer.echo(
        f"{len(made)} keys created; registry {settings.keyring}, private keys in "
        f"{settings.key_dir}/<holder>/, the restricted file's in {settings.restricted_key_dir}"
    )
    typer.echo(
        "hand each holder its own keys: mash keys export-holder HOLDER DIR --remove "
        "(the restricted file's go to its keeper only; the hub must never hold them)"
    )


@keys_app.command("generate")
def keys_generate(
    owner: Annotated[str, typer.Argument(help="hub, operator, an agency, or restricted-file")],
    purpose: Annotated[str, typer.Option(help="signing or restricted")] = "signing",
) -> None:
    """Generate a new key for an owner; running processes use the newest active key."""
    if purpose not in ("signing", "restricted"):
        raise _fail(f"unknown purpose {purpose!r}: use signing or restricted", 2)
    if (purpose == "restricted") != (owner == RESTRICTED_OWNER):
        raise _fail(f"restricted keys belong to {RESTRICTED_OWNER}; signing keys to senders", 2)
    settings = BrokerSettings()
    ring = _keyring(settings, create=True)
    entry, path = generate_key(
        ring,
        settings.key_dir,
        owner,
        "signing" if purpose == "signing" else "restricted",
        folder=settings.restricted_key_dir if owner == RESTRICTED_OWNER else None,
    )
    ring.save()
    typer.echo(f"created {entry.key_id}; private key {path}")


@keys_app.command("list")
def keys_list() -> None:
    """List every key in the registry."""
    # Plain lines, never cut to the terminal's width: `export` and `retire` need the key ids
    # exactly as shown, and scripts read them.
    rows = [
        (e.key_id, e.owner, e.purpose, e.status, e.created_at[:19])
        for e in _keyring(BrokerSettings()).entries()
    ]
    header = ("KEY ID", "OWNER", "PURPOSE", "STATUS", "CREATED")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


@keys_app.command("export")
def keys_export(key_id: Annotated[str, typer.Argument(help="The key to export")]) -> None:
    """Print a key's public half as PEM, to give to another party."""
    entry = _keyring(BrokerSettings()).get(key_id)
    if entry is None:
        raise _fail(f"no key {key_id} in the registry")
    public = entry.ed25519() if entry.purpose == "signing" else entry.x25519()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    typer.echo(pem.decode("ascii"), nl=False)


@keys_app.command("retire")
def keys_retire(key_id: Annotated[str, typer.Argument(help="The key to retire")]) -> None:
    """Retire a key: messages signed with it are refused from now on; a retired
    restricted-file key still decrypts what was sealed for it."""
    settings = BrokerSettings()
    ring = _keyring(settings)
    try:
        entry = ring.retire(key_id)
    except KeyringError as exc:
        raise _fail(str(exc)) from None
    ring.save()
    typer.echo(f"retired {entry.key_id} ({entry.owner}, {entry.purpose})")


@keys_app.command("export-holder")
def keys_export_holder(
    holder: Annotated[str, typer.Argument(help="hub, operator, an agency, or restricted-file")],
    destination: Annotated[Path, typer.Argument(help="A new folder to write the keys to")],
    remove: Annotated[
        bool, typer.Option("--remove", help="Delete this machine's copies once written")
    ] = False,
) -> None:
    """Write one holder's private keys and the public registry to a new folder (mode 0700),
    to hand over; the holder sets MASH_KEYRING and MASH_KEY_DIR (or, for the restricted
    file, MASH_RESTRICTED_KEY_DIR) as printed."""
    settings = BrokerSettings()
    ring = _keyring(settings)
    source = (
        settings.restricted_key_dir
        if holder == RESTRICTED_OWNER
        else holder_dir(settings.key_dir, holder)
    )
    try:
        written = export_holder(ring, holder, source, destination, remove=remove)
    except OSError as exc:  # a KeyringError goes on to mash's main, which says it
        raise _fail(str(exc)) from None
    for path in written:
        typer.echo(f"wrote {path}")
    folder_variable = (
        f"MASH_RESTRICTED_KEY_DIR={destination / holder}"
        if holder == RESTRICTED_OWNER
        else f"MASH_KEY_DIR={destination}"
    )
    typer.echo(f"for {holder}: MASH_KEYRING={destination / 'keyring.json'} {folder_variable}")
    if remove:
        typer.echo(f"removed {len(written)} private key(s) of {holder} from {source}")


def _store() -> HubStore:
    settings = HubSettings()
    if not settings.db_path.exists():
        raise _fail(f"no hub database at {settings.db_path} (set MASH_DB_PATH)")
    try:
        return HubStore(settings.db_path)
    except StoreError as exc:
        raise _fail(str(exc)) from None


@restricted_app.command("receive")
def restricted_receive(
    log_format: Annotated[str, typer.Option(help="json or console")] = "json",
) -> None:
    """Run the keeper of the restricted file: store every sealed record the hub forwards
    (MASH_RESTRICTED_STORE), each acked only once it is written."""
    from broker.logs import configure_logging
    from restricted.keeper import Keeper, KeeperSettings
    from telemetry.otel import configure_tracing

    configure_logging(json=log_format == "json")
    configure_tracing("mash-restricted")
    try:
        keeper = Keeper(KeeperSettings())
    except MashError as exc:  # its keys, its store or its TLS settings
        raise _fail(str(exc)) from None

    async def until_signalled() -> None:
        task = asyncio.ensure_future(keeper.run_forever())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(until_signalled())
    except Exception as exc:  # a refused connection or queue: one line, never a traceback
        raise _fail(str(exc) or type(exc).__name__) from None


@restricted_app.command("read")
def restricted_read(
    ref: Annotated[str, typer.Argument(help="MASH reference, e.g. MASH-2026-000042")],
) -> None:
    """Decrypt and show a contact's restricted information from the keeper's store, with the
    restricted-file key; every read is audited with the account that ran it."""
    from restricted.keeper import KeeperSettings
    from restricted.reader import open_restricted, reader_identity
    from restricted.store import KeeperStore

    settings = KeeperSettings()
    try:
        store = KeeperStore(settings.restricted_store, create=False)
        opened = open_restricted(store, settings.restricted_key_dir, ref, reader_identity())
    except MashError as exc:
        raise _fail(str(exc)) from None
    for record in opened:
        out.print(f"[bold]{record.reference}[/] from {record.agency} (sealed with {record.key_id})")
        for item in record.findings.items:
            subjects = f" [{', '.join(item.subject_ids)}]" if item.subject_ids else ""
            out.print(f"  • {item.category}{subjects}: {item.summary}", highlight=False)


@restricted_app.command("log")
def restricted_log(
    ref: Annotated[str, typer.Argument(help="MASH reference")],
) -> None:
    """What the restricted file received for a contact and who read it, and when."""
    from restricted.keeper import KeeperSettings
    from restricted.store import KeeperStore, KeeperStoreError

    try:
        store = KeeperStore(KeeperSettings().restricted_store, create=False)
    except KeeperStoreError as exc:
        raise _fail(str(exc)) from None
    _print_entries(audit.entries(store.connection, ref), ref)


@audit_app.command("verify")
def audit_verify(
    expect: Annotated[
        list[str] | None,
        typer.Option(help="A head hash recorded earlier, off the hub (repeatable)"),
    ] = None,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option(help="A file of the hub's signed checkpoints, kept off the hub (repeatable)"),
    ] = None,
) -> None:
    """Check the hash chain, and against checkpoints and head hashes kept off the hub; exit 1
    naming the first altered, removed or reordered entry, or the truncation."""
    store = _store()
    believed: list[audit.Checkpoint] = []
    if checkpoints:
        ring = _keyring(BrokerSettings())
        try:
            for path in checkpoints:
                for checkpoint in audit.read_checkpoints(path):
                    audit.check_signature(checkpoint, ring)
                    believed.append(checkpoint)
        except audit.CheckpointError as exc:
            raise _fail(str(exc)) from None
    problem = audit.verify_against(store.connection, believed, expect or [])
    if problem is not None:
        raise _fail(problem)
    count, head = audit.head(store.connection)
    covered = f"; {len(believed)} checkpoints and {len(expect or [])} recorded hashes match"
    typer.echo(f"audit log intact: {count} entries, head {head}{covered}")


@audit_app.command("show")
def audit_show(ref: Annotated[str, typer.Argument(help="MASH reference")]) -> None:
    """Who did what on a contact, and when (no findings)."""
    _print_entries(audit.entries(_store().connection, ref), ref)


def _print_entries(entries: Iterable[audit.AuditEntry], ref: str) -> None:
    found = False
    # Plain lines, never cut to the terminal's width: this is evidence, and scripts read it.
    for entry in entries:
        if not found:
            typer.echo(f"{'SEQ':>6}  {'AT':<29}  {'ACTOR':<16} {'ACTION':<24} DETAIL")
        found = True
        detail = " ".join(f"{k}={v}" for k, v in sorted(entry.detail.items()) if v)
        typer.echo(f"{entry.seq:>6}  {entry.at}  {entry.actor:<16} {entry.action:<24} {detail}")
    if not found:
        raise _fail(f"no audit entries for {ref}")
