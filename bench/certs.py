"""A throw-away PKI for TLS benchmarks and tests, made with ``cryptography``.

Two CAs (``ca`` and a ``wrong_ca``), server certificates for localhost and
127.0.0.1 (a current one, a second one for rotation, an expired one), client
certificates from each CA, and a leaf certificate posing as a CA file. EC P-256
keys: fast to make on a loaded machine.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pair:
    """A certificate file and its key file."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: Path
    wrong_ca: Path
    server: Pair
    server_rotated: Pair
    server_expired: Pair
    server_from_wrong_ca: Pair
    client: Pair
    client_from_wrong_ca: Pair
    not_a_ca: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(subject: str, key, issuer: str | None = None, issuer_key=None, ca: bool = False,
           client: bool = False, valid_days: tuple[int, int] = (-1, 30)) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject)).issuer_name(_name(issuer or subject))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now + dt.timedelta(days=valid_days[0]))
               .not_valid_after(now + dt.timedelta(days=valid_days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def make_pki(folder: Path) -> Pki:
    """Writes every file into ``folder``."""
    keys = {}

    def key(name: str):
        keys[name] = ec.generate_private_key(ec.SECP256R1())
        return keys[name]

    ca = _issue("test CA", key("ca"), ca=True)
    wrong = _issue("wrong CA", key("wrong"), ca=True)

    def leaf(name: str, issuer: str, client: bool = False, valid_days=(-1, 30)) -> Pair:
        cert = _issue(name, key(name), "test CA" if issuer == "ca" else "wrong CA",
                      keys[issuer], client=client, valid_days=valid_days)
        return Pair(_write(folder / f"{name}.crt", cert), _write_key(folder / f"{name}.key",
                                                                     keys[name]))

    return Pki(
        ca=_write(folder / "ca.crt", ca),
        wrong_ca=_write(folder / "wrong_ca.crt", wrong),
        server=leaf("server", "ca"),
        server_rotated=leaf("server2", "ca"),
        server_expired=leaf("expired", "ca", valid_days=(-30, -1)),
        server_from_wrong_ca=leaf("server_wrong", "wrong"),
        client=leaf("client", "ca", client=True),
        client_from_wrong_ca=leaf("client_wrong", "wrong", client=True),
        not_a_ca=folder / "server.crt",
    )
