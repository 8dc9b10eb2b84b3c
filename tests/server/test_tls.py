"""TLS and mutual TLS on the gRPC port, with real certificates (bench/certs.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import time

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server import client, healthcheck
from server.app import App
from server.channels import Transport
from server.errors import StartupError

SERVING = health_pb2.HealthCheckResponse.SERVING
TRITON = r"""
import json, sys
import numpy as np
import tritonclient.grpc as tc

address, ca = sys.argv[1], open(sys.argv[2], "rb").read()
c = tc.InferenceServerClient(address, ssl=True, root_certificates=sys.argv[2])
inp = tc.InferInput("images", [3, 28, 28], "UINT8")
inp.set_data_from_numpy(np.zeros((3, 28, 28), np.uint8))
result = c.infer("highway_mnist", [inp])
print(json.dumps({"ready": c.is_server_ready(),
                  "shape": list(result.as_numpy("probabilities").shape)}))
"""


def tls_server(start_server, pki, mutual: bool = False, **overrides):
    return start_server(tls_cert=pki.server.cert, tls_key=pki.server.key,
                        tls_client_ca=pki.ca if mutual else None, **overrides)


def check(port: int, transport: Transport, timeout: float = 10):
    """grpc.health.v1 Check over ``transport``: the status, or the error's code."""
    with transport.channel(f"localhost:{port}") as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout).status
        except grpc.RpcError as e:
            return e.code()


def fingerprint(port: int) -> str:
    """SHA-256 of the certificate a new TLS connection is served."""
    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=10)
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def der_fingerprint(path) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(path.read_text())).hexdigest()


def test_tritonclient_with_ssl_and_the_root_certificate_gets_answers(start_server, pki):
    running = tls_server(start_server, pki)
    done = subprocess.run([sys.executable, "-c", TRITON, f"localhost:{running.app.port}",
                           str(pki.ca)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"ready": True, "shape": [3, 10]}


def test_plain_text_and_wrong_ca_clients_fail_cleanly_and_the_server_stays_serving(
        start_server, pki):
    running = tls_server(start_server, pki)
    port = running.app.port
    assert check(port, Transport()) == grpc.StatusCode.UNAVAILABLE
    assert check(port, Transport(tls=True, ca=pki.wrong_ca)) == grpc.StatusCode.UNAVAILABLE
    assert check(port, Transport(tls=True, ca=pki.ca)) == SERVING


def test_mutual_tls_refuses_clients_without_a_certificate_of_its_ca(start_server, pki):
    running = tls_server(start_server, pki, mutual=True)
    port = running.app.port
    server_only = Transport(tls=True, ca=pki.ca)
    wrong = Transport(tls=True, ca=pki.ca, cert=pki.client_from_wrong_ca.cert,
                      key=pki.client_from_wrong_ca.key)
    good = Transport(tls=True, ca=pki.ca, cert=pki.client.cert, key=pki.client.key)
    assert check(port, server_only) == grpc.StatusCode.UNAVAILABLE
    assert check(port, wrong) == grpc.StatusCode.UNAVAILABLE
    assert check(port, good) == SERVING


def test_client_and_health_probe_speak_mutual_tls_with_the_restricted_header(
        start_server, pki, fixture_mnist, tmp_path, capsys):
    running = tls_server(start_server, pki, mutual=True,
                         grpc_restricted_protocol=("health,inference:x-key=pr0be-s3cret",))
    address = f"localhost:{running.app.port}"
    tls = ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.client.cert),
           "--tls-key", str(pki.client.key)]
    idx = tmp_path / "t10k-images-idx3-ubyte"
    idx.write_bytes(b"\0\0\x08\x03" + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
                    + fixture_mnist.x_test[:2].tobytes())
    assert client.main(["--address", address, *tls, "--header", "x-key=pr0be-s3cret",
                        str(idx)]) == 0
    assert client.main(["--address", address, *tls, str(idx)]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    # The probe inside the container follows the server's environment: no flags needed.
    environ = {"HIGHWAY_GRPC_PORT": str(running.app.port), "HIGHWAY_TLS_CERT": "server.crt",
               "HIGHWAY_PROBE_TLS_CA": str(pki.ca), "HIGHWAY_PROBE_TLS_CERT": str(pki.client.cert),
               "HIGHWAY_PROBE_TLS_KEY": str(pki.client.key),
               "HIGHWAY_GRPC_RESTRICTED_PROTOCOL": "health,inference:x-key=pr0be-s3cret"}
    result = healthcheck.probe(healthcheck.parse_args([], environ))
    assert result.healthy, result.message
    del environ["HIGHWAY_PROBE_TLS_CERT"], environ["HIGHWAY_PROBE_TLS_KEY"]
    assert not healthcheck.probe(healthcheck.parse_args([], environ)).healthy


def test_a_replaced_certificate_is_served_to_the_next_new_connection(start_server, pki,
                                                                     tmp_path):
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server.cert, cert)
    shutil.copy(pki.server.key, key)
    running = start_server(tls_cert=cert, tls_key=key)
    port = running.app.port
    old = Transport(tls=True, ca=pki.ca).channel(f"localhost:{port}")
    stub = health_pb2_grpc.HealthStub(old)
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status == SERVING
    assert fingerprint(port) == der_fingerprint(pki.server.cert)

    # Half-way through a rotation (new certificate, old key) the old pair stays in use.
    replace(pki.server_rotated.cert, cert)
    assert fingerprint(port) == der_fingerprint(pki.server.cert)
    replace(pki.server_rotated.key, key)
    replaced = time.monotonic()
    assert fingerprint(port) == der_fingerprint(pki.server_rotated.cert)  # the very next one
    print(f"rotation picked up {1000 * (time.monotonic() - replaced):.1f} ms after the key")
    assert running.app.certificates.reloads == 1
    rotated = x509.load_pem_x509_certificate(pki.server_rotated.cert.read_bytes())
    assert running.metric("highway_tls_certificate_expiry_timestamp_seconds") == \
        rotated.not_valid_after_utc.timestamp()
    # A connection made before the rotation goes on working.
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status == SERVING
    old.close()
    assert check(port, Transport(tls=True, ca=pki.ca)) == SERVING


