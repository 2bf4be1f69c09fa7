"""The ``stemedb`` command line (API.md "Command line")."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from stemedb import __version__
from stemedb.cli.backup import register as register_backup_commands
from stemedb.cli.cluster import register as register_cluster_commands
from stemedb.cli.db import register as register_db_commands
from stemedb.cli.keys import register as register_keys_commands
from stemedb.cli.mcp import register as register_mcp_commands
from stemedb.cli.ops import embedded_config
from stemedb.cli.ops import register as register_ops_commands
from stemedb.cli.remote_commands import fail
from stemedb.cli.remote_commands import register as register_remote_commands
from stemedb.cli.search import register as register_search_commands
from stemedb.config import Config, effective, load_config
from stemedb.errors import StemeError, StorageError

if TYPE_CHECKING:
    from stemedb.model.signing import AgentKey
    from stemedb.sys import FileSystem

app = typer.Typer(no_args_is_help=True, add_completion=False, help="StemeDB: claims, not facts.")
store_app = typer.Typer(no_args_is_help=True, help="The SQLite store.")
wal_app = typer.Typer(no_args_is_help=True, help="The write-ahead log.")
config_app = typer.Typer(no_args_is_help=True, help="Configuration.")
app.add_typer(store_app, name="store")
app.add_typer(wal_app, name="wal")
app.add_typer(config_app, name="config")

console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML file (else $STEMEDB_CONFIG, /etc/stemedb/api.toml)"),
]


def _config(path: Path | None) -> Config:
    try:
        return load_config(path)
    except StemeError as exc:
        err.print(f"[red]Error: {exc.type_name}: {exc.message}[/red]")
        raise typer.Exit(2) from None


def _print_report(report: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")


def _fail(exc: StemeError) -> typer.Exit:
    return fail(exc)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Start the HTTP server (default 127.0.0.1:18180, data under ./data)."""
    cfg = _config(config)
    from stemedb.api.app import serve as run_server

    try:
        run_server(cfg)
    except StemeError as exc:
        raise _fail(exc) from None


@app.command()
def demo(
    config: ConfigOption = None,
    url: Annotated[str | None, typer.Option(help="Load into a running server instead")] = None,
) -> None:
    """Load a small signed data set that disagrees with itself, and show the lenses."""
    from stemedb.cli.demo import PREDICATE, SUBJECT, demo_records

    records = list(demo_records())
    if url is not None:
        from stemedb.cli.remote import load_remote

        try:
            created = load_remote(url, records)  # type: ignore[arg-type]
        except StemeError as exc:
            raise _fail(exc) from None
        console.print(f"loaded {len(records)} records into {url} ({created} new)")
        console.print(
            f"try: curl -s '{url}/v1/query?subject={SUBJECT}&predicate={PREDICATE}&lens=layered'"
        )
        return
    from stemedb.lens import LENS_NAMES
    from stemedb.query.params import QueryParams
    from stemedb.query.service import QueryService
    from stemedb.runtime.topology import open_engine_for_command

    cfg = _config(config)
    try:
        with open_engine_for_command(cfg) as engine:
            results = engine.write_many(records)
            errors = [r for r in results if isinstance(r, StemeError)]
            for error in errors:
                err.print(f"[yellow]{error.type_name}: {error.message}[/yellow]")
            service = QueryService.from_config(engine, cfg)
            try:
                table = Table(title=f"{SUBJECT} / {PREDICATE}: one question, seven lenses")
                for column in (
                    "lens",
                    "winner",
                    "resolution_confidence",
                    "conflict_score",
                    "status",
                ):
                    table.add_column(column)
                for lens in LENS_NAMES:
                    r = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE, lens=lens))
                    assert r.resolution is not None
                    w = r.resolution.winner
                    table.add_row(
                        lens,
                        "-" if w is None else f"{w.object.value} ({w.source_class})",
                        f"{r.resolution.resolution_confidence:.3f}",
                        f"{r.resolution.conflict_score:.3f}",
                        r.resolution.status or "",
                    )
                console.print(table)
                warnings = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE))
                for warning in warnings.source_warnings:
                    console.print(
                        f"excluded {warning.assertion_id[:12]}…: {warning.kind} ({warning.reason})"
                    )
                console.print(f"{len(records) - len(errors)} records in {cfg.data_dir}")
            finally:
                service.close()
    except StemeError as exc:
        raise _fail(exc) from None


