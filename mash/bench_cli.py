"""``mash bench``: the hub against the raw broker and a framework peer, and at scale.

See :mod:`bench` for what is measured and how; ``BENCHMARKS.md`` for the figures.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["bench"]


def bench(
    contacts: Annotated[
        int | None, typer.Option(help="Contacts per flow at saturation (default 2000)", min=1)
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Write the report as JSON on stdout")
    ] = False,
    quick: Annotated[
        bool, typer.Option(help="A tiny run that exercises every figure (for tests)")
    ] = False,
    profile: Annotated[
        Path | None,
        typer.Option(help="Profile the mash-hub flow's hub and police adapter with py-spy here"),
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the run's logs and databases")] = False,
) -> None:
    """Measure mash-hub against raw aio-pika and FastStream on the real broker, then
    priority, scale and per-message cost; print every figure with its target."""
    from bench.run import BenchOptions, run_bench
    from broker.logs import configure_logging

    # The bench's own in-process work (size probe, scale build) must not flood the report.
    configure_logging(json=True, level="WARNING")
    options = BenchOptions.for_run(quick=quick, contacts=contacts, profile_dir=profile, keep=keep)

    def progress(line: str) -> None:
        typer.echo(line, err=True)

    try:
        report = asyncio.run(run_bench(options, progress))
    except OSError as exc:  # a BenchError goes on to mash's main, which says it
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(report.to_json() if json_out else report.render())
    if report.errors:
        typer.echo(
            f"error: {len(report.errors)} bench phase(s) failed: {report.errors[0]}", err=True
        )
        raise typer.Exit(1)
