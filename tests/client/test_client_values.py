"""The SDK writes and reads ``json`` values and integer numbers as they are (ADR 0019):
what comes back from the server has the types that were sent, to the bottom."""

from __future__ import annotations

import json
from typing import Any

from stemedb.client import Client, ObjectValue

MEMORY: dict[str, Any] = {"note": "likes tea", "count": 3, "weight": 1.5, "tags": [1, 2.0, None]}


def test_a_json_value_and_an_integer_round_trip_through_the_sdk(db: Client, subject: str) -> None:
    memory = db.assert_(subject, "memory", ObjectValue("json", MEMORY), 0.9)
    steps = db.assert_(subject, "steps", 3, 0.9)
    bare = db.assert_(subject, "bare", {"k": [1]}, 0.9)  # a dict is a json value
    value = db.get_assertion(memory.id).assertion.object.value
    assert json.dumps(value) == json.dumps(MEMORY)  # 3 stays 3, 2.0 stays 2.0
    answer = db.query(subject, "steps")
    assert answer.resolution is not None and answer.resolution.winner is not None
    winner = answer.resolution.winner.object
    assert winner == ObjectValue("number", 3) and type(winner.value) is int
    assert db.get_assertion(steps.id).assertion.object.value == 3
    assert db.get_assertion(bare.id).assertion.object == ObjectValue("json", {"k": [1]})
