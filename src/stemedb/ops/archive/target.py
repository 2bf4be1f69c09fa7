"""Where archived WAL segments go: ``<base>/wal/`` in S3 or in a local directory.

``<base>`` is ``s3://bucket/prefix`` (through ``stemedb.ops.s3``: path-style, SigV4,
any S3-compatible endpoint) or a directory (tests, air-gapped sites, an NFS mount).
Both targets are **write-once**: ``put_once`` never replaces an object. Putting the same
bytes again is a no-op (``False``: it was already there); different bytes under an
existing name raise ``StorageError(code="wal_archive_conflict")``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final, Protocol

from stemedb.errors import StorageError
from stemedb.ops.s3 import S3Client, S3Location, is_s3_url, parse_s3_url
from stemedb.sys import FileSystem, RealFileSystem

WAL_PREFIX: Final = "wal"
CONFLICT_CODE: Final = "wal_archive_conflict"
_TMP_PREFIX: Final = ".tmp-"


class ArchiveTarget(Protocol):
    """The ``<base>/wal/`` namespace of an archive; names are file names in it."""

    @property
    def url(self) -> str:
        """``<base>/wal`` as the operator would write it."""
        ...

    def list_sizes(self) -> dict[str, int]:
        """Every object name under ``wal/`` with its size in bytes."""
        ...

    def read(self, name: str) -> bytes:
        """The object's bytes; ``StorageError`` if it is missing."""
        ...

    def put_once(self, name: str, data: bytes) -> bool:
        """Write-once: True if written now, False if the same bytes were there."""
        ...

    def stored_sha256(self, name: str) -> str | None:
        """The SHA-256 of the stored object, as the target knows it (None: missing)."""
        ...


def _conflict(url: str, name: str, detail: str) -> StorageError:
    return StorageError(
        f"{url}/{name} already exists with different content ({detail}); archived WAL "
        "keys are write-once: is another database archiving to the same base?",
        code=CONFLICT_CODE,
        retryable=False,
        details={"object": f"{url}/{name}"},
    )


class LocalArchiveTarget:
    """``<base>/wal/`` as a directory: temp file + fsync + rename + directory fsync."""

    def __init__(self, base: Path, fs: FileSystem | None = None) -> None:
        self._dir = Path(base) / WAL_PREFIX
        self._fs = fs or RealFileSystem()

    @property
    def url(self) -> str:
        return str(self._dir)

    def list_sizes(self) -> dict[str, int]:
        if not self._fs.exists(self._dir):
            return {}
        sizes: dict[str, int] = {}
        for name in self._fs.listdir(self._dir):
            if name.startswith(_TMP_PREFIX):
                continue
            try:
                sizes[name] = self._fs.file_size(self._dir / name)
            except StorageError as exc:
                if exc.code != "file_not_found":
                    raise
        return sizes

    def read(self, name: str) -> bytes:
        return self._fs.read_file(self._dir / name)

    def stored_sha256(self, name: str) -> str | None:
        path = self._dir / name
        if not self._fs.exists(path):
            return None
        return hashlib.sha256(self._fs.read_file(path)).hexdigest()

    def put_once(self, name: str, data: bytes) -> bool:
        path = self._dir / name
        if self._fs.exists(path):
            return self._same(name, data)
        if not self._fs.exists(self._dir):
            self._fs.makedirs(self._dir)
            self._fs.fsync_directory(self._dir.parent)
        tmp = self._dir / f"{_TMP_PREFIX}{name}.{os.getpid()}"
        if self._fs.exists(tmp):
            self._fs.remove(tmp)
        handle = self._fs.create(tmp)
        try:
            handle.write(data)
            handle.fsync()
        finally:
            handle.close()
        if self._fs.exists(path):  # another archiver won the race
            self._fs.remove(tmp)
            return self._same(name, data)
        self._fs.rename(tmp, path)
        self._fs.fsync_directory(self._dir)
        return True

    def _same(self, name: str, data: bytes) -> bool:
        stored = self.stored_sha256(name)
        wanted = hashlib.sha256(data).hexdigest()
        if stored != wanted:
            raise _conflict(self.url, name, f"sha256 {stored}, not {wanted}")
        return False


class S3ArchiveTarget:
    """``s3://bucket/prefix/wal/`` through ``stemedb.ops.s3`` (Content-MD5 on every put,
    the SHA-256 as object metadata ``sha256``, head-before-put write-once keys)."""

    def __init__(self, location: S3Location, client: S3Client | None = None) -> None:
        self._location = location.child(WAL_PREFIX)
        self._client = client or S3Client.from_env()

    @property
    def url(self) -> str:
        return self._location.url()

    def _key(self, name: str) -> str:
        return self._location.key(name)

    def list_sizes(self) -> dict[str, int]:
        prefix = self._location.key() + "/" if self._location.key() else ""
        return {
            info.key[len(prefix) :]: info.size_bytes
            for info in self._client.list_objects(self._location, prefix)
            if "/" not in info.key[len(prefix) :]
        }

    def read(self, name: str) -> bytes:
        return self._client.get_bytes(self._location, self._key(name))

    def stored_sha256(self, name: str) -> str | None:
        info = self._client.head(self._location, self._key(name))
        if info is None:
            return None
        if info.sha256 is None:  # written by something else: hash what is there
            return hashlib.sha256(self.read(name)).hexdigest()
        return info.sha256

    def put_once(self, name: str, data: bytes) -> bool:
        try:
            result = self._client.put_bytes(self._location, self._key(name), data)
        except StorageError as exc:
            if exc.code == "s3_object_exists":
                raise _conflict(self.url, name, exc.message) from exc
            raise
        return result.created


def open_archive_target(base: str | Path, *, client: S3Client | None = None) -> ArchiveTarget:
    """The archive at ``base``: ``s3://bucket/prefix`` or a local directory."""
    text = str(base)
    if is_s3_url(text):
        return S3ArchiveTarget(parse_s3_url(text), client)
    return LocalArchiveTarget(Path(text))


__all__ = [
    "CONFLICT_CODE",
    "WAL_PREFIX",
    "ArchiveTarget",
    "LocalArchiveTarget",
    "S3ArchiveTarget",
    "open_archive_target",
]
