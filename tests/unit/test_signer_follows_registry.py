"""A signer follows the key registry as another process (`mash keys ...`) changes it: the
cases an operator meets while rotating a key, without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from broker.keyring import Keyring, ensure_keys, generate_key
from broker.signing import KEY_ID, Signer, SigningKeyUnavailable, Verifier, signer_for


@pytest.fixture
def ring(tmp_path: Path) -> Keyring:
    ring = Keyring(tmp_path / "keyring.json")
    ensure_keys(ring, tmp_path / "private", ["police"])
    ring.save()
    return ring


def _operator(ring: Keyring) -> Keyring:
    """The registry as `mash keys` sees it: another object over the same file."""
    return Keyring.load(ring.path)


def _signer(ring: Keyring, tmp_path: Path) -> Signer:
    return signer_for(Keyring.load(ring.path), tmp_path / "private", "police")


def test_new_key_is_used_from_the_next_message(ring: Keyring, tmp_path: Path) -> None:
    signer = _signer(ring, tmp_path)
    old = signer.key_id
    operator = _operator(ring)
    new, _ = generate_key(operator, tmp_path / "private", "police", "signing")
    operator.save()

    headers = signer.headers("m-1", "t", b"body")

    assert headers[KEY_ID] == new.key_id != old
    assert Verifier(Keyring.load(ring.path)).verify(headers, "m-1", "t", b"body") == "police"


def test_retired_only_key_signs_nothing_and_says_how_to_fix_it(
    ring: Keyring, tmp_path: Path
) -> None:
    signer = _signer(ring, tmp_path)
    operator = _operator(ring)
    operator.retire(signer.key_id)
    operator.save()

    with capture_logs() as logs, pytest.raises(SigningKeyUnavailable):
        signer.headers("m-1", "t", b"body")

    assert signer.problem is not None
    assert "mash keys generate police" in signer.problem
    assert [e["event"] for e in logs] == ["signing_key_retired"]
    assert logs[0]["log_level"] == "error"
    new, _ = generate_key(operator, tmp_path / "private", "police", "signing")
    operator.save()
    assert signer.headers("m-2", "t", b"body")[KEY_ID] == new.key_id
    assert signer.problem is None


def test_new_public_key_without_its_private_half_keeps_the_old_key_while_active(
    ring: Keyring, tmp_path: Path
) -> None:
    signer = _signer(ring, tmp_path)
    old = signer.key_id
    operator = _operator(ring)
    # Made on the key administrator's machine: this holder has only the public half so far.
    elsewhere, _ = generate_key(operator, tmp_path / "admin", "police", "signing")
    operator.save()

    with capture_logs() as logs:
        assert signer.headers("m-1", "t", b"b")[KEY_ID] == old
    assert [e["event"] for e in logs] == ["signing_key_not_held"]

    operator.retire(old)
    operator.save()
    with pytest.raises(SigningKeyUnavailable, match=f"successor {elsewhere.key_id} is not in"):
        signer.headers("m-2", "t", b"b")


def test_pinned_key_is_not_switched_but_stops_when_retired(ring: Keyring, tmp_path: Path) -> None:
    pinned_id = ring.current("police", "signing").key_id
    signer = signer_for(Keyring.load(ring.path), tmp_path / "private", "police", pinned_id)
    operator = _operator(ring)
    generate_key(operator, tmp_path / "private", "police", "signing")
    operator.save()

    assert signer.headers("m-1", "t", b"b")[KEY_ID] == pinned_id
    operator.retire(pinned_id)
    operator.save()
    with pytest.raises(SigningKeyUnavailable):
        signer.headers("m-2", "t", b"b")
