"""The client commands (``assert``, ``query``, ``search``, ``keygen``, ``demo``,
``version``): the SDK against a running server, on the client install alone
(``pip install stemedb``: argparse, no typer or rich). The server commands are the
typer application of :mod:`stemedb.cli.main`, on ``stemedb[server]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from stemedb.cli.common import (
    USAGE_EXIT_CODE,
    fail,
    needs_server,
    open_client,
    parse_value,
    server_url,
    write_key_file,
)
from stemedb.cli.output import line, print_hits, print_json, print_result
from stemedb.errors import StemeError, StorageError
from stemedb.model.records import LIFECYCLES, SOURCE_CLASSES

if TYPE_CHECKING:
    from stemedb.client import AssertionFields, Client, QueryFilters, QueryResult

LENSES: Final = ("recency", "confidence", "consensus", "votes", "authority", "layered", "skeptic")
T = TypeVar("T")
Handler = Callable[[argparse.Namespace], None]


def _connection(parser: argparse.ArgumentParser, *, config: bool = True) -> None:
    parser.add_argument("--url", help="Server URL (else $STEMEDB_URL, else the config's api.bind)")
    parser.add_argument("--api-key", help="Sent as X-API-Key (else $STEMEDB_API_KEY)")
    if config:
        parser.add_argument("--config", "-c", type=Path, help="TOML file, for api.bind")
    parser.add_argument("--json", dest="as_json", action="store_true", help="Print JSON")


def _version(args: argparse.Namespace) -> None:
    from stemedb import __version__

    line(__version__)


def _keygen(args: argparse.Namespace) -> None:
    from stemedb.model.signing import AgentKey

    key = AgentKey.generate()
    out: Path | None = args.out
    if out is None:
        line(json.dumps({"agent_id": key.agent_id, "private_key": key.seed_hex()}))
        return
    try:
        write_key_file(key, out)
    except StorageError as exc:
        if exc.details.get("errno") == "EEXIST":
            sys.stderr.write(
                f"Error: ValidationError: {out} exists; a key file is never overwritten\n"
            )
            raise SystemExit(USAGE_EXIT_CODE) from None
        reason = exc.__cause__.strerror if isinstance(exc.__cause__, OSError) else exc
        sys.stderr.write(f"Error: StorageError: cannot write {out}: {reason}\n")
        raise SystemExit(1) from None
    line(json.dumps({"agent_id": key.agent_id, "key_file": str(out)}))


def _assert(args: argparse.Namespace) -> None:
    try:
        obj = parse_value(args.value, args.value_type)
    except StemeError as exc:
        raise fail(exc, USAGE_EXIT_CODE) from None
    fields: AssertionFields = {"lifecycle": args.lifecycle}
    for name in ("source_class", "source_hash", "epoch", "parent"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    target = server_url(args.url, args.config)
    try:
        with open_client(target, args.api_key, args.key_file, signing=True) as db:
            record = db.sign_assertion(args.subject, args.predicate, obj, args.confidence, **fields)
            result = db.assert_record(record)
            agent_id = db.key.agent_id if db.key else ""
    except StemeError as exc:
        raise fail(exc) from None
    if args.as_json:
        answer = {"id": result.id, "lsn": result.lsn, "status": result.status, "agent_id": agent_id}
        line(json.dumps(answer))
        return
    line(f"{result.status}: {result.id} (lsn {result.lsn}) signed by {agent_id}")


def _read(args: argparse.Namespace, ask: Callable[[Client], T]) -> T:
    """``ask`` the server of ``args`` (no key needed); a failure is the exit."""
    target = server_url(args.url, args.config)
    try:
        with open_client(target, args.api_key, None, signing=False) as db:
            return ask(db)
    except StemeError as exc:
        raise fail(exc) from None


QUERY_FILTERS: Final = (
    "lens",
    "as_of",
    "valid_at",
    "since",
    "epoch",
    "agent_id",
    "cursor",
    "source_class",
    "lifecycle",
)


def _query(args: argparse.Namespace) -> None:
    filters: QueryFilters = {
        "limit": args.limit,
        "include_retracted": args.include_retracted,
        "include_superseded": args.include_superseded,
    }
    for name in QUERY_FILTERS:
        if getattr(args, name):
            filters[name] = getattr(args, name)

    def ask(db: Client) -> QueryResult:
        if args.prefix:
            return db.query(subject_prefix=args.subject, predicate=args.predicate, **filters)
        return db.query(args.subject, args.predicate, **filters)

    result = _read(args, ask)
    if args.as_json:
        print_json(result)
    else:
        print_result(result)


def _search(args: argparse.Namespace) -> None:
    mode = "fts" if args.fts else None
    words = " ".join(args.words)
    result = _read(
        args, lambda db: db.search(words, mode=mode, limit=args.limit, cursor=args.cursor)
    )
    if args.as_json:
        print_json(result)
    else:
        print_hits(result)


def _demo(args: argparse.Namespace) -> None:
    from stemedb.cli.demo import PREDICATE, SUBJECT, demo_records

    records = list(demo_records())
    if args.url is None:
        try:
            from stemedb.cli.demo_local import run_local_demo
        except ModuleNotFoundError as exc:
            raise needs_server("stemedb demo without --url", exc.name) from None
        run_local_demo(args.config, records)
        return
    from stemedb.cli.remote import load_remote

    try:
        created = load_remote(args.url, records, api_key=args.api_key)  # type: ignore[arg-type]
    except StemeError as exc:
        raise fail(exc) from None
    line(f"loaded {len(records)} records into {args.url} ({created} new)")
    line(f"try: curl -s '{args.url}/v1/query?subject={SUBJECT}&predicate={PREDICATE}&lens=layered'")


def _add_assert(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "assert",
        help="Sign one assertion with your agent key and store it on a running server.",
        description="Sign one assertion with your agent key and store it on a running server.",
    )
    p.add_argument("subject", help="What the claim is about")
    p.add_argument("predicate", help="Which property")
    p.add_argument("value", help="The claimed value")
    p.add_argument("--confidence", type=float, default=0.8, help="0..1 (default 0.8)")
    p.add_argument(
        "--type",
        dest="value_type",
        default="text",
        help="text | number | boolean | ref (default text)",
    )
    p.add_argument(
        "--source-class",
        choices=SOURCE_CLASSES,
        help="The evidence class (default: the cited source's class, else expert)",
    )
    p.add_argument("--source-hash", help="sha256 of a registered source")
    p.add_argument("--epoch", help="Epoch id (hex)")
    p.add_argument("--parent", help="Assertion this one derives from")
    p.add_argument("--lifecycle", choices=LIFECYCLES, default="proposed")
    p.add_argument(
        "--key-file", type=Path, help="Agent key (else $STEMEDB_PRIVATE_KEY/$STEMEDB_KEY_FILE)"
    )
    _connection(p)
    p.set_defaults(handler=_assert)


def _add_query(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "query",
        help="Ask a running server what it holds about SUBJECT [PREDICATE], through a lens.",
        description="Ask a running server what it holds about SUBJECT [PREDICATE], through a lens.",
    )
    p.add_argument("subject", help="Subject (or prefix with --prefix)")
    p.add_argument("predicate", nargs="?", help="Predicate (optional)")
    p.add_argument("--prefix", action="store_true", help="SUBJECT is a prefix")
    p.add_argument("--lens", help="|".join(LENSES) + " (default consensus)")
    p.add_argument("--as-of", type=float, help="What the database knew then (unix s)")
    p.add_argument("--valid-at", type=float, help="Claims valid then (unix s)")
    p.add_argument("--since", type=float, help="Claims asserted since (unix s)")
    p.add_argument("--source-class", action="append", help="Only these classes (repeatable)")
    p.add_argument("--lifecycle", action="append", help="Lifecycles (repeatable)")
    p.add_argument("--epoch", help="Only this epoch (hex id)")
    p.add_argument("--agent-id", help="Only claims signed by this agent")
    flag = argparse.BooleanOptionalAction
    p.add_argument("--include-retracted", action=flag, default=False, help="Keep them")
    p.add_argument("--include-superseded", action=flag, default=False, help="Keep them")
    p.add_argument("--limit", type=int, default=100, help="Claims per page, 1..1000")
    p.add_argument("--cursor", help="next_cursor of a previous page")
    _connection(p)
    p.set_defaults(handler=_query)


def _add_search(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = (
        "Find the (subject, predicate) keys whose subject, predicate, text values or cited "
        "sources match WORDS, best first; the closest subjects when nothing matches."
    )
    p = sub.add_parser("search", help=text, description=text)
    p.add_argument("words", nargs="+", help="Words to find (all of them)")
    p.add_argument("--fts", action="store_true", help="WORDS are an FTS5 query (AND, OR, NOT, *)")
    p.add_argument("--limit", type=int, default=10, help="Hits per page, 1..100")
    p.add_argument("--cursor", help="next_cursor of a previous page")
    _connection(p)
    p.set_defaults(handler=_search)


def _add_small(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "Load a small signed data set that disagrees with itself, and show the lenses."
    p = sub.add_parser("demo", help=text, description=text)
    p.add_argument("--url", help="Load into a running server (else into the local data dir)")
    p.add_argument("--api-key", help="Sent as X-API-Key (else $STEMEDB_API_KEY)")
    p.add_argument("--config", "-c", type=Path, help="TOML file (without --url)")
    p.set_defaults(handler=_demo)
    text = (
        "Generate an Ed25519 agent key; prints the agent id (public key). The key file "
        "(--out, mode 0600) and private_key are what the SDK reads: STEMEDB_KEY_FILE / "
        "--key-file and STEMEDB_PRIVATE_KEY."
    )
    p = sub.add_parser("keygen", help=text.split(";")[0] + ".", description=text)
    p.add_argument("--out", "-o", type=Path, help="Write the seed here (mode 0600)")
    p.set_defaults(handler=_keygen)
    p = sub.add_parser("version", help="Print the version.", description="Print the version.")
    p.set_defaults(handler=_version)


def parser(epilog: str | None = None) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="stemedb",
        description="StemeDB: claims, not facts.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    _add_assert(sub)
    _add_query(sub)
    _add_search(sub)
    _add_small(sub)
    return top


COMMANDS: Final = frozenset({"assert", "query", "search", "demo", "keygen", "version"})


def run(argv: Sequence[str], epilog: str | None = None) -> int:
    """Run one client command (``argv`` without the program name); its exit code."""
    top = parser(epilog)
    args = top.parse_args(list(argv))
    if args.command is None:
        top.print_help()
        return USAGE_EXIT_CODE
    handler: Handler = args.handler
    handler(args)
    return 0
