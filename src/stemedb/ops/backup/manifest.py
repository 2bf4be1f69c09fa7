"""The backup manifest (``metadata.json``) and its validation.

Normative description: ``docs/design/backup-format.md``. A backup is a directory
``stemedb-backup-YYYYMMDD-HHMMSS[-N]/`` holding ``metadata.json``, the SQLite files under
``data/`` and the WAL segments under ``wal/``. ``metadata.json`` is written last: a
backup without it is incomplete.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import Final, Literal

import msgspec

from stemedb.errors import ValidationError
from stemedb.wal.format import parse_segment_name

FORMAT_VERSION: Final = 1
MANIFEST_FILE: Final = "metadata.json"
DATA_DIR: Final = "data"
WAL_DIR: Final = "wal"
STORE_FILE: Final = "store.sqlite"
BACKUP_NAME_PREFIX: Final = "stemedb-backup-"
BACKUP_NAME_PATTERN: Final = re.compile(r"^stemedb-backup-(\d{8})-(\d{6})(?:-(\d+))?$")
SQLITE_PATH_PATTERN: Final = re.compile(r"^data/[A-Za-z0-9_.-]+\.sqlite$")
SHA256_PATTERN: Final = re.compile(r"^[0-9a-f]{64}$")
STATE_HASH_ALGORITHM: Final = "sha256 over 'lsn:kind:id\\n' per record, LSN order"
HASH_CHUNK_BYTES: Final = 4 * 1024 * 1024


class FileEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One file of a backup: its relative path, kind, size and SHA-256."""

    path: str
    kind: Literal["sqlite", "wal"]
    size_bytes: int
    sha256: str
    first_lsn: int | None = None  # WAL segments only
    last_lsn: int | None = None  # first_lsn - 1 for a segment without records


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int
    name: str
    created_at: str  # ISO 8601 UTC, e.g. 2026-11-27T23:01:08Z
    created_at_unix: float
    stemedb_version: str
    hostname: str
    source_data_dir: str
    source_wal_dir: str
    assertion_count: int
    record_count: int  # WAL records up to last_lsn (= last_lsn: LSNs are consecutive)
    first_lsn: int  # first LSN of the backup's WAL
    last_lsn: int  # the backup LSN: the restored state is the state at this LSN
    store_applied_lsn: int  # the store snapshot's applied LSN (<= last_lsn)
    last_committed_at: float | None  # commit time of the record at last_lsn
    state_hash: str  # see STATE_HASH_ALGORITHM, over LSNs 1..last_lsn
    state_hash_algorithm: str
    total_bytes: int
    duration_seconds: float
    files: tuple[FileEntry, ...]

    def wal_files(self) -> list[FileEntry]:
        return [f for f in self.files if f.kind == "wal"]

    def sqlite_files(self) -> list[FileEntry]:
        return [f for f in self.files if f.kind == "sqlite"]


_DECODER = msgspec.json.Decoder(Manifest)


