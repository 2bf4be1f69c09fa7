"""The golden vectors of docs/design/signing.md, checked twice: by our model code, and by
an independent re-implementation here using only hashlib, rfc8785 and nacl.signing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import msgspec
import nacl.signing
import pytest
import rfc8785

from stemedb.model import ids
from stemedb.model.canonical import canonical_json
from stemedb.model.records import (
    Assertion,
    CoSignature,
    Epoch,
    Retraction,
    Source,
    Supersession,
    Vote,
)
from stemedb.model.signing import AgentKey, signature_message
from stemedb.model.validation import verify_record

VECTORS_PATH = Path(__file__).parents[2] / "data" / "signing_vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))["vectors"]

TYPES: dict[str, type] = {
    "assertion": Assertion,
    "vote": Vote,
    "epoch": Epoch,
    "supersession": Supersession,
    "source": Source,
    "retraction": Retraction,
    "cosignature": CoSignature,
}
CONTENT = {
    "assertion": ids.assertion_content,
    "vote": ids.vote_content,
    "epoch": ids.epoch_content,
    "supersession": ids.supersession_content,
    "source": ids.source_content,
    "retraction": ids.retraction_content,
    "cosignature": ids.cosignature_content,
}

# --- independent reference: written from docs/design/signing.md, not from stemedb.model ---

TAGS = {
    "assertion": b"stemedb/assertion/v1\n",
    "vote": b"stemedb/vote/v1\n",
    "epoch": b"stemedb/epoch/v1\n",
    "supersession": b"stemedb/supersession/v1\n",
    "source": b"stemedb/source/v1\n",
    "retraction": b"stemedb/retraction/v1\n",
    "cosignature": b"stemedb/cosign/v1\n",
}


def reference_content(kind: str, r: dict[str, Any]) -> dict[str, Any]:
    if kind == "assertion":
        optional = ["source_hash", "source_class", "epoch", "parent", "valid_from", "valid_to"]
        content = {name: r.get(name) for name in optional}
        content.update(
            subject=r["subject"],
            predicate=r["predicate"],
            object={"type": r["object"]["type"], "value": r["object"]["value"]},
            confidence=r["confidence"],
            lifecycle=r.get("lifecycle") or "proposed",
            timestamp=r["timestamp"],
        )
        return content
    if kind == "vote":
        keys = ["assertion_id", "weight", "timestamp"]
        return {**{k: r[k] for k in keys}, "agent_id": r["signature"]["agent_id"]}
    if kind == "epoch":
        return {
            "name": r["name"],
            "description": r.get("description", ""),
            "supersedes": list(r.get("supersedes", [])),
            "kind": r.get("kind", "replace"),
            "timestamp": r["timestamp"],
        }
    if kind == "supersession":
        return {k: r[k] for k in ["old", "new", "reason", "timestamp"]}
    if kind == "source":
        optional = ["source_class", "published_at", "content"]
        return {
            **{k: r.get(k) for k in optional},
            "source_hash": r["source_hash"],
            "uri": r["uri"],
            "title": r.get("title", ""),
            "timestamp": r["timestamp"],
        }
    if kind == "retraction":
        return {k: r[k] for k in ["source_hash", "reason", "timestamp"]}
    assert kind == "cosignature"
    return {"assertion_id": r["assertion_id"], "agent_id": r["signature"]["agent_id"]}


def first_signature(r: dict[str, Any]) -> dict[str, Any]:
    return r["signatures"][0] if "signatures" in r else r["signature"]  # type: ignore[no-any-return]


# --- the tests -----------------------------------------------------------------------------


def test_vectors_cover_every_signed_kind() -> None:
    assert len(VECTORS) >= 5
    assert {v["kind"] for v in VECTORS} == set(TYPES)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_independent_reference_agrees_with_vector(vector: dict[str, Any]) -> None:
    kind, record = vector["kind"], vector["record"]
    canonical = rfc8785.dumps(reference_content(kind, record))
    assert canonical == vector["canonical_json"].encode("utf-8")
    assert hashlib.sha256(TAGS[kind] + canonical).hexdigest() == vector["content_id"]

    signing_key = nacl.signing.SigningKey(bytes.fromhex(vector["seed_hex"]))
    assert bytes(signing_key.verify_key).hex() == vector["public_key_hex"]
    sig = first_signature(record)
    assert sig["agent_id"] == vector["public_key_hex"]
    signed_id = record["assertion_id"] if kind == "cosignature" else vector["content_id"]
    message = f"stemedb/sig/v1:{signed_id}:{sig['signed_at']}".encode("ascii")
    assert message.decode() == vector["signature_message"]
    # Ed25519 is deterministic: the same seed and message give the same signature.
    assert signing_key.sign(message).signature.hex() == vector["signature_hex"] == sig["signature"]
    signing_key.verify_key.verify(message, bytes.fromhex(vector["signature_hex"]))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_model_code_agrees_with_vector(vector: dict[str, Any]) -> None:
    kind = vector["kind"]
    record = msgspec.convert(vector["record"], TYPES[kind])
    assert canonical_json(CONTENT[kind](record)).decode("utf-8") == vector["canonical_json"]
    assert ids.record_id(record) == vector["content_id"]
    assert verify_record(record, now=vector["signed_at"]) == vector["content_id"]
    assert ids.signed_message_id(record) == vector["signed_id"]
    message = signature_message(vector["signed_id"], vector["signed_at"])
    assert message.decode("ascii") == vector["signature_message"]
    key = AgentKey.from_hex(vector["seed_hex"])
    assert key.agent_id == vector["public_key_hex"]
    assert key.sign(vector["signed_id"], vector["signed_at"]).signature == vector["signature_hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_decoded_from_wire_bytes_verifies(vector: dict[str, Any]) -> None:
    wire = json.dumps(vector["record"]).encode()
    record = msgspec.json.decode(wire, type=TYPES[vector["kind"]])
    assert verify_record(record, now=vector["signed_at"]) == vector["content_id"]


DOC_PATH = Path(__file__).parents[3] / "docs" / "design" / "signing.md"


def test_design_doc_shows_vectors_matching_the_golden_file() -> None:
    doc = DOC_PATH.read_text(encoding="utf-8")
    shown = [v for v in VECTORS if f": `{v['name']}` (" in doc]
    assert len(shown) >= 5
    for vector in shown:
        for field in ("seed_hex", "public_key_hex", "content_id", "signature_hex"):
            assert f"`{vector[field]}`" in doc, (vector["name"], field)
        assert f"\n{vector['canonical_json']}\n" in doc, vector["name"]


def test_design_doc_lists_every_domain_tag() -> None:
    doc = DOC_PATH.read_text(encoding="utf-8")
    for tag in (*TAGS.values(), ids.TRUST_OUTCOME_TAG):
        assert f"`{tag.decode().rstrip(chr(10))}\\n`" in doc
