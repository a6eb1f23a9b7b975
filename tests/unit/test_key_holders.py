"""Each holder's private keys in a folder of its own, as the README's quick start makes them,
handed over one holder at a time, and a hub that refuses to run where it could open the
restricted file. Run as a newcomer would: the `mash` command in a fresh folder."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from broker.keyring import RESTRICTED_OWNER, Keyring, readable_restricted_keys
from broker.settings import BrokerSettings
from broker.signing import signer_for

HOLDERS = ("hub", "operator", "police", "health", "education", "housing")


def _mash(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # The quick start's environment: no key settings, so every default applies, relative to
    # the folder the newcomer works in.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MASH_")}
    clean["MASH_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:1/"  # never reached
    return subprocess.run(
        [sys.executable, "-m", "mash", *args],
        cwd=folder,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def quick_start(tmp_path: Path) -> Path:
    done = _mash(tmp_path, "keys", "init")
    assert done.returncode == 0, done.stderr
    return tmp_path


def _is_restricted_key(path: Path) -> bool:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return isinstance(key, X25519PrivateKey)


def test_keys_init_gives_each_holder_its_own_folder_and_keeps_the_restricted_key_out(
    quick_start: Path,
) -> None:
    private = quick_start / "var/keys/private"
    ring = Keyring.load(quick_start / "var/keys/keyring.json")

    assert sorted(p.name for p in private.iterdir()) == sorted(HOLDERS)
    for holder in HOLDERS:
        folder = private / holder
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        files = list(folder.iterdir())
        assert [f.stem for f in files] == [ring.current(holder, "signing").key_id]
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    # The hub's setup (MASH_KEY_DIR) holds no key that opens the restricted file.
    assert readable_restricted_keys(private) == []
    assert not any(_is_restricted_key(p) for p in private.rglob("*.pem"))
    restricted = quick_start / "var/keys/restricted-file"
    key_id = ring.current(RESTRICTED_OWNER, "restricted").key_id
    assert [p.stem for p in restricted.iterdir()] == [key_id]


def test_hub_refuses_to_start_in_one_line_when_it_can_read_a_restricted_key(
    quick_start: Path,
) -> None:
    # A careless deployer copies every key, the restricted file's too, beside the hub's.
    restricted = quick_start / "var/keys/restricted-file"
    shutil.copytree(restricted, quick_start / "var/keys/private/restricted-file")

    done = _mash(quick_start, "hub")

    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: the hub can read a restricted-file private key")
    assert "mash keys export-holder restricted-file" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_export_holder_hands_over_one_holders_keys_and_nothing_else(quick_start: Path) -> None:
    handover = quick_start / "for-police"

    done = _mash(quick_start, "keys", "export-holder", "police", str(handover), "--remove")

    assert done.returncode == 0, done.stderr
    ring = Keyring.load(handover / "keyring.json")
    key_id = ring.current("police", "signing").key_id
    assert sorted(str(p.relative_to(handover)) for p in handover.rglob("*")) == sorted(
        ["keyring.json", "police", f"police/{key_id}.pem"]
    )
    assert stat.S_IMODE(handover.stat().st_mode) == 0o700
    assert stat.S_IMODE((handover / "police" / f"{key_id}.pem").stat().st_mode) == 0o600
    # This machine no longer holds police's key; police signs from the folder it was given.
    assert list((quick_start / "var/keys/private/police").iterdir()) == []
    settings = BrokerSettings(keyring=handover / "keyring.json", key_dir=handover)
    assert signer_for(ring, settings.key_dir, "police").key_id == key_id
    assert f"MASH_KEY_DIR={handover}" in done.stdout


def test_export_holder_of_the_restricted_file_is_what_its_keeper_reads_with(
    quick_start: Path,
) -> None:
    handover = quick_start / "for-keeper"

    done = _mash(quick_start, "keys", "export-holder", RESTRICTED_OWNER, str(handover))

    assert done.returncode == 0, done.stderr
    assert f"MASH_RESTRICTED_KEY_DIR={handover / RESTRICTED_OWNER}" in done.stdout
    (exported,) = (handover / RESTRICTED_OWNER).iterdir()
    assert _is_restricted_key(exported)


def test_export_holder_refuses_a_holder_with_no_keys_in_one_line(quick_start: Path) -> None:
    done = _mash(quick_start, "keys", "export-holder", "probation", str(quick_start / "x"))

    assert done.returncode == 1
    assert done.stderr.strip() == "error: probation has no keys in var/keys/keyring.json"


def test_keys_list_prints_every_key_id_whole_on_a_narrow_terminal(quick_start: Path) -> None:
    ring = Keyring.load(quick_start / "var/keys/keyring.json")

    done = _mash(quick_start, "keys", "list", COLUMNS="40")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["KEY", "ID", "OWNER", "PURPOSE", "STATUS", "CREATED"]
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(e.key_id for e in ring.entries())
