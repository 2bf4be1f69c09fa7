"""The WAL as an HTTP process sees it when the writer process owns it
(``runtime.writer_client``): its state from the writer's messages, its files read from
the directory, and the WAL observer's events relayed from the writer."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stemedb.runtime.protocol import FromWriter, WalAppend, WalFsync, WalFsyncError, WalRotation
from stemedb.wal import WalObserver
from stemedb.wal.format import parse_segment_name
from stemedb.wal.log import SegmentInfo


class RemoteWal:
    """What the server process may ask of the WAL the writer process owns.
    ``remove_before``: asks the writer to remove the segments before an LSN."""

    def __init__(
        self, remove_before: Callable[[int], list[Path]], directory: Path, last_lsn: int
    ) -> None:
        self._remove_before = remove_before
        self._directory = directory
        self.last_lsn = last_lsn
        self.read_only_reason: str | None = None
        # Writes refused for now: the writer process crashed and a new one is starting
        # (``runtime.writer_respawn``); ``/ready`` reports it as ``writes: unavailable``.
        self.restarting_reason: str | None = None

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def segments(self) -> list[SegmentInfo]:
        """The segment files in LSN order (the last one is the open one)."""
        found = sorted(
            (first, self._directory / name)
            for name in os.listdir(self._directory)
            if (first := parse_segment_name(name)) is not None
        )
        out: list[SegmentInfo] = []
        for index, (first, path) in enumerate(found):
            sealed = index + 1 < len(found)
            last = found[index + 1][0] - 1 if sealed else self.last_lsn
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # removed after archiving while we listed
                continue
            out.append(SegmentInfo(first, last, path, size, sealed))
        return out

    def disk_usage_bytes(self) -> int:
        return sum(s.size_bytes for s in self.segments())

    def remove_segments_before(self, lsn: int) -> list[Path]:
        return self._remove_before(lsn)


def wal_event_handlers(
    observer: WalObserver | None,
) -> dict[type[FromWriter], Callable[[Any], None]]:
    """The handlers of the WAL observer's events (sent on the first link only): they go
    to ``observer``, or nowhere."""
    if observer is None:
        return dict.fromkeys((WalFsync, WalAppend, WalRotation, WalFsyncError), _ignore)
    return {
        WalFsync: lambda m: observer.on_fsync(m.duration_seconds),
        WalAppend: lambda m: observer.on_append(m.records, m.bytes),
        WalRotation: lambda _: observer.on_rotation(),
        WalFsyncError: lambda _: observer.on_fsync_error(),
    }


def _ignore(_: object) -> None:
    pass
