"""The lens and query suites run on both stores with identical expected results: the
embedded SQLite store and cluster mode's PostgreSQL store (``Engine.shared``)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def store_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
