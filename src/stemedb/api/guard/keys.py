"""API keys in a running server: authenticate ``X-API-Key``, manage keys, seed the root key.

The ``KeyRing`` keeps every key in memory (by the SHA-256 of its secret and by id) and
writes each change through to its ``KeyStore`` before it answers (``<data_dir>/keys.sqlite``,
or the cluster's PostgreSQL tables): a disabled or deleted key is refused from the next
request on, with no cache to expire. The data directory lock keeps other programs from
changing the file while the server runs; the server's other HTTP processes
(``api.workers``) and, in cluster mode, the other nodes do change the keys, and each
process reloads them when another one did (``reload``, called by ``AccessControl``).

Authentication hashes the presented secret (one SHA-256), looks the digest up and
compares it again with ``hmac.compare_digest``; the lookup key is a hash of 256 random
bits, so its timing says nothing about the secret. Secrets that matched a key are
remembered with their key (at most ``KNOWN_SECRETS_SIZE``); whether that key still
exists, its ``enabled`` flag and its expiry are checked on every request, so a deleted,
disabled or expired key is refused at once. ``last_used_at`` is updated in
memory (at most once a second per key) and flushed in one transaction every
``LAST_USED_FLUSH_SECONDS`` and at shutdown.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from stemedb.errors import (
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from stemedb.model.apikey import (
    ROOT_KEY_ID,
    ApiKey,
    CreatedApiKey,
    check_name,
    check_role,
    check_root_secret,
    hash_secret,
    new_key_id,
    new_secret,
    same_hash,
)
from stemedb.store.keys import KeyStore, StoredKey

log = logging.getLogger("stemedb.api")

LAST_USED_FLUSH_SECONDS: Final = 10.0
LAST_USED_RESOLUTION_SECONDS: Final = 1.0
KNOWN_SECRETS_SIZE: Final = 1024
ROOT_KEY_NAME: Final = "root"


def seed_root(store: KeyStore, secret: str, now: float) -> str:
    """Make the configured root key an admin key with id ``root`` (idempotent).

    Absent: created. Present with another secret: its hash is replaced (rotation).
    Its ``enabled`` flag is kept: a root key an admin disabled stays disabled."""
    check_root_secret(secret)
    digest = hash_secret(secret)
    current = next((k for k in store.all_keys() if k.id == ROOT_KEY_ID), None)
    if current is None:
        root = StoredKey(
            id=ROOT_KEY_ID,
            name=ROOT_KEY_NAME,
            role="admin",
            enabled=True,
            created_at=now,
            expires_at=None,
            last_used_at=None,
            secret_hash=digest,
        )
        store.put(root)
        return "created"
    if current.secret_hash != digest or current.role != "admin":
        current.secret_hash = digest
        current.role = "admin"
        current.expires_at = None
        store.put(current)
        return "rotated"
    return "unchanged"


def is_usable(key: StoredKey, now: float) -> bool:
    return key.enabled and not key.minted_open and (key.expires_at is None or now < key.expires_at)


def new_key(
    name: str, role: str, expires_at: float | None, now: float, *, minted_open: bool = False
) -> tuple[StoredKey, str]:
    """A validated new key and its secret (shown once)."""
    check_name(name)
    checked_role = check_role(role)
    if expires_at is not None and expires_at <= now:
        raise ValidationError("expires_at", "future", "expires_at must be in the future")
    secret = new_secret()
    key = StoredKey(
        id=new_key_id(),
        name=name,
        role=checked_role,
        enabled=True,
        created_at=now,
        expires_at=expires_at,
        last_used_at=None,
        secret_hash=hash_secret(secret),
        minted_open=minted_open,
    )
    return key, secret


def created(key: StoredKey, secret: str) -> CreatedApiKey:
    return CreatedApiKey(
        id=key.id,
        name=key.name,
        role=key.role,
        enabled=key.enabled,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        minted_open=key.minted_open,
        secret=secret,
    )


class KeyRing:
    """``mints_open``: API keys are off, so whoever creates a key may be anyone; such
    keys are marked ``minted_open`` and refused once keys are on until an admin
    confirms them (``confirm``) or deletes them."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.mints_open = False
        self._clock = clock
        self._store: KeyStore | None = None
        self._by_hash: dict[str, StoredKey] = {}
        self._by_id: dict[str, StoredKey] = {}
        self._dirty: dict[str, float] = {}
        self._known: dict[str, StoredKey] = {}  # secrets that matched a key -> the key
        self._change = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------

    def open(self, store: KeyStore, root_secret: str) -> KeyStore:
        """Take ``store`` (closed on failure), seed the root key if one is configured,
        load all keys."""
        try:
            if root_secret:
                outcome = seed_root(store, root_secret, self._clock())
                if outcome != "unchanged":
                    log.info("root API key %s (id %s)", outcome, ROOT_KEY_ID)
            for key in store.all_keys():
                self._index(key)
        except BaseException:
            store.close()
            raise
        self._store = store
        return store

    def reload(self) -> None:
        """Read every key again (another HTTP process changed them, ``api.workers``);
        ``last_used_at`` values not yet flushed stay pending."""
        keys = self.store.all_keys()
        with self._change:
            self._by_hash = {k.secret_hash: k for k in keys}
            self._by_id = {k.id: k for k in keys}
            self._known = {}

    def close(self) -> None:
        if self._store is not None:
            self.flush()
            self._store.close()
            self._store = None

    @property
    def store(self) -> KeyStore:
        if self._store is None:
            raise RuntimeError("the key ring is not open")
        return self._store

    def _index(self, key: StoredKey) -> None:
        self._by_hash[key.secret_hash] = key
        self._by_id[key.id] = key

    def _unindex(self, key: StoredKey) -> None:
        self._by_hash.pop(key.secret_hash, None)
        self._by_id.pop(key.id, None)

    # -- requests ------------------------------------------------------------------

    def authenticate(self, secret: str | None) -> StoredKey:
        """The key of ``X-API-Key``, or 401 (missing, unknown, disabled, expired)."""
        if not secret:
            raise AuthenticationError(
                "this endpoint needs an API key in the X-API-Key header", code="missing_api_key"
            )
        key = self._known.get(secret)
        if key is None or self._by_id.get(key.id) is not key:  # unknown, or deleted since
            digest = hash_secret(secret)
            key = self._by_hash.get(digest)
            if key is None or not same_hash(key.secret_hash, digest):
                raise AuthenticationError("the API key is not valid", code="invalid_api_key")
            if len(self._known) >= KNOWN_SECRETS_SIZE:
                self._known = {}
            self._known[secret] = key
        if not key.enabled:
            raise AuthenticationError("the API key is disabled", code="api_key_disabled")
        if key.minted_open:
            raise AuthorizationError(
                f"the API key {key.id} was created while API keys were off (by anyone who"
                " could reach the node); an admin must confirm it"
                f" (POST /v1/admin/api-keys/{key.id}/confirm) or delete it before it is"
                " accepted",
                code="api_key_unconfirmed",
                details={"api_key_id": key.id},
            )
        now = self._clock()
        if key.expires_at is not None and now >= key.expires_at:
            raise AuthenticationError("the API key has expired", code="api_key_expired")
        last = key.last_used_at
        if last is None or now - last >= LAST_USED_RESOLUTION_SECONDS:
            key.last_used_at = now
            self._dirty[key.id] = now
        return key

    def has_usable_admin(self) -> bool:
        now = self._clock()
        return any(k.role == "admin" and is_usable(k, now) for k in self._by_id.values())

    def flush(self) -> None:
        """Write pending ``last_used_at`` values (one transaction)."""
        if not self._dirty or self._store is None:
            return
        pending, self._dirty = self._dirty, {}
        self._store.touch(pending.items())

    # -- administration (blocking: call off the event loop) ------------------------

    def list(self) -> list[ApiKey]:
        return [key.public() for key in sorted(self._by_id.values(), key=_created_order)]

    def get(self, key_id: str) -> StoredKey:
        key = self._by_id.get(key_id)
        if key is None:
            raise NotFoundError(f"API key {key_id} not found", code="api_key_not_found")
        return key

    def create(self, name: str, role: str, expires_at: float | None) -> CreatedApiKey:
        key, secret = new_key(name, role, expires_at, self._clock(), minted_open=self.mints_open)
        with self._change:
            self.store.put(key)
            self._index(key)
        log.info(
            "API key created: id %s role %s name %r%s",
            key.id,
            key.role,
            key.name,
            " (API keys are off: marked minted_open)" if key.minted_open else "",
        )
        return created(key, secret)

    def unconfirmed(self) -> builtins.list[StoredKey]:
        """Keys created while API keys were off and not confirmed since."""
        return sorted((k for k in self._by_id.values() if k.minted_open), key=_created_order)

    def confirm(self, key_id: str) -> ApiKey:
        """An admin vouches for a key created while keys were off: it is accepted."""
        if self.mints_open:
            raise ConflictError(
                "API keys are off: a key confirmed now could have been created by anyone;"
                " turn keys on ([auth] enabled = true), then confirm it",
                code="api_keys_off",
            )
        with self._change:
            key = self.get(key_id)
            if key.minted_open:
                self.store.confirm(key_id)
                key.minted_open = False
        log.info("API key confirmed: id %s", key_id)
        return key.public()

    def disable(self, key_id: str) -> ApiKey:
        with self._change:
            key = self.get(key_id)
            if key.enabled:
                self._refuse_last_admin(key, "disable")
                self.store.set_enabled(key_id, False)
                key.enabled = False
        log.info("API key disabled: id %s", key_id)
        return key.public()

    def delete(self, key_id: str) -> ApiKey:
        with self._change:
            key = self.get(key_id)
            self._refuse_last_admin(key, "delete")
            self.store.delete(key_id)
            self._unindex(key)
        log.info("API key deleted: id %s", key_id)
        return key.public()

    def _refuse_last_admin(self, key: StoredKey, verb: str) -> None:
        now = self._clock()
        if key.role != "admin" or not is_usable(key, now):
            return
        others = [
            k
            for k in self._by_id.values()
            if k.id != key.id and k.role == "admin" and is_usable(k, now)
        ]
        if not others:
            raise ConflictError(
                f"refusing to {verb} the last usable admin key; create another admin key first",
                code="last_admin_key",
            )


def _created_order(key: StoredKey) -> tuple[float, str]:
    return (key.created_at, key.id)


__all__ = ["KNOWN_SECRETS_SIZE", "KeyRing", "created", "is_usable", "new_key", "seed_root"]
