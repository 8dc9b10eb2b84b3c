"""The image with mounted certificates: TLS, mutual TLS and restricted categories.

Marked ``container``. The certificates (bench/certs.py) are mounted read-only at
/certs, as a Kubernetes Secret would be; the image's HEALTHCHECK needs no flags:
it follows the server's HIGHWAY_* environment plus HIGHWAY_PROBE_TLS_*.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.certs import make_pki
from server.channels import Transport
from server.healthcheck import ProbeSettings, probe
from tests.container.containers import BuiltImage, Engine, start_container

pytestmark = pytest.mark.container

KEY = "c0ntainer-admin-key"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> tuple[Path, object]:
    """The PKI, and a copy of the files the container needs, readable by its user."""
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    mount = tmp_path_factory.mktemp("certs")
    for source, name in ((pki.server.cert, "tls.crt"), (pki.server.key, "tls.key"),
                         (pki.ca, "ca.crt"), (pki.client.cert, "probe.crt"),
                         (pki.client.key, "probe.key")):
        shutil.copy(source, mount / name)
        (mount / name).chmod(0o644)
    mount.chmod(0o755)
    return mount, pki


def test_container_with_mounted_certificates_serves_mutual_tls_and_its_healthcheck_passes(
        engine: Engine, image: BuiltImage, mounted_repository: Path, certs):
    mount, pki = certs
    env = {"HIGHWAY_TLS_CERT": "/certs/tls.crt", "HIGHWAY_TLS_KEY": "/certs/tls.key",
           "HIGHWAY_TLS_CLIENT_CA": "/certs/ca.crt",
           "HIGHWAY_PROBE_TLS_CA": "/certs/ca.crt", "HIGHWAY_PROBE_TLS_CERT": "/certs/probe.crt",
           "HIGHWAY_PROBE_TLS_KEY": "/certs/probe.key",
           "HIGHWAY_GRPC_RESTRICTED_PROTOCOL": f"health,metadata:x-admin-key={KEY}"}
    good = Transport(tls=True, ca=pki.ca, cert=pki.client.cert, key=pki.client.key,
                     server_name="localhost", headers=(("x-admin-key", KEY),))
    container = start_container(engine, image, models=mounted_repository, env=env,
                                options=["-v", f"{mount}:/certs:ro"], transport=good)
    try:
        inside = container.exec("python", "-m", "server.healthcheck")
        assert (inside.returncode, inside.stdout.split(":")[0]) == (0, "SERVING"), \
            inside.stdout + inside.stderr
        if engine.name == "podman":  # the image's own HEALTHCHECK, run by the engine
            assert engine.run("healthcheck", "run", container.name,
                              check=False).returncode == 0
        for transport in (Transport(), Transport(tls=True, ca=pki.ca, server_name="localhost",
                                                 headers=good.headers)):
            result = probe(ProbeSettings(address=container.address, transport=transport))
            assert not result.healthy, result.message  # plain text; no client certificate
        denied = probe(ProbeSettings(address=container.address, transport=Transport(
            tls=True, ca=pki.ca, cert=pki.client.cert, key=pki.client.key)))
        assert denied.message.startswith("PERMISSION_DENIED"), denied.message
        assert KEY not in container.logs()
        assert container.state().get("Running")
    finally:
        container.remove()
