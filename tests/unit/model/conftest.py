"""Fixtures for the model tests."""

from __future__ import annotations

import pytest
from model_factories import fixed_key, make_assertion

from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey


@pytest.fixture
def key() -> AgentKey:
    return fixed_key(0)


@pytest.fixture
def other_key() -> AgentKey:
    return fixed_key(1)


@pytest.fixture
def assertion(key: AgentKey) -> Assertion:
    return make_assertion(key)
