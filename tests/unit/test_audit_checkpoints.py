"""The audit log against someone who can write the hub's database: they rewrite an entry and
recompute every hash after it, or cut the newest entries off. The chain alone cannot tell;
the hub's signed checkpoints, kept off the hub, and head hashes recorded by hand can."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from broker.keyring import Keyring, ensure_keys
from broker.signing import OPERATOR, signer_for
from hub import audit
from hub.store import HubStore


class Hub:
    def __init__(self, folder: Path) -> None:
        self.ring = Keyring(folder / "keyring.json")
        ensure_keys(self.ring, folder / "private", ["hub", OPERATOR])
        self.ring.save()
        self.key_dir = folder / "private"
        self.db_path = folder / "hub.sqlite3"
        self.store = HubStore(self.db_path)
        self.checkpoints = folder / "checkpoints.jsonl"

    def record(self, count: int) -> None:
        with self.store.transaction() as db:
            for n in range(count):
                audit.append(db, "hub", "request-sent", f"MASH-2026-{n:06d}", agency="police")

    def checkpoint(self) -> audit.Checkpoint:
        signer = signer_for(self.ring, self.key_dir, "hub")
        checkpoint = audit.make_checkpoint(self.store.connection, signer)
        audit.append_checkpoint(self.checkpoints, checkpoint)
        return checkpoint

    def verify(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.store.connection.commit()
        env = {
            **os.environ,
            "MASH_DB_PATH": str(self.db_path),
            "MASH_KEYRING": str(self.ring.path),
        }
        return subprocess.run(
            [sys.executable, "-m", "mash", "audit", "verify", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    made = Hub(tmp_path)
    made.record(10)
    return made


def _rewrite_and_recompute(db: sqlite3.Connection, seq: int) -> None:
    """What a database writer does to hide a change: alter one entry, then recompute the
    hash of it and of every entry after it."""
    db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = ?", (seq,))
    rows = db.execute(
        "SELECT seq, at, actor, action, contact_ref, detail FROM audit WHERE seq >= ? ORDER BY seq",
        (seq,),
    ).fetchall()
    prev = db.execute("SELECT hash FROM audit WHERE seq = ?", (seq - 1,)).fetchone()[0]
    for row_seq, at, actor, action, ref, detail in rows:
        digest = audit._digest(prev, row_seq, at, actor, action, ref, detail)
        db.execute(
            "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, row_seq)
        )
        prev = digest
    db.commit()


def test_rewritten_entry_with_the_chain_recomputed_fails_against_the_checkpoints(
    hub: Hub,
) -> None:
    hub.checkpoint()
    _rewrite_and_recompute(hub.store.connection, 4)

    assert hub.verify().returncode == 0  # the chain alone is fooled
    done = hub.verify("--checkpoints", str(hub.checkpoints))

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: audit entry 10 does not match the checkpoint of "
        f"{audit.read_checkpoints(hub.checkpoints)[0].at}: entries up to it were rewritten"
    )


def test_truncated_newest_entries_fail_against_the_checkpoints_and_the_recorded_head(
    hub: Hub,
) -> None:
    recorded = hub.checkpoint()
    hub.store.connection.execute("DELETE FROM audit WHERE seq > 7")

    assert hub.verify().returncode == 0  # the chain alone is fooled
    by_checkpoint = hub.verify("--checkpoints", str(hub.checkpoints))
    by_hash = hub.verify("--expect", recorded.head)

    assert by_checkpoint.returncode == 1
    assert "the log has 7 entries but the checkpoint of" in by_checkpoint.stderr
    assert "recorded 10: the newest entries were removed" in by_checkpoint.stderr
    assert by_hash.returncode == 1
    assert f"no audit entry has hash {recorded.head}" in by_hash.stderr


def test_log_that_grew_after_its_checkpoints_verifies(hub: Hub) -> None:
    first = hub.checkpoint()
    hub.record(5)
    hub.checkpoint()
    hub.record(2)

    done = hub.verify("--checkpoints", str(hub.checkpoints), "--expect", first.head)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("audit log intact: 17 entries")
    assert "2 checkpoints and 1 recorded hashes match" in done.stdout


def test_checkpoint_forged_by_a_database_writer_is_refused(hub: Hub) -> None:
    # Without the hub's key, a writer who truncated the log cannot make a checkpoint for it.
    genuine = hub.checkpoint()
    hub.store.connection.execute("DELETE FROM audit WHERE seq > 7")
    count, head = audit.head(hub.store.connection)
    forged = replace(genuine, count=count, head=head)
    hub.checkpoints.write_text(forged.to_json() + "\n")

    done = hub.verify("--checkpoints", str(hub.checkpoints))

    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: checkpoint of {genuine.at} has a signature that does not verify"
    )


def test_checkpoint_signed_by_another_sender_is_refused(hub: Hub) -> None:
    operator = signer_for(hub.ring, hub.key_dir, OPERATOR)
    checkpoint = audit.make_checkpoint(hub.store.connection, operator)
    audit.append_checkpoint(hub.checkpoints, checkpoint)

    done = hub.verify("--checkpoints", str(hub.checkpoints))

    assert done.returncode == 1
    assert "not a signing key of hub" in done.stderr


def test_checkpoint_file_that_is_not_one_gets_one_line(hub: Hub) -> None:
    hub.checkpoints.write_text(json.dumps({"count": 1}) + "\n")

    done = hub.verify("--checkpoints", str(hub.checkpoints))

    assert done.returncode == 1
    assert done.stderr.strip() == f"error: {hub.checkpoints} line 1 is not a checkpoint"


def test_audit_show_prints_a_header_row(hub: Hub) -> None:
    hub.store.connection.commit()
    done = subprocess.run(
        [sys.executable, "-m", "mash", "audit", "show", "MASH-2026-000003"],
        env={**os.environ, "MASH_DB_PATH": str(hub.db_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    header, entry = done.stdout.splitlines()
    assert header.split() == ["SEQ", "AT", "ACTOR", "ACTION", "DETAIL"]
    assert entry.split()[0] == "4" and entry.split()[2:4] == ["hub", "request-sent"]
    assert header.index("ACTOR") == entry.index(" hub ") + 1
