"""Cluster-mode backups and point-in-time recovery with pgBackRest, for real.

A Patroni-managed PostgreSQL 15 (``support/patroni.py``, one node, archiving through
``pgbackrest archive-push``) is backed up with pgBackRest 2.45 into the local OpenStack
Swift's S3 API (``swift_server.py``: the same S3 the embedded-mode tests archive to),
then restored to a point in time between two sets of commits by
``stemedb.ops.pgbackrest``; the restored database holds exactly what was committed up to
that time. pgBackRest speaks S3 over TLS only, so a real nginx terminates TLS on loopback
in front of Swift (a fresh self-signed certificate, given to pgBackRest as its CA).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from support.engines import engine_for_test
from support.patroni import PatroniCluster
from support.patroni import unavailable_reason as patroni_unavailable
from support.server import free_port
from support.tls import nginx_main, self_signed_certificate
from swift_server import ACCESS_KEY, REGION, SECRET_KEY, SwiftS3
from typer.testing import CliRunner

from stemedb.cli.main import app
from stemedb.model.signing import AgentKey, sign_assertion
from stemedb.ops.pgbackrest import PgBackRest, repo_options, restored_postgres
from stemedb.ops.s3 import S3Client
from stemedb.store.postgres import PostgresStore, migrate

pytestmark = pytest.mark.slow

BUCKET = "stemedb-cluster-backups"
S3_URL = f"s3://{BUCKET}/pilot"


@dataclass
class TlsS3:
    """nginx terminating TLS on loopback in front of Swift's S3 API."""

    endpoint: str  # https://127.0.0.1:PORT
    ca_file: Path


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # world-traversable: pgBackRest and PostgreSQL run as postgres, nginx's workers as nobody
    path = Path(tempfile.mkdtemp(prefix="stemedb-pgbackrest-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_s3(swift: SwiftS3, workdir: Path) -> Iterator[TlsS3]:
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    if nginx is None:
        pytest.skip("nginx is not installed (bash scripts/install-debian-deps.sh)")
    prefix = workdir / "nginx"
    prefix.mkdir()
    cert, key = self_signed_certificate(prefix, "127.0.0.1", "DNS:127.0.0.1,IP:127.0.0.1")
    cert.chmod(0o644)
    port = free_port()
    main = nginx_main(
        prefix,
        f"    server {{\n        listen 127.0.0.1:{port} ssl;\n"
        f"        ssl_certificate {cert};\n        ssl_certificate_key {key};\n"
        "        client_max_body_size 0;\n        proxy_request_buffering off;\n"
        "        proxy_http_version 1.1;\n"
        "        location / {\n"
        # the S3 signature covers the Host header: pass the client's unchanged
        "            proxy_set_header Host $http_host;\n"
        f"            proxy_pass {swift.endpoint};\n"
        "        }\n    }",
        worker_connections=64,
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(main), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}"],
            input=b"",
            capture_output=True,
            timeout=10,
            check=False,
        ).returncode:
            assert time.monotonic() < deadline and proc.poll() is None, "nginx did not start"
            time.sleep(0.1)
        # pgBackRest matches the host against the certificate's DNS names only
        yield TlsS3(f"https://127.0.0.1:{port}", cert)
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def pgbackrest_conf(
    swift: SwiftS3, tls_s3: TlsS3, workdir: Path, monkeypatch_module: pytest.MonkeyPatch
) -> Path:
    """pgBackRest's configuration: the repository in the Swift bucket (from the same
    ``s3://`` URL the embedded mode would use), logs/locks/spool in the work dir."""
    for name, value in {
        "STEMEDB_S3_ENDPOINT_URL": swift.endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch_module.setenv(name, value)
    S3Client.from_env().create_bucket(BUCKET)
    state = workdir / "pgbackrest"
    for sub in ("log", "lock", "spool"):
        (state / sub).mkdir(parents=True)
        shutil.chown(state / sub, "postgres", "postgres")
    options = {
        **repo_options(S3_URL, tls_s3.endpoint, REGION),
        "repo1-s3-key": ACCESS_KEY,
        "repo1-s3-key-secret": SECRET_KEY,
        "repo1-storage-ca-file": str(tls_s3.ca_file),
        "repo1-retention-full": "2",
        # small files bundled into a few objects (one PUT each, not one per file)
        "repo1-bundle": "y",
        "compress-type": "zst",
        "start-fast": "y",
        "log-level-console": "warn",
        "log-level-file": "info",
        "log-path": str(state / "log"),
        "lock-path": str(state / "lock"),
        "spool-path": str(state / "spool"),
    }
    conf = workdir / "pgbackrest.conf"
    conf.write_text("[global]\n" + "".join(f"{k}={v}\n" for k, v in options.items()))
    conf.chmod(0o644)
    return conf


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def archived_cluster(pgbackrest_conf: Path) -> Iterator[tuple[PatroniCluster, PgBackRest]]:
    """One Patroni node archiving every segment with pgBackRest, the stanza created."""
    reason = patroni_unavailable()
    if reason is not None:
        pytest.skip(reason)
    archive = f"pgbackrest --config={pgbackrest_conf} --stanza=stemedb archive-push %p"
    cluster = PatroniCluster(
        size=1, parameters={"archive_mode": "on", "archive_command": archive}
    ).start()
    try:
        leader = cluster.nodes[0]
        stanza = f"\n[stemedb]\npg1-path={leader.data_dir}\npg1-port={leader.pg_port}\n"
        stanza += f"pg1-socket-path={leader.base / 'run'}\npg1-user=postgres\n"
        with pgbackrest_conf.open("a") as f:
            f.write(stanza)
        tool = PgBackRest(config=pgbackrest_conf)
        tool.stanza_create()
        tool.check()
        yield cluster, tool
    finally:
        cluster.stop()


def _commit_rows(dsn: str, first: int, count: int) -> float:
    """Insert rows first..first+count-1 (one transaction each); the time after the last."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(first, first + count):
            conn.execute("INSERT INTO claims (n, body) VALUES (%s, %s)", (i, f"claim {i}"))
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
    assert row is not None
    return float(row[0])


def _switch_and_wait_archived(dsn: str, timeout: float = 60) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        deadline = time.monotonic() + timeout
        while True:
            archived = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
            if archived is not None and archived[0] is not None and archived[0] >= row[0]:
                return
            assert time.monotonic() < deadline, f"segment {row[0]} not archived"
            time.sleep(0.2)


def _query(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return list(conn.execute(sql).fetchall())


def test_backup_and_restore_to_a_point_in_time_through_s3(
    archived_cluster: tuple[PatroniCluster, PgBackRest], workdir: Path
) -> None:
    cluster, tool = archived_cluster
    dsn = cluster.create_database()
    dbname = dsn.split("dbname=")[1].split()[0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE claims (n int PRIMARY KEY, body text NOT NULL)")
    _commit_rows(dsn, 0, 20)
    backup = tool.backup("full")
    assert backup.type == "full" and not backup.error and backup.lsn_stop
    _commit_rows(dsn, 20, 30)  # after the backup: only in the archived WAL
    time.sleep(1.0)
    target = time.time()
    time.sleep(1.0)
    _commit_rows(dsn, 50, 25)  # after the target: must not be restored
    _switch_and_wait_archived(dsn)

    info = tool.info()
    assert info.ok and [b.label for b in info.backups] == [backup.label]
    assert info.wal_min is not None and info.wal_max is not None
    tool.verify()  # pgBackRest's checksums of the backup and the archive

    with restored_postgres(tool, workdir / "pitr", to_time=target) as restored:
        rows = _query(restored.dsn(dbname), "SELECT n FROM claims ORDER BY n")
    assert [n for (n,) in rows] == list(range(50))

    with restored_postgres(tool, workdir / "latest") as restored:  # end of the archive
        count = _query(restored.dsn(dbname), "SELECT count(*) FROM claims")
    assert count == [(75,)]


def test_cli_backup_create_and_list_run_pgbackrest_in_cluster_mode(
    archived_cluster: tuple[PatroniCluster, PgBackRest],
    pgbackrest_conf: Path,
    tmp_path: Path,
) -> None:
    cluster, tool = archived_cluster
    config = tmp_path / "node.toml"
    config.write_text(
        '[storage]\nbackend = "postgres"\n'
        f'postgres_dsn = "{cluster.dsn()}"\n'
        f'[backup]\ns3_url = "{S3_URL}"\n'
    )
    env = {"PGBACKREST_CONFIG": str(pgbackrest_conf), "PGBACKREST_STANZA": "stemedb"}
    runner = CliRunner()
    before = len(tool.info().backups)
    created = runner.invoke(
        app, ["backup", "create", "--config", str(config), "--type", "diff", "--json"], env=env
    )
    assert created.exit_code == 0, created.output
    listed = runner.invoke(app, ["backup", "list", "--config", str(config), "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.stdout)
    assert report["mode"] == "cluster" and report["stanza"] == "stemedb"
    assert len(report["backups"]) == before + 1
    assert report["backups"][-1]["type"] == "diff"


def _stemedb_database(cluster: PatroniCluster, tmp_path: Path, claims: int) -> str:
    """A migrated StemeDB database on the cluster holding ``claims`` signed assertions."""
    dsn = cluster.create_database()
    migrate(dsn)
    key = AgentKey.from_seed(b"\x61" * 32)
    engine = engine_for_test(tmp_path / "node", postgres_dsn=dsn)
    try:
        for i in range(claims):
            engine.write(
                sign_assertion(key, subject=f"verify/{i}", predicate="p", object=i, confidence=0.5)
            )
    finally:
        engine.close()
    return dsn


def test_cli_backup_verify_restores_a_set_and_checks_the_stemedb_state_hash(
    archived_cluster: tuple[PatroniCluster, PgBackRest],
    pgbackrest_conf: Path,
    workdir: Path,
    tmp_path: Path,
) -> None:
    cluster, tool = archived_cluster
    dsn = _stemedb_database(cluster, tmp_path, claims=12)
    store = PostgresStore(dsn, watch=False)
    try:
        expected = store.state_hash()
    finally:
        store.close()
    assert expected[0] == 12
    backup = tool.backup("full")
    config = tmp_path / "node.toml"
    config.write_text(f'[storage]\nbackend = "postgres"\npostgres_dsn = "{dsn}"\n')
    env = {"PGBACKREST_CONFIG": str(pgbackrest_conf), "PGBACKREST_STANZA": "stemedb"}
    runner = CliRunner()
    private = runner.invoke(
        app, ["backup", "verify", "latest", "--config", str(config), "--scratch-dir", str(tmp_path)]
    )
    assert private.exit_code == 2 and "cannot traverse" in private.output, private.output
    scratch = workdir / "verify-scratch"
    scratch.mkdir(mode=0o755)
    argv = ["backup", "verify", "--config", str(config), "--scratch-dir", str(scratch), "--json"]
    verified = runner.invoke(app, [*argv[:2], backup.label, *argv[2:]], env=env)
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert report["ok"] and report["backup"] == backup.label
    assert [s["status"] for s in report["stages"]] == ["passed"] * 4
    assert (report["last_lsn"], report["state_hash"]) == expected
    assert list(scratch.iterdir()) == []  # the trial restore is removed

    unknown = runner.invoke(app, [*argv[:2], "20000101-000000F", *argv[2:]], env=env)
    assert unknown.exit_code == 1
    stages = json.loads(unknown.stdout)["stages"]
    assert [s["status"] for s in stages] == ["failed", "skipped", "skipped", "skipped"]
