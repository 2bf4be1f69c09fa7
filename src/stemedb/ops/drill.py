"""The disaster-recovery drill (``stemedb dr-drill``): backup -> archive -> loss ->
restore elsewhere -> verify, with the measured RTO and RPO against ``[dr]`` targets.

Two sources:

- **live** (default): the configured data directory, running or not. The drill takes an
  online backup (``ops.backup``), verifies it (four stages), ships the sealed WAL
  segments (``ops.archive``), notes the *loss point* (the store's applied LSN now),
  then restores into a scratch directory from the backup plus the archive only — what
  would survive losing the machine — to the last archived LSN. The live data is never
  touched: the loss is simulated.
- **synthetic** (``records``): a scratch data directory filled with signed records,
  half before the backup and half after it (so the restore must replay archived WAL),
  whose data directory is then really deleted. CI runs this one. Its backup and archive
  go under ``<workdir>``, or under ``dr-drill-<UTC stamp>/`` of a given base, so
  generated segments never meet a real archive's write-once keys.

RTO = wall time of the restore until the engine has opened the result (replayed, ready
to serve). RPO = what the restore could not bring back: ``records_lost`` (LSNs after
the restored one, up to the loss point) and ``rpo_seconds`` (from the commit of the
first lost record to the loss; 0 when nothing was lost). The state hash of the restored
store must equal the source's state hash at the same LSN.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from stemedb.errors import StemeError, StorageError
from stemedb.ops.archive.archiving import archive_wal
from stemedb.ops.archive.target import open_archive_target
from stemedb.ops.backup.create import create_backup
from stemedb.ops.backup.location import backup_location
from stemedb.ops.backup.restore import RestoreRequest, restore_backup
from stemedb.ops.backup.verify import verify_backup
from stemedb.ops.drill_report import DrillReport, DrillStep
from stemedb.ops.state import STORE_FILE, state_hash_through, store_point

SYNTHETIC_SEGMENT_SIZE_BYTES: Final = 64 * 1024
SYNTHETIC_BATCH_RECORDS: Final = 50


@dataclass
class DrillOptions:
    workdir: Path
    rto_target_seconds: float
    rpo_target_seconds: float
    data_dir: Path | None = None  # live mode: the source
    wal_dir: Path | None = None
    records: int | None = None  # synthetic mode: how many records
    backup_to: str | None = None  # default <workdir>/backups
    archive: str | None = None  # default <workdir>/archive


def _fill_synthetic(engine: Any, start: int, count: int) -> None:
    from stemedb.model.signing import AgentKey, sign_assertion

    key = AgentKey.from_seed(hashlib.sha256(b"stemedb dr-drill").digest())
    now = int(time.time()) - 1
    for first in range(start, start + count, SYNTHETIC_BATCH_RECORDS):
        batch = [
            sign_assertion(
                key,
                subject=f"drill/subject-{i % 97}",
                predicate=f"p{i % 7}",
                object=f"value-{i}",
                confidence=0.5 + (i % 50) / 100,
                timestamp=now,
            )
            for i in range(first, min(first + SYNTHETIC_BATCH_RECORDS, start + count))
        ]
        for result in engine.write_many(batch):
            if isinstance(result, StemeError):
                raise result


class _Steps:
    def __init__(self, note: Callable[[str], None]) -> None:
        self.done: list[DrillStep] = []
        self._note = note

    def run(self, name: str, action: Callable[[], str]) -> None:
        self._note(f"{name}…")
        started = time.monotonic()
        try:
            detail = action()
        except StemeError as exc:
            self.done.append(DrillStep(name, False, _since(started), exc.message))
            raise
        self.done.append(DrillStep(name, True, _since(started), detail))


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


def run_drill(options: DrillOptions, note: Callable[[str], None] | None = None) -> DrillReport:
    """Run the drill; the report says what passed. Raises only on bad options."""
    from stemedb.engine import Engine, EngineSettings

    note = note or (lambda _message: None)
    workdir = options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    synthetic = options.records is not None
    backup_to = options.backup_to or str(workdir / "backups")
    archive_base = options.archive or str(workdir / "archive")
    restored_dir = workdir / "restored"
    if synthetic:
        data_dir = workdir / "source"
        wal_dir = data_dir / "wal"
        for stale in (data_dir, restored_dir, workdir / "backups", workdir / "archive"):
            shutil.rmtree(stale, ignore_errors=True)
        # Generated data must never meet a real archive's write-once keys: a synthetic
        # drill writes under a prefix of its own.
        run_prefix = "dr-drill-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        if options.archive:
            archive_base = f"{options.archive.rstrip('/')}/{run_prefix}"
        if options.backup_to:
            backup_to = f"{options.backup_to.rstrip('/')}/{run_prefix}"
    else:
        if options.data_dir is None or not (options.data_dir / STORE_FILE).exists():
            raise StorageError(
                f"no StemeDB data directory at {options.data_dir}", code="file_not_found"
            )
        data_dir = options.data_dir
        wal_dir = options.wal_dir or data_dir / "wal"
        shutil.rmtree(restored_dir, ignore_errors=True)
    steps = _Steps(note)
    facts: dict[str, Any] = {
        "backup": "",
        "backup_lsn": 0,
        "archived_through_lsn": 0,
        "loss_lsn": 0,
        "loss_at": 0.0,
        "restored_lsn": 0,
        "rto": 0.0,
        "expected": "",
        "restored_hash": "",
        "first_lost_at": None,
    }
    started_at = time.time()
    error: str | None = None
    engine: Engine | None = None
    try:
        if synthetic:
            assert options.records is not None
            engine = Engine.embedded(
                data_dir,
                EngineSettings(
                    segment_size_bytes=SYNTHETIC_SEGMENT_SIZE_BYTES, group_commit_max_delay_us=0
                ),
            )
            half = options.records // 2
            active = engine

            def load() -> str:
                _fill_synthetic(active, 0, half)
                return f"{half} signed records written to {data_dir}"

            steps.run("load", load)

        def backup() -> str:
            result = create_backup(data_dir, wal_dir, backup_location(backup_to))
            facts["backup"], facts["backup_lsn"] = result.url, result.manifest.last_lsn
            verified = verify_backup(result.url, scratch_root=workdir)
            if not verified.ok:
                raise StorageError(
                    f"backup {result.url} failed verification at stage {verified.failed_stage}",
                    code="backup_verify_failed",
                )
            return f"{result.url} at LSN {result.manifest.last_lsn}, verified (4 stages)"

        steps.run("backup", backup)
        if synthetic and engine is not None:
            rest = (options.records or 0) - (options.records or 0) // 2
            live = engine

            def more() -> str:
                _fill_synthetic(live, (options.records or 0) // 2, rest)
                return f"{rest} more records after the backup (WAL only)"

            steps.run("write", more)

        def archive() -> str:
            run = archive_wal(wal_dir, open_archive_target(archive_base))
            facts["archived_through_lsn"] = run.archived_through_lsn
            if not run.check.ok:
                first = run.check.gaps[0]
                raise StorageError(
                    f"the archive {run.archive} has {len(run.check.gaps)} gap(s), first "
                    f"LSNs {first.from_lsn}..{first.to_lsn} ({first.reason})",
                    code="wal_archive_gap",
                )
            return (
                f"{len(run.shipped)} segment(s) shipped to {run.archive}, archived through "
                f"LSN {run.archived_through_lsn}"
            )

        steps.run("archive", archive)

        def loss() -> str:
            target = max(facts["archived_through_lsn"], facts["backup_lsn"])
            facts["loss_lsn"], _ = store_point(data_dir)
            facts["loss_at"] = time.time()
            _, facts["first_lost_at"] = store_point(data_dir, target + 1)
            _, facts["expected"] = state_hash_through(data_dir, target)
            facts["target"] = target
            if synthetic and engine is not None:
                engine.close()
                shutil.rmtree(data_dir)
                return f"data directory {data_dir} deleted at LSN {facts['loss_lsn']}"
            return f"simulated at LSN {facts['loss_lsn']} (the live data is not touched)"

        steps.run("loss", loss)

        def restore() -> str:
            target = int(facts["target"])
            begun = time.monotonic()
            report = restore_backup(
                RestoreRequest(
                    source=facts["backup"],
                    data_dir=restored_dir / "data",
                    to_lsn=target if target > facts["backup_lsn"] else None,
                    wal_archive=archive_base,
                )
            )
            facts["rto"] = round(time.monotonic() - begun, 3)
            facts["restored_lsn"], facts["restored_hash"] = report.restored_lsn, report.state_hash
            return (
                f"{restored_dir / 'data'} at LSN {report.restored_lsn} in {facts['rto']} s "
                f"({report.segments_from_archive} archived segment(s), "
                f"{report.records_replayed} records replayed)"
            )

        steps.run("restore", restore)

        def verify() -> str:
            if facts["restored_lsn"] != facts["target"]:
                raise StorageError(
                    f"restored to LSN {facts['restored_lsn']}, expected {facts['target']}",
                    code="drill_verify_failed",
                )
            if facts["restored_hash"] != facts["expected"]:
                raise StorageError(
                    f"state hash {facts['restored_hash']} of the restore is not the source's "
                    f"{facts['expected']} at LSN {facts['target']}",
                    code="drill_verify_failed",
                )
            return f"state hash at LSN {facts['target']} matches ({facts['expected'][:16]}…)"

        steps.run("verify", verify)
    except StemeError as exc:
        error = f"{exc.type_name}: {exc.message}"
    finally:
        if engine is not None:
            engine.close()
    return _report(
        options,
        synthetic,
        started_at,
        data_dir,
        workdir,
        backup_to,
        archive_base,
        restored_dir,
        facts,
        steps.done,
        error,
    )


def _report(
    options: DrillOptions,
    synthetic: bool,
    started_at: float,
    data_dir: Path,
    workdir: Path,
    backup_to: str,
    archive_base: str,
    restored_dir: Path,
    facts: dict[str, Any],
    steps: list[DrillStep],
    error: str | None,
) -> DrillReport:
    restored = int(facts["restored_lsn"])
    lost = max(0, int(facts["loss_lsn"]) - restored) if error is None else 0
    first_lost_at = facts["first_lost_at"]
    rpo = 0.0
    if lost and first_lost_at is not None:
        rpo = round(max(0.0, float(facts["loss_at"]) - float(first_lost_at)), 3)
    state_ok = error is None and facts["restored_hash"] == facts["expected"] != ""
    rto_ok = error is None and float(facts["rto"]) <= options.rto_target_seconds
    rpo_ok = error is None and rpo <= options.rpo_target_seconds
    return DrillReport(
        ok=state_ok and rto_ok and rpo_ok,
        mode="synthetic" if synthetic else "live",
        started_at=round(started_at, 3),
        finished_at=round(time.time(), 3),
        host=socket.gethostname(),
        source_data_dir=str(data_dir),
        workdir=str(workdir),
        backup=str(facts["backup"]),
        archive=archive_base,
        restored_data_dir=str(restored_dir / "data"),
        backup_lsn=int(facts["backup_lsn"]),
        archived_through_lsn=int(facts["archived_through_lsn"]),
        loss_lsn=int(facts["loss_lsn"]),
        loss_at=round(float(facts["loss_at"]), 3),
        restored_lsn=restored,
        records_lost=lost,
        rpo_seconds=rpo,
        rpo_target_seconds=options.rpo_target_seconds,
        rpo_ok=rpo_ok,
        rto_seconds=float(facts["rto"]),
        rto_target_seconds=options.rto_target_seconds,
        rto_ok=rto_ok,
        expected_state_hash=str(facts["expected"]),
        restored_state_hash=str(facts["restored_hash"]),
        state_hash_ok=state_ok,
        steps=steps,
        error=error,
    )


def default_workdir(configured: str) -> Path:
    return Path(configured) if configured else Path(tempfile.mkdtemp(prefix="stemedb-dr-drill-"))
