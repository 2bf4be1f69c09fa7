"""Backups and point-in-time recovery in cluster mode with pgBackRest (Debian 2.45).

In cluster mode PostgreSQL is the system of record, so its backups are PostgreSQL
backups: pgBackRest archives every WAL segment (Patroni's ``archive_command``) and takes
full/differential/incremental backups into a repository on S3 — the same bucket the
embedded mode writes to (``[backup] s3_url``), under its own path. This module runs the
``pgbackrest`` command line (never a copy of its work): ``stanza-create``, ``check``,
``backup``, ``info``, ``verify`` and ``restore`` (``--type=time`` for a point in time),
and, for ``stemedb backup verify``, starts a throwaway PostgreSQL on a trial restore.

pgBackRest reads its repository settings from its own configuration file
(``/etc/pgbackrest/pgbackrest.conf``, or ``PGBACKREST_CONFIG``) and ``PGBACKREST_*``
variables (``deploy/cluster/pgbackrest/``). It must run as the owner of the PostgreSQL
data directory: when we are root, commands run as ``postgres`` (``runuser``).
``repo_options`` maps an ``s3://bucket/prefix`` and an endpoint URL to the repository
options, so a configuration can be written from the embedded mode's S3 settings.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from stemedb.errors import StemeError, StorageError, ValidationError
from stemedb.ops.backup.verify import StageResult, VerifyResult

DEFAULT_STANZA: Final = "stemedb"
DEFAULT_USER: Final = "postgres"
PG_BIN: Final = Path("/usr/lib/postgresql/15/bin")
COMMAND_TIMEOUT_SECONDS: Final = 6 * 3600.0
START_TIMEOUT_SECONDS: Final = 300.0
BackupType = Literal["full", "diff", "incr"]
BACKUP_TYPES: Final = ("full", "diff", "incr")
VERIFY_STAGES: Final = ("backup", "checksums", "trial_restore", "state_hash")


def pgbackrest_time(at: float) -> str:
    """A ``recovery_target_time`` PostgreSQL and pgBackRest read unambiguously (UTC)."""
    moment = datetime.fromtimestamp(at, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f+00")


def repo_options(s3_url: str, endpoint_url: str = "", region: str = "") -> dict[str, str]:
    """pgBackRest's repository options for ``s3://bucket/prefix`` (the repository goes
    under ``prefix/pgbackrest``); ``endpoint_url`` is an S3-compatible store's URL
    (``https://host:port``; pgBackRest speaks TLS only), else AWS's endpoint of
    ``region``. Keys are not included: pgBackRest reads ``PGBACKREST_REPO1_S3_KEY`` and
    ``PGBACKREST_REPO1_S3_KEY_SECRET``."""
    parts = urlsplit(s3_url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValidationError("backup.s3_url", "must be s3://bucket/prefix", s3_url)
    prefix = parts.path.strip("/")
    region = region or os.environ.get("AWS_REGION", "") or "us-east-1"
    options = {
        "repo1-type": "s3",
        "repo1-s3-bucket": parts.netloc,
        "repo1-path": "/" + "/".join(p for p in (prefix, "pgbackrest") if p),
        "repo1-s3-region": region,
        "repo1-s3-endpoint": f"s3.{region}.amazonaws.com",
    }
    if endpoint_url:
        endpoint = urlsplit(endpoint_url)
        if endpoint.scheme != "https" or not endpoint.hostname:
            raise ValidationError(
                "endpoint_url", "pgBackRest needs https://host[:port]", endpoint_url
            )
        options["repo1-s3-endpoint"] = endpoint.hostname
        if endpoint.port:
            options["repo1-storage-port"] = str(endpoint.port)
        options["repo1-s3-uri-style"] = "path"
    return options


@dataclass(frozen=True)
class BackupSet:
    """One backup of ``pgbackrest info``."""

    label: str
    type: str
    started_at: float
    stopped_at: float
    lsn_start: str
    lsn_stop: str
    wal_start: str
    wal_stop: str
    size_bytes: int
    repo_size_bytes: int
    prior: str | None
    error: bool

    @classmethod
    def from_info(cls, item: Mapping[str, Any]) -> BackupSet:
        info = item.get("info", {})
        return cls(
            label=item["label"],
            type=item["type"],
            started_at=float(item["timestamp"]["start"]),
            stopped_at=float(item["timestamp"]["stop"]),
            lsn_start=item.get("lsn", {}).get("start", ""),
            lsn_stop=item.get("lsn", {}).get("stop", ""),
            wal_start=item.get("archive", {}).get("start", ""),
            wal_stop=item.get("archive", {}).get("stop", ""),
            size_bytes=int(info.get("size", 0)),
            repo_size_bytes=int(info.get("repository", {}).get("size", 0)),
            prior=item.get("prior"),
            error=bool(item.get("error", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "type": self.type,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "lsn_start": self.lsn_start,
            "lsn_stop": self.lsn_stop,
            "wal_start": self.wal_start,
            "wal_stop": self.wal_stop,
            "size_bytes": self.size_bytes,
            "repo_size_bytes": self.repo_size_bytes,
            "prior": self.prior,
            "error": self.error,
        }


@dataclass(frozen=True)
class StanzaInfo:
    """``pgbackrest info`` of one stanza: its status, backups (oldest first), WAL range."""

    name: str
    status_code: int
    status: str
    backups: tuple[BackupSet, ...]
    wal_min: str | None
    wal_max: str | None

    @property
    def ok(self) -> bool:
        return self.status_code == 0

    @classmethod
    def from_info(cls, item: Mapping[str, Any]) -> StanzaInfo:
        archives = item.get("archive", [])
        return cls(
            name=item["name"],
            status_code=int(item["status"]["code"]),
            status=item["status"]["message"],
            backups=tuple(BackupSet.from_info(b) for b in item.get("backup", [])),
            wal_min=archives[-1].get("min") if archives else None,
            wal_max=archives[-1].get("max") if archives else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "stanza": self.name,
            "status_code": self.status_code,
            "status": self.status,
            "wal_min": self.wal_min,
            "wal_max": self.wal_max,
            "backups": [b.to_dict() for b in self.backups],
        }


@dataclass(frozen=True)
class PgBackRest:
    """The ``pgbackrest`` command for one stanza.

    ``config`` is pgBackRest's configuration file (None: its default or
    ``PGBACKREST_CONFIG``); ``options`` are extra ``--name=value`` options of every
    command; ``user`` runs the command as that user through ``runuser`` when we are root
    (pgBackRest must run as the data directory's owner)."""

    stanza: str = DEFAULT_STANZA
    config: Path | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] | None = None
    user: str | None = DEFAULT_USER
    binary: str = "pgbackrest"

    def argv(self, command: str, *extra: str) -> list[str]:
        args = [shutil.which(self.binary) or self.binary]
        if self.config is not None:
            args.append(f"--config={self.config}")
        args.append(f"--stanza={self.stanza}")
        args.extend(f"--{name}={value}" for name, value in self.options.items())
        args.extend(extra)
        args.append(command)
        return _as_user(self.user, args)

    def run(self, command: str, *extra: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> str:
        """Run one command; its standard output, or StorageError with pgBackRest's message."""
        argv = self.argv(command, *extra)
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env=dict(self.env) if self.env is not None else None,
            )
        except FileNotFoundError:
            raise StorageError(
                f"pgbackrest is not installed ({argv[0]}); apt install pgbackrest",
                code="pgbackrest_missing",
            ) from None
        except subprocess.TimeoutExpired:
            raise StorageError(
                f"pgbackrest {command} did not finish in {timeout:.0f} s",
                code="pgbackrest_timeout",
            ) from None
        if done.returncode != 0:
            message = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise StorageError(
                f"pgbackrest {command} failed (exit {done.returncode}): "
                + " | ".join(message[-5:]),
                code="pgbackrest_failed",
            )
        return done.stdout

    def stanza_create(self) -> None:
        """Create the stanza in the repository (idempotent; run once, on the primary)."""
        self.run("stanza-create")

    def check(self) -> None:
        """pgBackRest's own end-to-end check: configuration, archiving of a new segment."""
        self.run("check")

    def backup(self, kind: BackupType = "full") -> BackupSet:
        """Take a backup (online; on the primary) and return it (the newest set)."""
        if kind not in BACKUP_TYPES:
            raise ValidationError("type", f"must be one of {', '.join(BACKUP_TYPES)}", kind)
        self.run("backup", f"--type={kind}")
        backups = self.info().backups
        if not backups:
            raise StorageError("pgbackrest backup succeeded but info lists no backup")
        return backups[-1]

    def info(self) -> StanzaInfo:
        out = json.loads(self.run("info", "--output=json", timeout=300))
        found = [s for s in out if s.get("name") == self.stanza]
        if not found:
            raise StorageError(f"pgbackrest info does not know stanza {self.stanza!r}")
        return StanzaInfo.from_info(found[0])

    def verify(self) -> None:
        """pgBackRest's ``verify``: checksums of every backup file and archived segment."""
        self.run("verify")

    def restore(
        self,
        pg_path: Path,
        *,
        to_time: float | None = None,
        backup_set: str | None = None,
        delta: bool = False,
        immediate: bool = False,
        archive_mode: Literal["preserve", "off"] = "preserve",
    ) -> None:
        """Restore into ``pg_path`` (empty, or ``delta`` to reuse what is there): the
        backup's consistent point and then the archive up to ``to_time`` (recovery stops
        before the first commit after it, then promotes), else to the end of the
        archive (``immediate``: only to the backup's consistent point). pgBackRest picks
        the newest backup that ended before ``to_time`` unless ``backup_set`` names one."""
        extra = [f"--pg1-path={pg_path}", f"--archive-mode={archive_mode}"]
        if delta:
            extra.append("--delta")
        if backup_set is not None:
            extra.append(f"--set={backup_set}")
        if to_time is not None:
            extra += [
                "--type=time",
                f"--target={pgbackrest_time(to_time)}",
                "--target-action=promote",
            ]
        elif immediate:
            extra += ["--type=immediate", "--target-action=promote"]
        else:
            extra += ["--type=default"]
        self.run("restore", *extra)


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    if user is None or os.geteuid() != 0 or pwd.getpwuid(os.geteuid()).pw_name == user:
        return argv
    return [
        shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin") or "runuser",
        "-u",
        user,
        "--",
        *argv,
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ScratchPostgres:
    """A throwaway PostgreSQL on a restored data directory (loopback, a free port,
    archiving and synchronous replication off), for a trial restore's checks."""

    data_dir: Path
    user: str | None = DEFAULT_USER
    pg_bin: Path = PG_BIN
    port: int = 0

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user=postgres"

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> ScratchPostgres:
        self.port = self.port or _free_port()
        # The restored configuration may name the old host's files and standbys (Patroni
        # writes them); a trial restore uses its own, trusts loopback and archives nothing.
        hba = self.data_dir / "stemedb-scratch-hba.conf"
        hba.write_text("host all all 127.0.0.1/32 trust\n")
        ident = self.data_dir / "stemedb-scratch-ident.conf"
        ident.write_text("")
        for path in (hba, ident):
            if self.user is not None and os.geteuid() == 0:
                shutil.chown(path, self.user, self.user)
        settings = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            # loopback TCP only: a socket path under a deep scratch directory can pass the
            # 107-byte limit of Unix sockets
            "unix_socket_directories": "",
            "hba_file": str(hba),
            "ident_file": str(ident),
            "archive_mode": "off",
            "synchronous_standby_names": "",
            "primary_conninfo": "",
            "hot_standby": "on",
            "cluster_name": "stemedb-trial-restore",
        }
        options = " ".join(f"-c {k}='{v}'" for k, v in settings.items())
        done = subprocess.run(
            _as_user(
                self.user,
                [
                    str(self.pg_bin / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.data_dir.parent / f"{self.data_dir.name}.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "start",
                ],
            ),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout + 30,
        )
        if done.returncode != 0:
            raise StorageError(
                f"the restored PostgreSQL did not start: {done.stdout}{done.stderr}"
                + self.log_tail(),
                code="trial_restore_failed",
            )
        return self

    def log_tail(self, lines: int = 20) -> str:
        log = self.data_dir.parent / f"{self.data_dir.name}.log"
        try:
            return "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def state(self) -> str:
        """``pg_controldata``'s "Database cluster state" (``in production`` once
        recovery has ended and the server promoted)."""
        done = subprocess.run(
            _as_user(self.user, [str(self.pg_bin / "pg_controldata"), "-D", str(self.data_dir)]),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        for line in done.stdout.splitlines():
            if line.startswith("Database cluster state:"):
                return line.split(":", 1)[1].strip()
        return ""

    def wait_promoted(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Until recovery has ended (the target reached and the server promoted)."""
        deadline = time.monotonic() + timeout
        while self.state() != "in production":
            if time.monotonic() > deadline:
                raise StorageError(
                    f"the restored PostgreSQL was still in recovery after {timeout:.0f} s"
                    + self.log_tail(),
                    code="trial_restore_failed",
                )
            time.sleep(0.2)

    def stop(self) -> None:
        subprocess.run(
            _as_user(
                self.user,
                [str(self.pg_bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop"],
            ),
            capture_output=True,
            check=False,
            timeout=120,
        )


@contextmanager
def restored_postgres(
    tool: PgBackRest,
    scratch: Path,
    *,
    to_time: float | None = None,
    backup_set: str | None = None,
    immediate: bool = False,
    pg_bin: Path = PG_BIN,
) -> Iterator[ScratchPostgres]:
    """A trial restore (archiving off, so the repository is untouched) under ``scratch``,
    running until the block ends; then stopped and removed."""
    data = scratch / "pgdata"
    data.mkdir(mode=0o700, parents=True)
    if tool.user is not None and os.geteuid() == 0:
        for path in (scratch, data):
            shutil.chown(path, tool.user, tool.user)
    server = ScratchPostgres(data, user=tool.user, pg_bin=pg_bin)
    try:
        tool.restore(
            data, to_time=to_time, backup_set=backup_set, immediate=immediate, archive_mode="off"
        )
        server.start()
        server.wait_promoted()
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def describe(backups: Sequence[BackupSet]) -> list[str]:
    """One line per backup, oldest first (for ``stemedb backup list``)."""
    return [
        f"{b.label} {b.type} {datetime.fromtimestamp(b.stopped_at, tz=UTC):%Y-%m-%dT%H:%M:%SZ}"
        f" LSN {b.lsn_start}..{b.lsn_stop} {b.size_bytes / 2**20:.1f} MiB"
        f" ({b.repo_size_bytes / 2**20:.1f} MiB in the repository)"
        for b in backups
    ]


StateHash = Callable[[str], tuple[int, str]]


def check_scratch_root(scratch_root: Path, user: str | None) -> None:
    """Refuse, before any work, a scratch directory the trial restore cannot use:
    pgBackRest and the throwaway PostgreSQL run as ``user`` (when we are root), so every
    directory above the restore must let that user through."""
    if not scratch_root.is_dir():
        raise ValidationError("--scratch-dir", f"{scratch_root} is not a directory")
    if user is None or os.geteuid() != 0:
        return
    uid = pwd.getpwnam(user).pw_uid
    for path in (scratch_root.resolve(), *scratch_root.resolve().parents):
        st = path.stat()
        if st.st_uid != uid and not st.st_mode & 0o001:
            raise ValidationError(
                "--scratch-dir",
                f"the {user} user (pgBackRest and the trial PostgreSQL run as it) cannot"
                f" traverse {path}: chmod o+x it, or choose another --scratch-dir",
            )


def verify_cluster_backup(
    tool: PgBackRest,
    scratch_root: Path,
    dbname: str,
    state_hash: StateHash,
    *,
    backup_set: str | None = None,
    pg_bin: Path = PG_BIN,
) -> VerifyResult:
    """``stemedb backup verify`` in cluster mode, the embedded mode's four stages:
    1 the backup set is in ``pgbackrest info`` without error; 2 ``pgbackrest verify``
    (checksums of every backup file and archived segment); 3 a trial restore of the set
    (to its consistent point, archiving off) on which a throwaway PostgreSQL finishes
    recovery; 4 the StemeDB state hash of the restored database ``dbname``
    (``state_hash(dsn)`` → (last LSN, hash); the same definition as an embedded node's,
    so a cluster imported from a node hashes as that node did)."""
    check_scratch_root(scratch_root, tool.user)
    result = VerifyResult(backup=backup_set or "latest", ok=False, failed_stage=None)
    chosen: list[BackupSet] = []

    def stage_backup() -> str:
        backups = tool.info().backups
        found = [b for b in backups if backup_set in (None, b.label)]
        if not found:
            raise StorageError(f"no backup {backup_set or ''} in the stanza {tool.stanza!r}")
        chosen.append(found[-1])
        if found[-1].error:
            raise StorageError(f"backup {found[-1].label} is marked with an error")
        result.backup = found[-1].label
        return f"{found[-1].label} ({found[-1].type}, LSN {found[-1].lsn_stop})"

    def stage_checksums() -> str:
        tool.verify()
        return "pgbackrest verify: every backup file and archived segment"

    hashes: list[tuple[int, str]] = []

    def stage_trial_restore() -> str:
        scratch = Path(tempfile.mkdtemp(prefix="stemedb-pgbackrest-verify-", dir=scratch_root))
        scratch.chmod(0o755)
        try:
            with restored_postgres(
                tool, scratch, backup_set=chosen[0].label, immediate=True, pg_bin=pg_bin
            ) as server:
                hashes.append(state_hash(server.dsn(dbname)))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return f"restored {chosen[0].label} and PostgreSQL finished recovery"

    def stage_state_hash() -> str:
        last_lsn, digest = hashes[0]
        result.last_lsn, result.state_hash = last_lsn, digest
        return f"state hash at LSN {last_lsn} = {digest}"

    _run_stages(result, (stage_backup, stage_checksums, stage_trial_restore, stage_state_hash))
    return result


def _run_stages(result: VerifyResult, stages: Sequence[Callable[[], str]]) -> None:
    """Each stage in order, the next only if the previous passed; its detail recorded."""
    for number, (name, run) in enumerate(zip(VERIFY_STAGES, stages, strict=True), start=1):
        if result.failed_stage is not None:
            result.stages.append(StageResult(number, name, "skipped", "", 0.0))
            continue
        started = time.monotonic()
        try:
            detail = run()
        except StemeError as exc:
            result.failed_stage = name
            detail, status = exc.message, "failed"
        else:
            status = "passed"
        result.stages.append(StageResult(number, name, status, detail, time.monotonic() - started))
    result.ok = result.failed_stage is None
