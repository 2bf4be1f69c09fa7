"""The ``stemedb`` program: the client commands on any install, the server commands
when ``stemedb[server]`` is installed (else one line saying so, exit 2)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stemedb.cli.client_cli import COMMANDS, run
from stemedb.cli.common import SERVER_EXTRA, needs_server

SERVER_COMMANDS_NOTE = (
    "The server commands (serve, config, db, store, wal, verify, keys, backup, restore,\n"
    f"cluster, mcp, dr-drill) need the server install: {SERVER_EXTRA}"
)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        return run(args)
    try:
        from stemedb.cli.main import app
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] == "stemedb":
            raise
        if not args or args[0] in ("-h", "--help"):
            return run(["--help"] if args else [], epilog=SERVER_COMMANDS_NOTE)
        raise needs_server(f"stemedb {args[0]}", exc.name) from None
    app(args, prog_name="stemedb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
