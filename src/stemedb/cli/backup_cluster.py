"""``stemedb backup create|list|verify`` and ``stemedb restore`` in cluster mode
(``[storage] backend = "postgres"``): the work is pgBackRest's (``ops/pgbackrest.py``),
with its configuration file (``/etc/pgbackrest/pgbackrest.conf`` or
``PGBACKREST_CONFIG``) and stanza (``stemedb`` or ``PGBACKREST_STANZA``). Called by
``cli/backup.py`` when the configuration is cluster mode; docs/operations/cluster.md."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from stemedb.cli.remote_commands import USAGE_EXIT_CODE, fail
from stemedb.config import Config
from stemedb.errors import StemeError, ValidationError
from stemedb.ops.backup.verify import VerifyResult
from stemedb.ops.pgbackrest import (
    BACKUP_TYPES,
    DEFAULT_STANZA,
    BackupType,
    PgBackRest,
    describe,
    verify_cluster_backup,
)

console = Console()


def tool() -> PgBackRest:
    """pgBackRest for this host: its own configuration lookup, our stanza by default."""
    return PgBackRest(stanza=os.environ.get("PGBACKREST_STANZA", DEFAULT_STANZA))


def _print_json(report: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")


def _kind(kind: str | None) -> BackupType:
    chosen = kind or "full"
    if chosen == "full":
        return "full"
    if chosen == "diff":
        return "diff"
    if chosen == "incr":
        return "incr"
    raise fail(
        ValidationError("--type", f"must be one of {', '.join(BACKUP_TYPES)}"), USAGE_EXIT_CODE
    )


def create(cfg: Config, kind: str | None, as_json: bool) -> None:
    """``pgbackrest backup`` on this host (which must run the primary)."""
    del cfg  # the repository is pgBackRest's configuration
    started = time.monotonic()
    try:
        backup = tool().backup(_kind(kind))
    except StemeError as exc:
        raise fail(exc) from None
    report = {"mode": "cluster", **backup.to_dict(), "seconds": time.monotonic() - started}
    if as_json:
        _print_json(report)
        return
    (line,) = describe([backup])
    console.print(f"pgbackrest backup {line}", markup=False, highlight=False, soft_wrap=True)


def list_backups(cfg: Config, as_json: bool) -> None:
    del cfg
    pgbackrest = tool()
    try:
        info = pgbackrest.info()
    except StemeError as exc:
        raise fail(exc) from None
    if as_json:
        _print_json({"mode": "cluster", **info.to_dict()})
        return
    console.print(
        f"stanza {info.name}: {info.status}; WAL archived {info.wal_min}..{info.wal_max}",
        markup=False,
        highlight=False,
    )
    for line in describe(info.backups):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _state_hash(dsn: str) -> tuple[int, str]:
    """(last LSN, state hash) of the StemeDB database at ``dsn`` (a trial restore)."""
    from stemedb.store.postgres import PostgresStore

    store = PostgresStore(dsn, watch=False)
    try:
        return store.state_hash()
    finally:
        store.close()


def verify(cfg: Config, source: str, scratch_dir: Path | None) -> VerifyResult:
    """The four stages of ``verify_cluster_backup`` on the set ``source`` (a label from
    ``stemedb backup list``, or ``latest``), restored under ``scratch_dir`` (else $TMPDIR)
    and hashed in the database of ``storage.postgres_dsn``."""
    from psycopg.conninfo import conninfo_to_dict

    dbname = conninfo_to_dict(cfg.storage.postgres_dsn).get("dbname")
    if not isinstance(dbname, str) or not dbname:
        raise fail(
            ValidationError("storage.postgres_dsn", "names no database (dbname) to verify"),
            USAGE_EXIT_CODE,
        )
    scratch = scratch_dir or Path(tempfile.gettempdir())
    backup_set = None if source == "latest" else source
    try:
        return verify_cluster_backup(tool(), scratch, dbname, _state_hash, backup_set=backup_set)
    except ValidationError as exc:  # the scratch directory: bad usage
        raise fail(exc, USAGE_EXIT_CODE) from None
    except StemeError as exc:
        raise fail(exc) from None


def restore(
    source: str,
    pg_data: Path | None,
    to_time: float | None,
    force: bool,
    as_json: bool,
    embedded_options: bool = False,
) -> None:
    """``pgbackrest restore`` of the set ``source`` (or ``latest``) into a PostgreSQL
    data directory (Patroni stopped on every host first: docs/operations/cluster.md), to
    ``to_time`` or the end of the archive. ``embedded_options``: the embedded mode's
    --to-lsn/--wal-* options were given (refused)."""
    backup_set = None if source == "latest" else source
    if embedded_options:
        raise fail(
            ValidationError(
                "restore", "cluster mode restores with pgBackRest: --to-time and --force only"
            ),
            USAGE_EXIT_CODE,
        )
    if pg_data is None:
        raise fail(
            ValidationError("--data-dir", "cluster mode restores into a PostgreSQL data directory"),
            USAGE_EXIT_CODE,
        )
    if pg_data.exists() and any(pg_data.iterdir()) and not force:
        raise fail(
            ValidationError(
                "--data-dir",
                f"{pg_data} is not empty: stop PostgreSQL and pass --force (pgBackRest --delta)",
            ),
            USAGE_EXIT_CODE,
        )
    started = time.monotonic()
    try:
        tool().restore(pg_data, to_time=to_time, backup_set=backup_set, delta=force)
    except StemeError as exc:
        raise fail(exc) from None
    report = {
        "mode": "cluster",
        "data_dir": str(pg_data),
        "to_time": to_time,
        "set": backup_set,
        "seconds": time.monotonic() - started,
        "next": "start PostgreSQL (Patroni) on it: recovery replays the archive, then promotes",
    }
    if as_json:
        _print_json(report)
        return
    target = f" to {to_time}" if to_time is not None else ""
    console.print(
        f"restored{target} into {pg_data} in {report['seconds']:.1f} s; {report['next']}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
