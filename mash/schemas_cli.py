"""``mash schemas check`` and ``mash schemas release``: the schema evolution gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from schemas.evolution import RELEASED_DIR, EvolutionError, check, release
from schemas.registry import SCHEMA_DIR

__all__ = ["schemas_app"]

schemas_app = typer.Typer(
    help="Check the Avro schemas against the last release; release a schema set.",
    no_args_is_help=True,
)

SchemasOption = Annotated[
    Path, typer.Option("--schemas", help="The current schemas (*.avsc)", file_okay=False)
]
ReleasedOption = Annotated[
    Path,
    typer.Option(
        "--released", help="Released schema sets, one folder per version", file_okay=False
    ),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    from mash.cli import fail

    return fail(message, code)


@schemas_app.command("check")
def schemas_check(
    schemas: SchemasOption = SCHEMA_DIR,
    released: ReleasedOption = RELEASED_DIR,
    version: Annotated[
        str | None, typer.Option(help="Release to compare with (default: the latest)")
    ] = None,
    accepted: Annotated[
        Path | None,
        typer.Option(
            help="Reviewed acceptances of deliberate breaks (default: RELEASED/accepted.toml)"
        ),
    ] = None,
) -> None:
    """Every schema must read, and be read by, its released version; exit 1 on a break."""
    try:
        report = check(schemas, released, version=version, accepted_file=accepted)
    except EvolutionError as exc:
        raise _fail(str(exc)) from None
    for item, acceptance in report.accepted:
        typer.echo(f"accepted: {item.line()} -- {acceptance.reason}")
    for acceptance in report.unused:
        typer.echo(
            f"note: the acceptance of {acceptance.schema} {acceptance.direction} against"
            f" {acceptance.released} matches no break; remove it"
        )
    for item in report.breaks:
        typer.echo(f"incompatible: {item.line()}", err=True)
    added = f", {len(report.added)} new ({', '.join(report.added)})" if report.added else ""
    if report.breaks:
        typer.echo(
            f"{len(report.breaks)} incompatibilities with released schemas {report.released}"
            " (fix them, or record a reviewed acceptance in accepted.toml)",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(
        f"{report.checked} schemas compatible both ways with release {report.released}{added}"
    )


@schemas_app.command("release")
def schemas_release(
    version: Annotated[str, typer.Argument(help="The release, MAJOR.MINOR.PATCH")],
    schemas: SchemasOption = SCHEMA_DIR,
    released: ReleasedOption = RELEASED_DIR,
) -> None:
    """Snapshot the current schemas as release VERSION (an existing version is refused)."""
    try:
        target = release(version, schemas, released)
    except (EvolutionError, OSError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"released {len(list(target.glob('*.avsc')))} schemas to {target}")
