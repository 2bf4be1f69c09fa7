"""``stemedb backup create|list|verify`` and ``stemedb restore`` (docs/reference/cli.md).

The data directory comes from the configuration, like the server's; backups may be
taken while the server runs (no lock is taken). Errors print ``Error: <Type>: <message>``
and exit 1 (2 for bad usage or configuration)."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from stemedb.cli import backup_cluster
from stemedb.cli.remote_commands import USAGE_EXIT_CODE, fail
from stemedb.config import Config, load_config
from stemedb.errors import StemeError

if TYPE_CHECKING:
    from stemedb.ops.backup.restore import RestoreReport

console = Console()
err = Console(stderr=True)

backup_app = typer.Typer(no_args_is_help=True, help="Online backups: create, list, verify.")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML file (else $STEMEDB_CONFIG, /etc/stemedb/api.toml)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON report")]


class RichProgress:
    """A progress bar on stderr (only on a terminal); implements ``ops.progress.Progress``."""

    def __init__(self) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()

    def start(self, description: str, total_bytes: int) -> None:
        if self._task is not None:
            self._bar.update(self._task, visible=False)
        self._task = self._bar.add_task(description, total=max(total_bytes, 1))

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, nbytes)

    def note(self, message: str) -> None:
        if err.is_terminal:
            self._bar.console.print(message, markup=False, highlight=False)


def _config(path: Path | None) -> Config:
    try:
        return load_config(path)
    except StemeError as exc:
        raise fail(exc, USAGE_EXIT_CODE) from None


def _cluster_mode(cfg: Config) -> bool:
    """``[storage] backend = "postgres"``: backups are pgBackRest's (cli/backup_cluster.py)."""
    return cfg.storage.backend == "postgres"


def _cluster_restore(
    source: str,
    data_dir: Path | None,
    to_time: str | None,
    force: bool,
    as_json: bool,
    embedded_options: bool,
) -> None:
    at = parse_time(to_time) if to_time is not None else None
    backup_cluster.restore(source, data_dir, at, force, as_json, embedded_options)


def _usage(message: str) -> typer.Exit:
    err.print(f"Error: ValidationError: {message}", style="red", markup=False, highlight=False)
    return typer.Exit(USAGE_EXIT_CODE)


