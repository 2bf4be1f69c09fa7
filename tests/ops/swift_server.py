"""A real OpenStack Swift with its S3 API (s3api + tempauth), from Debian's packages,
started on loopback for one test session.

Layout: one temporary directory (owned by the ``swift`` system user) holds the
configuration (``swift_dir``), the rings, one device directory (``mount_check =
false``: no loopback mount, a plain directory) and the logs. memcached, the account,
container and object servers and the proxy each run as the ``swift`` user (Swift
refuses to serve as root; memcached too) with ``workers = 0`` (no forking), on free
loopback ports. S3 credentials: access key ``test:tester``, secret ``testing``
(tempauth's user ``tester`` of account ``test``).

``SwiftS3.start()`` returns once the proxy answers an S3 request; typical set-up time
is about 5 s. ``unavailable_reason()`` says why Swift cannot run here (packages missing,
no ``swift`` user and not root to create it), so a test can skip with that reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

SWIFT_USER: Final = "swift"
ACCESS_KEY: Final = "test:tester"
SECRET_KEY: Final = "testing"
REGION: Final = "us-east-1"
START_TIMEOUT_SECONDS: Final = 60.0
BINARIES: Final = (
    "swift-ring-builder",
    "swift-proxy-server",
    "swift-object-server",
    "swift-container-server",
    "swift-account-server",
    "memcached",
)
PROXY_PIPELINE: Final = (
    "catch_errors",
    "gatekeeper",
    "healthcheck",
    "proxy-logging",
    "cache",
    "listing_formats",
    "s3api",
    "tempauth",
    "copy",
    "slo",
    "dlo",
    "proxy-logging",
    "proxy-server",
)
PACKAGES_HINT: Final = (
    "scripts/install-debian-deps.sh installs them (swift-proxy swift-object "
    "swift-container swift-account memcached python3-swift)"
)


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")


def unavailable_reason() -> str | None:
    """None if Swift can run here, else why not (for ``pytest.skip``)."""
    missing = [b for b in BINARIES if _which(b) is None]
    if missing:
        return f"OpenStack Swift is not installed (missing {', '.join(missing)}); {PACKAGES_HINT}"
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import swift.common.middleware.s3api.s3api, lxml"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"Swift's s3api middleware cannot be imported; {PACKAGES_HINT}"
    try:
        pwd.getpwnam(SWIFT_USER)
    except KeyError:
        if os.geteuid() != 0:
            return f"no '{SWIFT_USER}' system user and not root to create it"
    if os.geteuid() != 0:
        return "starting Swift as its own user needs root (to switch to the swift user)"
    return None


def _ensure_swift_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SWIFT_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SWIFT_USER],
            check=True,
        )
        return pwd.getpwnam(SWIFT_USER)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, deadline: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} did not listen on {port}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class SwiftS3:
    """One Swift cluster of a single node (one replica) with the S3 API on ``endpoint``."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="stemedb-swift-")))
    proxy_port: int = 0
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    def start(self) -> SwiftS3:
        user = _ensure_swift_user()
        started = time.monotonic()
        deadline = started + START_TIMEOUT_SECONDS
        try:
            ports = self._configure()
            for path in self.root.rglob("*"):
                os.chown(path, user.pw_uid, user.pw_gid)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._spawn(
                "memcached",
                [
                    _which("memcached") or "memcached",
                    "-l",
                    "127.0.0.1",
                    "-p",
                    str(ports["memcached"]),
                    "-U",
                    "0",
                    "-m",
                    "16",
                ],
                ports["memcached"],
                deadline,
                user,
            )
            for server in ("account", "container", "object"):
                conf = self.root / "etc" / f"{server}-server.conf"
                self._spawn(
                    server,
                    [f"/usr/bin/swift-{server}-server", str(conf)],
                    ports[server],
                    deadline,
                    user,
                )
            conf = self.root / "etc" / "proxy-server.conf"
            self._spawn(
                "proxy",
                ["/usr/bin/swift-proxy-server", str(conf)],
                self.proxy_port,
                deadline,
                user,
            )
            self._wait_until_s3_answers(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _configure(self) -> dict[str, int]:
        etc = self.root / "etc"
        devices = self.root / "srv"
        for directory in (etc, devices / "d1", self.log_dir, self.root / "run"):
            directory.mkdir(parents=True, exist_ok=True)
        ports = {name: _free_port() for name in ("memcached", "account", "container", "object")}
        self.proxy_port = _free_port()
        suffix = uuid.uuid4().hex
        (etc / "swift.conf").write_text(
            textwrap.dedent(f"""\
                [swift-hash]
                swift_hash_path_suffix = {suffix}
                swift_hash_path_prefix = stemedb-test
                [storage-policy:0]
                name = Policy-0
                default = yes
                """)
        )
        for server in ("account", "container", "object"):
            (etc / f"{server}-server.conf").write_text(
                textwrap.dedent(f"""\
                    [DEFAULT]
                    swift_dir = {etc}
                    devices = {devices}
                    mount_check = false
                    disable_fallocate = true
                    bind_ip = 127.0.0.1
                    bind_port = {ports[server]}
                    workers = 0
                    log_name = {server}
                    log_level = WARNING
                    [pipeline:main]
                    pipeline = {server}-server
                    [app:{server}-server]
                    use = egg:swift#{server}
                    [{server}-replicator]
                    [{server}-auditor]
                    [{server}-updater]
                    """)
            )
            builder = etc / f"{server}.builder"
            ring_builder = _which("swift-ring-builder") or "swift-ring-builder"
            for args in (
                ["create", "0", "1", "0"],
                ["add", f"r1z1-127.0.0.1:{ports[server]}/d1", "1"],
                ["rebalance"],
            ):
                result = subprocess.run(
                    [ring_builder, str(builder), *args], capture_output=True, check=False
                )
                if result.returncode not in (0, 1):  # 1: rebalance warnings
                    raise RuntimeError(
                        f"swift-ring-builder {' '.join(args)} failed: "
                        f"{result.stdout.decode()}{result.stderr.decode()}"
                    )
        (etc / "proxy-server.conf").write_text(
            textwrap.dedent(f"""\
                [DEFAULT]
                swift_dir = {etc}
                bind_ip = 127.0.0.1
                bind_port = {self.proxy_port}
                workers = 0
                log_name = proxy
                log_level = WARNING
                [pipeline:main]
                pipeline = {" ".join(PROXY_PIPELINE)}
                [app:proxy-server]
                use = egg:swift#proxy
                account_autocreate = true
                allow_account_management = true
                [filter:s3api]
                use = egg:swift#s3api
                location = {REGION}
                s3_acl = false
                check_bucket_owner = false
                [filter:tempauth]
                use = egg:swift#tempauth
                user_test_tester = {SECRET_KEY} .admin
                [filter:cache]
                use = egg:swift#memcache
                memcache_servers = 127.0.0.1:{ports["memcached"]}
                [filter:catch_errors]
                use = egg:swift#catch_errors
                [filter:gatekeeper]
                use = egg:swift#gatekeeper
                [filter:healthcheck]
                use = egg:swift#healthcheck
                [filter:proxy-logging]
                use = egg:swift#proxy_logging
                [filter:listing_formats]
                use = egg:swift#listing_formats
                [filter:copy]
                use = egg:swift#copy
                [filter:slo]
                use = egg:swift#slo
                [filter:dlo]
                use = egg:swift#dlo
                """)
        )
        return ports

    def _spawn(
        self,
        name: str,
        argv: list[str],
        port: int,
        deadline: float,
        user: pwd.struct_passwd,
    ) -> None:
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("ab")
        self._logs.append(log)
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
            env={"PATH": "/usr/bin:/bin", "HOME": str(self.root), "LANG": "C.UTF-8"},
            start_new_session=True,
        )
        self._procs.append(proc)
        _wait_for_port(port, deadline, proc, log_path)

    def _wait_until_s3_answers(self, deadline: float) -> None:
        import boto3
        from botocore.config import Config as BotoConfig
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=BotoConfig(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                retries={"max_attempts": 1},
            ),
        )
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                client.list_buckets()
                return
            except (BotoCoreError, ClientError) as exc:
                last = exc
                time.sleep(0.1)
        logs = "\n".join(f"--- {p.name}\n{_tail(p)}" for p in sorted(self.log_dir.glob("*.log")))
        raise RuntimeError(f"Swift's S3 API did not answer: {last}\n{logs}")

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        shutil.rmtree(self.root, ignore_errors=True)
