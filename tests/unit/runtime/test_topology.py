"""``runtime.topology.Topology``: one answer per process to "what does this one own?"."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from stemedb.config import Config
from stemedb.errors import StorageError, ValidationError
from stemedb.runtime.supervisor import WorkerRole
from stemedb.runtime.topology import Topology, require_embedded

OWNS = ("owns_wal", "owns_archiver", "prunes_audit", "logs_ready")


def _config(*, writer_process: bool = True) -> Config:
    return msgspec.convert({"wal": {"writer_process": writer_process}}, Config)


def test_one_http_process_owns_everything_and_has_no_peers() -> None:
    topology = Topology.of(_config(), None)
    assert (topology.workers, topology.worker_index, topology.writer_process) == (1, 0, True)
    assert all(getattr(topology, name) for name in OWNS)
    assert not (topology.has_peers or topology.supervises_workers)
    assert not topology.reports_to_supervisor


def test_worker_0_of_two_owns_the_node_and_supervises_the_other() -> None:
    topology = Topology.of(_config(), WorkerRole(0, 2, 1234))
    assert all(getattr(topology, name) for name in OWNS)
    assert topology.has_peers and topology.supervises_workers
    assert not topology.reports_to_supervisor


def test_worker_1_owns_nothing_and_reports_to_worker_0() -> None:
    role = WorkerRole(1, 2, 1234)
    topology = Topology.of(_config(), role)
    assert not any(getattr(topology, name) for name in OWNS)
    assert topology.has_peers and not topology.supervises_workers
    assert topology.reports_to_supervisor and topology.peer_role is role


def test_test_seams_or_the_configuration_keep_the_writer_in_this_process() -> None:
    assert not Topology.of(_config(), None, seams=True).writer_process
    assert not Topology.of(_config(writer_process=False), None).writer_process


def _cluster(tmp_path: Path, **storage: object) -> Config:
    return msgspec.convert(
        {"storage": {"backend": "postgres", "data_dir": str(tmp_path / "data"), **storage}},
        Config,
    )


def test_a_cluster_node_has_no_writer_process_and_no_archiver(tmp_path: Path) -> None:
    config = _cluster(tmp_path, postgres_dsn="host=127.0.0.1 dbname=stemedb")
    topology = Topology.of(config, WorkerRole(0, 2, 1234))
    assert topology.cluster and not topology.writer_process and not topology.owns_archiver
    assert topology.owns_wal and topology.prunes_audit and topology.supervises_workers


def test_a_postgres_backend_without_a_dsn_refuses_to_start_naming_the_key(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValidationError, match=r"storage\.postgres_dsn") as raised:
        Topology.of(_cluster(tmp_path, postgres_dsn="  "), None)
    assert raised.value.field == "storage.postgres_dsn"
    assert not (tmp_path / "data").exists()  # nothing was created on the local store


def test_the_wal_archiver_is_refused_in_cluster_mode(tmp_path: Path) -> None:
    config = msgspec.convert(
        {
            "storage": {"backend": "postgres", "postgres_dsn": "host=127.0.0.1"},
            "archive": {"enabled": True, "s3_url": str(tmp_path / "archive")},
        },
        Config,
    )
    with pytest.raises(ValidationError, match="pgBackRest") as raised:
        Topology.of(config, None)
    assert raised.value.field == "archive.enabled"


@pytest.mark.parametrize("command", ["store rebuild", "wal verify", "verify"])
def test_embedded_only_commands_are_refused_in_cluster_mode(tmp_path: Path, command: str) -> None:
    config = _cluster(tmp_path, postgres_dsn="host=127.0.0.1")
    with pytest.raises(ValidationError, match=f"stemedb {command} works on the embedded"):
        require_embedded(config, command)
    require_embedded(_config(), command)  # embedded: fine


def test_a_cluster_node_on_an_unmigrated_database_refuses_naming_db_migrate(
    tmp_path: Path, postgres_dsn: str
) -> None:
    config = _cluster(tmp_path, postgres_dsn=postgres_dsn)
    with pytest.raises(StorageError, match="run `stemedb db migrate`") as raised:
        Topology.of(config, None).open_engine(config)
    assert not raised.value.retryable
    assert not (tmp_path / "data").exists()  # nothing was created on the local store


def test_auto_migrate_opens_an_empty_database_as_a_cluster_node(
    tmp_path: Path, postgres_dsn: str
) -> None:
    config = _cluster(tmp_path, postgres_dsn=postgres_dsn, auto_migrate=True)
    opened = Topology.of(config, None).open_engine(config)
    try:
        assert opened.engine.store.backend == "postgres" and opened.spare_links == []
        assert opened.engine.applied_lsn == 0 and not opened.engine.read_only
    finally:
        opened.engine.close()
