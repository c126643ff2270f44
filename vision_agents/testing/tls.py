"""A throwaway certificate authority for local TLS test servers (loopback only)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

import trustme


@dataclass
class LocalTLS:
    """A fresh CA and a certificate for 127.0.0.1 / localhost, made in memory."""

    ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self._cert = self.ca.issue_cert("127.0.0.1", "localhost")

    def server_context(self) -> ssl.SSLContext:
        """What the server presents."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA."""
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx

    def ca_pem(self) -> bytes:
        """The CA certificate, e.g. to write to a file named by SSL_CERT_FILE."""
        return self.ca.cert_pem.bytes()
