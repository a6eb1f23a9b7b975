"""The one-shot set-up of a MASH in containers (the ``setup`` service of docker/compose.yaml).

Run once, as root, before the broker starts; on later starts it sees its mark and exits 0.

* A certificate authority for this MASH (kept in the set-up volume only), the broker's server
  certificate, and one client certificate per broker user whose common name *is* the user:
  the broker is TLS-only and logs every party in by its certificate (EXTERNAL), so there is
  no password to hand out, leak or rotate for the services.
* The key registry and every holder's signing keys (``mash keys init``), then each holder's
  keys moved to that holder's own volume (``mash keys export-holder --remove``): the set-up
  volume keeps the public registry, no private key.
* The broker's users, permissions and topology (``mash broker definitions``), plus one
  administrator with a password for the management UI (loopback only), loaded by the broker
  at boot: it never runs a moment with ``guest`` or without its users.

Each party's volume gets only its own: ``tls/`` (CA, its certificate and key) and ``keys/``
(the public registry and its private keys), owned by the mash user (uid 10001), mode 0700.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from broker.certificates import CertificateAuthority
from broker.identities import user_name
from broker.provision import HASHING, password_hash, vhost_of
from broker.settings import BrokerSettings
from broker.topology import OPERATOR_ROLE, RESTRICTED, SCREENING

SETUP = Path(os.environ.get("MASH_SETUP_DIR", "/setup"))
OUT = Path(os.environ.get("MASH_SETUP_OUT", "/out"))
MASH_UID = 10001
# The broker image's rabbitmq user: 999 in the official image and in docker/rabbitmq.
BROKER_UID = int(os.environ.get("MASH_BROKER_UID", "999"))
VALID = timedelta(days=int(os.environ.get("MASH_CERT_DAYS", "825")))
MARK = SETUP / "done"


def write(path: Path, data: bytes, mode: int, uid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chown(path, uid, uid)
    path.chmod(mode)


def own(folder: Path, uid: int) -> None:
    """Everything under ``folder`` belongs to ``uid``; folders 0700, files 0600 (0644 for the
    public CA certificate and registry, which are no secret)."""
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, uid, uid)
        if path.is_dir():
            path.chmod(0o700)
        else:
            path.chmod(0o644 if path.name in ("ca.pem", "keyring.json") else 0o600)


def mash(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run(["mash", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: mash {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    for line in (done.stdout + done.stderr).splitlines():
        print(f"  {line}")


def issue(common_name: str, folder: Path) -> int:
    """``mash_setup.py issue USER DIR``: a new client certificate for a broker user from this
    MASH's CA (renewal, or an agency's own adapter), written to DIR as in a party's ``tls/``."""
    try:
        ca = CertificateAuthority.load(
            (SETUP / "ca" / "ca.key").read_bytes(), (SETUP / "ca" / "ca.pem").read_bytes()
        )
    except (OSError, ValueError) as exc:
        sys.exit(f"error: no CA in {SETUP / 'ca'} ({exc}): has the set-up run?")
    if folder.exists():
        sys.exit(f"error: {folder} exists; certificates go to a new folder")
    issued = ca.client(common_name, VALID)
    write(folder / "ca.pem", ca.cert_pem, 0o644, MASH_UID)
    write(folder / "client.pem", issued.cert_pem, 0o644, MASH_UID)
    write(folder / "client.key", issued.key_pem, 0o600, MASH_UID)
    folder.chmod(0o700)
    os.chown(folder, MASH_UID, MASH_UID)
    print(f"issued a certificate for {common_name} in {folder}")
    return 0


