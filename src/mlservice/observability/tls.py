"""Self-signed certificates for ``ML_USE_HTTPS`` (``mlservice gen-cert``, 0.11.2's
``generate_ssl_cert.sh`` without a shelled-out openssl) and the start-up check of the pair."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from pathlib import Path

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


def generate_self_signed(cert_file: Path, key_file: Path, names: list[str], days: int = 825) -> None:
    """Write a self-signed certificate (also its own CA, so clients can trust it with
    ``verify=cert_file``) for the given DNS names and IP addresses, and its EC P-256 key (mode 600)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ML Service (self-signed)"),
    ])
    alt: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = dt.datetime.now(dt.timezone.utc)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False,
        ), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    for path in (cert_file, key_file):
        path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(key_file, key_bytes)
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _write_private(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def default_names() -> list[str]:
    names = list(DEFAULT_NAMES)
    host = socket.gethostname()
    if host and host not in names:
        names.append(host)
    return names


def check_pair(cert_file: Path, key_file: Path) -> str | None:
    """Why the pair cannot serve HTTPS (one line naming the setting), or None when it can."""
    for variable, path in (("ML_SSL_CERT_FILE", cert_file), ("ML_SSL_KEY_FILE", key_file)):
        if not path.exists():
            return f"{variable} points to {path}, which does not exist (create a pair with `mlservice gen-cert`)"
        if not path.is_file():
            return f"{variable} points to {path}, which is not a file"
        try:
            with path.open("rb") as handle:
                handle.read(1)
        except OSError as exc:
            return f"{variable} points to {path}, which cannot be read: {exc.strerror or exc}"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert_file), str(key_file))
    except ssl.SSLError as exc:
        return (f"ML_SSL_CERT_FILE ({cert_file}) and ML_SSL_KEY_FILE ({key_file}) are not a usable "
                f"PEM certificate and matching private key: {exc.reason or exc}")
    try:
        from cryptography import x509

        expires = x509.load_pem_x509_certificate(cert_file.read_bytes()).not_valid_after_utc
        if expires < dt.datetime.now(dt.timezone.utc):
            return f"the certificate in ML_SSL_CERT_FILE ({cert_file}) expired on {expires:%Y-%m-%d}"
    except ValueError:
        pass  # not the first PEM block we expected; the TLS library accepted it, so serve
    return None
