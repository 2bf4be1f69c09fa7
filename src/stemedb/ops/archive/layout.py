"""The archive's layout and its gap rules (normative: ``docs/design/wal-archive.md``).

``<base>/wal/{first_lsn:016x}.wal`` holds a sealed segment's bytes, unchanged;
``<base>/wal/{first_lsn:016x}.wal.json`` is its sidecar ``{"first_lsn", "last_lsn",
"size_bytes", "sha256", "archived_at"}``. The sidecar is written after the segment, so a
segment counts as archived only once its sidecar exists. Archived LSN ranges must be
contiguous from LSN 1; ``check_archive`` lists every place where they are not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from stemedb.errors import StemeError
from stemedb.ops.archive.target import ArchiveTarget

SEGMENT_SUFFIX: Final = ".wal"
SIDECAR_SUFFIX: Final = ".wal.json"
_NAME = re.compile(r"^([0-9a-f]{16})\.wal(\.json)?$")


class ArchivedSegment(msgspec.Struct, frozen=True):
    """The sidecar of one archived segment."""

    first_lsn: int
    last_lsn: int
    size_bytes: int
    sha256: str
    archived_at: float

    def same_segment(self, other: ArchivedSegment) -> bool:
        """Equal except for ``archived_at``."""
        return (self.first_lsn, self.last_lsn, self.size_bytes, self.sha256) == (
            other.first_lsn,
            other.last_lsn,
            other.size_bytes,
            other.sha256,
        )


class Gap(msgspec.Struct, frozen=True):
    """LSNs ``from_lsn..to_lsn`` (inclusive; ``to_lsn`` 0 = unknown end) that the archive
    cannot deliver, and why: ``missing_range``, ``segment_missing``,
    ``segment_truncated``, ``segment_size_mismatch``, ``checksum_mismatch``,
    ``sidecar_missing``, ``sidecar_invalid``, ``overlap``, ``not_in_local_wal``."""

    from_lsn: int
    to_lsn: int
    reason: str
    object: str
    detail: str = ""


class ArchiveCheck(msgspec.Struct, frozen=True):
    """What ``check_archive`` found. ``ok``: no gap at all."""

    archive: str
    segments: int
    first_lsn: int
    last_lsn: int
    contiguous_through_lsn: int  # every LSN 1..this can be restored from the archive
    bytes: int
    gaps: tuple[Gap, ...]

    @property
    def ok(self) -> bool:
        return not self.gaps

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        result["ok"] = self.ok
        return result


def segment_name(first_lsn: int) -> str:
    return f"{first_lsn:016x}{SEGMENT_SUFFIX}"


def sidecar_name(first_lsn: int) -> str:
    return f"{first_lsn:016x}{SIDECAR_SUFFIX}"


def parse_name(name: str) -> tuple[int, bool] | None:
    """``(first_lsn, is_sidecar)`` of an archive object name, else None."""
    match = _NAME.match(name)
    if match is None:
        return None
    return int(match.group(1), 16), match.group(2) is not None


def encode_sidecar(segment: ArchivedSegment) -> bytes:
    return msgspec.json.encode(segment) + b"\n"


def decode_sidecar(data: bytes) -> ArchivedSegment:
    return msgspec.json.decode(data, type=ArchivedSegment)


class ArchiveIndex(msgspec.Struct):
    """One listing of the archive: sidecars read and parsed, sizes of every object."""

    sizes: dict[str, int]
    sidecars: dict[int, ArchivedSegment]
    bad_sidecars: dict[int, str]  # first_lsn -> why the sidecar is unusable


def read_index(
    target: ArchiveTarget, known: dict[int, ArchivedSegment] | None = None
) -> ArchiveIndex:
    """List the archive and read every sidecar not in ``known`` (a cache of sidecars
    already read: they are write-once, so a cached one never changes)."""
    sizes = target.list_sizes()
    sidecars: dict[int, ArchivedSegment] = {}
    bad: dict[int, str] = {}
    for name in sorted(sizes):
        parsed = parse_name(name)
        if parsed is None or not parsed[1]:
            continue
        first_lsn = parsed[0]
        cached = (known or {}).get(first_lsn)
        if cached is not None:
            sidecars[first_lsn] = cached
            continue
        try:
            sidecar = decode_sidecar(target.read(name))
        except msgspec.DecodeError as exc:
            bad[first_lsn] = f"unreadable sidecar: {exc}"
            continue
        except StemeError as exc:
            bad[first_lsn] = f"cannot read the sidecar: {exc.message}"
            continue
        if sidecar.first_lsn != first_lsn or sidecar.last_lsn < sidecar.first_lsn:
            bad[first_lsn] = f"sidecar names LSNs {sidecar.first_lsn}..{sidecar.last_lsn}"
            continue
        sidecars[first_lsn] = sidecar
        if known is not None:
            known[first_lsn] = sidecar
    return ArchiveIndex(sizes, sidecars, bad)


def check_archive(
    target: ArchiveTarget,
    *,
    index: ArchiveIndex | None = None,
    deep: bool = False,
    local_first_lsn: int | None = None,
) -> ArchiveCheck:
    """Every gap of the archive: LSN ranges it cannot deliver, from LSN 1 on.

    ``deep`` downloads every segment and compares its SHA-256 with the sidecar.
    ``local_first_lsn`` (the oldest LSN still in the local WAL) adds a gap when records
    were lost between the archive's end and the local WAL's start.
    """
    index = index or read_index(target)
    gaps: list[Gap] = []
    usable: list[ArchivedSegment] = []
    for first_lsn, sidecar in sorted(index.sidecars.items()):
        name = segment_name(first_lsn)
        where = f"{target.url}/{name}"
        size = index.sizes.get(name)
        reason = None
        if size is None:
            reason = "segment_missing"
        elif size < sidecar.size_bytes:
            reason = "segment_truncated"
        elif size != sidecar.size_bytes:
            reason = "segment_size_mismatch"
        elif deep and hashlib.sha256(target.read(name)).hexdigest() != sidecar.sha256:
            reason = "checksum_mismatch"
        if reason is None:
            usable.append(sidecar)
        else:
            detail = f"{size} bytes stored, sidecar says {sidecar.size_bytes}"
            gaps.append(Gap(sidecar.first_lsn, sidecar.last_lsn, reason, where, detail))
    for first_lsn, why in sorted(index.bad_sidecars.items()):
        where = f"{target.url}/{sidecar_name(first_lsn)}"
        gaps.append(Gap(first_lsn, 0, "sidecar_invalid", where, why))
    for name in sorted(index.sizes):
        parsed = parse_name(name)
        if parsed is None or parsed[1]:
            continue
        first_lsn = parsed[0]
        if first_lsn not in index.sidecars and first_lsn not in index.bad_sidecars:
            gaps.append(Gap(first_lsn, 0, "sidecar_missing", f"{target.url}/{name}"))
    expected = 1
    contiguous_through = 0
    contiguous = True
    for sidecar in usable:
        if sidecar.first_lsn > expected:
            start = _after_reported(gaps, expected)
            if start is not None and start < sidecar.first_lsn:
                gaps.append(Gap(start, sidecar.first_lsn - 1, "missing_range", target.url))
            contiguous = False
        elif sidecar.first_lsn < expected:
            where = f"{target.url}/{segment_name(sidecar.first_lsn)}"
            last = min(sidecar.last_lsn, expected - 1)
            gaps.append(Gap(sidecar.first_lsn, last, "overlap", where))
            contiguous = False
        if contiguous:
            contiguous_through = sidecar.last_lsn
        expected = max(expected, sidecar.last_lsn + 1)
    if local_first_lsn is not None and local_first_lsn > expected:
        start = _after_reported(gaps, expected)
        if start is not None and start < local_first_lsn:
            gaps.append(Gap(start, local_first_lsn - 1, "not_in_local_wal", target.url))
    gaps.sort(key=lambda g: (g.from_lsn, g.reason))
    return ArchiveCheck(
        archive=target.url,
        segments=len(usable),
        first_lsn=usable[0].first_lsn if usable else 0,
        last_lsn=max((s.last_lsn for s in usable), default=0),
        contiguous_through_lsn=contiguous_through,
        bytes=sum(s.size_bytes for s in usable),
        gaps=tuple(gaps),
    )


def _after_reported(gaps: Sequence[Gap], lsn: int) -> int | None:
    """The first LSN from ``lsn`` on that no damaged segment already reported covers;
    None when a reported damage has an unknown end (its sidecar is missing)."""
    starts = {g.from_lsn: g.to_lsn for g in gaps}
    while lsn in starts:
        end = starts[lsn]
        if end < lsn:
            return None
        lsn = end + 1
    return lsn


__all__ = [
    "ArchiveCheck",
    "ArchiveIndex",
    "ArchivedSegment",
    "Gap",
    "check_archive",
    "decode_sidecar",
    "encode_sidecar",
    "parse_name",
    "read_index",
    "segment_name",
    "sidecar_name",
]
