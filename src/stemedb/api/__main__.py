"""``python -m stemedb.api [--config PATH]``: run the API server (tests, containers)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stemedb.api.app import serve
from stemedb.config import load_config
from stemedb.errors import StemeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemedb.api", description=__doc__)
    parser.add_argument("--config", type=Path, default=None, help="TOML configuration file")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        serve(config)
    except StemeError as exc:
        print(f"stemedb: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
