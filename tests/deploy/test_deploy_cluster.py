"""deploy/cluster/: the reference three-node topology, checked by the real tools.

- etcd: the three member files, with their host addresses replaced by loopback ports,
  start three real etcd 3.4 members (as the ``etcd`` user) that form one healthy cluster.
- Patroni: ``patroni --validate-config`` (Patroni 3.0.2's own validator) accepts each
  node's file with its host-specific values replaced, and the settings the docs promise
  are there (synchronous mode, one synchronous standby, pg_rewind, archiving through
  pgBackRest).
- pgBackRest: the shipped file has no option pgBackRest 2.45 does not know.
- nginx: ``nginx -t`` accepts the cluster upstream file.
- systemd: ``systemd-analyze verify`` reports nothing for each unit (offline root as in
  test_deploy_systemd.py).
- StemeDB: the node file loads with StemeDB's configuration loader in cluster mode.

Host-specific strings are replaced only where present (each replacement asserts that its
string is in the file), so an edit of a shipped file cannot silently escape the test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml
from deploy_helpers import DEPLOY, offline_systemd_root, require_tool, systemd_verify
from support.server import free_port
from support.tls import nginx_main, self_signed_certificate

from stemedb.config import load_config

CLUSTER = DEPLOY / "cluster"
HOSTS = ("10.0.0.11", "10.0.0.12", "10.0.0.13")
UNITS = CLUSTER / "systemd"
EXPECTED_UNITS = {
    "stemedb-etcd.service",
    "stemedb-patroni.service",
    "stemedb-node.service",
    "stemedb-pgbackrest-backup.service",
    "stemedb-pgbackrest-backup.timer",
}


def replaced(text: str, replacements: dict[str, str], name: str) -> str:
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in {name}: update this test"
        text = text.replace(old, new)
    return text


@pytest.fixture
def scratch() -> Iterator[Path]:
    # world-traversable: etcd, postgres and nginx's workers run as other users
    path = Path(tempfile.mkdtemp(prefix="stemedb-deploy-cluster-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- etcd --------------------------------------------------------------------------


@dataclass
class EtcdTrio:
    client_ports: list[int]
    members: list[dict[str, Any]]


@pytest.fixture(scope="module")
def etcd_trio() -> Iterator[EtcdTrio]:
    """The three shipped member files, host addresses replaced by loopback ports, run as
    three real etcd members (as the etcd user) until they list each other."""
    etcd = require_tool("etcd")
    if os.geteuid() != 0:
        pytest.skip("running etcd as the etcd user needs root")
    user = pwd.getpwnam("etcd")
    root = Path(tempfile.mkdtemp(prefix="stemedb-deploy-etcd-"))
    root.chmod(0o755)
    ports = [(free_port(), free_port()) for _ in HOSTS]
    replacements: dict[str, str] = {",http://127.0.0.1:2379": ""}
    for host, (client, peer) in zip(HOSTS, ports, strict=True):
        replacements[f"{host}:2379"] = f"127.0.0.1:{client}"
        replacements[f"{host}:2380"] = f"127.0.0.1:{peer}"
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    try:
        for i in range(1, 4):
            name = f"etcd-{i}.yml"
            text = (CLUSTER / "etcd" / name).read_text()
            text = replaced(text, {k: v for k, v in replacements.items() if k in text}, name)
            data = root / f"data-{i}"
            text = replaced(text, {"/var/lib/etcd/stemedb": str(data)}, name)
            (root / name).write_text(text)
            data.mkdir(mode=0o700)
            os.chown(data, user.pw_uid, user.pw_gid)
            logs.append((root / f"etcd-{i}.log").open("wb"))
            procs.append(
                subprocess.Popen(
                    ["runuser", "-u", "etcd", "--", etcd, "--config-file", str(root / name)],
                    stdout=logs[-1],
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=root,
                )
            )
        members: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while not members and time.monotonic() < deadline:
            try:
                if all(
                    httpx.get(f"http://127.0.0.1:{c}/health", timeout=2).json()["health"] == "true"
                    for c, _ in ports
                ):
                    url = f"http://127.0.0.1:{ports[0][0]}/v3/cluster/member/list"
                    members = httpx.post(url, json={}, timeout=2).json()["members"]
            except (httpx.HTTPError, ValueError, KeyError):
                time.sleep(0.2)
        yield EtcdTrio([c for c, _ in ports], members)
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for log in logs:
            log.close()
        shutil.rmtree(root, ignore_errors=True)


def test_the_three_etcd_members_form_one_healthy_cluster(etcd_trio: EtcdTrio) -> None:
    names = sorted(m["name"] for m in etcd_trio.members)
    assert names == ["etcd-1", "etcd-2", "etcd-3"], etcd_trio.members


# --- Patroni -----------------------------------------------------------------------


def _patroni_files() -> list[Path]:
    return sorted((CLUSTER / "patroni").glob("patroni-*.yml"))


def test_three_patroni_nodes_differ_only_in_name_and_addresses() -> None:
    files = _patroni_files()
    assert [f.name for f in files] == ["patroni-1.yml", "patroni-2.yml", "patroni-3.yml"]

    def normalised(i: int, f: Path) -> str:
        text = f.read_text()
        for host in HOSTS:
            text = text.replace(f"- {host}:2379", "- ETCD")
        return (
            text.replace(HOSTS[i], "HOST")
            .replace(f"pg-{i + 1}", "NAME")
            .replace(f"node {i + 1} of 3", "node N of 3")
        )

    texts = {normalised(i, f) for i, f in enumerate(files)}
    assert len(texts) == 1


def test_patroni_settings_the_docs_promise() -> None:
    for path in _patroni_files():
        config = yaml.safe_load(path.read_text())
        dcs = config["bootstrap"]["dcs"]
        assert dcs["synchronous_mode"] is True and dcs["synchronous_node_count"] == 1
        assert dcs["ttl"] >= dcs["loop_wait"] + 2 * dcs["retry_timeout"]
        assert dcs["postgresql"]["use_pg_rewind"] is True
        parameters = dcs["postgresql"]["parameters"]
        assert parameters["archive_mode"] == "on"
        assert parameters["archive_command"].startswith("pgbackrest --stanza=stemedb archive-push")
        assert parameters["synchronous_commit"] == "on"
        assert "etcd3" in config and "etcd" not in config  # v3 API (etcd 3.4: v2 is off)
        assert len(config["etcd3"]["hosts"]) == 3
        hba = config["postgresql"]["pg_hba"]
        assert any(line.startswith("host replication replicator ") for line in hba)
        assert all("trust" not in line for line in hba)
        assert "password" not in str(config["postgresql"]["authentication"])  # env only


def _render_patroni(path: Path, scratch: Path, etcd_ports: list[int]) -> Path:
    """Host-specific values replaced: listen addresses by free loopback ports, connect
    addresses by 127.0.0.2 (Patroni's validator refuses the literal 127.0.0.1, any
    other loopback address passes), etcd by the live members, paths by scratch ones."""
    text = path.read_text()
    host = next(h for h in HOSTS if f"listen: {h}:8008" in text)
    text = replaced(
        text,
        {
            f"listen: {host}:8008": f"listen: 127.0.0.1:{free_port()}",
            f"connect_address: {host}:8008": "connect_address: 127.0.0.2:8008",
            f"listen: {host}:5432,127.0.0.1:5432": f"listen: 127.0.0.1:{free_port()}",
            f"connect_address: {host}:5432": "connect_address: 127.0.0.2:5432",
            "/var/lib/postgresql/15/stemedb": str(scratch / path.stem / "data"),
            "/var/run/postgresql": str(scratch),
        },
        path.name,
    )
    for h, port in zip(HOSTS, etcd_ports, strict=True):
        text = replaced(text, {f"- {h}:2379": f"- 127.0.0.1:{port}"}, path.name)
    (scratch / path.stem).mkdir()
    rendered = scratch / path.name
    rendered.write_text(text)
    return rendered


def _env_file() -> dict[str, str]:
    """The shipped patroni.env.example: the secrets Patroni reads from the environment."""
    lines = (CLUSTER / "patroni" / "patroni.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _validate(patroni: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [patroni, "--validate-config", str(config)],
        env={"PATH": "/usr/bin:/bin", **_env_file()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", ["patroni-1.yml", "patroni-2.yml", "patroni-3.yml"])
def test_patroni_validate_config_accepts_each_node(
    scratch: Path, etcd_trio: EtcdTrio, name: str
) -> None:
    patroni = require_tool("patroni")
    rendered = _render_patroni(CLUSTER / "patroni" / name, scratch, etcd_trio.client_ports)
    result = _validate(patroni, rendered)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_patroni_validation_would_catch_a_mistake(scratch: Path, etcd_trio: EtcdTrio) -> None:
    patroni = require_tool("patroni")
    path = CLUSTER / "patroni" / "patroni-1.yml"
    rendered = _render_patroni(path, scratch, etcd_trio.client_ports)
    rendered.write_text(rendered.read_text().replace("mode: automatic", "mode: sometimes"))
    result = _validate(patroni, rendered)
    assert result.returncode != 0 and "watchdog.mode" in result.stdout + result.stderr


# --- pgBackRest ----------------------------------------------------------------------


def _pgbackrest_help(config: Path, command: str) -> str:
    pgbackrest = require_tool("pgbackrest")
    result = subprocess.run(
        [pgbackrest, f"--config={config}", "--stanza=stemedb", "help", command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize("command", ["backup", "archive-push", "archive-get", "restore", "info"])
def test_pgbackrest_knows_every_option_of_the_shipped_file(command: str) -> None:
    output = _pgbackrest_help(CLUSTER / "pgbackrest" / "pgbackrest.conf", command)
    assert "WARN" not in output and "ERROR" not in output, output


def test_pgbackrest_check_would_catch_a_typo(scratch: Path) -> None:
    broken = scratch / "pgbackrest.conf"
    text = (CLUSTER / "pgbackrest" / "pgbackrest.conf").read_text()
    broken.write_text(text.replace("repo1-s3-uri-style=", "repo1-s3-uri-stile="))
    assert "invalid option 'repo1-s3-uri-stile'" in _pgbackrest_help(broken, "backup")


# --- nginx ---------------------------------------------------------------------------


def test_nginx_t_accepts_the_cluster_upstream(scratch: Path) -> None:
    nginx = require_tool("nginx")
    conf = CLUSTER / "nginx" / "stemedb-cluster.conf"
    text = conf.read_text()
    servers = re.findall(r"^\s*server (10\.0\.0\.1[1-3]):18180 ", text, flags=re.M)
    assert servers == list(HOSTS)
    cert, key = self_signed_certificate(scratch)
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{free_port()};",
        "listen [::]:80;": "",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{free_port()} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "/etc/letsencrypt/live/stemedb.example.com/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/stemedb.example.com/privkey.pem": str(key),
        "/var/log/nginx/stemedb.access.log": str(scratch / "access.log"),
        "/var/log/nginx/stemedb.error.log": str(scratch / "error.log"),
        "/var/www/letsencrypt": str(scratch / "www"),
    }
    for host in HOSTS:
        replacements[f"server {host}:18180 "] = f"server 127.0.0.1:{free_port()} "
    (scratch / "stemedb.conf").write_text(replaced(text, replacements, conf.name))
    (scratch / "www").mkdir()
    main = nginx_main(scratch, f"    include {scratch / 'stemedb.conf'};")
    result = subprocess.run(
        [nginx, "-t", "-p", str(scratch), "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr and "[warn]" not in result.stderr, result.stderr


def test_nginx_cluster_file_keeps_the_single_node_choices() -> None:
    cluster = (CLUSTER / "nginx" / "stemedb-cluster.conf").read_text()
    single = (DEPLOY / "nginx" / "stemedb.conf").read_text()
    for line in (
        "client_max_body_size 4m;",
        "proxy_next_upstream error timeout http_502 http_503 http_504;",
        "proxy_set_header X-Request-Id $stemedb_request_id;",
        "location = /v1/feed/stream {",
        "location = /ready {",
    ):
        assert line in cluster and line in single, line


# --- systemd -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def offline_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = offline_systemd_root(tmp_path_factory.mktemp("systemd-cluster-root"), UNITS)
    for binary in (
        "usr/bin/etcd",
        "usr/bin/patroni",
        "usr/bin/psql",
        "bin/sh",
        "bin/kill",
        "opt/stemedb/deploy/bin/stemedb-job-metrics",
    ):
        stub = root / binary
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return root


def test_every_cluster_unit_is_shipped() -> None:
    assert {p.name for p in UNITS.iterdir()} == EXPECTED_UNITS


@pytest.mark.parametrize("unit", sorted(EXPECTED_UNITS))
def test_systemd_analyze_verify_reports_nothing(offline_root: Path, unit: str) -> None:
    result = systemd_verify(offline_root, unit)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr
    )


def test_units_run_the_shipped_configuration_as_their_own_users() -> None:
    def settings(name: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for line in (UNITS / name).read_text().splitlines():
            if "=" in line and not line.startswith(("#", "[")):
                key, value = line.split("=", 1)
                out.setdefault(key, []).append(value)
        return out

    etcd = settings("stemedb-etcd.service")
    assert etcd["User"] == ["etcd"] and etcd["Type"] == ["notify"]
    assert etcd["ExecStart"] == ["/usr/bin/etcd --config-file /etc/etcd/etcd.yml"]
    patroni = settings("stemedb-patroni.service")
    assert patroni["User"] == ["postgres"] and patroni["KillMode"] == ["process"]
    assert patroni["ExecStart"] == ["/usr/bin/patroni /etc/patroni/stemedb.yml"]
    node = settings("stemedb-node.service")
    assert node["User"] == ["stemedb"]
    assert node["ExecStart"] == [
        "/opt/stemedb/.venv/bin/stemedb serve --config /etc/stemedb/api.toml"
    ]
    backup = settings("stemedb-pgbackrest-backup.service")
    assert backup["User"] == ["postgres"] and "pg_is_in_recovery()" in backup["ExecCondition"][0]
    assert "stemedb backup create" in backup["ExecStart"][0]


# --- StemeDB -------------------------------------------------------------------------


def test_the_node_file_loads_in_cluster_mode() -> None:
    config = load_config(CLUSTER / "stemedb" / "node.toml", environ={})
    assert config.storage.backend == "postgres"
    dsn = config.storage.postgres_dsn
    assert "target_session_attrs=read-write" in dsn
    assert "host=" + ",".join(HOSTS) in dsn and "password" not in dsn
    assert config.rate_limit.storage.startswith("redis://")
    assert config.cluster.advertise_url == f"http://{HOSTS[0]}:18180"
    assert config.api.bind == f"{HOSTS[0]}:18180"