def replace(source, target) -> None:
    """Atomic replacement, as editors and Kubernetes' Secret updates do it."""
    temporary = target.with_suffix(".new")
    shutil.copy(source, temporary)
    os.replace(temporary, target)


@pytest.mark.parametrize("case,fragment", [
    ("missing", "no such file"),
    ("mismatched", "does not belong to the certificate"),
    ("expired", "expired on"),
    ("not a CA", "is not a CA certificate"),
    ("not PEM", "no PEM certificate"),
    ("directory", "is a directory"),
    ("unreadable", "cannot read it (Permission denied)"),
])
def test_bad_tls_files_end_the_server_with_one_line(base_settings, pki, tmp_path, case,
                                                   fragment):
    cert, key, ca = pki.server.cert, pki.server.key, None
    if case == "missing":
        key = tmp_path / "nowhere.key"
    elif case == "mismatched":
        key = pki.client.key
    elif case == "expired":
        cert, key = pki.server_expired.cert, pki.server_expired.key
    elif case == "not a CA":
        ca = pki.not_a_ca
    elif case == "not PEM":
        cert = tmp_path / "junk.crt"
        cert.write_text("not a certificate\n")
    elif case == "directory":
        cert = tmp_path
    elif case == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads every file")
        key = tmp_path / "locked.key"
        shutil.copy(pki.server.key, key)
        key.chmod(0)
    app = App(dataclasses.replace(base_settings, tls_cert=cert, tls_key=key, tls_client_ca=ca))
    with pytest.raises(StartupError) as error:
        asyncio.run(app.bind())
    assert app.server is None  # refused before anything was bound
    message = str(error.value)
    assert message.startswith("--tls-") and fragment in message and "\n" not in message


def test_the_server_process_exits_1_for_an_expired_certificate_given_by_environment(pki):
    environ = {**os.environ, "HIGHWAY_HOST": "127.0.0.1", "HIGHWAY_GRPC_PORT": "0",
               "HIGHWAY_METRICS_PORT": "-1", "HIGHWAY_TLS_CERT": str(pki.server_expired.cert),
               "HIGHWAY_TLS_KEY": str(pki.server_expired.key)}
    done = subprocess.run([sys.executable, "-m", "server"], env=environ, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"highway-serve: error: --tls-cert {pki.server_expired.cert}: "
                           "the certificate 'CN=expired' expired on ")


def test_workers_serve_tls_on_one_port_and_a_bad_certificate_stops_the_supervisor(
        tiny_repository, pki, tmp_path):
    from bench.harness import check_answer, real_server
    from tests.reliability.support import infer_bytes

    server = real_server(tiny_repository, "cpu", 1, ["--workers", "2"], tmp_path / "log",
                         tls_folder=tmp_path)
    try:
        server.wait_ready("/inference.GRPCInferenceService/ModelInfer", infer_bytes(1))
        for _ in range(4):  # separate connections, spread over the workers by the kernel
            with server.transport.channel(server.target, options=[
                    ("grpc.use_local_subchannel_pool", 1)]) as channel:
                answer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")(
                    infer_bytes(2), timeout=30)
                check_answer("ModelInfer", answer, 2)
        assert check(int(server.target.rsplit(":", 1)[1]), Transport()) == \
            grpc.StatusCode.UNAVAILABLE
    finally:
        assert server.stop() == 0
    environ = {**os.environ, "HIGHWAY_HOST": "127.0.0.1", "HIGHWAY_GRPC_PORT": "0",
               "HIGHWAY_METRICS_PORT": "-1", "HIGHWAY_WORKERS": "2",
               "HIGHWAY_TLS_CERT": str(pki.server.cert), "HIGHWAY_TLS_KEY": str(pki.client.key)}
    done = subprocess.run([sys.executable, "-m", "server"], env=environ, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "does not belong to the certificate" in line