def write_key_file(key: AgentKey, path: Path, fs: FileSystem | None = None) -> None:
    """Write ``key`` as a new key file (mode 0600) through the I/O seam: never over an
    existing file, and a failed write or fsync leaves no key file behind."""
    from stemedb.model.signing import KEY_FILE_MODE, encode_key_file
    from stemedb.sys import RealFileSystem
    from stemedb.sys.durable import write_new_file

    write_new_file(fs or RealFileSystem(), path, encode_key_file(key), mode=KEY_FILE_MODE)


@app.command()
def keygen(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the seed here (mode 0600)")
    ] = None,
) -> None:
    """Generate an Ed25519 agent key; prints the agent id (public key).

    The key file (``--out``) and ``private_key`` are the format the SDK reads:
    ``STEMEDB_KEY_FILE`` / ``--key-file`` and ``STEMEDB_PRIVATE_KEY``."""
    from stemedb.model.signing import AgentKey

    key = AgentKey.generate()
    if out is not None:
        try:
            write_key_file(key, out)
        except StorageError as exc:
            if exc.details.get("errno") == "EEXIST":
                err.print(f"Error: ValidationError: {out} exists; a key file is never overwritten")
                raise typer.Exit(2) from None
            reason = exc.__cause__.strerror if isinstance(exc.__cause__, OSError) else exc
            err.print(f"Error: StorageError: cannot write {out}: {reason}")
            raise typer.Exit(1) from None
        sys.stdout.write(json.dumps({"agent_id": key.agent_id, "key_file": str(out)}) + "\n")
    else:
        answer = {"agent_id": key.agent_id, "private_key": key.seed_hex()}
        sys.stdout.write(json.dumps(answer) + "\n")


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective configuration (secrets masked)."""
    cfg = _config(config)
    sys.stdout.write(json.dumps(effective(cfg), indent=2) + "\n")


@store_app.command("rebuild")
def store_rebuild(config: ConfigOption = None) -> None:
    """Drop the store's derived rows and rebuild them from the WAL."""
    from stemedb.engine import Engine

    cfg = embedded_config(config, "store rebuild")
    try:
        with Engine.from_config(cfg) as engine:
            with console.status("rebuilding the store from the WAL…"):
                count = engine.rebuild()
            console.print(f"rebuilt: {count} WAL records applied, applied_lsn={engine.applied_lsn}")
    except StemeError as exc:
        raise _fail(exc) from None


@wal_app.command("verify")
def wal_verify(config: ConfigOption = None) -> None:
    """Check every WAL record (CRC, LSN continuity) without changing anything."""
    from stemedb.wal import verify

    cfg = embedded_config(config, "wal verify")
    report = verify(cfg.wal_dir)
    _print_report(report.to_dict())
    if not report.ok:
        raise typer.Exit(1)


@wal_app.command("repair")
def wal_repair(
    config: ConfigOption = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really cut the WAL at the first damage")
    ] = False,
) -> None:
    """Cut the WAL at its first damaged record (the cut bytes are kept as *.broken)."""
    from stemedb.wal import repair

    if not yes:
        err.print("wal repair discards every record after the first damage; pass --yes")
        raise typer.Exit(2)
    cfg = embedded_config(config, "wal repair")
    report = repair(cfg.wal_dir)
    _print_report(report.to_dict())


@app.command("verify")
def verify_store(config: ConfigOption = None) -> None:
    """Check the store against the WAL: every WAL record applied, state hashes equal."""
    from stemedb.ops.state import compare_store_with_wal

    cfg = embedded_config(config, "verify")
    try:
        report = compare_store_with_wal(cfg)
    except StemeError as exc:
        raise _fail(exc) from None
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    if not report["ok"]:
        raise typer.Exit(1)


register_remote_commands(app)
register_search_commands(app)
register_keys_commands(app)
register_mcp_commands(app)
register_backup_commands(app)
register_db_commands(app)
register_cluster_commands(app)
register_ops_commands(app, wal_app)


def main() -> Any:
    return app()
