"""A real etcd + two-node Patroni cluster on loopback for the cluster-mode tests.

etcd (Debian ``etcd-server`` 3.4, v3 API; one member) runs as the ``etcd`` user,
Patroni (Debian ``patroni`` 3.0, ``etcd3:`` section) and its PostgreSQL 15 as the
``postgres`` user, each started with ``runuser -u USER --`` in its own session, on free
loopback ports, everything under one temporary directory. Patroni runs in
``synchronous_mode`` with ``ttl: 10``: the leader commits only once the sync standby has
the commit record, and a dead leader's key expires 10 s after its last renewal.

``PatroniCluster.start()`` returns once Patroni's ``GET /cluster`` shows a running
leader and a streaming ``sync_standby`` (about 25 s on a 2-vCPU VM). ``dsn()`` is the
multi-host libpq DSN clients use (``target_session_attrs=read-write`` finds the primary
after a failover). ``kill_leader()`` simulates the loss of the primary's machine:
``kill -9`` of the leader's Patroni process *and* its postmaster (killing postgres alone
lets Patroni restart it in place; killing Patroni alone leaves an orphan primary whose
synchronous commits block). ``revive(name)`` starts a killed node again (it rejoins as a
standby, rewound with ``pg_rewind`` if needed). ``stop()`` kills every process group it
started and removes the directory, also after a failed test.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import httpx
import psycopg
from psycopg import sql

PG_BIN: Final = Path("/usr/lib/postgresql/15/bin")
ETCD: Final = "/usr/bin/etcd"
PATRONI: Final = "/usr/bin/patroni"
RUNUSER: Final = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin") or "/usr/sbin/runuser"
ETCD_USER: Final = "etcd"
POSTGRES_USER: Final = "postgres"
SCOPE: Final = "stemedb-test"
TTL_SECONDS: Final = 10
LOOP_WAIT_SECONDS: Final = 1
RETRY_TIMEOUT_SECONDS: Final = 4
FORM_TIMEOUT_SECONDS: Final = 90.0
SUPERUSER_PASSWORD: Final = "stemedb-test-superuser"
REPLICATION_PASSWORD: Final = "stemedb-test-replication"
CLEAN_ENV: Final = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def unavailable_reason() -> str | None:
    """None if etcd + Patroni can run here, else why not (for ``pytest.skip``)."""
    missing = [p for p in (ETCD, PATRONI, str(PG_BIN / "postgres")) if not Path(p).exists()]
    if missing:
        return f"not installed: {', '.join(missing)} (bash scripts/install-debian-deps.sh)"
    if os.geteuid() != 0:
        return "running etcd and Patroni as their own users needs root (runuser)"
    for user in (ETCD_USER, POSTGRES_USER):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"no {user!r} system user (install the Debian packages)"
    return None


def _chown(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            out.extend(int(p) for p in (task / "children").read_text().split())
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _killpg(pgid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_gone(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return _alive(pid) and str(data_dir).encode() in argv and argv[0].endswith(b"postgres")


def _http_json(url: str, timeout: float = 2.0) -> Any:
    return httpx.get(url, timeout=timeout).raise_for_status().json()


@dataclass
class _Spawned:
    """A ``runuser`` process started in its own session, its log in a file."""

    proc: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def program_pid(self) -> int | None:
        """The program's pid: runuser forks it and waits (PAM session)."""
        kids = _children(self.proc.pid)
        return kids[0] if kids else None

    def kill(self) -> None:
        program = self.program_pid()
        _killpg(self.proc.pid)
        if program is not None:
            _kill(program)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.log.close()


def _spawn(user: str, argv: list[str], log_path: Path, cwd: Path) -> _Spawned:
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [RUNUSER, "-u", user, "--", *argv],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env={**CLEAN_ENV, "HOME": str(cwd)},
        start_new_session=True,
    )
    return _Spawned(proc, log)


