"""KeyRing remembers which key a secret matched, never whether the key may be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemedb.api.guard import keys
from stemedb.api.guard.keys import KeyRing
from stemedb.errors import AuthenticationError
from stemedb.store.keys import SqliteKeyStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _ring(tmp_path: Path) -> tuple[KeyRing, FakeClock]:
    clock = FakeClock()
    ring = KeyRing(clock)
    ring.open(SqliteKeyStore(tmp_path), "")
    return ring, clock


def _code(ring: KeyRing, secret: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        ring.authenticate(secret)
    return caught.value.code


def test_a_disabled_key_is_refused_at_once_though_its_secret_is_remembered(
    tmp_path: Path,
) -> None:
    ring, _ = _ring(tmp_path)
    made = ring.create("w", "writer", None)
    assert ring.authenticate(made.secret).id == made.id
    assert ring.authenticate(made.secret).id == made.id  # the remembered secret
    ring.disable(made.id)
    assert _code(ring, made.secret) == "api_key_disabled"
    ring.close()


def test_a_deleted_key_is_refused_at_once_though_its_secret_is_remembered(
    tmp_path: Path,
) -> None:
    ring, _ = _ring(tmp_path)
    ring.create("admin", "admin", None)  # the last admin cannot be deleted
    made = ring.create("w", "admin", None)
    ring.authenticate(made.secret)
    ring.delete(made.id)
    assert _code(ring, made.secret) == "invalid_api_key"
    ring.close()


def test_an_expired_key_is_refused_at_once_though_its_secret_is_remembered(
    tmp_path: Path,
) -> None:
    ring, clock = _ring(tmp_path)
    made = ring.create("w", "reader", clock.now + 5.0)
    ring.authenticate(made.secret)
    clock.now += 5.0
    assert _code(ring, made.secret) == "api_key_expired"
    ring.close()


def test_unknown_secrets_are_not_remembered_and_the_cache_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "KNOWN_SECRETS_SIZE", 2)
    ring, _ = _ring(tmp_path)
    for _ in range(5):
        assert _code(ring, "not-a-key-" + "x" * 40) == "invalid_api_key"
    assert len(ring._known) == 0
    made = [ring.create(f"k{i}", "reader", None) for i in range(3)]
    for key in made:
        ring.authenticate(key.secret)
        assert len(ring._known) <= 2
    for key in made:
        assert ring.authenticate(key.secret).id == key.id
    ring.close()
