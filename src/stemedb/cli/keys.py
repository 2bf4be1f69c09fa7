"""``stemedb keys create|list|disable|delete``: API keys, through the admin API or offline.

Online (the default): the admin endpoints of a running server at ``--url`` (else
``$STEMEDB_URL``, else the configuration's ``api.bind``) with an admin key from
``--api-key`` (else ``$STEMEDB_API_KEY``). ``--offline``: ``<data_dir>/keys.sqlite``
directly, for a stopped server (e.g. the first admin key before ``[auth] enabled``);
refused while a server holds the data directory's lock. In cluster mode
(``storage.backend = "postgres"``) ``--offline`` edits the cluster's tables, while the
nodes run: each reloads the keys at its next request.

A new key's secret is printed once and never again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final

import httpx
import msgspec
import typer
from rich.console import Console
from rich.table import Table

from stemedb.cli.remote_commands import (
    USAGE_EXIT_CODE,
    ApiKeyOption,
    ConfigOption,
    JsonOption,
    UrlOption,
    fail,
    server_url,
)
from stemedb.client.errors import error_from_response
from stemedb.config import load_config
from stemedb.errors import NetworkError, StemeError, StorageError, ValidationError

keys_app = typer.Typer(no_args_is_help=True, help="API keys (admin API, or --offline).")
console = Console()

HTTP_TIMEOUT_SECONDS: Final = 30.0
SECONDS_PER_DAY: Final = 86400

OfflineOption = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Edit <data_dir>/keys.sqlite directly (the server must be stopped); in cluster"
        " mode the cluster's PostgreSQL tables (running nodes pick the change up)",
    ),
]


@contextmanager
def offline_ring(config: Path | None) -> Iterator[Any]:
    """The key ring of the configured data directory, under its lock."""
    from stemedb.api.guard.keys import KeyRing
    from stemedb.store.keys import SqliteKeyStore, open_key_store
    from stemedb.sys.lock import DirectoryLock

    cfg = load_config(config)
    if cfg.storage.backend == "postgres":  # the cluster's tables: servers reload them
        shared = KeyRing()
        try:
            shared.open(open_key_store("postgres", cfg.data_dir, cfg.storage.postgres_dsn), "")
            yield shared
        finally:
            shared.close()
        return
    try:
        lock = DirectoryLock(cfg.data_dir)
    except StorageError as exc:
        if exc.code == "data_dir_locked":
            raise StorageError(
                f"a StemeDB server is running on {cfg.data_dir}: drop --offline and use the"
                " admin API (--url, --api-key / STEMEDB_API_KEY)",
                code="data_dir_locked",
                retryable=False,
            ) from None
        raise
    ring = KeyRing()
    try:
        ring.open(SqliteKeyStore(cfg.data_dir), "")
        yield ring
    finally:
        ring.close()
        lock.release()


def remote(
    method: str,
    url: str,
    api_key: str | None,
    path: str,
    body: Any = None,
    *,
    hint: str = " For a stopped server use --offline",
) -> Any:
    """One admin call: the answer's JSON, or the error it answered (``StemeError``)."""
    key = api_key or os.environ.get("STEMEDB_API_KEY") or None
    headers = {"x-api-key": key} if key else {}
    try:
        response = httpx.request(
            method,
            url.rstrip("/") + path,
            headers=headers,
            json=body,
            timeout=HTTP_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        raise NetworkError(
            f"cannot reach {url} ({type(exc).__name__}); is the server running?{hint}"
        ) from None
    if response.status_code >= 400:
        raise error_from_response(
            response.status_code,
            response.content,
            header_request_id=response.headers.get("x-request-id"),
            retry_after_seconds=None,
        )
    return response.json()


def _expiry(expires_at: float | None, expires_in_days: float | None) -> float | None:
    if expires_at is not None and expires_in_days is not None:
        raise ValidationError(
            "expires_at", "one_of", "give --expires-at or --expires-in-days, not both"
        )
    if expires_in_days is not None:
        return datetime.now(UTC).timestamp() + expires_in_days * SECONDS_PER_DAY
    return expires_at


def _when(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _print_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="What the key is for")],
    role: Annotated[str, typer.Option("--role", help="admin | writer | reader")] = "reader",
    expires_at: Annotated[
        float | None, typer.Option("--expires-at", help="Expiry (unix seconds)")
    ] = None,
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", help="Expiry, in days from now")
    ] = None,
    offline: OfflineOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key; its secret (stm_…) is printed this once."""
    try:
        expiry = _expiry(expires_at, expires_in_days)
        if offline:
            with offline_ring(config) as ring:
                made = msgspec.to_builtins(ring.create(name, role, expiry))
        else:
            body = {"name": name, "role": role, "expires_at": expiry}
            made = remote("POST", server_url(url, config), api_key, "/v1/admin/api-keys", body)
    except ValidationError as exc:
        raise fail(exc, USAGE_EXIT_CODE) from None
    except StemeError as exc:
        raise fail(exc) from None
    if as_json:
        _print_json(made)
        return
    console.print(
        f"created API key {made['id']} ({made['role']}, name {made['name']!r})",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    console.print("secret (shown only now; store it safely):", highlight=False)
    sys.stdout.write(f"{made['secret']}\n")


@keys_app.command("list")
def list_keys(
    offline: OfflineOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the keys (never their secrets)."""
    try:
        if offline:
            with offline_ring(config) as ring:
                keys = msgspec.to_builtins(ring.list())
        else:
            keys = remote("GET", server_url(url, config), api_key, "/v1/admin/api-keys")["keys"]
    except StemeError as exc:
        raise fail(exc) from None
    if as_json:
        _print_json({"keys": keys})
        return
    table = Table(title="API keys")
    for column in ("id", "name", "role", "enabled", "created", "expires", "last used"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key["id"],
            key["name"],
            key["role"],
            "yes" if key["enabled"] else "no",
            _when(key["created_at"]),
            _when(key["expires_at"]),
            _when(key["last_used_at"]),
        )
    console.print(table)


@keys_app.command("disable")
def disable(
    key_id: Annotated[str, typer.Argument(help="The key's id (from keys list)")],
    offline: OfflineOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Disable a key: refused from the next request on."""
    try:
        if offline:
            with offline_ring(config) as ring:
                key = msgspec.to_builtins(ring.disable(key_id))
        else:
            path = f"/v1/admin/api-keys/{key_id}/disable"
            key = remote("POST", server_url(url, config), api_key, path)
    except StemeError as exc:
        raise fail(exc) from None
    if as_json:
        _print_json(key)
        return
    console.print(f"disabled API key {key['id']}", highlight=False, markup=False)


@keys_app.command("delete")
def delete(
    key_id: Annotated[str, typer.Argument(help="The key's id (from keys list)")],
    offline: OfflineOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a key."""
    try:
        if offline:
            with offline_ring(config) as ring:
                answer = {"id": ring.delete(key_id).id, "deleted": True}
        else:
            path = f"/v1/admin/api-keys/{key_id}"
            answer = remote("DELETE", server_url(url, config), api_key, path)
    except StemeError as exc:
        raise fail(exc) from None
    if as_json:
        _print_json(answer)
        return
    console.print(f"deleted API key {answer['id']}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


__all__ = ["keys_app", "register"]
