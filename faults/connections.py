"""Force-closing one MASH's client connections, as ``rabbitmqctl close_all_connections``
would, but only those of this MASH (their names end in ``:<prefix>``), so nothing else that
shares the broker is touched."""

from __future__ import annotations

import subprocess

__all__ = ["close_connections"]


def close_connections(prefix: str, *, node: str | None = None, names: tuple[str, ...] = ()) -> int:
    """Close every connection of ``prefix`` (or only those named); returns how many."""
    target = ["-n", node] if node else []
    listing = subprocess.run(
        ["rabbitmqctl", *target, "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    closed = 0
    for line in listing.splitlines():
        label = next(
            (
                part
                for part in line.replace("<<", '"').replace(">>", '"').split('"')
                if part.endswith(f":{prefix}")
            ),
            None,
        )
        if label is None or (names and label.rsplit(":", 1)[0] not in names):
            continue
        pid = line.split("\t", 1)[0]
        result = subprocess.run(
            ["rabbitmqctl", *target, "-q", "close_connection", pid, "fault injection: cut"],
            capture_output=True,
        )
        closed += result.returncode == 0
    return closed
