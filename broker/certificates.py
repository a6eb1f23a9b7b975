"""A small certificate authority for a MASH's TLS: a CA, a server certificate for the broker
and client certificates whose common name is a broker user (EXTERNAL authentication).

Used by the container set-up (docker/tools/mash_setup.py), which keeps its CA to issue
renewals later, and by the tests' throwaway CAs (tests/tls.py). P-256 keys: quick to make, and
accepted by RabbitMQ and Python's ssl alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "Issued", "key_pem"]

# Certificates start a little in the past, so a clock a few minutes behind still accepts them.
_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class CertificateAuthority:
    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def new(cls, name: str, valid: timedelta) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(now + valid)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load(cls, private_key_pem: bytes, cert_pem: bytes) -> CertificateAuthority:
        """A CA saved earlier (its key and certificate as PEM); ValueError if they are not."""
        key = serialization.load_pem_private_key(private_key_pem, None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the CA key is not an elliptic-curve key")
        return cls(key, x509.load_pem_x509_certificate(cert_pem))

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)

    def issue(
        self,
        common_name: str,
        usage: x509.ObjectIdentifier,
        names: list[x509.GeneralName],
        valid: timedelta,
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(now + valid)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem(key))

    def client(self, user: str, valid: timedelta) -> Issued:
        """A client certificate whose common name is the broker user it logs in as."""
        return self.issue(user, ExtendedKeyUsageOID.CLIENT_AUTH, [x509.DNSName(user)], valid)

    def server(self, names: list[x509.GeneralName], valid: timedelta) -> Issued:
        """The broker's certificate; its common name is the first name it answers to."""
        first = names[0]
        common_name = first.value if isinstance(first, x509.DNSName) else str(first.value)
        return self.issue(common_name, ExtendedKeyUsageOID.SERVER_AUTH, names, valid)
