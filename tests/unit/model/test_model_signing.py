"""Agent keys, the signature message and signature verification."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import msgspec
import nacl.signing
import pytest
from model_factories import ID, NOW, OTHER_ID

from stemedb.errors import SignatureError, ValidationError
from stemedb.model.ids import assertion_id
from stemedb.model.records import Assertion, Signature
from stemedb.model.signing import (
    AgentKey,
    make_object,
    signature_message,
    verify_signature,
)


def test_signature_message_layout() -> None:
    assert signature_message(ID, 1700000000) == f"stemedb/sig/v1:{ID}:1700000000".encode()


def test_same_seed_gives_same_agent_id() -> None:
    assert AgentKey.from_seed(bytes(32)).agent_id == AgentKey.from_hex("00" * 32).agent_id


def test_agent_id_is_hex_ed25519_public_key() -> None:
    seed = bytes(range(32))
    expected = bytes(nacl.signing.SigningKey(seed).verify_key).hex()
    assert AgentKey.from_seed(seed).agent_id == expected


def test_signature_verifies_with_plain_pynacl(key: AgentKey) -> None:
    sig = key.sign(ID, NOW)
    verify_key = nacl.signing.VerifyKey(bytes.fromhex(sig.agent_id))
    verify_key.verify(signature_message(ID, NOW), bytes.fromhex(sig.signature))


def test_valid_signature_passes(key: AgentKey) -> None:
    verify_signature(ID, key.sign(ID, NOW))


def test_signature_over_other_content_is_rejected(key: AgentKey) -> None:
    with pytest.raises(SignatureError) as info:
        verify_signature(OTHER_ID, key.sign(ID, NOW))
    assert info.value.code == "bad_signature"
    assert info.value.status == 401
    assert info.value.details["agent_id"] == key.agent_id


def test_signature_with_changed_signed_at_is_rejected(key: AgentKey) -> None:
    sig = msgspec.structs.replace(key.sign(ID, NOW), signed_at=NOW + 1)
    with pytest.raises(SignatureError):
        verify_signature(ID, sig)


def test_signature_claimed_by_other_agent_is_rejected(key: AgentKey, other_key: AgentKey) -> None:
    sig = msgspec.structs.replace(key.sign(ID, NOW), agent_id=other_key.agent_id)
    with pytest.raises(SignatureError) as info:
        verify_signature(ID, sig)
    assert info.value.details["agent_id"] == other_key.agent_id


def test_flipped_signature_bit_is_rejected(key: AgentKey) -> None:
    sig = key.sign(ID, NOW)
    raw = bytearray(bytes.fromhex(sig.signature))
    raw[0] ^= 1
    with pytest.raises(SignatureError):
        verify_signature(ID, msgspec.structs.replace(sig, signature=raw.hex()))


def test_all_zero_public_key_is_rejected_not_crashing(key: AgentKey) -> None:
    sig = msgspec.structs.replace(key.sign(ID, NOW), agent_id="00" * 32)
    with pytest.raises(SignatureError):
        verify_signature(ID, sig)


@pytest.mark.parametrize(
    ("agent_id", "signature", "field"),
    [
        ("AB" * 32, "00" * 64, "sig.agent_id"),
        ("ab" * 31, "00" * 64, "sig.agent_id"),
        ("zz" * 32, "00" * 64, "sig.agent_id"),
        ("ab" * 32, "00" * 63, "sig.signature"),
        ("ab" * 32, "GG" * 64, "sig.signature"),
    ],
)
def test_malformed_hex_is_a_validation_error(agent_id: str, signature: str, field: str) -> None:
    sig = Signature(agent_id=agent_id, signature=signature, signed_at=NOW)
    with pytest.raises(ValidationError) as info:
        verify_signature(ID, sig, field="sig")
    assert (info.value.field, info.value.rule) == (field, "hex_format")


def test_signing_a_malformed_id_is_refused(key: AgentKey) -> None:
    with pytest.raises(ValidationError) as info:
        key.sign("not-an-id", NOW)
    assert info.value.rule == "hex_format"


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33)])
def test_seed_of_wrong_length_is_refused(seed: bytes) -> None:
    with pytest.raises(ValidationError) as info:
        AgentKey.from_seed(seed)
    assert (info.value.field, info.value.rule) == ("seed", "length")


def test_non_hex_seed_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        AgentKey.from_hex("xy" * 32)
    assert (info.value.field, info.value.rule) == ("seed", "hex_format")


def test_saved_key_loads_back_with_mode_0600(key: AgentKey, tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    key.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert AgentKey.load(path).agent_id == key.agent_id


def test_save_refuses_to_overwrite_existing_key(key: AgentKey, tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    AgentKey.generate().save(path)
    with pytest.raises(FileExistsError):
        key.save(path)
    key.save(path, overwrite=True)
    assert AgentKey.load(path).agent_id == key.agent_id


def test_repr_does_not_leak_the_seed(key: AgentKey) -> None:
    assert key.seed_hex() not in repr(key)


def test_generated_keys_differ() -> None:
    assert AgentKey.generate().agent_id != AgentKey.generate().agent_id


def test_sign_assertion_signs_its_content_id(assertion: Assertion) -> None:
    (sig,) = assertion.signatures
    verify_signature(assertion_id(assertion), sig)
    assert sig.signed_at == assertion.timestamp


@pytest.mark.parametrize(
    ("value", "kind"),
    [(True, "boolean"), (3, "number"), (2.5, "number"), ("x", "text")],
)
def test_make_object_picks_type_from_value(value: object, kind: str) -> None:
    assert make_object(value).type == kind  # type: ignore[arg-type]
