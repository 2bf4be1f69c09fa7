"""Where the client finds its server, its agent key and its API key.

Environment: ``STEMEDB_URL`` (default ``http://127.0.0.1:18180``), ``STEMEDB_PRIVATE_KEY``
(the agent's Ed25519 seed as 64 hex characters, as ``stemedb keygen`` prints it) or
``STEMEDB_KEY_FILE`` (a file written by ``stemedb keygen --out``: the hex seed on one
line, mode 0600), and ``STEMEDB_API_KEY`` (sent as ``X-API-Key``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from stemedb.errors import ValidationError
from stemedb.model.signing import AgentKey

DEFAULT_URL: Final = "http://127.0.0.1:18180"
URL_ENV: Final = "STEMEDB_URL"
PRIVATE_KEY_ENV: Final = "STEMEDB_PRIVATE_KEY"
KEY_FILE_ENV: Final = "STEMEDB_KEY_FILE"
API_KEY_ENV: Final = "STEMEDB_API_KEY"


def load_key_file(path: str | os.PathLike[str]) -> AgentKey:
    """The agent key in ``path`` (written by ``stemedb keygen --out`` / ``AgentKey.save``)."""
    try:
        return AgentKey.load(path)
    except OSError as exc:
        raise ValidationError(
            "key_file", "unreadable", f"cannot read the key file {os.fspath(path)}: {exc.strerror}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValidationError(
            "key_file", "hex_format", f"{os.fspath(path)} does not hold a hex seed"
        ) from exc


def key_from_env(environ: Mapping[str, str] | None = None) -> AgentKey | None:
    """``STEMEDB_PRIVATE_KEY`` (hex seed), else ``STEMEDB_KEY_FILE``, else None."""
    env = os.environ if environ is None else environ
    seed = env.get(PRIVATE_KEY_ENV, "").strip()
    if seed:
        try:
            return AgentKey.from_hex(seed)
        except ValidationError:
            raise ValidationError(
                PRIVATE_KEY_ENV,
                "hex_format",
                f"{PRIVATE_KEY_ENV} must be the agent's seed as 64 hex characters",
            ) from None
    path = env.get(KEY_FILE_ENV, "").strip()
    if path:
        return load_key_file(Path(path).expanduser())
    return None


def url_from_env(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get(URL_ENV, "").strip() or DEFAULT_URL


def api_key_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get(API_KEY_ENV, "").strip() or None
