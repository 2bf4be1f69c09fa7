"""The key store seam: ``KeyStore`` (keys and rate-limit overrides, both backends) and,
in cluster mode only, ``SharedAccess`` (the access generation and the open breakers).

A ``KeyStore`` call blocks (run it off the event loop) and is durable when it returns.
Which implementation a server uses follows ``storage.backend``
(``stemedb.store.keys.open_key_store``): ``local`` is ``<data_dir>/keys.sqlite``
(``SqliteKeyStore``), ``postgres`` the tables of migration 0010 (``PostgresKeyStore``).

The **access generation** of a shared store is one counter every change of keys,
overrides or breakers increments in the change's own transaction. A node reads it once
per guarded request (``AccessGeneration.fresh``) and reloads what it caches when it
moved, so a change committed through one node holds on every node from the next
request that starts after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from stemedb.store.keys.records import OverrideScope, RateOverride, SharedBreaker, StoredKey


class KeyStore(Protocol):
    """API keys and rate-limit overrides (blocking calls, thread-safe)."""

    def all_keys(self) -> list[StoredKey]: ...

    def put(self, key: StoredKey) -> None:
        """Insert or replace one key (by id)."""

    def set_enabled(self, key_id: str, enabled: bool) -> None: ...

    def delete(self, key_id: str) -> None: ...

    def confirm(self, key_id: str) -> None:
        """Clear ``minted_open`` of one key (an admin confirmed it)."""

    def touch(self, used: Iterable[tuple[str, float]]) -> None:
        """Record ``last_used_at`` of many keys in one transaction (no generation bump:
        it changes nothing another node decides on)."""

    def overrides(self) -> list[RateOverride]: ...

    def put_override(self, override: RateOverride) -> None: ...

    def delete_override(self, scope: OverrideScope, target: str) -> None: ...

    def close(self) -> None: ...


class SharedAccess(KeyStore, Protocol):
    """A ``KeyStore`` shared by the nodes of a cluster, plus the open agent breakers."""

    def generation(self) -> int:
        """The access generation now (a blocking read)."""

    def breakers(self) -> list[SharedBreaker]: ...

    def put_breaker(self, breaker: SharedBreaker) -> int:
        """Insert or replace an open breaker; the generation it committed at."""

    def delete_breaker(self, agent_id: str) -> int:
        """Drop an agent's breaker (closed, or reset by an admin); the generation after."""


class AccessGeneration(Protocol):
    """The per-request read of the access generation (asyncio)."""

    async def fresh(self) -> int:
        """The generation as read by a query that started after this call (concurrent
        callers share one query); ``StorageError`` when the database cannot answer."""

    async def close(self) -> None: ...


__all__ = ["AccessGeneration", "KeyStore", "SharedAccess"]
