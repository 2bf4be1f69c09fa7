"""Which WAL records a restore gets: the backup's segments, then archived ones, cut at
the target (an LSN, or the last record before the first one committed after a time).

The chain starts at ``start_lsn`` and follows consecutive segments. Where a segment
is missing, truncated or damaged the chain stops and the missing LSN range is a
**gap**; a restore fails if its target lies beyond a gap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stemedb.ops.archive.reader import WalArchive
from stemedb.ops.segments import SegmentBytes, parse_segment


@dataclass(frozen=True)
class Gap:
    first_lsn: int
    last_lsn: int | None  # None: unknown (no later segment says where it ends)
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"first_lsn": self.first_lsn, "last_lsn": self.last_lsn, "reason": self.reason}


@dataclass
class Candidate:
    """One version of a segment: from the backup or from the archive."""

    first_lsn: int
    claimed_last_lsn: int
    origin: str  # "backup" | "archive"
    load: Callable[[], tuple[bytes, str | None]]  # (bytes, problem)


@dataclass
class WalPlan:
    segments: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, bytes)
    last_lsn: int = 0
    last_committed_at: float | None = None
    target_reached: bool = False
    gaps: list[Gap] = field(default_factory=list)
    from_archive: int = 0  # segments taken from the archive


def backup_candidates(backup_dir: Path, entries: list[tuple[str, int, int]]) -> list[Candidate]:
    """Candidates for the backup's WAL files: (relative path, first_lsn, last_lsn)."""

    def loader(path: Path) -> Callable[[], tuple[bytes, str | None]]:
        return lambda: (path.read_bytes(), None)

    return [
        Candidate(first, last, "backup", loader(backup_dir / relative))
        for relative, first, last in entries
    ]


def archive_candidates(archive: WalArchive, from_lsn: int) -> list[Candidate]:
    """Candidates for archived segments whose first LSN is >= ``from_lsn`` (or whose
    sidecar says they hold ``from_lsn``); reads their sidecars."""
    out: list[Candidate] = []
    for first in archive.first_lsns():
        sidecar = archive.sidecar(first)
        if sidecar.last_lsn < from_lsn:
            continue

        def load(lsn: int = first) -> tuple[bytes, str | None]:
            fetched = archive.fetch(lsn)
            return fetched.data, fetched.problem

        out.append(Candidate(first, sidecar.last_lsn, "archive", load))
    return out


def plan_wal(
    candidates: list[Candidate],
    *,
    start_lsn: int,
    to_lsn: int | None = None,
    to_time: float | None = None,
) -> WalPlan:
    """Follow the segments from ``start_lsn`` up to the target (or as far as they go)."""
    by_first: dict[int, list[Candidate]] = {}
    for candidate in candidates:
        by_first.setdefault(candidate.first_lsn, []).append(candidate)
    plan = WalPlan(last_lsn=start_lsn - 1)
    cur = start_lsn
    while to_lsn is None or cur <= to_lsn:
        versions = by_first.get(cur)
        if not versions:
            later = [lsn for lsn in by_first if lsn > cur]
            if later:
                plan.gaps.append(Gap(cur, min(later) - 1, f"no segment starts at LSN {cur}"))
            break
        best, claimed, problem, origin = _best_version(versions, cur)
        if best.last_lsn < cur:  # no usable record at all
            plan.gaps.append(Gap(cur, claimed, problem or "segment holds no valid record"))
            break
        cut = best.last_lsn
        if to_lsn is not None and to_lsn <= cut:
            cut, plan.target_reached = to_lsn, True
        if to_time is not None:
            for entry in best.entries_from(cur):
                if entry.lsn > cut:
                    break
                if entry.committed_at > to_time:
                    cut, plan.target_reached = entry.lsn - 1, True
                    break
        if cut >= cur or not plan.segments:  # a header-only first segment keeps its LSN
            plan.segments.append((f"{cur:016x}.wal", best.prefix_through(cut)))
            plan.last_lsn = cut
            plan.from_archive += origin == "archive"
        if cut >= cur:
            plan.last_committed_at = best.entry(cut - cur).committed_at
        if plan.target_reached:
            break
        if best.last_lsn < claimed:
            reason = problem or f"segment ends at LSN {best.last_lsn}, expected {claimed}"
            plan.gaps.append(Gap(best.last_lsn + 1, claimed, reason))
            break
        cur = best.last_lsn + 1
    return plan


def _best_version(
    versions: list[Candidate], first_lsn: int
) -> tuple[SegmentBytes, int, str | None, str]:
    """The version with the most valid records, the most any version claims, the
    problem of a damaged version, and the chosen version's origin."""
    best: SegmentBytes | None = None
    origin = ""
    problems: list[str] = []
    claimed = max(v.claimed_last_lsn for v in versions)
    for version in versions:
        data, problem = version.load()
        parsed = parse_segment(data, first_lsn) if data else SegmentBytes(first_lsn, data)
        if problem is None and parsed.damage is not None and version.origin == "archive":
            problem = f"archived segment {first_lsn:016x}.wal is damaged: {parsed.damage}"
        if problem:
            problems.append(problem)
        if best is None or parsed.last_lsn > best.last_lsn:
            best, origin = parsed, version.origin
    assert best is not None
    return best, claimed, "; ".join(problems) or None, origin
