"""A self-signed certificate and an nginx main file for tests that run a real nginx
(TLS termination on loopback) with its own prefix, pid file and temp paths."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

TEMP_DIRS: Final = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def self_signed_certificate(
    directory: Path, common_name: str = "localhost", san: str | None = None
) -> tuple[Path, Path]:
    """``directory/cert.pem`` and ``key.pem``, valid for two days; ``san`` e.g.
    ``"DNS:127.0.0.1,IP:127.0.0.1"``."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    argv += ["-subj", f"/CN={common_name}", "-keyout", str(key), "-out", str(cert)]
    if san is not None:
        argv += ["-addext", f"subjectAltName={san}"]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return cert, key


def nginx_main(prefix: Path, http_body: str, worker_connections: int = 256) -> Path:
    """``prefix/nginx.conf``: one worker, pid/error log/temp paths under ``prefix`` (the
    temp directories created), ``http_body`` inside ``http {}``; returns its path."""
    (prefix / "tmp").mkdir(exist_ok=True)
    temp_paths = "\n".join(f"    {name}_temp_path {prefix / 'tmp' / name};" for name in TEMP_DIRS)
    main = prefix / "nginx.conf"
    main.write_text(
        f"worker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
        f"events {{ worker_connections {worker_connections}; }}\n"
        f"http {{\n{temp_paths}\n    access_log off;\n{http_body}\n}}\n"
    )
    return main
