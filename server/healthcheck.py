"""A grpc.health.v1 probe: exit 0 iff the server answers SERVING.

Used by the Docker image's ``HEALTHCHECK`` and by anything else that wants a
one-line yes/no about a running server::

    python -m server.healthcheck [--address localhost:8001] [--service NAME] [--timeout 2]

It prints exactly one line (the status, or why there is none) and exits

- 0 when the status is SERVING,
- 1 for any other answer (NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN) or no answer
  (server unreachable, deadline exceeded),
- 2 for a bad command line.

Under ``--workers N`` the probe reaches one worker, whichever the kernel picks;
each answers for the whole server (SERVING only while every worker is ready,
server/fleet.py), so one probe is enough.

Only grpcio and grpcio-health-checking are imported (no ONNX Runtime, no
server code), so a probe costs about a tenth of a second.

TLS: the transport flags of :mod:`server.channels`. Inside the server's
container the probe follows the server's own environment, so the image's
HEALTHCHECK needs no flags: ``HIGHWAY_TLS_CERT`` set means TLS; the CA to verify
the server, a client certificate for mutual TLS and the name to expect come
from ``HIGHWAY_PROBE_TLS_CA``, ``HIGHWAY_PROBE_TLS_CERT``/``_KEY`` and
``HIGHWAY_PROBE_TLS_SERVER_NAME``; when ``HIGHWAY_GRPC_RESTRICTED_PROTOCOL``
restricts ``health``, the probe sends that header.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server import channels

# The server's own port variable; when set (as in the image), the probe follows it.
PORT_ENV = "HIGHWAY_GRPC_PORT"
DEFAULT_PORT = 8001


@dataclass(frozen=True)
class ProbeSettings:
    """What to ask, where, and how long to wait."""

    address: str = f"localhost:{DEFAULT_PORT}"
    """host:port of the server's gRPC endpoint."""
    service: str = ""
    """Health service name; "" is the server as a whole."""
    timeout: float = 2.0
    """Seconds to wait for the answer (connection included)."""
    transport: channels.Transport = field(default_factory=channels.Transport)
    """Plain or TLS, and the headers to send."""


@dataclass(frozen=True)
class ProbeResult:
    """The probe's verdict: healthy or not, and the one line that says why."""

    healthy: bool
    """True iff the server answered SERVING."""
    message: str
    """One line for humans and container logs."""


def default_address(environ: Mapping[str, str]) -> str:
    """localhost on the server's configured gRPC port (``$HIGHWAY_GRPC_PORT``, else 8001)."""
    port = environ.get(PORT_ENV, "").strip() or str(DEFAULT_PORT)
    return f"localhost:{port}"


def probe(settings: ProbeSettings) -> ProbeResult:
    """Asks grpc.health.v1 Check once and turns the answer (or the failure) into a verdict."""
    what = f"{settings.address} service {settings.service!r}"
    request = health_pb2.HealthCheckRequest(service=settings.service)
    try:
        with settings.transport.channel(settings.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            # wait_for_ready: a server still binding its port counts against the
            # timeout instead of failing on the first refused connection.
            response = stub.Check(request, timeout=settings.timeout, wait_for_ready=True,
                                  metadata=settings.transport.headers)
    except channels.ChannelError as error:
        return ProbeResult(False, f"BAD_TLS_FILES: {error}")
    except grpc.RpcError as error:
        code = error.code()
        if code == grpc.StatusCode.NOT_FOUND:
            return ProbeResult(False, f"SERVICE_UNKNOWN: {what} is not registered")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ProbeResult(
                False, f"UNREACHABLE: no answer from {what} within {settings.timeout:g}s"
            )
        detail = (error.details() or "").splitlines()[0:1]
        suffix = f": {detail[0]}" if detail else ""
        return ProbeResult(False, f"{code.name}: {what}{suffix}")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return ProbeResult(response.status == health_pb2.HealthCheckResponse.SERVING,
                       f"{status}: {what}")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> ProbeSettings:
    """Builds the settings from the command line (defaults follow the server's port)."""
    parser = argparse.ArgumentParser(
        prog="python -m server.healthcheck",
        description="Ask a server's grpc.health.v1 service; exit 0 iff SERVING.",
    )
    parser.add_argument(
        "--address",
        default=default_address(environ),
        help=f"host:port to ask (default: localhost on ${PORT_ENV}, else {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--service", default="", help='health service name (default: "", the whole server)'
    )
    parser.add_argument(
        "--timeout", type=_positive_float, default=2.0, help="seconds to wait (default: 2)"
    )
    channels.add_flags(parser)
    parser.set_defaults(**server_environment(environ))
    args = parser.parse_args(argv)
    try:
        transport = channels.from_args(args)
    except channels.ChannelError as e:
        parser.error(str(e))
    return ProbeSettings(address=args.address, service=args.service, timeout=args.timeout,
                         transport=transport)


def server_environment(environ: Mapping[str, str]) -> dict[str, object]:
    """Transport defaults that follow the server's own ``HIGHWAY_*`` settings (see above)."""
    def path(name: str) -> Path | None:
        value = environ.get(name, "").strip()
        return Path(value) if value else None

    defaults: dict[str, object] = {
        "tls": bool(environ.get("HIGHWAY_TLS_CERT", "").strip()),
        "tls_ca": path("HIGHWAY_PROBE_TLS_CA"),
        "tls_cert": path("HIGHWAY_PROBE_TLS_CERT"),
        "tls_key": path("HIGHWAY_PROBE_TLS_KEY"),
        "tls_server_name": environ.get("HIGHWAY_PROBE_TLS_SERVER_NAME", "").strip(),
    }
    for spec in environ.get("HIGHWAY_GRPC_RESTRICTED_PROTOCOL", "").split(";"):
        names, _, pair = spec.partition(":")
        if "health" in (n.strip() for n in names.split(",")) and "=" in pair:
            defaults["header"] = [pair.strip()]
    return defaults


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: one line on stdout, exit 0 iff SERVING."""
    settings = parse_args(argv, os.environ)
    result = probe(settings)
    print(result.message, flush=True)
    return 0 if result.healthy else 1


if __name__ == "__main__":
    sys.exit(main())
