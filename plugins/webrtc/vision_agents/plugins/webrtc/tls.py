"""HTTPS for the call server: a provided certificate, or a self-signed one made on the spot.

Browsers allow cameras only on secure pages; ``http://127.0.0.1`` and ``http://localhost`` count
as secure, anything else needs HTTPS.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: addresses a browser treats as secure over HTTP."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def self_signed_pem(hosts: list[str], days: int = 30) -> tuple[bytes, bytes]:
    """A self-signed certificate (PEM) and its private key (PEM) valid for ``hosts``."""
    if not hosts:
        raise ValueError("hosts must name at least one host name or IP address")
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_ssl_context(
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    *,
    hosts: list[str] | None = None,
) -> ssl.SSLContext:
    """A server context from ``certfile``/``keyfile``, or from a fresh self-signed cert for ``hosts``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if certfile is not None:
        ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile is not None else None)
        return ctx
    cert_pem, key_pem = self_signed_pem(hosts or ["localhost"])
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        key_path.chmod(0o600)
        ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx
