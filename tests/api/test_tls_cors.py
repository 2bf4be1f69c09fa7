"""TLS served by the server itself (a self-signed certificate made with openssl) with
``stemedb_tls_cert_expiry_seconds``, and CORS: closed by default, open to the origins
of ``STEMEDB_ALLOWED_ORIGINS`` (answers and preflights)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer, free_port
from prometheus_client.parser import text_string_to_metric_families

from stemedb.api.http.tls import parse_enddate
from stemedb.config import load_config

CERT_DAYS = 30
ALLOWED = "https://app.example.com"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl missing: run scripts/install-debian-deps.sh")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            str(CERT_DAYS),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    base = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(base)
    server = LiveServer(
        base,
        scheme="https",
        verify=ssl.create_default_context(cafile=str(cert)),
        STEMEDB_TLS_CERT_FILE=str(cert),
        STEMEDB_TLS_KEY_FILE=str(key),
    )
    yield server, cert
    assert server.stop() == 0


@pytest.fixture(scope="module")
def cors_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("cors"),
        STEMEDB_ALLOWED_ORIGINS=f"{ALLOWED}, https://other.example.com",
    )
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("closed"))
    yield server
    assert server.stop() == 0


# -- TLS -----------------------------------------------------------------------------


def test_server_speaks_https_with_the_configured_certificate(
    tls_server: tuple[LiveServer, Path],
) -> None:
    server, _ = tls_server
    with server.client() as client:
        health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the TLS port
        httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=2.0)
    with pytest.raises(httpx.HTTPError):  # and the certificate is the one we made
        httpx.get(f"{server.url}/health", timeout=2.0)  # default trust store


def test_certificate_expiry_gauge_counts_down_to_not_after(
    tls_server: tuple[LiveServer, Path],
) -> None:
    server, _ = tls_server
    with server.client() as client:
        text = client.get("/metrics").text
    samples = [
        s.value
        for f in text_string_to_metric_families(text)
        if f.name == "stemedb_tls_cert_expiry_seconds"
        for s in f.samples
    ]
    assert len(samples) == 1
    assert CERT_DAYS * 86400 - 3600 < samples[0] <= CERT_DAYS * 86400


def test_certificate_without_key_stops_start_up_naming_the_keys(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    env = {
        **os.environ,
        "STEMEDB_DB_DIR": str(tmp_path / "data"),
        "STEMEDB_BIND_ADDR": f"127.0.0.1:{free_port()}",
        "STEMEDB_TLS_CERT_FILE": str(cert),
    }
    env.pop("STEMEDB_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "stemedb.api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "tls.key_file" in result.stderr


def test_openssl_enddate_is_parsed_as_utc() -> None:
    assert parse_enddate("notAfter=Jan  2 03:04:05 2031 GMT\n") == 1925089445.0
    with pytest.raises(ValueError):
        parse_enddate("garbage")


def test_no_expiry_sample_without_tls(closed_server: LiveServer) -> None:
    with closed_server.client() as client:
        text = client.get("/metrics").text
    assert "# TYPE stemedb_tls_cert_expiry_seconds gauge" in text
    assert "\nstemedb_tls_cert_expiry_seconds " not in text


# -- CORS ----------------------------------------------------------------------------


def test_cors_is_closed_by_default(closed_server: LiveServer) -> None:
    with closed_server.client() as client:
        answer = client.get("/health", headers={"Origin": ALLOWED})
        preflight = client.options(
            "/v1/assert",
            headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"},
        )
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    assert preflight.status_code == 405
    assert not any(h.startswith("access-control-") for h in preflight.headers)


def test_allowed_origin_gets_cors_headers_on_answers_and_errors(cors_server: LiveServer) -> None:
    with cors_server.client() as client:
        ok = client.get("/health", headers={"Origin": ALLOWED})
        missing = client.get(f"/v1/assertions/{'0' * 64}", headers={"Origin": ALLOWED})
        stranger = client.get("/health", headers={"Origin": "https://evil.example.com"})
        no_origin = client.get("/health")
    for answer in (ok, missing):
        assert answer.headers["access-control-allow-origin"] == ALLOWED
        assert "Origin" in answer.headers["vary"]
        assert "X-Request-Id" in answer.headers["access-control-expose-headers"]
    assert missing.status_code == 404
    assert "access-control-allow-origin" not in stranger.headers
    assert "access-control-allow-origin" not in no_origin.headers


def test_preflight_from_an_allowed_origin_is_answered(cors_server: LiveServer) -> None:
    with cors_server.client() as client:
        allowed = client.options(
            "/v1/assert",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-api-key",
            },
        )
        refused = client.options(
            "/v1/assert",
            headers={
                "Origin": "https://evil.example.com",
                "Access-Control-Request-Method": "POST",
            },
        )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-allow-headers"] == "content-type, x-api-key"
    assert int(allowed.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in allowed.headers
    assert refused.status_code == 405
    assert "access-control-allow-origin" not in refused.headers


def test_allowed_origins_env_is_a_comma_separated_list() -> None:
    origins = "https://a.example, https://b.example"
    config = load_config(None, environ={"STEMEDB_ALLOWED_ORIGINS": origins})
    assert config.api.allowed_origins == ["https://a.example", "https://b.example"]
    json_list = load_config(None, environ={"STEMEDB_API_ALLOWED_ORIGINS": '["https://c.example"]'})
    assert json_list.api.allowed_origins == ["https://c.example"]
    assert load_config(None, environ={}).api.allowed_origins == []
