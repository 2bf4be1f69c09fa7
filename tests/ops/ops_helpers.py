"""Records shared by the backup and restore tests."""

from __future__ import annotations

from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion


def make_claim(index: int, *, timestamp: int, key_index: int = 0) -> Assertion:
    """A distinct signed assertion per ``index``."""
    key = AgentKey.from_seed(bytes([key_index + 1]) * 32)
    return sign_assertion(
        key,
        subject=f"ops/subject-{index % 97}",
        predicate=f"p{index % 5}",
        object=f"value-{index}",
        confidence=0.5 + (index % 50) / 100,
        timestamp=timestamp,
    )
