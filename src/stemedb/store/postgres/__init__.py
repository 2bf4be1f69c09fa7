"""The PostgreSQL store of cluster mode (psycopg 3 + psycopg-pool, the ``cluster`` extra).

Modules: ``connection`` (DSNs, pools, error translation), ``migrations`` (the versioned
schema in ``migrations/*.sql``, ``migrate``/``pending``), ``rows`` (an assertion's rows,
copied with binary ``COPY``), ``apply`` (the batch transaction under the LSN row lock),
``lookups`` (the commit-time checks), ``records`` (reads), ``audit``, ``changes`` (the
memory state and what a range of LSNs touched), ``watcher`` (``LISTEN``/poll), ``store``
(``PostgresStore``). Only this package (and ``cli/db.py``) imports psycopg.
"""

from __future__ import annotations

from stemedb.store.postgres.migrations import migrate, migrations, pending
from stemedb.store.postgres.store import PostgresStore

__all__ = ["PostgresStore", "migrate", "migrations", "pending"]
