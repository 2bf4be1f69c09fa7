"""``stemedb keygen --out``'s key file goes through the I/O seam (``stemedb.sys``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemedb.cli.common import write_key_file
from stemedb.errors import DiskFullError, StorageError
from stemedb.model.signing import AgentKey
from stemedb.sys import RealFileSystem
from stemedb.sys.faults import FaultyFileSystem


def test_key_file_is_what_the_sdk_saves_and_loads(tmp_path: Path) -> None:
    key = AgentKey.from_seed(b"\x07" * 32)
    write_key_file(key, tmp_path / "cli.key")
    key.save(tmp_path / "sdk.key")
    assert (tmp_path / "cli.key").read_bytes() == (tmp_path / "sdk.key").read_bytes()
    assert AgentKey.load(tmp_path / "cli.key").agent_id == key.agent_id
    assert (tmp_path / "cli.key").stat().st_mode & 0o777 == 0o600


def test_failed_fsync_during_keygen_leaves_no_key_file(tmp_path: Path) -> None:
    fs = FaultyFileSystem(RealFileSystem())
    fs.fail_fsync()
    with pytest.raises(StorageError, match="fsync"):
        write_key_file(AgentKey.generate(), tmp_path / "agent.key", fs)
    assert not (tmp_path / "agent.key").exists()


def test_full_disk_during_keygen_leaves_no_key_file(tmp_path: Path) -> None:
    fs = FaultyFileSystem(RealFileSystem())
    fs.fill_disk(10)
    with pytest.raises(DiskFullError):
        write_key_file(AgentKey.generate(), tmp_path / "agent.key", fs)
    assert not (tmp_path / "agent.key").exists()


def test_keygen_never_replaces_an_existing_key_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    AgentKey.generate().save(path)
    before = path.read_bytes()
    with pytest.raises(StorageError) as caught:
        write_key_file(AgentKey.generate(), path)
    assert caught.value.details["errno"] == "EEXIST"
    assert path.read_bytes() == before
