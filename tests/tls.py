"""A throwaway certificate authority for tests: a CA, a server certificate for localhost and
client certificates whose common name is a broker user (EXTERNAL authentication)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from cryptography import x509

from broker.certificates import CertificateAuthority, Issued

__all__ = ["Issued", "TestAuthority"]

_DAY = timedelta(days=1)


class TestAuthority:
    """Signs certificates valid for a day (broker.certificates does the work)."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "MASH test CA") -> None:
        self._ca = CertificateAuthority.new(name, _DAY)

    @property
    def cert_pem(self) -> bytes:
        return self._ca.cert_pem

    def server(self, host: str = "localhost") -> Issued:
        names: list[x509.GeneralName] = [
            x509.DNSName(host),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        return self._ca.server(names, _DAY)

    def client(self, user: str) -> Issued:
        return self._ca.client(user, _DAY)