def _print_json(report: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")


def _default_target(cfg: Config, given: str | None) -> str:
    target = given or cfg.backup.s3_url or cfg.backup.dir
    if not target:
        raise _usage("no backup target: pass --to DIR|s3://bucket/prefix or set [backup] dir")
    return target


def parse_time(text: str) -> float:
    """Unix seconds (``1700000000.5``) or ISO 8601 (``2026-11-27T23:00:00Z``; no zone = UTC)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _usage(f"--to-time {text!r}: expected unix seconds or ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@backup_app.command("create")
def backup_create(
    to: Annotated[
        str | None,
        typer.Option("--to", help="DIR or s3://bucket/prefix (else [backup] s3_url, dir)"),
    ] = None,
    keep: Annotated[
        int | None, typer.Option("--keep", min=1, help="Keep only the newest N backups")
    ] = None,
    retention_days: Annotated[
        float | None,
        typer.Option(
            "--retention-days",
            help="Remove older backups (else [backup] retention_days; 0 = never)",
        ),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--type", help="Cluster mode: pgBackRest's full, diff or incr (default full)"),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Back up the data directory (online: the server may keep running and writing);
    in cluster mode, the PostgreSQL cluster with pgBackRest."""
    from stemedb.ops.backup.create import create_backup
    from stemedb.ops.backup.location import backup_location

    cfg = _config(config)
    if _cluster_mode(cfg):
        return backup_cluster.create(cfg, kind, as_json)
    if kind is not None:
        raise _usage("--type is for cluster mode (pgBackRest)")
    target = _default_target(cfg, to)
    days = cfg.backup.retention_days if retention_days is None else retention_days
    try:
        with RichProgress() as progress:
            result = create_backup(
                cfg.data_dir,
                cfg.wal_dir,
                backup_location(target),
                keep=keep,
                retention_days=days,
                progress=progress,
            )
    except StemeError as exc:
        raise fail(exc) from None
    m = result.manifest
    report = {
        "url": result.url,
        "name": m.name,
        "created_at": m.created_at,
        "assertion_count": m.assertion_count,
        "first_lsn": m.first_lsn,
        "last_lsn": m.last_lsn,
        "store_applied_lsn": m.store_applied_lsn,
        "state_hash": m.state_hash,
        "total_bytes": m.total_bytes,
        "files": len(m.files),
        "duration_seconds": m.duration_seconds,
        "pruned": result.pruned,
    }
    if as_json:
        _print_json(report)
        return
    console.print(
        f"backup {result.url}: {m.assertion_count} assertions, LSNs {m.first_lsn}..{m.last_lsn}"
        f" (store at {m.store_applied_lsn}), {m.total_bytes / 2**20:.1f} MiB in"
        f" {m.duration_seconds:.1f} s, state hash {m.state_hash[:16]}…",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for name in result.pruned:
        console.print(f"pruned {name} (retention)", markup=False, highlight=False)


@backup_app.command("list")
def backup_list(
    target: Annotated[
        str | None, typer.Argument(help="DIR or s3://bucket/prefix (else [backup] s3_url, dir)")
    ] = None,
    keep: Annotated[
        int | None, typer.Option("--keep", min=1, help="Mark beyond the newest N")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List backups, newest last, and which ones retention would remove (cluster mode:
    pgBackRest's backups)."""
    from stemedb.ops.backup.create import expired_backups
    from stemedb.ops.backup.location import backup_location, list_backups

    cfg = _config(config)
    if _cluster_mode(cfg):
        return backup_cluster.list_backups(cfg, as_json)
    where = _default_target(cfg, target)
    try:
        items = list_backups(backup_location(where))
    except StemeError as exc:
        raise fail(exc) from None
    manifests = [i.manifest for i in items if i.manifest]
    doomed = set(
        expired_backups(
            manifests, keep=keep, retention_days=cfg.backup.retention_days, now=time.time()
        )
    )
    rows: list[dict[str, Any]] = []
    for item in items:
        m = item.manifest
        rows.append(
            {
                "name": item.name,
                "url": item.url,
                "complete": m is not None,
                "problem": item.problem,
                "created_at": m.created_at if m else None,
                "assertion_count": m.assertion_count if m else None,
                "first_lsn": m.first_lsn if m else None,
                "last_lsn": m.last_lsn if m else None,
                "last_committed_at": m.last_committed_at if m else None,
                "total_bytes": m.total_bytes if m else None,
                "expired": item.name in doomed,
            }
        )
    if as_json:
        _print_json({"location": where, "backups": rows})
        return
    table = Table(title=f"backups in {where}")
    for column in ("name", "created (UTC)", "assertions", "LSNs", "MiB", "status"):
        table.add_column(column)
    for row in rows:
        status = "incomplete" if not row["complete"] else "expired" if row["expired"] else "ok"
        table.add_row(
            row["name"],
            row["created_at"] or "-",
            str(row["assertion_count"] or "-"),
            f"{row['first_lsn']}..{row['last_lsn']}" if row["complete"] else "-",
            f"{row['total_bytes'] / 2**20:.1f}" if row["complete"] else "-",
            status + (f" ({row['problem']})" if row["problem"] else ""),
        )
    console.print(table)


@backup_app.command("verify")
def backup_verify(
    source: Annotated[
        str,
        typer.Argument(
            help="A backup: its directory or s3:// URL (cluster mode: a pgBackRest label or latest)"
        ),
    ],
    scratch_dir: Annotated[
        Path | None,
        typer.Option("--scratch-dir", help="Where the trial restore goes (default: $TMPDIR)"),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Four stages: manifest, checksums, trial restore, state hash. Exit 1 naming the failed one.
    In cluster mode SOURCE is a pgBackRest set (a label from `backup list`, or `latest`)."""
    from stemedb.ops.backup.verify import verify_backup

    cfg = _config(config)
    if _cluster_mode(cfg):
        result = backup_cluster.verify(cfg, source, scratch_dir)
    else:
        try:
            with RichProgress() as progress:
                result = verify_backup(source, scratch_root=scratch_dir, progress=progress)
        except StemeError as exc:
            raise fail(exc) from None
    if as_json:
        _print_json(result.to_dict())
    else:
        marks = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}
        for stage in result.stages:
            line = f"[{marks[stage.status]}] {stage.stage} {stage.name}: {stage.detail}"
            console.print(line.rstrip(": "), markup=False, highlight=False, soft_wrap=True)
    if not result.ok:
        number = next(s.stage for s in result.stages if s.status == "failed")
        err.print(
            f"Error: backup verification failed at stage {number} ({result.failed_stage})",
            style="red",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1)


def _print_restore_report(report: RestoreReport) -> None:
    at = report.last_committed_at
    committed = f", last commit at {at:.3f}" if at else ""
    if report.expected_state_hash is None:
        comparison = ""
    elif report.ok:
        comparison = " (matches the backup)"
    else:
        comparison = f" != backup's {report.expected_state_hash}"
    lines = [
        f"restored {report.backup} into {report.data_dir} ({report.mode})",
        f"  LSN {report.restored_lsn}{committed}; {report.records_replayed} WAL records"
        f" replayed; {report.segments_from_archive} segments from the archive",
        f"  state hash {report.state_hash}{comparison}",
        f"  {report.bytes_restored / 2**20:.1f} MiB in {report.seconds:.1f} s",
    ]
    if report.moved_aside:
        lines.append(f"  previous files moved to {report.moved_aside}")
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def restore(
    source: Annotated[
        str, typer.Argument(help="A backup (dir or s3:// URL), or a location holding backups")
    ],
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Restore here (else [storage] data_dir)")
    ] = None,
    wal_dir: Annotated[
        Path | None, typer.Option("--wal-dir", help="WAL directory (else <data-dir>/wal)")
    ] = None,
    to_time: Annotated[
        str | None, typer.Option("--to-time", help="Point in time: unix seconds or ISO 8601")
    ] = None,
    to_lsn: Annotated[
        int | None, typer.Option("--to-lsn", min=0, help="Point in time: LSN")
    ] = None,
    wal_archive: Annotated[
        str | None,
        typer.Option(
            "--wal-archive", help="Archived WAL base: DIR or s3:// (else [archive] s3_url)"
        ),
    ] = None,
    wal_only: Annotated[
        bool, typer.Option("--wal-only", help="Rebuild the store from the WAL (not the backup's)")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Restore into a non-empty directory (old files moved aside)"),
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup (full, WAL-only, or to a point in time); refuses a live directory."""
    from stemedb.ops.backup.restore import RestoreRequest, restore_backup

    if to_time is not None and to_lsn is not None:
        raise _usage("give --to-time or --to-lsn, not both")
    cfg = _config(config)
    if _cluster_mode(cfg):
        embedded = any((to_lsn is not None, wal_only, wal_dir is not None, wal_archive))
        return _cluster_restore(source, data_dir, to_time, force, as_json, embedded)
    if data_dir is None:
        data_dir = cfg.data_dir
        wal_dir = wal_dir or cfg.wal_dir
    archive = wal_archive or cfg.archive.s3_url or None
    pitr = to_time is not None or to_lsn is not None
    request = RestoreRequest(
        source=source,
        data_dir=data_dir,
        wal_dir=wal_dir,
        to_lsn=to_lsn,
        to_time=parse_time(to_time) if to_time is not None else None,
        wal_archive=archive if (pitr or wal_only or wal_archive) else None,
        wal_only=wal_only,
        force=force,
    )
    try:
        with RichProgress() as progress:
            report = restore_backup(request, progress)
    except StemeError as exc:
        raise fail(exc) from None
    if as_json:
        _print_json(report.to_dict())
    else:
        _print_restore_report(report)
    if not report.ok:
        err.print(
            "Error: StorageError: the restored state hash differs from the backup's",
            style="red",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``backup`` and ``restore`` to the ``stemedb`` command."""
    app.add_typer(backup_app, name="backup")
    app.command("restore")(restore)