def encode_manifest(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"


def decode_manifest(data: bytes) -> Manifest:
    """Parse and validate ``metadata.json``; ``ValidationError`` says what is wrong."""
    try:
        probe = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ValidationError(MANIFEST_FILE, "must be JSON", f"{MANIFEST_FILE}: {exc}") from None
    version = probe.get("format_version") if isinstance(probe, dict) else None
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ValidationError(
            "format_version",
            f"must be <= {FORMAT_VERSION}",
            f"backup format version {version} is newer than this StemeDB reads"
            f" ({FORMAT_VERSION}); upgrade StemeDB to restore it",
        )
    try:
        manifest = _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise ValidationError(MANIFEST_FILE, "schema", f"{MANIFEST_FILE}: {exc}") from None
    validate_manifest(manifest)
    return manifest


def _bad(field: str, message: str) -> ValidationError:
    return ValidationError(field, "invalid", f"{MANIFEST_FILE}: {message}")


def validate_manifest(m: Manifest) -> None:
    """The rules of docs/design/backup-format.md §3 that need no file access."""
    if m.format_version != FORMAT_VERSION:
        raise _bad("format_version", f"unknown format version {m.format_version}")
    if not BACKUP_NAME_PATTERN.match(m.name):
        raise _bad("name", f"name {m.name!r} is not stemedb-backup-YYYYMMDD-HHMMSS")
    if not SHA256_PATTERN.match(m.state_hash):
        raise _bad("state_hash", "state_hash is not 64 lowercase hex digits")
    seen: set[str] = set()
    for entry in m.files:
        _check_entry(entry)
        if entry.path in seen:
            raise _bad("files", f"{entry.path} is listed twice")
        seen.add(entry.path)
    if f"{DATA_DIR}/{STORE_FILE}" not in seen:
        raise _bad("files", f"the backup has no {DATA_DIR}/{STORE_FILE}")
    wal = sorted(m.wal_files(), key=lambda f: f.first_lsn or 0)
    if not wal:
        raise _bad("files", "the backup has no WAL segment")
    if wal[0].first_lsn != m.first_lsn:
        raise _bad("first_lsn", f"first_lsn {m.first_lsn} is not the first segment's LSN")
    expected = m.first_lsn
    for entry in wal:
        if entry.first_lsn != expected:
            raise _bad(
                "files", f"WAL gap: {entry.path} starts at {entry.first_lsn}, not {expected}"
            )
        expected = (entry.last_lsn or 0) + 1
    if expected - 1 != m.last_lsn:
        raise _bad("last_lsn", f"last_lsn {m.last_lsn} but the segments end at {expected - 1}")
    if not m.first_lsn <= m.store_applied_lsn + 1:
        raise _bad("first_lsn", f"the WAL starts at {m.first_lsn}, after the store's LSN")
    if not 0 <= m.store_applied_lsn <= m.last_lsn:
        raise _bad("store_applied_lsn", "store_applied_lsn must be within 0..last_lsn")
    if m.total_bytes != sum(f.size_bytes for f in m.files):
        raise _bad("total_bytes", "total_bytes is not the sum of the file sizes")


def _check_entry(entry: FileEntry) -> None:
    path = PurePosixPath(entry.path)
    if path.is_absolute() or ".." in path.parts:
        raise _bad("files", f"unsafe path {entry.path!r}")
    if not SHA256_PATTERN.match(entry.sha256) or entry.size_bytes < 0:
        raise _bad("files", f"{entry.path}: bad sha256 or size")
    if entry.kind == "sqlite":
        if not SQLITE_PATH_PATTERN.match(entry.path):
            raise _bad("files", f"{entry.path!r} is not data/<name>.sqlite")
        return
    if len(path.parts) != 2 or path.parts[0] != WAL_DIR:
        raise _bad("files", f"{entry.path!r} is not wal/<first_lsn>.wal")
    first = parse_segment_name(path.name)
    if first is None or first != entry.first_lsn or entry.last_lsn is None:
        raise _bad("files", f"{entry.path}: the name, first_lsn and last_lsn disagree")
    if entry.last_lsn < first - 1:
        raise _bad("files", f"{entry.path}: last_lsn is below first_lsn - 1")


# -- checksums and the state hash ----------------------------------------------------------


def file_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class StateHasher:
    """The state hash: SHA-256 over ``f"{lsn}:{kind}:{id_hex}\\n"`` per record, in LSN
    order from LSN 1 (the same definition as ``SqliteStore.state_hash`` and
    ``ops.state.wal_state_hash``)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.last_lsn = 0

    def update(self, lsn: int, kind: int, record_id: str) -> None:
        if lsn != self.last_lsn + 1:
            raise ValueError(f"state hash: LSN {lsn} follows {self.last_lsn}")
        self._digest.update(f"{lsn}:{kind}:{record_id}\n".encode())
        self.last_lsn = lsn

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def unique_backup_name(stamp: str, taken: set[str]) -> str:
    """``stemedb-backup-<stamp>``, with ``-2``, ``-3`` … appended if that name is taken."""
    name = f"{BACKUP_NAME_PREFIX}{stamp}"
    number = 1
    while name in taken:
        number += 1
        name = f"{BACKUP_NAME_PREFIX}{stamp}-{number}"
    return name
