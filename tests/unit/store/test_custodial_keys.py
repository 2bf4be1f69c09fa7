"""Custodial keys: one usable key per API key, revocation that erases the private half
and keeps the binding — on both backends (``custodial.sqlite``, the cluster's table);
private keys at rest in a 0600 file on an embedded node."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from stemedb.errors import ConflictError
from stemedb.store.custodial_keys import (
    CUSTODIAL_FILE,
    CustodialKeys,
    CustodialKeyStore,
    open_custodial_keys,
)


@pytest.fixture(params=["local", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CustodialKeys]:
    dsn = request.getfixturevalue("postgres_store_dsn") if request.param == "postgres" else ""
    keys = open_custodial_keys(request.param, tmp_path, dsn)
    yield keys
    keys.close()


def test_the_file_is_created_0600_and_a_looser_restored_copy_is_put_back(tmp_path: Path) -> None:
    store = CustodialKeyStore(tmp_path)
    store.close()
    path = tmp_path / CUSTODIAL_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)  # e.g. copied back by a restore
    CustodialKeyStore(tmp_path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_key_signs_for_its_api_key_until_revoked_and_the_binding_stays(
    store: CustodialKeys,
) -> None:
    made = store.create("key-1", 100.0)
    signer = store.signer("key-1")
    assert signer is not None and signer.agent_id == made.agent_id
    assert store.signer("key-2") is None
    with pytest.raises(ConflictError):
        store.create("key-1", 101.0)
    revoked = store.revoke(made.agent_id, 102.0)
    assert revoked is not None and revoked.revoked_at == 102.0
    assert store.signer("key-1") is None
    assert store.revoke("ab" * 32, 103.0) is None
    (listed,) = store.of_agents([made.agent_id, "cd" * 32])
    assert listed.api_key_id == "key-1" and listed.revoked_at == 102.0
    again = store.create("key-1", 104.0)  # a new key once the old one is revoked
    assert again.agent_id != made.agent_id
    assert [k.agent_id for k in store.all()] == [made.agent_id, again.agent_id]


def test_revoking_erases_the_private_half_from_the_file(tmp_path: Path) -> None:
    store = CustodialKeyStore(tmp_path)
    made = store.create("key-1", 100.0)
    signer = store.signer("key-1")
    assert signer is not None
    seed = bytes.fromhex(signer.seed_hex())
    assert seed in (tmp_path / CUSTODIAL_FILE).read_bytes()
    store.revoke(made.agent_id, 101.0)
    store.close()
    assert seed not in (tmp_path / CUSTODIAL_FILE).read_bytes()
