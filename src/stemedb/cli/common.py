"""What every command shares, on the client install (no typer, no rich, no server).

The server's URL is ``--url``, else ``$STEMEDB_URL``, else the configuration's
``api.bind`` (``https`` when ``[tls]`` is set; the configuration is read only when the
server is installed), else ``http://127.0.0.1:18180``. Writes are signed with
``--key-file``, else ``$STEMEDB_PRIVATE_KEY`` / ``$STEMEDB_KEY_FILE``. Errors print
``Error: <Type>: <message>`` and exit 1 (2 for bad usage or configuration).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from stemedb.errors import StemeError, ValidationError

if TYPE_CHECKING:
    from stemedb.client import Client
    from stemedb.config import Config
    from stemedb.model.records import ObjectValue
    from stemedb.model.signing import AgentKey
    from stemedb.sys import FileSystem

TRUE_WORDS: Final = frozenset({"true", "yes", "1", "on"})
FALSE_WORDS: Final = frozenset({"false", "no", "0", "off"})
USAGE_EXIT_CODE: Final = 2
ERROR_EXIT_CODE: Final = 1
SERVER_EXTRA: Final = "pip install 'stemedb[server]'"


def fail(error: StemeError, exit_code: int = ERROR_EXIT_CODE) -> SystemExit:
    """Print ``Error: <Type>: <message>`` on stderr; the exit to raise."""
    sys.stderr.write(f"Error: {error.type_name}: {error.message}\n")
    request_id = getattr(error, "request_id", None)
    if request_id and getattr(error, "status", 0):
        sys.stderr.write(f"request_id={request_id}\n")
    return SystemExit(exit_code)


def needs_server(what: str, missing: str | None = None) -> SystemExit:
    """One line saying that ``what`` needs the server install; the exit to raise."""
    because = f" (no module {missing})" if missing else ""
    sys.stderr.write(f"Error: {what} needs the server{because}: {SERVER_EXTRA}\n")
    return SystemExit(USAGE_EXIT_CODE)


def server_url(url: str | None, config_path: Path | None) -> str:
    """``--url``, else ``$STEMEDB_URL``, else ``api.bind`` of the configuration."""
    if url:
        return url
    from_env = os.environ.get("STEMEDB_URL", "").strip()
    if from_env:
        return from_env
    try:
        from stemedb.config import load_config
    except ModuleNotFoundError as exc:  # the client install: no configuration to read
        if config_path is not None:
            raise needs_server("--config", exc.name) from None
        from stemedb.client import DEFAULT_URL

        return DEFAULT_URL
    try:
        cfg = load_config(config_path)
    except StemeError as exc:
        raise fail(exc, USAGE_EXIT_CODE) from None
    return url_of_bind(cfg)


def url_of_bind(cfg: Config) -> str:
    host, _, port = cfg.api.bind.rpartition(":")
    host = host or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    scheme = "https" if cfg.tls.cert_file else "http"
    return f"{scheme}://{host}:{port}"


def parse_value(value: str, value_type: str) -> ObjectValue:
    """The claimed value as typed on the command line."""
    from stemedb.model.records import ObjectValue

    if value_type == "number":
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValidationError("value", "type", f"{value!r} is not a finite number")
        return ObjectValue(type="number", value=number)
    if value_type == "boolean":
        lowered = value.strip().lower()
        if lowered not in TRUE_WORDS | FALSE_WORDS:
            raise ValidationError("value", "type", f"{value!r} is not true or false")
        return ObjectValue(type="boolean", value=lowered in TRUE_WORDS)
    if value_type in ("text", "ref"):
        return ObjectValue(type="text" if value_type == "text" else "ref", value=value)
    raise ValidationError(
        "type", "choice", f"--type must be text, number, boolean or ref, not {value_type!r}"
    )


def open_client(url: str, api_key: str | None, key_file: Path | None, *, signing: bool) -> Client:
    from stemedb.client import Client, key_from_env, load_key_file

    key = load_key_file(key_file) if key_file is not None else key_from_env()
    if signing and key is None:
        raise ValidationError(
            "key",
            "required",
            "no agent key: pass --key-file FILE or set STEMEDB_PRIVATE_KEY or "
            "STEMEDB_KEY_FILE (create one with `stemedb keygen --out FILE`)",
        )
    return Client.from_env(url=url, key=key, api_key=api_key)


def write_key_file(key: AgentKey, path: Path, fs: FileSystem | None = None) -> None:
    """Write ``key`` as a new key file (mode 0600) through the I/O seam: never over an
    existing file, and a failed write or fsync leaves no key file behind."""
    from stemedb.model.signing import KEY_FILE_MODE, encode_key_file
    from stemedb.sys import RealFileSystem
    from stemedb.sys.durable import write_new_file

    write_new_file(fs or RealFileSystem(), path, encode_key_file(key), mode=KEY_FILE_MODE)
