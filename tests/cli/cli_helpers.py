"""Types shared by the CLI tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def cli_command() -> list[str]:
    """The installed ``stemedb`` console script, else its entry point via python."""
    script = Path(sys.executable).with_name("stemedb")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from stemedb.cli.main import main; sys.exit(main())"]
