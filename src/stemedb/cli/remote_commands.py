"""The options the server commands (typer) share, and the helpers of
:mod:`stemedb.cli.common` under their older names here. The client commands
(``assert``, ``query``, ``search``, ...) are :mod:`stemedb.cli.client_cli`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stemedb.cli.common import (
    ERROR_EXIT_CODE,
    USAGE_EXIT_CODE,
    fail,
    open_client,
    parse_value,
    server_url,
    url_of_bind,
)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="Server URL (else $STEMEDB_URL, else the config's api.bind)"),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML file, for api.bind")
]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", help="Sent as X-API-Key (else $STEMEDB_API_KEY)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer")]

__all__ = [
    "ERROR_EXIT_CODE",
    "USAGE_EXIT_CODE",
    "ApiKeyOption",
    "ConfigOption",
    "JsonOption",
    "UrlOption",
    "fail",
    "open_client",
    "parse_value",
    "server_url",
    "url_of_bind",
]
