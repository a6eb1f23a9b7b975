"""Signatures, sealing and the audit chain, checked without a broker."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from broker.keyring import (
    RESTRICTED_OWNER,
    Keyring,
    default_restricted_dir,
    ensure_keys,
    generate_key,
    load_private_key,
)
from broker.sealed import SealError, open_sealed, seal
from broker.signing import SIGNATURE, SignatureRefused, Verifier, signer_for
from hub import audit


@pytest.fixture
def ring(tmp_path: Path) -> Keyring:
    keyring = Keyring(tmp_path / "keyring.json")
    ensure_keys(keyring, tmp_path / "private", ["hub", "police", "health"])
    keyring.save()
    return keyring


def test_a_signed_message_verifies_as_its_sender(ring: Keyring, tmp_path: Path) -> None:
    signer = signer_for(ring, tmp_path / "private", "police")
    headers = signer.headers("m-1", "uk.mash.AgencyResponse", b"body")
    assert Verifier(ring).verify(headers, "m-1", "uk.mash.AgencyResponse", b"body") == "police"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("body", "bad-signature"),
        ("message_id", "bad-signature"),
        ("sender", "sender-mismatch"),
        ("key", "unknown-key"),
        ("signature", "bad-signature"),
        ("missing", "missing-signature"),
    ],
)
def test_a_tampered_message_is_refused_with_the_reason(
    ring: Keyring, tmp_path: Path, change: str, reason: str
) -> None:
    signer = signer_for(ring, tmp_path / "private", "police")
    headers = signer.headers("m-1", "t", b"body")
    body, message_id = b"body", "m-1"
    if change == "body":
        body = b"bodY"
    elif change == "message_id":
        message_id = "m-2"
    elif change == "sender":
        headers["x-mash-sender"] = "health"
    elif change == "key":
        headers["x-mash-key-id"] = "police-20990101-000000"
    elif change == "signature":
        headers[SIGNATURE] = headers[SIGNATURE][:-4] + "AAA="
    else:
        headers.pop(SIGNATURE)
    with pytest.raises(SignatureRefused) as refused:
        Verifier(ring).verify(headers, message_id, "t", body)
    assert refused.value.reason == reason


def test_a_retired_key_no_longer_signs_anything_accepted(ring: Keyring, tmp_path: Path) -> None:
    signer = signer_for(ring, tmp_path / "private", "police")
    headers = signer.headers("m-1", "t", b"body")
    ring.retire(signer.key_id)
    ring.save()
    with pytest.raises(SignatureRefused) as refused:
        Verifier(Keyring.load(ring.path)).verify(headers, "m-1", "t", b"body")
    assert refused.value.reason == "retired-key"


def test_a_sender_outside_the_allowed_set_is_refused(ring: Keyring, tmp_path: Path) -> None:
    headers = signer_for(ring, tmp_path / "private", "police").headers("m", "t", b"b")
    with pytest.raises(SignatureRefused) as refused:
        Verifier(ring).verify(headers, "m", "t", b"b", frozenset({"hub"}))
    assert refused.value.reason == "sender-not-allowed"


def _restricted_private(ring: Keyring, key_dir: Path, key_id: str) -> X25519PrivateKey:
    # The restricted file's keys live beside the key directory, never in it.
    key = load_private_key(default_restricted_dir(key_dir), key_id)
    assert isinstance(key, X25519PrivateKey)
    return key


def test_sealed_findings_open_only_for_the_same_case_agency_and_answer(
    ring: Keyring, tmp_path: Path
) -> None:
    key = ring.current(RESTRICTED_OWNER, "restricted")
    case = {"contact_ref": "MASH-2026-000001", "agency": "police", "response_id": "r-1"}
    envelope = seal(b"intelligence", key.x25519(), key.key_id, **case)
    private = _restricted_private(ring, tmp_path / "private", key.key_id)

    assert b"intelligence" not in envelope.ciphertext
    assert open_sealed(envelope, private, **case) == b"intelligence"
    for field, other in (
        ("contact_ref", "MASH-2026-000002"),
        ("agency", "health"),
        ("response_id", "r-2"),
    ):
        with pytest.raises(SealError):
            open_sealed(envelope, private, **{**case, field: other})


def test_rotated_restricted_key_seals_new_findings_and_old_ones_still_open(
    ring: Keyring, tmp_path: Path
) -> None:
    case = {"contact_ref": "MASH-2026-000001", "agency": "police", "response_id": "r-1"}
    old = ring.current(RESTRICTED_OWNER, "restricted")
    before = seal(b"before", old.x25519(), old.key_id, **case)
    new, _ = generate_key(
        ring,
        tmp_path / "private",
        RESTRICTED_OWNER,
        "restricted",
        folder=default_restricted_dir(tmp_path / "private"),
    )
    ring.retire(old.key_id)
    current = ring.current(RESTRICTED_OWNER, "restricted")
    after = seal(b"after", current.x25519(), current.key_id, **case)

    assert current.key_id == new.key_id != old.key_id
    key_dir = tmp_path / "private"
    assert open_sealed(before, _restricted_private(ring, key_dir, old.key_id), **case) == b"before"
    assert open_sealed(after, _restricted_private(ring, key_dir, new.key_id), **case) == b"after"


@pytest.fixture
def log() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(audit.AUDIT_DDL)
    for number in range(1, 6):
        audit.append(db, "hub", "request-sent", f"MASH-2026-00000{number}", agency="police")
    return db


def test_an_intact_audit_log_verifies(log: sqlite3.Connection) -> None:
    count, problem, head = audit.verify(log)
    assert (count, problem) == (5, None)
    assert len(head) == 64


def test_an_altered_audit_entry_is_named(log: sqlite3.Connection) -> None:
    log.execute("UPDATE audit SET actor = 'someone' WHERE seq = 3")
    _, problem, _ = audit.verify(log)
    assert problem is not None and (problem.seq, problem.reason) == (3, "its content was altered")


def test_a_removed_audit_entry_is_named(log: sqlite3.Connection) -> None:
    log.execute("DELETE FROM audit WHERE seq = 2")
    _, problem, _ = audit.verify(log)
    assert problem is not None and problem.seq == 3


def test_reordered_audit_entries_are_caught(log: sqlite3.Connection) -> None:
    rows = log.execute("SELECT * FROM audit WHERE seq IN (2, 4) ORDER BY seq").fetchall()
    log.execute("DELETE FROM audit WHERE seq IN (2, 4)")
    # Put entry 4's content at position 2 and entry 2's at position 4, renumbered to fit.
    log.execute("INSERT INTO audit VALUES (2, ?, ?, ?, ?, ?, ?, ?)", rows[1][1:])
    log.execute("INSERT INTO audit VALUES (4, ?, ?, ?, ?, ?, ?, ?)", rows[0][1:])
    _, problem, _ = audit.verify(log)
    assert problem is not None and problem.seq == 2
