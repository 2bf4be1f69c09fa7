"""``stemedb serve [--bind HOST:PORT] [--data DIR] [--debug]``: the HTTP server.

What a newcomer gets wrong first (the port is taken, the data directory cannot be
used) is checked before the server starts and printed as one line with the fix, exit
1; any other start-up failure is one line too, the traceback only with ``--debug``.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from stemedb.cli.common import ERROR_EXIT_CODE, USAGE_EXIT_CODE, fail
from stemedb.config import Config, load_config
from stemedb.errors import StemeError


def _say(message: str) -> SystemExit:
    sys.stderr.write(f"Error: {message}\n")
    return SystemExit(ERROR_EXIT_CODE)


def check_port(bind: str) -> None:
    """The address can be listened on; else one line naming the fix."""
    from stemedb.api.app import parse_bind

    host, port = parse_bind(bind)
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise _say(
                    f"cannot listen on {bind}: the port is in use (another StemeDB?); "
                    "stop that process or pass --bind HOST:PORT with a free port"
                ) from None
            raise _say(
                f"cannot listen on {bind}: {exc.strerror}; pass --bind HOST:PORT "
                "(e.g. --bind 127.0.0.1:18180)"
            ) from None


def check_data_dir(path: Path) -> None:
    """The data directory exists (or can be made) and can be read and written."""
    fix = "fix its owner or mode (chown/chmod) or pass --data DIR"
    if path.exists() and not path.is_dir():
        raise _say(f"the data directory {path} is not a directory; pass --data DIR")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _say(f"cannot create the data directory {path}: {exc.strerror}; {fix}") from None
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise _say(f"cannot read and write the data directory {path}; {fix}")


def with_flags(cfg: Config, bind: str | None, data: Path | None) -> Config:
    if bind is not None:
        cfg = msgspec.structs.replace(cfg, api=msgspec.structs.replace(cfg.api, bind=bind))
    if data is not None:
        storage = msgspec.structs.replace(cfg.storage, data_dir=str(data))
        cfg = msgspec.structs.replace(cfg, storage=storage)
    return cfg


def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="TOML file (else $STEMEDB_CONFIG, /etc/stemedb/api.toml)"
        ),
    ] = None,
    bind: Annotated[
        str | None, typer.Option("--bind", help="HOST:PORT to listen on (else [api] bind)")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Data directory (else [storage] data_dir)")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks")] = False,
) -> None:
    """Start the HTTP server (default 127.0.0.1:18180, data under ./data)."""
    try:
        cfg = with_flags(load_config(config), bind, data)
        if cfg.storage.backend != "postgres":
            check_data_dir(cfg.data_dir)
        check_port(cfg.api.bind)
    except StemeError as exc:
        raise fail(exc, USAGE_EXIT_CODE) from None
    from stemedb.api.app import serve as run_server

    try:
        run_server(cfg)
    except StemeError as exc:
        if debug:
            raise
        raise fail(exc) from None
    except (OSError, RuntimeError, ValueError) as exc:
        if debug:
            raise
        raise _say(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)") from None


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


__all__ = ["check_data_dir", "check_port", "register", "serve"]
