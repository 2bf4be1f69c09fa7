"""Four-stage backup verification (``stemedb backup verify``).

1. **manifest**: ``metadata.json`` exists, parses, and obeys docs/design/backup-format.md.
2. **checksums**: every listed file exists with the recorded size and SHA-256.
3. **trial restore**: the backup restores into a scratch directory and the engine opens
   it cleanly (WAL recovery verifies every record, the store replays to the backup LSN).
4. **state hash**: the restored state hash at the backup LSN equals the recorded one.

A stage runs only if the previous ones passed; the result names the failed stage.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from stemedb.errors import StemeError
from stemedb.ops.backup.location import fetch_backup
from stemedb.ops.backup.manifest import MANIFEST_FILE, Manifest, decode_manifest, file_digest
from stemedb.ops.progress import NullProgress, Progress
from stemedb.sys import RealFileSystem
from stemedb.sys.durable import write_new_file

STAGES: Final = ("manifest", "checksums", "trial_restore", "state_hash")


@dataclass
class StageResult:
    stage: int
    name: str
    status: str  # "passed" | "failed" | "skipped"
    detail: str
    seconds: float


@dataclass
class VerifyResult:
    backup: str
    ok: bool
    failed_stage: str | None
    stages: list[StageResult] = field(default_factory=list)
    last_lsn: int | None = None
    state_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _StageFailed(Exception):
    pass


def _checksums(backup_dir: Path, manifest: Manifest, progress: Progress) -> str:
    progress.start("check checksums", manifest.total_bytes)
    for entry in manifest.files:
        path = backup_dir / entry.path
        if not path.is_file():
            raise _StageFailed(f"{entry.path} is missing")
        size, digest = file_digest(path)
        progress.advance(entry.size_bytes)
        if size != entry.size_bytes:
            raise _StageFailed(f"{entry.path}: {size} bytes, metadata.json says {entry.size_bytes}")
        if digest != entry.sha256:
            raise _StageFailed(f"{entry.path}: sha256 {digest} != recorded {entry.sha256}")
    return f"{len(manifest.files)} files, {manifest.total_bytes} bytes match metadata.json"


def _trial_restore(
    backup_dir: Path, manifest: Manifest, scratch: Path, progress: Progress
) -> tuple[int, str]:
    from stemedb.engine import Engine, EngineSettings
    from stemedb.ops.backup.restore import copy_checked

    data_dir = scratch / "trial"
    wal_dir = data_dir / "wal"
    wal_dir.mkdir(parents=True)
    fs = RealFileSystem()
    progress.start("trial restore", manifest.total_bytes)
    for entry in manifest.files:
        if entry.kind == "sqlite":
            target = data_dir / Path(entry.path).name
            source = backup_dir / entry.path
            copy_checked(fs, source, target, entry.size_bytes, entry.sha256, progress)
        else:
            data = (backup_dir / entry.path).read_bytes()
            write_new_file(fs, wal_dir / Path(entry.path).name, data)
            progress.advance(entry.size_bytes)
    with Engine.embedded(data_dir, EngineSettings(wal_dir=str(wal_dir), fsync=False)) as engine:
        store_lsn, state_hash = engine.store.state_hash()
        wal_last = engine.wal.last_lsn
        replayed = engine.replayed
    if wal_last != manifest.last_lsn or store_lsn != manifest.last_lsn:
        raise _StageFailed(
            f"the restored WAL ends at LSN {wal_last} and the store at {store_lsn},"
            f" metadata.json says {manifest.last_lsn}"
        )
    return replayed, state_hash


def verify_backup(
    source: str, *, scratch_root: Path | None = None, progress: Progress | None = None
) -> VerifyResult:
    """Run the four stages on the backup at ``source`` (a directory or an s3:// URL)."""
    progress = progress or NullProgress()
    result = VerifyResult(source, False, None)
    with tempfile.TemporaryDirectory(prefix="stemedb-verify-", dir=scratch_root) as tmp:
        scratch = Path(tmp)
        state: dict[str, Any] = {}

        def manifest_stage() -> str:
            try:
                backup_dir, _name = fetch_backup(source, scratch / "download", progress)
                path = backup_dir / MANIFEST_FILE
                if not path.is_file():
                    raise _StageFailed(f"{MANIFEST_FILE} is missing (an incomplete backup?)")
                manifest = decode_manifest(path.read_bytes())
            except StemeError as exc:
                raise _StageFailed(exc.message) from exc
            state["dir"], state["manifest"] = backup_dir, manifest
            result.last_lsn = manifest.last_lsn
            return (
                f"format {manifest.format_version}, {len(manifest.files)} files, LSNs "
                f"{manifest.first_lsn}..{manifest.last_lsn}, {manifest.assertion_count} assertions"
            )

        def checksum_stage() -> str:
            return _checksums(state["dir"], state["manifest"], progress)

        def trial_stage() -> str:
            try:
                replayed, state_hash = _trial_restore(
                    state["dir"], state["manifest"], scratch, progress
                )
            except StemeError as exc:
                raise _StageFailed(f"{exc.type_name}: {exc.message}") from exc
            state["hash"] = state_hash
            return f"the engine opened the restored copy and replayed {replayed} WAL records"

        def hash_stage() -> str:
            manifest: Manifest = state["manifest"]
            result.state_hash = state["hash"]
            if state["hash"] != manifest.state_hash:
                raise _StageFailed(
                    f"restored state hash {state['hash']} at LSN {manifest.last_lsn} != "
                    f"recorded {manifest.state_hash}"
                )
            return f"state hash at LSN {manifest.last_lsn} = {manifest.state_hash}"

        steps: list[Callable[[], str]] = [manifest_stage, checksum_stage, trial_stage, hash_stage]
        failed = False
        for number, (name, step) in enumerate(zip(STAGES, steps, strict=True), start=1):
            if failed:
                result.stages.append(StageResult(number, name, "skipped", "", 0.0))
                continue
            started = time.monotonic()
            try:
                detail = step()
                status = "passed"
            except _StageFailed as exc:
                detail, status, failed = str(exc), "failed", True
                result.failed_stage = name
            seconds = round(time.monotonic() - started, 3)
            result.stages.append(StageResult(number, name, status, detail, seconds))
    result.ok = not failed
    return result
