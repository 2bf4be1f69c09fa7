"""Reading a WAL archive for point-in-time restore (the archiver writes it: ``ops.archive``).

Contract (shared with the archiver): under a base that is a local directory or an
``s3://bucket/prefix``, every archived segment is ``<base>/wal/{first_lsn:016x}.wal``
(the sealed segment's bytes, write-once) with a sidecar ``<base>/wal/{first_lsn:016x}.wal.json``
= ``{"first_lsn", "last_lsn", "size_bytes", "sha256", "archived_at"}``. A segment
counts as archived once its sidecar exists."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from stemedb.errors import StemeError, StorageError
from stemedb.ops.s3 import S3Client, S3Location, is_s3_url, parse_s3_url
from stemedb.sys import translate_os_error
from stemedb.wal.format import parse_segment_name

ARCHIVE_WAL_DIR: Final = "wal"
SIDECAR_SUFFIX: Final = ".json"


class Sidecar(msgspec.Struct, frozen=True):
    first_lsn: int
    last_lsn: int
    size_bytes: int
    sha256: str
    archived_at: float | str | None = None


@dataclass(frozen=True)
class ArchivedSegment:
    """An archived segment's bytes and what its sidecar promises; ``problem`` says why
    the bytes do not match the sidecar (size or SHA-256), or why they are missing."""

    first_lsn: int
    sidecar: Sidecar
    data: bytes
    problem: str | None


class WalArchive:
    """The archived segments under ``base`` (a directory or an s3:// URL)."""

    def __init__(self, base: str, client: S3Client | None = None) -> None:
        self.base = base
        self._s3: S3Location | None = parse_s3_url(base) if is_s3_url(base) else None
        self._client = client if client is not None or self._s3 is None else S3Client.from_env()
        self._local = None if self._s3 is not None else Path(base) / ARCHIVE_WAL_DIR

    def _names(self) -> list[str]:
        if self._s3 is not None and self._client is not None:
            prefix = self._s3.key(ARCHIVE_WAL_DIR) + "/"
            return [o.key.rsplit("/", 1)[-1] for o in self._client.list_objects(self._s3, prefix)]
        assert self._local is not None
        if not self._local.is_dir():
            return []
        return [p.name for p in self._local.iterdir()]

    def first_lsns(self) -> list[int]:
        """First LSNs of the segments with a sidecar, ascending."""
        found: list[int] = []
        for name in self._names():
            if name.endswith(SIDECAR_SUFFIX):
                lsn = parse_segment_name(name[: -len(SIDECAR_SUFFIX)])
                if lsn is not None:
                    found.append(lsn)
        return sorted(found)

    def _read(self, name: str) -> bytes:
        if self._s3 is not None and self._client is not None:
            return self._client.get_bytes(self._s3, self._s3.key(ARCHIVE_WAL_DIR, name))
        assert self._local is not None
        path = self._local / name
        try:
            return path.read_bytes()
        except OSError as exc:
            raise translate_os_error(exc, "read archived segment", path) from exc

    def sidecar(self, first_lsn: int) -> Sidecar:
        name = f"{first_lsn:016x}.wal{SIDECAR_SUFFIX}"
        try:
            return msgspec.json.decode(self._read(name), type=Sidecar)
        except msgspec.DecodeError as exc:
            raise StorageError(
                f"archive sidecar {self.base}/wal/{name} is not valid: {exc}",
                code="wal_archive_invalid",
                retryable=False,
            ) from exc

    def fetch(self, first_lsn: int) -> ArchivedSegment:
        """The segment's bytes, checked against its sidecar (never raises for a missing
        or damaged segment: ``problem`` says what is wrong)."""
        sidecar = self.sidecar(first_lsn)
        name = f"{first_lsn:016x}.wal"
        try:
            data = self._read(name)
        except StemeError as exc:
            if exc.code not in {"s3_object_not_found", "file_not_found"}:
                raise
            return ArchivedSegment(first_lsn, sidecar, b"", f"archived segment {name} is missing")
        problem: str | None = None
        if len(data) != sidecar.size_bytes:
            problem = (
                f"archived segment {name} is {len(data)} bytes, its sidecar says "
                f"{sidecar.size_bytes} (truncated)"
            )
        elif hashlib.sha256(data).hexdigest() != sidecar.sha256:
            problem = f"archived segment {name} does not match its sidecar's sha256"
        return ArchivedSegment(first_lsn, sidecar, data, problem)

    def size_bytes_from(self, first_lsn: int) -> int:
        """Bytes of the archived segments starting at or after ``first_lsn`` (for the
        free-space check; reads sidecars)."""
        return sum(self.sidecar(lsn).size_bytes for lsn in self.first_lsns() if lsn >= first_lsn)
