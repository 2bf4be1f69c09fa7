"""``stemedb cluster import``: replay a stopped embedded node's WAL into the PostgreSQL of
``storage.postgres_dsn`` (``ops.cluster_import`` describes what it checks)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as ProgressBar

from stemedb.cli.backup import RichProgress, err
from stemedb.cli.db import ConfigOption, missing_cluster_extra
from stemedb.cli.remote_commands import USAGE_EXIT_CODE, fail
from stemedb.config import Config, load_config
from stemedb.errors import StemeError, ValidationError


class RecordProgress(RichProgress):
    """``RichProgress`` counting records instead of bytes."""

    def __init__(self) -> None:
        super().__init__()
        self._bar = ProgressBar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        )


def _config(path: Path | None) -> Config:
    try:
        return load_config(path)
    except StemeError as exc:
        raise fail(exc, USAGE_EXIT_CODE) from None


def import_command(
    config: ConfigOption = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="The embedded node's data directory (default: the config's)"
        ),
    ] = None,
    wal_dir: Annotated[
        Path | None,
        typer.Option(
            "--wal-dir", help="Its WAL directory (default: the config's, or <data-dir>/wal)"
        ),
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option("--dsn", help="The cluster's database (default: storage.postgres_dsn)"),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Records per transaction")] = 5000,
) -> None:
    """Replay a stopped embedded node's WAL into the cluster's PostgreSQL, keeping its
    LSNs and commit times; resumes where an interrupted run stopped, and exits 0 only
    when the database's state hash equals the WAL's. Prints a JSON report."""
    from stemedb.ops.cluster_import import BATCH_DELAY_FAILPOINT, import_wal

    cfg = _config(config)
    target_dsn = dsn or cfg.storage.postgres_dsn
    if not target_dsn:
        raise fail(
            ValidationError(
                "storage.postgres_dsn",
                "required",
                "no database to import into: set storage.postgres_dsn or pass --dsn",
            ),
            USAGE_EXIT_CODE,
        )
    source = data_dir or cfg.data_dir
    wal = wal_dir or (source / "wal" if data_dir is not None else cfg.wal_dir)
    pause = float(os.environ.get(BATCH_DELAY_FAILPOINT, "0"))
    try:
        try:
            from stemedb.store.postgres import PostgresStore
        except ImportError as exc:
            raise missing_cluster_extra(exc) from exc
        with RecordProgress() as progress:
            report = import_wal(
                source,
                wal,
                lambda: PostgresStore(target_dsn, watch=False),
                batch_records=batch,
                progress=progress,
                pause_seconds=pause,
            )
    except StemeError as exc:
        raise fail(exc) from None
    sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")


__all__ = ["import_command"]
