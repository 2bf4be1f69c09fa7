"""``runtime.topology.Topology``: one answer per process to "what does this one own?"."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from stemedb.config import Config
from stemedb.errors import ValidationError
from stemedb.runtime.supervisor import WorkerRole
from stemedb.runtime.topology import Topology

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


def test_a_postgres_backend_refuses_to_start_instead_of_running_on_the_local_store(
    tmp_path: Path,
) -> None:
    config = msgspec.convert(
        {
            "storage": {
                "backend": "postgres",
                "postgres_dsn": "host=127.0.0.1 dbname=stemedb",
                "data_dir": str(tmp_path / "data"),
            }
        },
        Config,
    )
    with pytest.raises(ValidationError, match=r"storage\.backend") as raised:
        Topology.of(config, None).open_engine(config)
    assert raised.value.field == "storage.backend"
    assert not (tmp_path / "data").exists()  # nothing was created on the local store
