"""``stemedb search``: full-text search of a running server, through the SDK."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer
from rich.table import Table

from stemedb.cli.remote_commands import (
    ApiKeyOption,
    JsonOption,
    UrlOption,
    console,
    fail,
    open_client,
    print_suggestions,
    server_url,
)
from stemedb.errors import StemeError

if TYPE_CHECKING:
    from stemedb.client import SearchResponse


def search_command(
    words: Annotated[list[str], typer.Argument(help="Words to find (all of them)")],
    fts: Annotated[
        bool, typer.Option("--fts", help="WORDS are an FTS5 query (AND, OR, NOT, prefix*)")
    ] = False,
    limit: Annotated[int, typer.Option(help="Hits per page, 1..100")] = 10,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of a previous page")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the (subject, predicate) keys whose subject, predicate, text values or cited
    sources match WORDS, best first; the closest subjects when nothing matches. The URL
    is --url, else $STEMEDB_URL, else api.bind of $STEMEDB_CONFIG."""
    target = server_url(url, None)
    try:
        with open_client(target, api_key, None, signing=False) as db:
            result = db.search(
                " ".join(words), mode="fts" if fts else None, limit=limit, cursor=cursor
            )
    except StemeError as exc:
        raise fail(exc) from None
    if as_json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(result)).decode() + "\n")
        return
    print_hits(result)


def print_hits(result: SearchResponse) -> None:
    table = Table(title=f"{len(result.hits)} hits")
    for column in ("score", "subject", "predicate", "matched", "claims", "snippet"):
        table.add_column(column, overflow="fold")
    for hit in result.hits:
        table.add_row(
            f"{hit.score:.3f}",
            hit.subject,
            hit.predicate,
            hit.matched_field,
            str(hit.claims),
            hit.snippet,
        )
    console.print(table)
    if isinstance(result.suggestions, list):
        print_suggestions(result.suggestions)
    if result.next_cursor:
        console.print(f"more: --cursor {result.next_cursor}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("search")(search_command)


__all__ = ["register", "search_command"]
