"""Fixtures of the store tests: PostgreSQL stores on one fresh migrated database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stemedb.store.postgres import PostgresStore

OpenPgStore = Callable[..., PostgresStore]


@pytest.fixture
def open_pg_store(postgres_store_dsn: str, tmp_path: Path) -> Iterator[OpenPgStore]:
    """``open_pg_store(**kwargs)``: another ``PostgresStore`` (another node) on this
    test's database; without the watcher unless ``watch=True``; closed at teardown."""
    opened: list[PostgresStore] = []

    def open_one(**kwargs: object) -> PostgresStore:
        kwargs.setdefault("watch", False)
        kwargs.setdefault("pool_size", 2)
        kwargs.setdefault("path", tmp_path)
        store = PostgresStore(postgres_store_dsn, **kwargs)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield open_one
    for store in reversed(opened):
        store.close()
