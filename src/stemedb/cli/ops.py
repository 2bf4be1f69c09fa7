"""``stemedb wal archive`` and ``stemedb dr-drill`` (API.md "Command line").

``wal archive`` runs while the server does: it reads sealed segment files without the
data-directory lock. It deletes archived local segments only when it can take that lock
(the server is stopped); a running server's own archiver does that otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from stemedb.cli.remote_commands import fail
from stemedb.config import Config, load_config
from stemedb.errors import StemeError

err = Console(stderr=True)

GAPS_EXIT_CODE = 1
USAGE_EXIT_CODE = 2

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML file (else $STEMEDB_CONFIG, /etc/stemedb/api.toml)"),
]


def _config(path: Path | None) -> Config:
    try:
        return load_config(path)
    except StemeError as exc:
        raise fail(exc, USAGE_EXIT_CODE) from None


def embedded_config(path: Path | None, command: str) -> Config:
    """The configuration of a command that works on the embedded WAL and store; exits 2
    naming ``storage.backend`` in cluster mode (``runtime.topology.require_embedded``)."""
    from stemedb.runtime.topology import require_embedded

    cfg = _config(path)
    try:
        require_embedded(cfg, command)
    except StemeError as exc:
        raise fail(exc, USAGE_EXIT_CODE) from None
    return cfg


def _print(report: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")


def _archive_base(to: str | None, cfg: Config) -> str:
    base = to or cfg.archive.s3_url
    if not base:
        err.print(
            "Error: ValidationError: no archive: pass --to s3://bucket/prefix (or a directory)"
            " or set [archive] s3_url",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(USAGE_EXIT_CODE)
    return base


def wal_archive(
    config: ConfigOption = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Archive base: s3://bucket/prefix or a directory"),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only list the archive's gaps (exit 1 if any)")
    ] = False,
    deep: Annotated[
        bool,
        typer.Option("--deep", help="With --check: download every segment, compare SHA-256"),
    ] = False,
    keep_local: Annotated[
        bool,
        typer.Option("--keep-local", help="Never delete local segments after archiving"),
    ] = False,
) -> None:
    """Ship sealed WAL segments to <base>/wal/ (write-once, SHA-256 checked); report gaps.

    Works while the server runs. Local segments are deleted only when archived and below
    the store's checkpoint, and only if the server is stopped (else its archiver does it).
    Exits 1 if the archive has a gap.
    """
    from stemedb.ops.archive.archiving import archive_wal, delete_archived_segments, local_segments
    from stemedb.ops.archive.layout import check_archive
    from stemedb.ops.archive.target import open_archive_target
    from stemedb.sys.lock import DirectoryLock
    from stemedb.wal import Wal

    cfg = embedded_config(config, "wal archive")
    base = _archive_base(to, cfg)
    try:
        target = open_archive_target(base)
        if check:
            local = local_segments(cfg.wal_dir)
            result = check_archive(
                target, deep=deep, local_first_lsn=local[0].first_lsn if local else None
            )
            _print(result.to_dict())
            if not result.ok:
                raise typer.Exit(GAPS_EXIT_CODE)
            return
        keep = keep_local or cfg.archive.keep_local
        lock: DirectoryLock | None = None
        if not keep and cfg.data_dir.exists():
            try:
                lock = DirectoryLock(cfg.data_dir)
            except StemeError as exc:
                if exc.code != "data_dir_locked":
                    raise
                err.print(
                    "note: the server holds the data directory; local segments are left to "
                    "its archiver ([archive] enabled)",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
        try:
            if lock is not None:
                wal = Wal.open(cfg.wal_dir)
                try:
                    run = archive_wal(
                        cfg.wal_dir, target, delete=delete_archived_segments(wal, cfg.data_dir)
                    )
                finally:
                    wal.close()
            else:
                run = archive_wal(cfg.wal_dir, target)
        finally:
            if lock is not None:
                lock.release()
    except StemeError as exc:
        raise fail(exc) from None
    _print(run.to_dict())
    if not run.check.ok:
        err.print(
            f"Error: StorageError: the archive {run.archive} has {len(run.check.gaps)} gap(s);"
            ' see "gaps"',
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(GAPS_EXIT_CODE)


def dr_drill(
    config: ConfigOption = None,
    synthetic: Annotated[
        int | None,
        typer.Option(
            "--synthetic",
            help="Drill on N generated records in a scratch data directory (CI) instead of"
            " the configured one",
        ),
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Scratch directory (default [dr] workdir, else a temp dir)"),
    ] = None,
    backup_to: Annotated[
        str | None,
        typer.Option("--backup-to", help="Where the drill's backup goes (default <workdir>)"),
    ] = None,
    archive: Annotated[
        str | None,
        typer.Option(
            "--archive",
            help="WAL archive base (default [archive] s3_url; with --synthetic: <workdir>)",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="JSON report path (default <workdir>/dr-drill-report.json)"),
    ] = None,
) -> None:
    """Backup -> archive -> loss -> restore elsewhere -> verify; measure RTO and RPO.

    Without --synthetic the source is the configured data directory (it may be serving):
    the loss is simulated and the live data never touched. Prints the text report,
    writes it and the JSON report, and exits 1 unless every check and both [dr] targets
    pass.
    """
    from stemedb.ops.drill import DrillOptions, default_workdir, run_drill
    from stemedb.ops.drill_report import REPORT_FILE, render_text, write_reports

    cfg = _config(config) if synthetic is not None else embedded_config(config, "dr-drill")
    scratch = workdir or default_workdir(cfg.dr.workdir)
    options = DrillOptions(
        workdir=scratch,
        rto_target_seconds=cfg.dr.rto_target_seconds,
        rpo_target_seconds=cfg.dr.rpo_target_seconds,
        data_dir=None if synthetic is not None else cfg.data_dir,
        wal_dir=None if synthetic is not None else cfg.wal_dir,
        records=synthetic,
        backup_to=backup_to or (None if synthetic is not None else _backup_base(cfg)),
        archive=archive or (None if synthetic is not None else cfg.archive.s3_url or None),
    )

    def note(message: str) -> None:
        err.print(message, markup=False, highlight=False, soft_wrap=True)

    try:
        result = run_drill(options, note)
    except StemeError as exc:
        raise fail(exc) from None
    json_path = report or scratch / REPORT_FILE
    text_path = write_reports(result, json_path)
    sys.stdout.write(render_text(result))
    sys.stdout.write(f"report: {json_path} and {text_path}\n")
    if not result.ok:
        raise typer.Exit(GAPS_EXIT_CODE)


def _backup_base(cfg: Config) -> str | None:
    return cfg.backup.s3_url or cfg.backup.dir or None


def register(app: typer.Typer, wal_app: typer.Typer) -> None:
    """Add ``wal archive`` and ``dr-drill`` to the ``stemedb`` command line."""
    wal_app.command("archive")(wal_archive)
    app.command("dr-drill")(dr_drill)