@dataclass
class PatroniNode:
    name: str
    base: Path
    rest_port: int
    pg_port: int
    spawned: _Spawned | None = None

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def config_path(self) -> Path:
        return self.base / "patroni.yml"

    @property
    def log_path(self) -> Path:
        return self.base / "patroni.log"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def admin_dsn(self, dbname: str = "postgres") -> str:
        return (
            f"host=127.0.0.1 port={self.pg_port} user=postgres "
            f"password={SUPERUSER_PASSWORD} dbname={dbname} connect_timeout=3"
        )

    def patroni_pid(self) -> int | None:
        return self.spawned.program_pid() if self.spawned else None

    def postmaster(self) -> tuple[int, int | None] | None:
        """(pid, SysV shared memory id) from ``postmaster.pid``, if the file is there."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        shm = lines[6].split() if len(lines) > 6 else []
        return int(lines[0]), int(shm[1]) if len(shm) == 2 else None

    def config(self, etcd_port: int, parameters: dict[str, str]) -> dict[str, Any]:
        socket_dir = self.base / "run"
        return {
            "scope": SCOPE,
            "name": self.name,
            "log": {"level": "INFO", "dir": str(self.base / "log")},
            "restapi": {
                "listen": f"127.0.0.1:{self.rest_port}",
                "connect_address": f"127.0.0.1:{self.rest_port}",
            },
            "etcd3": {"hosts": [f"127.0.0.1:{etcd_port}"]},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL_SECONDS,
                    "loop_wait": LOOP_WAIT_SECONDS,
                    "retry_timeout": RETRY_TIMEOUT_SECONDS,
                    "maximum_lag_on_failover": 1048576,
                    "synchronous_mode": True,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": {
                            "wal_level": "replica",
                            "hot_standby": "on",
                            "wal_log_hints": "on",
                            "max_wal_senders": 10,
                            "max_replication_slots": 10,
                            "max_connections": 200,
                            "wal_keep_size": "128MB",
                            **parameters,
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{self.pg_port}",
                "connect_address": f"127.0.0.1:{self.pg_port}",
                "data_dir": str(self.data_dir),
                "bin_dir": str(PG_BIN),
                "pgpass": str(self.base / "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": SUPERUSER_PASSWORD},
                    "replication": {"username": "replicator", "password": REPLICATION_PASSWORD},
                    "rewind": {"username": "postgres", "password": SUPERUSER_PASSWORD},
                },
                "parameters": {
                    "unix_socket_directories": str(socket_dir),
                    "shared_buffers": "64MB",
                    "log_min_messages": "warning",
                },
                "pg_hba": [
                    "local all all trust",
                    "host replication replicator 127.0.0.1/32 scram-sha-256",
                    "host all all 127.0.0.1/32 scram-sha-256",
                ],
            },
            "tags": {"nofailover": False, "noloadbalance": False},
        }


@dataclass
class PatroniCluster:
    """One etcd member and ``size`` Patroni nodes (default 2) on loopback."""

    size: int = 2
    # extra PostgreSQL settings of the bootstrap (e.g. archive_mode, archive_command)
    parameters: dict[str, str] = field(default_factory=dict)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="stemedb-patroni-")))
    etcd_port: int = 0
    nodes: list[PatroniNode] = field(default_factory=list)
    _etcd: _Spawned | None = None
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    formed_seconds: float = 0.0

    # --- life cycle -------------------------------------------------------------------

    def start(self, timeout: float = FORM_TIMEOUT_SECONDS) -> PatroniCluster:
        started = time.monotonic()
        try:
            self.root.chmod(0o755)
            self._start_etcd(started + 30)
            for i in range(self.size):
                node = PatroniNode(f"pg{i + 1}", self.root / f"pg{i + 1}", free_port(), free_port())
                self.nodes.append(node)
                self._start_patroni(node)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        self.formed_seconds = time.monotonic() - started
        return self

    def _start_etcd(self, deadline: float) -> None:
        base = self.root / "etcd"
        (base / "data").mkdir(parents=True)
        _chown(base, ETCD_USER)
        _chown(base / "data", ETCD_USER)
        base.chmod(0o700)
        self.etcd_port = free_port()
        peer = free_port()
        peer_url = f"http://127.0.0.1:{peer}"
        client_url = f"http://127.0.0.1:{self.etcd_port}"
        argv = [
            ETCD,
            "--name=e1",
            f"--data-dir={base / 'data'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=e1={peer_url}",
            "--initial-cluster-state=new",
            "--initial-cluster-token=stemedb-test",
            "--log-level=warn",
            "--logger=zap",
        ]
        self._etcd = _spawn(ETCD_USER, argv, self.root / "etcd.log", base)
        while True:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                if _http_json(f"{client_url}/health").get("health") == "true":
                    return
            if self._etcd.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"etcd did not start:\n{_tail(self.root / 'etcd.log')}")
            time.sleep(0.1)

    def _start_patroni(self, node: PatroniNode) -> None:
        node.base.mkdir(exist_ok=True)
        for sub in ("run", "log"):
            (node.base / sub).mkdir(exist_ok=True)
            _chown(node.base / sub, POSTGRES_USER)
        _chown(node.base, POSTGRES_USER)
        node.base.chmod(0o700)
        # JSON is YAML: no YAML writer needed
        node.config_path.write_text(
            json.dumps(node.config(self.etcd_port, self.parameters), indent=2)
        )
        _chown(node.config_path, POSTGRES_USER)
        node.spawned = _spawn(
            POSTGRES_USER, [PATRONI, str(node.config_path)], node.log_path, node.base
        )

    def stop(self) -> None:
        """Kill everything (Patroni first, so it restarts nothing), remove the directory."""
        for node in self.nodes:
            if node.spawned is not None:
                node.spawned.kill()
                node.spawned = None
        for node in self.nodes:
            self._kill_postmaster(node, signal.SIGQUIT)  # immediate shutdown, cleans up
        for node in self.nodes:
            self._kill_postmaster(node, signal.SIGKILL)
        if self._etcd is not None:
            self._etcd.kill()
            self._etcd = None
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _kill_postmaster(node: PatroniNode, sig: signal.Signals) -> None:
        """Signal the postmaster's process group (it leads its own session: Patroni
        starts it after ``setsid``); after SIGKILL, remove its SysV segment."""
        found = node.postmaster()
        if found is None or not _is_postmaster_of(found[0], node.data_dir):
            return  # stopped, or a stale pid file (the pid may be someone else's now)
        pid, shmid = found
        if os.getpgid(pid) == pid:
            _killpg(pid, sig)
        _kill(pid, sig)
        gone = _wait_gone([pid], 10)
        if gone and sig == signal.SIGKILL and shmid is not None:
            subprocess.run(["ipcrm", "-m", str(shmid)], capture_output=True, check=False)

    # --- state ------------------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        """``GET /cluster`` of the first node that answers (empty if none does)."""
        for node in self.nodes:
            if node.spawned is None:
                continue
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                found: list[dict[str, Any]] = _http_json(f"{node.rest_url}/cluster")["members"]
                return found
        return []

    def _by_role(self, role: str) -> PatroniNode | None:
        for member in self.members():
            if member.get("role") == role and member.get("state") in ("running", "streaming"):
                node = self.node(member["name"])
                # etcd still names a killed leader until its key expires (ttl)
                return node if node.spawned is not None else None
        return None

    def node(self, name: str) -> PatroniNode:
        return next(n for n in self.nodes if n.name == name)

    def leader(self) -> PatroniNode | None:
        """The running leader (Patroni's view), or None during a failover."""
        return self._by_role("leader")

    def sync_standby(self) -> PatroniNode | None:
        return self._by_role("sync_standby")

    def wait_healthy(self, timeout: float = FORM_TIMEOUT_SECONDS) -> PatroniNode:
        """Wait for a leader and (with more than one node) a sync standby; returns the
        leader."""
        deadline = time.monotonic() + timeout
        while True:
            leader, standby = self.leader(), self.sync_standby()
            if (
                leader is not None
                and (standby is not None or self.size == 1)
                and self._writable(leader)
            ):
                return leader
            for node in self.nodes:
                if node.spawned is not None and node.spawned.proc.poll() is not None:
                    raise RuntimeError(f"patroni {node.name} exited:\n{self.logs(node)}")
            if time.monotonic() > deadline:
                logs = "\n".join(self.logs(n) for n in self.nodes)
                raise RuntimeError(
                    f"no leader + sync standby after {timeout} s: {self.members()}\n{logs}"
                )
            time.sleep(0.25)

    def wait_leader(self, timeout: float, other_than: str | None = None) -> PatroniNode:
        """Wait for a writable leader (not ``other_than``); returns it."""
        deadline = time.monotonic() + timeout
        while True:
            leader = self.leader()
            if leader is not None and leader.name != other_than and self._writable(leader):
                return leader
            if time.monotonic() > deadline:
                raise RuntimeError(f"no new leader after {timeout} s: {self.members()}")
            time.sleep(0.1)

    @staticmethod
    def _writable(node: PatroniNode) -> bool:
        try:
            with psycopg.connect(node.admin_dsn(), autocommit=True) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                return row is not None and row[0] is False
        except psycopg.Error:
            return False

    def logs(self, node: PatroniNode) -> str:
        pg_logs = sorted((node.data_dir / "log").glob("*")) if node.data_dir.exists() else []
        parts = [f"--- {node.name} patroni\n{_tail(node.log_path)}"]
        parts.extend(f"--- {node.name} {p.name}\n{_tail(p)}" for p in pg_logs[-1:])
        return "\n".join(parts)

    # --- clients ----------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres", **params: str) -> str:
        """The multi-host DSN over every node, ``target_session_attrs=read-write``."""
        hosts = ",".join("127.0.0.1" for _ in self.nodes)
        ports = ",".join(str(n.pg_port) for n in self.nodes)
        extra = "".join(f" {k}={v}" for k, v in params.items())
        return (
            f"host={hosts} port={ports} user=postgres password={SUPERUSER_PASSWORD} "
            f"dbname={dbname} target_session_attrs=read-write connect_timeout=3{extra}"
        )

    def create_database(self) -> str:
        """A new empty database on the primary (replicated); returns its multi-host DSN."""
        name = f"stemedb{next(self._names)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    # --- failures ---------------------------------------------------------------------

    def kill_leader(self) -> PatroniNode:
        """``kill -9`` the leader's Patroni and its postmaster (its machine is lost)."""
        leader = self.leader()
        if leader is None or leader.spawned is None:
            raise RuntimeError(f"no leader to kill: {self.members()}")
        patroni = leader.patroni_pid()
        if patroni is not None:
            _kill(patroni)
        self._kill_postmaster(leader, signal.SIGKILL)  # with its backends
        leader.spawned.kill()
        leader.spawned = None
        return leader

    def revive(self, node: PatroniNode, timeout: float = FORM_TIMEOUT_SECONDS) -> None:
        """Start a killed node's Patroni again and wait until the cluster is healthy."""
        if node.spawned is not None:
            raise RuntimeError(f"{node.name} is running")
        self._start_patroni(node)
        self.wait_healthy(timeout)


@contextlib.contextmanager
def patroni_cluster(
    size: int = 2, parameters: dict[str, str] | None = None
) -> Iterator[PatroniCluster]:
    cluster = PatroniCluster(size=size, parameters=parameters or {}).start()
    try:
        yield cluster
    finally:
        cluster.stop()
