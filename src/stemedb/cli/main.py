"""The ``stemedb`` command line (API.md "Command line")."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from stemedb.cli.backup import register as register_backup_commands
from stemedb.cli.client_cli import run as run_client_command
from stemedb.cli.cluster import register as register_cluster_commands
from stemedb.cli.common import USAGE_EXIT_CODE, fail
from stemedb.cli.db import register as register_db_commands
from stemedb.cli.keys import register as register_keys_commands
from stemedb.cli.mcp import register as register_mcp_commands
from stemedb.cli.ops import embedded_config
from stemedb.cli.ops import register as register_ops_commands
from stemedb.cli.serve import register as register_serve_command
from stemedb.config import Config, effective, load_config
from stemedb.errors import StemeError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    help="StemeDB: claims, not facts.",
)
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
        raise fail(exc, USAGE_EXIT_CODE) from None


def _print_report(report: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")


def _fail(exc: StemeError) -> SystemExit:
    return fail(exc)


def _client_command(name: str, help_text: str) -> None:
    """``stemedb NAME`` in the typer help; the command itself is the client CLI's
    (:mod:`stemedb.cli.client_cli`), which ``stemedb`` runs before typer is loaded."""

    def forward(ctx: typer.Context) -> None:
        raise SystemExit(run_client_command([name, *ctx.args]))

    settings = {"allow_extra_args": True, "ignore_unknown_options": True}
    app.command(name, help=help_text, context_settings=settings, add_help_option=False)(forward)


for _name, _help in (
    ("assert", "Sign one assertion with your agent key and store it on a running server."),
    ("query", "Ask a running server what it holds about SUBJECT [PREDICATE], through a lens."),
    ("search", "Find subjects and predicates by words (full-text search of a running server)."),
    ("demo", "Load a small signed data set that disagrees with itself, and show the lenses."),
    ("keygen", "Generate an Ed25519 agent key; prints the agent id (public key)."),
    ("version", "Print the version."),
):
    _client_command(_name, _help)


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


register_serve_command(app)
register_keys_commands(app)
register_mcp_commands(app)
register_backup_commands(app)
register_db_commands(app)
register_cluster_commands(app)
register_ops_commands(app, wal_app)


def main() -> Any:
    from stemedb.cli.entry import main as entry_main

    return entry_main()
