"""``stemedb assert`` and ``stemedb query``: the SDK against a running server.

The server's URL is ``--url``, else ``$STEMEDB_URL``, else the configuration's
``api.bind`` (``https`` when ``[tls]`` is set). Writes are signed with ``--key-file``,
else ``$STEMEDB_PRIVATE_KEY`` / ``$STEMEDB_KEY_FILE``. Errors print
``Error: <Type>: <message>`` and exit 1 (2 for bad usage or configuration).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from stemedb.config import Config, load_config
from stemedb.errors import StemeError

if TYPE_CHECKING:
    from stemedb.client import AssertionFields, Client, QueryFilters, QueryResult, Suggestion
    from stemedb.model.records import ObjectValue

console = Console()
err = Console(stderr=True)

TRUE_WORDS: Final = frozenset({"true", "yes", "1", "on"})
FALSE_WORDS: Final = frozenset({"false", "no", "0", "off"})
USAGE_EXIT_CODE: Final = 2
ERROR_EXIT_CODE: Final = 1

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


def fail(error: StemeError, exit_code: int = ERROR_EXIT_CODE) -> typer.Exit:
    """Print ``Error: <Type>: <message>`` on stderr; the Exit to raise."""
    err.print(
        f"Error: {error.type_name}: {error.message}",
        style="red",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    request_id = getattr(error, "request_id", None)
    if request_id and getattr(error, "status", 0):
        err.print(f"request_id={request_id}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(exit_code)


def server_url(url: str | None, config_path: Path | None) -> str:
    """``--url``, else ``$STEMEDB_URL``, else ``api.bind`` of the configuration."""
    if url:
        return url
    from_env = os.environ.get("STEMEDB_URL", "").strip()
    if from_env:
        return from_env
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
    from stemedb.errors import ValidationError
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
    from stemedb.errors import ValidationError

    key = load_key_file(key_file) if key_file is not None else key_from_env()
    if signing and key is None:
        raise ValidationError(
            "key",
            "required",
            "no agent key: pass --key-file FILE or set STEMEDB_PRIVATE_KEY or "
            "STEMEDB_KEY_FILE (create one with `stemedb keygen --out FILE`)",
        )
    return Client.from_env(url=url, key=key, api_key=api_key)


def assert_command(
    subject: Annotated[str, typer.Argument(help="What the claim is about")],
    predicate: Annotated[str, typer.Argument(help="Which property")],
    value: Annotated[str, typer.Argument(help="The claimed value")],
    confidence: Annotated[float, typer.Option(help="0..1")] = 0.8,
    value_type: Annotated[
        str, typer.Option("--type", help="text | number | boolean | ref")
    ] = "text",
    source_class: Annotated[
        str | None,
        typer.Option(help="regulatory|clinical|observational|expert|community|anecdotal"),
    ] = None,
    source_hash: Annotated[str | None, typer.Option(help="sha256 of a registered source")] = None,
    epoch: Annotated[str | None, typer.Option(help="Epoch id (hex)")] = None,
    parent: Annotated[str | None, typer.Option(help="Assertion this one derives from")] = None,
    lifecycle: Annotated[str, typer.Option(help="proposed|under_review|approved|…")] = "proposed",
    url: UrlOption = None,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="Agent key (else $STEMEDB_PRIVATE_KEY/$STEMEDB_KEY_FILE)"),
    ] = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign one assertion with your agent key and store it on a running server."""
    from stemedb.model.records import LIFECYCLES, SOURCE_CLASSES

    try:
        obj = parse_value(value, value_type)
    except StemeError as exc:
        raise fail(exc, USAGE_EXIT_CODE) from None
    if source_class is not None and source_class not in SOURCE_CLASSES:
        raise typer.BadParameter(f"one of {', '.join(SOURCE_CLASSES)}", param_hint="--source-class")
    if lifecycle not in LIFECYCLES:
        raise typer.BadParameter(f"one of {', '.join(LIFECYCLES)}", param_hint="--lifecycle")
    fields: AssertionFields = {"lifecycle": lifecycle}
    if source_class is not None:
        fields["source_class"] = source_class
    if source_hash is not None:
        fields["source_hash"] = source_hash
    if epoch is not None:
        fields["epoch"] = epoch
    if parent is not None:
        fields["parent"] = parent
    target = server_url(url, config)
    try:
        with open_client(target, api_key, key_file, signing=True) as db:
            record = db.sign_assertion(subject, predicate, obj, confidence, **fields)
            result = db.assert_record(record)
            agent_id = db.key.agent_id if db.key else ""
    except StemeError as exc:
        raise fail(exc) from None
    if as_json:
        answer = {"id": result.id, "lsn": result.lsn, "status": result.status, "agent_id": agent_id}
        sys.stdout.write(msgspec.json.encode(answer).decode() + "\n")
        return
    console.print(
        f"{result.status}: {result.id} (lsn {result.lsn}) signed by {agent_id}",
        highlight=False,
        soft_wrap=True,
    )


