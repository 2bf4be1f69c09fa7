"""Online backups: consistency under concurrent writes, the four verification stages,
retention, and S3 (moto server mode). Real SQLite, a real WAL, real files."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_helpers import make_claim
from typer.testing import CliRunner

from stemedb.cli.main import app
from stemedb.engine import Engine, EngineSettings
from stemedb.ops.backup.create import create_backup, expired_backups, prune_backups
from stemedb.ops.backup.location import LocalBackups, S3Backups, list_backups
from stemedb.ops.backup.manifest import MANIFEST_FILE, decode_manifest
from stemedb.ops.backup.restore import RestoreRequest, restore_backup
from stemedb.ops.backup.verify import verify_backup
from stemedb.ops.s3 import S3Location
from stemedb.ops.state import wal_state_hash

SEGMENT_SIZE_BYTES = 64 * 1024  # many segments, so sealed and active ones are both copied
NOW = int(time.time())


def _write(engine: Engine, start: int, count: int) -> None:
    engine.write_many([make_claim(i, timestamp=NOW - 60) for i in range(start, start + count)])


@pytest.fixture
def engine(data_dir: Path) -> Iterator[Engine]:
    settings = EngineSettings(segment_size_bytes=SEGMENT_SIZE_BYTES, fsync=False)
    eng = Engine.embedded(data_dir, settings)
    yield eng
    eng.close()


class Writer(threading.Thread):
    """Writes batches through the engine until stopped (the server's write path)."""

    def __init__(self, engine: Engine, start_index: int) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.next_index = start_index
        self.stop_flag = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_flag.is_set():
                _write(self.engine, self.next_index, 50)
                self.next_index += 50
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            self.error = exc

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(30)
        assert self.error is None


def test_backup_during_concurrent_writes_restores_the_state_hash_at_its_lsn(
    engine: Engine, data_dir: Path, tmp_path: Path
) -> None:
    _write(engine, 0, 2000)
    writer = Writer(engine, 2000)
    writer.start()
    time.sleep(0.2)
    result = create_backup(data_dir, data_dir / "wal", LocalBackups(tmp_path / "backups"))
    time.sleep(0.2)
    writer.stop()
    manifest = result.manifest
    # the writes went on during the backup, and the backup is a consistent cut of them
    assert engine.wal.last_lsn > manifest.last_lsn >= manifest.store_applied_lsn > 2000
    assert len(manifest.wal_files()) > 1
    assert wal_state_hash(engine.wal, manifest.last_lsn) == (manifest.last_lsn, manifest.state_hash)
    assert manifest.assertion_count == manifest.last_lsn  # one assertion per record here

    verified = verify_backup(result.url)
    assert verified.ok, verified.stages
    assert [s.status for s in verified.stages] == ["passed"] * 4

    report = restore_backup(RestoreRequest(result.url, tmp_path / "restored"))
    assert report.ok and report.mode == "full"
    assert (report.restored_lsn, report.state_hash) == (manifest.last_lsn, manifest.state_hash)
    assert report.records_replayed == manifest.last_lsn - manifest.store_applied_lsn


def test_backup_of_a_live_server_process_writing_over_http(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
    from support.server import ServerProcess

    from stemedb.client import Client
    from stemedb.model.signing import AgentKey

    data = tmp_path / "live"
    server = ServerProcess(data, tmp_path / "server.log", STEMEDB_WAL_SEGMENT_SIZE_BYTES="65536")
    stop = threading.Event()
    written: list[int] = []

    def load() -> None:
        with Client(server.url, key=AgentKey.from_seed(b"\x07" * 32)) as client:
            index = 0
            while not stop.is_set():
                batch = [make_claim(i, timestamp=NOW - 60) for i in range(index, index + 5)]
                client.assert_batch(batch)
                index += 5
                written.append(index)

    thread = threading.Thread(target=load, daemon=True)
    try:
        thread.start()
        time.sleep(1.0)
        result = create_backup(data, data / "wal", LocalBackups(tmp_path / "backups"))
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(30)
        assert server.stop() == 0
    assert result.manifest.last_lsn > 0 and written[-1] > result.manifest.last_lsn
    assert verify_backup(result.url).ok
    report = restore_backup(RestoreRequest(result.url, tmp_path / "restored"))
    assert report.ok and report.state_hash == result.manifest.state_hash


def test_flipped_byte_fails_verification_at_the_checksum_stage(
    engine: Engine, data_dir: Path, tmp_path: Path
) -> None:
    _write(engine, 0, 500)
    result = create_backup(data_dir, data_dir / "wal", LocalBackups(tmp_path / "backups"))
    victim = Path(result.url) / result.manifest.wal_files()[0].path
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    victim.write_bytes(bytes(raw))

    verified = verify_backup(result.url)
    assert not verified.ok and verified.failed_stage == "checksums"
    assert [s.status for s in verified.stages] == ["passed", "failed", "skipped", "skipped"]
    assert "sha256" in verified.stages[1].detail

    cli = CliRunner().invoke(app, ["backup", "verify", result.url, "--json"])
    assert cli.exit_code == 1
    assert json.loads(cli.stdout)["failed_stage"] == "checksums"
    assert "failed at stage 2 (checksums)" in cli.stderr


def test_missing_manifest_fails_at_the_manifest_stage(
    engine: Engine, data_dir: Path, tmp_path: Path
) -> None:
    _write(engine, 0, 10)
    result = create_backup(data_dir, data_dir / "wal", LocalBackups(tmp_path / "backups"))
    (Path(result.url) / MANIFEST_FILE).unlink()
    verified = verify_backup(result.url)
    assert verified.failed_stage == "manifest"


def test_wrong_recorded_state_hash_fails_at_the_state_hash_stage(
    engine: Engine, data_dir: Path, tmp_path: Path
) -> None:
    _write(engine, 0, 10)
    result = create_backup(data_dir, data_dir / "wal", LocalBackups(tmp_path / "backups"))
    path = Path(result.url) / MANIFEST_FILE
    text = path.read_text().replace(result.manifest.state_hash, "0" * 64)
    path.write_text(text)
    verified = verify_backup(result.url)
    assert verified.failed_stage == "state_hash"
    assert [s.status for s in verified.stages][:3] == ["passed"] * 3


def test_retention_keeps_the_newest_n_and_drops_old_ones(
    engine: Engine, data_dir: Path, tmp_path: Path
) -> None:
    location = LocalBackups(tmp_path / "backups")
    names = []
    for batch in range(3):
        _write(engine, batch * 10, 10)
        names.append(create_backup(data_dir, data_dir / "wal", location).manifest.name)
    assert len(set(names)) == 3  # unique names within one second
    result = create_backup(data_dir, data_dir / "wal", location, keep=2)
    assert sorted(result.pruned) == sorted(names[:2])
    assert [b.name for b in list_backups(location)] == sorted([names[2], result.manifest.name])
    manifests = [b.manifest for b in list_backups(location) if b.manifest]
    # by age: everything but the newest is older than 1 day, 2 days from now
    later = time.time() + 2 * 86_400
    assert expired_backups(manifests, keep=None, retention_days=1, now=later) == [names[2]]
    assert prune_backups(location, keep=None, retention_days=1, now=later) == [names[2]]


def test_backup_and_restore_round_trip_through_s3(
    engine: Engine, data_dir: Path, tmp_path: Path, s3_bucket: S3Location
) -> None:
    _write(engine, 0, 800)
    location = S3Backups(s3_bucket)
    result = create_backup(data_dir, data_dir / "wal", location)
    assert result.url == s3_bucket.url(result.manifest.name)
    listed = list_backups(location)
    assert [b.name for b in listed] == [result.manifest.name] and listed[0].manifest
    verified = verify_backup(result.url)
    assert verified.ok, verified.stages
    report = restore_backup(RestoreRequest(result.url, tmp_path / "restored"))
    assert report.ok and report.state_hash == result.manifest.state_hash
    assert not (tmp_path / "restored" / ".restore-scratch").exists()


def test_cli_backup_create_list_verify_and_restore(
    engine: Engine, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(engine, 0, 100)
    monkeypatch.setenv("STEMEDB_DB_DIR", str(data_dir))
    monkeypatch.delenv("STEMEDB_CONFIG", raising=False)
    runner = CliRunner()
    backups = tmp_path / "backups"
    created = runner.invoke(app, ["backup", "create", "--to", str(backups), "--json"])
    assert created.exit_code == 0, created.output
    report = json.loads(created.stdout)
    assert report["last_lsn"] == 100 and report["assertion_count"] == 100
    listed = runner.invoke(app, ["backup", "list", str(backups), "--json"])
    assert json.loads(listed.stdout)["backups"][0]["name"] == report["name"]
    verified = runner.invoke(app, ["backup", "verify", report["url"]])
    assert verified.exit_code == 0 and "4 state_hash" in verified.stdout
    target = tmp_path / "restored"
    restored = runner.invoke(app, ["restore", report["url"], "--data-dir", str(target), "--json"])
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout)["state_hash"] == report["state_hash"]
    manifest = decode_manifest((Path(report["url"]) / MANIFEST_FILE).read_bytes())
    assert manifest.stemedb_version and manifest.files


def test_a_backup_carries_the_custodial_keys_and_keeps_their_file_0600(
    engine: Engine, data_dir: Path, tmp_path: Path
) -> None:
    import stat

    from stemedb.store.custodial_keys import CUSTODIAL_FILE, CustodialKeyStore

    _write(engine, 0, 10)
    keys = CustodialKeyStore(data_dir)
    made = keys.create("key-1", float(NOW))
    keys.close()
    result = create_backup(data_dir, data_dir / "wal", LocalBackups(tmp_path / "backups"))
    copied = Path(result.url) / "data" / CUSTODIAL_FILE
    assert f"data/{CUSTODIAL_FILE}" in {f.path for f in result.manifest.sqlite_files()}
    assert stat.S_IMODE(copied.stat().st_mode) == 0o600
    assert verify_backup(result.url).ok
    restored = tmp_path / "restored"
    restore_backup(RestoreRequest(source=result.url, data_dir=restored))
    back = CustodialKeyStore(restored)
    signer = back.signer("key-1")
    back.close()
    assert signer is not None and signer.agent_id == made.agent_id
    assert stat.S_IMODE((restored / CUSTODIAL_FILE).stat().st_mode) == 0o600
