"""The report of a disaster-recovery drill (``ops.drill``): its steps and measurements,
as JSON for machines and as text for people."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import msgspec

from stemedb.sys import FileSystem, RealFileSystem
from stemedb.sys.durable import replace_file

REPORT_FILE: Final = "dr-drill-report.json"
TEXT_REPORT_FILE: Final = "dr-drill-report.txt"


class DrillStep(msgspec.Struct):
    name: str
    ok: bool
    seconds: float
    detail: str


class DrillReport(msgspec.Struct):
    ok: bool
    mode: str  # "live" | "synthetic"
    started_at: float
    finished_at: float
    host: str
    source_data_dir: str
    workdir: str
    backup: str
    archive: str
    restored_data_dir: str
    backup_lsn: int
    archived_through_lsn: int
    loss_lsn: int
    loss_at: float
    restored_lsn: int
    records_lost: int
    rpo_seconds: float
    rpo_target_seconds: float
    rpo_ok: bool
    rto_seconds: float
    rto_target_seconds: float
    rto_ok: bool
    expected_state_hash: str
    restored_state_hash: str
    state_hash_ok: bool
    steps: list[DrillStep]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result


def render_text(report: DrillReport) -> str:
    """The report for people (and for the operations docs)."""
    verdict = "PASS" if report.ok else "FAIL"
    lines = [f"StemeDB DR drill ({report.mode}) on {report.host}: {verdict}"]
    for step in report.steps:
        mark = "ok  " if step.ok else "FAIL"
        lines.append(f"  {mark} {step.name:<8} {step.seconds:>8.3f} s  {step.detail}")
    if report.error:
        lines.append(f"  error: {report.error}")
    lines.append(
        f"  RTO {report.rto_seconds:.3f} s (target {report.rto_target_seconds:g} s): "
        f"{'PASS' if report.rto_ok else 'FAIL'}"
    )
    lines.append(
        f"  RPO {report.records_lost} record(s), {report.rpo_seconds:.3f} s "
        f"(target {report.rpo_target_seconds:g} s): {'PASS' if report.rpo_ok else 'FAIL'}"
    )
    lines.append(
        f"  state hash at LSN {report.restored_lsn}: "
        f"{'matches' if report.state_hash_ok else 'DIFFERS'}"
    )
    return "\n".join(lines) + "\n"


def write_reports(report: DrillReport, json_path: Path, fs: FileSystem | None = None) -> Path:
    """Write the JSON report to ``json_path`` and the text one next to it (``.txt``),
    each replacing the previous one atomically (a failure leaves it as it was)."""
    fs = fs or RealFileSystem()
    fs.makedirs(json_path.parent)
    json_bytes = msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n"
    replace_file(fs, json_path, json_bytes)
    text_path = json_path.with_suffix(".txt")
    replace_file(fs, text_path, render_text(report).encode("utf-8"))
    return text_path
