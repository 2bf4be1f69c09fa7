"""``json`` object values and integer numbers over HTTP (ADR 0019): written, read back
intact by every read route, grouped by canonical bytes in consensus and skeptic, and
refused with a 400 naming the field when over the cap."""

from __future__ import annotations

from typing import Any

import httpx
from api_helpers import assert_envelope, last_lsn, post

from stemedb.model.json_value import JSON_VALUE_MAX_BYTES
from stemedb.model.records import ObjectValue
from stemedb.model.signing import AgentKey, sign_assertion

MEMORY: dict[str, Any] = {
    "text": "prefers metric units",
    "count": 3,
    "score": 0.75,
    "ratio": 2.5,
    "tags": ["units", {"at": 1700000000, "ok": True, "none": None}],
}


def test_a_json_value_reads_back_intact_from_every_read(
    client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    record = sign_assertion(
        alice,
        subject=subject,
        predicate="memory",
        object=ObjectValue("json", MEMORY),
        confidence=0.8,
    )
    written = post(client, "/v1/assert", record)
    assert written.status_code == 201, written.text
    claim_id = written.json()["id"]
    detail = client.get(f"/v1/assertions/{claim_id}")
    assert detail.json()["assertion"]["object"] == {"type": "json", "value": MEMORY}
    assert '"count":3,' in detail.text and '"ratio":2.5' in detail.text
    answer = client.get("/v1/query", params={"subject": subject, "predicate": "memory"}).json()
    assert answer["resolution"]["winner"]["object"] == {"type": "json", "value": MEMORY}
    assert answer["claims"][0]["object"]["value"] == MEMORY
    skeptic = client.get("/v1/skeptic", params={"subject": subject, "predicate": "memory"}).json()
    assert [c["value"] for c in skeptic["claims"]] == [{"type": "json", "value": MEMORY}]


def test_an_integer_number_reads_back_as_an_integer(
    client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    record = sign_assertion(alice, subject=subject, predicate="steps", object=3, confidence=0.5)
    written = post(client, "/v1/assert", record)
    assert written.status_code == 201, written.text
    detail = client.get(f"/v1/assertions/{written.json()['id']}")
    assert '"object":{"type":"number","value":3}' in detail.text
    answer = client.get("/v1/query", params={"subject": subject, "predicate": "steps"})
    assert '"value":3}' in answer.text and '"value":3.0' not in answer.text
    assert type(answer.json()["resolution"]["winner"]["object"]["value"]) is int


def test_consensus_and_skeptic_group_json_values_by_canonical_bytes(
    client: httpx.Client, alice: AgentKey, bob: AgentKey, carol: AgentKey, subject: str
) -> None:
    # alice and bob say the same thing spelled differently; carol says something else
    same = ({"unit": "metric", "level": [1, 2.0]}, {"level": [1.0, 2], "unit": "metric"})
    for key, value, confidence in ((alice, same[0], 0.6), (bob, same[1], 0.7)):
        record = sign_assertion(
            key,
            subject=subject,
            predicate="prefs",
            object=ObjectValue("json", value),
            confidence=confidence,
        )
        assert post(client, "/v1/assert", record).status_code == 201
    other = sign_assertion(
        carol,
        subject=subject,
        predicate="prefs",
        object=ObjectValue("json", {"unit": "imperial", "level": [1, 2]}),
        confidence=0.9,  # a fresh key at 0.95+ against two agents would be quarantined
    )
    assert post(client, "/v1/assert", other).status_code == 201

    params = {"subject": subject, "predicate": "prefs", "lens": "consensus"}
    answer = client.get("/v1/query", params=params).json()
    assert answer["resolution"]["candidates_count"] == 3
    assert answer["resolution"]["winner"]["object"]["value"]["unit"] == "metric"
    skeptic = client.get("/v1/skeptic", params={"subject": subject, "predicate": "prefs"}).json()
    assert skeptic["status"] == "contested"
    by_unit = {c["value"]["value"]["unit"]: c for c in skeptic["claims"]}
    assert set(by_unit) == {"metric", "imperial"}
    assert len(by_unit["metric"]["claim_ids"]) == 2
    assert len(by_unit["imperial"]["claim_ids"]) == 1


def test_a_json_value_over_the_cap_is_a_400_naming_the_field(
    client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    big = {"blob": "x" * JSON_VALUE_MAX_BYTES}
    record = sign_assertion(
        alice, subject=subject, predicate="p", object=ObjectValue("json", big), confidence=0.5
    )
    before = last_lsn(client)
    error = assert_envelope(post(client, "/v1/assert", record), 400, "ValidationError")
    assert error["details"] == {"field": "object.value", "rule": "too_long"}
    assert str(JSON_VALUE_MAX_BYTES) in error["message"]
    scalar = sign_assertion(
        alice, subject=subject, predicate="p", object=ObjectValue("json", "x"), confidence=0.5
    )  # a json value is an object or an array
    error = assert_envelope(post(client, "/v1/assert", scalar), 400, "ValidationError")
    assert error["details"] == {"field": "object.value", "rule": "type_mismatch"}
    assert last_lsn(client) == before
