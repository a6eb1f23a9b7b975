"""``mash console`` and ``mash console user add`` on the command line: accounts made, and bad
input answered in one line with a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from console.store import ConsoleStore
from mash.cli import app

PASSWORD = "a long enough password"


def _run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["console", *args], input=stdin, env=env)
    return result.exit_code, result.output


def test_user_add_keeps_an_argon2_hash_with_the_role(tmp_path: Path) -> None:
    db = tmp_path / "console.sqlite3"
    code, out = _run(
        "user",
        "add",
        "asha",
        "--role",
        "mash-manager",
        "--db",
        str(db),
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0, out
    user = ConsoleStore(db).user("asha")
    assert user is not None and user.role == "mash-manager"
    assert user.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    ("role", "password", "says"),
    [
        ("chief", PASSWORD, "unknown role 'chief'"),
        ("auditor", "short", "at least 12 characters"),
    ],
)
def test_user_add_refuses_bad_input_in_one_line(
    tmp_path: Path, role: str, password: str, says: str
) -> None:
    code, out = _run(
        "user",
        "add",
        "sam",
        "--role",
        role,
        "--db",
        str(tmp_path / "c.sqlite3"),
        env={"MASH_CONSOLE_PASSWORD": password},
    )
    assert code == 2
    assert out.strip().splitlines() == [f"error: {out.strip().removeprefix('error: ')}"]
    assert says in out and "Traceback" not in out


def test_serving_without_a_broker_says_so_in_one_line(tmp_path: Path) -> None:
    # A process of its own: serving runs an event loop, which the test session's must not share.
    done = subprocess.run(
        [sys.executable, "-m", "mash", "console", "--db", str(tmp_path / "c.sqlite3")],
        env={**os.environ, "MASH_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot connect mash-console to amqp://127.0.0.1:1")
    assert len(done.stderr.strip().splitlines()) == 1 and not done.stdout
