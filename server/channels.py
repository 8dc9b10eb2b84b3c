"""Client side of the server's transport: TLS, mutual TLS and restricted-category headers.

One set of flags for every client this project ships (``server.client``,
``server.healthcheck``, the benchmark)::

    --tls                    TLS, server verified against the system's roots
    --tls-ca FILE            TLS, server verified against this CA (implies --tls)
    --tls-cert/--tls-key     our client certificate, for a server with --tls-client-ca
    --tls-server-name NAME   the name to expect in the server's certificate
    --header KEY=VALUE       sent with every call (a --grpc-restricted-protocol key)

Only grpcio is imported, so the health probe stays cheap.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc


class ChannelError(Exception):
    """A client-side file or flag that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Transport:
    """How a client reaches the server: plain or TLS, and which headers it sends."""

    tls: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str = ""
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def credentials(self) -> grpc.ChannelCredentials:
        """TLS channel credentials from the files (ChannelError names a bad one)."""
        def read(flag: str, path: Path | None) -> bytes | None:
            if path is None:
                return None
            try:
                return path.read_bytes()
            except OSError as e:
                raise ChannelError(f"{flag} {path}: cannot read it "
                                   f"({e.strerror or type(e).__name__})") from None
        return grpc.ssl_channel_credentials(
            root_certificates=read("--tls-ca", self.ca),
            private_key=read("--tls-key", self.key),
            certificate_chain=read("--tls-cert", self.cert))

    def channel(self, address: str, options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
        """A channel to ``address`` (host:port) that speaks this transport."""
        if not self.tls:
            return grpc.insecure_channel(address, options=list(options))
        return grpc.secure_channel(address, self.credentials(), options=self._options(options))

    def aio_channel(self, address: str, options: Sequence[tuple[str, object]] = ()
                    ) -> grpc.aio.Channel:
        """The same for asyncio clients."""
        if not self.tls:
            return grpc.aio.insecure_channel(address, options=list(options))
        return grpc.aio.secure_channel(address, self.credentials(), options=self._options(options))

    def _options(self, options: Sequence[tuple[str, object]]) -> list[tuple[str, object]]:
        extra = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        return [*options, *extra]


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Adds the transport flags to a client's command line."""
    group = parser.add_argument_group("transport (TLS, restricted categories)")
    group.add_argument("--tls", action="store_true",
                       help="speak TLS; verify the server against the system's CAs")
    group.add_argument("--tls-ca", type=Path, metavar="FILE",
                       help="speak TLS; verify the server against this PEM CA bundle")
    group.add_argument("--tls-cert", type=Path, metavar="FILE",
                       help="client certificate (PEM), for servers with mutual TLS")
    group.add_argument("--tls-key", type=Path, metavar="FILE", help="key of --tls-cert (PEM)")
    group.add_argument("--tls-server-name", default="", metavar="NAME",
                       help="name expected in the server's certificate (default: the host)")
    group.add_argument("--header", action="append", default=[], metavar="KEY=VALUE",
                       help="header sent with every call, e.g. a restricted category's key "
                            "(repeatable)")


def from_args(args: argparse.Namespace) -> Transport:
    """The transport the flags describe; ChannelError (one line) if they do not fit."""
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ChannelError("--tls-cert and --tls-key go together")
    headers = []
    for item in args.header:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ChannelError("--header takes KEY=VALUE")
        headers.append((key.strip().lower(), value))
    for flag, path in (("--tls-ca", args.tls_ca), ("--tls-cert", args.tls_cert),
                       ("--tls-key", args.tls_key)):
        if path is not None and not path.is_file():
            raise ChannelError(f"{flag} {path}: no such file")
    tls = bool(args.tls or args.tls_ca or args.tls_cert)
    return Transport(tls=tls, ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key,
                     server_name=args.tls_server_name, headers=tuple(headers))
