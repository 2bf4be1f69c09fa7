"""Fixed keys, clock and records shared by the model tests."""

from __future__ import annotations

import hashlib

from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion

NOW = 1_700_000_000
SKEW = 300
ID = "ab" * 32
OTHER_ID = "cd" * 32


def fixed_key(index: int = 0) -> AgentKey:
    """A deterministic key per index: seed = sha256("stemedb-test-key-{index}")."""
    return AgentKey.from_seed(hashlib.sha256(f"stemedb-test-key-{index}".encode()).digest())


def make_assertion(key: AgentKey, **overrides: object) -> Assertion:
    """A valid signed assertion at NOW; keyword overrides go to sign_assertion."""
    fields: dict[str, object] = {
        "subject": "drugs/semaglutide",
        "predicate": "gastroparesis_risk",
        "object": "rare",
        "confidence": 0.8,
        "source_class": "clinical",
        "timestamp": NOW,
    }
    fields.update(overrides)
    return sign_assertion(key, **fields)  # type: ignore[arg-type]
