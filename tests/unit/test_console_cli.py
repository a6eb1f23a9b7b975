"""``mash console`` and ``mash console user add`` on the command line: accounts made, and bad
input answered in one line with a non-zero exit."""

from __future__ import annotations

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
    code, out = _run(
        "--db",
        str(tmp_path / "c.sqlite3"),
        env={"MASH_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"},
    )
    assert code == 1
    assert out.startswith("error: cannot reach the broker") and len(out.strip().splitlines()) == 1