def main() -> int:
    if sys.argv[1:2] == ["issue"]:
        if len(sys.argv) != 4:
            sys.exit("usage: mash_setup.py issue BROKER_USER NEW_FOLDER")
        return issue(sys.argv[2], Path(sys.argv[3]))
    if MARK.exists():
        print(f"set up already ({MARK.read_text().strip()}); nothing to do")
        return 0
    settings = BrokerSettings()
    vhost = vhost_of(settings)
    if vhost == "/":
        # Definitions loaded at boot replace the default user and vhost: name our own.
        sys.exit("error: give MASH_AMQP_URL a vhost (amqps://host:port/mash)")
    SETUP.mkdir(parents=True, exist_ok=True)
    SETUP.chmod(0o700)

    # Parties: the folder each one's container mounts, and its broker role and key holder.
    # The screening role (contacts in, packets out) signs as the operator.
    # The operator role (dead letters, events, `mash status`) signs nothing: it gets the
    # public registry and no private key.
    parties: dict[str, tuple[str, str | None]] = {
        "hub": ("hub", "hub"),
        "screening": (SCREENING, "operator"),
        "operator": (OPERATOR_ROLE, None),
        "keeper": (RESTRICTED, "restricted-file"),
        **{agency: (agency, agency) for agency in settings.agencies},
    }
    for party in parties:
        if (OUT / party).exists() and any((OUT / party).iterdir()):
            sys.exit(
                f"error: {OUT / party} is not empty and set-up has not finished: "
                "remove the volumes (docker compose down --volumes) and start again"
            )

    print("certificates: a CA for this MASH, the broker's, one per broker user")
    ca = CertificateAuthority.new(f"MASH {settings.prefix} CA", VALID)
    write(SETUP / "ca" / "ca.key", ca.key_pem, 0o600, 0)
    write(SETUP / "ca" / "ca.pem", ca.cert_pem, 0o644, 0)
    hosts = os.environ.get("MASH_BROKER_HOSTNAMES", "localhost").split(",")
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts if h]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    server = ca.server(names, VALID)
    broker = OUT / "broker"
    write(broker / "tls" / "ca.pem", ca.cert_pem, 0o644, BROKER_UID)
    write(broker / "tls" / "server.pem", server.cert_pem, 0o644, BROKER_UID)
    write(broker / "tls" / "server.key", server.key_pem, 0o600, BROKER_UID)
    for party, (role, _holder) in parties.items():
        user = user_name(settings, role)
        issued = ca.client(user, VALID)
        write(OUT / party / "tls" / "ca.pem", ca.cert_pem, 0o644, MASH_UID)
        write(OUT / party / "tls" / "client.pem", issued.cert_pem, 0o644, MASH_UID)
        write(OUT / party / "tls" / "client.key", issued.key_pem, 0o600, MASH_UID)

    print("keys: mash keys init, then each holder's to its own volume")
    keys = SETUP / "keys"
    env = {
        **os.environ,
        "MASH_KEYRING": str(keys / "keyring.json"),
        "MASH_KEY_DIR": str(keys / "private"),
        "MASH_RESTRICTED_KEY_DIR": str(keys / "restricted-file"),
    }
    mash("keys", "init", env=env)
    for party, (_role, holder) in parties.items():
        if holder is None:
            (OUT / party / "keys").mkdir()
            (OUT / party / "keys" / "keyring.json").write_bytes(
                (keys / "keyring.json").read_bytes()
            )
        else:
            # export-holder wants a new folder; --remove: the set-up volume keeps no private key.
            mash("keys", "export-holder", holder, str(OUT / party / "keys"), "--remove", env=env)
        own(OUT / party, MASH_UID)

    print("broker: users, permissions and topology as definitions loaded at boot")
    definitions = broker / "definitions.json"
    definitions.unlink(missing_ok=True)
    mash("broker", "definitions", "--output", str(definitions), "--no-passwords", env=env)
    document = json.loads(definitions.read_text())
    # One administrator for the management UI and rabbitmqctl-free inspection; the broker
    # lets it in from its own host only (loopback_users in rabbitmq.conf).
    admin = os.environ.get("MASH_BROKER_ADMIN", f"{settings.prefix}-admin")
    password = secrets.token_urlsafe(32)
    document["users"].append(
        {
            "name": admin,
            "password_hash": password_hash(password),
            "hashing_algorithm": HASHING,
            "tags": ["administrator"],
            "limits": {},
        }
    )
    document["permissions"].append(
        {"user": admin, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
    )
    write(definitions, (json.dumps(document, indent=2) + "\n").encode(), 0o600, BROKER_UID)
    write(SETUP / "admin-password", f"{admin} {password}\n".encode(), 0o600, 0)
    own(broker, BROKER_UID)
    broker.joinpath("tls", "ca.pem").chmod(0o644)

    users = ", ".join(u["name"] for u in document["users"])
    MARK.write_text(f"{datetime.now(UTC).isoformat(timespec='seconds')}: {users}\n")
    print(f"set up MASH {settings.prefix!r} on vhost {vhost!r}: {users}")
    print(f"management UI login (loopback only) in the set-up volume: {SETUP / 'admin-password'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
