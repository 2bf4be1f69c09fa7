"""``stemedb db migrate [--dry-run]``: the PostgreSQL schema of cluster mode.

Reads ``storage.postgres_dsn`` from the configuration (``--config``, the environment:
``STEMEDB_STORAGE_POSTGRES_DSN``), or ``--dsn``. Applies the pending migrations in
order, each in its own transaction, under an advisory lock (two nodes migrating at
once wait for each other; each migration is applied once); ``--dry-run`` lists them
without applying anything. Migrations only add; none drops or rewrites data. psycopg
(the ``cluster`` extra) is imported only when a command runs, so the CLI and the
embedded server work without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from stemedb.cli.remote_commands import USAGE_EXIT_CODE, fail
from stemedb.config import load_config
from stemedb.errors import StemeError, StorageError

if TYPE_CHECKING:
    from stemedb.store.postgres.migrations import Migration

db_app = typer.Typer(no_args_is_help=True, help="The PostgreSQL database of cluster mode.")
console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML file (else $STEMEDB_CONFIG, /etc/stemedb/api.toml)"),
]
DsnOption = Annotated[
    str | None,
    typer.Option("--dsn", help="libpq DSN or URL (else the configuration's storage.postgres_dsn)"),
]


def _dsn(config: Path | None, dsn: str | None) -> str:
    if dsn:
        return dsn
    try:
        found = load_config(config).storage.postgres_dsn
    except StemeError as exc:
        err.print(f"[red]Error: {exc.type_name}: {exc.message}[/red]")
        raise typer.Exit(USAGE_EXIT_CODE) from None
    if not found:
        err.print(
            "[red]Error: no PostgreSQL DSN: set storage.postgres_dsn in the configuration"
            " (or STEMEDB_STORAGE_POSTGRES_DSN), or pass --dsn[/red]"
        )
        raise typer.Exit(USAGE_EXIT_CODE)
    return found


def missing_cluster_extra(exc: ImportError) -> StorageError:
    """The error for a cluster command run without psycopg installed."""
    return StorageError(
        f"cluster mode needs the `cluster` extra (psycopg): {exc}",
        code="postgres_missing",
        retryable=False,
    )


def _line(migration: Migration) -> str:
    return f"{migration.version:04d}_{migration.name}"


@db_app.command("migrate")
def migrate_command(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the pending migrations; apply nothing")
    ] = False,
) -> None:
    """Apply the pending schema migrations (each in a transaction, under a lock)."""
    target = _dsn(config, dsn)
    try:
        try:
            from stemedb.store.postgres import migrate, pending
        except ImportError as exc:
            raise missing_cluster_extra(exc) from exc
        if dry_run:
            todo = pending(target)
            if not todo:
                console.print("schema up to date: nothing to apply")
            for migration in todo:
                console.print(f"pending {_line(migration)}")
            return
        applied = migrate(target)
    except StemeError as exc:
        raise fail(exc) from None
    if not applied:
        console.print("schema up to date: nothing to apply")
    for migration in applied:
        console.print(f"applied {_line(migration)}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


__all__ = ["db_app", "register"]
