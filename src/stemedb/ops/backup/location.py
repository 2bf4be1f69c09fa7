"""Where backups live: a local directory or an ``s3://bucket/prefix``.

Both hold one ``stemedb-backup-…/`` directory (or key prefix) per backup. ``names``
lists them, ``read_manifest`` reads a complete one's ``metadata.json`` (None for an
incomplete one), ``delete`` removes one (``metadata.json`` first, so a half-deleted
backup is never mistaken for a complete one), ``fetch`` makes one available as a local
directory (downloading it from S3)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from stemedb.errors import StemeError, StorageError
from stemedb.ops.backup.manifest import (
    BACKUP_NAME_PATTERN,
    MANIFEST_FILE,
    Manifest,
    decode_manifest,
    encode_manifest,
)
from stemedb.ops.progress import NullProgress, Progress
from stemedb.ops.s3 import S3Client, S3Location, is_s3_url, parse_s3_url
from stemedb.sys import FileSystem, RealFileSystem, translate_os_error
from stemedb.sys.durable import replace_file


@dataclass
class Listing:
    name: str
    url: str
    manifest: Manifest | None  # None: incomplete (no metadata.json) or unreadable
    problem: str | None = None


class LocalBackups:
    def __init__(self, root: Path, fs: FileSystem | None = None) -> None:
        self.root = root
        self.url = str(root)
        self.fs = fs or RealFileSystem()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and BACKUP_NAME_PATTERN.match(p.name)
        )

    def read_manifest(self, name: str) -> Manifest | None:
        path = self.root / name / MANIFEST_FILE
        if not path.exists():
            return None
        return decode_manifest(path.read_bytes())

    def delete(self, name: str) -> None:
        target = self.root / name
        try:
            (target / MANIFEST_FILE).unlink(missing_ok=True)
            shutil.rmtree(target)
        except OSError as exc:
            raise translate_os_error(exc, "delete backup", target) from exc

    def publish(self, staging: Path, name: str, progress: Progress) -> str:
        """Move a finished staging directory (on the same file system) into place."""
        final = self.root / name
        self.fs.rename(staging, final)
        self.fs.fsync_directory(self.root)
        return str(final)


class S3Backups:
    def __init__(self, location: S3Location, client: S3Client | None = None) -> None:
        self.location = location
        self.client = client or S3Client.from_env()
        self.url = location.url()

    def names(self) -> list[str]:
        prefixes = self.client.list_prefixes(self.location, self.location.prefix)
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in prefixes]
        return sorted(n for n in names if BACKUP_NAME_PATTERN.match(n))

    def read_manifest(self, name: str) -> Manifest | None:
        key = self.location.key(name, MANIFEST_FILE)
        if self.client.head(self.location, key) is None:
            return None
        return decode_manifest(self.client.get_bytes(self.location, key))

    def delete(self, name: str) -> None:
        self.client.delete(self.location, [self.location.key(name, MANIFEST_FILE)])
        keys = [
            o.key for o in self.client.list_objects(self.location, self.location.key(name) + "/")
        ]
        if keys:
            self.client.delete(self.location, keys)

    def publish(self, staging: Path, name: str, progress: Progress) -> str:
        """Upload every file, then ``metadata.json`` last (write-once keys)."""
        manifest = decode_manifest((staging / MANIFEST_FILE).read_bytes())
        progress.start(f"upload to {self.location.url(name)}", manifest.total_bytes)
        for entry in manifest.files:
            key = self.location.key(name, entry.path)
            self.client.put_file(self.location, key, staging / entry.path, sha256=entry.sha256)
            progress.advance(entry.size_bytes)
        self.client.put_bytes(
            self.location,
            self.location.key(name, MANIFEST_FILE),
            encode_manifest(manifest),
            content_type="application/json",
        )
        return self.location.url(name)

    def download(self, name: str, target: Path, progress: Progress) -> Path:
        """Download backup ``name`` into ``target/name``; files the manifest lists that
        are missing in S3 are left out (verification reports them)."""
        local = target / name
        (local / "data").mkdir(parents=True, exist_ok=True)
        (local / "wal").mkdir(exist_ok=True)
        data = self.client.get_bytes(self.location, self.location.key(name, MANIFEST_FILE))
        replace_file(RealFileSystem(), local / MANIFEST_FILE, data)
        manifest = decode_manifest(data)
        progress.start(f"download {self.location.url(name)}", manifest.total_bytes)
        for entry in manifest.files:
            key = self.location.key(name, entry.path)
            try:
                self.client.download_file(self.location, key, local / entry.path)
            except StorageError as exc:
                if exc.code != "s3_object_not_found":
                    raise
            progress.advance(entry.size_bytes)
        return local


BackupLocation = LocalBackups | S3Backups


def backup_location(target: str | Path) -> BackupLocation:
    """The backups under a directory or an ``s3://bucket/prefix`` URL."""
    if isinstance(target, str) and is_s3_url(target):
        return S3Backups(parse_s3_url(target))
    return LocalBackups(Path(target))


def list_backups(location: BackupLocation) -> list[Listing]:
    """Every backup under ``location``, oldest first."""
    found: list[Listing] = []
    for name in location.names():
        url = f"{location.url.rstrip('/')}/{name}"
        try:
            found.append(Listing(name, url, location.read_manifest(name)))
        except StemeError as exc:
            found.append(Listing(name, url, None, exc.message))
    return found


def split_backup_url(source: str) -> tuple[BackupLocation, str]:
    """``.../stemedb-backup-X`` -> (the location holding it, its name)."""
    trimmed = source.rstrip("/")
    parent, _, name = trimmed.rpartition("/")
    if is_s3_url(source):
        return S3Backups(parse_s3_url(parent)), name
    path = Path(trimmed)
    return LocalBackups(path.parent), path.name


def fetch_backup(source: str, scratch: Path, progress: Progress | None = None) -> tuple[Path, str]:
    """A local directory holding backup ``source`` (downloaded into ``scratch`` if it is
    an S3 URL) and the backup's name."""
    progress = progress or NullProgress()
    location, name = split_backup_url(source)
    if isinstance(location, S3Backups):
        return location.download(name, scratch, progress), name
    return location.root / name, name
