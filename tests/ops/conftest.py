"""Fixtures of the operations tests: a real moto S3 server on a free loopback port, a
real OpenStack Swift S3 (``swift_server``) per module that asks for it, a signed-record
factory and a data directory with an engine writing into it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer
from swift_server import SwiftS3, unavailable_reason

from stemedb.ops.s3 import S3Client, S3Location

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "stemedb-test",
    "AWS_SECRET_ACCESS_KEY": "stemedb-test-secret",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server (server mode: real HTTP) for the whole session."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``S3Client.from_env`` (and the CLI) at the moto server; the endpoint URL."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STEMEDB_S3_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def s3_bucket(s3_env: str, request: pytest.FixtureRequest) -> S3Location:
    """A fresh bucket per test (named after the test), as an ``S3Location``."""
    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())
    name = name[:50].rstrip("-") + f"-{free_port()}"
    S3Client.from_env().create_bucket(name)
    return S3Location(name, "backups")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(scope="module")
def swift() -> Iterator[SwiftS3]:
    """A real Swift with its S3 API for the module (skipped, with the reason, where
    Debian's swift packages are missing)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    server = SwiftS3().start()
    try:
        yield server
    finally:
        server.stop()
