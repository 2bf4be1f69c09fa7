"""``stemedb cluster status``: a node's ``GET /v1/admin/cluster/status``, printed
(``stemedb cluster import`` is in ``cli.cluster_import``).

The node is ``--url`` (else ``$STEMEDB_URL``, else the configuration's ``api.bind``),
asked with an admin key from ``--api-key`` (else ``$STEMEDB_API_KEY``). ``--json``
prints the answer as the server sent it (``stemedb cluster status --json | jq .health``);
otherwise the health and its reasons, the nodes and the database's primary and
standbys. Exits 0 whenever the node answered (whatever the health), 1 when it did not.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from stemedb.cli.cluster_import import import_command
from stemedb.cli.keys import remote
from stemedb.cli.remote_commands import (
    ApiKeyOption,
    ConfigOption,
    JsonOption,
    UrlOption,
    fail,
    server_url,
)
from stemedb.errors import StemeError

cluster_app = typer.Typer(no_args_is_help=True, help="Cluster mode: the nodes and the database.")
console = Console()


def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def print_status(status: dict[str, Any]) -> None:
    console.print(
        f"health: {status['health']}  mode: {status['mode']}  node: {status['node_id']}",
        markup=False,
        highlight=False,
    )
    for reason in status.get("reasons") or []:
        console.print(f"  - {reason}", markup=False, highlight=False)
    nodes = Table(title="nodes")
    for column in ("node_id", "advertise_url", "version", "last_heartbeat", "healthy"):
        nodes.add_column(column)
    for node in status["nodes"]:
        heartbeat = node.get("last_heartbeat", node.get("checked_at"))
        healthy = node.get("healthy", node.get("health") == "healthy")
        nodes.add_row(
            str(node.get("node_id")),
            str(node.get("advertise_url", node.get("address", "-"))),
            str(node.get("version", "-")),
            _when(heartbeat),
            "yes" if healthy else "NO",
        )
    console.print(nodes)
    database = status.get("database")
    if database is None:
        return
    console.print(
        f"database primary: {database['primary'] or '-'}"
        f"  synchronous: {'yes' if database['synchronous'] else 'no'}",
        markup=False,
        highlight=False,
    )
    standbys = Table(title="standbys")
    for column in ("name", "lag_bytes", "lag_seconds"):
        standbys.add_column(column)
    for standby in database["standbys"]:
        standbys.add_row(
            standby["name"],
            "-" if standby["lag_bytes"] is None else str(standby["lag_bytes"]),
            "-" if standby["lag_seconds"] is None else f"{standby['lag_seconds']:.3f}",
        )
    console.print(standbys)


@cluster_app.command("status")
def status(
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The cluster's health, nodes and database, as one node sees them (admin key)."""
    try:
        answer = remote(
            "GET", server_url(url, config), api_key, "/v1/admin/cluster/status", hint=""
        )
    except StemeError as exc:
        raise fail(exc) from None
    if as_json:
        sys.stdout.write(msgspec.json.encode(answer).decode() + "\n")
        return
    print_status(answer)


cluster_app.command("import")(import_command)


def register(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")


__all__ = ["cluster_app", "print_status", "register"]
