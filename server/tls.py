"""TLS for the gRPC port: checked PEM files at start, new files picked up without a restart.

At start every file is read and checked with ``cryptography`` so that a bad
one ends the server with one line (:class:`~server.errors.StartupError`):
missing or unreadable, not PEM, a key that does not belong to the certificate,
a certificate expired or not yet valid, a client CA file holding a
certificate that is not a CA.

Rotation: grpcio's dynamic server credentials ask :meth:`Certificates.fetch`
at every new TLS handshake. It compares the files' ``stat`` (inode, size,
mtime; a few microseconds) with the last load and reloads only when they
changed, so a replaced certificate is served from the very next connection.
Connections already open keep the certificate they were made with. A
replacement that fails the checks (say, the new certificate written before
its key) is logged once and the previous certificate stays in use until the
files agree again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from server.errors import StartupError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    """One checked set of PEM files, as grpcio wants them."""

    chain: bytes
    key: bytes
    client_ca: bytes | None
    subject: str
    not_after: dt.datetime


def _read(flag: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise StartupError(f"{flag} {path}: no such file") from None
    except IsADirectoryError:
        raise StartupError(f"{flag} {path}: is a directory, not a PEM file") from None
    except OSError as e:
        raise StartupError(f"{flag} {path}: cannot read it ({e.strerror})") from None


def _certificates(flag: str, path: Path, data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise StartupError(f"{flag} {path}: no PEM certificate in it") from None


def _check_validity(flag: str, path: Path, cert: x509.Certificate, now: dt.datetime) -> None:
    if cert.not_valid_after_utc <= now:
        raise StartupError(f"{flag} {path}: the certificate {cert.subject.rfc4514_string()!r} "
                           f"expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if cert.not_valid_before_utc > now:
        raise StartupError(f"{flag} {path}: the certificate {cert.subject.rfc4514_string()!r} "
                           f"is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def load(cert_path: Path, key_path: Path, client_ca_path: Path | None) -> Loaded:
    """Reads and checks the files; StartupError (one line) names the first problem."""
    now = dt.datetime.now(dt.UTC)
    chain = _read("--tls-cert", cert_path)
    key_pem = _read("--tls-key", key_path)
    leaf = _certificates("--tls-cert", cert_path, chain)[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise StartupError(f"--tls-key {key_path}: the key is encrypted; give it without a "
                           "passphrase (protect the file instead)") from None
    except (ValueError, serialization.UnsupportedAlgorithm):
        raise StartupError(f"--tls-key {key_path}: no PEM private key in it") from None
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        raise StartupError(f"--tls-key {key_path} does not belong to the certificate in "
                           f"--tls-cert {cert_path}")
    _check_validity("--tls-cert", cert_path, leaf, now)
    client_ca = None
    if client_ca_path is not None:
        client_ca = _read("--tls-client-ca", client_ca_path)
        for ca in _certificates("--tls-client-ca", client_ca_path, client_ca):
            try:
                is_ca = ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            except x509.ExtensionNotFound:
                is_ca = False
            if not is_ca:
                raise StartupError(f"--tls-client-ca {client_ca_path}: "
                                   f"{ca.subject.rfc4514_string()!r} is not a CA certificate "
                                   "(no basicConstraints CA:TRUE)")
            _check_validity("--tls-client-ca", client_ca_path, ca, now)
    return Loaded(chain, key_pem, client_ca, leaf.subject.rfc4514_string(),
                  leaf.not_valid_after_utc)


def _signature(paths: tuple[Path, ...]) -> tuple:
    out = []
    for path in paths:
        try:
            st = os.stat(path)  # follows symlinks: Kubernetes swaps a ..data link
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


class Certificates:
    """The files behind the gRPC port's TLS, reloaded when they change on disk."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None,
                 on_load: Callable[[Loaded], None] = lambda loaded: None):
        self._on_load = on_load  # e.g. the expiry metric
        self._paths = (cert, key) + ((client_ca,) if client_ca is not None else ())
        self._args = (cert, key, client_ca)
        self._seen = _signature(self._paths)
        self.current = load(*self._args)
        self.reloads = 0
        on_load(self.current)
        log.info("TLS on: certificate %s, valid until %s%s", self.current.subject,
                 f"{self.current.not_after:%Y-%m-%d %H:%M} UTC",
                 "; client certificates required" if client_ca is not None else "")

    def configuration(self, loaded: Loaded) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(loaded.key, loaded.chain)], root_certificates=loaded.client_ca)

    def credentials(self) -> grpc.ServerCredentials:
        """Dynamic credentials: grpcio calls :meth:`fetch` at every new handshake."""
        return grpc.dynamic_ssl_server_credentials(
            self.configuration(self.current), self.fetch,
            require_client_authentication=self._args[2] is not None)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration if the files changed and pass the checks, else None (keep)."""
        signature = _signature(self._paths)
        if signature == self._seen:
            return None
        self._seen = signature
        try:
            loaded = load(*self._args)
        except Exception as e:  # noqa: BLE001 - a bad replacement must never stop handshakes
            log.warning("TLS files changed but cannot be used yet, keeping the previous "
                        "certificate: %s", e)
            return None
        self.current = loaded
        self.reloads += 1
        self._on_load(loaded)
        log.info("TLS certificate reloaded: %s, valid until %s UTC", loaded.subject,
                 f"{loaded.not_after:%Y-%m-%d %H:%M}")
        return self.configuration(loaded)
