"""The server's background WAL archiver (``[archive] enabled``).

One daemon thread runs ``archive_wal`` every ``interval_seconds`` against the engine's
WAL directory, then deletes the local segments that are archived and below the store's
durable checkpoint (unless ``keep_local``). A failed pass is logged and counted, and the
next one retries (everything is idempotent). ``status`` feeds the metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from stemedb.errors import StemeError
from stemedb.ops.archive.archiving import (
    ArchiveRun,
    LocalSegment,
    SegmentOwner,
    archive_wal,
    delete_archived_segments,
)
from stemedb.ops.archive.layout import ArchivedSegment, ArchiveIndex
from stemedb.ops.archive.target import ArchiveTarget, open_archive_target

log = logging.getLogger("stemedb.ops.archive")

THREAD_NAME: Final = "stemedb-wal-archiver"
STOP_TIMEOUT_SECONDS: Final = 30.0


@dataclass
class ArchiverStatus:
    """What the metrics read (written by the archiver thread only)."""

    passes: int = 0
    failed_passes: int = 0
    segments_shipped: int = 0
    segments_deleted: int = 0
    archived_through_lsn: int = 0
    gaps: int = 0
    last_success_at: float = 0.0  # unix seconds of the last pass without an error
    last_error: str = ""


class BackgroundArchiver:
    def __init__(
        self,
        wal: SegmentOwner,
        data_dir: Path,
        base: str,
        *,
        interval_seconds: float,
        keep_local: bool = False,
        target: ArchiveTarget | None = None,
    ) -> None:
        self._wal = wal
        self._data_dir = data_dir
        self._target = target or open_archive_target(base)
        self._interval = max(0.05, float(interval_seconds))
        self._keep_local = keep_local
        self._known: dict[int, ArchivedSegment] = {}
        self._verified: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = ArchiverStatus()

    @property
    def url(self) -> str:
        return self._target.url

    def lag_segments(self) -> int:
        """Sealed local segments with records that the archive does not hold yet."""
        known = set(self._known)
        return sum(
            1
            for s in self._wal.segments()
            if s.sealed and s.last_lsn >= s.first_lsn and s.first_lsn not in known
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)
        self._thread.start()
        log.info("WAL archiver started: %s every %.0f s", self._target.url, self._interval)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop after the pass in progress (waiting at most ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("WAL archiver still busy after %.0f s; left behind", timeout)

    def run_once(self) -> ArchiveRun | None:
        """One pass; None if it failed (logged and counted)."""
        status = self.status
        status.passes += 1
        try:
            run = archive_wal(
                self._wal.directory,
                self._target,
                known=self._known,
                verified=self._verified,
                delete=None if self._keep_local else self._delete_step(),
            )
        except StemeError as exc:
            status.failed_passes += 1
            status.last_error = f"{exc.type_name}: {exc.message}"
            log.error("Error: StorageError: WAL archive pass failed: %s", status.last_error)
            return None
        status.segments_shipped += len(run.shipped)
        status.segments_deleted += len(run.deleted)
        status.archived_through_lsn = run.archived_through_lsn
        status.gaps = len(run.check.gaps)
        status.last_success_at = time.time()
        status.last_error = ""
        if run.check.gaps:
            log.error(
                "Error: StorageError: the WAL archive %s has %d gap(s), first at LSN %d (%s)",
                run.archive,
                len(run.check.gaps),
                run.check.gaps[0].from_lsn,
                run.check.gaps[0].reason,
            )
        return run

    def _delete_step(self) -> Callable[[list[LocalSegment], ArchiveIndex], list[Path]]:
        delete = delete_archived_segments(self._wal, self._data_dir)

        def guarded(segments: list[LocalSegment], index: ArchiveIndex) -> list[Path]:
            if self._stop.is_set():  # the engine may be closing: leave the WAL alone
                return []
            return delete(segments, index)

        return guarded

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self._interval)


__all__ = ["ArchiverStatus", "BackgroundArchiver"]