def query_command(
    subject: Annotated[str, typer.Argument(help="Subject (or prefix with --prefix)")],
    predicate: Annotated[str | None, typer.Argument(help="Predicate (optional)")] = None,
    prefix: Annotated[bool, typer.Option("--prefix", help="SUBJECT is a prefix")] = False,
    lens: Annotated[
        str | None,
        typer.Option(help="recency|confidence|consensus|votes|authority|layered|skeptic"),
    ] = None,
    as_of: Annotated[float | None, typer.Option(help="What the database knew (unix s)")] = None,
    valid_at: Annotated[float | None, typer.Option(help="Claims valid then (unix s)")] = None,
    since: Annotated[float | None, typer.Option(help="Claims asserted since (unix s)")] = None,
    source_class: Annotated[
        list[str] | None, typer.Option(help="Only these source classes (repeatable)")
    ] = None,
    lifecycle: Annotated[list[str] | None, typer.Option(help="Lifecycles (repeatable)")] = None,
    epoch: Annotated[str | None, typer.Option(help="Only this epoch (hex id)")] = None,
    agent_id: Annotated[str | None, typer.Option(help="Only claims signed by this agent")] = None,
    include_retracted: Annotated[bool, typer.Option(help="Keep retracted-source claims")] = False,
    include_superseded: Annotated[bool, typer.Option(help="Keep superseded claims")] = False,
    limit: Annotated[int, typer.Option(help="Claims per page, 1..1000")] = 100,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of a previous page")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask a running server what it holds about SUBJECT [PREDICATE], through a lens."""
    target = server_url(url, config)
    filters: QueryFilters = {
        "limit": limit,
        "include_retracted": include_retracted,
        "include_superseded": include_superseded,
    }
    if lens is not None:
        filters["lens"] = lens
    if as_of is not None:
        filters["as_of"] = as_of
    if valid_at is not None:
        filters["valid_at"] = valid_at
    if since is not None:
        filters["since"] = since
    if epoch is not None:
        filters["epoch"] = epoch
    if agent_id is not None:
        filters["agent_id"] = agent_id
    if cursor is not None:
        filters["cursor"] = cursor
    if source_class:
        filters["source_class"] = source_class
    if lifecycle:
        filters["lifecycle"] = lifecycle
    try:
        with open_client(target, api_key, None, signing=False) as db:
            if prefix:
                result = db.query(subject_prefix=subject, predicate=predicate, **filters)
            else:
                result = db.query(subject, predicate, **filters)
    except StemeError as exc:
        raise fail(exc) from None
    if as_json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(result)).decode() + "\n")
        return
    print_result(result)
    if isinstance(result.suggestions, list):
        print_suggestions(result.suggestions)


def _short(text: str | None, size: int = 12) -> str:
    return "-" if not text else (text if len(text) <= size else text[:size] + "…")


def print_result(result: QueryResult) -> None:
    """A query answer as rich tables: the resolution, then the claims or groups."""
    where = result.subject if result.subject is not None else f"{result.subject_prefix}*"
    title = f"{where} / {result.predicate or '*'} — lens {result.lens}"
    if result.resolution is not None:
        res = result.resolution
        winner = res.winner
        value = "-" if winner is None else f"{winner.object.value} ({winner.source_class})"
        console.print(f"[bold]{title}[/bold]", highlight=False, soft_wrap=True)
        console.print(
            f"winner: {value}  confidence {res.resolution_confidence:.3f}  conflict "
            f"{res.conflict_score:.3f}  candidates {res.candidates_count}"
            + (f"  status {res.status}" if res.status else ""),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if result.results:
        groups = Table(title=f"{title}: {len(result.results)} groups")
        for column in ("subject", "predicate", "winner", "confidence", "conflict"):
            groups.add_column(column)
        for group in result.results:
            w = group.resolution.winner
            value = "-" if w is None else str(w.object.value)
            groups.add_row(
                group.subject,
                group.predicate,
                value,
                f"{group.resolution.resolution_confidence:.3f}",
                f"{group.resolution.conflict_score:.3f}",
            )
        console.print(groups)
    claims = Table(title=f"{len(result.claims)} claims")
    for column in ("value", "confidence", "source_class", "weight", "signed by", "id", "flags"):
        claims.add_column(column)
    for claim in result.claims:
        flags = [
            name
            for name, on in (
                ("retracted", claim.retracted_source),
                ("superseded", claim.superseded),
            )
            if on
        ]
        signer = claim.signatures[0].agent_id if claim.signatures else None
        claims.add_row(
            str(claim.object.value),
            f"{claim.confidence:.2f}",
            claim.source_class,
            f"{claim.weight:.3f}",
            _short(signer),
            _short(claim.id),
            ",".join(flags),
        )
    if result.claims or not result.results:
        console.print(claims)
    for warning in result.source_warnings:
        console.print(
            f"excluded {_short(warning.assertion_id)}: {warning.kind} ({warning.reason})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if result.next_cursor:
        console.print(f"more: --cursor {result.next_cursor}", highlight=False, soft_wrap=True)


def print_suggestions(suggestions: list[Suggestion]) -> None:
    """ "Did you mean" lines, one per stored key (or subject)."""
    for s in suggestions:
        key = s.subject if s.predicate is None else f"{s.subject} {s.predicate}"
        console.print(
            f"did you mean: {key} ({s.claims} claims)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    app.command("assert")(assert_command)
    app.command("query")(query_command)
