"""``python -m stemedb.engine.writer_main FD SETTINGS_JSON``: the writer process
(``stemedb.engine.remote``), started by the server's engine, never by hand."""

from __future__ import annotations

import sys

from stemedb.engine.remote import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
