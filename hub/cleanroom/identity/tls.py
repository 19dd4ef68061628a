"""Encryption in transit: the rule for public URLs, and a generated demo certificate.

The hub's proxy serves TLS with ``c.JupyterHub.ssl_cert``/``ssl_key``. An operator
names their own certificate (``CLEANROOM_TLS_CERT`` and ``CLEANROOM_TLS_KEY``); without
one, a self-signed certificate for the public URL's host is generated once into the
state folder's secrets, which is what ``make up`` serves.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from cleanroom import paths
from cleanroom.errors import InvalidInput

DEMO_CERT = "demo-tls.crt"
DEMO_KEY = "demo-tls.key"
HSTS = "max-age=31536000"


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_public_url(url: str) -> None:
    """Refuse a public URL that is neither https nor on loopback, naming the fix.

    Plain http stays allowed on loopback: it never crosses a network, and the test suites
    start their hubs that way.
    """
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise InvalidInput(f"CLEANROOM_PUBLIC_URL={url!r} is not an http(s) URL")
    if parsed.scheme == "http" and not is_loopback_host(parsed.hostname):
        raise InvalidInput(
            f"CLEANROOM_PUBLIC_URL={url!r} would send passwords and data unencrypted over the "
            "network: use https:// (with CLEANROOM_TLS_CERT and CLEANROOM_TLS_KEY, or the "
            "generated demo certificate), or http only on a loopback address such as 127.0.0.1"
        )


def demo_certificate(host: str, folder: Path | None = None) -> tuple[Path, Path]:
    """(certificate, key) of a self-signed certificate for ``host``, made once.

    An existing pair is kept (browsers that accepted it keep working); one made for
    another host is replaced.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = folder or paths.secrets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    cert_path, key_path = folder / DEMO_CERT, folder / DEMO_KEY
    if cert_path.exists() and key_path.exists() and _certificate_names(cert_path) >= {host}:
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for h in dict.fromkeys([host, "127.0.0.1"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            if h != "localhost":
                names.append(x509.DNSName(h))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"cleanroom demo ({host})")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _certificate_names(path: Path) -> set[str]:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return set()
    found = set(alt.get_values_for_type(x509.DNSName))
    found |= {str(ip) for ip in alt.get_values_for_type(x509.IPAddress)}
    return found


def certificate_pair(public_url: str) -> tuple[Path, Path] | None:
    """The (certificate, key) the proxy serves for ``public_url``; None for http.

    ``CLEANROOM_TLS_CERT``/``CLEANROOM_TLS_KEY`` name the operator's own pair (both or
    neither); otherwise the demo certificate.
    """
    parsed = urlparse(public_url)
    if parsed.scheme != "https":
        return None
    cert, key = os.environ.get("CLEANROOM_TLS_CERT"), os.environ.get("CLEANROOM_TLS_KEY")
    if bool(cert) != bool(key):
        raise InvalidInput("set both CLEANROOM_TLS_CERT and CLEANROOM_TLS_KEY, or neither")
    if cert and key:
        for name, value in (("CLEANROOM_TLS_CERT", cert), ("CLEANROOM_TLS_KEY", key)):
            if not Path(value).is_file():
                raise InvalidInput(f"{name}={value!r} is not a file")
        return Path(cert), Path(key)
    return demo_certificate(parsed.hostname or "127.0.0.1")
